//! What `Db::stats` and `Db::stats_all` report.

use std::path::PathBuf;

use serde::Serialize;

/// A table moved aside because it failed its checksum or format check on open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedTable {
    /// Where the table lived.
    pub original_path: PathBuf,
    /// Where it is now (inside the `quarantine/` folder), if the file still existed.
    pub quarantine_path: Option<PathBuf>,
    /// Why it was quarantined.
    pub reason: String,
}

/// Statistics of one database.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Bytes held by the active memtable (estimate).
    pub memtable_bytes: u64,
    /// Versions (puts and tombstones) in the active memtable.
    pub memtable_entries: u64,
    /// Frozen memtables waiting for their flush.
    pub immutable_memtables: u64,
    /// Bytes held by frozen memtables (estimate).
    pub immutable_memtable_bytes: u64,
    /// Live tables.
    pub tables: u64,
    /// Live tables in each level, L0 first.
    pub tables_per_level: Vec<u64>,
    /// Bytes of all live tables on disk.
    pub table_bytes: u64,
    /// Versions stored in tables (puts and tombstones; a key overwritten in several
    /// tables counts once per table).
    pub table_entries: u64,
    /// Tombstones stored in tables.
    pub table_deletions: u64,
    /// Upper bound on the number of live keys: every version in memtables and tables.
    pub approximate_keys: u64,
    /// WAL segment files.
    pub wal_segments: u64,
    /// Bytes in WAL segment files.
    pub wal_bytes: u64,
    /// The sequence number of the latest acknowledged write.
    pub last_seq: u64,
    /// Data blocks read (from the cache or from disk).
    pub blocks_read: u64,
    /// Data blocks read from disk (block cache misses).
    pub blocks_read_from_disk: u64,
    /// Point lookups a bloom filter answered "absent" (a table not read).
    pub bloom_negatives: u64,
    /// Point lookups that passed a bloom filter and found the key.
    pub bloom_true_positives: u64,
    /// Point lookups that passed a bloom filter but missed.
    pub bloom_false_positives: u64,
    /// Range reads (iterators over keys) opened: scans, prefix reads, index range
    /// queries. An equality query opens none.
    pub range_reads: u64,
    /// Write batches acknowledged since open.
    pub writes: u64,
    /// Group commits (WAL appends) since open; `writes / wal_appends` is the mean group.
    pub wal_appends: u64,
    /// WAL fsyncs since open.
    pub wal_syncs: u64,
    /// Memtables flushed since open.
    pub flushes: u64,
    /// Times writers had to stop: too many frozen memtables, or L0 at `l0_stop`.
    pub write_stalls: u64,
    /// Write groups delayed by 1 ms because L0 reached `l0_slowdown`.
    pub write_slowdowns: u64,
    /// Compactions run since open.
    pub compactions: u64,
    /// Bytes of tables read by compactions since open.
    pub compaction_bytes_read: u64,
    /// Bytes of tables written by compactions since open.
    pub compaction_bytes_written: u64,
    /// Bytes of tables written by flushes since open.
    pub flush_bytes_written: u64,
    /// Bytes written to tables (flushes + compactions) per byte flushed, since open.
    pub write_amplification: f64,
    /// Bytes of all tables per byte of the deepest non-empty level (an estimate of
    /// disk bytes per live byte: the deepest level holds one version of most keys).
    pub space_amplification: f64,
    /// Tables quarantined (moved to `quarantine/`), now or on an earlier open.
    pub quarantined: Vec<QuarantinedTable>,
    /// The last background error (for example a failed flush), if any.
    pub background_error: Option<String>,
}

/// Statistics of one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableStats {
    /// File id.
    pub id: u64,
    /// LSM level.
    pub level: u32,
    /// Path of the file.
    pub path: PathBuf,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// Versions stored (puts and tombstones).
    pub entries: u64,
    /// Tombstones stored.
    pub deletions: u64,
    /// Data blocks.
    pub data_blocks: u64,
    /// Smallest key.
    pub smallest_key: String,
    /// Largest key.
    pub largest_key: String,
    /// Smallest sequence number.
    pub min_seq: u64,
    /// Largest sequence number.
    pub max_seq: u64,
    /// Data blocks of this table read since open.
    pub blocks_read: u64,
}

impl super::Inner {
    pub(super) fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;

        use super::super::stats::ReadCounters as C;

        let version = self.current_version();
        let mut s = Stats {
            memtable_bytes: version.active.approximate_size() as u64,
            memtable_entries: version.active.len(),
            immutable_memtables: version.immutables.len() as u64,
            immutable_memtable_bytes: version
                .immutables
                .iter()
                .map(|m| m.approximate_size() as u64)
                .sum(),
            tables: version.table_count() as u64,
            tables_per_level: version.levels.iter().map(|l| l.len() as u64).collect(),
            last_seq: self.visible_seq(),
            blocks_read: C::load(&self.counters.blocks_read),
            blocks_read_from_disk: C::load(&self.counters.blocks_read_from_disk),
            bloom_negatives: C::load(&self.counters.bloom_negatives),
            bloom_true_positives: C::load(&self.counters.bloom_true_positives),
            bloom_false_positives: C::load(&self.counters.bloom_false_positives),
            range_reads: C::load(&self.counters.range_reads),
            writes: self.write_counters.writes.load(Relaxed),
            wal_appends: self.write_counters.wal_appends.load(Relaxed),
            wal_syncs: self.write_counters.wal_syncs.load(Relaxed),
            flushes: self.write_counters.flushes.load(Relaxed),
            write_stalls: self.write_counters.write_stalls.load(Relaxed),
            write_slowdowns: self.compaction_counters.slowdowns.load(Relaxed),
            compactions: self.compaction_counters.compactions.load(Relaxed),
            compaction_bytes_read: self.compaction_counters.bytes_read.load(Relaxed),
            compaction_bytes_written: self.compaction_counters.bytes_written.load(Relaxed),
            flush_bytes_written: self.compaction_counters.bytes_flushed.load(Relaxed),
            quarantined: self.quarantined.lock().clone(),
            background_error: self.background_error.lock().clone(),
            ..Stats::default()
        };
        for (_, table) in version.tables() {
            let p = table.properties();
            s.table_bytes += p.file_size;
            s.table_entries += p.entries;
            s.table_deletions += p.deletions;
        }
        if s.flush_bytes_written > 0 {
            s.write_amplification = (s.flush_bytes_written + s.compaction_bytes_written) as f64
                / s.flush_bytes_written as f64;
        }
        let deepest: u64 = version
            .levels
            .iter()
            .rev()
            .map(|l| l.iter().map(|t| t.properties().file_size).sum::<u64>())
            .find(|&b| b > 0)
            .unwrap_or(0);
        if deepest > 0 {
            s.space_amplification = s.table_bytes as f64 / deepest as f64;
        }
        let mem_entries: u64 = version.memtables_newest_first().map(|m| m.len()).sum();
        s.approximate_keys = s.table_entries + mem_entries;
        (s.wal_segments, s.wal_bytes) = self.wal_totals();
        s
    }

    pub(super) fn table_stats(&self) -> Vec<TableStats> {
        self.current_version()
            .tables()
            .map(|(level, t)| {
                let p = t.properties();
                TableStats {
                    id: t.id(),
                    level: level as u32,
                    path: t.path().to_path_buf(),
                    file_size: p.file_size,
                    entries: p.entries,
                    deletions: p.deletions,
                    data_blocks: p.data_blocks,
                    smallest_key: String::from_utf8_lossy(&p.smallest_key).into_owned(),
                    largest_key: String::from_utf8_lossy(&p.largest_key).into_owned(),
                    min_seq: p.min_seq,
                    max_seq: p.max_seq,
                    blocks_read: t.blocks_read(),
                }
            })
            .collect()
    }
}
