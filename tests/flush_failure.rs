//! A flush that keeps failing (here: the tables directory disappears) is reported and
//! retried; writers are refused with a clear error instead of piling up memtables, and
//! nothing acknowledged is lost once the flush succeeds again.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use lsm::engine::{Db, Error, Options, SyncPolicy};

#[test]
fn failing_flushes_refuse_writes_then_recover_without_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        memtable_max_size: 4096,
        max_immutable_memtables: 1,
        sync: SyncPolicy::Never,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).expect("open");
    let tables = dir.path().join("tables");
    let moved = dir.path().join("tables.away");
    fs::rename(&tables, &moved).expect("move tables away");
    fs::write(&tables, b"not a directory").expect("block the path");

    let mut acked = Vec::new();
    let mut refused = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..100_000u32 {
        let key = format!("k{i:06}");
        match db.put(&key, [b'v'; 64]) {
            Ok(_) => acked.push(key),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
        assert!(Instant::now() < deadline, "writes were never refused");
    }
    let err = refused.expect("writes must be refused while flushes fail");
    assert!(matches!(err, Error::Background(_)), "{err}");
    assert!(db.stats().background_error.is_some());
    assert!(!acked.is_empty());

    // The disk comes back: the retried flush succeeds and writes are accepted again.
    fs::remove_file(&tables).expect("unblock");
    fs::rename(&moved, &tables).expect("restore tables");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match db.put("after", b"1") {
            Ok(_) => break,
            Err(Error::Background(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("unexpected error after recovery: {e}"),
        }
    }
    db.flush().expect("flush after recovery");
    assert!(db.stats().background_error.is_none());
    db.close().expect("close");

    let db = Db::open(dir.path(), opts).expect("reopen");
    for k in &acked {
        assert_eq!(db.get(k).expect("get"), Some(vec![b'v'; 64]), "lost {k}");
    }
    assert_eq!(db.get("after").expect("get"), Some(b"1".to_vec()));
}
