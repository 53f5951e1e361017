//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cli;
pub mod guests;
pub mod http;
pub mod indexes;
pub mod plugins;

use std::path::Path;

use lsm::engine::{CompactionOptions, CompactionStrategy, Db, Options, SyncPolicy};

/// Options that make flushes and compactions frequent (tiny tables and levels) and skip
/// fsync, for fast tests of logic.
pub fn small_options() -> Options {
    Options {
        memtable_max_size: 4096,
        block_size: 256,
        sync: SyncPolicy::Never,
        compaction: small_compaction(CompactionStrategy::Leveled),
        ..Options::default()
    }
}

/// Compaction knobs scaled down so a few thousand keys use several levels.
pub fn small_compaction(strategy: CompactionStrategy) -> CompactionOptions {
    CompactionOptions {
        strategy,
        l0_trigger: 4,
        l0_slowdown: 8,
        l0_stop: 12,
        base_level_size: 32 * 1024,
        level_size_ratio: 4,
        target_table_size: 8 * 1024,
        ..CompactionOptions::default()
    }
}

/// Opens `dir` with [`small_options`].
pub fn open_small(dir: &Path) -> Db {
    Db::open(dir, small_options()).expect("open")
}

/// Every `(key, value)` of an iterator, failing the test on an error.
pub fn collect(
    it: impl Iterator<Item = lsm::engine::Result<(String, Vec<u8>)>>,
) -> Vec<(String, Vec<u8>)> {
    it.map(|r| r.expect("iteration")).collect()
}

/// The `.sst` files in `dir/tables`.
pub fn table_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("tables"))
        .expect("tables dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    v.sort();
    v
}

/// The `.wal` files in `dir/wal`.
pub fn wal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// A scratch directory for tests of logic rather than durability: on tmpfs when the
/// machine has one (fsync is free there, so thousands of flushes and reopens stay
/// fast), else in the system temp directory.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("tempdir")
}
