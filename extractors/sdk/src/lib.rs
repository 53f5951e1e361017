//! Write lsm plugins in Rust.
//!
//! An lsm plugin is a WebAssembly component implementing one of the worlds of the
//! `lsm:plugin@0.1.0` package (`wit/plugin.wit` in the lsm repository): an **extractor**
//! gives the terms a secondary index holds for a record, a **codec** turns the JSON a
//! client sends into the bytes an instance stores, and back. This crate hides the
//! component plumbing: implement [`Extractor`] or [`Codec`] on a type, name it in
//! [`export_extractor!`] or [`export_codec!`], and build for `wasm32-wasip2`.
//!
//! # An extractor
//!
//! Index the city of a JSON record, at a path the index chooses
//! (`"options": {"path": "$.address.city"}`), lowercased:
//!
//! ```
//! use lsm_plugin_sdk::extract::{extract_json, Path};
//! use lsm_plugin_sdk::{export_extractor, Extractor, Options, Term};
//!
//! struct City;
//!
//! impl Extractor for City {
//!     /// What the options become: parsed once per index, not once per record.
//!     type Config = Path;
//!
//!     fn configure(options: &Options) -> Result<Path, String> {
//!         options.allow_only(&["path"])?;
//!         options.path("path", Some("$.city"))
//!     }
//!
//!     fn extract(path: &Path, _key: &str, value: &[u8]) -> Result<Vec<Term>, String> {
//!         let terms = extract_json(path, value)?;
//!         Ok(terms
//!             .into_iter()
//!             .filter_map(|t| match t {
//!                 Term::Text(city) => Some(Term::Text(city.to_lowercase())),
//!                 _ => None,
//!             })
//!             .collect())
//!     }
//! }
//!
//! export_extractor!(City);
//! # fn main() {
//! #     let path = City::configure(&Options::parse("{}").unwrap()).unwrap();
//! #     let terms = City::extract(&path, "k", br#"{"city": "Recife"}"#).unwrap();
//! #     assert_eq!(terms, vec![Term::Text("recife".into())]);
//! # }
//! ```
//!
//! with a `Cargo.toml` of
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! lsm-plugin-sdk = { path = ".../extractors/sdk" }
//!
//! [profile.release]
//! opt-level = "s"
//! lto = true
//! strip = true
//! ```
//!
//! and built with
//!
//! ```sh
//! rustup target add wasm32-wasip2
//! cargo build --target wasm32-wasip2 --release
//! # target/wasm32-wasip2/release/<crate>.wasm is the component to upload
//! ```
//!
//! What [`export_extractor!`] gives the host:
//!
//! - `extract` and `extract-batch` (the batch calls [`Extractor::extract`] on each
//!   entry, in order, one result per entry);
//! - the options text is parsed and [`Extractor::configure`]d once and the result kept,
//!   keyed by the text, for later calls (a few distinct texts are kept, for a plugin
//!   that several indexes use); an error from `configure` is every record's error;
//! - a NaN float term is that record's error (the host refuses NaN).
//!
//! # A codec
//!
//! ```
//! use lsm_plugin_sdk::{export_codec, serde_json, Codec};
//!
//! /// Stores JSON text with its whitespace removed.
//! struct Compact;
//!
//! impl Codec for Compact {
//!     fn encode(json: &str) -> Result<Vec<u8>, String> {
//!         let value: serde_json::Value =
//!             serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
//!         Ok(value.to_string().into_bytes())
//!     }
//!
//!     fn decode(stored: &[u8]) -> Result<String, String> {
//!         String::from_utf8(stored.to_vec()).map_err(|_| "not UTF-8".to_string())
//!     }
//! }
//!
//! export_codec!(Compact);
//! # fn main() {
//! #     assert_eq!(Compact::encode("{ \"a\" : 1 }").unwrap(), b"{\"a\":1}");
//! #     assert!(Compact::validate(b"\xff").is_err());
//! # }
//! ```
//!
//! # Rules of the sandbox
//!
//! A plugin has no files, network or environment; what it prints goes to the server
//! log. A call has a deadline and memory is capped. A panic is a trap: the call fails
//! and the instance is discarded, so return `Err` for bad input instead. State kept in
//! statics may vanish between any two calls (the host keeps several instances and
//! discards them at will): use it as a cache only.
//!
//! Native unit tests work as usual (`cargo test` on the host target): the trait
//! methods are ordinary functions.

#![warn(missing_docs)]
#![deny(clippy::unwrap_used)]

// The generated bindings name this crate by path, from the plugin's crate too.
extern crate self as lsm_plugin_sdk;

mod cache;
mod options;

use std::rc::Rc;

/// The extraction logic of lsm's built-in extractors (the `lsm-extract` crate): the
/// JSONPath subset ([`extract::Path`]) and the `json_path`, `bson_path` and `raw`
/// extractions, exactly as the server runs them natively.
pub use lsm_extract as extract;
pub use lsm_extract::Term;
pub use options::Options;
pub use serde_json;

/// An index extractor: the terms of a record.
pub trait Extractor {
    /// What the options become once checked: a parsed path, a compiled pattern, or
    /// `()` for a plugin without options.
    type Config: 'static;

    /// Checks the index's options and prepares what [`Extractor::extract`] needs.
    /// Called once per distinct options text (not once per record). An error here
    /// is the error of every record extracted with these options.
    fn configure(options: &Options) -> Result<Self::Config, String>;

    /// The terms of one record: its key, its value as stored by the instance's codec
    /// (JSON text for `json`, a BSON document for `bson`, the bytes for `raw`).
    ///
    /// An empty list leaves the record out of the index; duplicates are ignored. An
    /// error goes to the index's `on_error` policy (refuse the write, or skip it).
    fn extract(config: &Self::Config, key: &str, value: &[u8]) -> Result<Vec<Term>, String>;
}

/// A value codec: client JSON to stored bytes and back.
pub trait Codec {
    /// The bytes to store for a value sent as JSON text; an error message tells the
    /// client why the value is not acceptable.
    fn encode(json: &str) -> Result<Vec<u8>, String>;

    /// Stored bytes back to JSON text.
    fn decode(stored: &[u8]) -> Result<String, String>;

    /// Checks bytes a client sends in the stored form. By default: they decode.
    fn validate(stored: &[u8]) -> Result<(), String> {
        Self::decode(stored).map(drop)
    }
}

/// Exports a type implementing [`Extractor`] as the component's `extractor` world.
///
/// Use it once, at the root of the plugin's crate: `export_extractor!(MyExtractor);`.
#[macro_export]
macro_rules! export_extractor {
    ($ty:ident) => {
        $crate::__export_extractor_impl!($ty with_types_in $crate::bindings::extractor);
    };
}

/// Exports a type implementing [`Codec`] as the component's `codec` world.
///
/// Use it once, at the root of the plugin's crate: `export_codec!(MyCodec);`.
#[macro_export]
macro_rules! export_codec {
    ($ty:ident) => {
        $crate::__export_codec_impl!($ty with_types_in $crate::bindings::codec);
    };
}

/// The bindings generated from `wit/plugin.wit`, used by the export macros.
#[doc(hidden)]
pub mod bindings {
    /// The `extractor` world.
    pub mod extractor {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "extractor",
            pub_export_macro: true,
            additional_derives: [PartialEq],
            runtime_path: "::lsm_plugin_sdk::__rt::wit_bindgen::rt",
        });
    }

    /// The `codec` world.
    pub mod codec {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "codec",
            pub_export_macro: true,
            runtime_path: "::lsm_plugin_sdk::__rt::wit_bindgen::rt",
        });
    }
}

#[doc(hidden)]
pub mod __rt {
    pub use wit_bindgen;
}

use bindings::codec::exports::lsm::plugin::encoding as wit_encoding;
use bindings::extractor::exports::lsm::plugin::extract as wit_extract;
use bindings::extractor::lsm::plugin::types as wit;

impl<T: Extractor> wit_extract::Guest for T {
    fn extract(key: String, value: Vec<u8>, options: String) -> Result<Vec<wit::Term>, String> {
        let config = cache::configured::<T>(&options);
        extract_one::<T>(&config, &key, &value)
    }

    fn extract_batch(
        entries: Vec<wit::Entry>,
        options: String,
    ) -> Vec<Result<Vec<wit::Term>, String>> {
        let config = cache::configured::<T>(&options);
        entries
            .iter()
            .map(|e| extract_one::<T>(&config, &e.key, &e.value))
            .collect()
    }
}

fn extract_one<T: Extractor>(
    config: &Rc<Result<T::Config, String>>,
    key: &str,
    value: &[u8],
) -> Result<Vec<wit::Term>, String> {
    let config = config.as_ref().as_ref().map_err(Clone::clone)?;
    T::extract(config, key, value)?
        .into_iter()
        .map(to_wit)
        .collect()
}

fn to_wit(term: Term) -> Result<wit::Term, String> {
    Ok(match term {
        Term::Text(s) => wit::Term::Text(s),
        Term::Integer(i) => wit::Term::Integer(i),
        Term::Float(f) if f.is_nan() => return Err("a float term is NaN".into()),
        Term::Float(f) => wit::Term::Float(f),
        Term::Boolean(b) => wit::Term::Boolean(b),
        Term::Bytes(b) => wit::Term::Bytes(b),
    })
}

impl<T: Codec> wit_encoding::Guest for T {
    fn encode(json: String) -> Result<Vec<u8>, String> {
        T::encode(&json)
    }

    fn decode(stored: Vec<u8>) -> Result<String, String> {
        T::decode(&stored)
    }

    fn validate(stored: Vec<u8>) -> Result<(), String> {
        T::validate(&stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_extract::Guest as _;

    struct Words;

    impl Extractor for Words {
        type Config = usize;

        fn configure(options: &Options) -> Result<usize, String> {
            options.allow_only(&["min"])?;
            match options.get("min") {
                None => Ok(1),
                Some(v) => v
                    .as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| "min must be a number".to_string()),
            }
        }

        fn extract(min: &usize, key: &str, value: &[u8]) -> Result<Vec<Term>, String> {
            if key == "nan" {
                return Ok(vec![Term::Float(f64::NAN)]);
            }
            let text = std::str::from_utf8(value).map_err(|_| "not UTF-8".to_string())?;
            Ok(text
                .split_whitespace()
                .filter(|w| w.len() >= *min)
                .map(|w| Term::Text(w.into()))
                .collect())
        }
    }

    #[test]
    fn extract_and_batch_agree_and_map_terms() {
        let one = <Words as wit_extract::Guest>::extract(
            "k".into(),
            b"a bb ccc".to_vec(),
            "{\"min\": 2}".into(),
        )
        .expect("extract");
        assert_eq!(
            one,
            vec![wit::Term::Text("bb".into()), wit::Term::Text("ccc".into())]
        );
        let entries = vec![
            wit::Entry {
                key: "a".into(),
                value: b"x yy".to_vec(),
            },
            wit::Entry {
                key: "b".into(),
                value: vec![0xff],
            },
            wit::Entry {
                key: "nan".into(),
                value: vec![],
            },
        ];
        let batch = Words::extract_batch(entries, "{}".into());
        assert_eq!(batch.len(), 3);
        assert_eq!(
            batch[0],
            Ok(vec![
                wit::Term::Text("x".into()),
                wit::Term::Text("yy".into())
            ])
        );
        assert_eq!(batch[1], Err("not UTF-8".into()));
        assert_eq!(batch[2], Err("a float term is NaN".into()));
    }

    #[test]
    fn bad_options_are_every_records_error() {
        let batch = Words::extract_batch(
            vec![
                wit::Entry {
                    key: "a".into(),
                    value: vec![],
                },
                wit::Entry {
                    key: "b".into(),
                    value: vec![],
                },
            ],
            "{\"mim\": 2}".into(),
        );
        assert_eq!(batch.len(), 2);
        for r in batch {
            assert!(r.expect_err("options").contains("unknown option \"mim\""));
        }
        let e = <Words as wit_extract::Guest>::extract("k".into(), vec![], "nope".into())
            .expect_err("not JSON");
        assert!(e.contains("not valid JSON"), "{e}");
    }
}
