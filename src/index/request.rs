//! Query requests: the JSON body of `POST /query` parsed into clauses, with the
//! request's own limits and the fingerprint that ties a cursor to its query.

use std::ops::Bound;
use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{IndexError, Result};
use crate::extractor::Term;

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
    pub(super) fingerprint: u64,
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

pub(super) fn invalid(msg: impl Into<String>) -> IndexError {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

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
