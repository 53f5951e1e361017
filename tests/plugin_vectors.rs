//! The standard extractors built as WebAssembly components (`extractors/build.sh`)
//! against the shared test vectors (`extractors/vectors.json`): through the plugin host,
//! singly and in batches, every vector gives the same terms, or the same error, as the
//! native logic the server links.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use common::guests;
use lsm::plugin::{Limits, Plugin, PluginError, PluginHost, PluginStore, World};
use lsm_extract::{extract_bson, extract_json, extract_raw, Path, Term};
use serde_json::Value;

struct Vector {
    name: String,
    /// `raw`, `json_path` or `bson_path`: also the plugin's name.
    extractor: String,
    /// The options the plugin gets.
    options: String,
    value: Vec<u8>,
    expected_error: bool,
    expected_terms: Vec<Term>,
}

fn value_bytes(value: &Value) -> Vec<u8> {
    let (kind, v) = value
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("value kind");
    match kind.as_str() {
        "json" => serde_json::to_vec(v).expect("json"),
        "text" => v.as_str().expect("text").as_bytes().to_vec(),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("b64"))
            .expect("base64"),
        "bson" => match bson::Bson::try_from(v.clone()).expect("extended JSON") {
            bson::Bson::Document(d) => d.to_vec().expect("bson"),
            other => panic!("bson vectors are documents, not {other:?}"),
        },
        other => panic!("unknown value kind {other}"),
    }
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(guests::repo().join("extractors/vectors.json"))
        .expect("vectors.json");
    let vectors: Vec<Value> = serde_json::from_str(&text).expect("vectors parse");
    assert!(vectors.len() >= 20, "{} vectors", vectors.len());
    vectors
        .iter()
        .map(|v| {
            let extractor = v["extractor"]["type"].as_str().expect("type").to_string();
            let options = match v["extractor"].get("path") {
                Some(path) => serde_json::json!({ "path": path }).to_string(),
                None => "{}".to_string(),
            };
            Vector {
                name: v["name"].as_str().expect("name").to_string(),
                extractor,
                options,
                value: value_bytes(&v["value"]),
                expected_error: v["error"] == Value::Bool(true),
                expected_terms: if v["error"] == Value::Bool(true) {
                    Vec::new()
                } else {
                    serde_json::from_value(v["terms"].clone()).expect("terms")
                },
            }
        })
        .collect()
}

/// What the server's native extractor gives for `v`.
fn native(v: &Vector) -> Result<Vec<Term>, String> {
    let path = || {
        let options: Value = serde_json::from_str(&v.options).expect("options");
        Path::parse(options["path"].as_str().expect("path")).expect("valid path")
    };
    match v.extractor.as_str() {
        "raw" => Ok(extract_raw(&v.value)),
        "json_path" => extract_json(&path(), &v.value),
        "bson_path" => extract_bson(&path(), &v.value),
        other => panic!("{}: unknown extractor {other}", v.name),
    }
}

/// The plugin's answer in the native form: terms, or the plugin's own error message.
fn guest_result(name: &str, r: Result<Vec<Term>, PluginError>) -> Result<Vec<Term>, String> {
    match r {
        Ok(terms) => Ok(terms),
        Err(PluginError::Guest { message, .. }) => Err(message),
        Err(other) => panic!("{name}: the plugin failed instead of answering: {other}"),
    }
}

fn check(v: &Vector, how: &str, got: Result<Vec<Term>, String>) {
    let want = native(v);
    assert_eq!(got, want, "{} ({how}): WASM and native differ", v.name);
    if v.expected_error {
        assert!(got.is_err(), "{} ({how}): expected an error", v.name);
    } else {
        assert_eq!(
            got.as_ref().expect(&v.name),
            &v.expected_terms,
            "{}",
            v.name
        );
    }
}

fn host() -> Arc<PluginHost> {
    PluginHost::new(Limits::default()).expect("host")
}

/// Registers the three standard extractors, reporting size and compile time.
fn register(store: &PluginStore) -> BTreeMap<&'static str, Arc<Plugin>> {
    let dist = guests::standard_extractors();
    let mut plugins = BTreeMap::new();
    for name in ["json_path", "bson_path", "raw"] {
        let wasm = guests::read(dist, &format!("{name}.wasm"));
        let started = Instant::now();
        let plugin = store.put(name, &wasm).expect(name);
        eprintln!(
            "{name}.wasm: {} bytes, PluginStore::put {:?}",
            wasm.len(),
            started.elapsed()
        );
        assert_eq!(plugin.world(), World::Extractor, "{name}");
        plugins.insert(name, plugin);
    }
    plugins
}

#[test]
fn every_vector_gives_the_native_result_singly_and_in_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = PluginStore::open(dir.path(), host()).expect("store");
    let plugins = register(&store);
    let vectors = vectors();

    for v in &vectors {
        let plugin = &plugins[v.extractor.as_str()];
        let got = guest_result(&v.name, plugin.extract("k:1", &v.value, &v.options));
        check(v, "single", got);
    }

    // One batch per (extractor, options): what an index build does.
    let mut groups: BTreeMap<(&str, &str), Vec<&Vector>> = BTreeMap::new();
    for v in &vectors {
        groups
            .entry((v.extractor.as_str(), v.options.as_str()))
            .or_default()
            .push(v);
    }
    for ((extractor, options), group) in &groups {
        let keys: Vec<String> = (0..group.len()).map(|i| format!("k:{i}")).collect();
        let entries: Vec<(&str, &[u8])> = group
            .iter()
            .zip(&keys)
            .map(|(v, k)| (k.as_str(), v.value.as_slice()))
            .collect();
        let results = plugins[extractor]
            .extract_batch(&entries, options)
            .expect("batch call");
        assert_eq!(results.len(), group.len());
        for (v, r) in group.iter().zip(results) {
            check(v, "batch", guest_result(&v.name, r));
        }
    }

    // A larger batch mixing values that extract and values that fail, repeated so
    // the guest's cached options and its allocator are exercised.
    let json: Vec<&Vector> = vectors
        .iter()
        .filter(|v| v.extractor == "json_path" && v.options == r#"{"path":"$.city"}"#)
        .collect();
    assert!(json.len() >= 2, "vectors with $.city");
    let mixed: Vec<&Vector> = json.iter().cycle().take(500).copied().collect();
    let entries: Vec<(&str, &[u8])> = mixed.iter().map(|v| ("k", v.value.as_slice())).collect();
    for _ in 0..3 {
        let results = plugins["json_path"]
            .extract_batch(&entries, r#"{"path":"$.city"}"#)
            .expect("batch call");
        for (v, r) in mixed.iter().zip(results) {
            check(v, "large batch", guest_result(&v.name, r));
        }
    }
    // Only the single calls of the vectors that are errors failed (a batch call
    // succeeds as a whole, with one result per entry).
    for (name, plugin) in &plugins {
        let errors = vectors
            .iter()
            .filter(|v| v.extractor == *name && v.expected_error)
            .count();
        assert_eq!(plugin.stats().errors(), errors as u64, "{name}");
    }
}

#[test]
fn bad_options_are_the_error_of_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = PluginStore::open(dir.path(), host()).expect("store");
    let plugins = register(&store);
    let value = br#"{"city": "Recife"}"#;
    let cases: [(&str, &str, &str); 7] = [
        ("json_path", "{}", "option \"path\" is required"),
        ("json_path", r#"{"path": "city"}"#, "invalid path \"city\""),
        ("json_path", r#"{"path": 3}"#, "must be text"),
        (
            "json_path",
            r#"{"path": "$.a", "paht": 1}"#,
            "unknown option \"paht\"",
        ),
        ("json_path", "not json", "not valid JSON"),
        ("bson_path", r#"{"path": "$[x]"}"#, "invalid path"),
        ("raw", r#"{"path": "$.a"}"#, "takes none"),
    ];
    for (name, options, expected) in cases {
        let plugin = &plugins[name];
        match plugin.extract("k", value, options) {
            Err(PluginError::Guest { plugin: p, message }) => {
                assert_eq!(p, name);
                assert!(message.contains(expected), "{name} {options}: {message}");
            }
            other => panic!("{name} {options}: {other:?}"),
        }
        let results = plugin
            .extract_batch(&[("a", value), ("b", value)], options)
            .expect("batch call");
        assert_eq!(results.len(), 2);
        for r in results {
            assert!(
                matches!(&r, Err(PluginError::Guest { message, .. }) if message.contains(expected)),
                "{name} {options}: {r:?}"
            );
        }
    }
    // The same plugin still works with good options afterwards.
    assert_eq!(
        plugins["json_path"]
            .extract("k", value, r#"{"path": "$.city"}"#)
            .expect("good options"),
        vec![Term::Text("Recife".into())]
    );
}
