//! Model-based property test: random sequences of writes, reads, iterations, flushes,
//! manual compactions and reopens (with background compaction of tiny tables running
//! all along), every read compared with a `BTreeMap` that plays the database, and live
//! snapshots checked after every step.
//!
//! `PROPTEST_CASES` raises the number of cases (CI runs the default below).

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use lsm::engine::{Db, WriteBatch};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Get(u8),
    Range(u8, u8),
    RangeInclusive(u8, u8),
    RangeAfter(u8, usize),
    Prefix(u8),
    Flush,
    Reopen,
    Snapshot,
    Compact,
}

fn key(k: u8) -> String {
    // Keys share prefixes (k/1, k/12, ...) so prefix scans and block prefix compression
    // are exercised.
    format!("k/{}", k % 40)
}

fn op() -> impl Strategy<Value = Op> {
    let value = prop::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        8 => (any::<u8>(), value.clone()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => any::<u8>().prop_map(Op::Delete),
        2 => prop::collection::vec((any::<u8>(), prop::option::of(value)), 1..8).prop_map(Op::Batch),
        4 => any::<u8>().prop_map(Op::Get),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::RangeInclusive(a, b)),
        2 => (any::<u8>(), 1usize..6).prop_map(|(a, n)| Op::RangeAfter(a, n)),
        2 => (0u8..5).prop_map(Op::Prefix),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Compact),
    ]
}

fn model_range(
    model: &BTreeMap<String, Vec<u8>>,
    lo: Bound<String>,
    hi: Bound<String>,
) -> Vec<(String, Vec<u8>)> {
    model
        .range((lo, hi))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn run(ops: Vec<Op>) {
    let dir = common::scratch_dir();
    let mut db = common::open_small(dir.path());
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut snapshots: Vec<(lsm::engine::Snapshot, BTreeMap<String, Vec<u8>>)> = Vec::new();
    for op in ops {
        match op {
            Op::Put(k, v) => {
                db.put(key(k), &v).expect("put");
                model.insert(key(k), v);
            }
            Op::Delete(k) => {
                db.delete(key(k)).expect("delete");
                model.remove(&key(k));
            }
            Op::Batch(items) => {
                let mut batch = WriteBatch::new();
                for (k, v) in items {
                    match v {
                        Some(v) => {
                            batch.put(key(k), &v);
                            model.insert(key(k), v);
                        }
                        None => {
                            batch.delete(key(k));
                            model.remove(&key(k));
                        }
                    }
                }
                db.write_batch(batch).expect("batch");
            }
            Op::Get(k) => {
                assert_eq!(
                    db.get(key(k)).expect("get"),
                    model.get(&key(k)).cloned(),
                    "get {}",
                    key(k)
                );
            }
            Op::Range(a, b) => {
                let (lo, hi) = (key(a).min(key(b)), key(a).max(key(b)));
                let got = common::collect(db.iter_range(lo.clone()..hi.clone()).expect("range"));
                let want = model_range(&model, Bound::Included(lo), Bound::Excluded(hi));
                assert_eq!(got, want);
            }
            Op::RangeInclusive(a, b) => {
                let (lo, hi) = (key(a).min(key(b)), key(a).max(key(b)));
                let got = common::collect(db.iter_range(lo.clone()..=hi.clone()).expect("range"));
                let want = model_range(&model, Bound::Included(lo), Bound::Included(hi));
                assert_eq!(got, want);
            }
            Op::RangeAfter(a, n) => {
                // Pagination: pages of n keys, each resuming after the last key seen.
                let mut pages = Vec::new();
                let mut after = key(a);
                loop {
                    let page: Vec<_> = common::collect(
                        db.iter_range::<&str>((Bound::Excluded(after.as_str()), Bound::Unbounded))
                            .expect("page")
                            .take(n),
                    );
                    let Some((last, _)) = page.last() else { break };
                    after = last.clone();
                    pages.extend(page);
                }
                let want = model_range(&model, Bound::Excluded(key(a)), Bound::Unbounded);
                assert_eq!(pages, want);
            }
            Op::Prefix(p) => {
                let prefix = format!("k/{p}");
                let got = common::collect(db.iter_prefix(&prefix).expect("prefix"));
                let want: Vec<_> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert_eq!(got, want);
            }
            Op::Flush => db.flush().expect("flush"),
            Op::Reopen => {
                snapshots.clear();
                db.close().expect("close");
                db = common::open_small(dir.path());
            }
            Op::Snapshot => snapshots.push((db.snapshot(), model.clone())),
            Op::Compact => db.compact().expect("compact"),
        }
        for (snap, at) in &snapshots {
            let got = common::collect(snap.iter_range::<&str>(..).expect("snapshot iter"));
            let want: Vec<_> = at.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_eq!(got, want, "snapshot at seq {}", snap.seq());
        }
    }
    let all = common::collect(db.iter().expect("iter"));
    assert_eq!(all, model_range(&model, Bound::Unbounded, Bound::Unbounded));
    drop(snapshots);
    db.close().expect("close");
    let db = Db::open(dir.path(), common::small_options()).expect("final reopen");
    let all = common::collect(db.iter().expect("iter"));
    assert_eq!(all, model_range(&model, Bound::Unbounded, Bound::Unbounded));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_a_btreemap(ops in prop::collection::vec(op(), 1..120)) {
        run(ops);
    }
}
