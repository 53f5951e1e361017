//! Tests of the bson codec: types through both extended JSON styles, the wrapping of
//! non-documents, validation of stored bytes, depth limits.

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
