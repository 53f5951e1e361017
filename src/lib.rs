//! # lsm
//!
//! An LSM-tree key-value store: `key: String -> value: bytes`.
//!
//! Writes go to a write-ahead log and an in-memory table (the *memtable*); when the
//! memtable is full it is frozen and written by a background thread to an immutable,
//! sorted, checksummed file (an *SSTable*). Reads merge the memtables and the tables,
//! newest version first. A manifest records which tables are live, so a crash at any
//! moment leaves a database that opens with every acknowledged write.
//!
//! Limits: keys are non-empty UTF-8 of at most [`engine::MAX_KEY_SIZE`] bytes; values
//! are at most [`engine::MAX_VALUE_SIZE`] bytes.
//!
//! The layers, bottom up (each uses only the ones before it):
//!
//! - [`engine`]: the storage engine, which knows nothing of HTTP, JSON, indexes or WASM;
//!   [`names`]: the allow-list for instance, plugin and index names;
//! - [`codec`] and [`extractor`]: value codecs and index term extractors, native;
//! - [`plugin`]: the WebAssembly host, whose plugins implement those two traits;
//! - [`index`]: secondary indexes: block posting lists kept in the engine with the
//!   records, indexed queries with stable cursors, background builds;
//! - [`config`]: `lsm.toml`, checked and mapped to engine options;
//! - [`instance`]: a named database = engine + codec + plugin store + indexes;
//! - [`server`]: the HTTP API over the instances;
//! - [`cli`]: the `lsm` command line (server, client, REPL).

#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod cli;
pub mod codec;
pub mod config;
pub mod engine;
pub mod extractor;
pub mod index;
pub mod instance;
pub mod names;
pub mod plugin;
pub mod server;
