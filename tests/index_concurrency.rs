//! Secondary indexes under concurrent writes: cursors stay stable while records change
//! between pages, and builds, rebuilds and drops running alongside writes and queries
//! leave indexes that agree with the records.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::indexes::{assert_internal_records, def, open, query_all, wait_task, wait_tasks};
use lsm::engine::{Db, Options, SyncPolicy, WriteBatch};
use lsm::index::{IndexDef, Indexes, TaskState};
use rand::Rng;
use serde_json::json;

fn fast_options() -> Options {
    Options {
        sync: SyncPolicy::Never,
        ..Options::default()
    }
}

fn by_city() -> IndexDef {
    def(json!({"index_name": "by_city", "index_type": "equality",
        "extractor": {"type": "json_path", "path": "$.city"}, "on_error": "skip"}))
}

fn doc(city: &str, n: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({"city": city, "n": n})).expect("json")
}

fn put_all(ix: &Indexes, items: impl IntoIterator<Item = (String, Vec<u8>)>) {
    let mut batch = WriteBatch::new();
    for (k, v) in items {
        batch.put(k, v);
        if batch.len() >= 500 {
            ix.write(std::mem::take(&mut batch)).expect("write");
        }
    }
    ix.write(batch).expect("write");
}

fn assert_verified(ix: &Indexes) {
    for r in ix.verify().expect("verify") {
        assert!(r.ok(), "verify: {r:?}");
    }
}

/// Records a build found unreadable (and listed as skipped) that writes fixed or
/// deleted while the build went on are not left listed as skipped.
#[test]
fn records_fixed_during_a_build_are_not_left_skipped() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), fast_options()).expect("open");
    let ix = open(&db);
    let keys: Vec<String> = (0..5_000).map(|n| format!("k{n:05}")).collect();
    put_all(&ix, keys.iter().map(|k| (k.clone(), b"not json".to_vec())));
    let task = ix.create(by_city()).expect("create");
    // Fix or delete every record while the build reads them.
    for (n, k) in keys.iter().enumerate() {
        let mut b = WriteBatch::new();
        if n % 4 == 0 {
            b.delete(k);
        } else {
            b.put(k, doc("Oslo", n as u64));
        }
        ix.write(b).expect("write");
    }
    wait_task(&ix, task.id);
    wait_tasks(&ix);
    assert_verified(&ix);
    let info = ix.get("by_city").expect("info");
    assert_eq!(
        info.skipped, 0,
        "every record is JSON now, yet some are listed as skipped: {:?}",
        info.skipped_sample
    );
    let got = query_all(&ix, &json!({"index": "by_city", "term": "Oslo"}), 1000).expect("query");
    assert_eq!(got.len(), keys.len() - keys.len() / 4);
    ix.close();
}

/// Dropping an index while a build of it is writing postings leaves none of that
/// build's records behind.
#[test]
fn builds_cancelled_by_a_drop_leave_no_records() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), fast_options()).expect("open");
    let ix = open(&db);
    let cities = ["Lisbon", "Oslo", "Porto"];
    put_all(
        &ix,
        (0..20_000u64).map(|n| (format!("k{n:05}"), doc(cities[n as usize % 3], n))),
    );
    // A whole build, timed, to spread the drops below over the length of one.
    let started = Instant::now();
    let task = ix.create(by_city()).expect("create");
    wait_task(&ix, task.id);
    let whole = started.elapsed();
    ix.drop_api("by_city").expect("drop");
    wait_tasks(&ix);
    let mut cancelled = 0;
    for round in 0..20u32 {
        let task = ix.create(by_city()).expect("create");
        std::thread::sleep(whole * round / 16);
        ix.drop_api("by_city").expect("drop");
        wait_tasks(&ix);
        if ix.task(task.id).expect("task").state == TaskState::Cancelled {
            cancelled += 1;
        }
        assert_internal_records(&db, &ix);
    }
    assert!(cancelled > 0, "every build finished before its drop");
    ix.close();
}

/// Closing the indexes while a rebuild swaps its generation in (which starts deleting
/// the old one) waits for that deletion too: the engine can then be closed and opened
/// again at once.
#[test]
fn closing_during_a_rebuild_leaves_no_task_running() {
    let dir = common::scratch_dir();
    let mut db = Db::open(dir.path(), fast_options()).expect("open");
    let mut ix = open(&db);
    put_all(
        &ix,
        (0..200u64).map(|n| (format!("k{n:03}"), doc("Oslo", n))),
    );
    let task = ix.create(by_city()).expect("create");
    wait_task(&ix, task.id);
    // How long a rebuild takes, to spread the closes below over the length of one.
    let task = ix.rebuild("by_city").expect("rebuild");
    wait_task(&ix, task.id);
    let whole = Duration::from_millis(ix.task(task.id).expect("task").elapsed_ms.max(1));
    let mut rng = rand::rng();
    for round in 0..300u32 {
        ix.rebuild("by_city").expect("rebuild");
        std::thread::sleep(whole.mul_f64(rng.random_range(0.0..1.2)));
        ix.close();
        let running: Vec<_> = ix
            .tasks()
            .into_iter()
            .filter(|t| t.state == TaskState::Running)
            .collect();
        assert!(
            running.is_empty(),
            "round {round}: running after close: {running:?}"
        );
        drop(ix);
        db.close().expect("close");
        db = Db::open(dir.path(), fast_options())
            .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        ix = open(&db);
    }
    wait_tasks(&ix);
    assert_verified(&ix);
    assert_internal_records(&db, &ix);
    ix.close();
}

/// Writes racing the creation of the first index (while the instance has none, writes
/// skip the index bookkeeping) are all indexed once it is built.
#[test]
fn writes_racing_the_first_index_are_indexed() {
    let mut rng = rand::rng();
    for round in 0..10 {
        // Durable writes are slow, so some are under way when the index is created.
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(
            dir.path(),
            Options {
                sync: SyncPolicy::Always,
                ..Options::default()
            },
        )
        .expect("open");
        let ix = open(&db);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let ix = ix.clone();
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let mut b = WriteBatch::new();
                        b.put(format!("t{t}/{n:06}"), doc("Oslo", n));
                        ix.write(b).expect("write");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(5..20)));
        let task = ix.create(by_city()).expect("create");
        wait_task(&ix, task.id);
        std::thread::sleep(Duration::from_millis(5));
        stop.store(true, Ordering::Relaxed);
        let written: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
        for r in ix.verify().expect("verify") {
            assert!(r.ok(), "round {round}: verify: {r:?}");
        }
        let got =
            query_all(&ix, &json!({"index": "by_city", "term": "Oslo"}), 10_000).expect("query");
        assert_eq!(got.len() as u64, written, "round {round}");
        ix.close();
    }
}
