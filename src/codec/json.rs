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
