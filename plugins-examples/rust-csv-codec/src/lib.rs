//! An lsm codec plugin: stores a JSON object of scalar fields as two CSV lines (RFC 4180),
//! a header of the field names and a row of the values, in the client's field order.
//!
//! ```text
//! {"city": "Recife", "age": 30, "active": true, "nick": null}
//! ```
//!
//! is stored as
//!
//! ```text
//! city,age,active,nick
//! "Recife",30,true,
//! ```
//!
//! Text values are always quoted and other values never are, so the stored form keeps
//! the JSON types and decodes to the same object: a quoted value is text, a bare one is
//! a number, `true`, `false`, or empty for `null`. Field names are quoted only when they
//! need it (empty, or holding `,`, `"`, a line break or surrounding spaces).
//!
//! Refused: a value that is not an object, a field whose value is an array or an object.
//! `validate` accepts exactly what `decode` reads: the header and one row with as many
//! fields, distinct names, line ends `\n` or `\r\n`, an optional final line end.

use lsm_plugin_sdk::{export_codec, Codec};
use serde_json::{Map, Value};

struct Csv;

impl Codec for Csv {
    fn encode(json: &str) -> Result<Vec<u8>, String> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("the value is not JSON: {e}"))?;
        let Value::Object(fields) = value else {
            return Err("the value must be a JSON object of scalar fields".into());
        };
        let mut header = Vec::with_capacity(fields.len());
        let mut row = Vec::with_capacity(fields.len());
        for (name, value) in &fields {
            header.push(name_field(name));
            row.push(match value {
                Value::String(s) => quote(s),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(format!(
                        "field {name:?} is not a scalar: this codec stores text, numbers, booleans and null"
                    ))
                }
            });
        }
        Ok(format!("{}\n{}\n", header.join(","), row.join(",")).into_bytes())
    }

    fn decode(stored: &[u8]) -> Result<String, String> {
        parse(stored).map(|fields| Value::Object(fields).to_string())
    }

    fn validate(stored: &[u8]) -> Result<(), String> {
        parse(stored).map(drop)
    }
}

export_codec!(Csv);

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn name_field(name: &str) -> String {
    let plain = !name.is_empty() && name.trim() == name && !name.contains([',', '"', '\n', '\r']);
    if plain {
        name.to_string()
    } else {
        quote(name)
    }
}

/// One CSV field as written.
#[derive(Debug, PartialEq)]
enum Field {
    Quoted(String),
    Bare(String),
}

impl Field {
    fn text(self) -> String {
        match self {
            Field::Quoted(s) | Field::Bare(s) => s,
        }
    }
}

/// The stored form back to the object.
fn parse(stored: &[u8]) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(stored).map_err(|_| "stored value is not UTF-8".to_string())?;
    let mut lines = Lines { rest: text };
    let header = lines
        .next_record()?
        .ok_or("stored value is empty: no header")?;
    let row = lines
        .next_record()?
        .ok_or("stored value has a header but no row")?;
    if !lines.rest.is_empty() {
        return Err("stored value has more than one row".into());
    }
    let header = if header == [Field::Bare(String::new())] {
        Vec::new() // an empty header line: no fields
    } else {
        header
    };
    let row = if header.is_empty() && row == [Field::Bare(String::new())] {
        Vec::new()
    } else {
        row
    };
    if header.len() != row.len() {
        return Err(format!(
            "the header has {} fields and the row {}",
            header.len(),
            row.len()
        ));
    }
    let mut fields = Map::new();
    for (name, value) in header.into_iter().zip(row) {
        let name = name.text();
        let value = match value {
            Field::Quoted(s) => Value::String(s),
            Field::Bare(s) => bare_value(&s).ok_or_else(|| {
                format!(
                    "field {name:?}: {s:?} is not a number, true, false or empty (text is quoted)"
                )
            })?,
        };
        if fields.insert(name.clone(), value).is_some() {
            return Err(format!("field {name:?} appears twice in the header"));
        }
    }
    Ok(fields)
}

fn bare_value(s: &str) -> Option<Value> {
    match s {
        "" => Some(Value::Null),
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        _ if s.trim() != s => None,
        _ => match serde_json::from_str::<Value>(s) {
            Ok(Value::Number(n)) => Some(Value::Number(n)),
            _ => None,
        },
    }
}

/// Reads records (lines of fields) from the front of `rest`.
struct Lines<'a> {
    rest: &'a str,
}

impl Lines<'_> {
    /// The next record, `None` at the end.
    fn next_record(&mut self) -> Result<Option<Vec<Field>>, String> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let mut fields = Vec::new();
        loop {
            fields.push(self.field()?);
            let mut chars = self.rest.chars();
            match chars.next() {
                Some(',') => self.rest = chars.as_str(),
                Some('\n') => {
                    self.rest = chars.as_str();
                    return Ok(Some(fields));
                }
                Some('\r') if chars.next() == Some('\n') => {
                    self.rest = chars.as_str();
                    return Ok(Some(fields));
                }
                None => return Ok(Some(fields)),
                Some(c) => return Err(format!("unexpected {c:?} after a field")),
            }
        }
    }

    fn field(&mut self) -> Result<Field, String> {
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let mut text = String::new();
            let mut rest = quoted;
            loop {
                let end = rest.find('"').ok_or("a quoted field is not closed")?;
                text.push_str(&rest[..end]);
                rest = &rest[end + 1..];
                match rest.strip_prefix('"') {
                    Some(after) => {
                        text.push('"');
                        rest = after;
                    }
                    None => break,
                }
            }
            self.rest = rest;
            Ok(Field::Quoted(text))
        } else {
            let end = self.rest.find([',', '\n', '\r']).unwrap_or(self.rest.len());
            let bare = &self.rest[..end];
            if bare.contains('"') {
                return Err(format!("a quote inside the unquoted field {bare:?}"));
            }
            self.rest = &self.rest[end..];
            Ok(Field::Bare(bare.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(json: &str) -> String {
        let stored = Csv::encode(json).expect("encode");
        Csv::validate(&stored).expect("validate");
        Csv::decode(&stored).expect("decode")
    }

    #[test]
    fn scalars_round_trip_in_order() {
        let json = r#"{"city":"Recife","age":30,"active":true,"nick":null,"score":-2.5}"#;
        assert_eq!(
            Csv::encode(json).expect("encode"),
            b"city,age,active,nick,score\n\"Recife\",30,true,,-2.5\n"
        );
        assert_eq!(round_trip(json), json);
        let awkward = r#"{"":"","a,b":"say \"hi\"\nbye","  x":"30","big":18446744073709551615,"e":1e+300,"t":"true"}"#;
        assert_eq!(round_trip(awkward), awkward);
        assert_eq!(round_trip("{}"), "{}");
        assert_eq!(round_trip(r#"{"":null}"#), r#"{"":null}"#);
    }

    #[test]
    fn refuses_what_it_cannot_store() {
        assert!(Csv::encode("[1]").expect_err("array").contains("object"));
        assert!(Csv::encode(r#"{"a": [1]}"#)
            .expect_err("nested")
            .contains("\"a\""));
        assert!(Csv::encode("{").expect_err("json").contains("not JSON"));
    }

    #[test]
    fn reads_crlf_and_refuses_damage() {
        assert_eq!(
            Csv::decode(b"a,b\r\n\"x\",1\r\n").expect("crlf"),
            r#"{"a":"x","b":1}"#
        );
        assert_eq!(
            Csv::decode(b"a\n1").expect("no final newline"),
            r#"{"a":1}"#
        );
        for bad in [
            &b""[..],
            b"a,b\n",
            b"a,b\n1\n",
            b"a\nRecife\n",
            b"a\n\"open\n",
            b"a\n1\n2\n",
            b"a,a\n1,2\n",
            b"a\n\"x\"y\n",
            b"a\nx\"y\n",
            b"a\n 1\n",
            b"a\n+1\n",
            b"\xff\n1\n",
        ] {
            assert!(
                Csv::validate(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert!(Csv::decode(bad).is_err());
        }
    }
}
