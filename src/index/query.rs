//! Indexed queries: planning over posting lists and execution at a snapshot (the
//! request is parsed in `request.rs`, cursors are kept in `cursor.rs`).
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
use serde_json::{json, Value};

pub use super::cursor::Cursors;
use super::cursor::{decode_cursor, encode_cursor, random_id, OpenCursor};
use super::def::{tokenize, IndexType};
use super::error::{IndexError, Result};
use super::keys;
use super::list::{Intersection, Postings, ReadStats, TermList, Union};
use super::postings::Meta;
use super::registry::{Gen, IndexSet};
use super::request::invalid;
pub use super::request::{json_term, Clause, QueryLimits, QueryRequest};
use super::term;
use crate::engine::Snapshot;
use crate::extractor::Term;

/// The most terms a `range` may cover.
pub const MAX_RANGE_TERMS: usize = 65_536;

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
    /// Whether the request asked for the plan.
    explain: bool,
}

impl Planner<'_> {
    /// The plan node `f` builds when the request asked for the plan; `null` otherwise
    /// (building it costs allocations every query would pay for nothing).
    fn describe(&self, f: impl FnOnce() -> Value) -> Value {
        if self.explain {
            f()
        } else {
            Value::Null
        }
    }

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
                let plan = self.describe(|| json!({"index": index, "op": "term", "term": term_plan(t), "postings": list.estimate()}));
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
                    parts.push(self.describe(|| json!({"word": w, "postings": list.estimate()})));
                    lists.push(Box::new(list));
                }
                let plan = self.describe(|| json!({"index": index, "op": "match", "words": parts, "strategy": "intersection"}));
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
                let plan = self.describe(|| json!({"index": index, "op": "range", "terms": terms, "postings": postings, "strategy": "union"}));
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
                let plan = self.describe(|| json!({"op": "and", "strategy": "leapfrog intersection, smallest list first", "of": parts}));
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
        explain: req.explain,
    };
    let (mut root, plan) = planner.plan(&req.clause, &mut stats)?;
    let gens = planner.gens;
    let mut results = Vec::with_capacity(limit.min(1024));
    let mut target = after.saturating_add(1);
    let mut last = after;
    let mut more = false;
    // Candidates are read in batches (the rest of the page and one more, which says
    // whether there is a next page): one batched engine lookup per batch, so the cache
    // misses of its reads overlap. A candidate is live while its record still has the
    // version the posting was written for.
    let mut candidates: Vec<(u64, Vec<u8>)> = Vec::new();
    'pages: loop {
        let want = limit + 1 - results.len();
        candidates.clear();
        while candidates.len() < want {
            let Some(id) = root.next_geq(target, &snap, &mut stats)? else {
                break;
            };
            target = id.saturating_add(1);
            let key = root.key().ok_or_else(|| {
                IndexError::Damaged(super::postings::PostingsError(format!(
                    "posting {id} has no key"
                )))
            })?;
            candidates.push((id, key.to_vec()));
        }
        if candidates.is_empty() {
            break;
        }
        let exhausted = candidates.len() < want;
        let found = snap.get_many_versioned(
            &candidates
                .iter()
                .map(|(_, k)| k.as_slice())
                .collect::<Vec<_>>(),
        )?;
        for ((id, key), found) in candidates.drain(..).zip(found) {
            let value = match found {
                Some((version, value)) if version == id => value,
                _ => {
                    stats.dead_skipped += 1;
                    continue;
                }
            };
            // A live posting past a full page means there is a next page.
            if results.len() == limit {
                more = true;
                break 'pages;
            }
            let key = String::from_utf8(key).map_err(|_| {
                IndexError::Damaged(super::postings::PostingsError(format!(
                    "posting {id}: key is not UTF-8"
                )))
            })?;
            last = id;
            results.push((key, value));
        }
        stats.check_time()?;
        if exhausted {
            break;
        }
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
