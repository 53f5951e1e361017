//! Helpers for the secondary index tests: opening indexes over native extractors,
//! waiting for background tasks, paging through queries, and checking the internal
//! records that `verify` does not look at.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lsm::engine::Db;
use lsm::extractor::ExtractorSpec;
use lsm::index::{keys, IndexDef, IndexError, Indexes, QueryLimits, QueryRequest, TaskState};

/// A resolver for the native extractors (`custom` ones are refused).
pub fn resolver() -> lsm::index::Resolver {
    Arc::new(|spec: &ExtractorSpec| {
        lsm::extractor::native(spec)
            .map_err(|e| e.to_string())?
            .map(Arc::from)
            .ok_or_else(|| "custom extractors are not available in this test".to_string())
    })
}

/// Opens the indexes stored in `db` (no indexes file, default limits).
pub fn open(db: &Db) -> Indexes {
    Indexes::open(db.clone(), resolver(), None, QueryLimits::default()).expect("open indexes")
}

/// An index definition from its JSON form.
pub fn def(json: serde_json::Value) -> IndexDef {
    serde_json::from_value(json).expect("index definition")
}

/// Waits until no task is running; fails on a failed task.
pub fn wait_tasks(ix: &Indexes) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = ix.tasks();
        if let Some(t) = tasks.iter().find(|t| t.state == TaskState::Failed) {
            panic!("task failed: {t:?}");
        }
        if tasks.iter().all(|t| t.state != TaskState::Running) {
            return;
        }
        assert!(Instant::now() < deadline, "tasks still running: {tasks:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits for task `id` to be done.
pub fn wait_task(ix: &Indexes, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = ix.task(id).expect("task");
        match t.state {
            TaskState::Done => return,
            TaskState::Running => {}
            _ => panic!("task {id} did not finish: {t:?}"),
        }
        assert!(Instant::now() < deadline, "task {id} still running: {t:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `body` page by page with `limit` results a page and returns every result.
/// Fails the test when a page repeats a key or a cursor is not honoured.
pub fn query_all(
    ix: &Indexes,
    body: &serde_json::Value,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, IndexError> {
    let mut all = Vec::new();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_body = body.clone();
        page_body["limit"] = limit.into();
        if let Some(c) = &cursor {
            page_body["cursor"] = c.clone().into();
        }
        let req = QueryRequest::parse(&page_body).expect("query parses");
        let page = ix.query(&req)?;
        assert!(
            page.results.len() <= limit,
            "{body}: a page of {} results for limit {limit}",
            page.results.len()
        );
        for (k, v) in page.results {
            assert!(seen.insert(k.clone()), "{body}: {k:?} came twice");
            all.push((k, v));
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(all),
        }
    }
}

/// The doc id of `key`'s current version: the sequence number that wrote it.
pub fn doc_id(db: &Db, key: &str) -> Option<u64> {
    db.get_versioned(key).expect("read").map(|(seq, _)| seq)
}

/// Asserts that `keys` are in increasing doc id order (the order queries give).
pub fn assert_doc_id_order(db: &Db, what: &str, results: &[(String, Vec<u8>)]) {
    let ids: Vec<u64> = results
        .iter()
        .map(|(k, _)| doc_id(db, k).unwrap_or_else(|| panic!("{what}: {k:?} has no doc id")))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{what}: results not in doc id order: {:?}",
        results.iter().map(|(k, _)| k).zip(&ids).collect::<Vec<_>>()
    );
}

/// Asserts that every `doc` record names a record whose current version has its id,
/// and that every posting and skip record belongs to a generation that is served or
/// being built (so no dropped or replaced generation left records behind). Call with
/// no task running.
pub fn assert_internal_records(db: &Db, ix: &Indexes) {
    let snap = db.snapshot();
    for item in snap.iter_prefix(keys::DOC_PREFIX).expect("doc scan") {
        let (k, v) = item.expect("doc");
        let id = keys::id_of_doc_key(&k).expect("doc key");
        let key = String::from_utf8(v).expect("doc key text");
        let version = snap.get_versioned(&key).expect("record").map(|(s, _)| s);
        assert_eq!(
            version,
            Some(id),
            "doc {id} -> {key:?} whose version is {version:?}"
        );
    }

    let mut live: BTreeSet<(String, u64)> = BTreeSet::new();
    for info in ix.list() {
        if let Some(g) = info.generation {
            live.insert((info.def.index_name.clone(), g));
        }
        if let Some(t) = info.task.and_then(|t| ix.task(t)) {
            live.insert((info.def.index_name.clone(), t.generation));
        }
    }
    for prefix in ["\0idx:", "\0skip:"] {
        for item in snap.iter_prefix(prefix).expect("scan") {
            let (k, _) = item.expect("record");
            let rest = &k[prefix.len()..];
            let (name, rest) = rest.split_once('@').expect("name@generation");
            let (generation, _) = rest.split_once(':').expect("generation:");
            let generation: u64 = generation.parse().expect("generation number");
            assert!(
                live.contains(&(name.to_string(), generation)),
                "{k:?} belongs to a generation that is neither served nor built ({live:?})"
            );
        }
    }
}
