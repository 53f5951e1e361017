//! Index definitions: what the registry file and `POST /indexes` describe.

use serde::{Deserialize, Serialize};

use crate::extractor::{ExtractorSpec, Term};
use crate::names::is_valid_name;
/// The longest index name.
pub use crate::names::MAX_NAME_LEN;

/// The longest term, in bytes of its encoded text. A record with a longer term fails
/// extraction (and follows the index's `on_error`): terms are parts of engine keys.
pub const MAX_TERM_LEN: usize = 1024;
/// The most terms one record may give one index.
pub const MAX_TERMS_PER_RECORD: usize = 4096;

/// How an index is queried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexType {
    /// `term` queries: records whose extracted terms include the term.
    Equality,
    /// `term` and `range` (`gte`/`gt`/`lte`/`lt`) queries over ordered terms.
    Range,
    /// `match` queries: text terms are split into lowercase words; a record matches
    /// when it has every word of the query.
    Text,
}

impl IndexType {
    /// The name used in definitions.
    pub fn name(self) -> &'static str {
        match self {
            IndexType::Equality => "equality",
            IndexType::Range => "range",
            IndexType::Text => "text",
        }
    }
}

/// What a write does when the extractor fails on a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The write is refused (HTTP 422) and nothing of it is applied.
    #[default]
    Reject,
    /// The record is stored but not indexed; it is counted and listed as skipped.
    Skip,
}

/// One secondary index, as the registry file and the admin API describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexDef {
    /// `[a-z0-9_-]`, 1 to 64 characters, starting with a letter or digit.
    pub index_name: String,
    /// Only keys starting with this are indexed (empty: every key). A trailing `*`
    /// (`users:*`) is accepted and means the same as without it.
    #[serde(default)]
    pub scope_prefix: String,
    /// `equality`, `range` or `text`.
    pub index_type: IndexType,
    /// How terms are taken from a record.
    pub extractor: ExtractorSpec,
    /// `reject` (default) or `skip`.
    #[serde(default)]
    pub on_error: OnError,
}

impl IndexDef {
    /// Checks the definition and normalizes `scope_prefix` (drops a trailing `*`).
    pub fn validate(mut self) -> Result<IndexDef, String> {
        check_name(&self.index_name)?;
        if let Some(p) = self.scope_prefix.strip_suffix('*') {
            self.scope_prefix = p.to_string();
        }
        if self.scope_prefix.starts_with('\0') {
            return Err(
                "scope_prefix cannot start with U+0000 (reserved for the index records)".into(),
            );
        }
        if self.scope_prefix.len() > 1024 {
            return Err("scope_prefix is longer than 1024 bytes".into());
        }
        if let ExtractorSpec::Custom { plugin, .. } = &self.extractor {
            if plugin.is_empty() {
                return Err("extractor.plugin is empty".into());
            }
        }
        crate::extractor::native(&self.extractor).map_err(|e| format!("extractor: {e}"))?;
        Ok(self)
    }

    /// Whether `key` is in the index's scope.
    pub fn in_scope(&self, key: &str) -> bool {
        key.starts_with(&self.scope_prefix)
    }

    /// The plugin the index's extractor runs, if it is `custom`.
    pub fn plugin(&self) -> Option<&str> {
        match &self.extractor {
            ExtractorSpec::Custom { plugin, .. } => Some(plugin),
            _ => None,
        }
    }
}

/// Reads an instance's `indexes_file`: TOML with one `[[index]]` table per index, or
/// JSON (`{"indexes": [...]}` or a bare array), chosen by the file's extension
/// (`.json` is JSON, anything else TOML). Definitions are checked; names must be
/// unique.
pub fn load_file(path: &std::path::Path) -> Result<Vec<IndexDef>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TomlShape {
        #[serde(default)]
        index: Vec<IndexDef>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum JsonShape {
        List(Vec<IndexDef>),
        Object { indexes: Vec<IndexDef> },
    }
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let defs = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        match serde_json::from_str::<JsonShape>(&text) {
            Ok(JsonShape::List(d)) | Ok(JsonShape::Object { indexes: d }) => d,
            Err(e) => {
                return Err(format!(
                    "{shown}: expected a list of index definitions or {{\"indexes\": [...]}}: {e}"
                ))
            }
        }
    } else {
        toml::from_str::<TomlShape>(&text)
            .map_err(|e| format!("{shown}: {}", e.to_string().trim_end()))?
            .index
    };
    let mut out: Vec<IndexDef> = Vec::with_capacity(defs.len());
    for d in defs {
        let d = d.validate().map_err(|e| format!("{shown}: {e}"))?;
        if out.iter().any(|o| o.index_name == d.index_name) {
            return Err(format!(
                "{shown}: index {:?} is defined twice",
                d.index_name
            ));
        }
        out.push(d);
    }
    Ok(out)
}

/// Checks an index name: `[a-z0-9_-]{1,64}`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    match is_valid_name(name) {
        true => Ok(()),
        false => Err(format!(
            "index name {name:?} must be 1 to {MAX_NAME_LEN} of a-z, 0-9, '_' and '-', starting with a letter or digit"
        )),
    }
}

/// The words of a text, as a `text` index stores and queries them: maximal runs of
/// alphanumeric characters, lowercased. Duplicates are removed; order is kept.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let w = word.to_lowercase();
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// The terms an index of `index_type` stores for extracted `terms`: text indexes store
/// the words of text terms (other terms as they are); the others store terms as they
/// are. Duplicates are removed.
pub fn index_terms(index_type: IndexType, terms: Vec<Term>) -> Vec<Term> {
    let mut out: Vec<Term> = Vec::with_capacity(terms.len());
    let mut push = |t: Term| {
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for t in terms {
        match (index_type, t) {
            (IndexType::Text, Term::Text(s)) => {
                for w in tokenize(&s) {
                    push(Term::Text(w));
                }
            }
            (_, t) => push(t),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn def(json: &str) -> Result<IndexDef, String> {
        serde_json::from_str::<IndexDef>(json)
            .map_err(|e| e.to_string())
            .and_then(IndexDef::validate)
    }

    #[test]
    fn definitions_parse_and_normalize() {
        let d = def(
            r#"{"index_name":"by_city","scope_prefix":"users:*","index_type":"equality",
                      "extractor":{"type":"json_path","path":"$.city"}}"#,
        )
        .unwrap();
        assert_eq!(d.scope_prefix, "users:");
        assert_eq!(d.on_error, OnError::Reject);
        assert!(d.in_scope("users:1") && !d.in_scope("orders:1"));
        let d = def(
            r#"{"index_name":"dom","index_type":"text","on_error":"skip",
                      "extractor":{"type":"custom","plugin":"email-domain","options":{"x":1}}}"#,
        )
        .unwrap();
        assert_eq!(d.plugin(), Some("email-domain"));
        assert_eq!(d.on_error, OnError::Skip);
    }

    #[test]
    fn bad_definitions_say_why() {
        for (json, says) in [
            (
                r#"{"index_name":"Bad Name","index_type":"range","extractor":{"type":"raw"}}"#,
                "index name",
            ),
            (
                r#"{"index_name":"a","index_type":"fuzzy","extractor":{"type":"raw"}}"#,
                "fuzzy",
            ),
            (
                r#"{"index_name":"a","index_type":"range","extractor":{"type":"json_path","path":"city"}}"#,
                "extractor",
            ),
            (
                r#"{"index_name":"a","index_type":"range","extractor":{"type":"raw"},"extra":1}"#,
                "extra",
            ),
            (
                r#"{"index_name":"a","scope_prefix":"\u0000x","index_type":"range","extractor":{"type":"raw"}}"#,
                "U+0000",
            ),
        ] {
            let e = def(json).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    #[test]
    fn text_terms_are_lowercase_words() {
        assert_eq!(
            tokenize("Rust, storage & RUST engines—fast"),
            ["rust", "storage", "engines", "fast"]
        );
        assert_eq!(tokenize("  "), Vec::<String>::new());
        assert_eq!(tokenize("Ação São-Paulo"), ["ação", "são", "paulo"]);
        let terms = index_terms(
            IndexType::Text,
            vec![
                Term::Text("a B".into()),
                Term::Integer(3),
                Term::Text("b".into()),
            ],
        );
        assert_eq!(
            terms,
            [
                Term::Text("a".into()),
                Term::Text("b".into()),
                Term::Integer(3)
            ]
        );
        let terms = index_terms(
            IndexType::Equality,
            vec![Term::Text("a B".into()), Term::Text("a B".into())],
        );
        assert_eq!(terms, [Term::Text("a B".into())]);
    }
}
