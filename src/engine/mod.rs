//! The storage engine: WAL, memtables, SSTables, manifest, iterators and snapshots.
//!
//! This layer is a synchronous library with its own typed [`Error`]. It knows nothing
//! of HTTP, JSON, indexes or WebAssembly; the layers above reach it through `Db`.

pub mod bloom;
pub mod coding;
pub mod compaction;
pub mod db;
pub mod error;
pub mod iter;
pub mod manifest;
pub mod memtable;
pub mod merge;
pub mod options;
mod prefetch;
pub mod sstable;
pub mod stats;
pub mod types;
pub mod wal;

pub use compaction::{CompactionOptions, CompactionStrategy};
pub use db::{
    Db, DbIterator, FileCheck, PendingCommit, QuarantinedTable, Snapshot, Stats, TableStats,
    VerifyReport,
};
pub use error::{Error, Result};
pub use options::{Options, SyncPolicy};
pub use types::{
    BatchOp, InternalKey, SeqNo, ValueKind, WriteBatch, MAX_BATCH_SIZE, MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
};
