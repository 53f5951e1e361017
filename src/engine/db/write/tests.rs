//! Unit tests of the write path: the queue, group commit, and failures.

use super::super::super::options::{Options, SyncPolicy};
use super::*;

fn open(dir: &std::path::Path) -> Db {
    let opts = Options {
        sync: SyncPolicy::Never,
        ..Options::default()
    };
    Db::open(dir, opts).expect("open")
}

fn one_put(key: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(key, b"v");
    batch
}

/// Nothing left queued, no leader left behind, every batch accounted for.
fn assert_settled(db: &Db) {
    let queue = db.inner.queue.lock();
    assert!(queue.pending.is_empty());
    assert!(!queue.leader_active);
    assert_eq!(queue.submitted, queue.finished);
}

#[test]
fn waits_drops_and_barriers_leave_the_queue_settled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let a = db.submit(one_put("a")).expect("submit");
    let b = db.submit(one_put("b")).expect("submit");
    assert_eq!(db.inner.queue.lock().pending.len(), 2);
    drop(b);
    assert_settled(&db);
    assert_eq!(a.wait().expect("a was committed by b's drop"), 1);

    let _held = db.submit(one_put("c")).expect("submit");
    db.barrier().expect("barrier");
    assert_settled(&db);
    assert_eq!(db.inner.queue.lock().finished, 3);
}

#[test]
fn a_read_only_database_refuses_submits_and_fails_queued_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let queued: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|k| db.submit(one_put(k)).expect("submit"))
        .collect();
    *db.inner.poisoned.lock() = Some("test: the WAL failed".into());

    assert!(matches!(
        db.submit(one_put("d")),
        Err(Error::Poisoned(reason)) if reason == "test: the WAL failed"
    ));
    // Whichever batch leads the group, each gets the same kind of error.
    for p in queued.into_iter().rev() {
        assert!(matches!(p.wait(), Err(Error::Poisoned(_))));
    }
    assert!(matches!(db.barrier(), Err(Error::Poisoned(_))));
    assert_settled(&db);
    assert_eq!(db.last_seq(), 0);
}

#[test]
fn a_failed_group_keeps_the_kind_of_error_for_every_batch() {
    assert!(matches!(group_error(&Error::Closed), Error::Closed));
    assert!(matches!(
        group_error(&Error::Background("flush".into())),
        Error::Background(m) if m == "flush"
    ));
    assert!(matches!(
        group_error(&Error::Poisoned("wal".into())),
        Error::Poisoned(m) if m == "wal"
    ));
    let io = Error::io("wal/1.wal", std::io::Error::other("disk full"));
    assert!(matches!(
        group_error(&io),
        Error::Poisoned(m) if m.contains("disk full")
    ));
}

#[test]
fn a_batch_built_with_its_sequence_numbers_gets_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    db.put("x", b"1").expect("put");
    // Submitted and not yet committed: the next batch's numbers follow it anyway.
    let queued = db.submit(one_put("y")).expect("submit");
    let mut seen = 0;
    let pending = db
        .submit_with(|first| -> Result<WriteBatch> {
            seen = first;
            let mut b = WriteBatch::new();
            b.put("a", b"va");
            b.put("b", b"vb");
            // A value naming the numbers of the two puts before it.
            b.put("ab", format!("{first},{}", first + 1));
            Ok(b)
        })
        .expect("submit_with");
    let y = queued.wait().expect("y");
    let last = pending.wait().expect("commit");
    assert_eq!(seen, y + 1);
    assert_eq!(last, seen + 2);
    let check = |db: &Db| {
        assert_eq!(
            db.get_versioned("a").expect("get"),
            Some((seen, b"va".to_vec()))
        );
        assert_eq!(
            db.get_versioned("b").expect("get"),
            Some((seen + 1, b"vb".to_vec()))
        );
        let ab = db.get("ab").expect("get").expect("ab");
        assert_eq!(ab, format!("{seen},{}", seen + 1).into_bytes());
        assert_eq!(
            db.snapshot().get_versioned("y").expect("get"),
            Some((y, b"v".to_vec()))
        );
        let mut it = db.iter_prefix("a").expect("iter");
        let (k, s, v) = it.next_versioned().expect("item").expect("ok");
        assert_eq!((k.as_str(), s, v.as_slice()), ("a", seen, &b"va"[..]));
    };
    check(&db);
    // The numbers survive the WAL's replay and a flush into a table.
    db.close().expect("close");
    let db = open(dir.path());
    check(&db);
    db.flush().expect("flush");
    db.compact().expect("compact");
    check(&db);
    // A failing or empty build queues nothing and takes no number.
    let failed = db.submit_with(|_| -> Result<WriteBatch> { Err(Error::Poisoned("no".into())) });
    assert!(failed.is_err());
    let empty = db
        .submit_with(|_| -> Result<WriteBatch> { Ok(WriteBatch::new()) })
        .expect("empty");
    assert_eq!(empty.wait().expect("empty"), last);
    assert_eq!(db.put("z", b"z").expect("put"), last + 1);
    assert_settled(&db);
}
