//! `bson_path`: terms from a BSON document, read in place (no full decoding).
//!
//! lsm's `bson` codec stores a value that is not a document as `{"$value": value}`;
//! such a document is read as that value, so `$` means the same for both codecs.

use bson::raw::{RawArray, RawBsonRef, RawDocument};

use crate::path::{Path, Segment};
use crate::Term;

/// The terms at `path` in the BSON document `value`; an error when it is not BSON.
pub fn extract_bson(path: &Path, value: &[u8]) -> Result<Vec<Term>, String> {
    let doc = RawDocument::from_bytes(value).map_err(|e| format!("value is not BSON: {e}"))?;
    let root = unwrap_value(doc)?;
    let mut current: Vec<RawBsonRef<'_>> = vec![root];
    for segment in path.segments() {
        let mut next = Vec::new();
        for v in current {
            match (segment, v) {
                (Segment::Field(name), RawBsonRef::Document(d)) => {
                    next.extend(d.get(name).map_err(bad)?)
                }
                (Segment::Index(i), RawBsonRef::Array(a)) => {
                    if let Some(item) = array_items(a)?.into_iter().nth(*i) {
                        next.push(item);
                    }
                }
                (Segment::Wildcard, RawBsonRef::Array(a)) => next.extend(array_items(a)?),
                (Segment::Wildcard, RawBsonRef::Document(d)) => {
                    for entry in d.iter() {
                        next.push(entry.map_err(bad)?.1);
                    }
                }
                _ => {}
            }
        }
        current = next;
    }
    let mut terms = Vec::new();
    for v in current {
        match v {
            RawBsonRef::Array(a) => terms.extend(array_items(a)?.into_iter().filter_map(scalar)),
            other => terms.extend(scalar(other)),
        }
    }
    Ok(terms)
}

fn bad(e: impl std::fmt::Display) -> String {
    format!("damaged BSON: {e}")
}

fn unwrap_value(doc: &RawDocument) -> Result<RawBsonRef<'_>, String> {
    let mut iter = doc.iter();
    if let Some(first) = iter.next() {
        let (name, value) = first.map_err(bad)?;
        if name.as_str() == "$value" && iter.next().is_none() {
            return Ok(value);
        }
    }
    Ok(RawBsonRef::Document(doc))
}

fn array_items(a: &RawArray) -> Result<Vec<RawBsonRef<'_>>, String> {
    a.into_iter().map(|item| item.map_err(bad)).collect()
}

fn scalar(v: RawBsonRef<'_>) -> Option<Term> {
    match v {
        RawBsonRef::String(s) => Some(Term::Text(s.to_string())),
        RawBsonRef::Boolean(b) => Some(Term::Boolean(b)),
        RawBsonRef::Int32(i) => Some(Term::Integer(i64::from(i))),
        RawBsonRef::Int64(i) => Some(Term::Integer(i)),
        RawBsonRef::Double(f) => (!f.is_nan()).then_some(Term::Float(f)),
        RawBsonRef::DateTime(d) => Some(Term::Integer(d.timestamp_millis())),
        RawBsonRef::ObjectId(id) => Some(Term::Text(id.to_hex())),
        RawBsonRef::Binary(b) => Some(Term::Bytes(b.bytes.to_vec())),
        _ => None,
    }
}
