//! Options that shape one database: memtable size, WAL sync policy, table layout, cache.

use std::time::Duration;

use super::error::{Error, Result};

/// When the WAL is forced to stable storage.
///
/// Under every policy a write has been handed to the operating system before it is
/// acknowledged, so it survives a crash of the process. Only [`SyncPolicy::Always`]
/// also survives a power loss or kernel crash for every acknowledged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync (fdatasync) before acknowledging; concurrent writers share one fsync
    /// (group commit).
    Always,
    /// A background thread fsyncs the WAL at this interval; a power loss can lose the
    /// writes of the last interval.
    Periodic(Duration),
    /// Never fsync the WAL explicitly; the OS writes it back when it chooses.
    Never,
}

/// Options for [`Db::open`](super::Db::open).
#[derive(Debug, Clone)]
pub struct Options {
    /// Size in bytes at which the active memtable is frozen and flushed (default 32 MiB).
    pub memtable_max_size: usize,
    /// Frozen memtables allowed to wait for their flush before writers stall (default 2).
    pub max_immutable_memtables: usize,
    /// WAL sync policy (default [`SyncPolicy::Always`]).
    pub sync: SyncPolicy,
    /// Target size of an SSTable data block in bytes (default 4096).
    pub block_size: usize,
    /// Bloom filter bits per key (default 10, about 1% false positives; 0 disables).
    pub bloom_bits_per_key: u32,
    /// Capacity of the shared block cache in bytes (default 64 MiB).
    pub block_cache_size: u64,
    /// Create the directory when it does not exist (default true).
    pub create_if_missing: bool,
    /// Compaction strategy and knobs.
    pub compaction: CompactionOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            memtable_max_size: 32 * 1024 * 1024,
            max_immutable_memtables: 2,
            sync: SyncPolicy::Always,
            block_size: 4096,
            bloom_bits_per_key: 10,
            block_cache_size: 64 * 1024 * 1024,
            create_if_missing: true,
            compaction: CompactionOptions::default(),
        }
    }
}

impl Options {
    /// Rejects inconsistent values with a message naming the option.
    pub fn validate(&self) -> Result<()> {
        if self.memtable_max_size < 4096 {
            return Err(Error::InvalidOption(format!(
                "memtable_max_size must be at least 4096 bytes, got {}",
                self.memtable_max_size
            )));
        }
        if self.max_immutable_memtables == 0 {
            return Err(Error::InvalidOption(
                "max_immutable_memtables must be at least 1".into(),
            ));
        }
        if !(256..=(1 << 20)).contains(&self.block_size) {
            return Err(Error::InvalidOption(format!(
                "block_size must be between 256 bytes and 1 MiB, got {}",
                self.block_size
            )));
        }
        if self.bloom_bits_per_key > 64 {
            return Err(Error::InvalidOption(format!(
                "bloom_bits_per_key must be at most 64, got {}",
                self.bloom_bits_per_key
            )));
        }
        self.compaction.validate()?;
        if let SyncPolicy::Periodic(d) = self.sync {
            if d.is_zero() {
                return Err(Error::InvalidOption(
                    "a periodic sync interval must be greater than zero".into(),
                ));
            }
        }
        Ok(())
    }
}

/// How tables are organised and merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionStrategy {
    /// L0 plus levels of non-overlapping tables, each `level_size_ratio` times larger:
    /// low space and read amplification (the default).
    Leveled,
    /// Sorted runs of similar size merged together: lower write amplification, more
    /// space and read amplification.
    SizeTiered,
}

/// Knobs of compaction.
#[derive(Debug, Clone)]
pub struct CompactionOptions {
    /// Strategy (default leveled).
    pub strategy: CompactionStrategy,
    /// Number of L0 tables (leveled) or of similar runs (size-tiered) that triggers a
    /// compaction: the user's `max_sstables_before_compact` (default 4).
    pub l0_trigger: usize,
    /// L0 tables at which writes are slowed down (default 20).
    pub l0_slowdown: usize,
    /// L0 tables at which writes stop until compaction catches up (default 36).
    pub l0_stop: usize,
    /// Target size of L1 in bytes (default 256 MiB).
    pub base_level_size: u64,
    /// Size ratio between consecutive levels (default 10).
    pub level_size_ratio: u64,
    /// Size of the tables a leveled compaction writes (default 64 MiB).
    pub target_table_size: u64,
    /// Number of levels, L0 included (default 7).
    pub max_levels: usize,
    /// Size-tiered: runs whose sizes are within this factor of each other are "similar"
    /// (default 2).
    pub size_tiered_ratio: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            strategy: CompactionStrategy::Leveled,
            l0_trigger: 4,
            l0_slowdown: 20,
            l0_stop: 36,
            base_level_size: 256 << 20,
            level_size_ratio: 10,
            target_table_size: 64 << 20,
            max_levels: 7,
            size_tiered_ratio: 2,
        }
    }
}

impl CompactionOptions {
    /// Rejects inconsistent knobs with a message naming the option.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidOption(m));
        if self.l0_trigger < 2 {
            return bad(format!(
                "max_sstables_before_compact (l0_trigger) must be at least 2, got {}",
                self.l0_trigger
            ));
        }
        if self.l0_slowdown <= self.l0_trigger || self.l0_stop < self.l0_slowdown {
            return bad(format!(
                "need l0_trigger < l0_slowdown <= l0_stop, got {} / {} / {}",
                self.l0_trigger, self.l0_slowdown, self.l0_stop
            ));
        }
        if !(2..=16).contains(&self.max_levels) {
            return bad(format!(
                "max_levels must be between 2 and 16, got {}",
                self.max_levels
            ));
        }
        if self.level_size_ratio < 2 || self.size_tiered_ratio < 1 {
            return bad(
                "level_size_ratio must be at least 2 and size_tiered_ratio at least 1".into(),
            );
        }
        if self.target_table_size < 4096 || self.base_level_size < self.target_table_size {
            return bad(format!(
                "need 4096 <= target_table_size <= base_level_size, got {} / {}",
                self.target_table_size, self.base_level_size
            ));
        }
        Ok(())
    }
}
