//! The `lsm` client commands and `lsm repl --url`, run as a script would, against a
//! server started in this process.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use common::cli::{code, lsm_command, stderr, stdout};
use lsm::config::{BuiltinCodec, CodecConfig, Config};
use lsm::server::Server;

const TOKEN: &str = "s3cret-token";

/// A server with the instances `default` (raw), `other` (raw) and `docs` (json), and an
/// admin token.
fn start_server(dir: &Path) -> Server {
    let mut config = Config::embedded_default();
    config.instances[0].data_dir = dir.join("default");
    let mut other = config.instances[0].clone();
    other.name = "other".into();
    other.data_dir = dir.join("other");
    let mut docs = config.instances[0].clone();
    docs.name = "docs".into();
    docs.data_dir = dir.join("docs");
    docs.codec = CodecConfig::Builtin(BuiltinCodec::Json);
    config.instances.push(other);
    config.instances.push(docs);
    config.server.admin_token = Some(TOKEN.into());
    Server::start(config, "127.0.0.1:0").expect("start the server")
}

/// Runs `lsm <args> --url <url>`.
fn lsm(url: &str, args: &[&str]) -> Output {
    lsm_command(args)
        .args(["--url", url])
        .stdin(Stdio::null())
        .output()
        .expect("run lsm")
}

/// Runs `lsm repl --url <url> <args>` with `input` on standard input.
fn repl(url: &str, args: &[&str], input: &str) -> Output {
    let mut child = lsm_command(&["repl", "--url", url])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lsm");
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    // A repl that fails at start may exit before it reads its input.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("wait")
}

#[test]
fn get_set_delete_with_awkward_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let url = server.url();

    let keys = [
        "plain",
        "with spaces/and/slashes",
        "ünïcødé ✓",
        "batch",
        "search",
        "..",
        "q?x=1&y=%41#frag",
        "+plus",
    ];
    for (i, key) in keys.iter().enumerate() {
        let value = format!("value {i} of {key}");
        let out = lsm(&url, &["set", key, &value]);
        assert_eq!(code(&out), 0, "set {key:?}: {out:?}");
        assert_eq!(stdout(&out), "OK\n");
        let out = lsm(&url, &["get", key]);
        assert_eq!(code(&out), 0, "get {key:?}: {out:?}");
        assert_eq!(stdout(&out), format!("{value}\n"), "get {key:?}");
    }
    // The keys are stored as given, not in an encoded form.
    let out = lsm(&url, &["scan", "--keys-only"]);
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    assert_eq!(stdout(&out), format!("{}\n", sorted.join("\n")));

    // A missing key: nothing on stdout, `(nil)` on stderr, exit code 1.
    let out = lsm(&url, &["get", "missing"]);
    assert_eq!(code(&out), 1, "{out:?}");
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out).trim(), "(nil)");

    let out = lsm(&url, &["delete", "batch"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "OK\n"));
    assert_eq!(code(&lsm(&url, &["get", "batch"])), 1);
    assert_eq!(code(&lsm(&url, &["get", "search"])), 0, "search survives");

    // Values that start with a dash are values.
    let out = lsm(&url, &["set", "n", "-1"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&lsm(&url, &["get", "n"])), "-1\n");

    // An empty key is refused before any request.
    let out = lsm(&url, &["get", ""]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("must not be empty"), "{out:?}");
    server.stop().expect("stop");
}

#[test]
fn binary_and_json_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let url = server.url();

    // Bytes that are not UTF-8, written through the API.
    let agent = ureq::Agent::new_with_defaults();
    agent
        .post(format!("{url}/keys"))
        .send_json(serde_json::json!({"key": "bin", "value_base64": "/wBh"}))
        .expect("put bytes");
    let out = lsm(&url, &["get", "bin"]);
    assert_eq!(stdout(&out), "(binary, 3 bytes) 0xff0061\n");
    let out = lsm(&url, &["get", "--raw", "bin"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(out.stdout, [0xff, 0x00, b'a']);
    assert_eq!(code(&lsm(&url, &["get", "--raw", "nope"])), 1);

    // A json instance: --json sends JSON, else the value is a string.
    let docs = ["--instance", "docs"];
    let out = lsm(
        &url,
        &[&["set", "d", r#"{"a": [1, 2]}"#, "--json"], &docs[..]].concat(),
    );
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(
        stdout(&lsm(&url, &[&["get", "d"], &docs[..]].concat())),
        "{\"a\":[1,2]}\n"
    );
    let out = lsm(&url, &[&["set", "s", "plain text"], &docs[..]].concat());
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(
        stdout(&lsm(&url, &[&["get", "s"], &docs[..]].concat())),
        "plain text\n"
    );
    let out = lsm(&url, &["set", "bad", "{not json", "--json"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("not JSON"), "{out:?}");
    // The raw instance refuses a JSON object, with the server's code.
    let out = lsm(&url, &["set", "obj", "{}", "--json"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).starts_with("error: "), "{out:?}");
    assert!(stderr(&out).contains("(invalid-value)"), "{out:?}");
    server.stop().expect("stop");
}

#[test]
fn scan_follows_the_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let url = server.url();
    for (key, value) in [
        ("k1", "a"),
        ("k2", "b"),
        ("k3", "c"),
        ("k4", "d"),
        ("k5", "e"),
    ] {
        assert_eq!(code(&lsm(&url, &["set", key, value])), 0);
    }
    assert_eq!(code(&lsm(&url, &["set", "other", "x"])), 0);

    let out = lsm(&url, &["scan", "--prefix", "k", "--limit", "2"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out), "k1 = a\nk2 = b\nk3 = c\nk4 = d\nk5 = e\n");
    let out = lsm(&url, &["scan", "--limit", "1", "--keys-only"]);
    assert_eq!(stdout(&out), "k1\nk2\nk3\nk4\nk5\nother\n");
    let out = lsm(&url, &["scan", "--prefix", "nothing"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, ""));
    // A bad limit is the server's error.
    let out = lsm(&url, &["scan", "--limit", "0"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("(invalid-parameter)"), "{out:?}");
    server.stop().expect("stop");
}

#[test]
fn instances_and_stats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let url = server.url();

    assert_eq!(
        code(&lsm(&url, &["set", "k", "in other", "--instance", "other"])),
        0
    );
    assert_eq!(
        code(&lsm(&url, &["get", "k"])),
        1,
        "the default instance is separate"
    );
    let out = lsm(&url, &["get", "k", "--instance", "other"]);
    assert_eq!(stdout(&out), "in other\n");

    let out = lsm(&url, &["get", "k", "--instance", "nope"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).starts_with("error: ") && stderr(&out).contains("(instance-not-found)"),
        "{out:?}"
    );
    assert_eq!(code(&lsm(&url, &["scan", "--instance", "nope"])), 2);

    let out = lsm(&url, &["stats", "--instance", "other"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    assert_eq!(stats["instance"], "other");
    assert_eq!(stats["memtable_entries"], 1);
    let out = lsm(&url, &["stats", "--all"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    assert!(stats["tables"].is_array(), "{stats}");
    server.stop().expect("stop");
}

#[test]
fn admin_commands_need_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let url = server.url();
    assert_eq!(code(&lsm(&url, &["set", "a", "1"])), 0);

    let out = lsm(&url, &["compact"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("(unauthorized)"), "{out:?}");
    assert!(stderr(&out).contains("--token"), "{out:?}");
    let out = lsm(&url, &["verify", "--token", "wrong"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("not valid"), "{out:?}");

    let out = lsm(&url, &["compact", "--token", TOKEN]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).starts_with("OK (1 tables, "), "{out:?}");
    let out = lsm_command(&["verify", "--url", &url])
        .env("LSM_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("run lsm");
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("ok   table ")),
        "{out:?}"
    );
    assert!(stdout(&out).ends_with("files verified)\n"), "{out:?}");
    server.stop().expect("stop");
}

#[test]
fn repl_over_http_while_the_server_holds_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let url = server.url();

    // The directory is the server's: the embedded REPL cannot open it.
    let out = lsm_command(&["repl", "--data-dir"])
        .arg(dir.path().join("default"))
        .stdin(Stdio::null())
        .output()
        .expect("run lsm");
    assert!(!out.status.success(), "{out:?}");

    let out = repl(
        &url,
        &["--token", TOKEN],
        "SET a 1\nSET \"my key/1\" two words\nSET batch b\nGET a\nGET \"my key/1\"\n\
         GET batch\nGET missing\nDELETE a\nGET a\nCOUNT\nKEYS\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "OK",
            "OK",
            "OK",
            "1",
            "two words",
            "b",
            "(nil)",
            "OK",
            "(nil)",
            "2",
            "batch",
            "my key/1",
            "(2 keys)"
        ]
    );

    let out = repl(
        &url,
        &["--token", TOKEN],
        "DEMO\nSCAN users:\nBATCH\nSET x 1\nDELETE users:1\nSET y 2\nEND\n\
         BATCH DELETE users:2; DELETE users:3\nBATCH SET p 1; DELETE q\nCOUNT\n\
         FLUSH\nCOMPACT\nVERIFY\nSTATS\n",
    );
    let text = stdout(&out);
    assert!(!out.status.success(), "FLUSH fails: {out:?}");
    assert!(text.contains("OK (loaded 17 sample keys)"), "{text}");
    assert!(text.contains("users:1 = {\"name\":\"Ana\""), "{text}");
    assert!(text.contains("(10 keys)"), "{text}");
    // Batches that set and delete apply atomically in one request.
    assert!(text.contains("OK (3 operations)"), "{text}");
    assert!(text.contains("OK (2 operations)"), "{text}");
    // 2 keys from before + 17 demo keys + x, y - users:1, users:2, users:3 + p.
    assert!(text.lines().any(|l| l == "19"), "{text}");
    assert!(
        text.contains("ERR FLUSH is not available over HTTP"),
        "{text}"
    );
    assert!(text.contains("OK (1 tables,"), "{text}");
    assert!(text.contains("files verified)"), "{text}");
    assert!(text.contains("\"instance\": \"default\""), "{text}");
    assert_eq!(text.matches("ERR ").count(), 1, "{text}");

    // Another instance, and admin commands without the token.
    let out = repl(&url, &["--instance", "other"], "SET o 1\nKEYS\nCOMPACT\n");
    assert!(!out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.starts_with("OK\no\n(1 keys)\nERR "), "{text}");
    assert!(text.contains("(unauthorized)"), "{text}");

    // An instance that does not exist fails at start.
    let out = repl(&url, &["--instance", "nope"], "GET a\n");
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr(&out).contains("(instance-not-found)"), "{out:?}");
    assert_eq!(stdout(&out), "");
    server.stop().expect("stop");
}

#[test]
fn a_server_that_is_not_running() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = lsm(&url, &["get", "a"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(
        stderr(&out).starts_with(&format!("error: cannot connect to {url}")),
        "{out:?}"
    );
    let out = lsm_command(&["scan"])
        .env("LSM_URL", &url)
        .output()
        .expect("run lsm");
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("cannot connect to"), "{out:?}");

    let out = repl(&url, &[], "GET a\n");
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr(&out).contains("cannot connect to"), "{out:?}");

    let out = lsm("ftp://example.com", &["get", "a"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("only http://"), "{out:?}");
}
