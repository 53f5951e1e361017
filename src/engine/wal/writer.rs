//! The segment writer: creates a segment, appends pre-encoded records, syncs.
//!
//! Records are encoded by the caller (see
//! [`encode_batch_record`](super::encode_batch_record)) so that the records of several
//! batches can be concatenated and written with one call (group commit).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::{encode_header, HEADER_LEN};
use super::{segment_path, sync_dir};
use crate::engine::error::{Error, Result};

/// Appends records to one WAL segment.
///
/// After a failed write or sync the file's contents are unknown (part of a write may
/// have landed; a failed fsync may have dropped dirty pages), so the writer refuses
/// every later call with [`Error::Poisoned`] instead of appending after damage.
#[derive(Debug)]
pub struct WalWriter {
    path: PathBuf,
    id: u64,
    file: File,
    size: u64,
    /// The file is written (records, then zeros) up to here; past it, up to the reserved
    /// length, it is a hole. See [`preallocate`](Self::preallocate).
    zeroed_to: u64,
    /// The end of the zeros to keep ahead of the records: the length reserved by
    /// `preallocate` when it was asked to zero ahead.
    reserved: u64,
    failed: Option<String>,
}

/// Bytes of zeros written ahead of the records at a time inside the reserved length.
const ZERO_AHEAD: u64 = 1 << 20;

impl WalWriter {
    /// Creates segment `id` in `dir` (it must not exist), writes and fsyncs the header,
    /// then fsyncs the directory so the new name survives a crash.
    pub fn create(dir: &Path, id: u64) -> Result<Self> {
        let path = segment_path(dir, id);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let written = file
            .write_all(&encode_header(id))
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            // Best effort: a half-made segment would block a retry with the same id.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(Error::io(&path, e));
        }
        sync_dir(dir)?;
        Ok(WalWriter {
            path,
            id,
            file,
            size: HEADER_LEN as u64,
            zeroed_to: HEADER_LEN as u64,
            reserved: HEADER_LEN as u64,
            failed: None,
        })
    }

    /// The segment id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file: the header plus every record appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes pre-encoded records (one or several batches' records concatenated) with a
    /// single `write_all`, so they have reached the OS when this returns. Durability
    /// needs a [`sync`](Self::sync) as well.
    pub fn append(&mut self, encoded_records: &[u8]) -> Result<()> {
        self.check_usable()?;
        if encoded_records.is_empty() {
            return Ok(());
        }
        let end = self.size + encoded_records.len() as u64;
        if end > self.zeroed_to && self.zeroed_to < self.reserved {
            if let Err(e) = self.zero_ahead(end) {
                return Err(self.fail("zero-fill", e));
            }
        }
        if let Err(e) = self.file.write_all(encoded_records) {
            return Err(self.fail("write", e));
        }
        self.size += encoded_records.len() as u64;
        Ok(())
    }

    /// Makes everything appended so far durable (`fdatasync`).
    pub fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        if let Err(e) = self.file.sync_data() {
            return Err(self.fail("sync", e));
        }
        Ok(())
    }

    /// Extends the file to `bytes` (when it is shorter) without moving the append
    /// position, and syncs that size. Appends that stay inside the reserved length then
    /// change no file size, so each `fdatasync` has less metadata to commit.
    ///
    /// The reserved length starts as a hole. Appending into a hole makes the file system
    /// allocate blocks, which the next `fdatasync` must commit to its journal (each time
    /// the records reach a new block: every few groups of a few records). With
    /// `zero_ahead` (for a WAL synced at every write) the writer keeps up to
    /// 1 MiB of written zeros ahead of its records, writing the next
    /// stretch when an append reaches the end of the last: one `fdatasync` per MiB of
    /// records then carries those zeros, the others commit no allocation. It writes each
    /// byte of the log twice, which is why only per-write syncing asks for it.
    ///
    /// The reserved tail reads as zero bytes: if the process dies, replay sees a torn
    /// tail after the last record and truncates it. [`seal`](Self::seal) gives the
    /// unused part back.
    pub fn preallocate(&mut self, bytes: u64, zero_ahead: bool) -> Result<()> {
        self.check_usable()?;
        if bytes <= self.size {
            return Ok(());
        }
        if zero_ahead {
            self.reserved = bytes;
        }
        let size = self.size;
        let done = self
            .file
            .set_len(bytes)
            .and_then(|()| match zero_ahead {
                true => self.zero_ahead(size),
                false => Ok(()),
            })
            .and_then(|()| self.file.sync_all());
        if let Err(e) = done {
            return Err(self.fail("preallocation", e));
        }
        Ok(())
    }

    /// Writes zeros from `zeroed_to` to at least `end`, and [`ZERO_AHEAD`] bytes past
    /// the current end of the zeros, within the reserved length.
    fn zero_ahead(&mut self, end: u64) -> std::io::Result<()> {
        let target = end.max(self.zeroed_to + ZERO_AHEAD).min(self.reserved);
        static CHUNK: [u8; 64 << 10] = [0; 64 << 10];
        while self.zeroed_to < target {
            let n = (target - self.zeroed_to).min(CHUNK.len() as u64) as usize;
            self.file.write_all_at(&CHUNK[..n], self.zeroed_to)?;
            self.zeroed_to += n as u64;
        }
        Ok(())
    }

    /// Cuts the file back to the records written (dropping any preallocated tail) and
    /// syncs it: called when the segment stops receiving writes, so that only the newest
    /// segment can ever end in zeros.
    pub fn seal(&mut self) -> Result<()> {
        self.check_usable()?;
        if let Err(e) = self
            .file
            .set_len(self.size)
            .and_then(|()| self.file.sync_all())
        {
            return Err(self.fail("seal", e));
        }
        Ok(())
    }

    /// A second handle on the same file, so another thread can `fdatasync` it without
    /// holding the writer (periodic sync). A failure of `sync_data` on that handle has
    /// the same meaning as a failed [`sync`](Self::sync): the log can no longer be
    /// trusted, and the caller must stop acknowledging writes.
    pub fn sync_handle(&self) -> Result<File> {
        self.file.try_clone().map_err(|e| Error::io(&self.path, e))
    }

    fn check_usable(&self) -> Result<()> {
        match &self.failed {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, what: &str, e: std::io::Error) -> Error {
        self.failed = Some(format!(
            "{what} of WAL segment {} failed: {e}",
            self.path.display()
        ));
        Error::io(&self.path, e)
    }
}
