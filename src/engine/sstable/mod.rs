//! SSTables: immutable sorted files of versions, written once by [`TableWriter`] and read
//! by [`Table`]. The byte layout is described in docs/format.md ("SSTable format").
//!
//! - `block`: prefix-compressed blocks with restart points, and the block trailer.
//! - `bloom`: the per-table bloom filter over user keys.
//! - `footer`: block handles and the fixed-size footer (magic, version, checksum).
//! - `index`: the in-memory index of an open table (last key and handle of each block).
//! - `properties`: counts, key and sequence ranges, sizes.
//! - `writer` / `reader` / `verify`: writing, reading and checking a whole table.
//! - `cache`: the block cache shared by the tables of one database.
//!
//! Deciding which tables exist, naming their files and syncing their directory belong to
//! the layers above.

mod block;
mod bloom;
mod cache;
mod footer;
mod index;
mod properties;
mod reader;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

pub use block::Block;
pub use cache::{new_block_cache, BlockCache, BlockWeighter};
pub use footer::{FOOTER_LEN, FORMAT_VERSION, TABLE_MAGIC};
pub use properties::TableProperties;
pub use reader::{Probe, Table, TableIterator};
pub use writer::{TableOptions, TableWriter};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::engine::iter::InternalIterator;
use crate::engine::stats::ReadCounters;
use crate::engine::types::MAX_SEQNO;

/// Opens `data` as a table file and exercises it (iteration, lookups, verification),
/// ignoring every error. For fuzzing: it must never panic, whatever the bytes.
#[doc(hidden)]
pub fn fuzz_table_bytes(data: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("lsm-fuzz-{}-{n}.sst", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        exercise_table(&path);
    }
    let _ = std::fs::remove_file(&path);
}

/// Opens the table at `path` and reads everything it can, swallowing errors.
fn exercise_table(path: &std::path::Path) {
    let cache = new_block_cache(1 << 20);
    let Ok(table) = Table::open(path, 0, cache, Arc::new(ReadCounters::default())) else {
        return;
    };
    let mut keys = Vec::new();
    let mut it = table.iter();
    let mut step = it.seek_to_first();
    while step.is_ok() && it.valid() && keys.len() < 100_000 {
        keys.push((it.user_key().to_vec(), it.seq()));
        let _ = (it.kind(), it.value());
        step = it.next();
    }
    for (key, seq) in keys.iter().step_by(7) {
        let _ = table.get(key, *seq);
        let _ = table.get(key, MAX_SEQNO);
        let _ = it.seek(key, *seq);
    }
    let batch: Vec<(&[u8], crate::engine::bloom::KeyHash)> = keys
        .iter()
        .step_by(3)
        .map(|(k, _)| (k.as_slice(), crate::engine::bloom::KeyHash::of(k)))
        .collect();
    let _ = table.get_many(&batch, MAX_SEQNO);
    let _ = table.get(b"", MAX_SEQNO);
    let _ = it.seek(b"\xff\xff", 0);
    let _ = table.overlaps(b"a", Some(b"z"));
    let _ = table.verify();
}
