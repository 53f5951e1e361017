//! The engine's public API: writes, reads, iterators, pagination, snapshots, limits,
//! the directory lock and statistics.

mod common;

use std::ops::Bound;

use lsm::engine::{Db, Error, Options, WriteBatch, MAX_KEY_SIZE, MAX_VALUE_SIZE};

#[test]
fn put_get_delete_and_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    let s1 = db.put("a", b"1").expect("put");
    let s2 = db.put("a", b"2").expect("put");
    assert!(s2 > s1, "sequence numbers grow");
    assert_eq!(db.get("a").expect("get"), Some(b"2".to_vec()));
    db.delete("a").expect("delete");
    assert_eq!(db.get("a").expect("get"), None);
    assert_eq!(db.get("never").expect("get"), None);
    db.put("empty", b"").expect("empty value");
    assert_eq!(db.get("empty").expect("get"), Some(Vec::new()));
}

#[test]
fn batches_are_atomic_and_get_consecutive_sequence_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = common::open_small(dir.path());
    db.put("gone", b"x").expect("put");
    let before = db.last_seq();
    let mut batch = WriteBatch::new();
    batch.put("b1", b"1").put("b2", b"2").delete("gone");
    let seq = db.write_batch(batch).expect("batch");
    assert_eq!(seq, before + 3);
    assert_eq!(db.get("b1").expect("get"), Some(b"1".to_vec()));
    assert_eq!(db.get("gone").expect("get"), None);

    // A batch with one bad key applies nothing.
    let mut bad = WriteBatch::new();
    bad.put("ok", b"1").put(vec![0xffu8, 0xfe], b"2");
    assert!(matches!(db.write_batch(bad), Err(Error::InvalidKey(_))));
    assert_eq!(db.get("ok").expect("get"), None);
}

#[test]
fn invalid_keys_and_values_get_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = common::open_small(dir.path());
    assert!(matches!(db.put("", b"v"), Err(Error::InvalidKey(_))));
    assert!(matches!(
        db.put([0xc3u8, 0x28], b"v"),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        db.put("k".repeat(MAX_KEY_SIZE + 1), b"v"),
        Err(Error::KeyTooLarge {
            max: MAX_KEY_SIZE,
            ..
        })
    ));
    assert!(matches!(
        db.put("k", vec![0u8; MAX_VALUE_SIZE + 1]),
        Err(Error::ValueTooLarge {
            max: MAX_VALUE_SIZE,
            ..
        })
    ));
    // The largest legal key and value work, across a flush.
    let big_key = "k".repeat(MAX_KEY_SIZE);
    db.put(&big_key, vec![7u8; 1 << 20]).expect("max key");
    db.flush().expect("flush");
    assert_eq!(
        db.get(&big_key).expect("get").map(|v| v.len()),
        Some(1 << 20)
    );
    assert_eq!(db.stats().quarantined.len(), 0);
}

#[test]
fn reads_see_memtables_and_tables_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = common::open_small(dir.path());
    for round in 0..5u32 {
        for i in 0..200u32 {
            db.put(format!("key{i:04}"), format!("{round}-{i}"))
                .expect("put");
        }
        if round % 2 == 0 {
            db.flush().expect("flush");
        }
    }
    for i in (0..200u32).step_by(3) {
        db.delete(format!("key{i:04}")).expect("delete");
    }
    let stats = db.stats();
    assert!(
        stats.tables >= 1 && stats.flushes >= 3,
        "expected data in several flushed tables (maybe compacted since), got {}",
        stats.tables
    );
    for i in 0..200u32 {
        let want = (i % 3 != 0).then(|| format!("4-{i}").into_bytes());
        assert_eq!(db.get(format!("key{i:04}")).expect("get"), want);
    }
    let all = common::collect(db.iter().expect("iter"));
    assert_eq!(all.len(), 200 - 67);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn ranges_prefixes_and_stable_pagination() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = common::open_small(dir.path());
    for i in 0..300u32 {
        db.put(format!("idx:city:{i:04}"), b"v").expect("put");
        db.put(format!("users:{i:04}"), b"u").expect("put");
    }
    db.flush().expect("flush");
    let prefix = common::collect(db.iter_prefix("idx:").expect("prefix"));
    assert_eq!(prefix.len(), 300);
    assert!(prefix.iter().all(|(k, _)| k.starts_with("idx:")));

    let range = common::collect(db.iter_range("users:0010".."users:0020").expect("range"));
    assert_eq!(range.len(), 10);
    assert_eq!(range[0].0, "users:0010");
    let incl = common::collect(db.iter_range("users:0010"..="users:0020").expect("range"));
    assert_eq!(incl.len(), 11);

    // Pages of 7 keys resuming after the last key: every key exactly once, even while
    // other writers insert keys before the cursor and delete keys behind it.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut page_no = 0;
    loop {
        let start = match &after {
            Some(a) => Bound::Excluded(a.clone()),
            None => Bound::Included("idx:".to_string()),
        };
        let page: Vec<_> = common::collect(
            db.iter_range((start, Bound::Excluded("idx;".to_string())))
                .expect("page")
                .take(7),
        );
        if page.is_empty() {
            break;
        }
        after = Some(page.last().expect("last").0.clone());
        seen.extend(page.into_iter().map(|(k, _)| k));
        db.put(format!("idx:city:0000-{page_no}"), b"late")
            .expect("insert behind");
        page_no += 1;
    }
    assert_eq!(seen.len(), 300);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn snapshots_see_exactly_the_writes_before_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = common::open_small(dir.path());
    db.put("a", b"1").expect("put");
    db.put("b", b"1").expect("put");
    let snap = db.snapshot();
    db.put("a", b"2").expect("put");
    db.delete("b").expect("delete");
    db.put("c", b"new").expect("put");
    db.flush().expect("flush");
    for i in 0..500u32 {
        db.put(format!("z{i}"), b"filler").expect("put");
    }
    assert_eq!(snap.get("a").expect("get"), Some(b"1".to_vec()));
    assert_eq!(snap.get("b").expect("get"), Some(b"1".to_vec()));
    assert_eq!(snap.get("c").expect("get"), None);
    let keys: Vec<String> = common::collect(snap.iter_range::<&str>(..).expect("iter"))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["a", "b"]);
    assert_eq!(db.get("a").expect("get"), Some(b"2".to_vec()));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path()),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("second open must fail"),
    }
    let msg = Db::open(dir.path(), Options::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("in use"), "{msg}");
    db.close().expect("close");
    Db::open(dir.path(), Options::default()).expect("open after close");
}

#[test]
fn bad_options_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        memtable_max_size: 10,
        ..Options::default()
    };
    assert!(matches!(
        Db::open(dir.path(), opts),
        Err(Error::InvalidOption(_))
    ));
}

#[test]
fn stats_report_memtable_tables_wal_and_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = common::open_small(dir.path());
    for i in 0..400u32 {
        db.put(format!("k{i:05}"), vec![b'x'; 50]).expect("put");
    }
    db.flush().expect("flush");
    db.put("in-memtable", b"1").expect("put");
    for i in 0..50u32 {
        db.get(format!("k{i:05}")).expect("get");
        db.get(format!("absent{i}")).expect("get");
    }
    let s = db.stats();
    assert!(s.tables >= 1);
    assert!(s.table_bytes > 400 * 50);
    assert_eq!(s.table_entries, 400);
    assert_eq!(s.memtable_entries, 1);
    assert!(s.wal_segments >= 1 && s.wal_bytes > 0);
    assert!(s.blocks_read >= 50, "blocks read: {}", s.blocks_read);
    assert!(
        s.bloom_negatives > 0,
        "absent keys should be answered by bloom filters"
    );
    assert!(s.bloom_true_positives >= 50);
    assert!(s.flushes >= 1);
    assert_eq!(s.last_seq, 401);
    let per_table = db.stats_all();
    assert_eq!(per_table.len() as u64, s.tables);
    assert_eq!(per_table.iter().map(|t| t.entries).sum::<u64>(), 400);
    assert!(per_table
        .iter()
        .all(|t| t.data_blocks > 0 && t.smallest_key <= t.largest_key));
}

#[test]
fn concurrent_writers_share_wal_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..40u32 {
                    db.put(format!("t{t}/{i}"), b"v").expect("put");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let s = db.stats();
    assert_eq!(s.writes, 320);
    // Every acknowledged write was covered by an fsync, and concurrent writers shared
    // them: fewer fsyncs than writes, and never more fsyncs than appends.
    assert!(s.wal_syncs >= 1 && s.wal_syncs <= s.wal_appends, "{s:?}");
    assert!(
        s.wal_syncs < 320,
        "concurrent synced writers should share fsyncs: {} fsyncs",
        s.wal_syncs
    );
    assert_eq!(common::collect(db.iter().expect("iter")).len(), 320);
}

#[test]
fn periodic_sync_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        sync: lsm::engine::SyncPolicy::Periodic(std::time::Duration::from_millis(10)),
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).expect("open");
    for i in 0..100u32 {
        db.put(format!("k{i}"), b"v").expect("put");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.stats().wal_syncs == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no background WAL sync happened"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let s = db.stats();
    assert!(
        s.wal_syncs < s.writes,
        "writes are not synced one by one: {} syncs",
        s.wal_syncs
    );
}

#[test]
fn many_concurrent_synced_writers_all_get_their_outcome() {
    // On tmpfs an fsync is nearly free, so leaders hand over and groups interleave with
    // syncs as fast as the threads can go: every write must still get its own outcome.
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), Options::default()).expect("open");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..1500u32 {
                    let seq = db.put(format!("t{t}/{i:05}"), b"v").expect("put");
                    assert!(db.last_seq() >= seq, "an acknowledged write is visible");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    assert_eq!(db.stats().writes, 12_000);
    assert_eq!(common::collect(db.iter().expect("iter")).len(), 12_000);
}
