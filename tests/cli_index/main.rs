//! `lsm index list|show|create|drop|rebuild` and `lsm query`, run as a script would:
//! against a server started in this process (indexes built over existing data, queries
//! checked against a model of the data), and against a scripted HTTP server for the
//! ends of a task that a real server does not produce on demand (failed, cancelled,
//! lost).

#[path = "../common/mod.rs"]
mod common;
mod live;
mod scripted;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use common::cli::{admin, code, lsm_command, stderr, stdout};
use common::http::{config, instance, start, Http};
use common::plugins::{self, ECHO_KEY};
use lsm::config::BuiltinCodec;
use serde_json::{json, Value};

const TOKEN: &str = "index-cli-token";
const CITIES: [&str; 4] = ["PortoAlegre", "Recife", "Natal", "Belem"];
const WORDS: [&str; 4] = ["rust", "storage", "engine", "query"];
const USERS: u64 = 1200;

fn user(i: u64) -> Value {
    json!({
        "city": CITIES[(i % 4) as usize],
        "age": 18 + (i * 7) % 50,
        "bio": format!("{} {}", WORDS[(i % 4) as usize], WORDS[((i / 4) % 4) as usize]),
    })
}

fn key(i: u64) -> String {
    format!("users:{i:05}")
}

/// The keys of the users `keep` accepts.
fn model(keep: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    (0..USERS).filter(|i| keep(&user(*i))).map(key).collect()
}

fn load(http: &Http, instance: &str) {
    let ids: Vec<u64> = (0..USERS).collect();
    for chunk in ids.chunks(500) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"key": key(*i), "value": user(*i)}))
            .collect();
        let r = http.post_json(
            &format!("/db/{instance}/keys/batch"),
            &json!({ "items": items }),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    // Outside every index's scope.
    let r = http.post_json(
        &format!("/db/{instance}/keys/batch"),
        &json!({"items": [{"key": "other:1", "value": {"city": "Recife"}}]}),
    );
    assert_eq!(r.status, 200);
}

/// Runs `lsm <args> --url <url>`.
fn lsm(url: &str, args: &[&str]) -> Output {
    lsm_command(args)
        .args(["--url", url])
        .output()
        .expect("run lsm")
}

/// Runs `lsm index <args> --url <url> --token TOKEN`.
fn index(url: &str, args: &[&str]) -> Output {
    admin("index", url, TOKEN, args)
}

/// The JSON lines of a query's output, checked to be `{"key", "value"}` objects.
fn results(o: &Output) -> Vec<Value> {
    assert_eq!(code(o), 0, "{o:?}");
    stdout(o)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            assert!(v["key"].is_string() && v.get("value").is_some(), "{line}");
            v
        })
        .collect()
}

/// The keys of a query's output, checked to come once each.
fn keys(o: &Output) -> BTreeSet<String> {
    let found: Vec<String> = results(o)
        .iter()
        .map(|v| v["key"].as_str().unwrap_or_default().to_string())
        .collect();
    let set: BTreeSet<String> = found.iter().cloned().collect();
    assert_eq!(set.len(), found.len(), "a key came back twice");
    set
}

fn write(dir: &Path, name: &str, text: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.to_str().expect("UTF-8 path").to_string()
}

/// Waits until `name` is ready on the instance's root routes.
fn wait_ready(http: &Http, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let info = http.get(path).json();
        if info["state"] == "ready" {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {info}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
