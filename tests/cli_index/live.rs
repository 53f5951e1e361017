//! Against a server started in this process: create, list, query, rebuild, drop, skipped
//! records and a custom extractor.

use super::*;

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
