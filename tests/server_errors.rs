//! A client's mistakes get a problem+json 4xx with a stable code, never a 500, and
//! leave the data as it was.

mod common;

use common::http::{config, instance, start};
use common::scratch_dir;
use lsm::config::BuiltinCodec;
use serde_json::json;

#[test]
fn malformed_and_invalid_bodies() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    /// (method, path, content type, body, status, problem code)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/keys",
            "application/json",
            b"{\"key\":".to_vec(),
            400,
            "malformed-json",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            b"\xff\xfe".to_vec(),
            400,
            "malformed-json",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            b"[1,2]".to_vec(),
            422,
            "invalid-body",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            br#"{"value":"x"}"#.to_vec(),
            422,
            "invalid-body",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            br#"{"key":1,"value":"x"}"#.to_vec(),
            422,
            "invalid-body",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            br#"{"key":"a"}"#.to_vec(),
            422,
            "invalid-body",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            br#"{"key":"a","value":"x","value_base64":"eA=="}"#.to_vec(),
            422,
            "invalid-body",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            br#"{"key":"a","value_base64":"***"}"#.to_vec(),
            422,
            "invalid-body",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            br#"{"key":"a","vaule":"x"}"#.to_vec(),
            422,
            "invalid-body",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            br#"{"key":"a","value":{"n":1}}"#.to_vec(),
            422,
            "invalid-value",
        ),
        (
            "POST",
            "/keys",
            "application/json",
            br#"{"key":"","value":"x"}"#.to_vec(),
            422,
            "invalid-key",
        ),
        (
            "POST",
            "/keys",
            "text/plain",
            b"hello".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "POST",
            "/keys",
            "application/octet-stream",
            b"hello".to_vec(),
            400,
            "invalid-parameter",
        ),
        (
            "POST",
            "/keys/batch",
            "application/json",
            br#"{"items":{}}"#.to_vec(),
            422,
            "invalid-body",
        ),
        (
            "POST",
            "/keys/batch",
            "application/json",
            b"nope".to_vec(),
            400,
            "malformed-json",
        ),
        (
            "POST",
            "/keys/batch",
            "text/csv",
            b"a,b".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "DELETE",
            "/keys/batch",
            "application/json",
            br#"{"keys":[1]}"#.to_vec(),
            422,
            "invalid-body",
        ),
        (
            "DELETE",
            "/keys/batch",
            "application/json",
            br#"{"keys":[],"all":true}"#.to_vec(),
            422,
            "invalid-body",
        ),
    ];
    for (method, path, ct, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body).to_string();
        let r = http.send(method, path, ct, body);
        assert_eq!(
            r.status,
            status,
            "{method} {path} {ct} {shown}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.problem_code(), code, "{method} {path} {shown}");
    }
    // A key over the engine's limit.
    let r = http.post_json("/keys", &json!({"key": "k".repeat(20_000), "value": "x"}));
    assert_eq!(r.status, 422);
    assert_eq!(r.problem_code(), "invalid-key");
    // Nothing was written by any of them.
    assert_eq!(http.get("/keys").json()["keys"], json!([]));
}

#[test]
fn bad_parameters_routes_and_methods() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    for (path, status, code) in [
        ("/keys?limit=0", 400, "invalid-parameter"),
        ("/keys?limit=10001", 400, "invalid-parameter"),
        ("/keys?limit=ten", 400, "invalid-parameter"),
        ("/keys?cursor=users:1", 400, "invalid-parameter"),
        ("/keys?cursor=k1.%2F%2F", 400, "invalid-parameter"),
        ("/keys?cursor=k1.YQ&start_after=a", 400, "invalid-parameter"),
        ("/keys?colour=blue", 400, "invalid-parameter"),
        ("/scan?format=yaml", 400, "invalid-parameter"),
        ("/keys/search", 400, "invalid-parameter"),
        ("/keys/search?q=a&prefix=maybe", 400, "invalid-parameter"),
        ("/keys/%FF", 400, "invalid-parameter"),
        ("/nothing/here", 404, "not-found"),
        ("/db/nope/keys", 404, "instance-not-found"),
        ("/db/nope/keys/a", 404, "instance-not-found"),
        ("/db/..%2F..%2Fetc/keys", 404, "instance-not-found"),
        ("/db/nope/health", 404, "instance-not-found"),
    ] {
        let r = http.get(path);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.problem_code(), code, "{path}");
    }
    for (method, path) in [
        ("PATCH", "/keys"),
        ("GET", "/keys/batch"),
        ("GET", "/admin/compact"),
        ("POST", "/stats"),
    ] {
        let r = http.send(method, path, "", vec![]);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.problem_code(), "method-not-allowed");
    }
}

#[test]
fn oversized_bodies_get_413_and_the_limit_is_configurable() {
    let dir = scratch_dir();
    let mut cfg = config(vec![instance("default", dir.path(), BuiltinCodec::Raw)]);
    cfg.server.max_body_size = 64 * 1024;
    let (_server, http) = start(cfg);
    let big = "x".repeat(100 * 1024);
    let r = http.post_json("/keys", &json!({"key": "big", "value": big}));
    assert_eq!(r.status, 413);
    assert_eq!(r.problem_code(), "body-too-large");
    let r = http.send(
        "PUT",
        "/keys/big",
        "application/octet-stream",
        vec![7; 100 * 1024],
    );
    assert_eq!(r.status, 413);
    let items: Vec<_> = (0..2000).map(|i| json!({"key": format!("k{i}"), "value": "0123456789012345678901234567890123456789"})).collect();
    let r = http.post_json("/keys/batch", &json!({ "items": items }));
    assert_eq!(r.status, 413);
    assert_eq!(r.problem_code(), "body-too-large");
    // Under the limit is fine.
    let r = http.post_json(
        "/keys",
        &json!({"key": "ok", "value": "x".repeat(60 * 1024)}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(http.get("/keys").json()["keys"], json!(["ok"]));
}

#[test]
fn values_over_the_engine_limit_are_refused() {
    let dir = scratch_dir();
    let mut cfg = config(vec![instance("default", dir.path(), BuiltinCodec::Raw)]);
    cfg.server.max_body_size = 64 << 20;
    let (_server, http) = start(cfg);
    let r = http.send(
        "PUT",
        "/keys/huge",
        "application/octet-stream",
        vec![1; lsm::engine::MAX_VALUE_SIZE + 1],
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.problem_code(), "value-too-large");
    assert_eq!(http.get("/keys/huge").status, 404);
}
