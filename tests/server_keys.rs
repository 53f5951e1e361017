//! The key routes over real HTTP: get/set/delete, batches, octet-stream bodies, odd
//! keys, paginated listing, scan and search, on the root routes and under /db/{name}.

mod common;

use common::http::{config, instance, start};
use common::scratch_dir;
use lsm::config::BuiltinCodec;
use serde_json::{json, Value};

#[test]
fn set_get_delete_on_the_root_and_the_named_routes() {
    let dir = scratch_dir();
    let (server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));

    let r = http.post_json("/keys", &json!({"key": "users:1", "value": "alice"}));
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json(), json!({"key": "users:1"}));

    for path in ["/keys/users:1", "/db/default/keys/users:1"] {
        let r = http.get(path);
        assert_eq!(r.status, 200);
        assert!(
            r.content_type.starts_with("application/json"),
            "{}",
            r.content_type
        );
        assert_eq!(r.json(), json!({"key": "users:1", "value": "alice"}));
    }
    // Overwrite through the named route, read through the root.
    let r = http.post_json(
        "/db/default/keys",
        &json!({"key": "users:1", "value": "bob"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(http.get("/keys/users:1").json()["value"], "bob");

    let r = http.delete("/keys/users:1");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"key": "users:1"}));
    let r = http.get("/keys/users:1");
    assert_eq!(r.status, 404);
    assert_eq!(r.problem_code(), "key-not-found");
    // Deleting again is not an error.
    assert_eq!(http.delete("/db/default/keys/users:1").status, 200);
    server.stop().expect("stop");
}

#[test]
fn odd_keys_travel_percent_encoded() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    let cases = [
        ("a key with spaces", "a%20key%20with%20spaces"),
        ("dir/file", "dir%2Ffile"),
        ("ünïcødé", "%C3%BCn%C3%AFc%C3%B8d%C3%A9"),
        ("q?x=1&y#z", "q%3Fx%3D1%26y%23z"),
        ("batch", "%62atch"),
        ("search", "%73earch"),
        ("..", "%2E%2E"),
    ];
    for (i, (key, encoded)) in cases.iter().enumerate() {
        let r = http.send(
            "PUT",
            &format!("/keys/{encoded}"),
            "application/json",
            json!(format!("v{i}")).to_string().into_bytes(),
        );
        assert_eq!(r.status, 200, "{key}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["key"], *key);
        let r = http.get(&format!("/keys/{encoded}"));
        assert_eq!(r.status, 200, "{key}");
        assert_eq!(r.json(), json!({"key": key, "value": format!("v{i}")}));
    }
    let keys = http.get("/keys?limit=100").json();
    let mut expected: Vec<&str> = cases.iter().map(|(k, _)| *k).collect();
    expected.sort();
    assert_eq!(keys["keys"], json!(expected));
}

#[test]
fn raw_values_as_text_base64_and_octet_stream() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    let bytes: Vec<u8> = vec![0, 159, 146, 150, 255, b'x'];

    // value_base64 in JSON: not UTF-8, so it comes back as value_base64.
    let r = http.post_json("/keys", &json!({"key": "bin", "value_base64": "AJ+Slv94"}));
    assert_eq!(r.status, 200);
    assert_eq!(
        http.get("/keys/bin").json(),
        json!({"key": "bin", "value_base64": "AJ+Slv94"})
    );
    let r = http.get_with("/keys/bin", ("accept", "application/octet-stream"));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/octet-stream");
    assert_eq!(r.body, bytes);

    // An octet-stream body, by POST ?key= and by PUT.
    let r = http.send(
        "POST",
        "/keys?key=b2",
        "application/octet-stream",
        bytes.clone(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = http.send("PUT", "/keys/b3", "application/octet-stream", bytes.clone());
    assert_eq!(r.status, 200);
    for key in ["b2", "b3"] {
        let r = http.get_with(
            &format!("/keys/{key}"),
            ("accept", "application/octet-stream"),
        );
        assert_eq!(r.body, bytes, "{key}");
    }
    // Base64 is decoded with or without padding; UTF-8 bytes come back as text.
    let r = http.post_json("/keys", &json!({"key": "t", "value_base64": "aGk"}));
    assert_eq!(r.status, 200);
    assert_eq!(http.get("/keys/t").json()["value"], "hi");
    // An empty value is a value.
    let r = http.post_json("/keys", &json!({"key": "empty", "value": ""}));
    assert_eq!(r.status, 200);
    assert_eq!(http.get("/keys/empty").json()["value"], "");
}

#[test]
fn batches_are_atomic() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    let items: Vec<Value> = (0..50)
        .map(|i| json!({"key": format!("k{i:03}"), "value": format!("v{i}")}))
        .collect();
    let r = http.post_json("/keys/batch", &json!({ "items": items }));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"written": 50}));
    assert_eq!(http.get("/keys/k049").json()["value"], "v49");

    // One bad item refuses the whole batch: nothing of it is written.
    let r = http.post_json(
        "/keys/batch",
        &json!({"items": [{"key": "new1", "value": "x"}, {"key": "new2", "value": 5}]}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.problem_code(), "invalid-value");
    assert!(r.json()["detail"]
        .as_str()
        .expect("detail")
        .contains("items[1]"));
    assert_eq!(http.get("/keys/new1").status, 404);

    let r = http.delete_json("/keys/batch", &json!({"keys": ["k000", "k001", "nope"]}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"deleted": 3}));
    assert_eq!(http.get("/keys/k000").status, 404);
    assert_eq!(http.get("/keys/k002").status, 200);
    // Sets and deletes in one batch, applied in order, atomically.
    let r = http.post_json(
        "/keys/batch",
        &json!({"items": [
            {"key": "k003", "delete": true},
            {"key": "m", "value": "1"},
            {"key": "m", "delete": true},
            {"key": "n", "value": "2"},
        ]}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json(), json!({"written": 4}));
    assert_eq!(http.get("/keys/k003").status, 404);
    assert_eq!(http.get("/keys/m").status, 404, "the later delete wins");
    assert_eq!(http.get("/keys/n").json()["value"], "2");
    for bad in [
        json!({"key": "x", "delete": false}),
        json!({"key": "x", "delete": true, "value": "v"}),
        json!({"delete": true}),
    ] {
        let r = http.post_json(
            "/keys/batch",
            &json!({"items": [{"key": "ok", "value": "1"}, bad]}),
        );
        assert_eq!(r.status, 422, "{bad}");
        assert!(r.json()["detail"]
            .as_str()
            .expect("detail")
            .contains("items[1]"));
    }
    assert_eq!(http.get("/keys/ok").status, 404);
    // The same routes under /db/{name}.
    let r = http.delete_json("/db/default/keys/batch", &json!({"keys": ["k002"]}));
    assert_eq!(r.status, 200);
    assert_eq!(http.get("/db/default/keys/k002").status, 404);
}

/// Follows `next_cursor` from `first` to the end; returns every page.
fn pages(http: &common::http::Http, first: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = first.to_string();
    loop {
        let r = http.get(&url);
        assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
        let page = r.json();
        let next = page["next_cursor"].clone();
        out.push(page);
        match next {
            Value::Null => return out,
            Value::String(c) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                url = format!("{first}{sep}cursor={c}");
            }
            other => panic!("next_cursor {other}"),
        }
    }
}

#[test]
fn keys_and_scan_paginate_without_repeats_or_gaps() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    let items: Vec<Value> = (0..250)
        .map(|i| json!({"key": format!("{}:{i:04}", if i % 2 == 0 { "idx" } else { "doc" }), "value": format!("{i}")}))
        .collect();
    assert_eq!(
        http.post_json("/keys/batch", &json!({ "items": items }))
            .status,
        200
    );
    // Some in tables, some in the memtable.
    assert_eq!(http.send("POST", "/admin/compact", "", vec![]).status, 200);
    http.post_json("/keys", &json!({"key": "idx:9999", "value": "late"}));

    let listed: Vec<String> = pages(&http, "/keys?limit=7")
        .iter()
        .flat_map(|p| {
            let keys = p["keys"].as_array().expect("keys").clone();
            assert!(keys.len() <= 7);
            keys
        })
        .map(|k| k.as_str().expect("key").to_string())
        .collect();
    assert_eq!(listed.len(), 251);
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");

    let idx: Vec<Value> = pages(&http, "/scan?prefix=idx:&limit=40")
        .iter()
        .flat_map(|p| p["items"].as_array().expect("items").clone())
        .collect();
    assert_eq!(idx.len(), 126);
    assert_eq!(idx[0], json!({"key": "idx:0000", "value": "0"}));
    assert_eq!(idx[125], json!({"key": "idx:9999", "value": "late"}));

    // Ranges and start_after.
    let r = http.get("/scan?start=doc:0011&end=doc:0017").json();
    let keys: Vec<&str> = r["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["key"].as_str().expect("k"))
        .collect();
    assert_eq!(keys, ["doc:0011", "doc:0013", "doc:0015"]);
    let r = http.get("/keys?start_after=idx:0246&prefix=idx:").json();
    assert_eq!(r["keys"], json!(["idx:0248", "idx:9999"]));
    assert_eq!(r["next_cursor"], Value::Null);
    // The last page is exactly full: no next page is promised that does not exist.
    let r = http
        .get("/keys?prefix=idx:&start_after=idx:0246&limit=2")
        .json();
    assert_eq!(r["next_cursor"], Value::Null);
}

#[test]
fn search_by_prefix_and_bounded_substring() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    let items: Vec<Value> = (0..300)
        .map(|i| json!({"key": format!("user:{i:03}:{}", if i % 30 == 0 { "admin" } else { "member" }), "value": "x"}))
        .collect();
    assert_eq!(
        http.post_json("/keys/batch", &json!({ "items": items }))
            .status,
        200
    );

    let r = http.get("/keys/search?q=user:01&prefix=true").json();
    assert_eq!(r["items"].as_array().expect("items").len(), 10);
    assert_eq!(r["scanned"], 10, "a prefix search reads only its prefix");

    // Substring: 10 admins among 300 keys, at most 100 keys examined per request.
    let mut found = Vec::new();
    let mut requests = 0;
    let mut url = "/keys/search?q=admin&max_scan=100".to_string();
    loop {
        requests += 1;
        let r = http.get(&url).json();
        assert!(r["scanned"].as_u64().expect("scanned") <= 100);
        for item in r["items"].as_array().expect("items") {
            found.push(item["key"].as_str().expect("key").to_string());
        }
        match &r["next_cursor"] {
            Value::String(c) => url = format!("/keys/search?q=admin&max_scan=100&cursor={c}"),
            _ => break,
        }
    }
    assert_eq!(found.len(), 10, "{found:?}");
    assert!(requests >= 3, "the scan was split into bounded requests");
    assert!(found.iter().all(|k| k.ends_with(":admin")));

    let r = http.get("/keys/search?q=");
    assert_eq!(r.status, 400);
    assert_eq!(r.problem_code(), "invalid-parameter");
    let r = http.get("/keys/search?q=a&max_scan=0");
    assert_eq!(r.status, 400);
}
