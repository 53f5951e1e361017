//! The example plugins of `plugins-examples/`, written in Python (componentize-py) and
//! JavaScript (componentize-js), built by their own build scripts and run by the host:
//! they load, answer `extract` and `extract-batch` as documented, return their errors as
//! error strings, and reload from the artifact cache without compiling.
//!
//! The build scripts need `python3` with pip and `node` with npm; they install their
//! pinned toolchains themselves (see `.ci/run`). Building takes a minute or two, once
//! per test process. With `LSM_PLUGIN_EXAMPLES_DIST=<dir>` the components already in
//! `<dir>` are used instead of building them.
//!
//! Timings are printed (`-- --nocapture` shows them); nothing asserts on them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use lsm::plugin::{Limits, Plugin, PluginError, PluginHost, PluginStore, World};
use lsm_extract::Term;

const PYTHON: &str = "city-normalizer";
const JS: &str = "tags";

/// ~200 bytes: a typical document of the examples' READMEs.
const SAMPLE: &str = r#"{"id":4711,"name":"Zoë Ångström","email":"zoe@example.com","address":{"street":"Rua Augusta 24","city":"  São   PAULO ","country":"BR"},"tags":["Admin","beta  Tester ","admin",42],"year":2021,"active":true}"#;
const CITY_OPTIONS: &str = r#"{"field": "address.city"}"#;
const TAG_OPTIONS: &str = r#"{"field": "tags", "integer_field": "year"}"#;

/// The components and a store where both were registered (compiled once each).
struct Fixture {
    python: Vec<u8>,
    js: Vec<u8>,
    dir: tempfile::TempDir,
    store: PluginStore,
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins-examples")
}

/// Runs an example's `build.sh`; its output is shown only when it fails.
fn build(script: &str) -> Result<Duration, String> {
    let path = examples_dir().join(script);
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(&path)
        .output()
        .map_err(|e| format!("running {}: {e}", path.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}); it needs python3 with pip and node with npm.\n--- stdout\n{}\n--- stderr\n{}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    Ok(started.elapsed())
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    let path = dir.join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn host() -> Arc<PluginHost> {
    PluginHost::new(Limits::default()).expect("host")
}

/// Builds both examples (in parallel) and registers them, once per test process.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dist = match std::env::var_os("LSM_PLUGIN_EXAMPLES_DIST") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let (python, js) = std::thread::scope(|s| {
                    let python = s.spawn(|| build("python-city-normalizer/build.sh"));
                    let js = s.spawn(|| build("js-tags/build.sh"));
                    (
                        python.join().expect("python build"),
                        js.join().expect("js build"),
                    )
                });
                let python = python.unwrap_or_else(|e| panic!("{e}"));
                let js = js.unwrap_or_else(|e| panic!("{e}"));
                println!(
                    "polyglot: built both examples in parallel: python {:.1} s, js {:.1} s",
                    python.as_secs_f64(),
                    js.as_secs_f64()
                );
                examples_dir().join("dist")
            }
        };
        let python = read(&dist, "city-normalizer.wasm");
        let js = read(&dist, "tags.wasm");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = PluginStore::open(dir.path(), host()).expect("store");
        for (name, wasm) in [(PYTHON, &python), (JS, &js)] {
            let started = Instant::now();
            let plugin = store
                .put(name, wasm)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(plugin.world(), World::Extractor);
            println!(
                "polyglot: {name}: {} bytes, PluginStore::put (compile + cache) {:.2} s",
                wasm.len(),
                started.elapsed().as_secs_f64()
            );
        }
        Fixture {
            python,
            js,
            dir,
            store,
        }
    })
}

fn plugin(name: &str) -> Arc<Plugin> {
    fixture().store.get(name).expect("registered")
}

fn text(s: &str) -> Term {
    Term::Text(s.to_string())
}

/// The plugin's own error message, or a panic naming what came instead.
fn guest_error(result: Result<Vec<Term>, PluginError>, plugin: &str) -> String {
    match result {
        Err(PluginError::Guest { plugin: p, message }) if p == plugin => message,
        other => panic!("expected an error from {plugin}, got {other:?}"),
    }
}

/// Prints the time of single calls and of a batch of 1000 on `SAMPLE` (warm
/// instances), after checking that each agrees with `expected`.
fn measure(plugin: &Plugin, options: &str, expected: &[Term]) {
    let calls = 1000;
    let started = Instant::now();
    for i in 0..calls {
        let key = format!("users:{i}");
        let terms = plugin
            .extract(&key, SAMPLE.as_bytes(), options)
            .expect("call");
        assert_eq!(terms, expected);
    }
    let single = started.elapsed() / calls;
    let keys: Vec<String> = (0..1000).map(|i| format!("users:{i}")).collect();
    let entries: Vec<(&str, &[u8])> = keys
        .iter()
        .map(|k| (k.as_str(), SAMPLE.as_bytes()))
        .collect();
    let started = Instant::now();
    let results = plugin.extract_batch(&entries, options).expect("batch");
    let batch = started.elapsed();
    assert_eq!(results.len(), entries.len());
    for result in results {
        assert_eq!(result.expect("entry"), expected);
    }
    println!(
        "polyglot: {}: {}-byte value: extract {:.1} µs/call, extract_batch x1000 {:.1} ms ({:.1} µs/entry)",
        plugin.name(),
        SAMPLE.len(),
        single.as_secs_f64() * 1e6,
        batch.as_secs_f64() * 1e3,
        batch.as_secs_f64() * 1e6 / entries.len() as f64,
    );
}

#[test]
fn python_city_normalizer_indexes_normalized_city_names() {
    let p = plugin(PYTHON);
    let call = |value: &str, options: &str| p.extract("users:1", value.as_bytes(), options);

    assert_eq!(
        call(SAMPLE, CITY_OPTIONS).expect("sample"),
        [text("sao paulo")]
    );
    // Accents stripped, case folded, spaces collapsed; letters without a decomposition
    // spelled in Latin letters; `field` defaults to "city".
    for (city, normalized) in [
        ("Łódź", "lodz"),
        ("København", "kobenhavn"),
        ("Straße", "strasse"),
        ("Saint-\tÉtienne", "saint- etienne"),
        ("ＴＯＫＹＯ", "tokyo"),
        ("Αθήνα", "αθηνα"),
        ("東京", "東京"),
    ] {
        let value = serde_json::json!({ "city": city }).to_string();
        assert_eq!(
            call(&value, "{}").expect(city),
            [text(normalized)],
            "{city}"
        );
    }
    // A list gives one term per distinct name; no field, null or blank gives none.
    assert_eq!(
        call(r#"{"city": ["Zürich", "ZURICH ", null]}"#, "{}").expect("list"),
        [text("zurich")]
    );
    for value in [
        r#"{"name": "x"}"#,
        r#"{"city": null}"#,
        r#"{"city": "  "}"#,
        "[1]",
    ] {
        assert_eq!(call(value, "{}").expect(value), [], "{value}");
    }

    // Errors are the plugin's error strings, and the plugin keeps working after them.
    let m = guest_error(call("{\"city\": 7}", "{}"), PYTHON);
    assert_eq!(m, "field city holds a number, not text");
    let m = guest_error(call("not json", "{}"), PYTHON);
    assert!(m.starts_with("the value is not JSON"), "{m}");
    let m = guest_error(p.extract("k", &[0xff, 0xfe], "{}"), PYTHON);
    assert!(m.contains("not UTF-8 JSON text"), "{m}");
    let m = guest_error(call(SAMPLE, r#"{"feild": "city"}"#), PYTHON);
    assert_eq!(m, "unknown option(s) feild; known: field");
    let m = guest_error(call(SAMPLE, r#"{"field": ""}"#), PYTHON);
    assert!(m.starts_with("option field must be"), "{m}");
    let m = guest_error(call(SAMPLE, "[]"), PYTHON);
    assert!(m.starts_with("options must be a JSON object"), "{m}");

    // A batch answers entry by entry, errors included.
    let entries: [(&str, &[u8]); 3] = [
        ("a", r#"{"city": "Münster"}"#.as_bytes()),
        ("b", b"{"),
        ("c", br#"{"town": "Ulm"}"#),
    ];
    let results = p.extract_batch(&entries, "{}").expect("batch");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().expect("a"), &[text("munster")]);
    assert!(
        matches!(&results[1], Err(PluginError::Guest { message, .. }) if message.starts_with("the value is not JSON")),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().expect("c"), &[]);
    assert_eq!(
        p.extract_batch(&[], "{}").expect("empty batch").len(),
        0,
        "an empty batch"
    );

    measure(&p, CITY_OPTIONS, &[text("sao paulo")]);
    assert_eq!(p.stats().errors(), 6, "the six refused calls above");
}

#[test]
fn js_tags_indexes_lowercased_tags_and_an_integer_field() {
    let p = plugin(JS);
    let call = |value: &str, options: &str| p.extract("posts:1", value.as_bytes(), options);
    let sample_terms = [
        text("admin"),
        text("beta tester"),
        text("42"),
        Term::Integer(2021),
    ];

    assert_eq!(call(SAMPLE, TAG_OPTIONS).expect("sample"), sample_terms);
    // Without `integer_field` only the tags; `field` defaults to "tags" and may be a
    // dotted path; a single string is one tag.
    assert_eq!(
        call(SAMPLE, "{}").expect("defaults"),
        sample_terms[..3].to_vec()
    );
    assert_eq!(
        call(
            r#"{"meta": {"labels": "  Rust  WASM "}}"#,
            r#"{"field": "meta.labels"}"#
        )
        .expect("path"),
        [text("rust wasm")]
    );
    // Integers: a list of them, negative ones, the largest exactly readable one, nulls
    // skipped.
    assert_eq!(
        call(
            r#"{"tags": [], "ids": [-3, 9007199254740991, 7.0, null]}"#,
            r#"{"integer_field": "ids"}"#
        )
        .expect("integers"),
        [
            Term::Integer(-3),
            Term::Integer(9_007_199_254_740_991),
            Term::Integer(7)
        ]
    );
    for value in [
        r#"{"tags": null}"#,
        r#"{"other": 1}"#,
        r#"["tags"]"#,
        r#"{"tags": ["", " "]}"#,
    ] {
        assert_eq!(call(value, TAG_OPTIONS).expect(value), [], "{value}");
    }

    let m = guest_error(call(r#"{"tags": ["a", {"b": 1}]}"#, "{}"), JS);
    assert_eq!(m, "tags[1] is an object; tags are text");
    let m = guest_error(call(r#"{"year": 20.5}"#, TAG_OPTIONS), JS);
    assert_eq!(m, "year holds 20.5, not an integer");
    let m = guest_error(call(r#"{"year": "2021"}"#, TAG_OPTIONS), JS);
    assert_eq!(m, "year holds a string, not an integer");
    let m = guest_error(call(r#"{"year": 18446744073709551616}"#, TAG_OPTIONS), JS);
    assert!(
        m.contains("beyond the integers JavaScript reads exactly"),
        "{m}"
    );
    let m = guest_error(call("{tags}", "{}"), JS);
    assert!(m.starts_with("the value is not JSON text"), "{m}");
    let m = guest_error(p.extract("k", &[b'"', 0xc3, b'"'], "{}"), JS);
    assert!(m.starts_with("the value is not JSON text"), "{m}");
    let m = guest_error(call(SAMPLE, r#"{"field": "tags", "colour": 1}"#), JS);
    assert_eq!(m, "unknown option(s) colour; known: field, integer_field");
    let m = guest_error(call(SAMPLE, r#"{"integer_field": "a..b"}"#), JS);
    assert!(m.starts_with("option integer_field must be"), "{m}");
    let m = guest_error(call(SAMPLE, "not json"), JS);
    assert!(m.starts_with("options are not JSON"), "{m}");

    let entries: [(&str, &[u8]); 3] = [
        ("a", br#"{"tags": ["X"], "year": 1}"#),
        ("b", br#"{"tags": [[]]}"#),
        ("c", br#"{}"#),
    ];
    let results = p.extract_batch(&entries, TAG_OPTIONS).expect("batch");
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0].as_ref().expect("a"),
        &[text("x"), Term::Integer(1)]
    );
    assert!(
        matches!(&results[1], Err(PluginError::Guest { message, .. }) if message == "tags[0] is a list; tags are text"),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().expect("c"), &[]);

    measure(&p, TAG_OPTIONS, &sample_terms);
    assert_eq!(p.stats().errors(), 9, "the nine refused calls above");
}

#[test]
fn both_reload_from_cached_artifacts_without_compiling() {
    let fixture = fixture();
    let h = host();
    let started = Instant::now();
    let store = PluginStore::open(fixture.dir.path(), Arc::clone(&h)).expect("reopen");
    let opened = started.elapsed();
    assert_eq!(h.compiles(), 0, "loaded from the artifact cache");
    let names: Vec<String> = store.registered().into_iter().map(|r| r.name).collect();
    assert_eq!(names, [PYTHON, JS]);
    let python = store.get(PYTHON).expect("python");
    let js = store.get(JS).expect("js");
    assert_eq!(python.size(), fixture.python.len() as u64);
    assert_eq!(js.size(), fixture.js.len() as u64);
    // The first call of each instantiates it.
    let started = Instant::now();
    assert_eq!(
        python
            .extract("k", SAMPLE.as_bytes(), CITY_OPTIONS)
            .expect("python"),
        [text("sao paulo")]
    );
    let python_first = started.elapsed();
    let started = Instant::now();
    assert_eq!(
        js.extract("k", br#"{"tags": ["A"]}"#, "{}").expect("js"),
        [text("a")]
    );
    let js_first = started.elapsed();
    assert_eq!(h.compiles(), 0);
    let artifacts: u64 = std::fs::read_dir(fixture.dir.path().join("cache"))
        .expect("cache")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum();
    println!(
        "polyglot: reopening the store with both plugins: {:.0} ms (artifacts: {} MB); first call (instantiation): {PYTHON} {:.1} ms, {JS} {:.1} ms",
        opened.as_secs_f64() * 1e3,
        artifacts >> 20,
        python_first.as_secs_f64() * 1e3,
        js_first.as_secs_f64() * 1e3,
    );
}
