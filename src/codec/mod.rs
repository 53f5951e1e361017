//! Value codecs: how an instance turns the values of the API into stored bytes and back.
//!
//! Every instance has one [`Codec`]. The storage engine only ever sees bytes; the codec
//! decides what those bytes are (`raw`: anything; `json`: UTF-8 JSON text; `bson`: a
//! BSON document) and how they are shown in the API. The built-in codecs are native
//! Rust; a codec backed by a WebAssembly component implements the same trait.
//!
//! This module knows nothing of HTTP: the server maps [`CodecError`] to responses.

mod bson;
mod json;
mod raw;

use std::sync::Arc;

pub use self::bson::BsonCodec;
pub use self::json::JsonCodec;
pub use self::raw::RawCodec;

use crate::config::BuiltinCodec;

/// A value as it arrives from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueIn {
    /// A JSON value (the `value` field of a request body).
    Json(serde_json::Value),
    /// Bytes in the codec's stored form (a `value_base64` field or an
    /// `application/octet-stream` body). The codec validates them before they are stored.
    Bytes(Vec<u8>),
}

/// A stored value as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueOut {
    /// A JSON value (shown as the `value` field).
    Json(serde_json::Value),
    /// Bytes with no JSON form (shown as `value` when they are UTF-8 text, otherwise as
    /// `value_base64`).
    Bytes(Vec<u8>),
}

/// How JSON output renders types that JSON lacks (BSON dates, 64-bit integers, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JsonStyle {
    /// Relaxed extended JSON: plain numbers where they are exact, `{"$date": "..."}` for
    /// dates. Easiest to read; an int64 that fits in 32 bits reads back as an int32.
    #[default]
    Relaxed,
    /// Canonical extended JSON: every BSON type is tagged, so a value read back and
    /// written again keeps every type.
    Canonical,
}

/// Why a codec refused a value, or could not read a stored one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The client's value is not acceptable for this codec (a user mistake).
    #[error("{0}")]
    Invalid(String),
    /// Stored bytes could not be decoded (damaged data, or written by another codec).
    #[error("stored value cannot be decoded: {0}")]
    Undecodable(String),
}

/// Encodes API values into stored bytes and decodes them back.
///
/// Implementations must be deterministic and must accept, in [`encode`](Codec::encode)
/// with [`ValueIn::Bytes`], whatever their [`stored form`](Codec::decode) is, so a value
/// can be copied between instances of the same codec as bytes.
pub trait Codec: Send + Sync + 'static {
    /// The codec's name as written in `lsm.toml` (`raw`, `json`, `bson`, ...).
    fn name(&self) -> &str;

    /// Checks a client's value and returns the bytes to store.
    fn encode(&self, value: ValueIn) -> Result<Vec<u8>, CodecError>;

    /// Turns stored bytes into the value the API shows.
    fn decode(&self, stored: &[u8], style: JsonStyle) -> Result<ValueOut, CodecError>;
}

/// The built-in codec `kind`.
pub fn builtin(kind: BuiltinCodec) -> Arc<dyn Codec> {
    match kind {
        BuiltinCodec::Raw => Arc::new(RawCodec),
        BuiltinCodec::Json => Arc::new(JsonCodec),
        BuiltinCodec::Bson => Arc::new(BsonCodec),
    }
}
