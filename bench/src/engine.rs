//! The operations every benchmarked engine provides (`engines.rs` opens them).

use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;

/// The engines this binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum EngineKind {
    /// This repository's engine.
    Lsm,
    /// fjall 3.x.
    Fjall,
    /// RocksDB through the `rocksdb` crate (only with the `rocksdb` cargo feature).
    #[cfg(feature = "rocksdb")]
    Rocksdb,
}

/// The engines run when `--engines` is not given: every engine compiled in.
#[cfg(not(feature = "rocksdb"))]
pub const DEFAULT_ENGINES: &str = "lsm,fjall";
/// The engines run when `--engines` is not given: every engine compiled in.
#[cfg(feature = "rocksdb")]
pub const DEFAULT_ENGINES: &str = "lsm,fjall,rocksdb";

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Lsm => "lsm",
            EngineKind::Fjall => "fjall",
            #[cfg(feature = "rocksdb")]
            EngineKind::Rocksdb => "rocksdb",
        }
    }
}

/// Which of fjall's fsyncing persist modes a durable write uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FjallSync {
    /// `PersistMode::SyncAll`: fsync (data and metadata).
    All,
    /// `PersistMode::SyncData`: fdatasync, as lsm's `SyncPolicy::Always` does.
    Data,
}

/// Durability of the writes of one open database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Each write reaches the operating system (survives a process crash) but is not
    /// fsynced.
    Buffered,
    /// Each write is on stable storage before it returns.
    Synced,
}

/// Settings applied to every engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub block_cache_bytes: u64,
    pub memtable_bytes: u64,
    pub fjall_sync: FjallSync,
}

/// How an engine reports its table layout and write amplification (overwrite report).
#[derive(Debug, Clone)]
pub struct Shape {
    /// Live tables (SSTables), when the engine says.
    pub tables: Option<u64>,
    /// Bytes written to tables per byte flushed from memtables, when the engine has the
    /// counters for it.
    pub write_amplification: Option<f64>,
    /// Where `write_amplification` comes from (or why there is none).
    pub write_amplification_source: &'static str,
}

/// One open database of one engine.
///
/// Every method reports engine errors as they are; the benchmark stops on the first.
pub trait Engine: Send + Sync {
    /// Writes one key (durability as chosen at open: see [`Durability`]).
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Writes one key and makes it durable before returning. The database must have
    /// been opened with [`Durability::Synced`].
    fn sync_put(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Writes all `items` as one atomic batch.
    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> Result<()>;

    /// Looks `key` up; when found, hands the value to `check` and returns true.
    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8])) -> Result<bool>;

    /// Reads every key/value pair whose key starts with `prefix` and returns how many
    /// there were.
    fn prefix_count(&self, prefix: &[u8]) -> Result<usize>;

    /// Closes the database the way the engine documents it and opens it again.
    /// Returns the time taken by the close and by the open.
    fn reopen(&mut self) -> Result<(Duration, Duration)>;

    /// Closes the database.
    fn close(self: Box<Self>) -> Result<()>;

    /// Table count and write amplification as the engine reports them.
    fn shape(&self) -> Result<Shape>;

    /// Merges every table into the last level, if the engine offers that; returns
    /// false when it does not.
    fn compact_all(&self) -> Result<bool> {
        Ok(false)
    }

    /// One line about the engine's internal state (tables, syncs, ...), for the notes.
    fn state(&self) -> String;
}

/// What a write does about durability, per engine, for the report.
pub fn durability_note(kind: EngineKind, cfg: &EngineConfig) -> String {
    match kind {
        EngineKind::Lsm => "lsm: non-durable workloads use `SyncPolicy::Never` (each write is \
             one `write` to the WAL file, no fsync); syncwrite uses `SyncPolicy::Always` \
             (fdatasync before acknowledging, shared by concurrent writers: group commit)"
            .to_string(),
        EngineKind::Fjall => {
            let mode = match cfg.fjall_sync {
                FjallSync::All => "`Database::persist(PersistMode::SyncAll)` (fsync)",
                FjallSync::Data => "`Database::persist(PersistMode::SyncData)` (fdatasync)",
            };
            format!(
                "fjall: non-durable workloads use its default (each insert/batch is flushed \
                 to the OS with `PersistMode::Buffer`, no fsync); syncwrite calls \
                 {mode} after each insert"
            )
        }
        #[cfg(feature = "rocksdb")]
        EngineKind::Rocksdb => "rocksdb: WAL on; non-durable workloads use \
             `WriteOptions::set_sync(false)` (each write reaches the OS, no fsync); syncwrite \
             uses `set_sync(true)` (fsync before acknowledging, group commit among \
             concurrent writers); default leveled compaction, no compression, \
             10 bits/key bloom filter"
            .to_string(),
    }
}
