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
