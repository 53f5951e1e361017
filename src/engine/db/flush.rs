//! Flushing: frozen memtables become SSTables on a background thread.
//!
//! The order of a flush is what makes it crash-safe:
//! 1. write the table file and fsync it (and the `tables/` directory);
//! 2. store a manifest naming the table and advancing `log_number` past the memtable's
//!    WAL segments (atomic rename);
//! 3. install a version without the memtable, then delete the obsolete WAL segments.
//!
//! A crash before step 2 leaves an orphan table (removed on open) and the WAL that still
//! holds every write; a crash after it leaves WAL segments that open deletes.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::super::error::Result;
use super::super::iter::InternalIterator;
use super::super::manifest::{sync_dir, table_path, TableEntry};
use super::super::memtable::Memtable;
use super::super::sstable::{Table, TableOptions, TableWriter};
use super::super::wal;
use super::{Inner, Version};

impl Inner {
    /// Body of the flush thread: flush the oldest frozen memtable until shutdown.
    pub(super) fn flush_loop(self: &Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let mem = {
                let mut signal = self.flush_signal.lock();
                loop {
                    if let Some(m) = self.version.read().immutables.first() {
                        break Arc::clone(m);
                    }
                    if signal.shutdown {
                        return;
                    }
                    self.flush_wakeup.wait(&mut signal);
                }
            };
            let outcome = self.flush_memtable(&mem);
            let mut signal = self.flush_signal.lock();
            match outcome {
                Ok(()) => {
                    *self.background_error.lock() = None;
                    backoff = Duration::from_millis(50);
                    self.compaction_wakeup.notify_all();
                }
                Err(e) => {
                    tracing::error!(error = %e, "memtable flush failed; will retry");
                    *self.background_error.lock() = Some(e.to_string());
                    self.flush_done.notify_all();
                    if signal.shutdown {
                        return;
                    }
                    self.flush_wakeup.wait_for(&mut signal, backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            self.flush_done.notify_all();
        }
    }

    /// Writes `mem` (the oldest frozen memtable) to a table and installs it.
    fn flush_memtable(&self, mem: &Arc<Memtable>) -> Result<()> {
        let started = std::time::Instant::now();
        // The WAL segments from `mem`'s first one up to (not including) the next
        // memtable's first one hold exactly `mem`'s writes.
        let next_log = {
            let version = self.version.read();
            version
                .immutables
                .get(1)
                .unwrap_or(&version.active)
                .first_wal_segment()
        };
        let table = if mem.is_empty() {
            None
        } else {
            let id = self.next_file_id.fetch_add(1, Ordering::SeqCst);
            Some(self.write_table(mem, id)?)
        };

        {
            let mut manifest = self.manifest.lock();
            let mut next = manifest.clone();
            if let Some(t) = &table {
                next.tables.push(table_entry(t, 0));
            }
            next.log_number = next_log;
            next.last_seq = next.last_seq.max(mem.max_seq());
            next.next_file_id = self.next_file_id.load(Ordering::SeqCst);
            if let Err(e) = next.store(&self.dir) {
                if let Some(t) = &table {
                    let _ = std::fs::remove_file(t.path());
                }
                return Err(e);
            }
            *manifest = next;
        }
        {
            let mut version = self.version.write();
            let old: &Version = &version;
            let mut levels = old.levels.clone();
            if let Some(t) = &table {
                levels[0].insert(0, Arc::clone(t));
            }
            *version = Arc::new(Version {
                active: Arc::clone(&old.active),
                immutables: old
                    .immutables
                    .iter()
                    .filter(|m| !Arc::ptr_eq(m, mem))
                    .cloned()
                    .collect(),
                levels,
            });
        }
        remove_segments_before(&self.wal_dir, next_log);
        self.write_counters.flushes.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = &table {
            let c = &self.compaction_counters;
            c.bytes_flushed
                .fetch_add(t.properties().file_size, Ordering::Relaxed);
        }
        tracing::info!(
            table = table.as_ref().map(|t| t.id()),
            entries = mem.len(),
            bytes = table.as_ref().map(|t| t.properties().file_size),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed memtable"
        );
        Ok(())
    }

    /// Writes the versions of `mem` to table `id`, fsyncs it and opens it.
    pub(super) fn write_table(&self, mem: &Arc<Memtable>, id: u64) -> Result<Arc<Table>> {
        let path = table_path(&self.tables_dir, id);
        let written = (|| {
            let mut writer = TableWriter::create(&path, self.table_options())?;
            let mut it = mem.iter();
            it.seek_to_first()?;
            while it.valid() {
                writer.add(it.user_key(), it.seq(), it.kind(), it.value())?;
                it.next()?;
            }
            writer.finish()?;
            sync_dir(&self.tables_dir)?;
            Table::open(
                &path,
                id,
                Arc::clone(&self.cache),
                Arc::clone(&self.counters),
            )
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        written
    }

    pub(super) fn table_options(&self) -> TableOptions {
        TableOptions {
            block_size: self.opts.block_size,
            bloom_bits_per_key: self.opts.bloom_bits_per_key,
            ..TableOptions::default()
        }
    }
}

/// The manifest's record of an open table.
pub(super) fn table_entry(t: &Table, level: u32) -> TableEntry {
    let p = t.properties();
    TableEntry {
        id: t.id(),
        level,
        file_size: p.file_size,
        min_seq: p.min_seq,
        max_seq: p.max_seq,
        smallest: p.smallest_key.clone(),
        largest: p.largest_key.clone(),
    }
}

/// Deletes WAL segments older than `log_number` (their writes are all in tables).
pub(super) fn remove_segments_before(wal_dir: &Path, log_number: u64) {
    match wal::list_segments(wal_dir) {
        Ok(ids) => {
            for id in ids.into_iter().filter(|&id| id < log_number) {
                let path = wal::segment_path(wal_dir, id);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove an obsolete WAL segment");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list WAL segments"),
    }
}
