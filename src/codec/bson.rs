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
mod tests {
    use bson::spec::BinarySubtype;
    use bson::{doc, Binary, Decimal128};
    use serde_json::json;

    use super::*;

    fn encode(value: Value) -> Result<Vec<u8>, CodecError> {
        BsonCodec.encode(ValueIn::Json(value))
    }

    fn encode_ok(value: Value) -> Vec<u8> {
        encode(value.clone()).unwrap_or_else(|e| panic!("{value} refused: {e}"))
    }

    fn decode(stored: &[u8], style: JsonStyle) -> Value {
        match BsonCodec.decode(stored, style) {
            Ok(ValueOut::Json(v)) => v,
            other => panic!("unexpected decode result {other:?}"),
        }
    }

    fn stored_doc(stored: &[u8]) -> Document {
        Document::from_reader(stored).expect("a BSON document")
    }

    fn invalid_message(result: Result<Vec<u8>, CodecError>) -> String {
        match result {
            Err(CodecError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// A document with the given element bytes (length prefix and terminator added).
    fn raw_doc(elements: &[u8]) -> Vec<u8> {
        let len = i32::try_from(elements.len() + 5).expect("small");
        let mut out = len.to_le_bytes().to_vec();
        out.extend_from_slice(elements);
        out.push(0);
        out
    }

    /// `{"a": {"a": ... {} ...}}` with `levels` documents in all, built without recursion.
    fn nested_raw_docs(levels: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for k in (1..levels).rev() {
            let size = 5 + 8 * k;
            out.extend_from_slice(&i32::try_from(size).expect("small").to_le_bytes());
            out.extend_from_slice(&[0x03, b'a', 0]);
        }
        out.extend_from_slice(&[5, 0, 0, 0, 0]);
        out.extend(std::iter::repeat_n(0u8, levels - 1));
        out
    }

    fn nested_arrays(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..levels {
            v = Value::Array(vec![v]);
        }
        v
    }

    fn nested_objects(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!({ "a": v });
        }
        v
    }

    #[test]
    fn an_object_is_stored_as_the_document_itself() {
        let stored = encode_ok(json!({"a": 1, "b": "x", "c": [true, null]}));
        assert_eq!(
            stored,
            doc! {"a": 1i32, "b": "x", "c": [true, Bson::Null]}
                .to_vec()
                .expect("doc")
        );
        assert_eq!(encode_ok(json!({})), vec![5, 0, 0, 0, 0]);
        assert_eq!(decode(&[5, 0, 0, 0, 0], JsonStyle::Relaxed), json!({}));
    }

    #[test]
    fn other_values_are_wrapped() {
        for (value, wrapped) in [
            (json!(5), Bson::Int32(5)),
            (json!("text"), Bson::String("text".into())),
            (json!(null), Bson::Null),
            (json!(false), Bson::Boolean(false)),
            (
                json!([1, "a"]),
                Bson::Array(vec![Bson::Int32(1), "a".into()]),
            ),
            (
                json!({"$date": "1970-01-01T00:00:00Z"}),
                Bson::DateTime(bson::DateTime::from_millis(0)),
            ),
            (
                json!({"$numberDouble": "Infinity"}),
                Bson::Double(f64::INFINITY),
            ),
            // An object whose only field is `$value` is wrapped too.
            (json!({"$value": 1}), Bson::Document(doc! {"$value": 1i32})),
        ] {
            let stored = encode_ok(value.clone());
            assert_eq!(stored_doc(&stored), doc! {"$value": wrapped}, "{value}");
            assert_eq!(decode(&stored, JsonStyle::Relaxed), value);
        }
        // `$value` next to other fields is an ordinary document.
        let value = json!({"$value": 1, "b": 2});
        let stored = encode_ok(value.clone());
        assert_eq!(stored_doc(&stored), doc! {"$value": 1i32, "b": 2i32});
        assert_eq!(decode(&stored, JsonStyle::Relaxed), value);
    }

    #[test]
    fn a_stored_wrapper_decodes_to_its_value() {
        let stored = doc! {"$value": {"a": 1i32}}.to_vec().expect("doc");
        assert_eq!(
            BsonCodec.encode(ValueIn::Bytes(stored.clone())),
            Ok(stored.clone())
        );
        assert_eq!(decode(&stored, JsonStyle::Relaxed), json!({"a": 1}));
    }

    #[test]
    fn plain_numbers_take_the_smallest_exact_type() {
        let cases = [
            (json!(0), Bson::Int32(0)),
            (json!(i32::MAX), Bson::Int32(i32::MAX)),
            (json!(i32::MIN), Bson::Int32(i32::MIN)),
            (
                json!(i64::from(i32::MAX) + 1),
                Bson::Int64(i64::from(i32::MAX) + 1),
            ),
            (
                json!(i64::from(i32::MIN) - 1),
                Bson::Int64(i64::from(i32::MIN) - 1),
            ),
            (json!(i64::MAX), Bson::Int64(i64::MAX)),
            (json!(i64::MIN), Bson::Int64(i64::MIN)),
            (json!(1.5), Bson::Double(1.5)),
            (json!(1.0), Bson::Double(1.0)),
            (json!(-0.0), Bson::Double(-0.0)),
        ];
        for (value, expected) in cases {
            let stored = stored_doc(&encode_ok(json!({ "n": value })));
            assert_eq!(stored.get("n"), Some(&expected), "{value}");
        }
        let message = invalid_message(encode(json!({"n": u64::MAX})));
        assert!(
            message.contains("/n") && message.contains("int64"),
            "{message}"
        );
    }

    #[test]
    fn extended_json_becomes_bson_types() {
        let stored = stored_doc(&encode_ok(json!({
            "long": {"$numberLong": "5"},
            "int": {"$numberInt": "6"},
            "double": {"$numberDouble": "1.0"},
            "inf": {"$numberDouble": "-Infinity"},
            "date": {"$date": "2024-05-06T07:08:09.123Z"},
            "bin": {"$binary": {"base64": "AQID", "subType": "00"}},
            "dec": {"$numberDecimal": "1.10"},
            "oid": {"$oid": "0123456789abcdef01234567"},
            "code": {"$code": "f()", "$scope": {"x": 1}},
            "ts": {"$timestamp": {"t": 1, "i": 2}},
            "plain$": {"$notAType": 1},
        })));
        assert_eq!(stored.get("long"), Some(&Bson::Int64(5)));
        assert_eq!(stored.get("int"), Some(&Bson::Int32(6)));
        assert_eq!(stored.get("double"), Some(&Bson::Double(1.0)));
        assert_eq!(stored.get("inf"), Some(&Bson::Double(f64::NEG_INFINITY)));
        assert_eq!(
            stored.get("date"),
            Some(&Bson::DateTime(bson::DateTime::from_millis(
                1_714_979_289_123
            )))
        );
        assert_eq!(
            stored.get("bin"),
            Some(&Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![1, 2, 3]
            }))
        );
        assert_eq!(
            stored.get("dec"),
            Some(&Bson::Decimal128(
                "1.10".parse::<Decimal128>().expect("decimal")
            ))
        );
        assert!(matches!(stored.get("oid"), Some(Bson::ObjectId(_))));
        assert!(matches!(
            stored.get("code"),
            Some(Bson::JavaScriptCodeWithScope(c)) if c.scope == doc! {"x": 1i32}
        ));
        assert!(matches!(stored.get("ts"), Some(Bson::Timestamp(_))));
        assert_eq!(
            stored.get("plain$"),
            Some(&Bson::Document(doc! {"$notAType": 1i32}))
        );
    }

    #[test]
    fn invalid_extended_json_is_refused_with_its_path() {
        for value in [
            json!({"$numberLong": 5}),
            json!({"$numberLong": "x"}),
            json!({"$numberInt": "3000000000"}),
            json!({"$date": "yesterday"}),
            json!({"$date": "2024-01-01T00:00:00Z", "other": 1}),
            json!({"$oid": "zz"}),
            json!({"$binary": {"base64": "!!", "subType": "00"}}),
            json!({"$code": 5}),
            json!({"$code": "f()", "$scope": 5}),
            json!({"$code": "f()", "extra": 1}),
            json!({"$regularExpression": {"pattern": "a\u{0}b", "options": ""}}),
            json!({"$date": [[[[[[1]]]]]]}),
            json!({"$minKey": 2}),
        ] {
            let message = invalid_message(encode(value.clone()));
            assert!(message.contains("extended JSON"), "{value}: {message}");
        }
        let message = invalid_message(encode(json!({"a": {"b/c": [1, {"$numberLong": "x"}]}})));
        assert!(message.starts_with("at /a/b~1c/1: "), "{message}");
    }

    #[test]
    fn field_names_with_nul_are_refused_strings_with_nul_are_kept() {
        let message = invalid_message(encode(json!({"a\u{0}b": 1})));
        assert!(message.contains("NUL"), "{message}");
        let value = json!({"s": "a\u{0}b"});
        assert_eq!(decode(&encode_ok(value.clone()), JsonStyle::Relaxed), value);
    }

    #[test]
    fn canonical_output_keeps_every_type() {
        let value = json!({
            "i32": {"$numberInt": "5"},
            "i64": {"$numberLong": "5"},
            "big": {"$numberLong": "-9223372036854775808"},
            "f64": {"$numberDouble": "5.0"},
            "fraction": 0.1,
            "huge": 1e300,
            "tiny": 5e-324,
            "negzero": -0.0,
            "nan": {"$numberDouble": "NaN"},
            "date": {"$date": {"$numberLong": "1714979289123"}},
            "old": {"$date": {"$numberLong": "-5000"}},
            "far": {"$date": {"$numberLong": "9223372036854775807"}},
            "bin": {"$binary": {"base64": "AAEC/w==", "subType": "80"}},
            "uuid": {"$uuid": "00112233-4455-6677-8899-aabbccddeeff"},
            "dec": {"$numberDecimal": "-1.50E+10"},
            "code": {"$code": "f()", "$scope": {"n": {"$numberLong": "1"}}},
            "nested": [{"a": [1, {"$numberLong": "2"}]}],
        });
        let stored = encode_ok(value);
        let canonical = decode(&stored, JsonStyle::Canonical);
        assert_eq!(canonical["i32"], json!({"$numberInt": "5"}));
        assert_eq!(canonical["i64"], json!({"$numberLong": "5"}));
        assert_eq!(canonical["f64"], json!({"$numberDouble": "5.0"}));
        assert_eq!(
            canonical["date"],
            json!({"$date": {"$numberLong": "1714979289123"}})
        );
        // Written back, through JSON text as a client would, the bytes are identical.
        let text = serde_json::to_string(&canonical).expect("json");
        let again = encode_ok(serde_json::from_str(&text).expect("json"));
        assert_eq!(again, stored);
    }

    #[test]
    fn every_bson_type_survives_both_styles() {
        let stored = encode_ok(json!({
            "double": {"$numberDouble": "-1.25"},
            "string": "s",
            "document": {"a": 1},
            "array": [1],
            "binary": {"$binary": {"base64": "AQID", "subType": "05"}},
            "old_binary": {"$binary": {"base64": "AQID", "subType": "02"}},
            "undefined": {"$undefined": true},
            "oid": {"$oid": "0123456789abcdef01234567"},
            "bool": true,
            "date": {"$date": {"$numberLong": "1"}},
            "null": null,
            "regex": {"$regularExpression": {"pattern": "^a.*", "options": "ix"}},
            "db_pointer": {"$dbPointer": {"$ref": "c", "$id": {"$oid": "0123456789abcdef01234567"}}},
            "code": {"$code": "f()"},
            "symbol": {"$symbol": "sym"},
            "code_with_scope": {"$code": "g()", "$scope": {}},
            "int32": {"$numberInt": "-3"},
            "timestamp": {"$timestamp": {"t": 4, "i": 5}},
            "int64": {"$numberLong": "6"},
            "decimal": {"$numberDecimal": "7.50"},
            "min": {"$minKey": 1},
            "max": {"$maxKey": 1},
        }));
        for style in [JsonStyle::Relaxed, JsonStyle::Canonical] {
            let value = decode(&stored, style);
            let again = encode_ok(value.clone());
            assert_eq!(decode(&again, style), value, "{style:?}");
            if style == JsonStyle::Canonical {
                assert_eq!(again, stored);
            }
        }
    }

    #[test]
    fn relaxed_output_of_plain_json_is_the_same_json() {
        let value = json!({
            "name": "x",
            "n": 1,
            "big": 9_007_199_254_740_993i64,
            "f": 2.5,
            "whole": 3.0,
            "list": [null, true, "s", [], {}],
            "nested": {"a": {"b": [1, 2.25]}},
        });
        let stored = encode_ok(value.clone());
        let relaxed = decode(&stored, JsonStyle::Relaxed);
        assert_eq!(relaxed, value);
        let text = serde_json::to_string(&relaxed).expect("json");
        assert_eq!(
            encode_ok(serde_json::from_str(&text).expect("json")),
            stored
        );
    }

    #[test]
    fn relaxed_dates() {
        let date = |millis: i64| {
            let stored = encode_ok(json!({"$date": {"$numberLong": millis.to_string()}}));
            decode(&stored, JsonStyle::Relaxed)
        };
        assert_eq!(date(0), json!({"$date": "1970-01-01T00:00:00Z"}));
        assert_eq!(
            date(1_714_979_289_123),
            json!({"$date": "2024-05-06T07:08:09.123Z"})
        );
        assert_eq!(
            date(MAX_RFC3339_MILLIS),
            json!({"$date": "9999-12-31T23:59:59.999Z"})
        );
        // Outside years 1970 to 9999 the canonical form is exact.
        for millis in [-1, MAX_RFC3339_MILLIS + 1, i64::MAX, i64::MIN] {
            assert_eq!(
                date(millis),
                json!({"$date": {"$numberLong": millis.to_string()}})
            );
        }
        // A relaxed date reads back as the same date.
        let relaxed = date(1_714_979_289_123);
        let stored = stored_doc(&encode_ok(relaxed));
        assert_eq!(
            stored.get("$value"),
            Some(&Bson::DateTime(bson::DateTime::from_millis(
                1_714_979_289_123
            )))
        );
    }

    #[test]
    fn relaxed_small_int64_reads_as_a_plain_number() {
        let stored = encode_ok(json!({"n": {"$numberLong": "5"}}));
        assert_eq!(decode(&stored, JsonStyle::Relaxed), json!({"n": 5}));
    }

    #[test]
    fn bytes_are_validated_and_stored_as_given() {
        // Field order is kept as given (not sorted).
        let stored = doc! {"z": 1i32, "a": "x", "d": bson::DateTime::from_millis(3)}
            .to_vec()
            .expect("doc");
        assert_eq!(
            BsonCodec.encode(ValueIn::Bytes(stored.clone())),
            Ok(stored.clone())
        );
        assert_eq!(
            decode(&stored, JsonStyle::Canonical),
            json!({"z": {"$numberInt": "1"}, "a": "x", "d": {"$date": {"$numberLong": "3"}}})
        );

        let mut trailing = stored.clone();
        trailing.push(0);
        let mut bad_length = stored.clone();
        bad_length[0] += 1;
        let truncated = stored[..stored.len() - 1].to_vec();
        let bad_utf8 = raw_doc(&[0x02, b's', 0, 2, 0, 0, 0, 0xff, 0]);
        let unterminated_string = raw_doc(&[0x02, b's', 0, 2, 0, 0, 0, b'a', b'b']);
        let bad_bool = raw_doc(&[0x08, b'b', 0, 2]);
        let bad_tag = raw_doc(&[0x42, b'x', 0]);
        let duplicate = raw_doc(&[0x0A, b'k', 0, 0x0A, b'k', 0]);
        let array_keys = raw_doc(&[0x04, b'a', 0, 8, 0, 0, 0, 0x0A, b'1', 0, 0]);
        let array_leading_zero = raw_doc(&[0x04, b'a', 0, 9, 0, 0, 0, 0x0A, b'0', b'0', 0, 0]);
        let nested_bad = raw_doc(&[0x03, b'a', 0, 7, 0, 0, 0, 0x08, 0, 0]);
        for (name, bytes, reason) in [
            ("empty", Vec::new(), "too short"),
            ("short", vec![4, 0, 0, 0], "too short"),
            ("trailing byte", trailing, "length incorrect"),
            ("bad length", bad_length, "length incorrect"),
            ("truncated", truncated, "length incorrect"),
            ("invalid UTF-8", bad_utf8, "at /s: Invalid UTF-8"),
            (
                "unterminated string",
                unterminated_string,
                "null-terminated",
            ),
            ("boolean 2", bad_bool, "boolean must be stored as 0 or 1"),
            ("unknown type", bad_tag, "invalid tag"),
            ("duplicate field", duplicate, "duplicate field `k`"),
            ("array keys", array_keys, "array element 0 is named `1`"),
            (
                "array key with a leading zero",
                array_leading_zero,
                "named `00`",
            ),
            ("nested document", nested_bad, "at /a: "),
            ("JSON text", br#"{"a":1}"#.to_vec(), "length incorrect"),
        ] {
            match BsonCodec.encode(ValueIn::Bytes(bytes.clone())) {
                Err(CodecError::Invalid(m)) => assert!(m.contains(reason), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
            match BsonCodec.decode(&bytes, JsonStyle::Relaxed) {
                Err(CodecError::Undecodable(m)) => assert!(m.contains(reason), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let good_array = raw_doc(&[0x04, b'a', 0, 11, 0, 0, 0, 0x0A, b'0', 0, 0x0A, b'1', 0, 0]);
        assert_eq!(
            decode(&good_array, JsonStyle::Relaxed),
            json!({"a": [null, null]})
        );
    }

    #[test]
    fn depth_is_limited() {
        assert!(encode(nested_arrays(MAX_DEPTH)).is_ok());
        assert!(encode(nested_objects(MAX_DEPTH)).is_ok());
        for value in [nested_arrays(MAX_DEPTH + 1), nested_objects(MAX_DEPTH + 1)] {
            let message = invalid_message(encode(value));
            assert!(message.contains("levels"), "{message}");
        }
        // Deeper than serde_json would parse, still refused without recursion trouble.
        assert!(encode(nested_arrays(1000)).is_err());

        // The deepest accepted values decode, in both forms, within the limit.
        for value in [nested_arrays(MAX_DEPTH), nested_objects(MAX_DEPTH)] {
            let stored = encode_ok(value.clone());
            assert_eq!(decode(&stored, JsonStyle::Relaxed), value);
            let canonical = decode(&stored, JsonStyle::Canonical);
            let text = serde_json::to_string(&canonical).expect("json");
            let reparsed: Value = serde_json::from_str(&text).expect("a client can parse it");
            assert_eq!(encode_ok(reparsed), stored);
        }

        // Stored documents: MAX_DEPTH levels are accepted, one more is not, and very
        // deep ones are refused without exhausting the stack.
        let ok = nested_raw_docs(MAX_DEPTH);
        assert!(BsonCodec.encode(ValueIn::Bytes(ok.clone())).is_ok());
        assert!(BsonCodec.decode(&ok, JsonStyle::Relaxed).is_ok());
        for levels in [MAX_DEPTH + 1, 100_000] {
            let deep = nested_raw_docs(levels);
            assert!(matches!(
                BsonCodec.encode(ValueIn::Bytes(deep.clone())),
                Err(CodecError::Invalid(_))
            ));
            assert!(matches!(
                BsonCodec.decode(&deep, JsonStyle::Relaxed),
                Err(CodecError::Undecodable(_))
            ));
        }
        // The `$value` wrapper is not counted.
        let wrapped = encode_ok(nested_arrays(MAX_DEPTH));
        assert!(BsonCodec.encode(ValueIn::Bytes(wrapped)).is_ok());
    }

    #[test]
    fn is_index_matches_decimal_names_only() {
        assert!(is_index("0", 0));
        assert!(is_index("10", 10));
        assert!(is_index(&usize::MAX.to_string(), usize::MAX));
        assert!(!is_index("01", 1));
        assert!(!is_index("+1", 1));
        assert!(!is_index("", 0));
        assert!(!is_index("1", 0));
    }
}
