//! `bson`: JSON in the API, BSON documents on disk.
//!
//! API values are MongoDB extended JSON: `{"$numberLong": "5"}`, `{"$date": ...}`,
//! `{"$binary": ...}` and the other type wrappers become the BSON types they name; a plain
//! JSON integer becomes an int32 when it fits, otherwise an int64; any other number
//! becomes a double.
//!
//! On disk a value is always one BSON document. A JSON object is stored as that document,
//! so its fields can be read from the stored bytes. Any other value (a number, string,
//! array, null, boolean or an extended JSON scalar such as a `$date`) is stored as the
//! document `{"$value": <value>}`. An object whose only field is `$value` is wrapped too,
//! so a stored document whose only field is `$value` is always a wrapper and decoding
//! unwraps it.
//!
//! Values nest at most [`MAX_DEPTH`] levels of documents and arrays (the wrapper does not
//! count), which bounds the recursion of every conversion here.
use std::collections::HashSet;

use bson::raw::{RawBsonRef, RawDocument};
use bson::{Bson, Document};
use serde_json::{Map, Value};

use super::{Codec, CodecError, JsonStyle, ValueIn, ValueOut};

/// The most levels of documents and arrays a value may nest (MongoDB's limit). The
/// `$value` wrapper of a non-object value is not counted.
pub const MAX_DEPTH: usize = 100;

/// The field name of the wrapper document that holds a value which is not an object.
const WRAPPER_KEY: &str = "$value";

/// The latest instant relaxed extended JSON writes as an RFC 3339 string:
/// 9999-12-31T23:59:59.999Z, in milliseconds since the Unix epoch.
const MAX_RFC3339_MILLIS: i64 = 253_402_300_799_999;

/// The keys that make a JSON object an extended JSON type wrapper rather than a document
/// (the same set, with the same meaning, as `Bson::try_from(serde_json::Value)`).
const TYPE_KEYS: [&str; 16] = [
    "$oid",
    "$symbol",
    "$regularExpression",
    "$numberInt",
    "$numberLong",
    "$numberDouble",
    "$numberDecimal",
    "$binary",
    "$uuid",
    "$code",
    "$timestamp",
    "$date",
    "$minKey",
    "$maxKey",
    "$dbPointer",
    "$undefined",
];

/// How deeply a type wrapper other than `$code` may nest JSON objects (`$dbPointer` is
/// the deepest: `{"$dbPointer": {"$ref": ..., "$id": {"$oid": ...}}}`).
const MAX_TYPE_WRAPPER_DEPTH: usize = 3;

/// JSON values (MongoDB extended JSON) stored as BSON documents.
#[derive(Debug, Clone, Copy, Default)]
pub struct BsonCodec;

impl Codec for BsonCodec {
    fn name(&self) -> &str {
        "bson"
    }

    fn encode(&self, value: ValueIn) -> Result<Vec<u8>, CodecError> {
        match value {
            ValueIn::Json(value) => {
                encode_json(value).map_err(|e| CodecError::Invalid(e.to_string()))
            }
            ValueIn::Bytes(bytes) => {
                read_stored(&bytes, None)
                    .map_err(|e| CodecError::Invalid(format!("not a valid BSON document: {e}")))?;
                Ok(bytes)
            }
        }
    }

    fn decode(&self, stored: &[u8], style: JsonStyle) -> Result<ValueOut, CodecError> {
        read_stored(stored, Some(style))
            .map(ValueOut::Json)
            .map_err(|e| CodecError::Undecodable(format!("not a valid BSON document: {e}")))
    }
}

/// A conversion error and where in the value it happened.
#[derive(Debug)]
struct PathError {
    /// The path from the innermost segment outwards (it is built while unwinding).
    path: Vec<Segment>,
    message: String,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl PathError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            message: message.into(),
        }
    }

    fn at(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }

    fn too_deep() -> Self {
        Self::new(format!(
            "the value nests more than {MAX_DEPTH} levels of objects and arrays"
        ))
    }
}

impl std::fmt::Display for PathError {
    /// `at /a/0/b: message`, the path as a JSON pointer (RFC 6901).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.path.is_empty() {
            f.write_str("at ")?;
            for segment in self.path.iter().rev() {
                match segment {
                    Segment::Key(k) => write!(f, "/{}", k.replace('~', "~0").replace('/', "~1"))?,
                    Segment::Index(i) => write!(f, "/{i}")?,
                }
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// The message of a `bson` error, without its generic preamble.
fn bson_message(e: &bson::error::Error) -> String {
    match &e.message {
        Some(m) => m.clone(),
        None => e.kind.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// JSON -> BSON
// ---------------------------------------------------------------------------------------

/// Converts an API value to the stored document's bytes.
fn encode_json(value: Value) -> Result<Vec<u8>, PathError> {
    let document = match json_to_bson(value, 1)? {
        Bson::Document(d) if !is_wrapper(&d) => d,
        other => {
            let mut wrapper = Document::new();
            wrapper.insert(WRAPPER_KEY, other);
            wrapper
        }
    };
    document
        .to_vec()
        .map_err(|e| PathError::new(format!("cannot be written as BSON: {}", bson_message(&e))))
}

fn is_wrapper(document: &Document) -> bool {
    document.len() == 1 && document.contains_key(WRAPPER_KEY)
}

/// Converts one JSON value; `level` is the nesting level the value has if it is an
/// object or an array (1 for the top-level value).
fn json_to_bson(value: Value, level: usize) -> Result<Bson, PathError> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(b),
        Value::String(s) => Bson::String(s),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(i) => Bson::Int32(i),
                    Err(_) => Bson::Int64(i),
                }
            } else if n.is_u64() {
                return Err(PathError::new(format!(
                    "the integer {n} is beyond the int64 range; write it as \
                     {{\"$numberDecimal\": \"{n}\"}} or as a string"
                )));
            } else if let Some(f) = n.as_f64() {
                Bson::Double(f)
            } else {
                return Err(PathError::new(format!("the number {n} has no BSON type")));
            }
        }
        Value::Array(items) => {
            if level > MAX_DEPTH {
                return Err(PathError::too_deep());
            }
            let mut array = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                array.push(json_to_bson(item, level + 1).map_err(|e| e.at(Segment::Index(i)))?);
            }
            Bson::Array(array)
        }
        Value::Object(map) => {
            if map.keys().any(|k| TYPE_KEYS.contains(&k.as_str())) {
                extended_json(map, level)?
            } else {
                Bson::Document(json_to_document(map, level)?)
            }
        }
    })
}

fn json_to_document(map: Map<String, Value>, level: usize) -> Result<Document, PathError> {
    if level > MAX_DEPTH {
        return Err(PathError::too_deep());
    }
    let mut document = Document::new();
    for (key, value) in map {
        if key.contains('\0') {
            return Err(
                PathError::new("BSON field names cannot contain NUL characters")
                    .at(Segment::Key(key)),
            );
        }
        match json_to_bson(value, level + 1) {
            Ok(b) => {
                document.insert(key, b);
            }
            Err(e) => return Err(e.at(Segment::Key(key))),
        }
    }
    Ok(document)
}

/// Converts an object that holds an extended JSON type key.
fn extended_json(map: Map<String, Value>, level: usize) -> Result<Bson, PathError> {
    if map.contains_key("$code") {
        // Code with scope holds a document, converted here so its depth and integers
        // follow the same rules as every other document.
        if let Some(key) = map.keys().find(|k| *k != "$code" && *k != "$scope") {
            return Err(PathError::new(format!(
                "invalid extended JSON: unexpected field `{key}` next to `$code`"
            )));
        }
        let mut map = map;
        let code = match map.remove("$code") {
            Some(Value::String(code)) => code,
            _ => {
                return Err(PathError::new(
                    "invalid extended JSON: `$code` must be a string",
                ))
            }
        };
        return match map.remove("$scope") {
            None | Some(Value::Null) => Ok(Bson::JavaScriptCode(code)),
            Some(Value::Object(scope)) => Ok(Bson::JavaScriptCodeWithScope(
                bson::JavaScriptCodeWithScope {
                    code,
                    scope: json_to_document(scope, level)
                        .map_err(|e| e.at(Segment::Key("$scope".into())))?,
                },
            )),
            Some(_) => Err(PathError::new(
                "invalid extended JSON: `$scope` must be an object",
            )),
        };
    }
    let key = map
        .keys()
        .find(|k| TYPE_KEYS.contains(&k.as_str()))
        .cloned()
        .unwrap_or_default();
    let value = Value::Object(map);
    // The wrappers hold small fixed shapes; refusing deep ones keeps the generic
    // deserialisation below from recursing without bound.
    if json_depth_exceeds(&value, MAX_TYPE_WRAPPER_DEPTH) {
        return Err(PathError::new(format!(
            "invalid extended JSON: malformed `{key}`"
        )));
    }
    Bson::try_from(value).map_err(|e| {
        PathError::new(format!(
            "invalid extended JSON `{key}`: {}",
            bson_message(&e)
        ))
    })
}

/// Whether `value` nests more than `limit` levels of objects and arrays (iteratively).
fn json_depth_exceeds(value: &Value, limit: usize) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if level + 1 > limit {
            return true;
        }
        stack.extend(children.map(|child| (child, level + 1)));
    }
    false
}

// ---------------------------------------------------------------------------------------
// BSON -> JSON (and validation)
// ---------------------------------------------------------------------------------------

/// Validates stored bytes and, with a style, converts them to the API value (unwrapped).
///
/// The bytes must be exactly one BSON document, every element of it valid (lengths,
/// UTF-8, booleans, ...), with no duplicate field names in a document, array fields named
/// `0`, `1`, ... in order, and at most [`MAX_DEPTH`] levels of nesting.
fn read_stored(bytes: &[u8], style: Option<JsonStyle>) -> Result<Value, PathError> {
    let document = RawDocument::from_bytes(bytes).map_err(|e| PathError::new(bson_message(&e)))?;
    let wrapped = is_raw_wrapper(document);
    let max_level = MAX_DEPTH + usize::from(wrapped);
    let value = read_document(document, false, 1, max_level, style)?;
    Ok(match value {
        Value::Object(mut map) if wrapped => map.remove(WRAPPER_KEY).unwrap_or(Value::Null),
        other => other,
    })
}

fn is_raw_wrapper(document: &RawDocument) -> bool {
    let mut elements = document.iter_elements();
    matches!(
        (elements.next(), elements.next()),
        (Some(Ok(e)), None) if e.key().as_str() == WRAPPER_KEY
    )
}

/// Walks a document (or an array) at nesting `level`; returns its JSON form when `style`
/// is given, `null` when only validating.
fn read_document(
    document: &RawDocument,
    is_array: bool,
    level: usize,
    max_level: usize,
    style: Option<JsonStyle>,
) -> Result<Value, PathError> {
    if level > max_level {
        return Err(PathError::too_deep());
    }
    let mut seen = HashSet::new();
    let mut object = Map::new();
    let mut array = Vec::new();
    for (index, element) in document.iter_elements().enumerate() {
        let element = element.map_err(|e| {
            let error = PathError::new(bson_message(&e));
            match e.key {
                Some(key) => error.at(Segment::Key(key)),
                None => error,
            }
        })?;
        let key = element.key().as_str();
        let segment = || {
            if is_array {
                Segment::Index(index)
            } else {
                Segment::Key(key.to_owned())
            }
        };
        if is_array {
            if !is_index(key, index) {
                return Err(PathError::new(format!(
                    "array element {index} is named `{key}`; array fields must be named 0, 1, 2, ..."
                )));
            }
        } else if !seen.insert(key) {
            return Err(PathError::new(format!("duplicate field `{key}`")));
        }
        let value = element
            .value()
            .map_err(|e| PathError::new(bson_message(&e)))
            .and_then(|value| read_value(value, level, max_level, style))
            .map_err(|e| e.at(segment()))?;
        if style.is_some() {
            if is_array {
                array.push(value);
            } else {
                object.insert(key.to_owned(), value);
            }
        }
    }
    Ok(match style {
        None => Value::Null,
        Some(_) if is_array => Value::Array(array),
        Some(_) => Value::Object(object),
    })
}

/// Converts one element value of a document at nesting `level`.
fn read_value(
    value: RawBsonRef<'_>,
    level: usize,
    max_level: usize,
    style: Option<JsonStyle>,
) -> Result<Value, PathError> {
    match value {
        RawBsonRef::Document(d) => read_document(d, false, level + 1, max_level, style),
        RawBsonRef::Array(a) => {
            let document = RawDocument::from_bytes(a.as_bytes())
                .map_err(|e| PathError::new(bson_message(&e)))?;
            read_document(document, true, level + 1, max_level, style)
        }
        RawBsonRef::JavaScriptCodeWithScope(c) => {
            let scope = read_document(c.scope, false, level + 1, max_level, style)
                .map_err(|e| e.at(Segment::Key("$scope".into())))?;
            Ok(match style {
                None => Value::Null,
                Some(_) => serde_json::json!({ "$code": c.code, "$scope": scope }),
            })
        }
        RawBsonRef::DateTime(date) => Ok(match style {
            None => Value::Null,
            Some(style) => date_json(date, style),
        }),
        scalar => match style {
            None => Ok(Value::Null),
            Some(style) => {
                let scalar =
                    Bson::try_from(scalar).map_err(|e| PathError::new(bson_message(&e)))?;
                Ok(match style {
                    JsonStyle::Relaxed => scalar.into_relaxed_extjson(),
                    JsonStyle::Canonical => scalar.into_canonical_extjson(),
                })
            }
        },
    }
}

/// A date in extended JSON. Relaxed uses an RFC 3339 string for years 1970 to 9999 and
/// the canonical form otherwise (`bson` would print later dates as 9999-12-31).
fn date_json(date: bson::DateTime, style: JsonStyle) -> Value {
    let millis = date.timestamp_millis();
    if style == JsonStyle::Relaxed && (0..=MAX_RFC3339_MILLIS).contains(&millis) {
        if let Ok(text) = date.try_to_rfc3339_string() {
            return serde_json::json!({ "$date": text });
        }
    }
    serde_json::json!({ "$date": { "$numberLong": millis.to_string() } })
}

/// Whether `key` is the decimal form of `index` (`0`, `1`, ..., no sign or leading zero).
fn is_index(key: &str, index: usize) -> bool {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut n = index;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    key.as_bytes() == &digits[start..]
}

#[cfg(test)]
mod tests;
