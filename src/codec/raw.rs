//! `raw`: values are bytes.
use super::{Codec, CodecError, JsonStyle, ValueIn, ValueOut};

/// Stores bytes as they are; a JSON string value is stored as its UTF-8 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    fn name(&self) -> &str {
        "raw"
    }
    fn encode(&self, value: ValueIn) -> Result<Vec<u8>, CodecError> {
        match value {
            ValueIn::Bytes(b) => Ok(b),
            ValueIn::Json(serde_json::Value::String(s)) => Ok(s.into_bytes()),
            ValueIn::Json(_) => Err(CodecError::Invalid(
                "the raw codec takes a string `value` or `value_base64`".into(),
            )),
        }
    }
    fn decode(&self, stored: &[u8], _style: JsonStyle) -> Result<ValueOut, CodecError> {
        Ok(ValueOut::Bytes(stored.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bytes_are_stored_and_returned_as_they_are() {
        for bytes in [Vec::new(), vec![0, 159, 146, 150, 255], b"text".to_vec()] {
            let stored = RawCodec.encode(ValueIn::Bytes(bytes.clone()));
            assert_eq!(stored, Ok(bytes.clone()));
            for style in [JsonStyle::Relaxed, JsonStyle::Canonical] {
                assert_eq!(
                    RawCodec.decode(&bytes, style),
                    Ok(ValueOut::Bytes(bytes.clone()))
                );
            }
        }
    }

    #[test]
    fn a_string_value_is_stored_as_its_utf8_bytes() {
        assert_eq!(
            RawCodec.encode(ValueIn::Json(json!("héllo"))),
            Ok("héllo".as_bytes().to_vec())
        );
        assert_eq!(RawCodec.encode(ValueIn::Json(json!(""))), Ok(Vec::new()));
    }

    #[test]
    fn other_json_values_are_refused() {
        for value in [
            json!(1),
            json!(null),
            json!(true),
            json!([]),
            json!({"a": "b"}),
        ] {
            assert!(
                matches!(
                    RawCodec.encode(ValueIn::Json(value.clone())),
                    Err(CodecError::Invalid(_))
                ),
                "{value}"
            );
        }
    }
}
