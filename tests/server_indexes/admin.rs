//! Index administration: a custom WASM extractor built on existing data and rebuilt when
//! its plugin changes, the indexes file and the API across restarts.

use super::*;

const TOKEN_AUTH: (&str, &str) = ("authorization", "Bearer idx-admin");

fn upload(http: &Http, name: &str, wasm: Vec<u8>) -> Value {
    let r = http.send_with(
        "PUT",
        &format!("/plugins/{name}"),
        "application/wasm",
        wasm,
        Some(TOKEN_AUTH),
    );
    assert!(
        r.status == 200 || r.status == 201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn admin_post(http: &Http, path: &str, body: &Value) -> common::http::Reply {
    http.send_with(
        "POST",
        path,
        "application/json",
        body.to_string().into_bytes(),
        Some(TOKEN_AUTH),
    )
}

#[test]
fn a_custom_wasm_index_is_built_on_existing_data_and_rebuilt_when_its_plugin_changes() {
    let dir = scratch_dir();
    let mut cfg = json_instance(dir.path());
    cfg.server.admin_token = Some("idx-admin".into());
    let (server, http) = start(cfg.clone());
    load(&http, "users:", 0..300);
    upload(&http, "echo", plugins::extractor(plugins::ECHO_KEY));

    // Admin routes need the token.
    let def = json!({"index_name": "by_key", "scope_prefix": "users:", "index_type": "equality",
                     "extractor": {"type": "custom", "plugin": "echo", "options": {"v": 1}}});
    assert_eq!(http.post_json("/indexes", &def).status, 401);
    let r = admin_post(&http, "/indexes", &def);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let location = r.json()["task"]["id"]
        .as_u64()
        .map(|id| format!("/db/default/tasks/{id}"))
        .unwrap();
    wait_task(&http, &location);
    assert_eq!(
        query_all(
            &http,
            json!({"index": "by_key", "term": "users:000042"}),
            10
        ),
        ["users:000042"]
    );

    // In use: cannot be deleted.
    let r = http.send_with(
        "DELETE",
        "/plugins/echo",
        "application/json",
        Vec::new(),
        Some(TOKEN_AUTH),
    );
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));

    // A new version: the index is rebuilt with it and swapped in.
    // This version gives every record the index's options as its one term.
    let replaced = upload(&http, "echo", plugins::echo_options_extractor());
    let task = &replaced["rebuilds"][0];
    assert_eq!(task["kind"], "rebuild", "{replaced}");
    wait_task(&http, &format!("/db/default/tasks/{}", task["id"]));
    let info = http.get("/indexes/by_key").json();
    assert_eq!(info["generation"], task["generation"], "{info}");
    let found = query_all(
        &http,
        json!({"index": "by_key", "term": "users:000042"}),
        10,
    );
    assert!(found.is_empty(), "{found:?} {info}");
    let all = query_all(&http, json!({"index": "by_key", "term": "{\"v\":1}"}), 100);
    assert_eq!(all.len(), 300);
    // And the previous version comes back the same way.
    let replaced = upload(&http, "echo", plugins::extractor(plugins::ECHO_KEY));
    wait_task(
        &http,
        &format!("/db/default/tasks/{}", replaced["rebuilds"][0]["id"]),
    );
    assert_eq!(
        query_all(
            &http,
            json!({"index": "by_key", "term": "users:000042"}),
            10
        ),
        ["users:000042"]
    );
    let v = admin_post(&http, "/admin/verify", &json!({})).json();
    assert_eq!(v["ok"], true, "{v}");

    // After a restart: still there, still answering, without a rebuild.
    server.stop().expect("stop");
    let (server, http) = start(cfg);
    let info = http.get("/indexes/by_key").json();
    assert_eq!(info["state"], "ready", "{info}");
    assert_eq!(
        query_all(
            &http,
            json!({"index": "by_key", "term": "users:000299"}),
            10
        ),
        ["users:000299"]
    );
    drop(server);
}

#[test]
fn indexes_file_and_api_agree_across_restarts() {
    let dir = scratch_dir();
    let file = dir.path().join("indexes.toml");
    std::fs::write(
        &file,
        "[[index]]\nindex_name = \"by_city\"\nscope_prefix = \"users:*\"\nindex_type = \"equality\"\nextractor = { type = \"json_path\", path = \"$.city\" }\n",
    )
    .unwrap();
    let mut cfg = json_instance(dir.path());
    cfg.instances[0].indexes_file = Some(file.clone());
    let (server, http) = start(cfg.clone());
    load(&http, "users:", 0..200);
    let info = http.get("/indexes/by_city").json();
    assert_eq!(info["source"], "file", "{info}");
    create(
        &http,
        json!({"index_name": "by_age", "scope_prefix": "users:", "index_type": "range", "extractor": {"type": "json_path", "path": "$.age"}}),
    );
    assert_eq!(
        http.delete("/indexes/by_city").problem_code(),
        "index-from-file"
    );
    server.stop().expect("stop");

    // Restart with the file changed: by_city now on $.name (rebuilt), by_age kept.
    std::fs::write(
        &file,
        "[[index]]\nindex_name = \"by_city\"\nscope_prefix = \"users:\"\nindex_type = \"equality\"\nextractor = { type = \"json_path\", path = \"$.name\" }\n",
    )
    .unwrap();
    let (server, http) = start(cfg.clone());
    let info = http.get("/indexes/by_city").json();
    assert_eq!(info["extractor"]["path"], "$.name", "{info}");
    if let Some(task) = info["task"].as_u64() {
        wait_task(&http, &format!("/db/default/tasks/{task}"));
    }
    assert_eq!(
        query_all(&http, json!({"index": "by_city", "term": "user 7"}), 10),
        ["users:000007"]
    );
    let ages = set(query_all(
        &http,
        json!({"index": "by_age", "range": {"gte": 70}}),
        100,
    ));
    assert_eq!(ages, model(|u| u["age"].as_u64().unwrap() >= 70, 0..200));
    server.stop().expect("stop");

    // Removed from the file: dropped.
    std::fs::write(&file, "").unwrap();
    let (server, http) = start(cfg);
    let names: Vec<String> = http.get("/indexes").json()["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["by_age"]);
    drop(server);
}
