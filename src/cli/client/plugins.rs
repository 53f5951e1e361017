//! The plugin routes of a [`Client`]: upload, list, show, delete and try out the
//! instance's WebAssembly plugins (`/plugins/...`, admin routes: every request carries
//! the token).

use base64::Engine as _;
use lsm_extract::Term;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{encode_segment, protocol, read_json, Client, ClientError};

/// A plugin as the server describes it (`GET /plugins/{name}`, an entry of
/// `GET /plugins`, the answer of an upload).
#[derive(Debug, Clone, Deserialize)]
pub struct PluginInfo {
    /// The plugin's name in its instance.
    pub name: String,
    /// SHA-256 of the component, in hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// `extractor` or `codec`.
    pub world: String,
    /// `loaded`, or `broken` (registered but it could not be loaded: see `reason`).
    pub status: String,
    /// Why a broken plugin could not be loaded.
    #[serde(default)]
    pub reason: Option<String>,
    /// Calls made since the server loaded it (loaded plugins only).
    #[serde(default)]
    pub calls: Option<u64>,
    /// Calls that failed (loaded plugins only).
    #[serde(default)]
    pub errors: Option<u64>,
    /// Mean duration of a call, in microseconds (loaded plugins only).
    #[serde(default)]
    pub mean_call_us: Option<f64>,
    /// How long the upload took to validate and compile, in milliseconds (uploads only).
    #[serde(default)]
    pub load_ms: Option<u64>,
}

/// The answer of an upload.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// False when a plugin of that name was replaced.
    pub created: bool,
    /// The plugin as registered.
    pub info: PluginInfo,
}

/// Limits of one plugin chosen at upload (the server's defaults otherwise).
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadLimits {
    /// Deadline of one call, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Memory cap, in bytes.
    pub memory_bytes: Option<u64>,
}

/// The record handed to `POST /plugins/{name}/test`.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The record's key.
    pub key: String,
    /// Its value.
    pub value: SampleValue,
    /// The options passed to the plugin (`{}` when `None`).
    pub options: Option<Map<String, Value>>,
}

/// The value of a [`Sample`].
#[derive(Debug, Clone)]
pub enum SampleValue {
    /// A JSON value, encoded by the instance's codec (codec plugins take only this).
    Json(Value),
    /// Bytes in the instance's stored form.
    Bytes(Vec<u8>),
}

/// What a plugin made of a [`Sample`].
#[derive(Debug, Clone)]
pub enum Tried {
    /// An extractor's terms.
    Terms(Vec<Term>),
    /// A codec encoded the value into `stored`, which it decoded back into `decoded`.
    Decoded {
        /// The stored form.
        stored: Vec<u8>,
        /// The value read back.
        decoded: Value,
    },
    /// The plugin failed (timed out, trapped, returned an error ...).
    Failed {
        /// Stable code: `plugin-timeout`, `plugin-trap`, `plugin-error` ...
        code: String,
        /// What happened, naming the plugin.
        message: String,
    },
}

impl Client {
    /// Registers the component `wasm` as the plugin `name` (`PUT /plugins/{name}`),
    /// replacing a plugin of that name once the new one is validated.
    pub fn upload_plugin(
        &self,
        name: &str,
        wasm: &[u8],
        limits: UploadLimits,
    ) -> Result<Uploaded, ClientError> {
        let url = self.plugin_url(name, "")?;
        let mut request = self
            .authorized(self.agent.put(&url))
            .header("Content-Type", "application/wasm");
        if let Some(ms) = limits.deadline_ms {
            request = request.query("deadline_ms", ms.to_string());
        }
        if let Some(bytes) = limits.memory_bytes {
            request = request.query("memory_bytes", bytes.to_string());
        }
        let resp = self.send(&url, request.send(wasm))?;
        let created = resp.status().as_u16() == 201;
        let info = read_json(&url, resp)?;
        Ok(Uploaded { created, info })
    }

    /// The instance's plugins (`GET /plugins`).
    pub fn plugins(&self) -> Result<Vec<PluginInfo>, ClientError> {
        #[derive(Deserialize)]
        struct Listing {
            plugins: Vec<PluginInfo>,
        }
        let url = format!("{}/plugins", self.root);
        let resp = self.send(&url, self.authorized(self.agent.get(&url)).call())?;
        let listing: Listing = read_json(&url, resp)?;
        Ok(listing.plugins)
    }

    /// Everything the server says about the plugin `name` (`GET /plugins/{name}`), as
    /// it says it. A plugin that does not exist is an error with the code
    /// `plugin-not-found`.
    pub fn plugin(&self, name: &str) -> Result<Value, ClientError> {
        let url = self.plugin_url(name, "")?;
        let resp = self.send(&url, self.authorized(self.agent.get(&url)).call())?;
        read_json(&url, resp)
    }

    /// Removes the plugin `name` (`DELETE /plugins/{name}`; refused while an index uses
    /// it).
    pub fn delete_plugin(&self, name: &str) -> Result<(), ClientError> {
        let url = self.plugin_url(name, "")?;
        let resp = self.send(&url, self.authorized(self.agent.delete(&url)).call())?;
        let _: Value = read_json(&url, resp)?;
        Ok(())
    }

    /// Runs the plugin `name` on `sample` (`POST /plugins/{name}/test`). A plugin that
    /// fails is an answer ([`Tried::Failed`]), not an error.
    pub fn test_plugin(&self, name: &str, sample: &Sample) -> Result<Tried, ClientError> {
        let url = self.plugin_url(name, "/test")?;
        let mut body = Map::new();
        body.insert("key".into(), Value::String(sample.key.clone()));
        match &sample.value {
            SampleValue::Json(v) => body.insert("value".into(), v.clone()),
            SampleValue::Bytes(b) => body.insert(
                "value_base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            ),
        };
        if let Some(options) = &sample.options {
            body.insert("options".into(), Value::Object(options.clone()));
        }
        let request = self.authorized(self.agent.post(&url));
        let resp = self.send(&url, request.send_json(Value::Object(body)))?;
        let answer: Map<String, Value> = read_json(&url, resp)?;
        parse_tried(answer).map_err(|reason| protocol(&url, reason))
    }

    fn plugin_url(&self, name: &str, suffix: &str) -> Result<String, ClientError> {
        if name.is_empty() {
            return Err(ClientError::Invalid(
                "a plugin name must not be empty".into(),
            ));
        }
        Ok(format!(
            "{}/plugins/{}{suffix}",
            self.root,
            encode_segment(name)
        ))
    }
}

/// Reads the answer of the test route.
fn parse_tried(mut answer: Map<String, Value>) -> Result<Tried, String> {
    match answer.get("ok") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            #[derive(Deserialize)]
            struct Failure {
                code: String,
                message: String,
            }
            let failure: Failure = answer
                .remove("error")
                .ok_or("a failed test has no error")
                .and_then(|e| serde_json::from_value(e).map_err(|_| "a malformed error"))?;
            return Ok(Tried::Failed {
                code: failure.code,
                message: failure.message,
            });
        }
        _ => return Err("no \"ok\" in the answer".into()),
    }
    if let Some(terms) = answer.remove("terms") {
        let terms = serde_json::from_value(terms).map_err(|e| format!("malformed terms: {e}"))?;
        return Ok(Tried::Terms(terms));
    }
    match (answer.remove("stored_base64"), answer.remove("decoded")) {
        (Some(Value::String(b64)), Some(decoded)) => {
            let stored = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("stored_base64 is not base64: {e}"))?;
            Ok(Tried::Decoded { stored, decoded })
        }
        _ => Err("neither terms nor a decoded value in the answer".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tried(v: Value) -> Result<Tried, String> {
        match v {
            Value::Object(map) => parse_tried(map),
            _ => Err("not an object".into()),
        }
    }

    #[test]
    fn test_answers_parse() {
        let terms = json!({"ok": true, "terms": [
            {"type": "text", "value": "a"}, {"type": "integer", "value": 30},
            {"type": "bytes", "value": [1, 255]}]});
        match tried(terms) {
            Ok(Tried::Terms(t)) => assert_eq!(
                t,
                [
                    Term::Text("a".into()),
                    Term::Integer(30),
                    Term::Bytes(vec![1, 255])
                ]
            ),
            other => panic!("{other:?}"),
        }
        let codec = json!({"ok": true, "stored_base64": "e30=", "decoded": {}});
        match tried(codec) {
            Ok(Tried::Decoded { stored, decoded }) => {
                assert_eq!((stored.as_slice(), decoded), (&b"{}"[..], json!({})));
            }
            other => panic!("{other:?}"),
        }
        let failed = json!({"ok": false, "error": {"code": "plugin-trap", "message": "m"}});
        match tried(failed) {
            Ok(Tried::Failed { code, message }) => {
                assert_eq!((&*code, &*message), ("plugin-trap", "m"))
            }
            other => panic!("{other:?}"),
        }
        assert!(tried(json!({"ok": true})).is_err());
        assert!(tried(json!({"ok": false})).is_err());
        assert!(tried(json!({"terms": []})).is_err());
    }
}
