//! An instance whose index records are in format 1's layout (doc ids from a counter,
//! a `pk` record per record, postings without keys) is upgraded when opened: its old
//! records go and every index is built again, then answers as before.

#![allow(clippy::unwrap_used)]

mod common;

use common::indexes::{assert_internal_records, def, open, query_all, wait_tasks};
use lsm::engine::{Db, Options, WriteBatch};
use lsm::index::keys;
use serde_json::json;

#[test]
fn a_format_1_instance_is_rebuilt_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let ix = open(&db);
    ix.create(def(
        json!({"index_name": "by_city", "scope_prefix": "users:",
        "index_type": "equality", "extractor": {"type": "json_path", "path": "$.city"}}),
    ))
    .unwrap();
    wait_tasks(&ix);
    let mut batch = WriteBatch::new();
    for i in 0..300 {
        let city = ["Porto", "Lisboa", "Faro"][i % 3];
        batch.put(format!("users:{i:03}"), json!({ "city": city }).to_string());
    }
    ix.write(batch).unwrap();
    let generation = ix.get("by_city").unwrap().generation.unwrap();
    ix.close();
    drop(ix);

    // Rewrite what is stored into format 1: the registry's format, a pk/doc pair per
    // record from a counter, the counter, and a version-1 posting block.
    let registry = db.get(keys::REGISTRY).unwrap().unwrap();
    let mut registry: serde_json::Value = serde_json::from_slice(&registry).unwrap();
    registry["format"] = json!(1);
    let mut old = WriteBatch::new();
    old.put(keys::REGISTRY, serde_json::to_vec(&registry).unwrap());
    for item in db.iter_prefix(keys::DOC_PREFIX).unwrap() {
        old.delete(item.unwrap().0);
    }
    for i in 0..300u64 {
        let mut id = Vec::new();
        lsm::engine::coding::put_varint(&mut id, i + 1);
        old.put(format!("\0pk:users:{i:03}"), id);
        old.put(keys::doc_key(i + 1), format!("users:{i:03}"));
    }
    old.put(keys::OLD_NEXT_ID, [0x80, 0x02]);
    let base = keys::term_base(&keys::index_prefix("by_city", generation), "sPorto");
    old.put(keys::block_key(&base, 1), [1u8, 1, 7]);
    db.write_batch(old).unwrap();

    let ix = open(&db);
    // Not served from the old records: rebuilt into a new generation first.
    wait_tasks(&ix);
    let info = ix.get("by_city").unwrap();
    assert!(info.generation.unwrap() > generation, "{info:?}");
    let porto = query_all(&ix, &json!({"index": "by_city", "term": "Porto"}), 64).unwrap();
    let want: Vec<String> = (0..300)
        .step_by(3)
        .map(|i| format!("users:{i:03}"))
        .collect();
    let got: Vec<String> = porto.into_iter().map(|(k, _)| k).collect();
    assert_eq!(got, want);
    assert!(db
        .iter_prefix(keys::OLD_PK_PREFIX)
        .unwrap()
        .next()
        .is_none());
    assert_eq!(db.get(keys::OLD_NEXT_ID).unwrap(), None);
    assert!(db
        .iter_prefix(keys::index_prefix("by_city", generation))
        .unwrap()
        .next()
        .is_none());
    let registry = db.get(keys::REGISTRY).unwrap().unwrap();
    let registry: serde_json::Value = serde_json::from_slice(&registry).unwrap();
    assert_eq!(registry["format"], json!(2));
    for report in ix.verify().unwrap() {
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.records, 300);
    }
    assert_internal_records(&db, &ix);
}
