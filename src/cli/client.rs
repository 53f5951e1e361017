//! An HTTP client of `lsm serve`, used by the client commands (`lsm get`, `lsm scan`,
//! ...) and by `lsm repl --url`.
//!
//! A [`Client`] addresses one instance: the server's default instance through the root
//! routes (`/keys/...`), or a named one through `/db/{instance}/...`. Keys travel in
//! path segments percent-encoded ([`encode_key`]); lists are read page by page
//! ([`Pages`]), so a scan never holds more than one page. Every failure is a
//! [`ClientError`]; a server's `application/problem+json` answer keeps its `code` and
//! `detail`. The plugin routes are in `client/plugins.rs`, the index, task and query
//! routes in `client/indexes.rs`, the paging of list routes in `client/pages.rs`.

mod indexes;
mod pages;
mod plugins;

use std::io::Write;
use std::time::Duration;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use ureq::http::Response;
use ureq::{Agent, Body, RequestBuilder};

pub use self::indexes::{task_url, Accepted, IndexInfo, QueryPage, TaskInfo};
pub use self::pages::Pages;
pub use self::plugins::{PluginInfo, Sample, SampleValue, Tried, UploadLimits, Uploaded};
use crate::codec::ValueOut;

/// The server URL when neither `--url` nor `LSM_URL` gives one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7700";

/// Largest response body read into memory. A page is about 4 MiB of values, a value at
/// most 16 MiB; JSON escaping can multiply that a few times.
const MAX_RESPONSE: u64 = 256 * 1024 * 1024;
/// Largest error body read (problem+json bodies are small).
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// How long to wait for a connection before saying the server cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries per page when the caller does not choose (the server's maximum is 10000).
const PAGE_SIZE: usize = 1000;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made: nothing was sent.
    #[error("cannot connect to {url}: {reason} (is `lsm serve` running there?)")]
    Connect {
        /// The server's base URL.
        url: String,
        /// The network error.
        reason: String,
    },
    /// The server answered with an error (its problem+json `code` and `detail`).
    #[error("{detail} ({code})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The problem's stable code (`http-{status}` when the body is not a problem).
        code: String,
        /// What went wrong.
        detail: String,
    },
    /// The exchange failed after the connection was made (the request may or may not
    /// have been applied).
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The request URL.
        url: String,
        /// The network or protocol error.
        reason: String,
    },
    /// The server answered something this client does not understand.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The request URL.
        url: String,
        /// What was unexpected.
        reason: String,
    },
    /// The request cannot be made (say, an empty key).
    #[error("{0}")]
    Invalid(String),
    /// A value could not be written to the output.
    #[error("writing the value: {0}")]
    Output(#[source] std::io::Error),
}

impl ClientError {
    /// The problem code of a server error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// One entry of a scan: a key and its value as the API shows it (`value` as JSON, or
/// `value_base64` as bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The key.
    pub key: String,
    /// The value.
    pub value: ValueOut,
}

impl From<Item> for (String, ValueOut) {
    fn from(item: Item) -> Self {
        (item.key, item.value)
    }
}

/// The answer of `POST /admin/compact`.
#[derive(Debug, Clone, Deserialize)]
pub struct Compacted {
    /// Live tables before the compaction.
    pub tables_before: u64,
    /// Live tables after it.
    pub tables_after: u64,
    /// How long it took on the server.
    pub duration_ms: u64,
}

/// The answer of `POST /admin/verify`.
#[derive(Debug, Clone, Deserialize)]
pub struct Verified {
    /// True when every file passed.
    pub ok: bool,
    /// One entry per file checked.
    pub files: Vec<VerifiedFile>,
    /// One entry per index checked against the records (none from the embedded REPL).
    #[serde(default)]
    pub indexes: Vec<VerifiedIndex>,
}

/// One index of a [`Verified`] report.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VerifiedIndex {
    /// The index.
    pub index: String,
    /// Records in its scope.
    pub records: u64,
    /// Postings whose record is live.
    pub live_postings: u64,
    /// Postings of records since updated or deleted (a rebuild drops them).
    pub dead_postings: u64,
    /// Differences found.
    pub problem_count: u64,
    /// The first differences.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// One file of a [`Verified`] report.
#[derive(Debug, Clone, Deserialize)]
pub struct VerifiedFile {
    /// The file on the server.
    pub path: String,
    /// `table` or `wal`.
    pub kind: String,
    /// Versions or records checked.
    pub items: u64,
    /// What is wrong with the file, if anything.
    pub error: Option<String>,
}

/// A connection to one instance of a server.
pub struct Client {
    agent: Agent,
    /// `http://host:port` (plus any path prefix), without a trailing slash.
    base: String,
    /// `base`, or `base/db/{instance}`: where the instance routes start.
    root: String,
    instance: Option<String>,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `url` (`http://host:port`; a URL without a scheme gets
    /// `http://`). `instance` selects `/db/{instance}/...` (default: the root routes, the
    /// server's default instance); `token` is sent to the admin routes. Nothing is sent
    /// until the first request.
    pub fn new(
        url: &str,
        instance: Option<&str>,
        token: Option<&str>,
    ) -> Result<Client, ClientError> {
        let base = normalize_url(url)?;
        let root = match instance {
            Some(name) => {
                if name.is_empty() {
                    return Err(ClientError::BadUrl {
                        url: url.to_string(),
                        reason: "the instance name is empty".into(),
                    });
                }
                format!("{base}/db/{}", encode_segment(name))
            }
            None => base.clone(),
        };
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("lsm/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent: Agent::new_with_config(config),
            base,
            root,
            instance: instance.map(str::to_string),
            token: token.filter(|t| !t.is_empty()).map(str::to_string),
        })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The instance addressed, if one was named.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// Checks that the server answers and that the instance exists and serves.
    pub fn check(&self) -> Result<(), ClientError> {
        let url = format!("{}/health", self.root);
        let resp = self.send(&url, self.agent.get(&url).call())?;
        let _: Value = read_json(&url, resp)?;
        Ok(())
    }

    /// The value of `key`, or `None` when the key does not exist.
    pub fn get(&self, key: &str) -> Result<Option<ValueOut>, ClientError> {
        let url = self.key_url(key)?;
        match self.send(&url, self.agent.get(&url).call()) {
            Ok(resp) => {
                let entry: Value = read_json(&url, resp)?;
                let item = parse_item(entry).map_err(|reason| protocol(&url, reason))?;
                Ok(Some(item.value))
            }
            Err(e) if e.code() == Some("key-not-found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the stored bytes of `key` to `out` as they are, streamed. Returns false
    /// (and writes nothing) when the key does not exist.
    pub fn get_raw(&self, key: &str, out: &mut dyn Write) -> Result<bool, ClientError> {
        let url = self.key_url(key)?;
        let request = self
            .agent
            .get(&url)
            .header("Accept", "application/octet-stream");
        let resp = match self.send(&url, request.call()) {
            Ok(resp) => resp,
            Err(e) if e.code() == Some("key-not-found") => return Ok(false),
            Err(e) => return Err(e),
        };
        let mut reader = resp.into_body().into_reader();
        std::io::copy(&mut reader, out).map_err(|e| {
            // The body reader reports network failures as io errors too.
            if e.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
                ClientError::Transport {
                    url: url.clone(),
                    reason: e.to_string(),
                }
            } else {
                ClientError::Output(e)
            }
        })?;
        Ok(true)
    }

    /// Sets `key` to `value` (a JSON value; the raw codec takes a string).
    pub fn put(&self, key: &str, value: &Value) -> Result<(), ClientError> {
        let url = self.key_url(key)?;
        let resp = self.send(&url, self.agent.put(&url).send_json(value))?;
        let _: Value = read_json(&url, resp)?;
        Ok(())
    }

    /// Deletes `key` (deleting a key that does not exist succeeds).
    pub fn delete(&self, key: &str) -> Result<(), ClientError> {
        let url = self.key_url(key)?;
        let resp = self.send(&url, self.agent.delete(&url).call())?;
        let _: Value = read_json(&url, resp)?;
        Ok(())
    }

    /// Applies every `(key, Some(value))` set and `(key, None)` delete atomically, in
    /// order (`POST /keys/batch`). Returns the number of operations applied.
    pub fn put_batch(&self, items: &[(String, Option<Value>)]) -> Result<u64, ClientError> {
        let url = format!("{}/keys/batch", self.root);
        let items: Vec<Value> = items
            .iter()
            .map(|(key, value)| match value {
                Some(value) => json!({ "key": key, "value": value }),
                None => json!({ "key": key, "delete": true }),
            })
            .collect();
        let body = json!({ "items": items });
        let resp = self.send(&url, self.agent.post(&url).send_json(&body))?;
        let answer: Map<String, Value> = read_json(&url, resp)?;
        count_field(&url, &answer, "written")
    }

    /// Deletes every key of `keys` atomically (`DELETE /keys/batch`). Returns the number
    /// of deletes applied.
    pub fn delete_batch(&self, keys: &[String]) -> Result<u64, ClientError> {
        let url = format!("{}/keys/batch", self.root);
        let body = json!({ "keys": keys });
        let request = self.agent.delete(&url).force_send_body();
        let resp = self.send(&url, request.send_json(&body))?;
        let answer: Map<String, Value> = read_json(&url, resp)?;
        count_field(&url, &answer, "deleted")
    }

    /// The entries whose key starts with `prefix` (every entry for `None`), in key
    /// order, fetched `page_size` at a time (default 1000) as the iterator advances.
    pub fn scan(&self, prefix: Option<&str>, page_size: Option<usize>) -> Pages<'_, Item> {
        Pages::new(self, "/scan", "items", prefix, page_size, parse_item)
    }

    /// The keys starting with `prefix` (every key for `None`), in order, fetched
    /// `page_size` at a time (default 1000) as the iterator advances.
    pub fn keys(&self, prefix: Option<&str>, page_size: Option<usize>) -> Pages<'_, String> {
        Pages::new(self, "/keys", "keys", prefix, page_size, |v| match v {
            Value::String(key) => Ok(key),
            other => Err(format!("a key is not a string: {other}")),
        })
    }

    /// The instance's engine statistics (`GET /stats`).
    pub fn stats(&self) -> Result<Value, ClientError> {
        self.get_json("/stats")
    }

    /// Statistics of every table of the instance (`GET /stats_all`).
    pub fn stats_all(&self) -> Result<Value, ClientError> {
        self.get_json("/stats_all")
    }

    /// Flushes and compacts every table (`POST /admin/compact`, with the token).
    pub fn compact(&self) -> Result<Compacted, ClientError> {
        self.admin("/admin/compact")
    }

    /// Checks every table and WAL record (`POST /admin/verify`, with the token).
    pub fn verify(&self) -> Result<Verified, ClientError> {
        self.admin("/admin/verify")
    }

    fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.root);
        let resp = self.send(&url, self.agent.get(&url).call())?;
        read_json(&url, resp)
    }

    fn admin<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.root);
        let request = self.authorized(self.agent.post(&url));
        let resp = self.send(&url, request.send_empty())?;
        read_json(&url, resp)
    }

    /// `request` with the admin token, when there is one.
    fn authorized<B>(&self, request: RequestBuilder<B>) -> RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    fn host_resolves(&self) -> bool {
        use std::net::ToSocketAddrs;
        let Ok(uri) = self.base.parse::<ureq::http::Uri>() else {
            return false;
        };
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (host, uri.port_u16().unwrap_or(80))
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.next().is_some())
    }

    fn key_url(&self, key: &str) -> Result<String, ClientError> {
        if key.is_empty() {
            return Err(ClientError::Invalid("a key must not be empty".into()));
        }
        Ok(format!("{}/keys/{}", self.root, encode_key(key)))
    }

    /// The response of a request, or the error it stands for.
    fn send(
        &self,
        url: &str,
        result: Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>, ClientError> {
        let resp = result.map_err(|e| self.transport_error(url, e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(problem(url, resp))
        }
    }

    fn transport_error(&self, url: &str, e: ureq::Error) -> ClientError {
        use std::io::ErrorKind as K;
        let before_sending = match &e {
            ureq::Error::Io(io) => matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::AddrNotAvailable
                    | K::NetworkUnreachable
                    | K::HostUnreachable
            ),
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
            ureq::Error::Timeout(t) => {
                matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve)
            }
            _ => false,
        };
        let reason = match &e {
            ureq::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        };
        // A host name that does not resolve fails as an io error of no particular kind:
        // tell it apart by resolving the name again (only on this error path).
        let before_sending =
            before_sending || matches!(e, ureq::Error::Io(_)) && !self.host_resolves();
        if before_sending {
            ClientError::Connect {
                url: self.base.clone(),
                reason,
            }
        } else {
            ClientError::Transport {
                url: url.to_string(),
                reason,
            }
        }
    }
}

/// Percent-encodes `key` as one path segment: every byte but the unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`). The keys `batch` and `search` get their first
/// letter encoded, so they reach `/keys/{key}` rather than the routes `/keys/batch` and
/// `/keys/search` (the server decodes after routing); `.` and `..` are encoded so that
/// nothing on the way treats them as relative paths.
pub fn encode_key(key: &str) -> String {
    match key {
        "batch" => "%62atch".to_string(),
        "search" => "%73earch".to_string(),
        "." => "%2E".to_string(),
        ".." => "%2E%2E".to_string(),
        _ => encode_segment(key),
    }
}

fn encode_segment(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// `http://host:port[/path]` without a trailing slash.
fn normalize_url(url: &str) -> Result<String, ClientError> {
    let bad = |reason: &str| ClientError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = url.trim();
    let full = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let (scheme, rest) = full.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(bad(
            "only http:// is supported (put a TLS-terminating proxy in front for https)",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("a server URL has no query or fragment"));
    }
    let base = format!("http://{}", rest.trim_end_matches('/'));
    let uri: ureq::http::Uri = base.parse().map_err(|e| bad(&format!("{e}")))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(base)
}

fn protocol(url: &str, reason: String) -> ClientError {
    ClientError::Protocol {
        url: url.to_string(),
        reason,
    }
}

fn read_json<T: DeserializeOwned>(url: &str, resp: Response<Body>) -> Result<T, ClientError> {
    resp.into_body()
        .into_with_config()
        .limit(MAX_RESPONSE)
        .read_json()
        .map_err(|e| match e {
            ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::Protocol(_) => {
                ClientError::Transport {
                    url: url.to_string(),
                    reason: e.to_string(),
                }
            }
            other => protocol(url, other.to_string()),
        })
}

fn count_field(url: &str, answer: &Map<String, Value>, field: &str) -> Result<u64, ClientError> {
    answer
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| protocol(url, format!("no {field:?} count in the answer")))
}

/// Reads `{"key": ..., "value": ...}` or `{"key": ..., "value_base64": ...}`.
fn parse_item(entry: Value) -> Result<Item, String> {
    let Value::Object(mut fields) = entry else {
        return Err("an entry is not a JSON object".into());
    };
    let key = match fields.remove("key") {
        Some(Value::String(key)) => key,
        _ => return Err("an entry has no string key".into()),
    };
    let value = if let Some(value) = fields.remove("value") {
        ValueOut::Json(value)
    } else if let Some(Value::String(b64)) = fields.remove("value_base64") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| format!("value_base64 of {key:?} is not base64: {e}"))?;
        ValueOut::Bytes(bytes)
    } else {
        return Err(format!("the entry {key:?} has no value"));
    };
    Ok(Item { key, value })
}

/// The error a non-2xx response stands for: its problem+json `code` and `detail`, or
/// the status and the start of the body when it is not a problem (say, from a proxy).
fn problem(url: &str, resp: Response<Body>) -> ClientError {
    let status = resp.status().as_u16();
    let text = resp
        .into_body()
        .into_with_config()
        .limit(MAX_ERROR_BODY)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    problem_from(url, status, &text)
}

/// [`problem`] of a status and a body. The code is the problem's `code`, or the last
/// part of its `type` (`urn:lsm:problem:{code}`) when it has no `code`.
fn problem_from(url: &str, status: u16, text: &str) -> ClientError {
    #[derive(Deserialize)]
    struct Problem {
        code: Option<String>,
        #[serde(rename = "type")]
        type_uri: Option<String>,
        detail: Option<String>,
        title: Option<String>,
    }
    let reason = ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    let parsed = serde_json::from_str::<Problem>(text).ok().and_then(|p| {
        let code = p.code.or_else(|| {
            p.type_uri
                .as_deref()
                .and_then(|t| t.strip_prefix("urn:lsm:problem:"))
                .filter(|c| !c.is_empty())
                .map(str::to_string)
        })?;
        Some((code, p.detail.or(p.title)))
    });
    let (code, mut detail) = match parsed {
        Some((code, detail)) => (code, detail.unwrap_or_else(|| reason.to_string())),
        None => {
            let snippet: String = text.trim().chars().take(200).collect();
            let mut detail = format!("{status} {reason} from {url}");
            if !snippet.is_empty() {
                detail.push_str(": ");
                detail.push_str(&snippet);
            }
            (format!("http-{status}"), detail)
        }
    };
    if status == 401 {
        detail.push_str("; pass the admin token with --token or LSM_ADMIN_TOKEN");
    }
    ClientError::Api {
        status,
        code,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_one_segment() {
        assert_eq!(encode_key("users:1"), "users%3A1");
        assert_eq!(encode_key("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_key("ünï"), "%C3%BCn%C3%AF");
        assert_eq!(encode_key("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(encode_key("%"), "%25");
        assert_eq!(encode_key("batch"), "%62atch");
        assert_eq!(encode_key("search"), "%73earch");
        assert_eq!(encode_key("batches"), "batches");
        assert_eq!(encode_key(".."), "%2E%2E");
    }

    #[test]
    fn urls_are_normalized() {
        let n = |u: &str| normalize_url(u).map_err(|e| e.to_string());
        assert_eq!(n("http://h:1/").as_deref(), Ok("http://h:1"));
        assert_eq!(n("127.0.0.1:7700").as_deref(), Ok("http://127.0.0.1:7700"));
        assert_eq!(n("HTTP://h/lsm/").as_deref(), Ok("http://h/lsm"));
        assert!(n("https://h").is_err());
        assert!(n("http://h/?x").is_err());
        assert!(n("http://").is_err());
    }

    #[test]
    fn problems_keep_their_code() {
        let code = |status: u16, body: &str| match problem_from("http://h/x", status, body) {
            ClientError::Api { code, detail, .. } => (code, detail),
            other => panic!("{other:?}"),
        };
        let with_code = r#"{"type":"urn:lsm:problem:key-not-found","code":"key-not-found",
            "title":"Not Found","status":404,"detail":"no key"}"#;
        assert_eq!(
            code(404, with_code),
            ("key-not-found".into(), "no key".into())
        );
        let type_only = r#"{"type":"urn:lsm:problem:index-exists","title":"Conflict",
            "status":409,"detail":"an index named \"a\" already exists"}"#;
        assert_eq!(
            code(409, type_only),
            (
                "index-exists".into(),
                r#"an index named "a" already exists"#.into()
            )
        );
        let (c, detail) = code(502, "<html>bad gateway</html>");
        assert_eq!(c, "http-502");
        assert!(
            detail.starts_with("502 Bad Gateway from http://h/x: <html>"),
            "{detail}"
        );
        let (c, detail) = code(401, r#"{"type":"urn:lsm:problem:unauthorized"}"#);
        assert_eq!(c, "unauthorized");
        assert!(detail.ends_with("--token or LSM_ADMIN_TOKEN"), "{detail}");
    }

    #[test]
    fn items_parse_json_and_base64_values() {
        let item = parse_item(json!({"key": "k", "value": null})).expect("null value");
        assert_eq!(item.value, ValueOut::Json(Value::Null));
        let item = parse_item(json!({"key": "k", "value_base64": "/wA="})).expect("b64");
        assert_eq!(item.value, ValueOut::Bytes(vec![0xff, 0]));
        assert!(parse_item(json!({"key": "k"})).is_err());
        assert!(parse_item(json!({"value": "v"})).is_err());
    }
}
