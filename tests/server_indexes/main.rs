//! Secondary indexes over HTTP: creation on existing data as a background task, the
//! user's `city = PortoAlegre` criterion answered without a scan, range, text and AND
//! queries against a model, stable pagination under concurrent writes, a custom WASM
//! extractor rebuilt when its plugin is replaced, guards, errors and restarts.

mod admin;
#[path = "../common/mod.rs"]
mod common;
mod queries;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::http::{config, instance, start, Http};
use common::plugins;
use common::scratch_dir;
use lsm::config::{BuiltinCodec, Config};
use serde_json::{json, Value};

const CITIES: [&str; 5] = ["PortoAlegre", "Recife", "Natal", "Belem", "Manaus"];
const WORDS: [&str; 6] = ["rust", "storage", "engine", "wasm", "index", "query"];

fn user(i: u64) -> Value {
    json!({
        "name": format!("user {i}"),
        "city": CITIES[(i % 5) as usize],
        "age": 18 + (i * 7) % 60,
        "bio": format!("{} {}", WORDS[(i % 6) as usize], WORDS[((i / 6) % 6) as usize]),
    })
}

fn load(http: &Http, prefix: &str, range: std::ops::Range<u64>) {
    let ids: Vec<u64> = range.collect();
    for chunk in ids.chunks(1000) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"key": format!("{prefix}{i:06}"), "value": user(*i)}))
            .collect();
        let r = http.post_json("/keys/batch", &json!({ "items": items }));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// Follows a task's `Location` until it is done.
fn wait_task(http: &Http, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let t = http.get(location).json();
        match t["state"].as_str() {
            Some("done") => return t,
            Some("running") => {}
            other => panic!("task ended {other:?}: {t}"),
        }
        assert!(Instant::now() < deadline, "task still running: {t}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn create(http: &Http, def: Value) -> Value {
    let r = http.post_json("/indexes", &def);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    let id = body["task"]["id"].as_u64().expect("task id");
    wait_task(http, &format!("/db/default/tasks/{id}"))
}

/// Every key a query returns, following cursors.
fn query_all(http: &Http, mut q: Value, limit: u64) -> Vec<String> {
    q["limit"] = json!(limit);
    let mut keys = Vec::new();
    loop {
        let r = http.post_json("/query", &q);
        assert_eq!(r.status, 200, "{q}: {}", String::from_utf8_lossy(&r.body));
        let page = r.json();
        for item in page["results"].as_array().expect("results") {
            keys.push(item["key"].as_str().expect("key").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => q["cursor"] = json!(c),
            None => return keys,
        }
    }
}

fn model(filter: impl Fn(&Value) -> bool, range: std::ops::Range<u64>) -> BTreeSet<String> {
    range
        .filter(|i| filter(&user(*i)))
        .map(|i| format!("users:{i:06}"))
        .collect()
}

fn set(keys: Vec<String>) -> BTreeSet<String> {
    let n = keys.len();
    let s: BTreeSet<String> = keys.into_iter().collect();
    assert_eq!(s.len(), n, "a key came back twice");
    s
}

fn stats(http: &Http) -> Value {
    http.get("/stats").json()
}

fn json_instance(dir: &std::path::Path) -> Config {
    config(vec![instance(
        "default",
        &dir.join("d"),
        BuiltinCodec::Json,
    )])
}
