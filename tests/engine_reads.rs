//! Reads are lazy: a prefix read of 100 keys, or a point read, touches only the blocks
//! that hold them, not the whole database (checked with the engine's block counters).

mod common;

use lsm::engine::{CompactionOptions, Db, Options, SyncPolicy};

fn filled(dir: &std::path::Path, interleaved: bool) -> Db {
    let db = Db::open(
        dir,
        Options {
            memtable_max_size: 1 << 20,
            sync: SyncPolicy::Never,
            // No background compaction: the test counts blocks against a fixed layout
            // of overlapping flushed tables, the worst case for a prefix read.
            compaction: CompactionOptions {
                l0_trigger: 1000,
                l0_slowdown: 1001,
                l0_stop: 1002,
                ..CompactionOptions::default()
            },
            ..Options::default()
        },
    )
    .expect("open");
    for i in 0..50_000u32 {
        // Interleaved fills spread every prefix over every table.
        let n = if interleaved { (i * 7919) % 50_000 } else { i };
        db.put(format!("user:{n:06}"), vec![b'v'; 100])
            .expect("put");
    }
    db.flush().expect("flush");
    db
}

#[test]
fn a_prefix_read_of_100_keys_touches_only_their_blocks() {
    for interleaved in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = filled(dir.path(), interleaved);
        let stats = db.stats();
        let total_blocks: u64 = db.stats_all().iter().map(|t| t.data_blocks).sum();
        assert!(
            stats.tables >= 4,
            "want several tables, got {}",
            stats.tables
        );
        assert!(
            total_blocks > 1000,
            "want a database of many blocks, got {total_blocks}"
        );

        let before = db.stats().blocks_read;
        let keys: Vec<String> = db
            .iter_prefix("user:0123")
            .expect("prefix")
            .map(|r| r.expect("item").0)
            .collect();
        let touched = db.stats().blocks_read - before;
        assert_eq!(keys.len(), 100);
        assert_eq!(keys[0], "user:012300");
        // 100 keys of ~110 bytes fill about 3 blocks of 4 KiB. Each table whose range
        // holds the prefix may add a partial block at the start, one for its share of
        // the keys, and one read past the end of the range.
        let bound = 4 + 3 * stats.tables;
        assert!(
            touched <= bound,
            "prefix read of 100 keys touched {touched} blocks (bound {bound}, database {total_blocks})"
        );

        // Stopping early reads even less: the block each table's seek lands in, plus at
        // most one more for each item taken (moving its table past the item may cross
        // into the table's next block).
        let before = db.stats().blocks_read;
        let first: Vec<_> = db.iter_prefix("user:04").expect("prefix").take(3).collect();
        assert_eq!(first.len(), 3);
        let touched = db.stats().blocks_read - before;
        assert!(
            touched <= stats.tables + 3,
            "3 keys touched {touched} blocks in {} tables",
            stats.tables
        );
    }
}

#[test]
fn a_get_reads_at_most_one_block_per_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled(dir.path(), true);
    let tables = db.stats().tables;
    for i in (0..50_000u32).step_by(997) {
        let before = db.stats().blocks_read;
        assert!(db.get(format!("user:{i:06}")).expect("get").is_some());
        let touched = db.stats().blocks_read - before;
        assert!(
            touched <= tables,
            "get touched {touched} blocks with {tables} tables"
        );
        assert!(touched >= 1);
    }
    // A missing key is mostly answered by bloom filters, without reading blocks.
    let before = db.stats();
    for i in 0..1000u32 {
        assert_eq!(
            db.get(format!("user:{:06}-missing", i * 37)).expect("get"),
            None
        );
    }
    let after = db.stats();
    assert!(after.blocks_read - before.blocks_read < 1000 * tables / 20);
    assert!(after.bloom_negatives - before.bloom_negatives > 900 * tables);
}

#[test]
fn get_if_cached_answers_without_io_or_says_it_cannot() {
    let dir = common::scratch_dir();
    // Small blocks, one table, no compaction moving keys to tables of other ids.
    let db = Db::open(
        dir.path(),
        Options {
            block_size: 256,
            sync: SyncPolicy::Never,
            compaction: CompactionOptions {
                l0_trigger: 1000,
                l0_slowdown: 1001,
                l0_stop: 1002,
                ..CompactionOptions::default()
            },
            ..Options::default()
        },
    )
    .expect("open");
    for i in 0..2000u32 {
        db.put(format!("k{i:05}"), format!("v{i}")).expect("put");
    }
    db.flush().expect("flush");
    db.put("mem", "in the memtable").expect("put");
    db.delete("k00007").expect("delete");

    // Memtable answers need no table.
    assert_eq!(
        db.get_if_cached("mem").expect("ok"),
        Some(Some(b"in the memtable".to_vec()))
    );
    assert_eq!(
        db.get_if_cached("k00007").expect("ok"),
        Some(None),
        "a tombstone"
    );

    // Every answer it gives is the answer of get; a miss in the cache is a None.
    let mut misses = 0;
    for i in (0..2000u32).step_by(37) {
        let key = format!("k{i:05}");
        match db.get_if_cached(&key).expect("ok") {
            Some(answer) => assert_eq!(answer, db.get(&key).expect("get"), "{key}"),
            None => misses += 1,
        }
        // get reads the block into the cache: now the answer needs no I/O.
        let expected = db.get(&key).expect("get");
        let before = db.stats();
        assert_eq!(db.get_if_cached(&key).expect("ok"), Some(expected), "{key}");
        let after = db.stats();
        assert_eq!(
            after.blocks_read_from_disk, before.blocks_read_from_disk,
            "{key}: no disk read"
        );
        assert_eq!(
            after.blocks_read,
            before.blocks_read + 1,
            "the lookup is counted"
        );
    }
    assert!(misses > 0, "fresh tables are not in the cache");
    // Keys no table can hold are answered at once.
    assert_eq!(db.get_if_cached("zzz").expect("ok"), Some(None));
    assert!(db.get_if_cached("").is_err(), "keys are still checked");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// A batched lookup answers exactly as one `get_versioned` per key, whatever holds
    /// the keys (the memtable, overlapping level-0 tables, deeper levels), with deletes,
    /// overwrites, absent and repeated keys, at the latest state and at an older
    /// snapshot.
    #[test]
    fn get_many_answers_as_single_gets(
        ops in proptest::collection::vec((0u16..400, proptest::option::of(0u8..255)), 1..600),
        probes in proptest::collection::vec(0u16..420, 1..150),
        cut in 0usize..600,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(
            dir.path(),
            Options { memtable_max_size: 16 << 10, sync: SyncPolicy::Never, ..Options::default() },
        )
        .expect("open");
        let mut old = None;
        for (n, (k, v)) in ops.iter().enumerate() {
            let key = format!("k{k:05}");
            match v {
                Some(v) => db.put(&key, vec![*v; 40]).expect("put"),
                None => db.delete(&key).expect("delete"),
            };
            if n == cut {
                old = Some(db.snapshot());
            }
            if n % 150 == 149 {
                db.flush().expect("flush");
            }
            if n == 300 {
                db.compact().expect("compact");
            }
        }
        let keys: Vec<String> = probes.iter().map(|p| format!("k{p:05}")).collect();
        for snap in [Some(db.snapshot()), old].into_iter().flatten() {
            let many = snap.get_many_versioned(&keys).expect("get_many");
            proptest::prop_assert_eq!(many.len(), keys.len());
            for (k, got) in keys.iter().zip(many) {
                proptest::prop_assert_eq!(got, snap.get_versioned(k).expect("get"), "{}", k);
            }
        }
    }
}
