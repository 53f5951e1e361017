//! Every example plugin and standard extractor, built from the repository, uploaded
//! over HTTP to a running server, tried with `/test`, and after a restart still
//! registered, loaded from the compiled cache (not compiled again) and callable.

mod common;

use common::guests;
use common::http::{config, instance, start, Http};
use common::scratch_dir;
use lsm::config::{BuiltinCodec, Config};
use serde_json::{json, Value};

const AUTH: (&str, &str) = ("authorization", "Bearer examples");

fn server_config(dir: &std::path::Path) -> Config {
    let mut cfg = config(vec![instance("app", &dir.join("app"), BuiltinCodec::Json)]);
    cfg.server.admin_token = Some("examples".into());
    cfg.server.plugin_deadline_ms = 10_000;
    cfg
}

/// (plugin name, component, sample request for /test, expected answer field and value)
fn cases() -> Vec<(&'static str, Vec<u8>, Value, &'static str, Value)> {
    let std_dir = guests::standard_extractors();
    let examples = guests::example_plugins(&[]);
    let text = |s: &str| json!({"type": "text", "value": s});
    vec![
        (
            "json-path",
            guests::read(std_dir, "json_path.wasm"),
            json!({"key": "users:1", "value": {"city": "Recife"}, "options": {"path": "$.city"}}),
            "terms",
            json!([text("Recife")]),
        ),
        (
            "email-domain",
            guests::read(examples, "rust-email-domain.wasm"),
            json!({"key": "users:1", "value": {"email": "Ana@Example.COM"}}),
            "terms",
            json!([text("example.com")]),
        ),
        (
            "key-prefix",
            guests::read(examples, "wat-key-prefix.wasm"),
            json!({"key": "users:1", "value": {}}),
            "terms",
            json!([text("users")]),
        ),
        (
            "city-normalizer",
            guests::read(examples, "python-city-normalizer.wasm"),
            json!({"key": "users:1", "value": {"city": "  São   Paulo "}, "options": {"field": "city"}}),
            "terms",
            json!([text("sao paulo")]),
        ),
        (
            "tags",
            guests::read(examples, "js-tags.wasm"),
            json!({"key": "users:1", "value": {"tags": ["Rust", " DB "]}, "options": {"field": "tags"}}),
            "terms",
            json!([text("rust"), text("db")]),
        ),
        (
            "csv",
            guests::read(examples, "rust-csv-codec.wasm"),
            json!({"value": {"name": "Ana", "age": 30}}),
            "decoded",
            json!({"name": "Ana", "age": 30}),
        ),
    ]
}

fn try_out(http: &Http, name: &str, sample: &Value) -> Value {
    let r = http.send_with(
        "POST",
        &format!("/db/app/plugins/{name}/test"),
        "application/json",
        sample.to_string().into_bytes(),
        Some(AUTH),
    );
    assert_eq!(
        r.status,
        200,
        "{name}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

#[test]
fn every_example_uploads_over_http_and_survives_a_restart_without_compiling() {
    let cases = cases();
    let dir = scratch_dir();
    let (server, http) = start(server_config(dir.path()));
    for (name, wasm, sample, field, expected) in &cases {
        let r = http.send_with(
            "PUT",
            &format!("/db/app/plugins/{name}"),
            "application/wasm",
            wasm.clone(),
            Some(AUTH),
        );
        assert_eq!(
            r.status,
            201,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["loaded_from_cache"], false, "{name}");
        let out = try_out(&http, name, sample);
        assert_eq!(out["ok"], true, "{name}: {out}");
        assert_eq!(&out[*field], expected, "{name}: {out}");
    }
    server.stop().expect("stop");

    let (server, http) = start(server_config(dir.path()));
    let list = http.get_with("/db/app/plugins", AUTH).json();
    assert_eq!(
        list["plugins"].as_array().expect("plugins").len(),
        cases.len()
    );
    for (name, _, sample, field, expected) in &cases {
        let shown = http
            .get_with(&format!("/db/app/plugins/{name}"), AUTH)
            .json();
        assert_eq!(shown["status"], "loaded", "{name}: {shown}");
        assert_eq!(shown["loaded_from_cache"], true, "{name}: {shown}");
        let out = try_out(&http, name, sample);
        assert_eq!(&out[*field], expected, "{name} after the restart: {out}");
    }
    server.stop().expect("stop");
}
