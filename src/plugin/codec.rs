//! A value codec backed by a `codec` plugin.

use std::sync::Arc;

use super::{Plugin, PluginError};
use crate::codec::{Codec, CodecError, JsonStyle, ValueIn, ValueOut};

/// Runs the instance's codec in a WebAssembly component.
pub struct WasmCodec {
    plugin: Arc<Plugin>,
    name: String,
}

impl WasmCodec {
    /// A codec over `plugin` (which must implement the `codec` world).
    pub fn new(plugin: Arc<Plugin>) -> Self {
        let name = format!("plugin:{}", plugin.name());
        WasmCodec { plugin, name }
    }
}

fn failed(e: PluginError) -> CodecError {
    match e {
        PluginError::Guest { message, .. } => CodecError::Invalid(message),
        other => CodecError::Failed(other.to_string()),
    }
}

impl Codec for WasmCodec {
    fn name(&self) -> &str {
        &self.name
    }

    fn encode(&self, value: ValueIn) -> Result<Vec<u8>, CodecError> {
        match value {
            ValueIn::Json(v) => self.plugin.encode(&v.to_string()).map_err(failed),
            ValueIn::Bytes(b) => {
                self.plugin.validate(&b).map_err(failed)?;
                Ok(b)
            }
        }
    }

    fn decode(&self, stored: &[u8], _style: JsonStyle) -> Result<ValueOut, CodecError> {
        let text = self.plugin.decode(stored).map_err(|e| match e {
            PluginError::Guest { message, .. } => CodecError::Undecodable(message),
            other => CodecError::Failed(other.to_string()),
        })?;
        serde_json::from_str(&text)
            .map(ValueOut::Json)
            .map_err(|e| {
                CodecError::Failed(format!(
                    "codec plugin {:?} returned text that is not JSON: {e}",
                    self.plugin.name()
                ))
            })
    }
}
