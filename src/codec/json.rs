//! `json`: validated JSON stored as UTF-8 text.
use super::{Codec, CodecError, JsonStyle, ValueIn, ValueOut};

/// JSON values stored as compact UTF-8 text.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn name(&self) -> &str {
        "json"
    }
    fn encode(&self, value: ValueIn) -> Result<Vec<u8>, CodecError> {
        let value = match value {
            ValueIn::Json(v) => v,
            ValueIn::Bytes(b) => serde_json::from_slice(&b)
                .map_err(|e| CodecError::Invalid(format!("not JSON text: {e}")))?,
        };
        serde_json::to_vec(&value).map_err(|e| CodecError::Invalid(e.to_string()))
    }
    fn decode(&self, stored: &[u8], _style: JsonStyle) -> Result<ValueOut, CodecError> {
        serde_json::from_slice(stored)
            .map(ValueOut::Json)
            .map_err(|e| CodecError::Undecodable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored_text(value: ValueIn) -> String {
        String::from_utf8(JsonCodec.encode(value).expect("accepted")).expect("UTF-8")
    }

    #[test]
    fn values_are_stored_as_compact_json_text() {
        assert_eq!(
            stored_text(ValueIn::Json(json!({"a": [1, 2.5, null], "b": "x"}))),
            r#"{"a":[1,2.5,null],"b":"x"}"#
        );
        assert_eq!(stored_text(ValueIn::Json(json!("s"))), r#""s""#);
        // Bytes are JSON text; they are stored compacted.
        assert_eq!(
            stored_text(ValueIn::Bytes(b" { \"a\" : [ 1 , 2 ] }\n".to_vec())),
            r#"{"a":[1,2]}"#
        );
    }

    #[test]
    fn stored_text_decodes_to_the_value() {
        let value = json!({"a": [1, -2, 2.5, true, null, "\u{0}é"], "b": {}});
        let stored = JsonCodec
            .encode(ValueIn::Json(value.clone()))
            .expect("accepted");
        for style in [JsonStyle::Relaxed, JsonStyle::Canonical] {
            assert_eq!(
                JsonCodec.decode(&stored, style),
                Ok(ValueOut::Json(value.clone()))
            );
        }
    }

    #[test]
    fn doubles_read_back_exactly() {
        for f in [-8.062677984624893e180, 0.1, 5e-324, f64::MAX, -0.0] {
            let stored = JsonCodec.encode(ValueIn::Json(json!(f))).expect("accepted");
            match JsonCodec.decode(&stored, JsonStyle::Relaxed) {
                Ok(ValueOut::Json(v)) => {
                    assert_eq!(v.as_f64().map(f64::to_bits), Some(f.to_bits()), "{f}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bytes_that_are_not_json_text_are_refused() {
        for bytes in [
            &b""[..],
            b"{",
            b"{\"a\":1} x",
            b"1 2",
            b"'a'",
            b"\"\xff\"",
            b"\"\\ud800\"",
            b"NaN",
        ] {
            assert!(
                matches!(
                    JsonCodec.encode(ValueIn::Bytes(bytes.to_vec())),
                    Err(CodecError::Invalid(_))
                ),
                "{bytes:?} accepted"
            );
            assert!(
                matches!(
                    JsonCodec.decode(bytes, JsonStyle::Relaxed),
                    Err(CodecError::Undecodable(_))
                ),
                "{bytes:?} decoded"
            );
        }
    }

    #[test]
    fn deeply_nested_text_is_refused_not_a_crash() {
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(JsonCodec
            .encode(ValueIn::Bytes(nested(127).into_bytes()))
            .is_ok());
        assert!(JsonCodec
            .encode(ValueIn::Bytes(nested(128).into_bytes()))
            .is_err());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(JsonCodec
            .encode(ValueIn::Bytes(deep.clone().into_bytes()))
            .is_err());
        assert!(JsonCodec
            .decode(deep.as_bytes(), JsonStyle::Relaxed)
            .is_err());
    }
}
