//! `json_path`: terms from a JSON value.
//!
//! The value is walked as it is parsed: only what lies on the path is materialized,
//! everything else is validated and skipped (`serde::de::IgnoredAny`). Building the whole
//! document as a `serde_json::Value` first (a map, a string per key and per value) cost
//! most of an extraction, and every index pays it on every write. The answer is the one
//! a parsed document would give: an object's last occurrence of a repeated key wins, and
//! `[*]` on an object visits its values in key order.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::path::{Path, Segment};
use crate::Term;

/// The terms at `path` in the JSON text `value`; an error when it is not JSON.
pub fn extract_json(path: &Path, value: &[u8]) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(value);
    Walk {
        rest: path.segments(),
        out: &mut terms,
        expand: true,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| format!("value is not JSON: {e}"))?;
    Ok(terms)
}

/// A JSON number as a term: an integer when it fits in an `i64`, else a float.
fn unsigned(u: u64) -> Term {
    match i64::try_from(u) {
        Ok(i) => Term::Integer(i),
        Err(_) => Term::Float(u as f64),
    }
}

/// Walks one value with the path segments still to apply, appending the terms it finds.
struct Walk<'p, 'o> {
    rest: &'p [Segment],
    out: &'o mut Vec<Term>,
    /// Whether an array where the path ends gives its scalar elements as terms (false for
    /// those elements themselves: an array in an array gives nothing).
    expand: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Walk<'_, '_> {
    /// A scalar is a term only where the path ends.
    fn scalar(self, term: impl FnOnce() -> Term) {
        if self.rest.is_empty() {
            self.out.push(term());
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.scalar(|| Term::Boolean(b));
        Ok(())
    }

    fn visit_i64<E>(self, i: i64) -> Result<(), E> {
        self.scalar(|| Term::Integer(i));
        Ok(())
    }

    fn visit_u64<E>(self, u: u64) -> Result<(), E> {
        self.scalar(|| unsigned(u));
        Ok(())
    }

    fn visit_f64<E>(self, f: f64) -> Result<(), E> {
        if !f.is_nan() {
            self.scalar(|| Term::Float(f));
        }
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.scalar(|| Term::Text(s.to_string()));
        Ok(())
    }

    fn visit_string<E>(self, s: String) -> Result<(), E> {
        self.scalar(|| Term::Text(s));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Walk { rest, out, expand } = self;
        match rest.split_first() {
            // The path ends on an array: each scalar element is a term.
            None if expand => {
                while seq
                    .next_element_seed(Walk {
                        rest: &[],
                        out: &mut *out,
                        expand: false,
                    })?
                    .is_some()
                {}
            }
            None => while seq.next_element::<IgnoredAny>()?.is_some() {},
            Some((Segment::Index(want), tail)) => {
                let mut i = 0;
                loop {
                    let more = match i == *want {
                        true => seq
                            .next_element_seed(Walk {
                                rest: tail,
                                out: &mut *out,
                                expand: true,
                            })?
                            .is_some(),
                        false => seq.next_element::<IgnoredAny>()?.is_some(),
                    };
                    if !more {
                        break;
                    }
                    i += 1;
                }
            }
            Some((Segment::Wildcard, tail)) => {
                while seq
                    .next_element_seed(Walk {
                        rest: tail,
                        out: &mut *out,
                        expand: true,
                    })?
                    .is_some()
                {}
            }
            Some((Segment::Field(_), _)) => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Walk { rest, out, .. } = self;
        match rest.split_first() {
            Some((Segment::Field(name), tail)) => {
                // Where this field's terms start: a repeated key replaces them.
                let mut start = None;
                while let Some(hit) = map.next_key_seed(KeyIs(name))? {
                    if hit {
                        let at = *start.get_or_insert(out.len());
                        out.truncate(at);
                        map.next_value_seed(Walk {
                            rest: tail,
                            out: &mut *out,
                            expand: true,
                        })?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Some((Segment::Wildcard, tail)) => {
                let mut per_key: BTreeMap<String, Vec<Term>> = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let mut terms = Vec::new();
                    map.next_value_seed(Walk {
                        rest: tail,
                        out: &mut terms,
                        expand: true,
                    })?;
                    per_key.insert(key, terms);
                }
                out.extend(per_key.into_values().flatten());
            }
            // An object where the path ends, or indexed like an array: no term.
            None | Some((Segment::Index(_), _)) => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            }
        }
        Ok(())
    }
}

/// Whether an object key equals the wanted field, without allocating for it.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(s == self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// The terms a fully parsed document gives: what `extract_json` must agree with.
    fn reference(path: &Path, value: &[u8]) -> Result<Vec<Term>, String> {
        let doc: Value = serde_json::from_slice(value).map_err(|e| e.to_string())?;
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
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(Term::Text(s.clone())),
            Value::Bool(b) => Some(Term::Boolean(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(Term::Integer(i)),
                None => n.as_f64().filter(|f| !f.is_nan()).map(Term::Float),
            },
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        };
        let mut terms = Vec::new();
        for v in current {
            match v {
                Value::Array(items) => terms.extend(items.iter().filter_map(scalar)),
                other => terms.extend(scalar(other)),
            }
        }
        Ok(terms)
    }

    /// JSON text with few distinct keys, so paths hit often, and repeated keys.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<u64>().prop_map(|u| u.to_string()),
            (-1e6f64..1e6).prop_map(|f| format!("{f:?}")),
            "[a-c\\\\\"é]{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(
                    (prop::sample::select(vec!["a", "b", "c", "a\\u0062"]), inner),
                    0..5
                )
                .prop_map(|kv| {
                    let fields: Vec<String> = kv
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    fn path_text() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            prop::sample::select(vec![".a", ".b", ".c", "['ab']"]).prop_map(str::to_string),
            (0usize..3).prop_map(|i| format!("[{i}]")),
            Just("[*]".to_string()),
        ];
        prop::collection::vec(segment, 0..4).prop_map(|s| format!("${}", s.concat()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn walking_agrees_with_a_parsed_document(doc in json_text(), path in path_text()) {
            let path = Path::parse(&path).unwrap();
            prop_assert_eq!(extract_json(&path, doc.as_bytes()).ok(), reference(&path, doc.as_bytes()).ok());
        }

        #[test]
        fn damaged_documents_are_errors(doc in json_text(), cut in 0usize..64, path in path_text()) {
            let path = Path::parse(&path).unwrap();
            let bytes = &doc.as_bytes()[..cut.min(doc.len())];
            prop_assert_eq!(extract_json(&path, bytes).is_err(), reference(&path, bytes).is_err());
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_and_trailing_text_is_refused() {
        let path = Path::parse("$.a").unwrap();
        let got = extract_json(&path, br#"{"a": ["x", "y"], "b": 1, "a": "z"}"#).unwrap();
        assert_eq!(got, vec![Term::Text("z".into())]);
        assert!(extract_json(&path, br#"{"a": 1} x"#).is_err());
    }
}
