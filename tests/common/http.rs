//! A small blocking HTTP client and server fixtures for the server tests.

use std::path::Path;

use lsm::config::{BuiltinCodec, CodecConfig, Config, InstanceConfig, SyncSetting};
use lsm::server::Server;
use serde_json::Value;

/// One response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `code` of a problem+json body, checking the media type and the status field.
    pub fn problem_code(&self) -> String {
        assert_eq!(
            self.content_type,
            "application/problem+json",
            "status {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert_eq!(
            body["status"].as_u64(),
            Some(u64::from(self.status)),
            "{body}"
        );
        let code = body["code"].as_str().expect("code").to_string();
        assert_eq!(
            body["type"].as_str(),
            Some(format!("urn:lsm:problem:{code}").as_str())
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
        code
    }
}

/// A client of one server.
pub struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    pub fn new(base: impl Into<String>) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Http {
            agent,
            base: base.into(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        Self::try_read(response).unwrap_or_else(|e| panic!("HTTP request failed: {e}"))
    }

    fn try_read(
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, ureq::Error> {
        let mut response = response?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()?;
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    /// POST of a JSON body; an error when the server cannot be reached.
    pub fn try_post_json(&self, path: &str, body: &Value) -> Result<Reply, ureq::Error> {
        let request = ureq::http::Request::builder()
            .method("POST")
            .uri(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .expect("request");
        Self::try_read(self.agent.run(request))
    }

    pub fn get(&self, path: &str) -> Reply {
        Self::read(self.agent.get(self.url(path)).call())
    }

    pub fn get_with(&self, path: &str, header: (&str, &str)) -> Reply {
        Self::read(
            self.agent
                .get(self.url(path))
                .header(header.0, header.1)
                .call(),
        )
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(
            "POST",
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
    }

    pub fn delete(&self, path: &str) -> Reply {
        Self::read(self.agent.delete(self.url(path)).call())
    }

    pub fn delete_json(&self, path: &str, body: &Value) -> Reply {
        self.send(
            "DELETE",
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
    }

    /// Any method with a body of `content_type` (empty: no content-type header).
    pub fn send(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        self.send_with(method, path, content_type, body, None)
    }

    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        header: Option<(&str, &str)>,
    ) -> Reply {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let request = request.body(body).expect("request");
        Self::read(self.agent.run(request))
    }
}

/// An instance named `name` in `dir` with `codec`, fsync off (tests of logic).
pub fn instance(name: &str, dir: &Path, codec: BuiltinCodec) -> InstanceConfig {
    let mut ic = Config::embedded_default().instances.remove(0);
    ic.name = name.to_string();
    ic.data_dir = dir.to_path_buf();
    ic.codec = CodecConfig::Builtin(codec);
    ic.sync = SyncSetting::Never;
    ic.memtable_max_size = 1 << 20;
    ic
}

/// A configuration of `instances` with default server settings.
pub fn config(instances: Vec<InstanceConfig>) -> Config {
    let mut config = Config::embedded_default();
    config.instances = instances;
    config
}

/// Starts a server on a free loopback port.
pub fn start(config: Config) -> (Server, Http) {
    let server = Server::start(config, "127.0.0.1:0").expect("start server");
    let http = Http::new(server.url());
    (server, http)
}
