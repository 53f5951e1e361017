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

use serde::Deserialize;

/// The built-in codecs, as `lsm.toml` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinCodec {
    /// Bytes as they are.
    Raw,
    /// Validated JSON, stored as UTF-8.
    Json,
    /// JSON in the API, BSON on disk.
    Bson,
}

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
    /// The codec itself failed (a codec plugin that trapped, timed out or answered
    /// nonsense): neither the client's nor the data's fault.
    #[error("codec failed: {0}")]
    Failed(String),
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    const STYLES: [JsonStyle; 2] = [JsonStyle::Relaxed, JsonStyle::Canonical];

    fn codecs() -> [Arc<dyn Codec>; 3] {
        [
            builtin(BuiltinCodec::Raw),
            builtin(BuiltinCodec::Json),
            builtin(BuiltinCodec::Bson),
        ]
    }

    /// JSON values with no extended JSON keys and no integers beyond int64.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z$]{0,3}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A BSON document of one element of any type tag with a payload that is often, but
    /// not always, well formed.
    fn arb_bson_document() -> impl Strategy<Value = Vec<u8>> {
        // Mostly ASCII, so strings and names are often valid UTF-8.
        let byte = prop_oneof![3 => 0u8..0x80, 1 => any::<u8>()];
        (
            prop_oneof![0u8..=0x14, Just(0x7f), Just(0xff)],
            // The fixed sizes of the scalar types come up often.
            prop_oneof![
                prop::sample::select(vec![0usize, 1, 4, 5, 8, 12, 16]),
                0usize..48,
            ]
            .prop_flat_map(move |len| prop::collection::vec(byte.clone(), len)),
            0usize..4,
        )
            .prop_map(|(tag, mut payload, fix)| {
                // Make a length prefix consistent with the payload: counting the prefix
                // (documents, code with scope), not counting it (strings), or not counting
                // it and the subtype byte (binary).
                if payload.len() >= 5 && fix > 0 {
                    let len = payload.len() - [0, 0, 4, 5][fix];
                    let len = i32::try_from(len).unwrap_or(0);
                    payload[..4].copy_from_slice(&len.to_le_bytes());
                    if fix < 3 {
                        if let Some(last) = payload.last_mut() {
                            *last = 0;
                        }
                    }
                }
                let mut elements = vec![tag, b'k', 0];
                elements.extend(payload);
                let len = i32::try_from(elements.len() + 5).unwrap_or(0);
                let mut doc = len.to_le_bytes().to_vec();
                doc.extend(elements);
                doc.push(0);
                doc
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            for codec in codecs() {
                let accepted = codec.encode(ValueIn::Bytes(bytes.clone()));
                for style in STYLES {
                    let decoded = codec.decode(&bytes, style);
                    // What a codec accepts as bytes it can read back, and nothing else.
                    prop_assert_eq!(accepted.is_ok(), decoded.is_ok(), "{}", codec.name());
                }
            }
        }

        #[test]
        fn bson_elements_never_panic(doc in arb_bson_document()) {
            let bson = builtin(BuiltinCodec::Bson);
            let accepted = bson.encode(ValueIn::Bytes(doc.clone()));
            let canonical = bson.decode(&doc, JsonStyle::Canonical);
            prop_assert_eq!(accepted.is_ok(), canonical.is_ok());
            if let Ok(ValueOut::Json(value)) = canonical {
                // Whatever is stored can be written back from its canonical form.
                let again = bson.encode(ValueIn::Json(value.clone()));
                prop_assert!(again.is_ok(), "{} -> {:?}", value, again);
                let again = again.unwrap_or_default();
                prop_assert_eq!(bson.decode(&again, JsonStyle::Canonical), Ok(ValueOut::Json(value)));
                prop_assert!(bson.decode(&doc, JsonStyle::Relaxed).is_ok());
            }
        }

        #[test]
        fn json_values_round_trip(value in arb_json()) {
            let json = builtin(BuiltinCodec::Json);
            let stored = json.encode(ValueIn::Json(value.clone()));
            prop_assert!(stored.is_ok());
            let stored = stored.unwrap_or_default();
            prop_assert_eq!(json.decode(&stored, JsonStyle::Relaxed), Ok(ValueOut::Json(value.clone())));

            let bson = builtin(BuiltinCodec::Bson);
            let stored = bson.encode(ValueIn::Json(value.clone()));
            prop_assert!(stored.is_ok(), "{:?}", stored);
            let stored = stored.unwrap_or_default();
            prop_assert_eq!(bson.encode(ValueIn::Bytes(stored.clone())), Ok(stored.clone()));
            prop_assert_eq!(bson.decode(&stored, JsonStyle::Relaxed), Ok(ValueOut::Json(value)));
            // The canonical form, sent back as JSON text, stores the same bytes.
            let canonical = match bson.decode(&stored, JsonStyle::Canonical) {
                Ok(ValueOut::Json(v)) => v,
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            let text = serde_json::to_string(&canonical).unwrap_or_default();
            let reparsed: Value = serde_json::from_str(&text).unwrap_or_default();
            prop_assert_eq!(bson.encode(ValueIn::Json(reparsed)), Ok(stored));
        }
    }
}
