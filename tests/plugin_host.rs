//! The plugin host with real components: calls, the sandbox's limits, hostile plugins,
//! validation of uploads, and the precompiled-artifact cache.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::plugins::{self, ECHO_KEY, ERR_OPTIONS, GARBAGE, INFINITE_LOOP, MEMORY_BOMB, TRAP};
use lsm::plugin::{Limits, PluginError, PluginHost, PluginStore, World};
use lsm_extract::Term;

fn host() -> Arc<PluginHost> {
    PluginHost::new(Limits {
        deadline: Duration::from_millis(200),
        memory: 16 << 20,
        ..Limits::default()
    })
    .expect("host")
}

#[test]
fn a_plugin_is_called_singly_and_in_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = PluginStore::open(dir.path(), host()).expect("store");
    let plugin = store
        .put("echo", &plugins::extractor(ECHO_KEY))
        .expect("put");
    assert_eq!(plugin.world(), World::Extractor);
    assert_eq!(
        plugin.extract("users:1", b"{}", "{}").expect("extract"),
        vec![Term::Text("users:1".into())]
    );
    let entries: Vec<(String, Vec<u8>)> =
        (0..100).map(|i| (format!("k{i}"), vec![i as u8])).collect();
    let refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let results = plugin.extract_batch(&refs, "{}").expect("batch");
    assert_eq!(results.len(), 100);
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.expect("entry"), vec![Term::Text(format!("k{i}"))]);
    }
    // Many calls reuse instances and do not leak memory (the heap resets after calls).
    for i in 0..2000 {
        let key = format!("key-{i}-{}", "x".repeat(i % 500));
        assert_eq!(
            plugin.extract(&key, &[], "{}").expect("extract"),
            vec![Term::Text(key)]
        );
    }
    assert_eq!(plugin.stats().calls(), 2002);
    assert_eq!(plugin.stats().errors(), 0);
}

#[test]
fn hostile_plugins_get_clear_errors_and_others_carry_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = PluginStore::open(dir.path(), host()).expect("store");
    let echo = store
        .put("echo", &plugins::extractor(ECHO_KEY))
        .expect("echo");
    type Expect = fn(&PluginError) -> bool;
    let cases: [(&str, &str, Expect); 5] = [
        (
            "spin",
            INFINITE_LOOP,
            |e| matches!(e, PluginError::Timeout { plugin, deadline_ms: 200 } if plugin == "spin"),
        ),
        (
            "bomb",
            MEMORY_BOMB,
            |e| matches!(e, PluginError::OutOfMemory { plugin, limit } if plugin == "bomb" && *limit == 16 << 20),
        ),
        (
            "trap",
            TRAP,
            |e| matches!(e, PluginError::Trap { plugin, .. } if plugin == "trap"),
        ),
        (
            "garbage",
            GARBAGE,
            |e| matches!(e, PluginError::BadOutput { plugin, .. } if plugin == "garbage"),
        ),
        (
            "refuses",
            ERR_OPTIONS,
            |e| matches!(e, PluginError::Guest { plugin, message } if plugin == "refuses" && message == "{\"why\":1}"),
        ),
    ];
    for (name, body, expected) in cases {
        let plugin = store.put(name, &plugins::extractor(body)).expect(name);
        for round in 0..2 {
            let started = Instant::now();
            let error = plugin.extract("k", b"v", "{\"why\":1}").expect_err(name);
            assert!(expected(&error), "{name} round {round}: {error:?}");
            assert!(error.to_string().contains(name), "{error}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{name} took {:?}",
                started.elapsed()
            );
            // The well-behaved plugin is unaffected.
            assert_eq!(
                echo.extract("still", b"", "{}").expect("echo"),
                vec![Term::Text("still".into())]
            );
        }
        assert_eq!(plugin.stats().errors(), 2);
    }
}

#[test]
fn uploads_that_are_not_plugins_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = PluginStore::open(dir.path(), host()).expect("store");
    let invalid = |e: PluginError| match e {
        PluginError::Invalid(m) | PluginError::WrongWorld(m) => m,
        other => panic!("unexpected {other:?}"),
    };
    let m = invalid(
        store
            .put("text", b"this is not wasm at all")
            .expect_err("text"),
    );
    assert!(m.contains("not WebAssembly"), "{m}");
    let m = invalid(
        store
            .put("core", &plugins::core_module(ECHO_KEY))
            .expect_err("core"),
    );
    assert!(m.contains("core WebAssembly module"), "{m}");
    let m = invalid(
        store
            .put("other", &plugins::foreign_component())
            .expect_err("foreign"),
    );
    assert!(
        m.contains("test:other/api@1.0.0") && m.contains("lsm:plugin/extract@0.1.0"),
        "{m}"
    );
    let mut truncated = plugins::extractor(ECHO_KEY);
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        store.put("cut", &truncated),
        Err(PluginError::Invalid(_))
    ));
    assert!(matches!(
        store.put("../evil", &plugins::extractor(ECHO_KEY)),
        Err(PluginError::Invalid(_))
    ));
    assert!(store.registered().is_empty(), "nothing was registered");
}

#[test]
fn plugins_reload_from_cached_artifacts_without_compiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = plugins::extractor(ECHO_KEY);
    {
        let h = host();
        let store = PluginStore::open(dir.path(), Arc::clone(&h)).expect("store");
        store.put("echo", &wasm).expect("put");
        store.put("same-bytes", &wasm).expect("put");
        assert_eq!(h.compiles(), 1, "the same component is compiled once");
    }
    let h = host();
    let store = PluginStore::open(dir.path(), Arc::clone(&h)).expect("reopen");
    assert_eq!(h.compiles(), 0, "loaded from the artifact cache");
    let echo = store.get("echo").expect("registered");
    assert_eq!(
        echo.extract("a", b"", "{}").expect("call"),
        vec![Term::Text("a".into())]
    );

    // A damaged artifact is not loaded: the plugin is compiled again.
    let cache = dir.path().join("cache");
    for entry in std::fs::read_dir(&cache).expect("cache") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            let mut bytes = std::fs::read(&path).expect("read");
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, bytes).expect("write");
        }
    }
    let h = host();
    let store = PluginStore::open(dir.path(), Arc::clone(&h)).expect("reopen");
    assert_eq!(
        h.compiles(),
        1,
        "recompiled once (both names share the bytes)"
    );
    assert_eq!(
        store
            .get("same-bytes")
            .expect("p")
            .extract("b", b"", "{}")
            .expect("call")
            .len(),
        1
    );

    // Deleting both names removes the blob and its artifacts.
    store.delete("echo", None).expect("delete");
    store.delete("same-bytes", None).expect("delete");
    assert!(matches!(store.get("echo"), Err(PluginError::NotFound(_))));
    let left: Vec<_> = std::fs::read_dir(dir.path().join("blobs"))
        .expect("blobs")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn replacing_is_atomic_and_deleting_a_used_plugin_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = PluginStore::open(dir.path(), host()).expect("store");
    let v1 = store.put("p", &plugins::extractor(ECHO_KEY)).expect("v1");
    let v2 = store
        .put("p", &plugins::extractor(ERR_OPTIONS))
        .expect("v2");
    assert_ne!(v1.sha256(), v2.sha256());
    // A caller holding v1 keeps working; new lookups get v2.
    assert!(v1.extract("k", b"", "{}").is_ok());
    assert!(matches!(
        store.get("p").expect("p").extract("k", b"", "x"),
        Err(PluginError::Guest { .. })
    ));
    // A failed replacement leaves the old version.
    assert!(store.put("p", b"garbage").is_err());
    assert_eq!(store.get("p").expect("p").sha256(), v2.sha256());
    let e = store
        .delete("p", Some("index by_city".into()))
        .expect_err("in use");
    assert!(e.to_string().contains("by_city"), "{e}");
    assert!(store.get("p").is_ok());
}
