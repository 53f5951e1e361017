//! Term extraction: what a secondary index stores for a record.
//!
//! This crate is the logic of lsm's built-in extractors (`raw`, `json_path`,
//! `bson_path`). The server links it natively, and the standard WebAssembly extractors
//! under `extractors/` are built from it too, so the native and the WASM forms cannot
//! drift apart: one set of test vectors (`extractors/vectors.json`) runs against both.
//!
//! A path is a subset of JSONPath: `$` (the whole value), `.name`, `['name']` (any
//! name), `[3]` (an array element), `[*]` (every element of an array, or every value of
//! an object). Where a path ends on an array, each scalar element is a term (so `$.tags`
//! indexes every tag); objects and nulls give no term.

#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]

mod bson_path;
mod json_path;
mod path;

pub use bson_path::extract_bson;
pub use json_path::extract_json;
pub use path::{Path, PathError, Segment};

use serde::{Deserialize, Serialize};

/// One indexed term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Term {
    /// UTF-8 text.
    Text(String),
    /// A signed 64-bit integer.
    Integer(i64),
    /// A 64-bit float (never NaN).
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

/// The `raw` extractor: the whole value is the term (text when it is UTF-8).
pub fn extract_raw(value: &[u8]) -> Vec<Term> {
    match std::str::from_utf8(value) {
        Ok(text) => vec![Term::Text(text.to_string())],
        Err(_) => vec![Term::Bytes(value.to_vec())],
    }
}
