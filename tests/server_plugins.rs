//! Plugins over HTTP: upload real components, list, show, try them out with /test,
//! hostile plugins answered with clear errors while the server keeps serving, bad
//! uploads refused, and plugins still registered and compiled after a restart.

mod common;

use common::http::{config, instance, start, Http};
use common::plugins::{self, ECHO_KEY, GARBAGE, INFINITE_LOOP, MEMORY_BOMB, TRAP};
use common::scratch_dir;
use lsm::config::{BuiltinCodec, Config};
use serde_json::{json, Value};

const TOKEN: &str = "plugin-admin";
const AUTH: (&str, &str) = ("authorization", "Bearer plugin-admin");

fn server_config(dir: &std::path::Path) -> Config {
    let mut cfg = config(vec![
        instance("app", &dir.join("app"), BuiltinCodec::Json),
        instance("log", &dir.join("log"), BuiltinCodec::Raw),
    ]);
    cfg.server.admin_token = Some(TOKEN.into());
    cfg.server.max_plugin_size = 1 << 20;
    cfg
}

fn upload(http: &Http, path: &str, wasm: Vec<u8>) -> common::http::Reply {
    http.send_with("PUT", path, "application/wasm", wasm, Some(AUTH))
}

fn try_out(http: &Http, path: &str, body: &Value) -> Value {
    let r = http.send_with(
        "POST",
        path,
        "application/json",
        body.to_string().into_bytes(),
        Some(AUTH),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn upload_list_test_replace_delete_and_survive_a_restart() {
    let dir = scratch_dir();
    let (server, http) = start(server_config(dir.path()));

    let r = upload(&http, "/db/app/plugins/echo", plugins::extractor(ECHO_KEY));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let info = r.json();
    assert_eq!(info["name"], "echo");
    assert_eq!(info["world"], "extractor");
    assert_eq!(info["package"], "lsm:plugin@0.1.0");
    assert_eq!(info["status"], "loaded");
    assert_eq!(info["loaded_from_cache"], false);
    assert_eq!(info["sha256"].as_str().expect("sha").len(), 64);

    let out = try_out(
        &http,
        "/db/app/plugins/echo/test",
        &json!({"key": "users:1", "value": {"city": "Recife"}}),
    );
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["terms"], json!([{"type": "text", "value": "users:1"}]));

    let list = http.get_with("/db/app/plugins", AUTH).json();
    assert_eq!(list["plugins"].as_array().expect("plugins").len(), 1);
    let shown = http.get_with("/db/app/plugins/echo", AUTH).json();
    assert_eq!(shown["calls"], 1);
    // Plugins belong to their instance.
    assert_eq!(
        http.get_with("/db/log/plugins", AUTH).json()["plugins"],
        json!([])
    );
    let r = http.get_with("/db/log/plugins/echo", AUTH);
    assert_eq!(r.status, 404);
    assert_eq!(r.problem_code(), "plugin-not-found");

    // Replacing under the same name: 200, new hash.
    let r = upload(
        &http,
        "/db/app/plugins/echo",
        plugins::extractor(plugins::ERR_OPTIONS),
    );
    assert_eq!(r.status, 200);
    assert_ne!(r.json()["sha256"], info["sha256"]);
    let out = try_out(
        &http,
        "/db/app/plugins/echo/test",
        &json!({"key": "k", "value": 1, "options": {"a": 1}}),
    );
    assert_eq!(out["ok"], false);
    assert_eq!(out["error"]["code"], "plugin-error");
    assert!(
        out["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("{\"a\":1}"),
        "{out}"
    );
    let r = upload(&http, "/db/app/plugins/echo", plugins::extractor(ECHO_KEY));
    assert_eq!(r.status, 200);
    server.stop().expect("stop");

    // After a restart: still registered, loaded from the compiled artifact.
    let (server, http) = start(server_config(dir.path()));
    let shown = http.get_with("/db/app/plugins/echo", AUTH).json();
    assert_eq!(shown["status"], "loaded", "{shown}");
    assert_eq!(shown["loaded_from_cache"], true, "{shown}");
    assert_eq!(shown["sha256"], info["sha256"]);
    let out = try_out(
        &http,
        "/db/app/plugins/echo/test",
        &json!({"key": "again", "value": null}),
    );
    assert_eq!(out["terms"], json!([{"type": "text", "value": "again"}]));

    let r = http.send_with("DELETE", "/db/app/plugins/echo", "", vec![], Some(AUTH));
    assert_eq!(r.status, 200);
    assert_eq!(http.get_with("/db/app/plugins/echo", AUTH).status, 404);
    server.stop().expect("stop");
}

#[test]
fn hostile_plugins_fail_clearly_and_the_server_keeps_answering() {
    let dir = scratch_dir();
    let (_server, http) = start(server_config(dir.path()));
    http.post_json("/db/log/keys", &json!({"key": "a", "value": "1"}));
    let cases = [
        ("spin", INFINITE_LOOP, "?deadline_ms=150", "plugin-timeout"),
        (
            "bomb",
            MEMORY_BOMB,
            "?memory_bytes=8388608",
            "plugin-out-of-memory",
        ),
        ("trap", TRAP, "", "plugin-trap"),
        ("garbage", GARBAGE, "", "plugin-bad-output"),
    ];
    for (name, body, query, code) in cases {
        let r = upload(
            &http,
            &format!("/plugins/{name}{query}"),
            plugins::extractor(body),
        );
        assert_eq!(
            r.status,
            201,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        for _ in 0..2 {
            let out = try_out(
                &http,
                &format!("/plugins/{name}/test"),
                &json!({"key": "k", "value": {"x": 1}}),
            );
            assert_eq!(out["ok"], false, "{name}: {out}");
            assert_eq!(out["error"]["code"], code, "{name}: {out}");
            assert!(out["error"]["message"]
                .as_str()
                .expect("message")
                .contains(name));
            // Everything else still works.
            assert_eq!(http.get("/health").status, 200);
            assert_eq!(http.get("/db/log/keys/a").json()["value"], "1");
        }
        let shown = http.get_with(&format!("/plugins/{name}"), AUTH).json();
        assert_eq!(shown["errors"], 2, "{shown}");
    }
    let shown = http.get_with("/plugins/spin", AUTH).json();
    assert_eq!(shown["limits"]["deadline_ms"], 150);
}

#[test]
fn bad_uploads_are_refused_with_the_reason() {
    let dir = scratch_dir();
    let mut cfg = server_config(dir.path());
    cfg.server.max_plugin_size = 64 << 10;
    let (_server, http) = start(cfg);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "/plugins/text",
            "application/wasm",
            b"not wasm".to_vec(),
            422,
            "invalid-plugin",
        ),
        (
            "/plugins/core",
            "application/wasm",
            plugins::core_module(ECHO_KEY),
            422,
            "invalid-plugin",
        ),
        (
            "/plugins/other",
            "application/wasm",
            plugins::foreign_component(),
            422,
            "invalid-plugin",
        ),
        (
            "/plugins/big",
            "application/wasm",
            vec![0; 100 << 10],
            413,
            "body-too-large",
        ),
        (
            "/plugins/json",
            "application/json",
            b"{}".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "/plugins/Bad%20Name",
            "application/wasm",
            plugins::extractor(ECHO_KEY),
            400,
            "invalid-parameter",
        ),
        (
            "/plugins/x?deadline_ms=0",
            "application/wasm",
            plugins::extractor(ECHO_KEY),
            422,
            "invalid-plugin",
        ),
        (
            "/plugins/x?colour=red",
            "application/wasm",
            plugins::extractor(ECHO_KEY),
            400,
            "invalid-parameter",
        ),
    ];
    for (path, ct, body, status, code) in cases {
        let r = http.send_with("PUT", path, ct, body, Some(AUTH));
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.problem_code(), code, "{path}");
    }
    // Admin token required for every plugin route.
    for (method, path) in [
        ("GET", "/plugins"),
        ("PUT", "/plugins/x"),
        ("GET", "/plugins/x"),
        ("DELETE", "/plugins/x"),
        ("POST", "/plugins/x/test"),
    ] {
        let r = http.send(
            method,
            path,
            "application/wasm",
            plugins::extractor(ECHO_KEY),
        );
        assert_eq!(r.status, 401, "{method} {path}");
    }
    assert_eq!(http.get_with("/plugins", AUTH).json()["plugins"], json!([]));
    let r = http.send_with(
        "POST",
        "/plugins/nope/test",
        "application/json",
        b"{\"key\":\"k\",\"value\":1}".to_vec(),
        Some(AUTH),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.problem_code(), "plugin-not-found");
}

#[test]
fn an_instance_can_use_a_codec_plugin_named_in_its_configuration() {
    let dir = scratch_dir();
    let wasm_path = dir.path().join("text-codec.wasm");
    std::fs::write(&wasm_path, plugins::json_text_codec()).expect("write");
    let mut app = instance("app", &dir.path().join("app"), BuiltinCodec::Json);
    app.codec = lsm::config::CodecConfig::Plugin {
        plugin: wasm_path.clone(),
    };
    let (server, http) = start(config(vec![app.clone()]));
    let doc = json!({"city": "Porto Alegre", "n": [1, 2.5]});
    assert_eq!(
        http.post_json("/keys", &json!({"key": "d", "value": doc}))
            .status,
        200
    );
    assert_eq!(http.get("/keys/d").json()["value"], doc);
    let stored = http.get_with("/keys/d", ("accept", "application/octet-stream"));
    assert_eq!(
        stored.body,
        doc.to_string().into_bytes(),
        "the plugin decides the stored form"
    );
    // The plugin's refusal is the client's 422, with the plugin's message.
    let r = http.post_json("/keys", &json!({"key": "s", "value": "just a string"}));
    assert_eq!(r.status, 422);
    assert_eq!(r.problem_code(), "invalid-value");
    assert!(r.json()["detail"]
        .as_str()
        .expect("detail")
        .contains("just a string"));
    let r = http.send(
        "PUT",
        "/keys/raw",
        "application/octet-stream",
        b"\"quoted\"".to_vec(),
    );
    assert_eq!(r.status, 422, "validate refuses what encode refuses");
    assert_eq!(
        http.get("/instances").json()["instances"][0]["codec"],
        "plugin:codec"
    );
    server.stop().expect("stop");

    // A configuration naming something that is not a codec: the instance is unavailable.
    std::fs::write(&wasm_path, plugins::extractor(ECHO_KEY)).expect("write");
    let other = instance("other", &dir.path().join("other"), BuiltinCodec::Raw);
    let (_server, http) = start(config(vec![app, other]));
    let health = http.get("/health").json();
    assert_eq!(health["instances"]["app"]["status"], "unavailable");
    assert!(
        health["instances"]["app"]["reason"]
            .as_str()
            .expect("reason")
            .contains("not codec"),
        "{health}"
    );
    assert_eq!(health["instances"]["other"]["status"], "ready");
}
