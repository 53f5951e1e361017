//! Options that shape one database: memtable size, WAL sync policy, table layout, cache.

use std::time::Duration;

use super::compaction::CompactionOptions;
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
