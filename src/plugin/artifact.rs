//! Precompiled artifacts: a compiled component saved to disk so the next start loads it
//! in milliseconds instead of compiling it again.
//!
//! One of the two modules with `unsafe` (the other, `engine/prefetch.rs`, issues CPU
//! prefetch hints): wasmtime's `Component::deserialize` trusts its
//! input to be machine code it produced itself. An artifact is therefore only loaded
//! when (1) its file name carries this engine's fingerprint (wasmtime version and
//! compilation settings), (2) it sits in the instance's own plugin cache, written by
//! [`save`] of this program, and (3) its SHA-256, recorded next to it when it was
//! written, still matches — a damaged or truncated file is recompiled, never loaded.

use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::fs::write_atomically;
use super::host::PluginHost;
use super::PluginError;

/// Loads the artifact at `path` if it is intact and compatible; `None` otherwise.
pub fn load(host: &PluginHost, path: &Path) -> Option<Component> {
    let bytes = std::fs::read(path).ok()?;
    let recorded = std::fs::read_to_string(path.with_extension("sha256")).ok()?;
    if hex(&Sha256::digest(&bytes)) != recorded.trim() {
        tracing::warn!(artifact = %path.display(), "cached artifact is damaged; recompiling");
        return None;
    }
    // SAFETY: `bytes` were produced by `Component::serialize` of an engine with the same
    // fingerprint (it is part of the file name, and wasmtime re-checks its own version
    // and settings header), were written by `save` below into the instance's private
    // cache directory, and their SHA-256 matches the one recorded at write time, so
    // they are exactly the bytes wasmtime produced.
    match unsafe { Component::deserialize(host.engine(), &bytes) } {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(artifact = %path.display(), error = %e, "cached artifact refused; recompiling");
            None
        }
    }
}

/// Saves `component`'s compiled code at `path` (with its SHA-256 beside it).
pub fn save(component: &Component, path: &Path) -> Result<(), PluginError> {
    let bytes = component
        .serialize()
        .map_err(|e| PluginError::Io(format!("serializing a compiled plugin: {e}")))?;
    write_atomically(
        &path.with_extension("sha256"),
        hex(&Sha256::digest(&bytes)).as_bytes(),
    )?;
    write_atomically(path, &bytes)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
