//! Writes in two steps: `Db::submit` fixes a batch's place in the commit order and
//! `PendingCommit::wait` waits for its outcome; `Db::barrier` waits for everything
//! submitted before it. Order, group commit, dropped handles and errors.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lsm::engine::{
    Db, Error, Options, PendingCommit, SyncPolicy, WriteBatch, MAX_KEY_SIZE, MAX_VALUE_SIZE,
};

fn one_put(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    batch
}

fn synced() -> Options {
    Options {
        sync: SyncPolicy::Always,
        ..Options::default()
    }
}

/// Runs `f` on its own thread and fails the test if it has not returned within `limit`
/// (a deadlock would otherwise hang the test run).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("no progress within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the test thread panicked"),
    }
}

#[test]
fn batches_commit_in_the_order_they_were_submitted_under_a_callers_lock() {
    // Like a layer above that orders its writes under its own mutex and waits for the
    // fsync outside it. One thread uses `write_batch` under the mutex instead: it must
    // take its place in the same order.
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), synced()).expect("open");
    let start = db.last_seq();
    let order = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..6usize)
        .map(|t| {
            let (db, order) = (db.clone(), Arc::clone(&order));
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for i in 0..200usize {
                    let ops = 1 + (t + i) % 3;
                    let mut batch = WriteBatch::new();
                    for j in 0..ops {
                        batch.put(format!("t{t}/{i:03}/{j}"), b"v");
                    }
                    let mut next = order.lock().expect("order lock");
                    let n = *next;
                    *next += 1;
                    let seq = if t == 0 {
                        let seq = db.write_batch(batch).expect("write_batch");
                        drop(next);
                        seq
                    } else {
                        let pending = db.submit(batch).expect("submit");
                        drop(next);
                        pending.wait().expect("wait")
                    };
                    seen.push((n, ops as u64, seq));
                }
                seen
            })
        })
        .collect();
    let mut all: Vec<(u64, u64, u64)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("writer"))
        .collect();
    all.sort_unstable();
    // Every batch's operations directly follow the previous batch's, in submit order.
    let mut prev = start;
    for &(n, ops, seq) in &all {
        assert_eq!(seq, prev + ops, "batch #{n} is out of order");
        prev = seq;
    }
    assert_eq!(all.len(), 1200);
    assert_eq!(db.last_seq(), prev);
}

#[test]
fn one_wait_commits_every_batch_queued_before_it_with_one_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), synced()).expect("open");
    db.put("warm", b"up").expect("put");
    let before = db.stats();
    let pending: Vec<PendingCommit> = (0..10u32)
        .map(|i| db.submit(one_put(format!("k{i}"), b"v")).expect("submit"))
        .collect();
    assert_eq!(db.get("k0").expect("get"), None, "submit does not wait");

    let mut pending = pending.into_iter();
    let first = pending.next().expect("ten").wait().expect("wait");
    let after = db.stats();
    assert_eq!(after.writes - before.writes, 10, "{after:?}");
    assert_eq!(after.wal_appends - before.wal_appends, 1, "one group");
    assert_eq!(after.wal_syncs - before.wal_syncs, 1, "one fsync");
    assert_eq!(db.last_seq(), first + 9);
    for (i, p) in pending.enumerate() {
        assert_eq!(p.wait().expect("wait"), first + 1 + i as u64);
    }
}

#[test]
fn concurrent_synced_submits_are_all_committed_and_visible() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), synced()).expect("open");
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for round in 0..150u32 {
                    // A few in flight per thread, waited for in submit order.
                    let pending: Vec<_> = (0..3u32)
                        .map(|j| {
                            let key = format!("t{t}/{round:03}/{j}");
                            let p = db.submit(one_put(&key, key.as_bytes())).expect("submit");
                            (key, p)
                        })
                        .collect();
                    let mut prev = 0;
                    for (key, p) in pending {
                        let seq = p.wait().expect("wait");
                        assert!(seq > prev, "a thread's batches commit in its order");
                        prev = seq;
                        assert!(db.last_seq() >= seq, "an acknowledged write is visible");
                        assert_eq!(db.get(&key).expect("get"), Some(key.into_bytes()));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let s = db.stats();
    assert_eq!(s.writes, 3600);
    assert!(s.wal_syncs >= 1 && s.wal_syncs <= s.wal_appends, "{s:?}");
    assert_eq!(common::collect(db.iter().expect("iter")).len(), 3600);

    db.close().expect("close");
    let db = Db::open(dir.path(), synced()).expect("reopen");
    assert_eq!(common::collect(db.iter().expect("iter")).len(), 3600);
}

#[test]
fn a_dropped_pending_commit_still_commits() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), synced()).expect("open");
    drop(db.submit(one_put("dropped", b"1")).expect("submit"));
    assert_eq!(db.get("dropped").expect("get"), Some(b"1".to_vec()));

    // Droppers and waiters at once: nobody hangs and nothing is lost.
    let threads = {
        let db = db.clone();
        within(Duration::from_secs(20), move || {
            let threads: Vec<_> = (0..6u32)
                .map(|t| {
                    let db = db.clone();
                    std::thread::spawn(move || {
                        for i in 0..300u32 {
                            let p = db
                                .submit(one_put(format!("t{t}/{i}"), b"v"))
                                .expect("submit");
                            if t % 2 == 0 {
                                drop(p);
                            } else {
                                p.wait().expect("wait");
                            }
                        }
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().is_ok())
                .collect::<Vec<_>>()
        })
    };
    assert!(threads.iter().all(|&ok| ok), "a writer panicked");
    assert_eq!(
        common::collect(db.iter_prefix("t").expect("iter")).len(),
        1800
    );
}

#[test]
fn a_pending_commit_outlives_the_last_database_handle() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), synced()).expect("open");
    let waited = db.submit(one_put("waited", b"1")).expect("submit");
    let dropped = db.submit(one_put("dropped", b"2")).expect("submit");
    drop(db);
    // The handles keep the database open until their batches are committed.
    let seq = waited.wait().expect("wait");
    drop(dropped);

    let db = Db::open(dir.path(), synced()).expect("reopen after the last handle");
    assert_eq!(db.get("waited").expect("get"), Some(b"1".to_vec()));
    assert_eq!(db.get("dropped").expect("get"), Some(b"2".to_vec()));
    assert_eq!(db.last_seq(), seq + 1);
}

#[test]
fn closing_commits_what_was_submitted_but_not_waited_for() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), synced()).expect("open");
    let pending = db.submit(one_put("k", b"v")).expect("submit");
    db.clone().close().expect("close");
    assert!(pending.wait().is_ok(), "committed by close");
    assert!(matches!(db.put("later", b"v"), Err(Error::Closed)));
    drop(db);
    let db = Db::open(dir.path(), synced()).expect("reopen");
    assert_eq!(db.get("k").expect("get"), Some(b"v".to_vec()));
}

#[test]
fn barrier_commits_every_earlier_submit() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), synced()).expect("open");
    db.barrier().expect("nothing queued");

    let pending: Vec<_> = (0..5u32)
        .map(|i| db.submit(one_put(format!("k{i}"), b"v")).expect("submit"))
        .collect();
    db.barrier().expect("barrier");
    for i in 0..5u32 {
        assert_eq!(db.get(format!("k{i}")).expect("get"), Some(b"v".to_vec()));
    }
    let last = db.last_seq();
    let seqs: Vec<u64> = pending
        .into_iter()
        .map(|p| p.wait().expect("wait"))
        .collect();
    assert_eq!(seqs, (last - 4..=last).collect::<Vec<_>>());

    // Another thread submits and holds its handles; only the barrier drives commits.
    let (tx, rx) = mpsc::channel();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for i in 0..100u32 {
                let key = format!("w{i:03}");
                held.push(db.submit(one_put(&key, b"v")).expect("submit"));
                tx.send(key).expect("send");
            }
            held.into_iter().try_for_each(|p| p.wait().map(drop))
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 100 {
        seen.push(rx.recv().expect("recv"));
        if seen.len() % 10 == 0 {
            within(Duration::from_secs(10), {
                let db = db.clone();
                move || db.barrier()
            })
            .expect("barrier");
            for key in &seen {
                assert!(db.get(key).expect("get").is_some(), "{key} not committed");
            }
        }
    }
    writer.join().expect("writer").expect("writes");

    let other = db.clone();
    db.close().expect("close");
    assert!(matches!(other.barrier(), Err(Error::Closed)));
}

#[test]
fn submit_reports_invalid_batches_and_a_closed_database() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), synced()).expect("open");
    db.put("a", b"1").expect("put");
    let before = db.last_seq();

    let too_long = "k".repeat(MAX_KEY_SIZE + 1);
    assert!(matches!(
        db.submit(one_put(&too_long, b"v")),
        Err(Error::KeyTooLarge {
            max: MAX_KEY_SIZE,
            ..
        })
    ));
    assert!(matches!(
        db.submit(one_put("big", vec![0u8; MAX_VALUE_SIZE + 1])),
        Err(Error::ValueTooLarge { .. })
    ));
    let mut mixed = one_put("ok", b"1");
    mixed.put([0xffu8, 0xfe], b"2");
    assert!(matches!(db.submit(mixed), Err(Error::InvalidKey(_))));
    db.barrier().expect("barrier");
    assert_eq!(db.last_seq(), before, "a refused batch writes nothing");
    assert_eq!(db.get("ok").expect("get"), None);

    let empty = db.submit(WriteBatch::new()).expect("empty batch");
    assert_eq!(empty.wait().expect("wait"), before);

    let other = db.clone();
    db.close().expect("close");
    assert!(matches!(
        other.submit(one_put("b", b"2")),
        Err(Error::Closed)
    ));
}
