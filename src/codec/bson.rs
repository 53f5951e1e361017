//! `bson`: JSON in the API, BSON documents on disk.
use super::{Codec, CodecError, JsonStyle, ValueIn, ValueOut};

/// Placeholder being replaced.
#[derive(Debug, Clone, Copy, Default)]
pub struct BsonCodec;

impl Codec for BsonCodec {
    fn name(&self) -> &str {
        "bson"
    }
    fn encode(&self, _value: ValueIn) -> Result<Vec<u8>, CodecError> {
        Err(CodecError::Invalid("not yet".into()))
    }
    fn decode(&self, _stored: &[u8], _style: JsonStyle) -> Result<ValueOut, CodecError> {
        Err(CodecError::Undecodable("not yet".into()))
    }
}
