//! `lsm index list|show|create|drop|rebuild` and `lsm query`, run as a script would:
//! against a server started in this process (indexes built over existing data, queries
//! checked against a model of the data), and against a scripted HTTP server for the
//! ends of a task that a real server does not produce on demand (failed, cancelled,
//! lost).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

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

fn lsm_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lsm"));
    cmd.args(args).stdin(Stdio::null());
    for var in [
        "LSM_URL",
        "LSM_ADMIN_TOKEN",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd
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
    lsm_command(&["index"])
        .args(args)
        .args(["--url", url, "--token", TOKEN])
        .output()
        .expect("run lsm")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
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

#[test]
fn create_list_query_rebuild_and_drop() {
    let dir = common::scratch_dir();
    let mut cfg = config(vec![
        instance("default", &dir.path().join("d"), BuiltinCodec::Json),
        instance("plain", &dir.path().join("p"), BuiltinCodec::Raw),
    ]);
    cfg.server.admin_token = Some(TOKEN.into());
    let (server, http) = start(cfg);
    let url = server.url();
    load(&http, "default");

    let out = index(&url, &["list"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(
        stdout(&out),
        "NAME  TYPE  SCOPE  EXTRACTOR  STATE  SOURCE\n"
    );

    // Creating needs the token; a build over the existing records is followed to its end.
    let by_city = [
        "create",
        "by_city",
        "--type",
        "equality",
        "--scope",
        "users:",
        "--json-path",
        "$.city",
    ];
    let out = lsm(&url, &[&["index"][..], &by_city].concat());
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(
        stderr(&out).contains("--token or LSM_ADMIN_TOKEN"),
        "{out:?}"
    );
    let out = index(&url, &by_city);
    assert_eq!(code(&out), 0, "{out:?}");
    let line = stdout(&out);
    assert!(
        line.starts_with(&format!("built by_city: {USERS} doc ids in ")) && line.ends_with(")\n"),
        "{line}"
    );
    let out = index(&url, &by_city);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("(index-exists)"), "{out:?}");

    // From a file, with --no-wait: the task is printed and the command returns.
    let by_age = write(
        dir.path(),
        "by_age.json",
        br#"{"index_name": "by_age", "scope_prefix": "users:*", "index_type": "range",
             "extractor": {"type": "json_path", "path": "$.age"}, "on_error": "skip"}"#,
    );
    let out = index(&url, &["create", "--file", &by_age, "--no-wait"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let task: Value = serde_json::from_str(&stdout(&out)).expect("the task as JSON");
    assert_eq!(
        (&task["kind"], &task["index"]),
        (&json!("build"), &json!("by_age"))
    );
    assert!(task["id"].is_u64(), "{task}");
    let bio = write(
        dir.path(),
        "bio.toml",
        b"index_type = \"text\"\nscope_prefix = \"users:\"\n\
          extractor = { type = \"json_path\", path = \"$.bio\" }\n",
    );
    let out = index(&url, &["create", "bio", "--file", &bio]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).starts_with("built bio: "), "{out:?}");
    wait_ready(&http, "/indexes/by_age");

    let out = index(&url, &["list"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let rows: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    let row = |cells: &[&str]| -> Vec<String> { cells.iter().map(|c| c.to_string()).collect() };
    assert_eq!(
        rows,
        [
            row(&["NAME", "TYPE", "SCOPE", "EXTRACTOR", "STATE", "SOURCE"]),
            row(&[
                "bio",
                "text",
                "users:*",
                "json_path",
                "$.bio",
                "ready",
                "api"
            ]),
            row(&[
                "by_age",
                "range",
                "users:*",
                "json_path",
                "$.age",
                "ready",
                "api"
            ]),
            row(&[
                "by_city",
                "equality",
                "users:*",
                "json_path",
                "$.city",
                "ready",
                "api"
            ]),
        ],
        "{out:?}"
    );
    let out = index(&url, &["show", "by_age"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let info: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(info["index_type"], "range", "{info}");
    assert_eq!(info["on_error"], "skip", "{info}");
    let out = index(&url, &["show", "nope"]);
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(stderr(&out).contains("(index-not-found)"), "{out:?}");

    // Shorthand queries against the model, every page.
    let porto = model(|u| u["city"] == "PortoAlegre");
    let out = lsm(
        &url,
        &[
            "query",
            "--index",
            "by_city",
            "--term",
            "PortoAlegre",
            "--all",
            "--limit",
            "70",
        ],
    );
    assert_eq!(keys(&out), porto);
    for r in results(&out) {
        assert_eq!(r["value"]["city"], "PortoAlegre", "{r}");
    }
    let out = lsm(
        &url,
        &[
            "query",
            "--index",
            "by_age",
            "--range",
            "gte=30,lt=40",
            "--all",
        ],
    );
    assert_eq!(
        keys(&out),
        model(|u| (30..40).contains(&u["age"].as_u64().unwrap_or_default()))
    );
    let out = lsm(
        &url,
        &[
            "query",
            "--index",
            "bio",
            "--match",
            "Rust STORAGE",
            "--all",
        ],
    );
    let rust_storage = model(|u| {
        let bio = u["bio"].as_str().unwrap_or_default();
        bio.contains("rust") && bio.contains("storage")
    });
    assert!(!rust_storage.is_empty());
    assert_eq!(keys(&out), rust_storage);

    // Without --all: the first page, and its cursor on stderr to go on from.
    let out = lsm(
        &url,
        &[
            "query",
            "--index",
            "by_city",
            "--term",
            "PortoAlegre",
            "--limit",
            "100",
        ],
    );
    let first = keys(&out);
    assert_eq!(first.len(), 100);
    let cursor = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("next_cursor: "))
        .expect("next_cursor on stderr")
        .to_string();
    let out = lsm(
        &url,
        &[
            "query",
            "--index",
            "by_city",
            "--term",
            "PortoAlegre",
            "--limit",
            "100",
            "--cursor",
            &cursor,
            "--all",
        ],
    );
    let rest = keys(&out);
    assert!(first.is_disjoint(&rest));
    assert_eq!(first.union(&rest).cloned().collect::<BTreeSet<_>>(), porto);

    // A JSON body, as an argument or a file; --explain and -v report on stderr.
    let and = r#"{"and": [{"index": "by_city", "term": "Recife"},
                          {"index": "by_age", "range": {"gte": 40}}]}"#;
    let expected = model(|u| u["city"] == "Recife" && u["age"].as_u64() >= Some(40));
    let out = lsm(
        &url,
        &["query", and, "--all", "--limit", "25", "--explain", "-v"],
    );
    assert_eq!(keys(&out), expected);
    let err = stderr(&out);
    assert!(err.contains("plan: {"), "{err}");
    let stats_line = err
        .lines()
        .find_map(|l| l.strip_prefix("stats: "))
        .expect("stats on stderr");
    let stats: Value = serde_json::from_str(stats_line.split(" (").next().unwrap_or_default())
        .expect("stats as JSON");
    assert!(stats["postings_scanned"].as_u64() > Some(0), "{err}");
    let body = write(dir.path(), "q.json", and.as_bytes());
    let out = lsm(&url, &["query", "--body-file", &body, "--all"]);
    assert_eq!(keys(&out), expected);
    let out = lsm(&url, &["query", "--index", "by_city", "--term", "Nowhere"]);
    assert_eq!((code(&out), stdout(&out)), (0, String::new()), "{out:?}");
    let out = lsm(&url, &["query", "--index", "by_town", "--term", "Recife"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("(index-not-found)"), "{out:?}");
    let out = lsm(&url, &["query", "--index", "by_city", "--range", "gte=A"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("(invalid-query)"), "{out:?}");

    // A rebuild is followed the same way; the index answers the same after it.
    let out = index(&url, &["rebuild", "by_city"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(
        stdout(&out).starts_with(&format!("rebuilt by_city: {USERS} doc ids in ")),
        "{out:?}"
    );
    let out = lsm(
        &url,
        &[
            "query",
            "--index",
            "by_city",
            "--term",
            "PortoAlegre",
            "--all",
        ],
    );
    assert_eq!(keys(&out), porto);
    let out = index(&url, &["rebuild", "by_age", "--no-wait"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let task: Value = serde_json::from_str(&stdout(&out)).expect("the task as JSON");
    assert_eq!(task["kind"], "rebuild", "{task}");

    // Dropped: gone at once.
    let out = index(&url, &["drop", "by_city"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(
        stdout(&out)
            .starts_with("dropped by_city (its records are deleted in the background: task "),
        "{out:?}"
    );
    let out = lsm(
        &url,
        &["query", "--index", "by_city", "--term", "PortoAlegre"],
    );
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("(index-not-found)"), "{out:?}");
    let out = index(&url, &["drop", "by_city"]);
    assert_eq!(code(&out), 2, "{out:?}");
    let out = index(&url, &["list"]);
    assert!(!stdout(&out).contains("by_city"), "{out:?}");

    // Another instance, by name: its own indexes, values as its codec shows them.
    let r = http.post_json(
        "/db/plain/keys/batch",
        &json!({"items": [{"key": "w:1", "value": "hello"}, {"key": "w:2", "value": "bye"}]}),
    );
    assert_eq!(r.status, 200);
    let out = index(
        &url,
        &[
            "create",
            "whole",
            "--type",
            "equality",
            "--raw",
            "--scope",
            "w:",
            "--instance",
            "plain",
        ],
    );
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(
        stdout(&out).starts_with("built whole: 2 doc ids in "),
        "{out:?}"
    );
    let out = lsm(
        &url,
        &[
            "query",
            "--instance",
            "plain",
            "--index",
            "whole",
            "--term",
            "hello",
        ],
    );
    assert_eq!(results(&out), [json!({"key": "w:1", "value": "hello"})]);
    let out = index(&url, &["list"]);
    assert!(!stdout(&out).contains("whole"), "{out:?}");
    drop(server);
}

#[test]
fn skipped_records_and_a_custom_extractor() {
    let dir = common::scratch_dir();
    let mut cfg = config(vec![instance(
        "default",
        &dir.path().join("d"),
        BuiltinCodec::Raw,
    )]);
    cfg.server.admin_token = Some(TOKEN.into());
    let (server, http) = start(cfg);
    let url = server.url();
    let items: Vec<Value> = (1..=5)
        .map(|i| {
            let value = if i <= 3 {
                format!("{{\"a\": {i}}}")
            } else {
                "not json".to_string()
            };
            json!({"key": format!("s:{i}"), "value": value})
        })
        .collect();
    let r = http.post_json("/keys/batch", &json!({ "items": items }));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Records the extractor fails on are counted when the index skips them.
    let out = index(
        &url,
        &[
            "create",
            "lenient",
            "--type",
            "range",
            "--scope",
            "s:",
            "--json-path",
            "$.a",
            "--on-error",
            "skip",
        ],
    );
    assert_eq!(code(&out), 0, "{out:?}");
    let line = stdout(&out);
    assert!(
        line.starts_with("built lenient: 5 doc ids in ") && line.contains(", 2 skipped (task "),
        "{line}"
    );
    // A raw instance's values come back as strings.
    let out = lsm(&url, &["query", "--index", "lenient", "--range", "gte=2"]);
    assert_eq!(
        results(&out),
        [
            json!({"key": "s:2", "value": "{\"a\": 2}"}),
            json!({"key": "s:3", "value": "{\"a\": 3}"})
        ]
    );

    // An uploaded extractor, with options.
    let wasm = write(dir.path(), "echo.wasm", &plugins::extractor(ECHO_KEY));
    let out = lsm_command(&["plugin", "upload", "echo", &wasm])
        .args(["--url", &url, "--token", TOKEN])
        .output()
        .expect("run lsm");
    assert_eq!(code(&out), 0, "{out:?}");
    let out = index(
        &url,
        &[
            "create",
            "by_key",
            "--type",
            "equality",
            "--plugin",
            "echo",
            "--options",
            r#"{"v": 1}"#,
        ],
    );
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(
        stdout(&out).starts_with("built by_key: 5 doc ids in "),
        "{out:?}"
    );
    let out = index(&url, &["list"]);
    assert!(stdout(&out).contains(r#" custom echo {"v":1} "#), "{out:?}");
    let out = lsm(&url, &["query", "--index", "by_key", "--term", "s:4"]);
    assert_eq!(results(&out), [json!({"key": "s:4", "value": "not json"})]);
    drop(server);
}

/// One scripted answer: status, extra headers, JSON body.
type Answer = (u16, Vec<(&'static str, String)>, Value);

/// A server that answers each request with the next answer of `script` (one request per
/// connection) and records `METHOD PATH` and whether a token came with it. Extra
/// requests get a 500.
fn scripted(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let (mut length, mut token) = (0usize, false);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization: bearer ") {
                    token = true;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut words = request_line.split_whitespace();
            let seen_as = format!(
                "{} {}{}",
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
                if token { " +token" } else { "" }
            );
            record.lock().expect("lock").push(seen_as);
            let (status, headers, body) = script
                .next()
                .unwrap_or_else(|| (500, Vec::new(), json!({"error": "unexpected request"})));
            let body = body.to_string();
            let mut answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                answer.push_str(&format!("{name}: {value}\r\n"));
            }
            answer.push_str("\r\n");
            answer.push_str(&body);
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, seen)
}

fn task(id: u64, kind: &str, state: &str, done: u64, extra: Value) -> Value {
    let mut t = json!({"id": id, "kind": kind, "index": "geo", "generation": 2,
        "state": state, "done": done, "total": 3, "unit": "doc ids", "skipped": 0,
        "error": null, "started_at_ms": 1, "elapsed_ms": 40});
    if let (Some(t), Value::Object(extra)) = (t.as_object_mut(), extra) {
        t.extend(extra);
    }
    t
}

#[test]
fn a_task_that_fails_or_is_cancelled_exits_with_1() {
    // A rebuild that fails: polled at its Location until it ends.
    let location = ("location", "/db/docs/tasks/5".to_string());
    let (url, seen) = scripted(vec![
        (
            202,
            vec![location.clone()],
            json!({"task": task(5, "rebuild", "running", 0, json!({}))}),
        ),
        (200, vec![], task(5, "rebuild", "running", 2, json!({}))),
        (
            200,
            vec![],
            task(
                5,
                "rebuild",
                "failed",
                2,
                json!({"error": "plugin geo trapped"}),
            ),
        ),
    ]);
    let out = index(&url, &["rebuild", "geo", "--instance", "docs"]);
    assert_eq!(code(&out), 1, "{out:?}");
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("error: rebuilding geo failed: plugin geo trapped (task 5)"),
        "{out:?}"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            "POST /db/docs/indexes/geo/rebuild +token",
            "GET /db/docs/tasks/5 +token",
            "GET /db/docs/tasks/5 +token",
        ]
    );

    // A build cancelled (the index was dropped meanwhile), behind a path prefix: the
    // Location is taken below the server URL.
    let (url, seen) = scripted(vec![
        (
            202,
            vec![location.clone()],
            json!({"task": task(5, "build", "running", 0, json!({}))}),
        ),
        (200, vec![], task(5, "build", "cancelled", 1, json!({}))),
    ]);
    let out = index(
        &format!("{url}/lsm"),
        &[
            "create",
            "geo",
            "--type",
            "range",
            "--raw",
            "--instance",
            "docs",
        ],
    );
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(
        stderr(&out).contains("error: building geo was cancelled ("),
        "{out:?}"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            "POST /lsm/db/docs/indexes +token",
            "GET /lsm/db/docs/tasks/5 +token"
        ]
    );

    // The task cannot be read any more: an error, saying that it goes on.
    let (url, _) = scripted(vec![
        (
            202,
            vec![],
            json!({"task": task(9, "build", "running", 0, json!({}))}),
        ),
        (
            404,
            vec![],
            json!({"type": "urn:lsm:problem:task-not-found", "title": "Not Found",
                   "status": 404, "detail": "no task 9"}),
        ),
    ]);
    let out = index(&url, &["create", "geo", "--type", "range", "--raw"]);
    assert_eq!(code(&out), 2, "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("task 9")
            && err.contains("goes on on the server")
            && err.contains("(task-not-found)"),
        "{err}"
    );
}
