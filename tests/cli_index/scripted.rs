//! Against a scripted HTTP server: the ends of a task a real server does not produce on
//! demand (failed, cancelled, lost).

use super::*;

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
