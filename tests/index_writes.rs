//! Indexed writes from many threads: they share WAL syncs (group commit) while every
//! record and posting stays consistent.

mod common;

use std::sync::Arc;

use lsm::engine::{Db, Options, SyncPolicy, WriteBatch};
use lsm::extractor::ExtractorSpec;
use lsm::index::{IndexDef, Indexes, QueryLimits, QueryRequest, TaskState};
use serde_json::json;

fn native() -> lsm::index::Resolver {
    Arc::new(|spec: &ExtractorSpec| {
        lsm::extractor::native(spec)
            .map_err(|e| e.to_string())?
            .map(Arc::from)
            .ok_or_else(|| "custom extractors need a plugin store".to_string())
    })
}

fn wait(ix: &Indexes, id: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ix.task(id).expect("task").state == TaskState::Running {
        assert!(std::time::Instant::now() < deadline, "build never finished");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(ix.task(id).expect("task").state, TaskState::Done);
}

fn all(ix: &Indexes, q: serde_json::Value) -> Vec<String> {
    let mut q = q;
    q["limit"] = json!(1000);
    let mut keys = Vec::new();
    loop {
        let page = ix
            .query(&QueryRequest::parse(&q).expect("query"))
            .expect("page");
        keys.extend(page.results.into_iter().map(|(k, _)| k));
        match page.next_cursor {
            Some(c) => q["cursor"] = json!(c),
            None => return keys,
        }
    }
}

#[test]
fn concurrent_synced_indexed_writes_share_fsyncs_and_stay_consistent() {
    let dir = common::scratch_dir();
    let opts = Options {
        sync: SyncPolicy::Always,
        memtable_max_size: 256 << 10,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).expect("open");
    let ix = Indexes::open(db.clone(), native(), None, QueryLimits::default()).expect("indexes");
    let def: IndexDef = serde_json::from_value(json!({"index_name": "by_t", "scope_prefix": "k:",
        "index_type": "equality", "extractor": {"type": "json_path", "path": "$.t"}}))
    .expect("def");
    wait(&ix, ix.create(def).expect("create").id);

    const THREADS: u64 = 8;
    const WRITES: u64 = 150;
    let before = db.stats();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let ix = ix.clone();
            s.spawn(move || {
                for i in 0..WRITES {
                    // Each key is written twice: the second write moves it to term t+100.
                    let key = format!("k:{t}:{}", i % (WRITES / 2));
                    let term = if i < WRITES / 2 { t } else { t + 100 };
                    let mut b = WriteBatch::new();
                    b.put(&key, json!({ "t": term }).to_string());
                    ix.write(b).expect("write");
                }
            });
        }
    });
    let after = db.stats();
    let writes = THREADS * WRITES;
    let syncs = after.wal_syncs - before.wal_syncs;
    assert!(
        syncs < writes,
        "{syncs} fsyncs for {writes} writes: no group commit"
    );

    for t in 0..THREADS {
        assert!(
            all(&ix, json!({"index": "by_t", "term": t})).is_empty(),
            "term {t} kept moved records"
        );
        let mut keys = all(&ix, json!({"index": "by_t", "term": t + 100}));
        keys.sort();
        let mut expected: Vec<String> = (0..WRITES / 2).map(|i| format!("k:{t}:{i}")).collect();
        expected.sort();
        assert_eq!(keys, expected);
    }
    let reports = ix.verify().expect("verify");
    assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
    ix.close();
}

/// A batch large enough to extract for each index on its own thread: every index gets
/// its terms, a `skip` index counts its failures, and a `reject` index refuses the whole
/// batch (nothing of it is written), the same as a small batch extracted in turn.
#[test]
fn large_batches_extract_every_index_and_report_the_first_rejection() {
    let dir = common::scratch_dir();
    let db = Db::open(dir.path(), Options::default()).expect("open");
    let ix = Indexes::open(db.clone(), native(), None, QueryLimits::default()).expect("indexes");
    for (name, path, on_error) in [
        ("by_city", "$.city", "reject"),
        ("by_age", "$.age", "skip"),
        ("by_tag", "$.tags", "reject"),
    ] {
        let def: IndexDef = serde_json::from_value(json!({"index_name": name,
            "scope_prefix": "u:", "index_type": "equality", "on_error": on_error,
            "extractor": {"type": "json_path", "path": path}}))
        .expect("def");
        wait(&ix, ix.create(def).expect("create").id);
    }
    // 600 records x 3 indexes: well past the parallel threshold.
    let mut b = WriteBatch::new();
    for i in 0..600 {
        b.put(
            format!("u:{i:04}"),
            json!({"city": format!("c{}", i % 7), "age": i % 50, "tags": [format!("t{}", i % 3)]})
                .to_string(),
        );
    }
    ix.write(b).expect("large batch");
    assert_eq!(
        all(&ix, json!({"index": "by_city", "term": "c3"})).len(),
        86
    );
    assert_eq!(all(&ix, json!({"index": "by_age", "term": 7})).len(), 12);
    assert_eq!(
        all(&ix, json!({"index": "by_tag", "term": "t2"})).len(),
        200
    );

    // Not JSON: `by_age` would skip it, `by_city` (the first index) and `by_tag` reject it.
    let mut b = WriteBatch::new();
    for i in 600..900 {
        b.put(format!("u:{i:04}"), json!({"city": "late"}).to_string());
    }
    b.put("u:bad", "not json");
    let err = ix
        .write(b)
        .expect_err("a rejecting index refuses the batch");
    assert!(
        matches!(&err, lsm::index::IndexError::Rejected { index, key, .. }
            if index == "by_city" && key == "u:bad"),
        "{err:?}"
    );
    assert!(all(&ix, json!({"index": "by_city", "term": "late"})).is_empty());
    assert_eq!(
        db.get("u:0600").expect("get"),
        None,
        "a refused batch wrote nothing"
    );
    let reports = ix.verify().expect("verify");
    assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
    ix.close();
}
