//! Indexed queries: parsing, planning over posting lists, execution at a snapshot, and
//! the cursors that keep pages stable.
//!
//! Results come in doc id order (the order records were last written). A query reads
//! at an engine snapshot; its cursor keeps that snapshot (and the index generations the
//! plan used) on the server, so later pages see exactly the data the first page saw:
//! no record repeats or goes missing however many writes, flushes, compactions or
//! rebuilds happen between pages. Idle cursors expire after the cursor time-to-live.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};

pub use super::cursor::Cursors;
use super::cursor::{decode_cursor, encode_cursor, random_id, OpenCursor};
use super::def::{tokenize, IndexType};
use super::error::{IndexError, Result};
use super::keys;
use super::list::{Intersection, Postings, ReadStats, TermList, Union};
use super::postings::Meta;
use super::registry::{Gen, IndexSet};
use super::term;
use crate::engine::Snapshot;
use crate::extractor::Term;

/// The most terms a `range` may cover.
pub const MAX_RANGE_TERMS: usize = 65_536;

/// A condition on one index, or an AND of conditions.
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// Records with this term.
    Term {
        /// The index.
        index: String,
        /// The term.
        term: Term,
    },
    /// Records with a term in the range (range indexes).
    Range {
        /// The index.
        index: String,
        /// Lower bound.
        lower: Bound<Term>,
        /// Upper bound.
        upper: Bound<Term>,
    },
    /// Records with every word of the text (text indexes).
    Match {
        /// The index.
        index: String,
        /// The text.
        text: String,
    },
    /// Records matching every clause.
    And(Vec<Clause>),
}

/// A parsed `POST /query` body.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// What to find.
    pub clause: Clause,
    /// Results per page (default and maximum from the limits).
    pub limit: Option<usize>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Include the plan in the answer.
    pub explain: bool,
    /// Lowers the configured timeout.
    pub timeout_ms: Option<u64>,
    /// Lowers the configured `max_postings_scanned`.
    pub max_postings_scanned: Option<u64>,
    /// Identifies the query for its cursors.
    fingerprint: u64,
}

/// Guards on queries (from `[server]` in `lsm.toml`).
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Results per page when the request gives no `limit`.
    pub default_limit: usize,
    /// The largest `limit`.
    pub max_limit: usize,
    /// The longest a query may run.
    pub timeout: Duration,
    /// The most postings a query may read.
    pub max_postings_scanned: u64,
    /// How long an idle cursor keeps its snapshot.
    pub cursor_ttl: Duration,
    /// The most open cursors per instance (the oldest is dropped beyond it).
    pub max_cursors: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            default_limit: 100,
            max_limit: 10_000,
            timeout: Duration::from_secs(10),
            max_postings_scanned: 10_000_000,
            cursor_ttl: Duration::from_secs(300),
            max_cursors: 1024,
        }
    }
}

fn invalid(msg: impl Into<String>) -> IndexError {
    IndexError::Invalid(msg.into())
}

/// A JSON value as a term.
pub fn json_term(v: &Value, what: &str) -> Result<Term> {
    match v {
        Value::String(s) => Ok(Term::Text(s.clone())),
        Value::Bool(b) => Ok(Term::Boolean(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Term::Integer(i))
            } else if let Some(f) = n.as_f64() {
                Ok(Term::Float(f))
            } else {
                Err(invalid(format!("{what}: unsupported number {n}")))
            }
        }
        _ => Err(invalid(format!(
            "{what} must be a string, number or boolean, not {v}"
        ))),
    }
}

fn parse_clause(obj: &Map<String, Value>, top: bool) -> Result<Clause> {
    const PAGE_FIELDS: [&str; 5] = [
        "limit",
        "cursor",
        "explain",
        "timeout_ms",
        "max_postings_scanned",
    ];
    for k in obj.keys() {
        let known = matches!(k.as_str(), "index" | "term" | "range" | "match" | "and")
            || (top && PAGE_FIELDS.contains(&k.as_str()));
        if !known {
            return Err(invalid(format!(
                "unknown field {k:?}; a query has index with term, range or match, or and: [...]"
            )));
        }
    }
    if let Some(and) = obj.get("and") {
        if obj.contains_key("index") {
            return Err(invalid("a clause has either and or index, not both"));
        }
        let items = and
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| invalid("and must be a non-empty array of clauses"))?;
        if items.len() > 16 {
            return Err(invalid("and takes at most 16 clauses"));
        }
        let clauses = items
            .iter()
            .map(|c| {
                c.as_object()
                    .ok_or_else(|| invalid("each clause of and is an object"))
                    .and_then(|o| parse_clause(o, false))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Clause::And(clauses));
    }
    let index = obj
        .get("index")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("index (a string) is required: the index to query"))?
        .to_string();
    let given: Vec<&str> = ["term", "range", "match"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    match given.as_slice() {
        ["term"] => Ok(Clause::Term {
            term: json_term(&obj["term"], "term")?,
            index,
        }),
        ["match"] => Ok(Clause::Match {
            text: obj["match"]
                .as_str()
                .ok_or_else(|| invalid("match must be a string"))?
                .to_string(),
            index,
        }),
        ["range"] => {
            let r = obj["range"]
                .as_object()
                .ok_or_else(|| invalid("range must be an object with gte/gt/lte/lt"))?;
            let mut lower = Bound::Unbounded;
            let mut upper = Bound::Unbounded;
            for (k, v) in r {
                let t = json_term(v, &format!("range.{k}"))?;
                let (slot, b) = match k.as_str() {
                    "gte" => (&mut lower, Bound::Included(t)),
                    "gt" => (&mut lower, Bound::Excluded(t)),
                    "lte" => (&mut upper, Bound::Included(t)),
                    "lt" => (&mut upper, Bound::Excluded(t)),
                    _ => return Err(invalid(format!("range.{k}: expected gte, gt, lte or lt"))),
                };
                if !matches!(slot, Bound::Unbounded) {
                    return Err(invalid("range has two lower or two upper bounds"));
                }
                *slot = b;
            }
            if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
                return Err(invalid("range needs at least one of gte, gt, lte, lt"));
            }
            Ok(Clause::Range {
                index,
                lower,
                upper,
            })
        }
        [] => Err(invalid(format!(
            "the clause on index {index:?} needs term, range or match"
        ))),
        _ => Err(invalid("a clause has one of term, range or match")),
    }
}

impl QueryRequest {
    /// Parses a request body.
    pub fn parse(body: &Value) -> Result<QueryRequest> {
        let obj = body
            .as_object()
            .ok_or_else(|| invalid("the query must be a JSON object"))?;
        let clause = parse_clause(obj, true)?;
        let uint = |k: &str| -> Result<Option<u64>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| invalid(format!("{k} must be a non-negative integer"))),
            }
        };
        let cursor = match obj.get("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid("cursor must be a string (a previous next_cursor)")),
        };
        let explain = match obj.get("explain") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("explain must be true or false")),
        };
        let mut clause_only = obj.clone();
        for k in [
            "limit",
            "cursor",
            "explain",
            "timeout_ms",
            "max_postings_scanned",
        ] {
            clause_only.remove(k);
        }
        let fingerprint =
            xxhash_rust::xxh3::xxh3_64(Value::Object(clause_only).to_string().as_bytes());
        Ok(QueryRequest {
            clause,
            limit: uint("limit")?.map(|l| l as usize),
            cursor,
            explain,
            timeout_ms: uint("timeout_ms")?,
            max_postings_scanned: uint("max_postings_scanned")?,
            fingerprint,
        })
    }

    /// Whether the query has a `range` clause.
    pub fn has_range(&self) -> bool {
        fn walk(c: &Clause) -> bool {
            match c {
                Clause::Range { .. } => true,
                Clause::And(cs) => cs.iter().any(walk),
                _ => false,
            }
        }
        walk(&self.clause)
    }

    /// The indexes the query reads.
    pub fn indexes(&self) -> Vec<&str> {
        fn walk<'a>(c: &'a Clause, out: &mut Vec<&'a str>) {
            match c {
                Clause::Term { index, .. }
                | Clause::Range { index, .. }
                | Clause::Match { index, .. } => out.push(index),
                Clause::And(cs) => cs.iter().for_each(|c| walk(c, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.clause, &mut out);
        out
    }
}

/// One page of results.
#[derive(Debug, Serialize)]
pub struct QueryPage {
    /// `(key, stored value)` of each record, in doc id order.
    pub results: Vec<(String, Vec<u8>)>,
    /// Where the next page starts, or `None` after the last page.
    pub next_cursor: Option<String>,
    /// What the page read.
    pub stats: ReadStats,
    /// The plan, when `explain` was asked for.
    pub plan: Option<Value>,
}

/// Builds the posting iterator of a clause, and its plan.
struct Planner<'a> {
    snap: &'a Snapshot,
    set: &'a IndexSet,
    gens: HashMap<String, Arc<Gen>>,
    frozen: bool,
}

impl Planner<'_> {
    fn gen(&mut self, index: &str) -> Result<Arc<Gen>> {
        if let Some(g) = self.gens.get(index) {
            return Ok(Arc::clone(g));
        }
        if self.frozen {
            return Err(IndexError::BadCursor(
                "the cursor belongs to another query".into(),
            ));
        }
        let entry = self
            .set
            .entries
            .get(index)
            .ok_or_else(|| IndexError::UnknownIndex {
                name: index.to_string(),
                known: self.set.names(),
            })?;
        let gen = match (&entry.ready, &entry.building) {
            (Some(g), _) => Arc::clone(g),
            (None, Some(b)) => {
                return Err(IndexError::NotReady {
                    name: index.to_string(),
                    task: b.task,
                })
            }
            (None, None) => {
                return Err(IndexError::UnknownIndex {
                    name: index.to_string(),
                    known: self.set.names(),
                })
            }
        };
        self.gens.insert(index.to_string(), Arc::clone(&gen));
        Ok(gen)
    }

    fn term_list(&self, gen: &Gen, t: &Term, stats: &mut ReadStats) -> Result<TermList> {
        let text = term::encode(t).map_err(|e| invalid(e.to_string()))?;
        TermList::open(keys::term_base(&gen.prefix, &text), self.snap, stats)
    }

    fn plan(
        &mut self,
        c: &Clause,
        stats: &mut ReadStats,
    ) -> Result<(Box<dyn Postings + Send>, Value)> {
        match c {
            Clause::Term { index, term: t } => {
                let gen = self.gen(index)?;
                if gen.def.index_type == IndexType::Text {
                    if let Term::Text(s) = t {
                        return self.plan(
                            &Clause::Match {
                                index: index.clone(),
                                text: s.clone(),
                            },
                            stats,
                        );
                    }
                }
                let list = self.term_list(&gen, t, stats)?;
                let plan = json!({"index": index, "op": "term", "term": term_plan(t), "postings": list.estimate()});
                Ok((Box::new(list), plan))
            }
            Clause::Match { index, text } => {
                let gen = self.gen(index)?;
                if gen.def.index_type != IndexType::Text {
                    return Err(invalid(format!(
                        "index {index:?} is a {} index; match needs a text index (use term)",
                        gen.def.index_type.name()
                    )));
                }
                let words = tokenize(text);
                if words.is_empty() {
                    return Err(invalid("match has no words"));
                }
                let mut lists: Vec<Box<dyn Postings + Send>> = Vec::new();
                let mut parts = Vec::new();
                for w in words {
                    let list = self.term_list(&gen, &Term::Text(w.clone()), stats)?;
                    parts.push(json!({"word": w, "postings": list.estimate()}));
                    lists.push(Box::new(list));
                }
                let plan = json!({"index": index, "op": "match", "words": parts, "strategy": "intersection"});
                Ok((Box::new(Intersection::new(lists)), plan))
            }
            Clause::Range {
                index,
                lower,
                upper,
            } => {
                let gen = self.gen(index)?;
                if gen.def.index_type != IndexType::Range {
                    return Err(invalid(format!(
                        "index {index:?} is a {} index; range queries need a range index",
                        gen.def.index_type.name()
                    )));
                }
                let (lists, terms, postings) = self.range_lists(&gen, lower, upper, stats)?;
                let plan = json!({"index": index, "op": "range", "terms": terms, "postings": postings, "strategy": "union"});
                Ok((Box::new(Union::new(lists)), plan))
            }
            Clause::And(clauses) => {
                let mut lists = Vec::new();
                let mut parts = Vec::new();
                for c in clauses {
                    let (l, p) = self.plan(c, stats)?;
                    lists.push(l);
                    parts.push(p);
                }
                let plan = json!({"op": "and", "strategy": "leapfrog intersection, smallest list first", "of": parts});
                Ok((Box::new(Intersection::new(lists)), plan))
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn range_lists(
        &self,
        gen: &Gen,
        lower: &Bound<Term>,
        upper: &Bound<Term>,
        stats: &mut ReadStats,
    ) -> Result<(Vec<Box<dyn Postings + Send>>, usize, u64)> {
        let enc = |t: &Term| term::encode(t).map_err(|e| invalid(e.to_string()));
        let lo = match lower {
            Bound::Included(t) | Bound::Excluded(t) => Some(enc(t)?),
            Bound::Unbounded => None,
        };
        let hi = match upper {
            Bound::Included(t) | Bound::Excluded(t) => Some(enc(t)?),
            Bound::Unbounded => None,
        };
        // Both bounds in one type: the first letter of the encoding.
        let tag = match (&lo, &hi) {
            (Some(l), Some(h)) if l.as_bytes()[0] != h.as_bytes()[0] => {
                return Err(invalid(
                    "the bounds of a range must be of one type (numbers, text, ...)",
                ))
            }
            (Some(t), _) | (_, Some(t)) => t[..1].to_string(),
            (None, None) => return Err(invalid("range needs a bound")),
        };
        let start = format!("{}{}", gen.prefix, lo.as_deref().unwrap_or(&tag));
        let end = match &hi {
            Some(h) => keys::range_upper_bound(&gen.prefix, h),
            // Every term of the type: the next type letter.
            None => format!("{}{}", gen.prefix, (tag.as_bytes()[0] + 1) as char),
        };
        let mut lists: Vec<Box<dyn Postings + Send>> = Vec::new();
        let mut postings = 0;
        let above = |text: &str| match (lower, &lo) {
            (Bound::Included(_), Some(l)) => text >= l.as_str(),
            (Bound::Excluded(_), Some(l)) => text > l.as_str(),
            _ => true,
        };
        let below = |text: &str| match (upper, &hi) {
            (Bound::Included(_), Some(h)) => text <= h.as_str(),
            (Bound::Excluded(_), Some(h)) => text < h.as_str(),
            _ => true,
        };
        let too_many = || {
            invalid(format!(
                "the range covers more than {MAX_RANGE_TERMS} terms; narrow it"
            ))
        };
        // The dictionary (in term order) gives the terms without reading their blocks;
        // each term's meta record is then read at the snapshot (absent: too new for it).
        let first = lo.as_deref().unwrap_or(&tag);
        if let Some(terms) = gen.terms.range(Bound::Included(first), Bound::Unbounded) {
            let covered = terms
                .iter()
                .take_while(|t| t.starts_with(tag.as_str()) && below(t))
                .filter(|t| above(t));
            for text in covered {
                if lists.len() >= MAX_RANGE_TERMS {
                    return Err(too_many());
                }
                let base = keys::term_base(&gen.prefix, text);
                let Some(bytes) = self.snap.get(keys::meta_key(&base))? else {
                    continue;
                };
                stats.terms_read += 1;
                stats.check_time()?;
                let meta = Meta::decode(&bytes)?;
                postings += meta.total;
                lists.push(Box::new(TermList::with_meta(base, meta)));
            }
            let n = lists.len();
            return Ok((lists, n, postings));
        }
        for item in self.snap.iter_range(start.as_str()..end.as_str())? {
            let (key, value) = item?;
            let Some(text) = keys::term_of_meta_key(&gen.prefix, &key) else {
                continue;
            };
            if !(text.starts_with(tag.as_str()) && above(text) && below(text)) {
                continue;
            }
            stats.terms_read += 1;
            stats.check_time()?;
            if lists.len() >= MAX_RANGE_TERMS {
                return Err(too_many());
            }
            let meta = Meta::decode(&value)?;
            postings += meta.total;
            lists.push(Box::new(TermList::with_meta(
                keys::term_base(&gen.prefix, text),
                meta,
            )));
        }
        let n = lists.len();
        Ok((lists, n, postings))
    }
}

fn term_plan(t: &Term) -> Value {
    match t {
        Term::Text(s) => json!(s),
        Term::Integer(i) => json!(i),
        Term::Float(f) => json!(f),
        Term::Boolean(b) => json!(b),
        Term::Bytes(b) => json!({"bytes": b.len()}),
    }
}

/// Runs one page of `req` against `set`, keeping cursors in `cursors`. A first page
/// reads `snap`, which must be taken together with `set` (see
/// [`Indexes::query`](super::Indexes::query)); later pages read their cursor's.
pub fn run(
    snap: Snapshot,
    set: &IndexSet,
    cursors: &Cursors,
    limits: &QueryLimits,
    req: &QueryRequest,
) -> Result<QueryPage> {
    let limit = req.limit.unwrap_or(limits.default_limit);
    if limit == 0 || limit > limits.max_limit {
        return Err(invalid(format!(
            "limit must be between 1 and {} (the server's query_max_limit)",
            limits.max_limit
        )));
    }
    let timeout_ms = req
        .timeout_ms
        .unwrap_or(u64::MAX)
        .min(limits.timeout.as_millis() as u64);
    let max_postings = req
        .max_postings_scanned
        .unwrap_or(u64::MAX)
        .min(limits.max_postings_scanned);
    let mut stats = ReadStats::new(
        max_postings,
        Some((
            Instant::now() + Duration::from_millis(timeout_ms),
            timeout_ms,
        )),
    );
    let (snap, gens, after, id) = match &req.cursor {
        Some(text) => {
            let (id, after, fp) = decode_cursor(text)?;
            if fp != req.fingerprint {
                return Err(IndexError::BadCursor(
                    "the cursor belongs to another query (send the same query with it)".into(),
                ));
            }
            let open = cursors
                .take(id, limits.cursor_ttl)
                .ok_or(IndexError::CursorExpired)?;
            if open.fingerprint != fp {
                return Err(IndexError::BadCursor(
                    "the cursor belongs to another query".into(),
                ));
            }
            (open.snap, open.gens, after, id)
        }
        None => (Arc::new(snap), HashMap::new(), 0, random_id()),
    };
    let frozen = req.cursor.is_some();
    let mut planner = Planner {
        snap: &snap,
        set,
        gens,
        frozen,
    };
    let (mut root, plan) = planner.plan(&req.clause, &mut stats)?;
    let gens = planner.gens;
    let mut results = Vec::with_capacity(limit.min(1024));
    let mut target = after.saturating_add(1);
    let mut last = after;
    let mut more = false;
    while let Some(id) = root.next_geq(target, &snap, &mut stats)? {
        target = id.saturating_add(1);
        let Some(key) = snap.get(keys::doc_key(id))? else {
            stats.dead_skipped += 1;
            stats.check_time()?;
            continue;
        };
        // A live doc id past a full page means there is a next page: its record need
        // not be read (a doc id is live exactly while its record is, see write.rs).
        if results.len() == limit {
            more = true;
            break;
        }
        let key = String::from_utf8(key).map_err(|_| {
            IndexError::Damaged(super::postings::PostingsError(format!(
                "doc {id}: key is not UTF-8"
            )))
        })?;
        let Some(value) = snap.get(&key)? else {
            stats.dead_skipped += 1;
            continue;
        };
        last = id;
        results.push((key, value));
    }
    let next_cursor = if more {
        cursors.put(
            id,
            OpenCursor {
                snap,
                gens,
                fingerprint: req.fingerprint,
                used: Instant::now(),
            },
            limits.max_cursors,
        );
        Some(encode_cursor(id, last, req.fingerprint))
    } else {
        None
    };
    Ok(QueryPage {
        results,
        next_cursor,
        stats,
        plan: req.explain.then_some(plan),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_clear_errors() {
        let q =
            QueryRequest::parse(&json!({"index": "by_city", "term": "PortoAlegre", "limit": 10}))
                .unwrap();
        assert_eq!(
            q.clause,
            Clause::Term {
                index: "by_city".into(),
                term: Term::Text("PortoAlegre".into())
            }
        );
        assert_eq!(q.limit, Some(10));
        let q = QueryRequest::parse(&json!({"and": [{"index": "a", "range": {"gte": 30, "lt": 40}}, {"index": "b", "match": "x y"}]})).unwrap();
        assert!(matches!(&q.clause, Clause::And(c) if c.len() == 2));
        assert_eq!(q.indexes(), ["a", "b"]);
        for (body, says) in [
            (json!({"term": 1}), "index"),
            (json!({"index": "a"}), "needs term, range or match"),
            (json!({"index": "a", "term": 1, "match": "x"}), "one of"),
            (
                json!({"index": "a", "range": {"gte": 1, "gt": 2}}),
                "two lower",
            ),
            (json!({"index": "a", "range": {"from": 1}}), "gte, gt"),
            (
                json!({"index": "a", "term": [1]}),
                "string, number or boolean",
            ),
            (json!({"index": "a", "term": 1, "limt": 3}), "unknown field"),
            (json!({"and": []}), "non-empty"),
            (json!({"index": "a", "term": 1, "limit": -1}), "limit"),
            (json!([1]), "object"),
        ] {
            let e = QueryRequest::parse(&body).unwrap_err().to_string();
            assert!(e.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = encode_cursor(7, 1234, 99);
        assert_eq!(decode_cursor(&c).unwrap(), (7, 1234, 99));
        for bad in ["", "q1.", "q1.!!!", "k1.AAAA", &c[..c.len() - 2]] {
            assert!(
                matches!(decode_cursor(bad), Err(IndexError::BadCursor(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_same_query_has_the_same_fingerprint_whatever_its_page_fields() {
        let a = QueryRequest::parse(&json!({"index": "a", "term": 1, "limit": 5})).unwrap();
        let b =
            QueryRequest::parse(&json!({"index": "a", "term": 1, "cursor": "x", "explain": true}))
                .unwrap();
        let c = QueryRequest::parse(&json!({"index": "a", "term": 2})).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }
}
