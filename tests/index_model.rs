//! Model-based property test of secondary indexes: random sequences of puts (JSON
//! documents, some of them not JSON or missing fields), deletes, batches (the same key
//! twice included), index creations, drops and rebuilds (left running in the
//! background while the sequence goes on), reopens, flushes and compactions. After
//! every step a random query (term, range, match, AND) runs page by page with a small
//! limit and must give exactly what the same filter over a `BTreeMap` gives, with no
//! key twice and in doc id order; at every `Wait` step and at the end of each case
//! every query is checked, `verify` must pass, the skipped counts must match the
//! records that are not JSON, and no dropped or replaced generation may have left
//! records behind.
//!
//! `PROPTEST_CASES` raises the number of cases (CI runs the default below).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::indexes::{
    assert_doc_id_order, assert_internal_records, def, open, query_all, wait_tasks,
};
use lsm::engine::{Db, WriteBatch};
use lsm::index::{IndexDef, IndexError, Indexes};
use proptest::prelude::*;
use serde_json::{json, Value};

const CITIES: [&str; 4] = ["Lisbon", "Oslo", "PortoAlegre", "São Paulo"];
const WORDS: [&str; 6] = ["rust", "storage", "engine", "fast", "index", "tree"];
/// Values an extractor cannot read: every index skips them.
const NOT_JSON: [&str; 4] = [r#"{"city": "Oslo""#, "not json", "", r#"{"age": }"#];

/// The indexes, by number: `by_city` (equality), `by_age` (range, keys `u/` only),
/// `bio` (text).
const INDEXES: [&str; 3] = ["by_city", "by_age", "bio"];

fn index_def(i: usize) -> IndexDef {
    match i {
        0 => def(json!({"index_name": "by_city", "index_type": "equality",
            "extractor": {"type": "json_path", "path": "$.city"}, "on_error": "skip"})),
        1 => def(
            json!({"index_name": "by_age", "scope_prefix": "u/*", "index_type": "range",
            "extractor": {"type": "json_path", "path": "$.age"}, "on_error": "skip"}),
        ),
        _ => def(json!({"index_name": "bio", "index_type": "text",
            "extractor": {"type": "json_path", "path": "$.bio"}, "on_error": "skip"})),
    }
}

fn in_scope(i: usize, key: &str) -> bool {
    i != 1 || key.starts_with("u/")
}

/// Keys `u/00`..`u/23` (every index) and `v/0`..`v/5` (not `by_age`).
fn key(k: u8) -> String {
    let k = k % 30;
    if k < 24 {
        format!("u/{k:02}")
    } else {
        format!("v/{}", k - 24)
    }
}

#[derive(Debug, Clone)]
enum Age {
    Int(i64),
    /// Written `n.0`: the same term as the integer.
    Whole(i64),
    /// `n + 0.5`.
    Half(i64),
    /// A string: not a number, so never in a numeric range.
    Text(i64),
}

#[derive(Debug, Clone)]
enum Doc {
    Json {
        /// One city, or (when `list`) an array of them.
        cities: Vec<usize>,
        list: bool,
        /// Absent cities, ages and bios give no term (the record is not skipped).
        has_city: bool,
        age: Option<Age>,
        /// Words with a case style (0 lower, 1 capitalized, 2 upper) and a separator.
        bio: Option<Vec<(usize, u8)>>,
    },
    NotJson(usize),
}

fn styled(w: &str, style: u8) -> String {
    match style % 3 {
        0 => w.to_string(),
        1 => {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
        _ => w.to_uppercase(),
    }
}

impl Doc {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Doc::NotJson(i) => NOT_JSON[*i].as_bytes().to_vec(),
            Doc::Json {
                cities,
                list,
                has_city,
                age,
                bio,
            } => {
                let mut m = serde_json::Map::new();
                m.insert("name".into(), json!("someone"));
                if *has_city {
                    let city = if *list {
                        json!(cities.iter().map(|c| CITIES[*c]).collect::<Vec<_>>())
                    } else {
                        json!(CITIES[cities[0]])
                    };
                    m.insert("city".into(), city);
                }
                if let Some(age) = age {
                    let v = match age {
                        Age::Int(n) => json!(n),
                        Age::Whole(n) => json!(*n as f64),
                        Age::Half(n) => json!(*n as f64 + 0.5),
                        Age::Text(n) => json!(n.to_string()),
                    };
                    m.insert("age".into(), v);
                }
                if let Some(words) = bio {
                    let seps = [" ", ", ", "-", "  "];
                    let mut text = String::new();
                    for (n, (w, style)) in words.iter().enumerate() {
                        if n > 0 {
                            text.push_str(seps[(*style as usize + n) % seps.len()]);
                        }
                        text.push_str(&styled(WORDS[*w], *style));
                    }
                    m.insert("bio".into(), json!(text));
                }
                serde_json::to_vec(&Value::Object(m)).expect("encode")
            }
        }
    }

    fn valid(&self) -> bool {
        matches!(self, Doc::Json { .. })
    }

    fn has_city(&self, c: usize) -> bool {
        match self {
            Doc::Json {
                cities,
                list,
                has_city: true,
                ..
            } => {
                if *list {
                    cities.contains(&c)
                } else {
                    cities[0] == c
                }
            }
            _ => false,
        }
    }

    fn age(&self) -> Option<f64> {
        match self {
            Doc::Json { age: Some(a), .. } => match a {
                Age::Int(n) | Age::Whole(n) => Some(*n as f64),
                Age::Half(n) => Some(*n as f64 + 0.5),
                Age::Text(_) => None,
            },
            _ => None,
        }
    }

    fn has_words(&self, words: &[(usize, u8)]) -> bool {
        match self {
            Doc::Json { bio: Some(b), .. } => {
                words.iter().all(|(w, _)| b.iter().any(|(x, _)| x == w))
            }
            _ => false,
        }
    }
}

fn doc() -> impl Strategy<Value = Doc> {
    let age = prop_oneof![
        5 => (0i64..20).prop_map(Age::Int),
        1 => (0i64..20).prop_map(Age::Whole),
        1 => (0i64..20).prop_map(Age::Half),
        1 => (0i64..20).prop_map(Age::Text),
    ];
    let json = (
        prop::collection::vec(0..CITIES.len(), 1..3),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.9),
        prop::option::weighted(0.85, age),
        prop::option::weighted(
            0.85,
            prop::collection::vec((0..WORDS.len(), any::<u8>()), 1..4),
        ),
    )
        .prop_map(|(cities, list, has_city, age, bio)| Doc::Json {
            cities,
            list,
            has_city,
            age,
            bio,
        });
    prop_oneof![
        9 => json,
        1 => (0..NOT_JSON.len()).prop_map(Doc::NotJson),
    ]
}

#[derive(Debug, Clone)]
enum Query {
    City(usize),
    /// Lower and upper bounds: (value, inclusive).
    Age(Option<(i64, bool)>, Option<(i64, bool)>),
    Match(Vec<(usize, u8)>),
    And(Vec<Query>),
}

impl Query {
    fn body(&self) -> Value {
        match self {
            Query::City(c) => json!({"index": "by_city", "term": CITIES[*c]}),
            Query::Age(lo, hi) => {
                let mut r = serde_json::Map::new();
                if let Some((v, inc)) = lo {
                    r.insert(if *inc { "gte" } else { "gt" }.into(), json!(v));
                }
                if let Some((v, inc)) = hi {
                    r.insert(if *inc { "lte" } else { "lt" }.into(), json!(v));
                }
                json!({"index": "by_age", "range": r})
            }
            Query::Match(words) => {
                let text: Vec<String> = words.iter().map(|(w, s)| styled(WORDS[*w], *s)).collect();
                json!({"index": "bio", "match": text.join(" ")})
            }
            Query::And(qs) => json!({"and": qs.iter().map(Query::body).collect::<Vec<_>>()}),
        }
    }

    fn indexes(&self, out: &mut Vec<usize>) {
        match self {
            Query::City(_) => out.push(0),
            Query::Age(..) => out.push(1),
            Query::Match(_) => out.push(2),
            Query::And(qs) => qs.iter().for_each(|q| q.indexes(out)),
        }
    }

    fn matches(&self, key: &str, doc: &Doc) -> bool {
        match self {
            Query::City(c) => doc.has_city(*c),
            Query::Age(lo, hi) => {
                let Some(age) = doc.age().filter(|_| in_scope(1, key)) else {
                    return false;
                };
                let above = match lo {
                    Some((v, true)) => age >= *v as f64,
                    Some((v, false)) => age > *v as f64,
                    None => true,
                };
                let below = match hi {
                    Some((v, true)) => age <= *v as f64,
                    Some((v, false)) => age < *v as f64,
                    None => true,
                };
                above && below
            }
            Query::Match(words) => doc.has_words(words),
            Query::And(qs) => qs.iter().all(|q| q.matches(key, doc)),
        }
    }
}

fn simple_query() -> impl Strategy<Value = Query> {
    let bound = prop::option::of((-1i64..22, any::<bool>()));
    prop_oneof![
        (0..CITIES.len()).prop_map(Query::City),
        (bound.clone(), bound).prop_map(|(lo, hi)| match (lo, hi) {
            (None, None) => Query::Age(Some((10, true)), None),
            (lo, hi) => Query::Age(lo, hi),
        }),
        prop::collection::vec((0..WORDS.len(), any::<u8>()), 1..3).prop_map(Query::Match),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        3 => simple_query(),
        1 => prop::collection::vec(simple_query(), 2..4).prop_map(Query::And),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Doc),
    Delete(u8),
    Batch(Vec<(u8, Option<Doc>)>),
    Create(usize),
    Drop(usize),
    Rebuild(usize),
    /// Waits for the background tasks, then checks everything.
    Wait,
    Reopen,
    Flush,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<u8>(), doc()).prop_map(|(k, d)| Op::Put(k, d)),
        3 => any::<u8>().prop_map(Op::Delete),
        3 => (prop::collection::vec((any::<u8>(), prop::option::weighted(0.8, doc())), 1..6), any::<bool>())
            .prop_map(|(mut items, twice)| {
                // The same key twice in one batch (the later write wins).
                if twice {
                    let (k, _) = items[0].clone();
                    let again = Doc::Json { cities: vec![1], list: false, has_city: true, age: Some(Age::Int(7)), bio: None };
                    items.insert(1, (k, Some(again)));
                }
                Op::Batch(items)
            }),
        3 => (0..INDEXES.len()).prop_map(Op::Create),
        1 => (0..INDEXES.len()).prop_map(Op::Drop),
        1 => (0..INDEXES.len()).prop_map(Op::Rebuild),
        1 => Just(Op::Wait),
        1 => Just(Op::Reopen),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
    ]
}

/// What the test knows of an index: absent, or present and (once a `Wait` saw its build
/// finish) certainly queryable.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Absent,
    Present { ready: bool },
}

struct Harness {
    dir: tempfile::TempDir,
    db: Option<Db>,
    ix: Option<Indexes>,
    model: BTreeMap<String, Doc>,
    states: [State; 3],
}

impl Harness {
    fn new() -> Harness {
        let dir = common::scratch_dir();
        let db = common::open_small(dir.path());
        let ix = open(&db);
        Harness {
            dir,
            db: Some(db),
            ix: Some(ix),
            model: BTreeMap::new(),
            states: [State::Absent; 3],
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("db open")
    }

    fn ix(&self) -> &Indexes {
        self.ix.as_ref().expect("indexes open")
    }

    /// Closes the indexes and the engine, and opens both again from the directory.
    fn reopen(&mut self) {
        if let Some(ix) = self.ix.take() {
            ix.close();
        }
        if let Some(db) = self.db.take() {
            db.close().expect("close");
        }
        let db = common::open_small(self.dir.path());
        self.ix = Some(open(&db));
        self.db = Some(db);
    }

    /// Runs `q` page by page and compares it with the model.
    fn check_query(&self, q: &Query, limit: usize) {
        let body = q.body();
        let mut used = Vec::new();
        q.indexes(&mut used);
        let absent = used.iter().any(|i| self.states[*i] == State::Absent);
        let ready = used
            .iter()
            .all(|i| self.states[*i] == State::Present { ready: true });
        let got = match query_all(self.ix(), &body, limit) {
            Ok(got) => got,
            Err(IndexError::UnknownIndex { .. }) if absent => return,
            Err(IndexError::NotReady { .. }) if !ready => return,
            Err(e) => panic!("{body}: {e} (index states {:?})", self.states),
        };
        assert!(!absent, "{body}: answered on a dropped index: {got:?}");
        let want: Vec<(String, Vec<u8>)> = self
            .model
            .iter()
            .filter(|(k, d)| q.matches(k, d))
            .map(|(k, d)| (k.clone(), d.bytes()))
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, want, "{body} (limit {limit})");
        assert_doc_id_order(self.db(), &body.to_string(), &got);
    }

    /// Waits for every task, then checks every query, `verify`, the skipped counts and
    /// the internal records.
    fn check_all(&mut self) {
        wait_tasks(self.ix());
        for s in &mut self.states {
            if let State::Present { ready } = s {
                *ready = true;
            }
        }
        let mut queries: Vec<Query> = (0..CITIES.len()).map(Query::City).collect();
        for (lo, hi) in [
            (Some((0, true)), None),
            (None, Some((19, true))),
            (Some((5, true)), Some((10, false))),
            (Some((5, false)), Some((10, true))),
            (Some((7, true)), Some((7, true))),
            (Some((7, false)), Some((8, false))),
            (Some((-1, false)), Some((21, false))),
        ] {
            queries.push(Query::Age(lo, hi));
        }
        for w in 0..WORDS.len() {
            queries.push(Query::Match(vec![(w, 2)]));
            queries.push(Query::Match(vec![(w, 0), ((w + 1) % WORDS.len(), 1)]));
        }
        queries.push(Query::And(vec![
            Query::City(1),
            Query::Age(Some((3, true)), None),
        ]));
        queries.push(Query::And(vec![
            Query::Match(vec![(0, 0)]),
            Query::City(2),
            Query::Age(None, Some((15, false))),
        ]));
        for (n, q) in queries.iter().enumerate() {
            self.check_query(q, [1, 2, 3, 100][n % 4]);
        }
        let reports = self.ix().verify().expect("verify");
        for r in &reports {
            assert!(r.ok(), "verify: {r:?}");
        }
        let served: BTreeSet<&str> = reports.iter().map(|r| r.index.as_str()).collect();
        for (i, name) in INDEXES.iter().enumerate() {
            let present = self.states[i] != State::Absent;
            assert_eq!(served.contains(name), present, "{name} served: {served:?}");
            if !present {
                assert!(self.ix().get(name).is_err(), "{name} was dropped");
                continue;
            }
            let want: Vec<&str> = self
                .model
                .iter()
                .filter(|(k, d)| in_scope(i, k) && !d.valid())
                .map(|(k, _)| k.as_str())
                .collect();
            let info = self.ix().get(name).expect("index info");
            let listed: Vec<&str> = info
                .skipped_sample
                .iter()
                .map(|(k, _)| k.as_str())
                .collect();
            assert_eq!(
                (info.skipped, listed),
                (want.len() as u64, want),
                "{name}: the records listed as skipped"
            );
        }
        assert_internal_records(self.db(), self.ix());
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Put(k, d) => {
                let mut b = WriteBatch::new();
                b.put(key(k), d.bytes());
                self.ix().write(b).expect("put");
                self.model.insert(key(k), d);
            }
            Op::Delete(k) => {
                let mut b = WriteBatch::new();
                b.delete(key(k));
                self.ix().write(b).expect("delete");
                self.model.remove(&key(k));
            }
            Op::Batch(items) => {
                let mut b = WriteBatch::new();
                for (k, d) in items {
                    match d {
                        Some(d) => {
                            b.put(key(k), d.bytes());
                            self.model.insert(key(k), d);
                        }
                        None => {
                            b.delete(key(k));
                            self.model.remove(&key(k));
                        }
                    }
                }
                self.ix().write(b).expect("batch");
            }
            Op::Create(i) => match (self.ix().create(index_def(i)), self.states[i]) {
                (Ok(_), State::Absent) => self.states[i] = State::Present { ready: false },
                (Err(IndexError::Exists(_)), State::Present { .. }) => {}
                (r, s) => panic!(
                    "create {}: {:?} with the index {s:?}",
                    INDEXES[i],
                    r.map(|t| t.id)
                ),
            },
            Op::Drop(i) => match (self.ix().drop_api(INDEXES[i]), self.states[i]) {
                (Ok(_), State::Present { .. }) => self.states[i] = State::Absent,
                (Err(IndexError::UnknownIndex { .. }), State::Absent) => {}
                (r, s) => panic!(
                    "drop {}: {:?} with the index {s:?}",
                    INDEXES[i],
                    r.map(|t| t.id)
                ),
            },
            Op::Rebuild(i) => match (self.ix().rebuild(INDEXES[i]), self.states[i]) {
                (Ok(_), State::Present { .. }) => {}
                (Err(IndexError::UnknownIndex { .. }), State::Absent) => {}
                (r, s) => panic!(
                    "rebuild {}: {:?} with the index {s:?}",
                    INDEXES[i],
                    r.map(|t| t.id)
                ),
            },
            Op::Wait => self.check_all(),
            Op::Reopen => self.reopen(),
            Op::Flush => self.db().flush().expect("flush"),
            Op::Compact => self.db().compact().expect("compact"),
        }
    }
}

fn run(steps: Vec<(Op, Query, usize)>) {
    let mut h = Harness::new();
    for (op, q, limit) in steps {
        h.apply(op);
        h.check_query(&q, limit);
    }
    h.check_all();
    // The indexes come back after a reopen, with the same answers.
    h.reopen();
    h.check_all();
    h.ix().close();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512),
        max_shrink_iters: 500,
        ..ProptestConfig::default()
    })]

    #[test]
    fn indexes_match_a_filtered_btreemap(
        steps in prop::collection::vec((op(), query(), 1usize..5), 1..120)
    ) {
        run(steps);
    }
}
