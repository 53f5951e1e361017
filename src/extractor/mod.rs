//! Extractors: what a secondary index stores for a record.
//!
//! An [`Extractor`] turns a record (key and stored value bytes) into [`Term`]s. The
//! built-ins (`raw`, `json_path`, `bson_path`) are native Rust over `lsm-extract`, the
//! same logic the standard WebAssembly extractors under `extractors/` are built from;
//! a `custom` extractor is an uploaded plugin (`crate::plugin::WasmExtractor`), behind the
//! same trait. The index layer sees only the trait.
//!
//! An extractor is described by an [`ExtractorSpec`], the `extractor` field of an index
//! definition: `{"type": "json_path", "path": "$.city"}`,
//! `{"type": "custom", "plugin": "email-domain", "options": {...}}`.

use serde::{Deserialize, Serialize};

pub use lsm_extract::Term;
use lsm_extract::{extract_bson, extract_json, extract_raw, Path};

/// Why an extractor gave no terms for a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExtractError {
    /// What went wrong (names the plugin for custom extractors).
    pub message: String,
}

impl ExtractError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ExtractError {
            message: message.into(),
        }
    }
}

/// Turns records into index terms. Implementations are cheap to call from many threads.
pub trait Extractor: Send + Sync {
    /// A short description for listings and errors (`json_path $.city`).
    fn describe(&self) -> String;

    /// The terms of one record.
    fn extract(&self, key: &str, value: &[u8]) -> Result<Vec<Term>, ExtractError>;

    /// The terms of many records; one result per entry, in order. Plugins override
    /// this to make one call for the whole batch.
    fn extract_batch(&self, entries: &[(&str, &[u8])]) -> Vec<Result<Vec<Term>, ExtractError>> {
        entries.iter().map(|(k, v)| self.extract(k, v)).collect()
    }
}

/// The `extractor` of an index definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExtractorSpec {
    /// The whole value (text when UTF-8, else bytes).
    Raw {},
    /// A JSON value at a path.
    JsonPath {
        /// `$.a.b`, `$.tags[*]`, ...
        path: String,
    },
    /// A BSON value at a path.
    BsonPath {
        /// `$.a.b`, `$.tags[*]`, ...
        path: String,
    },
    /// An uploaded `extractor` plugin.
    Custom {
        /// The plugin's name in the instance's plugin store.
        plugin: String,
        /// Handed to the plugin as JSON text with every call.
        #[serde(default = "empty_object")]
        options: serde_json::Value,
    },
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Builds a native extractor from `spec`; `None` for `custom` (the plugin layer builds
/// those).
pub fn native(spec: &ExtractorSpec) -> Result<Option<Box<dyn Extractor>>, ExtractError> {
    let parse = |p: &str| Path::parse(p).map_err(|e| ExtractError::new(e.to_string()));
    Ok(match spec {
        ExtractorSpec::Raw {} => Some(Box::new(RawExtractor)),
        ExtractorSpec::JsonPath { path } => Some(Box::new(JsonPathExtractor(parse(path)?))),
        ExtractorSpec::BsonPath { path } => Some(Box::new(BsonPathExtractor(parse(path)?))),
        ExtractorSpec::Custom { .. } => None,
    })
}

/// `raw`: the whole value.
#[derive(Debug, Clone, Copy)]
pub struct RawExtractor;

impl Extractor for RawExtractor {
    fn describe(&self) -> String {
        "raw".into()
    }
    fn extract(&self, _key: &str, value: &[u8]) -> Result<Vec<Term>, ExtractError> {
        Ok(extract_raw(value))
    }
}

/// `json_path`: the JSON value at a path.
#[derive(Debug, Clone)]
pub struct JsonPathExtractor(Path);

impl Extractor for JsonPathExtractor {
    fn describe(&self) -> String {
        format!("json_path {}", self.0.as_str())
    }
    fn extract(&self, _key: &str, value: &[u8]) -> Result<Vec<Term>, ExtractError> {
        extract_json(&self.0, value).map_err(ExtractError::new)
    }
}

/// `bson_path`: the BSON value at a path.
#[derive(Debug, Clone)]
pub struct BsonPathExtractor(Path);

impl Extractor for BsonPathExtractor {
    fn describe(&self) -> String {
        format!("bson_path {}", self.0.as_str())
    }
    fn extract(&self, _key: &str, value: &[u8]) -> Result<Vec<Term>, ExtractError> {
        extract_bson(&self.0, value).map_err(ExtractError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_the_registry_shape() {
        let spec: ExtractorSpec =
            serde_json::from_str(r#"{"type": "json_path", "path": "$.city"}"#).expect("spec");
        let x = native(&spec).expect("ok").expect("native");
        assert_eq!(x.describe(), "json_path $.city");
        assert_eq!(
            x.extract("k", br#"{"city": "Recife"}"#).expect("terms"),
            vec![Term::Text("Recife".into())]
        );
        let custom: ExtractorSpec =
            serde_json::from_str(r#"{"type": "custom", "plugin": "email-domain"}"#).expect("spec");
        assert!(matches!(&custom, ExtractorSpec::Custom { options, .. } if options.is_object()));
        assert!(native(&custom).expect("ok").is_none());
        assert!(serde_json::from_str::<ExtractorSpec>(r#"{"type": "xpath"}"#).is_err());
        assert!(serde_json::from_str::<ExtractorSpec>(r#"{"type": "raw", "path": "x"}"#).is_err());
        let bad = ExtractorSpec::JsonPath {
            path: "city".into(),
        };
        assert!(native(&bad).is_err());
    }

    #[test]
    fn batches_default_to_one_call_per_entry() {
        let x = RawExtractor;
        let out = x.extract_batch(&[("a", b"x"), ("b", &[0xff])]);
        assert_eq!(out[0].as_ref().expect("a"), &vec![Term::Text("x".into())]);
        assert_eq!(out[1].as_ref().expect("b"), &vec![Term::Bytes(vec![0xff])]);
    }
}
