//! Several instances in one server: isolated data and codecs, an instance that cannot
//! open does not stop the others, and data survives a restart.

mod common;

use common::http::{config, instance, start};
use common::scratch_dir;
use lsm::config::BuiltinCodec;
use lsm::engine::{Db, Options};
use serde_json::json;

#[test]
fn instances_with_different_codecs_side_by_side() {
    let dir = scratch_dir();
    let (server, http) = start(config(vec![
        instance("app", &dir.path().join("app"), BuiltinCodec::Json),
        instance("log", &dir.path().join("log"), BuiltinCodec::Raw),
    ]));
    let doc =
        json!({"name": "Ana", "city": "Porto Alegre", "age": 30, "tags": ["a", "b"], "x": null});
    let r = http.post_json("/db/app/keys", &json!({"key": "users:1", "value": doc}));
    assert_eq!(r.status, 200);
    let r = http.post_json(
        "/db/log/keys",
        &json!({"key": "users:1", "value": "GET /index 200"}),
    );
    assert_eq!(r.status, 200);

    assert_eq!(http.get("/db/app/keys/users:1").json()["value"], doc);
    assert_eq!(
        http.get("/db/log/keys/users:1").json()["value"],
        "GET /index 200"
    );
    // The json codec stores compact UTF-8 JSON: the stored bytes are that text.
    let stored = http.get_with(
        "/db/app/keys/users:1",
        ("accept", "application/octet-stream"),
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&stored.body).expect("json"),
        doc
    );
    // Codec rules are per instance.
    let r = http.post_json("/db/log/keys", &json!({"key": "n", "value": 5}));
    assert_eq!(r.status, 422);
    assert_eq!(r.problem_code(), "invalid-value");
    let r = http.post_json("/db/app/keys", &json!({"key": "n", "value": 5}));
    assert_eq!(r.status, 200);
    let r = http.send(
        "PUT",
        "/db/app/keys/bad",
        "application/octet-stream",
        b"{not json".to_vec(),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.problem_code(), "invalid-value");

    // Isolation: deleting in one leaves the other.
    assert_eq!(http.delete("/db/log/keys/users:1").status, 200);
    assert_eq!(http.get("/db/log/keys/users:1").status, 404);
    assert_eq!(http.get("/db/app/keys/users:1").status, 200);
    assert_eq!(
        http.get("/db/app/keys").json()["keys"],
        json!(["n", "users:1"])
    );
    assert_eq!(http.get("/db/log/keys").json()["keys"], json!([]));
    // Root routes serve the first instance when none is named "default".
    assert_eq!(http.get("/keys").json()["keys"], json!(["n", "users:1"]));

    let stats = http.get("/db/log/stats").json();
    assert_eq!(stats["instance"], "log");
    assert_eq!(stats["codec"], "raw");
    let list = http.get("/instances").json();
    assert_eq!(list["instances"][0]["name"], "app");
    assert_eq!(list["instances"][0]["codec"], "json");
    assert_eq!(list["instances"][0]["default"], true);
    assert_eq!(list["instances"][1]["codec"], "raw");
    server.stop().expect("stop");
}

#[test]
fn an_instance_that_cannot_open_is_reported_and_the_others_serve() {
    let dir = scratch_dir();
    let locked_dir = dir.path().join("locked");
    // Another holder of the directory: the server cannot lock it.
    let holder = Db::open(&locked_dir, Options::default()).expect("open");
    let (server, http) = start(config(vec![
        instance("ok", &dir.path().join("ok"), BuiltinCodec::Raw),
        instance("locked", &locked_dir, BuiltinCodec::Raw),
    ]));
    let health = http.get("/health");
    assert_eq!(health.status, 200);
    let health = health.json();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["instances"]["ok"]["status"], "ready");
    assert_eq!(health["instances"]["locked"]["status"], "unavailable");
    let reason = health["instances"]["locked"]["reason"]
        .as_str()
        .expect("reason");
    assert!(reason.contains("lock"), "{reason}");

    for path in [
        "/db/locked/keys",
        "/db/locked/keys/a",
        "/db/locked/health",
        "/db/locked/stats",
    ] {
        let r = http.get(path);
        assert_eq!(r.status, 503, "{path}");
        assert_eq!(r.problem_code(), "instance-unavailable");
    }
    assert_eq!(
        http.post_json("/db/ok/keys", &json!({"key": "a", "value": "1"}))
            .status,
        200
    );
    assert_eq!(http.get("/db/ok/keys/a").json()["value"], "1");
    server.stop().expect("stop");
    drop(holder);
}

#[test]
fn a_server_with_no_instance_that_opens_refuses_to_start() {
    let dir = scratch_dir();
    let holder = Db::open(dir.path(), Options::default()).expect("open");
    let error = lsm::server::Server::start(
        config(vec![instance("only", dir.path(), BuiltinCodec::Raw)]),
        "127.0.0.1:0",
    )
    .err()
    .expect("must refuse");
    let shown = format!("{error:#}");
    assert!(
        shown.contains("no instance could be opened") && shown.contains("only"),
        "{shown}"
    );
    drop(holder);
}

#[test]
fn data_survives_a_restart() {
    let dir = scratch_dir();
    let cfg = || {
        config(vec![
            instance("app", &dir.path().join("app"), BuiltinCodec::Json),
            instance("log", &dir.path().join("log"), BuiltinCodec::Raw),
        ])
    };
    let (server, http) = start(cfg());
    let items: Vec<_> = (0..500)
        .map(|i| json!({"key": format!("e{i:04}"), "value": {"i": i}}))
        .collect();
    assert_eq!(
        http.post_json("/db/app/keys/batch", &json!({ "items": items }))
            .status,
        200
    );
    assert_eq!(
        http.post_json("/db/log/keys", &json!({"key": "l", "value": "line"}))
            .status,
        200
    );
    assert_eq!(http.delete("/db/app/keys/e0007").status, 200);
    server.stop().expect("stop");

    let (server, http) = start(cfg());
    assert_eq!(
        http.get("/db/app/keys/e0499").json()["value"],
        json!({"i": 499})
    );
    assert_eq!(http.get("/db/app/keys/e0007").status, 404);
    assert_eq!(http.get("/db/log/keys/l").json()["value"], "line");
    let all: usize = {
        let r = http.get("/db/app/keys?limit=10000").json();
        r["keys"].as_array().expect("keys").len()
    };
    assert_eq!(all, 499);
    server.stop().expect("stop");
}

#[test]
fn the_users_app_and_log_instances_bson_and_raw() {
    let dir = scratch_dir();
    let (server, http) = start(config(vec![
        instance("app", &dir.path().join("app"), BuiltinCodec::Bson),
        instance("log", &dir.path().join("log"), BuiltinCodec::Raw),
    ]));
    let doc = json!({
        "name": "Ana",
        "city": "PortoAlegre",
        "age": 30,
        "big": {"$numberLong": "9007199254740993"},
        "score": 9.5,
        "born": {"$date": "1994-05-01T00:00:00Z"},
        "photo": {"$binary": {"base64": "AAEC", "subType": "00"}},
        "tags": ["a", "b"],
    });
    let r = http.post_json("/db/app/keys", &json!({"key": "users:1", "value": doc}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // On disk: a BSON document whose fields keep their types.
    let stored = http.get_with(
        "/db/app/keys/users:1",
        ("accept", "application/octet-stream"),
    );
    let len = i32::from_le_bytes(stored.body[..4].try_into().expect("length")) as usize;
    assert_eq!(len, stored.body.len(), "a BSON document");
    // Canonical extended JSON shows every type; relaxed is plain where it can be.
    let canonical = http.get("/db/app/keys/users:1?format=canonical").json()["value"].clone();
    assert_eq!(canonical["age"], json!({"$numberInt": "30"}));
    assert_eq!(canonical["big"], json!({"$numberLong": "9007199254740993"}));
    assert_eq!(canonical["score"], json!({"$numberDouble": "9.5"}));
    assert!(canonical["born"]["$date"].is_object(), "{canonical}");
    let relaxed = http.get("/db/app/keys/users:1").json()["value"].clone();
    assert_eq!(relaxed["age"], 30);
    assert_eq!(relaxed["city"], "PortoAlegre");
    assert_eq!(relaxed["tags"], json!(["a", "b"]));
    assert_eq!(relaxed["born"], json!({"$date": "1994-05-01T00:00:00Z"}));
    // A read-modify-write in canonical form keeps the bytes exactly.
    let r = http.post_json(
        "/db/app/keys",
        &json!({"key": "users:2", "value": canonical}),
    );
    assert_eq!(r.status, 200);
    let copy = http.get_with(
        "/db/app/keys/users:2",
        ("accept", "application/octet-stream"),
    );
    assert_eq!(copy.body, stored.body);
    // Scalars are values too; raw bytes of the log instance stay bytes.
    assert_eq!(
        http.post_json("/db/app/keys", &json!({"key": "n", "value": 7}))
            .status,
        200
    );
    assert_eq!(http.get("/db/app/keys/n").json()["value"], 7);
    let r = http.send(
        "POST",
        "/db/log/keys?key=line1",
        "application/octet-stream",
        b"GET / 200\n".to_vec(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        http.get("/db/log/keys/line1").json()["value"],
        "GET / 200\n"
    );
    // Bytes that are not BSON are refused by the bson instance.
    let r = http.send(
        "PUT",
        "/db/app/keys/bad",
        "application/octet-stream",
        b"{\"a\":1}".to_vec(),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.problem_code(), "invalid-value");
    let page = http.get("/db/app/scan?format=canonical").json();
    assert_eq!(page["items"].as_array().expect("items").len(), 3);
    server.stop().expect("stop");
}
