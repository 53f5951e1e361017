//! Compaction keeps a database that is written and overwritten without end within
//! bounds: the number of tables, the space taken by overwritten and deleted data, and
//! correct reads throughout, under both strategies; snapshots keep what they read.

mod common;

use std::time::Duration;

use lsm::engine::{CompactionStrategy, Db, Options, SyncPolicy};

const KEYS: u32 = 2000;
const VALUE: usize = 50;

fn options(strategy: CompactionStrategy) -> Options {
    Options {
        memtable_max_size: 16 * 1024,
        block_size: 512,
        sync: SyncPolicy::Never,
        compaction: common::small_compaction(strategy),
        ..Options::default()
    }
}

fn value(round: u32, i: u32) -> Vec<u8> {
    let mut v = format!("{round}:{i}:").into_bytes();
    v.resize(VALUE, b'.');
    v
}

fn overwrite_many_times(strategy: CompactionStrategy, max_tables: u64) {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), options(strategy)).expect("open");
    let live_bytes = u64::from(KEYS) * (VALUE as u64 + 10);
    let rounds = 20;
    let (mut peak_tables, mut early_peak) = (0, 0);
    for round in 0..rounds {
        for i in 0..KEYS {
            db.put(
                format!("key:{:05}", (i * 7919) % KEYS),
                value(round, (i * 7919) % KEYS),
            )
            .expect("put");
        }
        let s = db.stats();
        peak_tables = peak_tables.max(s.tables);
        if round < rounds / 2 {
            early_peak = peak_tables;
        }
        for i in (0..KEYS).step_by(97) {
            assert_eq!(
                db.get(format!("key:{i:05}")).expect("get"),
                Some(value(round, i))
            );
        }
    }
    let written = u64::from(rounds) * live_bytes;
    let flushed_tables = written / (16 * 1024);
    assert!(
        flushed_tables > 100,
        "the test must write many memtables' worth"
    );
    // The table count stabilises: the second half of the run, with as much again
    // written, does not push it higher than the first half did, give or take L0,
    // which fills and empties between compactions (up to l0_stop = 12 tables).
    assert!(
        peak_tables <= early_peak + 12,
        "tables kept growing: {early_peak} -> {peak_tables}"
    );
    db.flush().expect("flush");
    db.compact_pending().expect("compact pending");
    let s = db.stats();
    assert!(s.compactions > 0, "{s:?}");
    assert!(
        peak_tables <= max_tables,
        "table count reached {peak_tables} (bound {max_tables})"
    );
    assert!(s.tables <= max_tables, "{s:?}");
    // Overwritten versions were reclaimed: far less on disk than was written.
    assert!(
        s.table_bytes < 4 * live_bytes,
        "{} bytes on disk for {live_bytes} live",
        s.table_bytes
    );
    assert!(s.write_amplification >= 1.0);
    let all = common::collect(db.iter().expect("iter"));
    assert_eq!(all.len(), KEYS as usize);
    for (k, v) in &all {
        let i: u32 = k["key:".len()..].parse().expect("key number");
        assert_eq!(v, &value(rounds - 1, i));
    }

    // A full compaction brings the data down to about its live size...
    db.compact().expect("compact");
    let s = db.stats();
    assert!(
        s.table_bytes < 2 * live_bytes,
        "{} bytes after compact for {live_bytes} live",
        s.table_bytes
    );
    assert_eq!(
        s.table_entries,
        u64::from(KEYS),
        "one version per key after compact"
    );
    // ...and deleting everything then compacting leaves nothing at all.
    for i in 0..KEYS {
        db.delete(format!("key:{i:05}")).expect("delete");
    }
    db.compact().expect("compact");
    let s = db.stats();
    assert_eq!(
        s.tables, 0,
        "tombstones with nothing under them are dropped: {s:?}"
    );
    assert_eq!(common::collect(db.iter().expect("iter")).len(), 0);
    db.close().expect("close");
    let db = Db::open(dir.path(), options(strategy)).expect("reopen");
    assert_eq!(db.stats().tables, 0);
    assert_eq!(db.get("key:00001").expect("get"), None);
}

#[test]
fn leveled_compaction_bounds_tables_and_space_under_overwrites() {
    // L0 may reach l0_stop (12); the deeper levels hold the live data (~120 KiB) in
    // 8 KiB tables, plus what is on its way down. Without compaction: ~150 tables.
    overwrite_many_times(CompactionStrategy::Leveled, 60);
}

#[test]
fn size_tiered_compaction_bounds_tables_and_space_under_overwrites() {
    // At most 2 x l0_trigger runs before the newest are merged anyway, plus the
    // merge in progress.
    overwrite_many_times(CompactionStrategy::SizeTiered, 20);
}

/// Puts 20,000 distinct keys in a scattered order, enough for several levels.
fn put_20_000_keys(db: &Db) {
    for i in 0..20_000u32 {
        db.put(format!("k{:06}", (i * 7919) % 20_000), [b'x'; 40])
            .expect("put");
    }
}

#[test]
fn compact_pending_leaves_no_compaction_due() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), options(CompactionStrategy::Leveled)).expect("open");
    put_20_000_keys(&db);
    db.compact_pending().expect("compact pending");
    let s = db.stats();
    assert_eq!(s.immutable_memtables, 0);
    assert!(s.compactions > 0);
    let trigger = common::small_compaction(CompactionStrategy::Leveled).l0_trigger;
    assert!(
        (s.tables_per_level[0] as usize) < trigger,
        "{:?}",
        s.tables_per_level
    );
    // The background thread finds nothing to do either.
    std::thread::sleep(Duration::from_millis(500));
    let later = db.stats();
    assert_eq!(later.compactions, s.compactions);
    assert_eq!(later.tables_per_level, s.tables_per_level);
    assert_eq!(common::collect(db.iter().expect("iter")).len(), 20_000);
    db.close().expect("close");
}

#[test]
fn leveled_levels_are_disjoint_and_hold_the_data_at_the_bottom() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), options(CompactionStrategy::Leveled)).expect("open");
    put_20_000_keys(&db);
    db.flush().expect("flush");
    db.compact_pending().expect("compact pending");
    let s = db.stats();
    // Levels are sized from the bottom: most bytes sit in the last level.
    let tables = db.stats_all();
    let last = s.tables_per_level.len() as u32 - 1;
    let bottom: u64 = tables
        .iter()
        .filter(|t| t.level == last)
        .map(|t| t.file_size)
        .sum();
    assert!(bottom * 2 > s.table_bytes, "{:?}", s.tables_per_level);
    assert!(s.space_amplification < 2.0, "{}", s.space_amplification);
    // Levels below L0 hold disjoint key ranges.
    for level in 1..s.tables_per_level.len() as u32 {
        let mut ranges: Vec<_> = tables.iter().filter(|t| t.level == level).collect();
        ranges.sort_by(|a, b| a.smallest_key.cmp(&b.smallest_key));
        for w in ranges.windows(2) {
            assert!(
                w[0].largest_key < w[1].smallest_key,
                "L{level} tables overlap"
            );
        }
    }
    assert_eq!(common::collect(db.iter().expect("iter")).len(), 20_000);
}

#[test]
fn snapshots_keep_their_versions_through_compaction() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), options(CompactionStrategy::Leveled)).expect("open");
    for i in 0..500u32 {
        db.put(format!("k{i:04}"), b"old").expect("put");
    }
    let snap = db.snapshot();
    for i in 0..500u32 {
        if i % 2 == 0 {
            db.put(format!("k{i:04}"), b"new").expect("put");
        } else {
            db.delete(format!("k{i:04}")).expect("delete");
        }
    }
    db.compact().expect("compact");
    for i in (0..500u32).step_by(7) {
        assert_eq!(
            snap.get(format!("k{i:04}")).expect("get"),
            Some(b"old".to_vec())
        );
    }
    assert_eq!(
        common::collect(snap.iter_prefix("k").expect("iter")).len(),
        500
    );
    assert_eq!(
        common::collect(db.iter_prefix("k").expect("iter")).len(),
        250
    );
    let with_snapshot = db.stats().table_entries;
    drop(snap);
    db.compact().expect("compact");
    let s = db.stats();
    assert_eq!(
        s.table_entries, 250,
        "old versions go once no snapshot needs them"
    );
    assert!(with_snapshot > s.table_entries);
}

#[test]
fn compaction_reads_bypass_the_block_cache() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), options(CompactionStrategy::Leveled)).expect("open");
    for i in 0..3000u32 {
        db.put(format!("k{i:05}"), [b'v'; 40]).expect("put");
    }
    db.flush().expect("flush");
    db.compact_pending().expect("compact pending");
    let before = db.stats();
    db.compact().expect("compact");
    let after = db.stats();
    assert!(after.compactions > before.compactions);
    // The merge read every block of its inputs without touching the cache or the read
    // counters, which describe the application's reads.
    assert_eq!(after.blocks_read, before.blocks_read);
    assert_eq!(after.blocks_read_from_disk, before.blocks_read_from_disk);
    assert_eq!(common::collect(db.iter().expect("iter")).len(), 3000);
}
