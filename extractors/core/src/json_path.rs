//! `json_path`: terms from a JSON value.

use serde_json::Value;

use crate::path::{Path, Segment};
use crate::Term;

/// The terms at `path` in the JSON text `value`; an error when it is not JSON.
pub fn extract_json(path: &Path, value: &[u8]) -> Result<Vec<Term>, String> {
    let doc: Value =
        serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
    let mut current: Vec<&Value> = vec![&doc];
    for segment in path.segments() {
        let mut next = Vec::new();
        for v in current {
            match (segment, v) {
                (Segment::Field(name), Value::Object(map)) => next.extend(map.get(name)),
                (Segment::Index(i), Value::Array(items)) => next.extend(items.get(*i)),
                (Segment::Wildcard, Value::Array(items)) => next.extend(items.iter()),
                (Segment::Wildcard, Value::Object(map)) => next.extend(map.values()),
                _ => {}
            }
        }
        current = next;
    }
    let mut terms = Vec::new();
    for v in current {
        match v {
            Value::Array(items) => terms.extend(items.iter().filter_map(scalar)),
            other => terms.extend(scalar(other)),
        }
    }
    Ok(terms)
}

fn scalar(v: &Value) -> Option<Term> {
    match v {
        Value::String(s) => Some(Term::Text(s.clone())),
        Value::Bool(b) => Some(Term::Boolean(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(Term::Integer(i)),
            None => n.as_f64().filter(|f| !f.is_nan()).map(Term::Float),
        },
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}
