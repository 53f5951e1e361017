//! Queries against a model: the no-scan criterion, range, text and AND, stable pages under
//! writes, guards and errors, extractor failure policies.

use super::*;

#[test]
fn city_equality_is_answered_from_the_index_without_a_scan() {
    let dir = scratch_dir();
    let (server, http) = start(json_instance(dir.path()));
    load(&http, "users:", 0..3000);
    load(&http, "orders:", 0..500);
    http.post_json("/admin/compact", &json!({}));

    let task = create(
        &http,
        json!({"index_name": "by_city", "scope_prefix": "users:*", "index_type": "equality",
               "extractor": {"type": "json_path", "path": "$.city"}}),
    );
    assert_eq!(task["kind"], "build");
    let listed = http.get("/indexes").json();
    assert_eq!(listed["indexes"][0]["index_name"], "by_city");
    assert_eq!(listed["indexes"][0]["state"], "ready");
    assert_eq!(listed["indexes"][0]["source"], "api");

    let before = stats(&http);
    let r = http.post_json(
        "/query",
        &json!({"index": "by_city", "term": "PortoAlegre", "limit": 100}),
    );
    assert_eq!(r.status, 200);
    let page = r.json();
    let after = stats(&http);
    let results = page["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    assert!(results.iter().all(|r| r["value"]["city"] == "PortoAlegre"));
    assert!(results
        .iter()
        .all(|r| r["key"].as_str().unwrap().starts_with("users:")));
    // No iterator was opened: only index records and point reads of the records.
    assert_eq!(
        after["range_reads"], before["range_reads"],
        "a query opened a range read"
    );
    let blocks = after["blocks_read"].as_u64().unwrap() - before["blocks_read"].as_u64().unwrap();
    assert!(
        blocks <= 2 * 100 * 3 + 10,
        "{blocks} blocks read for one page"
    );
    assert!(page["stats"]["postings_scanned"].as_u64().unwrap() >= 100);

    let all = set(query_all(
        &http,
        json!({"index": "by_city", "term": "PortoAlegre"}),
        250,
    ));
    assert_eq!(all, model(|u| u["city"] == "PortoAlegre", 0..3000));

    // No index can answer: refused, naming the indexes there are.
    let r = http.post_json("/query", &json!({"index": "by_name", "term": "x"}));
    assert_eq!(r.problem_code(), "index-not-found");
    assert!(r.json()["detail"].as_str().unwrap().contains("by_city"));
    let r = http.post_json(
        "/query",
        &json!({"index": "by_city", "range": {"gte": "A"}}),
    );
    assert_eq!(r.problem_code(), "invalid-query");
    drop(server);
}

#[test]
fn range_text_and_composite_queries_follow_writes_updates_and_deletes() {
    let dir = scratch_dir();
    let (server, http) = start(json_instance(dir.path()));
    for def in [
        json!({"index_name": "by_city", "scope_prefix": "users:", "index_type": "equality", "extractor": {"type": "json_path", "path": "$.city"}}),
        json!({"index_name": "by_age", "scope_prefix": "users:", "index_type": "range", "extractor": {"type": "json_path", "path": "$.age"}}),
        json!({"index_name": "bio", "scope_prefix": "users:", "index_type": "text", "extractor": {"type": "json_path", "path": "$.bio"}}),
    ] {
        create(&http, def);
    }
    // Written after the indexes exist: maintained by the write path.
    load(&http, "users:", 0..1200);

    let age = |u: &Value| u["age"].as_u64().unwrap();
    let words = |u: &Value| u["bio"].as_str().unwrap().to_string();
    let q = json!({"index": "by_age", "range": {"gte": 30, "lt": 40}});
    assert_eq!(
        set(query_all(&http, q, 77)),
        model(|u| (30..40).contains(&age(u)), 0..1200)
    );
    // Once the range index's term dictionary is loaded (by the query above), a range
    // query opens no range read either: its terms' meta records are point reads.
    let before = stats(&http);
    let page = http
        .post_json(
            "/query",
            &json!({"index": "by_age", "range": {"gte": 30, "lt": 40}, "limit": 10}),
        )
        .json();
    let after = stats(&http);
    assert_eq!(after["range_reads"], before["range_reads"], "{page}");
    assert_eq!(page["stats"]["terms_read"], 10, "{page}");
    let q = json!({"index": "by_age", "range": {"gt": 70}});
    assert_eq!(
        set(query_all(&http, q, 500)),
        model(|u| age(u) > 70, 0..1200)
    );
    let q = json!({"index": "by_age", "range": {"lte": 20.5}});
    assert_eq!(
        set(query_all(&http, q, 500)),
        model(|u| age(u) <= 20, 0..1200)
    );
    let q = json!({"index": "bio", "match": "Rust, STORAGE"});
    let expect = model(
        |u| words(u).contains("rust") && words(u).contains("storage"),
        0..1200,
    );
    assert!(!expect.is_empty());
    assert_eq!(set(query_all(&http, q, 50)), expect);
    let q = json!({"and": [{"index": "by_city", "term": "Recife"}, {"index": "by_age", "range": {"gte": 25, "lt": 50}}]});
    assert_eq!(
        set(query_all(&http, q, 40)),
        model(
            |u| u["city"] == "Recife" && (25..50).contains(&age(u)),
            0..1200
        )
    );
    let q = json!({"and": [{"index": "by_city", "term": "Natal"}, {"index": "by_age", "range": {"gte": 18}}, {"index": "bio", "match": "wasm"}]});
    assert_eq!(
        set(query_all(&http, q, 40)),
        model(
            |u| u["city"] == "Natal" && words(u).contains("wasm"),
            0..1200
        )
    );

    // An update moves a record between terms; a delete removes it.
    let moved = "users:000000";
    assert_eq!(user(0)["city"], "PortoAlegre");
    let r = http.post_json(
        "/keys",
        &json!({"key": moved, "value": {"city": "Recife", "age": 99}}),
    );
    assert_eq!(r.status, 200);
    http.delete("/keys/users:000005");
    let porto = set(query_all(
        &http,
        json!({"index": "by_city", "term": "PortoAlegre"}),
        100,
    ));
    assert!(!porto.contains(moved) && !porto.contains("users:000005"));
    assert_eq!(
        porto.len(),
        model(|u| u["city"] == "PortoAlegre", 0..1200).len() - 2
    );
    let recife = set(query_all(
        &http,
        json!({"index": "by_city", "term": "Recife"}),
        100,
    ));
    assert!(recife.contains(moved));
    let old = set(query_all(
        &http,
        json!({"index": "by_age", "range": {"gte": 99}}),
        100,
    ));
    assert_eq!(old, BTreeSet::from([moved.to_string()]));

    // explain shows the plan; stats show what was read and skipped.
    let r = http.post_json("/query", &json!({"and": [{"index": "by_city", "term": "Belem"}, {"index": "bio", "match": "query"}], "explain": true, "limit": 5}));
    let page = r.json();
    assert_eq!(page["plan"]["op"], "and", "{page}");
    assert_eq!(page["plan"]["of"][0]["index"], "by_city");
    assert!(page["stats"]["blocks_read"].as_u64().unwrap() >= 1);
    assert!(page["stats"].get("blocks_skipped").is_some());

    // verify: indexes agree with the records.
    let v = http.post_json("/admin/verify", &json!({})).json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["indexes"].as_array().unwrap().len(), 3);
    assert!(
        v["indexes"][0]["dead_postings"].as_u64().unwrap() >= 1,
        "{v}"
    );

    // A rebuild drops the dead postings and keeps answering the same.
    let r = http.post_json("/indexes/by_city/rebuild", &json!({}));
    assert_eq!(r.status, 202);
    let id = r.json()["task"]["id"].as_u64().unwrap();
    wait_task(&http, &format!("/db/default/tasks/{id}"));
    let v = http.post_json("/admin/verify", &json!({})).json();
    let by_city = v["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["index"] == "by_city")
        .unwrap()
        .clone();
    assert_eq!(by_city["dead_postings"], 0, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(
        set(query_all(
            &http,
            json!({"index": "by_city", "term": "PortoAlegre"}),
            100
        )),
        porto
    );

    // A manual compaction rebuilds every index: no dead postings anywhere after it.
    let c = http.post_json("/admin/compact", &json!({})).json();
    let rebuilds = c["index_rebuilds"]
        .as_array()
        .expect("index_rebuilds")
        .clone();
    assert_eq!(rebuilds.len(), 3, "{c}");
    for t in rebuilds {
        wait_task(&http, &format!("/db/default/tasks/{}", t["id"]));
    }
    let v = http.post_json("/admin/verify", &json!({})).json();
    assert_eq!(v["ok"], true, "{v}");
    for r in v["indexes"].as_array().unwrap() {
        assert_eq!(r["dead_postings"], 0, "{v}");
    }
    assert_eq!(
        set(query_all(
            &http,
            json!({"index": "by_age", "range": {"gte": 99}}),
            100
        )),
        old
    );
    drop(server);
}

#[test]
fn pages_are_stable_under_concurrent_writes() {
    let dir = scratch_dir();
    let (server, http) = start(json_instance(dir.path()));
    create(
        &http,
        json!({"index_name": "by_city", "scope_prefix": "users:", "index_type": "equality", "extractor": {"type": "json_path", "path": "$.city"}}),
    );
    // 10k records in one city.
    for chunk in (0..10_000u64).collect::<Vec<_>>().chunks(1000) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"key": format!("users:{i:06}"), "value": {"city": "PortoAlegre", "n": i}}))
            .collect();
        assert_eq!(
            http.post_json("/keys/batch", &json!({ "items": items }))
                .status,
            200
        );
    }
    let expected: BTreeSet<String> = (0..10_000u64).map(|i| format!("users:{i:06}")).collect();
    let first = http
        .post_json(
            "/query",
            &json!({"index": "by_city", "term": "PortoAlegre", "limit": 500}),
        )
        .json();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        let http = Http::new(http.base());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Updates (new doc ids), deletes, inserts, moves out of the term.
                let k = (i * 7919) % 10_000;
                match i % 4 {
                    0 => http.post_json("/keys", &json!({"key": format!("users:{k:06}"), "value": {"city": "PortoAlegre", "v": i}})),
                    1 => http.delete(&format!("/keys/users:{k:06}")),
                    2 => http.post_json("/keys", &json!({"key": format!("users:new{i:06}"), "value": {"city": "PortoAlegre"}})),
                    _ => http.post_json("/keys", &json!({"key": format!("users:{k:06}"), "value": {"city": "Recife"}})),
                };
                i += 1;
            }
            i
        })
    };
    let mut keys: Vec<String> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    let mut cursor = first["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        std::thread::sleep(Duration::from_millis(5));
        let page = http
            .post_json(
                "/query",
                &json!({"index": "by_city", "term": "PortoAlegre", "limit": 500, "cursor": c}),
            )
            .json();
        for r in page["results"].as_array().unwrap() {
            keys.push(r["key"].as_str().unwrap().to_string());
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 10, "the writer barely ran ({writes} writes)");
    assert_eq!(set(keys), expected, "pages repeated or skipped records");

    // A cursor belongs to its query; garbage is refused.
    let page = http
        .post_json(
            "/query",
            &json!({"index": "by_city", "term": "PortoAlegre", "limit": 10}),
        )
        .json();
    let c = page["next_cursor"].as_str().unwrap();
    let r = http.post_json(
        "/query",
        &json!({"index": "by_city", "term": "Recife", "cursor": c}),
    );
    assert_eq!(r.problem_code(), "invalid-cursor");
    let r = http.post_json(
        "/query",
        &json!({"index": "by_city", "term": "Recife", "cursor": "q1.AAAA"}),
    );
    assert_eq!(r.problem_code(), "invalid-cursor");
    drop(server);
}

#[test]
fn guards_and_bad_requests_get_clear_errors() {
    let dir = scratch_dir();
    let mut cfg = json_instance(dir.path());
    cfg.server.query_max_limit = 50;
    let (server, http) = start(cfg);
    create(
        &http,
        json!({"index_name": "by_city", "scope_prefix": "users:", "index_type": "equality", "extractor": {"type": "json_path", "path": "$.city"}}),
    );
    load(&http, "users:", 0..600);
    let r = http.post_json(
        "/query",
        &json!({"index": "by_city", "term": "Natal", "limit": 51}),
    );
    assert_eq!(r.problem_code(), "invalid-query");
    let r = http.post_json(
        "/query",
        &json!({"index": "by_city", "term": "Natal", "max_postings_scanned": 10}),
    );
    assert_eq!(r.problem_code(), "query-too-broad");
    let r = http.post_json("/query", &json!({"index": "by_city", "trem": "Natal"}));
    assert_eq!(r.problem_code(), "invalid-query");
    let r = http.send("POST", "/query", "application/json", b"{not json".to_vec());
    assert_eq!(r.problem_code(), "malformed-json");
    // Definitions.
    let r = http.post_json(
        "/indexes",
        &json!({"index_name": "by_city", "index_type": "equality", "extractor": {"type": "raw"}}),
    );
    assert_eq!(r.problem_code(), "index-exists");
    let r = http.post_json(
        "/indexes",
        &json!({"index_name": "Bad Name", "index_type": "equality", "extractor": {"type": "raw"}}),
    );
    assert_eq!(r.problem_code(), "invalid-body");
    let r = http.post_json("/indexes", &json!({"index_name": "x", "index_type": "equality", "extractor": {"type": "custom", "plugin": "nope"}}));
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        http.delete("/indexes/nope").problem_code(),
        "index-not-found"
    );
    assert_eq!(http.get("/tasks/999").problem_code(), "task-not-found");
    // Index records are out of the users' reach.
    let r = http.post_json(
        "/keys",
        &json!({"key": "\u{0}idx:by_city@1:sNatal:meta", "value": 1}),
    );
    assert_eq!(r.problem_code(), "invalid-key");
    assert_eq!(
        http.get("/keys/%00pk:users:000001").problem_code(),
        "invalid-key"
    );
    let keys = http.get("/keys?limit=10000").json();
    assert!(keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| !k.as_str().unwrap().starts_with('\0')));
    assert_eq!(keys["keys"].as_array().unwrap().len(), 600);
    // Dropping: gone from queries at once.
    let r = http.delete("/indexes/by_city");
    assert_eq!(r.status, 202);
    let r = http.post_json("/query", &json!({"index": "by_city", "term": "Natal"}));
    assert_eq!(r.problem_code(), "index-not-found");
    drop(server);
}

#[test]
fn extractor_failures_reject_or_skip_per_index() {
    let dir = scratch_dir();
    let (server, http) = start(config(vec![instance(
        "default",
        &dir.path().join("d"),
        BuiltinCodec::Raw,
    )]));
    create(
        &http,
        json!({"index_name": "strict", "scope_prefix": "s:", "index_type": "equality", "extractor": {"type": "json_path", "path": "$.a"}}),
    );
    create(
        &http,
        json!({"index_name": "lenient", "scope_prefix": "l:", "index_type": "equality", "on_error": "skip", "extractor": {"type": "json_path", "path": "$.a"}}),
    );
    assert_eq!(
        http.post_json("/keys", &json!({"key": "s:1", "value": "{\"a\": 1}"}))
            .status,
        200
    );
    let r = http.post_json("/keys", &json!({"key": "s:2", "value": "not json"}));
    assert_eq!(r.problem_code(), "extractor-rejected");
    assert_eq!(
        http.get("/keys/s:2").status,
        404,
        "a rejected write was applied"
    );
    assert_eq!(
        http.post_json("/keys", &json!({"key": "l:1", "value": "not json"}))
            .status,
        200
    );
    assert_eq!(http.get("/keys/l:1").status, 200);
    let info = http.get("/indexes/lenient").json();
    assert_eq!(info["skipped"], 1, "{info}");
    assert_eq!(info["skipped_sample"][0][0], "l:1");
    // Fixed: no longer skipped.
    assert_eq!(
        http.post_json("/keys", &json!({"key": "l:1", "value": "{\"a\": 2}"}))
            .status,
        200
    );
    assert_eq!(http.get("/indexes/lenient").json()["skipped"], 0);
    assert_eq!(
        query_all(&http, json!({"index": "lenient", "term": 2}), 10),
        ["l:1"]
    );
    drop(server);
}
