//! The example plugins of `plugins-examples/` (the Rust and WAT ones), built with
//! `plugins-examples/build.sh` and run through the plugin host: each behaves as its
//! README says.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use common::guests;
use lsm::plugin::{Limits, Plugin, PluginError, PluginHost, PluginStore, World};
use lsm_extract::Term;

/// The examples this test covers (Python and JavaScript ones have their own).
const EXAMPLES: [&str; 3] = ["rust-email-domain", "rust-csv-codec", "wat-key-prefix"];

struct Registered {
    _dir: tempfile::TempDir,
    _store: PluginStore,
    plugins: Vec<(&'static str, Arc<Plugin>)>,
}

/// The examples, built once and registered in one store for the whole process.
fn plugin(name: &str) -> Arc<Plugin> {
    static REGISTERED: OnceLock<Registered> = OnceLock::new();
    let registered = REGISTERED.get_or_init(|| {
        let dist = guests::example_plugins(&EXAMPLES);
        let dir = tempfile::tempdir().expect("tempdir");
        let host = PluginHost::new(Limits::default()).expect("host");
        let store = PluginStore::open(dir.path(), host).expect("store");
        let plugins = EXAMPLES
            .iter()
            .map(|&name| {
                let wasm = guests::read(dist, &format!("{name}.wasm"));
                let started = Instant::now();
                let plugin = store.put(name, &wasm).expect(name);
                eprintln!(
                    "{name}.wasm: {} bytes, PluginStore::put {:?}",
                    wasm.len(),
                    started.elapsed()
                );
                (name, plugin)
            })
            .collect();
        Registered {
            _dir: dir,
            _store: store,
            plugins,
        }
    });
    registered
        .plugins
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| Arc::clone(p))
        .unwrap_or_else(|| panic!("no example {name}"))
}

fn text(s: &str) -> Term {
    Term::Text(s.into())
}

fn guest_error<T: std::fmt::Debug>(r: Result<T, PluginError>) -> String {
    match r {
        Err(PluginError::Guest { message, .. }) => message,
        other => panic!("expected the plugin's own error, got {other:?}"),
    }
}

#[test]
fn email_domain_indexes_the_lowercased_domain() {
    let p = plugin("rust-email-domain");
    assert_eq!(p.world(), World::Extractor);
    let extract = |value: &str, options: &str| p.extract("users:1", value.as_bytes(), options);

    assert_eq!(
        extract(r#"{"name": "Ana", "email": "Ana@Example.COM"}"#, "{}").expect("default path"),
        vec![text("example.com")]
    );
    assert_eq!(
        extract(
            r#"{"emails": ["a@x.org", "b@Y.org"]}"#,
            r#"{"path": "$.emails"}"#
        )
        .expect("array"),
        vec![text("x.org"), text("y.org")]
    );
    assert_eq!(
        extract(
            r#"{"contact": {"email": " Bo@Mail.Example.NET "}}"#,
            r#"{"path": "$.contact.email"}"#
        )
        .expect("nested"),
        vec![text("mail.example.net")]
    );
    for value in [
        r#"{"email": "not an address"}"#,
        r#"{"name": "Ana"}"#,
        r#"{"email": 42}"#,
    ] {
        assert_eq!(extract(value, "{}").expect(value), vec![], "{value}");
    }
    assert!(guest_error(extract("not json", "{}")).contains("not JSON"));
    assert!(guest_error(extract("{}", r#"{"path": "email"}"#)).contains("invalid path"));
    assert!(guest_error(extract("{}", r#"{"field": "$.a"}"#)).contains("unknown option"));

    let values: [&[u8]; 3] = [br#"{"email": "x@A.io"}"#, b"{", br#"{"email": "y@b.io"}"#];
    let results = p
        .extract_batch(
            &[("a", values[0]), ("b", values[1]), ("c", values[2])],
            "{}",
        )
        .expect("batch");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().expect("a"), &vec![text("a.io")]);
    assert!(results[1].is_err());
    assert_eq!(results[2].as_ref().expect("c"), &vec![text("b.io")]);
}

#[test]
fn key_prefix_indexes_the_part_before_the_first_colon() {
    let p = plugin("wat-key-prefix");
    assert_eq!(p.world(), World::Extractor);
    let cases: [(&str, Vec<Term>); 6] = [
        ("users:42", vec![text("users")]),
        ("orders:2024:17", vec![text("orders")]),
        ("é:1", vec![text("é")]),
        ("settings", vec![]),
        (":x", vec![]),
        ("", vec![]),
    ];
    for (key, terms) in &cases {
        assert_eq!(
            &p.extract(key, b"any value", r#"{"ignored": true}"#)
                .expect(key),
            terms,
            "{key}"
        );
    }
    // Batches, large enough to grow the plugin's memory, and repeated: its heap is
    // freed after every call.
    let keys: Vec<String> = (0..5000)
        .map(|i| match i % 3 {
            0 => format!("p{}:{i}", i % 7),
            1 => format!("nocolon{i}"),
            _ => format!("{}:x", "k".repeat(i % 300 + 1)),
        })
        .collect();
    let entries: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), &b""[..])).collect();
    for _ in 0..3 {
        let results = p.extract_batch(&entries, "{}").expect("batch");
        assert_eq!(results.len(), keys.len());
        for (key, r) in keys.iter().zip(results) {
            let expected: Vec<Term> = match key.split_once(':') {
                Some((prefix, _)) if !prefix.is_empty() => vec![text(prefix)],
                _ => vec![],
            };
            assert_eq!(r.expect(key), expected, "{key}");
        }
    }
    assert_eq!(p.stats().errors(), 0);
}

#[test]
fn csv_codec_round_trips_scalar_objects() {
    let p = plugin("rust-csv-codec");
    assert_eq!(p.world(), World::Codec);

    let json = r#"{"city":"Recife","age":30,"active":true,"nick":null}"#;
    let stored = p.encode(json).expect("encode");
    assert_eq!(
        String::from_utf8(stored.clone()).expect("utf-8"),
        "city,age,active,nick\n\"Recife\",30,true,\n"
    );
    assert_eq!(p.decode(&stored).expect("decode"), json);
    p.validate(&stored).expect("validate");

    for json in [
        "{}",
        r#"{"zeta":1,"alpha":"1","":"","a,b":"say \"hi\"\nbye","f":-2.5,"t":"true"}"#,
        r#"{"big":18446744073709551615,"neg":-9223372036854775808}"#,
    ] {
        let stored = p.encode(json).expect(json);
        p.validate(&stored).expect(json);
        assert_eq!(
            p.decode(&stored).expect(json),
            json,
            "field order and types kept"
        );
    }

    assert!(guest_error(p.encode("[1, 2]")).contains("object"));
    assert!(guest_error(p.encode(r#"{"tags": ["a"]}"#)).contains("\"tags\""));
    assert!(guest_error(p.encode("{")).contains("not JSON"));
    for bad in [
        &b"city\nRecife\n"[..],
        b"a,b\n1\n",
        b"a\n1\n2\n",
        b"a,a\n1,2\n",
        b"\xff",
        b"",
    ] {
        let why = guest_error(p.validate(bad));
        assert!(!why.is_empty());
        assert_eq!(guest_error(p.decode(bad)), why);
    }
    assert_eq!(
        p.decode(b"a,b\r\n\"x\",1\r\n").expect("CRLF"),
        r#"{"a":"x","b":1}"#
    );
    assert!(matches!(
        p.extract("k", b"", "{}"),
        Err(PluginError::WrongKind { .. })
    ));
}
