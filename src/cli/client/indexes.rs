//! The index routes of a [`Client`]: list, show, create, drop and rebuild the
//! instance's secondary indexes (`/indexes/...`), follow their background tasks
//! (`/tasks/{id}`), and run indexed queries (`POST /query`).
//!
//! Creating, dropping and rebuilding answer `202 Accepted` with the task doing the
//! work; [`Accepted::poll_url`] is where its progress is read. The token is sent with
//! every index request (the changes are admin routes); queries do not need it.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{encode_segment, protocol, read_json, Client, ClientError};

/// An index as the server describes it (an entry of `GET /indexes`). Only what the
/// list shows is read; `GET /indexes/{name}` is kept as the server sends it
/// ([`Client::index`]).
#[derive(Debug, Clone, Deserialize)]
pub struct IndexInfo {
    /// The index's name.
    pub index_name: String,
    /// Only keys starting with this are indexed (empty: every key).
    #[serde(default)]
    pub scope_prefix: String,
    /// `equality`, `range` or `text`.
    pub index_type: String,
    /// How terms are taken from a record: `{"type": "json_path", "path": ...}`, ...
    pub extractor: Value,
    /// `file` (the instance's `indexes_file`) or `api`.
    #[serde(default)]
    pub source: Option<String>,
    /// `ready`, `building` or `rebuilding`.
    pub state: String,
    /// The build or rebuild under way.
    #[serde(default)]
    pub task: Option<u64>,
}

/// A background task (build, rebuild or drop) as `GET /tasks/{id}` shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskInfo {
    /// Its id in the instance.
    pub id: u64,
    /// `build`, `rebuild` or `drop`.
    pub kind: String,
    /// The index.
    pub index: String,
    /// `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Work done, in `unit`s.
    pub done: u64,
    /// Work expected, in `unit`s (grows while writes arrive during a build).
    pub total: u64,
    /// What `done` and `total` count (`doc ids`, `keys`).
    pub unit: String,
    /// Records the extractor failed on (skipped, with `on_error = skip`).
    pub skipped: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// How long it has run or ran, in milliseconds.
    pub elapsed_ms: u64,
}

impl TaskInfo {
    /// Whether the task has ended (done, failed or cancelled); any other state, known
    /// or not, is still under way.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed" | "cancelled")
    }
}

/// The answer of a create, drop or rebuild: the task doing the work.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The task, as read.
    pub task: TaskInfo,
    /// The task as the server sent it.
    pub raw: Value,
    /// Where to read the task's progress: the `Location` of the answer, or the
    /// instance's `/tasks/{id}` when there is none.
    pub poll_url: String,
}

/// One page of a query's results.
#[derive(Debug, Clone)]
pub struct QueryPage {
    /// Each result as the server sent it: `{"key": ..., "value": ...}`.
    pub results: Vec<Value>,
    /// Where the next page starts, or `None` after the last page.
    pub next_cursor: Option<String>,
    /// What the page read (`postings_scanned`, `blocks_read`, ...).
    pub stats: Option<Value>,
    /// The plan, when `explain` was asked for.
    pub plan: Option<Value>,
}

impl Client {
    /// The instance's indexes (`GET /indexes`).
    pub fn indexes(&self) -> Result<Vec<IndexInfo>, ClientError> {
        #[derive(Deserialize)]
        struct Listing {
            indexes: Vec<IndexInfo>,
        }
        let url = format!("{}/indexes", self.root);
        let resp = self.send(&url, self.authorized(self.agent.get(&url)).call())?;
        let listing: Listing = read_json(&url, resp)?;
        Ok(listing.indexes)
    }

    /// Everything the server says about the index `name` (`GET /indexes/{name}`), as it
    /// says it.
    pub fn index(&self, name: &str) -> Result<Value, ClientError> {
        let url = self.index_url(name, "")?;
        let resp = self.send(&url, self.authorized(self.agent.get(&url)).call())?;
        read_json(&url, resp)
    }

    /// Creates an index from its definition (`POST /indexes`); it is built in the
    /// background by the returned task.
    pub fn create_index(&self, definition: &Value) -> Result<Accepted, ClientError> {
        let url = format!("{}/indexes", self.root);
        let request = self.authorized(self.agent.post(&url));
        let resp = self.send(&url, request.send_json(definition))?;
        self.accepted(&url, resp)
    }

    /// Drops the index `name` (`DELETE /indexes/{name}`): it is gone at once, its
    /// records are deleted by the returned task.
    pub fn drop_index(&self, name: &str) -> Result<Accepted, ClientError> {
        let url = self.index_url(name, "")?;
        let resp = self.send(&url, self.authorized(self.agent.delete(&url)).call())?;
        self.accepted(&url, resp)
    }

    /// Rebuilds the index `name` into a new generation (`POST /indexes/{name}/rebuild`),
    /// swapped in when the returned task is done.
    pub fn rebuild_index(&self, name: &str) -> Result<Accepted, ClientError> {
        let url = self.index_url(name, "/rebuild")?;
        let request = self.authorized(self.agent.post(&url));
        let resp = self.send(&url, request.send_empty())?;
        self.accepted(&url, resp)
    }

    /// The task at `url` (an [`Accepted::poll_url`]).
    pub fn task_at(&self, url: &str) -> Result<TaskInfo, ClientError> {
        let resp = self.send(url, self.authorized(self.agent.get(url)).call())?;
        let raw: Value = read_json(url, resp)?;
        parse_task(raw).map_err(|reason| protocol(url, reason))
    }

    /// One page of an indexed query (`POST /query`); `body` is the whole request,
    /// `cursor` and `limit` included.
    pub fn query(&self, body: &Value) -> Result<QueryPage, ClientError> {
        let url = format!("{}/query", self.root);
        let resp = self.send(&url, self.agent.post(&url).send_json(body))?;
        let page: Map<String, Value> = read_json(&url, resp)?;
        parse_query_page(page).map_err(|reason| protocol(&url, reason))
    }

    fn accepted(
        &self,
        url: &str,
        resp: ureq::http::Response<ureq::Body>,
    ) -> Result<Accepted, ClientError> {
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut answer: Map<String, Value> = read_json(url, resp)?;
        let raw = answer
            .remove("task")
            .ok_or_else(|| protocol(url, "no \"task\" in the answer".into()))?;
        let task = parse_task(raw.clone()).map_err(|reason| protocol(url, reason))?;
        let poll_url = task_url(&self.base, &self.root, location.as_deref(), task.id);
        Ok(Accepted {
            task,
            raw,
            poll_url,
        })
    }

    fn index_url(&self, name: &str, suffix: &str) -> Result<String, ClientError> {
        if name.is_empty() {
            return Err(ClientError::Invalid(
                "an index name must not be empty".into(),
            ));
        }
        Ok(format!(
            "{}/indexes/{}{suffix}",
            self.root,
            encode_segment(name)
        ))
    }
}

/// Where a task is read: the answer's `Location` (a path on the server, taken below
/// `base` so that a path prefix in the server URL is kept; or a full URL), else the
/// instance's `/tasks/{id}` under `root`.
pub fn task_url(base: &str, root: &str, location: Option<&str>, id: u64) -> String {
    match location.map(str::trim) {
        Some(l) if l.starts_with("http://") || l.starts_with("https://") => l.to_string(),
        Some(l) if l.starts_with('/') => format!("{base}{l}"),
        _ => format!("{root}/tasks/{id}"),
    }
}

fn parse_task(raw: Value) -> Result<TaskInfo, String> {
    if !raw.get("id").is_some_and(Value::is_u64) || !raw.get("state").is_some_and(Value::is_string)
    {
        return Err(format!("a task without an id or a state: {raw}"));
    }
    serde_json::from_value(raw).map_err(|e| format!("malformed task: {e}"))
}

fn parse_query_page(mut page: Map<String, Value>) -> Result<QueryPage, String> {
    let Some(Value::Array(results)) = page.remove("results") else {
        return Err("no \"results\" list in the answer".into());
    };
    if let Some(bad) = results
        .iter()
        .find(|r| !r.get("key").is_some_and(Value::is_string))
    {
        return Err(format!("a result without a string key: {bad}"));
    }
    let next_cursor = match page.remove("next_cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c),
        Some(other) => return Err(format!("next_cursor is {other}")),
    };
    Ok(QueryPage {
        results,
        next_cursor,
        stats: page.remove("stats").filter(|s| !s.is_null()),
        plan: page.remove("plan").filter(|p| !p.is_null()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tasks_are_polled_where_the_server_says() {
        let base = "http://h:1/lsm";
        let root = "http://h:1/lsm/db/docs";
        assert_eq!(
            task_url(base, root, Some("/db/docs/tasks/7"), 7),
            "http://h:1/lsm/db/docs/tasks/7"
        );
        assert_eq!(
            task_url(base, root, Some("http://other:2/tasks/7"), 7),
            "http://other:2/tasks/7"
        );
        assert_eq!(
            task_url(base, root, None, 7),
            "http://h:1/lsm/db/docs/tasks/7"
        );
        assert_eq!(
            task_url(base, root, Some("tasks/7"), 7),
            "http://h:1/lsm/db/docs/tasks/7"
        );
    }

    #[test]
    fn tasks_parse_and_tell_when_they_end() {
        let task = parse_task(json!({
            "id": 7, "kind": "build", "index": "by_city", "generation": 3,
            "state": "running", "done": 10, "total": 40, "unit": "doc ids",
            "skipped": 1, "error": null, "started_at_ms": 1, "elapsed_ms": 250,
            "something_new": true
        }))
        .expect("task");
        assert_eq!(
            (task.id, task.done, task.total, task.skipped),
            (7, 10, 40, 1)
        );
        assert!(!task.is_finished());
        for state in ["done", "failed", "cancelled"] {
            let t = parse_task(json!({"id": 1, "state": state})).expect("task");
            assert!(t.is_finished(), "{state}");
        }
        let queued = parse_task(json!({"id": 1, "state": "queued"})).expect("task");
        assert!(!queued.is_finished());
        assert!(parse_task(json!({"state": "done"})).is_err());
        assert!(parse_task(json!({"id": 1})).is_err());
    }

    #[test]
    fn query_pages_parse() {
        let page = |v: Value| match v {
            Value::Object(m) => parse_query_page(m),
            _ => Err("not an object".into()),
        };
        let p = page(json!({
            "results": [{"key": "u:1", "value": {"city": "Recife"}}],
            "next_cursor": "c1", "stats": {"postings_scanned": 1}, "plan": null
        }))
        .expect("page");
        assert_eq!(p.results.len(), 1);
        assert_eq!(p.next_cursor.as_deref(), Some("c1"));
        assert!(p.stats.is_some() && p.plan.is_none());
        let last = page(json!({"results": [], "next_cursor": null})).expect("last");
        assert_eq!(last.next_cursor, None);
        assert!(page(json!({"next_cursor": null})).is_err());
        assert!(page(json!({"results": [{"value": 1}]})).is_err());
        assert!(page(json!({"results": [], "next_cursor": 3})).is_err());
    }
}
