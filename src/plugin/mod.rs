//! The plugin host: runs WebAssembly components (index extractors and value codecs) in a
//! sandbox. This is the only part of lsm that touches wasmtime.
//!
//! - [`PluginHost`]: one wasmtime engine for the process, WASI with no authority, the
//!   deadline clock and default [`Limits`].
//! - [`Plugin`]: a validated, compiled component with a pool of warm instances; calls
//!   are bounded in time and memory, and every failure is a [`PluginError`] naming the
//!   plugin.
//! - [`PluginStore`]: an instance's uploaded plugins, content-addressed on disk with
//!   their precompiled artifacts.
//!
//! The contract plugins implement is `wit/plugin.wit`.

mod artifact;
pub mod bindings;
pub mod codec;
mod error;
pub mod extractor;
mod fs;
pub mod host;
pub mod loaded;
mod output;
pub mod store;

pub use codec::WasmCodec;
pub use error::PluginError;
pub use extractor::WasmExtractor;
pub use host::{Limits, PluginHost};
pub use loaded::{Plugin, World, PACKAGE_VERSION};
pub use store::{check_header, LimitOverrides, PluginStore, Registered};
