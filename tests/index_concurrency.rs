//! Secondary indexes under concurrency: cursors stay stable while records change
//! between pages, and builds, rebuilds, drops and closes running alongside writes and
//! queries leave indexes that agree with the records. Most tests here reproduce a race
//! once found in the index layer; each says what must hold.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::indexes::{assert_internal_records, def, open, query_all, wait_task, wait_tasks};
use lsm::engine::{Db, Options, SyncPolicy, WriteBatch};
use lsm::index::{IndexDef, Indexes, QueryRequest, TaskState};
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

/// A query paged through with a cursor while another thread updates, deletes and
/// inserts records (matching and not), flushes, compacts and rebuilds the index gives
/// exactly the records that matched when its first page was served, with the values
/// they had then: none twice, none missing.
#[test]
fn cursors_are_stable_under_concurrent_writes() {
    let dir = common::scratch_dir();
    let db = Db::open(
        dir.path(),
        Options {
            // Small tables: flushes and compactions happen while the query pages.
            memtable_max_size: 64 * 1024,
            ..fast_options()
        },
    )
    .expect("open");
    let ix = open(&db);
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for n in 0..15_000u64 {
        let city = if n % 3 == 2 { "Lisbon" } else { "Oslo" };
        model.insert(format!("k{n:05}"), doc(city, n));
    }
    put_all(&ix, model.clone());
    let task = ix.create(by_city()).expect("create");
    wait_task(&ix, task.id);
    let query = json!({"index": "by_city", "term": "Oslo", "limit": 100});
    let oslo = |m: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        m.iter()
            .filter(|(_, v)| {
                serde_json::from_slice::<serde_json::Value>(v).expect("json")["city"] == "Oslo"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let expected = oslo(&model);
    assert_eq!(expected.len(), 10_000);

    let first = ix
        .query(&QueryRequest::parse(&query).expect("query"))
        .expect("first page");
    let writes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let ix = ix.clone();
        let db = db.clone();
        let writes = Arc::clone(&writes);
        let stop = Arc::clone(&stop);
        let mut model = model.clone();
        std::thread::spawn(move || {
            let mut rng = rand::rng();
            let mut next = 100_000u64;
            while !stop.load(Ordering::Relaxed) {
                let mut b = WriteBatch::new();
                for _ in 0..rng.random_range(1..8) {
                    let k = format!("k{:05}", rng.random_range(0..15_000));
                    match rng.random_range(0..10) {
                        // Matching records stop matching, or are deleted.
                        0..=1 => {
                            b.put(&k, doc("Lisbon", next));
                            model.insert(k, doc("Lisbon", next));
                        }
                        2 => {
                            b.delete(&k);
                            model.remove(&k);
                        }
                        // Records (matching or not) are rewritten as matching: a new
                        // doc id, after every id the query has seen.
                        3..=6 => {
                            b.put(&k, doc("Oslo", next));
                            model.insert(k, doc("Oslo", next));
                        }
                        // New records, matching and not.
                        _ => {
                            let k = format!("n{next:06}");
                            let city = if next.is_multiple_of(2) {
                                "Oslo"
                            } else {
                                "Lisbon"
                            };
                            b.put(&k, doc(city, next));
                            model.insert(k, doc(city, next));
                        }
                    }
                    next += 1;
                }
                ix.write(b).expect("write");
                let n = writes.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(500) {
                    db.compact().expect("compact");
                }
                if n.is_multiple_of(300) {
                    ix.rebuild("by_city").expect("rebuild");
                }
            }
            model
        })
    };

    let mut pages = 1;
    let mut got: Vec<(String, Vec<u8>)> = first.results;
    let mut cursor = first.next_cursor;
    while let Some(c) = cursor {
        // Let some writes land between every two pages.
        let seen = writes.load(Ordering::Relaxed);
        while writes.load(Ordering::Relaxed) < seen + 10 {
            std::thread::yield_now();
        }
        let mut body = query.clone();
        body["cursor"] = c.into();
        let page = ix
            .query(&QueryRequest::parse(&body).expect("query"))
            .unwrap_or_else(|e| panic!("page {pages}: {e}"));
        assert!(page.results.len() <= 100);
        got.extend(page.results);
        cursor = page.next_cursor;
        pages += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let model = writer.join().expect("writer");
    let total_writes = writes.load(Ordering::Relaxed);

    assert_eq!(pages, 100, "10000 records in pages of 100");
    let mut keys = BTreeSet::new();
    for (k, _) in &got {
        assert!(keys.insert(k.clone()), "{k} came twice");
    }
    let got: BTreeMap<String, Vec<u8>> = got.into_iter().collect();
    assert_eq!(got.len(), expected.len());
    for (k, v) in &expected {
        assert_eq!(
            got.get(k),
            Some(v),
            "{k}: missing or not as it was at the first page"
        );
    }
    assert!(
        total_writes >= 990,
        "only {total_writes} writes between pages"
    );

    // And a new query sees the records as they are now.
    wait_tasks(&ix);
    let now: BTreeMap<String, Vec<u8>> =
        query_all(&ix, &json!({"index": "by_city", "term": "Oslo"}), 1000)
            .expect("query")
            .into_iter()
            .collect();
    assert_eq!(now, oslo(&model));
    assert_verified(&ix);
    ix.close();
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

/// Queries (and verify) running while the index is rebuilt again and again (each
/// rebuild swaps a new generation in and deletes the old one) always see every record.
#[test]
fn queries_during_rebuilds_see_every_record() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), fast_options()).expect("open");
    let ix = open(&db);
    put_all(
        &ix,
        (0..300u64).map(|n| {
            (
                format!("k{n:03}"),
                doc(["Oslo", "Lisbon"][n as usize % 2], n),
            )
        }),
    );
    let task = ix.create(by_city()).expect("create");
    wait_task(&ix, task.id);
    let stop = Arc::new(AtomicBool::new(false));
    let rebuilder = {
        let ix = ix.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let task = ix.rebuild("by_city").expect("rebuild");
                wait_task(&ix, task.id);
                n += 1;
            }
            n
        })
    };
    let queriers: Vec<_> = (0..4)
        .map(|_| {
            let ix = ix.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let got = query_all(&ix, &json!({"index": "by_city", "term": "Oslo"}), 40)
                        .expect("query");
                    assert_eq!(got.len(), 150, "query {n}");
                    if n % 20 == 0 {
                        assert_verified(&ix);
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let queries: u64 = queriers
        .into_iter()
        .map(|q| q.join().expect("querier"))
        .sum();
    let rebuilds = rebuilder.join().expect("rebuilder");
    assert!(
        queries > 0 && rebuilds > 1,
        "{queries} queries during {rebuilds} rebuilds"
    );
    ix.close();
}

/// Writers sharing keys (puts, deletes, batches, records that are not JSON), while
/// another thread rebuilds the index and creates and drops a second one: once they are
/// done, the indexes agree with whatever the records ended up being.
#[test]
fn concurrent_writers_and_builds_leave_indexes_that_agree_with_the_records() {
    let dir = common::scratch_dir();
    let db = Db::open(
        dir.path(),
        Options {
            memtable_max_size: 64 * 1024,
            ..fast_options()
        },
    )
    .expect("open");
    let ix = open(&db);
    let task = ix.create(by_city()).expect("create");
    wait_task(&ix, task.id);
    let cities = ["Lisbon", "Oslo", "Porto"];
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let ix = ix.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rng();
                for n in 0..3000u64 {
                    let mut b = WriteBatch::new();
                    for _ in 0..rng.random_range(1..4) {
                        let k = format!("k{:03}", rng.random_range(0..400));
                        match rng.random_range(0..10) {
                            0..=1 => b.delete(&k),
                            2 => b.put(&k, "not json"),
                            _ => b.put(&k, doc(cities[rng.random_range(0..3)], t * 10_000 + n)),
                        };
                    }
                    ix.write(b).expect("write");
                }
            })
        })
        .collect();
    let admin = {
        let ix = ix.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let by_n = def(json!({"index_name": "by_n", "index_type": "range",
                "extractor": {"type": "json_path", "path": "$.n"}, "on_error": "skip"}));
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                let task = ix.rebuild("by_city").expect("rebuild");
                wait_task(&ix, task.id);
                if ix.get("by_n").is_ok() {
                    ix.drop_api("by_n").expect("drop");
                } else {
                    ix.create(by_n.clone()).expect("create");
                }
                std::thread::sleep(Duration::from_millis(5));
                rounds += 1;
            }
            rounds
        })
    };
    for w in writers {
        w.join().expect("writer");
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = admin.join().expect("admin");
    assert!(rounds > 1, "only {rounds} rebuilds while writing");
    wait_tasks(&ix);
    assert_verified(&ix);
    assert_internal_records(&db, &ix);

    let records: Vec<(String, Vec<u8>)> = db
        .iter_range("k".."l")
        .expect("scan")
        .map(|r| r.expect("record"))
        .collect();
    for city in cities {
        let want: Vec<(String, Vec<u8>)> = records
            .iter()
            .filter(|(_, v)| {
                serde_json::from_slice::<serde_json::Value>(v).is_ok_and(|d| d["city"] == city)
            })
            .cloned()
            .collect();
        let mut got =
            query_all(&ix, &json!({"index": "by_city", "term": city}), 100).expect("query");
        got.sort();
        assert_eq!(got, want, "{city}");
    }
    let not_json = records.iter().filter(|(_, v)| v == b"not json").count() as u64;
    assert_eq!(ix.get("by_city").expect("info").skipped, not_json);
    ix.close();
}

/// A build lists the records it cannot read as skipped whatever `on_error` says; with
/// `on_error = "reject"` too, a later write that fixes or deletes such a record takes
/// it off the list.
#[test]
fn records_a_build_skipped_leave_the_list_when_rewritten_on_a_rejecting_index() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), fast_options()).expect("open");
    let ix = open(&db);
    put_all(
        &ix,
        (0..10u64).map(|n| (format!("k{n}"), b"not json".to_vec())),
    );
    let rejecting = def(json!({"index_name": "by_city", "index_type": "equality",
        "extractor": {"type": "json_path", "path": "$.city"}}));
    let task = ix.create(rejecting).expect("create");
    wait_task(&ix, task.id);
    assert_eq!(ix.get("by_city").expect("info").skipped, 10);
    // Writes of unreadable records are refused now; fixes and deletes go through.
    let mut b = WriteBatch::new();
    b.put("k0", "still not json");
    assert!(ix.write(b).is_err(), "a rejecting index refuses the record");
    put_all(&ix, (0..5u64).map(|n| (format!("k{n}"), doc("Oslo", n))));
    let mut b = WriteBatch::new();
    for n in 5..8 {
        b.delete(format!("k{n}"));
    }
    ix.write(b).expect("delete");
    let info = ix.get("by_city").expect("info");
    let listed: Vec<&str> = info
        .skipped_sample
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(listed, ["k8", "k9"], "the records still listed as skipped");
    assert_eq!(info.skipped, 2);
    assert_verified(&ix);
    ix.close();
}
