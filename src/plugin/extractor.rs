//! An index extractor backed by an `extractor` plugin.

use std::sync::Arc;

use super::{Plugin, PluginError, World};
use crate::extractor::{ExtractError, Extractor, Term};

/// Runs a custom extractor in a WebAssembly component, with the index's options.
pub struct WasmExtractor {
    plugin: Arc<Plugin>,
    options: String,
}

impl WasmExtractor {
    /// An extractor over `plugin` (which must implement the `extractor` world) called
    /// with `options` (JSON).
    pub fn new(plugin: Arc<Plugin>, options: &serde_json::Value) -> Result<Self, PluginError> {
        if plugin.world() != World::Extractor {
            return Err(PluginError::WrongKind {
                plugin: plugin.name().to_string(),
                found: plugin.world().name(),
                wanted: World::Extractor.name(),
            });
        }
        Ok(WasmExtractor {
            plugin,
            options: options.to_string(),
        })
    }
}

fn error(e: PluginError) -> ExtractError {
    ExtractError::new(e.to_string())
}

impl Extractor for WasmExtractor {
    fn describe(&self) -> String {
        format!(
            "custom {} ({})",
            self.plugin.name(),
            &self.plugin.sha256()[..12]
        )
    }

    fn extract(&self, key: &str, value: &[u8]) -> Result<Vec<Term>, ExtractError> {
        self.plugin
            .extract(key, value, &self.options)
            .map_err(error)
    }

    fn extract_batch(&self, entries: &[(&str, &[u8])]) -> Vec<Result<Vec<Term>, ExtractError>> {
        match self.plugin.extract_batch(entries, &self.options) {
            Ok(results) => results.into_iter().map(|r| r.map_err(error)).collect(),
            Err(e) => {
                let e = error(e);
                entries.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }
}
