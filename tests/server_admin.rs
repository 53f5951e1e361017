//! Admin routes: compaction and verification, guarded by the bearer token when one is
//! configured; and the OpenAPI description of every route.

mod common;

use common::http::{config, instance, start};
use common::scratch_dir;
use lsm::config::BuiltinCodec;
use serde_json::json;

#[test]
fn admin_routes_need_the_token_when_one_is_set() {
    let dir = scratch_dir();
    let mut cfg = config(vec![
        instance("app", &dir.path().join("app"), BuiltinCodec::Json),
        instance("log", &dir.path().join("log"), BuiltinCodec::Raw),
    ]);
    cfg.server.admin_token = Some("s3cret-token".into());
    let (_server, http) = start(cfg);
    let items: Vec<_> = (0..300)
        .map(|i| json!({"key": format!("k{i}"), "value": i}))
        .collect();
    assert_eq!(
        http.post_json("/db/app/keys/batch", &json!({ "items": items }))
            .status,
        200
    );

    for path in [
        "/admin/compact",
        "/admin/verify",
        "/db/app/admin/compact",
        "/db/log/admin/verify",
    ] {
        let r = http.send("POST", path, "", vec![]);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.problem_code(), "unauthorized");
        for wrong in [
            "Bearer nope",
            "Bearer s3cret-token-",
            "Basic czNjcmV0LXRva2Vu",
            "s3cret-token",
        ] {
            let r = http.send_with("POST", path, "", vec![], Some(("authorization", wrong)));
            assert_eq!(r.status, 401, "{path} {wrong}");
        }
    }
    // Data routes do not need it.
    assert_eq!(http.get("/db/app/keys/k1").status, 200);

    let auth = Some(("authorization", "Bearer s3cret-token"));
    let r = http.send_with("POST", "/db/app/admin/compact", "", vec![], auth);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["instance"], "app");
    assert_eq!(body["tables_after"], 1, "{body}");
    let r = http.send_with("POST", "/db/app/admin/verify", "", vec![], auth);
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["ok"], true, "{body}");
    assert!(!body["files"].as_array().expect("files").is_empty());
    // The root admin routes act on the default instance (here the first, "app").
    let r = http.send_with("POST", "/admin/verify", "", vec![], auth);
    assert_eq!(r.json()["instance"], "app");
    // Compaction kept every key.
    assert_eq!(
        http.get("/db/app/keys?limit=1000").json()["keys"]
            .as_array()
            .expect("keys")
            .len(),
        300
    );
}

#[test]
fn without_a_token_admin_routes_are_open() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    assert_eq!(
        http.post_json("/keys", &json!({"key": "a", "value": "1"}))
            .status,
        200
    );
    let r = http.send("POST", "/admin/compact", "", vec![]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tables_after"], 1);
    assert_eq!(
        http.send("POST", "/db/default/admin/verify", "", vec![])
            .json()["ok"],
        true
    );
}

#[test]
fn openapi_describes_every_route_at_the_root_and_per_instance() {
    let dir = scratch_dir();
    let (_server, http) = start(config(vec![instance(
        "default",
        dir.path(),
        BuiltinCodec::Raw,
    )]));
    let doc = http.get("/openapi.json").json();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let expected = [
        ("/health", "get"),
        ("/instances", "get"),
        ("/db/{instance}/health", "get"),
        ("/keys", "get"),
        ("/keys", "post"),
        ("/keys/{key}", "get"),
        ("/keys/{key}", "put"),
        ("/keys/{key}", "delete"),
        ("/keys/batch", "post"),
        ("/keys/batch", "delete"),
        ("/keys/search", "get"),
        ("/scan", "get"),
        ("/stats", "get"),
        ("/stats_all", "get"),
        ("/admin/compact", "post"),
        ("/admin/verify", "post"),
    ];
    for (path, method) in expected {
        let mut variants = vec![path.to_string()];
        if !path.starts_with("/db/") && !["/health", "/instances"].contains(&path) {
            variants.push(format!("/db/{{instance}}{path}"));
        }
        for p in variants {
            let op = &paths.get(&p).unwrap_or_else(|| panic!("{p} missing"))[method];
            assert!(op.is_object(), "{method} {p} missing");
            let has_instance_param = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|x| x["name"] == "instance"));
            assert_eq!(has_instance_param, p.contains("{instance}"), "{method} {p}");
        }
    }
    // Every documented path is routed (a 404 can only be a missing key).
    for path in paths.keys() {
        let concrete = path.replace("{instance}", "default").replace("{key}", "k");
        let r = http.get(&concrete);
        if r.status == 404 {
            assert_eq!(r.problem_code(), "key-not-found", "{concrete}");
        }
    }
}
