//! The options an index gives its extractor.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::extract::Path;

/// The index's `extractor.options`: a JSON object (`{}` when none were given).
///
/// An extractor receives them in [`Extractor::configure`](crate::Extractor::configure),
/// called once per distinct options text; what it returns is kept and handed to every
/// [`Extractor::extract`](crate::Extractor::extract) call with the same options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    text: String,
    fields: Map<String, Value>,
}

impl Options {
    /// Parses options text. Empty text is the same as `{}`; anything but a JSON object
    /// is an error.
    pub fn parse(text: &str) -> Result<Options, String> {
        let fields = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(fields)) => fields,
                Ok(other) => {
                    return Err(format!(
                        "options must be a JSON object, not {}",
                        kind_of(&other)
                    ))
                }
                Err(e) => return Err(format!("options are not valid JSON: {e}")),
            }
        };
        Ok(Options {
            text: text.to_string(),
            fields,
        })
    }

    /// The options as the host passed them.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every option.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The option `name`, if given.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// The text option `name`: `None` when it is absent, an error when it is not text.
    pub fn str(&self, name: &str) -> Result<Option<&str>, String> {
        match self.fields.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "option {name:?} must be text, not {}",
                kind_of(other)
            )),
        }
    }

    /// The option `name` as a path (`$.address.city`), or `default` when it is absent;
    /// an error when it is absent without a default, not text, or not a valid path.
    pub fn path(&self, name: &str, default: Option<&str>) -> Result<Path, String> {
        let text = match (self.str(name)?, default) {
            (Some(text), _) => text,
            (None, Some(default)) => default,
            (None, None) => {
                return Err(format!(
                    "option {name:?} is required, e.g. {{\"{name}\": \"$.city\"}}"
                ))
            }
        };
        Path::parse(text).map_err(|e| format!("option {name:?}: {e}"))
    }

    /// Fails when an option other than `known` is given, so that a misspelt option is
    /// reported instead of silently ignored.
    pub fn allow_only(&self, known: &[&str]) -> Result<(), String> {
        match self.fields.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) if known.is_empty() => Err(format!(
                "unknown option {unknown:?}: this plugin takes none"
            )),
            Some(unknown) => Err(format!(
                "unknown option {unknown:?} (known: {})",
                known.join(", ")
            )),
        }
    }

    /// The options as a `T` (typically a `#[derive(Deserialize)]` struct).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(Value::Object(self.fields.clone()))
            .map_err(|e| format!("invalid options: {e}"))
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_and_refuses_the_rest() {
        assert!(Options::parse("").expect("empty").fields().is_empty());
        assert!(Options::parse("{}").expect("{}").fields().is_empty());
        let o = Options::parse(r#"{"path": "$.a", "n": 1}"#).expect("object");
        assert_eq!(o.str("path"), Ok(Some("$.a")));
        assert_eq!(o.str("missing"), Ok(None));
        assert!(o.str("n").expect_err("number").contains("must be text"));
        assert!(Options::parse("[1]")
            .expect_err("array")
            .contains("JSON object"));
        assert!(Options::parse("{")
            .expect_err("bad")
            .contains("not valid JSON"));
    }

    #[test]
    fn paths_defaults_and_unknown_options() {
        let o = Options::parse(r#"{"path": "$.city"}"#).expect("parse");
        assert_eq!(o.path("path", None).expect("path").as_str(), "$.city");
        let none = Options::parse("{}").expect("parse");
        assert_eq!(
            none.path("path", Some("$.email"))
                .expect("default")
                .as_str(),
            "$.email"
        );
        assert!(none
            .path("path", None)
            .expect_err("required")
            .contains("required"));
        let bad = Options::parse(r#"{"path": "city"}"#).expect("parse");
        assert!(bad
            .path("path", None)
            .expect_err("invalid")
            .contains("invalid path"));
        assert!(o.allow_only(&["path"]).is_ok());
        assert!(o
            .allow_only(&["field"])
            .expect_err("unknown")
            .contains("\"path\""));
        assert!(o.allow_only(&[]).expect_err("none").contains("takes none"));
    }

    #[test]
    fn deserializes_into_a_struct() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Opts {
            #[serde(default)]
            lowercase: bool,
        }
        let o = Options::parse(r#"{"lowercase": true}"#).expect("parse");
        assert_eq!(o.deserialize::<Opts>(), Ok(Opts { lowercase: true }));
        let bad = Options::parse(r#"{"lowercse": true}"#).expect("parse");
        assert!(bad
            .deserialize::<Opts>()
            .expect_err("unknown")
            .starts_with("invalid options"));
    }
}
