//! Writing a table: [`TableWriter`] takes versions in internal-key order, cuts them into
//! data blocks, and on [`finish`](TableWriter::finish) appends the filter, properties,
//! index and footer and syncs the file.
//!
//! Syncing the directory that holds the new file, and recording the table in the
//! manifest, belong to the caller.

use std::cmp::Ordering;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::block::{block_trailer, BlockBuilder, BLOCK_TRAILER_LEN};
use super::bloom::BloomBuilder;
use super::footer::{BlockHandle, Footer};
use super::properties::TableProperties;
use crate::engine::bloom::KeyHash;
use crate::engine::error::{Error, Result};
use crate::engine::types::{compare_internal, SeqNo, ValueKind};

/// Largest accepted [`TableOptions::block_size`].
const MAX_BLOCK_SIZE: usize = 1 << 30;

/// Largest accepted [`TableOptions::bloom_bits_per_key`].
const MAX_BLOOM_BITS_PER_KEY: u32 = 64;

/// How tables are laid out. Readers need none of this: a table describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// Target size of a data block in bytes; a block is cut once it reaches this size
    /// (a single large entry makes a larger block). Default 4096.
    pub block_size: usize,
    /// Entries between restart points in a data block (where keys are stored whole).
    /// Default 16.
    pub restart_interval: usize,
    /// Bloom filter bits per distinct user key; 0 writes no filter. Default 10 (about 1%
    /// false positives).
    pub bloom_bits_per_key: u32,
    /// Whether data blocks carry a hash index from user key to restart run, which point
    /// reads use instead of searching the block's restart points. Costs about 1.3 bytes
    /// per distinct key of a block. Default true.
    pub data_block_hash_index: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            data_block_hash_index: true,
        }
    }
}

impl TableOptions {
    fn validate(&self) -> Result<()> {
        if self.block_size == 0 || self.block_size > MAX_BLOCK_SIZE {
            return Err(Error::InvalidOption(format!(
                "table block_size is {}, it must be in 1..={MAX_BLOCK_SIZE}",
                self.block_size
            )));
        }
        if self.restart_interval == 0 {
            return Err(Error::InvalidOption(
                "table restart_interval must be at least 1".into(),
            ));
        }
        if self.bloom_bits_per_key > MAX_BLOOM_BITS_PER_KEY {
            return Err(Error::InvalidOption(format!(
                "table bloom_bits_per_key is {}, the maximum is {MAX_BLOOM_BITS_PER_KEY}",
                self.bloom_bits_per_key
            )));
        }
        Ok(())
    }
}

/// Writes one table file. Dropping it without [`finish`](Self::finish) leaves an
/// incomplete file that [`Table::open`](super::Table::open) refuses.
#[derive(Debug)]
pub struct TableWriter {
    path: PathBuf,
    out: BufWriter<File>,
    opts: TableOptions,
    /// Bytes handed to `out` so far: the offset of the next block.
    offset: u64,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    bloom: BloomBuilder,
    props: TableProperties,
    /// Last version added, to check the order and to key the index entry.
    last: Option<(Vec<u8>, SeqNo, ValueKind)>,
    /// Hash of the last user key, computed once per key for the filter and the data
    /// block's hash index.
    last_hash: Option<KeyHash>,
    /// Set after a failed write: the file's contents are unknown.
    failed: bool,
}

impl TableWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path, opts: TableOptions) -> Result<Self> {
        opts.validate()?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            data_block: if opts.data_block_hash_index {
                BlockBuilder::with_hash_index(opts.restart_interval)
            } else {
                BlockBuilder::new(opts.restart_interval)
            },
            index_block: BlockBuilder::new(1),
            bloom: BloomBuilder::new(opts.bloom_bits_per_key),
            opts,
            offset: 0,
            props: TableProperties::default(),
            last: None,
            last_hash: None,
            failed: false,
        })
    }

    /// Adds one version. Versions must arrive in strictly increasing internal-key order
    /// (user key ascending, then sequence number descending); a version out of order is
    /// refused with [`Error::Corruption`] naming the file, and the table is unchanged.
    pub fn add(
        &mut self,
        user_key: &[u8],
        seq: SeqNo,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<()> {
        self.check_usable()?;
        let prev = self.last.as_ref().map(|(k, s, _)| (k.as_slice(), *s));
        let Some(new_user_key) = follows(prev, user_key, seq) else {
            let (k, s) = prev.unwrap_or_default();
            let reason = format!(
                "version ({:?}, seq {seq}) added after ({:?}, seq {s}): \
                 versions must arrive in internal-key order",
                String::from_utf8_lossy(user_key),
                String::from_utf8_lossy(k),
            );
            return Err(Error::corruption(
                &self.path,
                self.approximate_size(),
                reason,
            ));
        };
        if new_user_key {
            let hash = KeyHash::of(user_key);
            self.bloom.add_hash(hash);
            self.last_hash = Some(hash);
        }
        self.props.record(user_key, seq, kind, value.len());

        self.data_block
            .add_hashed(user_key, self.last_hash, seq, kind, value);
        match &mut self.last {
            Some((last_key, last_seq, last_kind)) => {
                if new_user_key {
                    last_key.clear();
                    last_key.extend_from_slice(user_key);
                }
                (*last_seq, *last_kind) = (seq, kind);
            }
            None => self.last = Some((user_key.to_vec(), seq, kind)),
        }
        if self.data_block.size_estimate() >= self.opts.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Bytes written so far plus the data block being filled.
    pub fn approximate_size(&self) -> u64 {
        self.offset + self.data_block.size_estimate() as u64
    }

    /// True when no version has been added.
    pub fn is_empty(&self) -> bool {
        self.props.entries == 0
    }

    /// Writes the filter, properties, index and footer, syncs the file to disk and
    /// returns the table's properties.
    pub fn finish(mut self) -> Result<TableProperties> {
        self.check_usable()?;
        if !self.data_block.is_empty() {
            self.flush_data_block()?;
        }
        self.props.data_size = self.offset;
        self.props.largest_key = self.last.take().map(|l| l.0).unwrap_or_default();

        let bloom = std::mem::replace(&mut self.bloom, BloomBuilder::new(0));
        let filter = self.write_block(&bloom.finish())?;
        let index_bytes = self
            .index_block
            .finish()
            .ok_or_else(|| self.too_large("index"))?;
        self.props.filter_size = u64::from(filter.size) + BLOCK_TRAILER_LEN as u64;
        self.props.index_size = (index_bytes.len() + BLOCK_TRAILER_LEN) as u64;
        self.props.created_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let properties = self.write_block(&self.props.encode())?;
        let index = self.write_block(&index_bytes)?;
        let footer = Footer {
            index,
            filter,
            properties,
        };
        self.write_raw(&footer.encode())?;
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io(&self.path, e))?;
        self.props.file_size = self.offset;
        Ok(self.props)
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            let e = std::io::Error::other("an earlier write to this table failed");
            return Err(Error::io(&self.path, e));
        }
        Ok(())
    }

    fn too_large(&self, what: &str) -> Error {
        Error::InvalidOption(format!(
            "{what} block of {} would exceed 4 GiB",
            self.path.display()
        ))
    }

    fn flush_data_block(&mut self) -> Result<()> {
        let Some(bytes) = self.data_block.finish() else {
            self.failed = true;
            return Err(self.too_large("data"));
        };
        let handle = self.write_block(&bytes)?;
        let mut encoded = Vec::with_capacity(super::footer::HANDLE_LEN);
        handle.encode_to(&mut encoded);
        if let Some((key, seq, kind)) = &self.last {
            self.index_block.add(key, *seq, *kind, &encoded);
        }
        self.props.data_blocks += 1;
        Ok(())
    }

    /// Writes `block` and its trailer; returns its handle.
    fn write_block(&mut self, block: &[u8]) -> Result<BlockHandle> {
        let size = u32::try_from(block.len()).map_err(|_| self.too_large("a"))?;
        let handle = BlockHandle {
            offset: self.offset,
            size,
        };
        self.write_raw(block)?;
        self.write_raw(&block_trailer(block))?;
        Ok(handle)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        if let Err(e) = self.out.write_all(bytes) {
            self.failed = true;
            return Err(Error::io(&self.path, e));
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

/// Where version `(user_key, seq)` falls after the previous version `prev`: `Some(true)`
/// when it starts a new user key, `Some(false)` when it is an older version of the same
/// key, `None` when it does not come strictly after `prev` in internal-key order.
pub(crate) fn follows(prev: Option<(&[u8], SeqNo)>, user_key: &[u8], seq: SeqNo) -> Option<bool> {
    match prev {
        None => Some(true),
        Some((k, s)) => {
            (compare_internal(user_key, seq, k, s) == Ordering::Greater).then(|| k != user_key)
        }
    }
}
