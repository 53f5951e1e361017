//! Compaction in the database: the background thread, installing a finished job, and
//! manual `compact()`.
//!
//! One compaction runs at a time (`compaction_lock`). A job reads a frozen version and
//! writes new tables; installing it is atomic: one manifest store replaces the inputs by
//! the outputs, then a new version is installed, then the input files are deleted
//! (readers that still hold them keep their open file handles). A crash before the
//! manifest store leaves orphan outputs, removed on the next open; after it, leftover
//! input files, removed the same way.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::compaction::job::{self, JobContext};
use super::super::compaction::picker::{self, TableInfo, Task};
use super::super::compaction::CompactionStrategy;
use super::super::error::Result;
use super::super::sstable::Table;
use super::super::types::SeqNo;
use super::flush::table_entry;
use super::{sort_level, Inner, Version};

impl Inner {
    /// Body of the compaction thread: compact while there is work, else sleep until a
    /// flush or compaction changes the tables.
    pub(super) fn compaction_loop(self: &Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.flush_signal.lock().shutdown {
                return;
            }
            match self.compact_once(false) {
                Ok(true) => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(false) => {
                    let mut signal = self.flush_signal.lock();
                    if signal.shutdown {
                        return;
                    }
                    self.compaction_wakeup
                        .wait_for(&mut signal, Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::error!(error = %e, "compaction failed; will retry");
                    *self.background_error.lock() = Some(format!("compaction failed: {e}"));
                    let mut signal = self.flush_signal.lock();
                    if signal.shutdown {
                        return;
                    }
                    self.compaction_wakeup.wait_for(&mut signal, backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Picks and runs one compaction (all tables into one run when `everything`).
    /// Returns false when there was nothing to do.
    pub(super) fn compact_once(&self, everything: bool) -> Result<bool> {
        let _one_at_a_time = self.compaction_lock.lock();
        let version = self.current_version();
        let levels: Vec<Vec<TableInfo>> = version
            .levels
            .iter()
            .map(|tables| tables.iter().map(|t| table_info(t)).collect())
            .collect();
        let opts = &self.opts.compaction;
        let task = if everything {
            picker::pick_everything(&levels, opts)
        } else {
            match opts.strategy {
                CompactionStrategy::Leveled => {
                    picker::pick_leveled(&levels, opts, &mut self.compact_pointers.lock())
                }
                CompactionStrategy::SizeTiered => picker::pick_size_tiered(&levels[0], opts),
            }
        };
        let Some(mut task) = task else {
            return Ok(false);
        };
        let ids: HashSet<u64> = task.inputs.iter().map(|&(_, id)| id).collect();
        let inputs: Vec<Arc<Table>> = version
            .tables()
            .filter(|(_, t)| ids.contains(&t.id()))
            .map(|(_, t)| Arc::clone(t))
            .collect();
        task.bottommost &= nothing_older_outside(&version, &inputs, &ids);
        self.run_task(&task, &inputs)?;
        Ok(true)
    }

    fn run_task(&self, task: &Task, inputs: &[Arc<Table>]) -> Result<()> {
        let started = Instant::now();
        let snapshots: Vec<SeqNo> = self.snapshots.lock().keys().copied().collect();
        let next_id = || self.next_file_id.fetch_add(1, Ordering::SeqCst);
        let ctx = JobContext {
            tables_dir: &self.tables_dir,
            table_options: self.table_options(),
            next_file_id: &next_id,
            cache: Arc::clone(&self.cache),
            counters: Arc::clone(&self.counters),
        };
        let out = job::run(inputs, task, &snapshots, &ctx)?;
        let ids: HashSet<u64> = inputs.iter().map(|t| t.id()).collect();
        {
            let mut manifest = self.manifest.lock();
            let mut next = manifest.clone();
            next.tables.retain(|t| !ids.contains(&t.id));
            for t in &out.tables {
                next.tables.push(table_entry(t, task.output_level as u32));
            }
            next.next_file_id = self.next_file_id.load(Ordering::SeqCst);
            if let Err(e) = next.store(&self.dir) {
                for t in &out.tables {
                    let _ = std::fs::remove_file(t.path());
                }
                return Err(e);
            }
            *manifest = next;
        }
        {
            let mut version = self.version.write();
            let mut levels = version.levels.clone();
            for tables in &mut levels {
                tables.retain(|t| !ids.contains(&t.id()));
            }
            levels[task.output_level].extend(out.tables.iter().cloned());
            sort_level(task.output_level, &mut levels[task.output_level]);
            let next: Version = version.with_levels(levels);
            *version = Arc::new(next);
        }
        for t in inputs {
            if let Err(e) = std::fs::remove_file(t.path()) {
                tracing::warn!(path = %t.path().display(), error = %e, "could not remove a compacted table");
            }
        }
        let c = &self.compaction_counters;
        c.compactions.fetch_add(1, Ordering::Relaxed);
        c.bytes_read.fetch_add(out.bytes_read, Ordering::Relaxed);
        c.bytes_written
            .fetch_add(out.bytes_written, Ordering::Relaxed);
        tracing::info!(
            reason = %task.reason,
            inputs = ?inputs.iter().map(|t| t.id()).collect::<Vec<_>>(),
            outputs = ?out.tables.iter().map(|t| t.id()).collect::<Vec<_>>(),
            output_level = task.output_level,
            bytes_in = out.bytes_read,
            bytes_out = out.bytes_written,
            versions_in = out.versions_in,
            versions_out = out.versions_out,
            bottommost = task.bottommost,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compaction"
        );
        let _signal = self.flush_signal.lock();
        self.flush_done.notify_all();
        Ok(())
    }

    /// See [`Db::compact_pending`](super::Db::compact_pending).
    pub(super) fn compact_pending(&self) -> Result<()> {
        self.check_open()?;
        self.wait_frozen_flushed()?;
        while self.compact_once(false)? {}
        Ok(())
    }

    /// Flushes, then merges every table into one sorted run, dropping every version no
    /// snapshot can read and every tombstone with nothing under it.
    pub(super) fn compact_all(&self) -> Result<()> {
        self.flush_and_wait()?;
        self.compact_once(true)?;
        Ok(())
    }
}

fn table_info(t: &Table) -> TableInfo {
    let p = t.properties();
    TableInfo {
        id: t.id(),
        size: p.file_size,
        smallest: p.smallest_key.clone(),
        largest: p.largest_key.clone(),
        min_seq: p.min_seq,
        max_seq: p.max_seq,
    }
}

/// True when no table outside the inputs overlaps their key range with data older than
/// their newest version: then a tombstone the merge leaves at the bottom hides nothing.
fn nothing_older_outside(version: &Version, inputs: &[Arc<Table>], ids: &HashSet<u64>) -> bool {
    let Some(lo) = inputs
        .iter()
        .map(|t| t.properties().smallest_key.as_slice())
        .min()
    else {
        return true;
    };
    let hi = inputs
        .iter()
        .map(|t| t.properties().largest_key.as_slice())
        .max()
        .unwrap_or_default();
    let newest = inputs
        .iter()
        .map(|t| t.properties().max_seq)
        .max()
        .unwrap_or(0);
    !version.tables().any(|(_, t)| {
        let p = t.properties();
        !ids.contains(&t.id())
            && p.min_seq < newest
            && p.smallest_key.as_slice() <= hi
            && p.largest_key.as_slice() >= lo
    })
}
