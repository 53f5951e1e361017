//! `lsm plugin upload|list|show|delete|test`, run as a script would, against a server
//! started in this process, with real WebAssembly components written to files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::{admin, code, lsm_command, stderr, stdout};
use common::plugins::{self, ECHO_KEY, ERR_OPTIONS, INFINITE_LOOP};
use lsm::config::{BuiltinCodec, CodecConfig, Config};
use lsm::server::Server;
use serde_json::Value;

const TOKEN: &str = "plugin-cli-token";

/// A server with the instances `default` (raw) and `docs` (json), and an admin token.
fn start_server(dir: &Path) -> Server {
    let mut config = Config::embedded_default();
    config.instances[0].data_dir = dir.join("default");
    let mut docs = config.instances[0].clone();
    docs.name = "docs".into();
    docs.data_dir = dir.join("docs");
    docs.codec = CodecConfig::Builtin(BuiltinCodec::Json);
    config.instances.push(docs);
    config.server.admin_token = Some(TOKEN.into());
    Server::start(config, "127.0.0.1:0").expect("start the server")
}

/// Runs `lsm plugin <args> --url <url> --token TOKEN`.
fn plugin(url: &str, args: &[&str]) -> Output {
    admin("plugin", url, TOKEN, args)
}

/// Writes `bytes` to `dir/name` and returns the path as a string.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).expect("write file");
    path.to_str().expect("UTF-8 path").to_string()
}

#[test]
fn upload_list_show_test_and_delete() {
    let dir = common::scratch_dir();
    let server = start_server(dir.path());
    let url = server.url();
    let echo = write(dir.path(), "echo.wasm", &plugins::extractor(ECHO_KEY));

    let out = plugin(&url, &["upload", "echo", &echo]);
    assert_eq!(code(&out), 0, "{out:?}");
    let size = std::fs::metadata(&echo).expect("size").len();
    let line = stdout(&out);
    assert!(
        line.starts_with(&format!(
            "registered echo (extractor, {size} bytes, sha256 "
        )) && line.ends_with(" ms)\n"),
        "{line}"
    );
    // Uploading again replaces it.
    let out = plugin(&url, &["upload", "echo", &echo]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(
        stdout(&out).starts_with("replaced echo (extractor, "),
        "{out:?}"
    );

    // The terms, one per line; the value in each of its three forms.
    let sample = ["test", "echo", "--key", "Porto Alegre"];
    let value_file = write(dir.path(), "value.bin", b"\xff\x00raw bytes");
    for value in [
        &["--value", r#""Recife""#][..],
        &["--value-base64", "/wBh"],
        &["--value-file", &value_file],
    ] {
        let out = plugin(&url, &[&sample[..], value].concat());
        assert_eq!(code(&out), 0, "{value:?}: {out:?}");
        assert_eq!(stdout(&out), "text \"Porto Alegre\"\n", "{value:?}");
    }
    // The value goes through the instance's codec first, as on a write: the raw codec
    // takes strings only.
    let out = plugin(&url, &[&sample[..], &["--value", "{}"]].concat());
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("(invalid-value)"), "{out:?}");

    let out = plugin(&url, &["list"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "WORLD", "SIZE", "STATUS", "CALLS", "ERRORS", "MEAN_US"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..6],
        ["echo", "extractor", &size.to_string(), "loaded", "3", "0"]
    );
    assert!(row[6].parse::<f64>().is_ok(), "{row:?}");

    let out = plugin(&url, &["show", "echo"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(
        stdout(&out).contains("\n  \"name\": \"echo\""),
        "pretty: {out:?}"
    );
    let shown: Value = serde_json::from_slice(&out.stdout).expect("show prints JSON");
    assert_eq!(shown["status"], "loaded");
    assert_eq!(shown["calls"], 3);
    assert_eq!(shown["sha256"].as_str().map(str::len), Some(64));

    // Plugins belong to their instance; the options may come first.
    let out = lsm_command(&["plugin", "--url", &url, "--instance", "docs", "list"])
        .env("LSM_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("run lsm");
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out).lines().count(), 1, "only the header: {out:?}");

    let out = plugin(&url, &["delete", "echo"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "deleted echo\n"));
    // `show` of a plugin that does not exist is a negative answer, like `get` of a
    // missing key; deleting or testing it is an error.
    let out = plugin(&url, &["show", "echo"]);
    assert_eq!(code(&out), 1, "{out:?}");
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).starts_with("error: ") && stderr(&out).contains("(plugin-not-found)"),
        "{out:?}"
    );
    for args in [
        &["delete", "echo"][..],
        &["test", "echo", "--key", "k", "--value", "1"],
    ] {
        let out = plugin(&url, args);
        assert_eq!(code(&out), 2, "{args:?}: {out:?}");
        assert!(stderr(&out).contains("(plugin-not-found)"), "{out:?}");
    }
    let out = plugin(&url, &["list"]);
    assert_eq!(stdout(&out).lines().count(), 1, "{out:?}");
    server.stop().expect("stop");
}

#[test]
fn failing_plugins_are_negative_answers() {
    let dir = common::scratch_dir();
    let server = start_server(dir.path());
    let url = server.url();

    // An infinite loop, stopped by its own deadline.
    let spin = write(dir.path(), "spin.wasm", &plugins::extractor(INFINITE_LOOP));
    let out = plugin(&url, &["upload", "spin", &spin, "--deadline-ms", "100"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let out = plugin(&url, &["test", "spin", "--key", "k", "--value", r#""v""#]);
    assert_eq!(code(&out), 1, "{out:?}");
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.starts_with("error: ") && err.trim_end().ends_with("(plugin-timeout)"),
        "{err}"
    );
    assert!(err.contains("spin"), "the message names the plugin: {err}");
    let out = plugin(&url, &["show", "spin"]);
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(shown["limits"]["deadline_ms"], 100, "{shown}");
    assert_eq!(shown["errors"], 1, "{shown}");

    // The plugin's own error, with the options it was given.
    let err_plugin = write(dir.path(), "err.wasm", &plugins::extractor(ERR_OPTIONS));
    assert_eq!(code(&plugin(&url, &["upload", "err", &err_plugin])), 0);
    let out = plugin(
        &url,
        &[
            "test",
            "err",
            "--key",
            "k",
            "--value",
            r#""v""#,
            "--options",
            r#"{"lang": "pt"}"#,
        ],
    );
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(stderr(&out).contains(r#"{"lang":"pt"}"#), "{out:?}");
    assert!(stderr(&out).contains("(plugin-error)"), "{out:?}");
    server.stop().expect("stop");
}

#[test]
fn a_codec_plugin_prints_the_decoded_value() {
    let dir = common::scratch_dir();
    let server = start_server(dir.path());
    let url = server.url();
    let codec = write(dir.path(), "codec.wasm", &plugins::json_text_codec());
    let out = plugin(&url, &["upload", "text", &codec, "--instance", "docs"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(
        stdout(&out).starts_with("registered text (codec, "),
        "{out:?}"
    );
    let test = ["test", "text", "--instance", "docs", "--key", "k"];
    let out = plugin(
        &url,
        &[&test[..], &["--value", r#"{"n": [1, 2.5]}"#]].concat(),
    );
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out), "{\"n\":[1,2.5]}\n");
    let out = plugin(&url, &[&test[..], &["--value", "-1"]].concat());
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "-1\n"), "{out:?}");
    // This codec refuses JSON strings: its error is a negative answer.
    let out = plugin(&url, &[&test[..], &["--value", r#""a string""#]].concat());
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(stderr(&out).contains("(plugin-error)"), "{out:?}");
    server.stop().expect("stop");
}

#[test]
fn bad_input_is_an_error() {
    let dir = common::scratch_dir();
    let server = start_server(dir.path());
    let url = server.url();

    // Not WebAssembly: the server says why.
    let text = write(dir.path(), "text.wasm", b"not wasm");
    let out = plugin(&url, &["upload", "text", &text]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).starts_with("error: "), "{out:?}");
    assert!(stderr(&out).contains("(invalid-plugin)"), "{out:?}");

    // No token: the hint says where to put it.
    let echo = write(dir.path(), "echo.wasm", &plugins::extractor(ECHO_KEY));
    for args in [&["upload", "echo", &echo][..], &["list"], &["show", "echo"]] {
        let out = lsm_command(&["plugin"])
            .args(args)
            .args(["--url", &url])
            .output()
            .expect("run lsm");
        assert_eq!(code(&out), 2, "{args:?}: {out:?}");
        assert!(stderr(&out).contains("(unauthorized)"), "{out:?}");
        assert!(
            stderr(&out).contains("--token or LSM_ADMIN_TOKEN"),
            "{out:?}"
        );
    }

    // Files and arguments are checked before any request: nothing listens at this URL,
    // yet the error is about the input.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let missing = dir.path().join("missing.wasm");
    let missing = missing.to_str().expect("UTF-8 path");
    for (args, expected) in [
        (&["upload", "x", missing][..], "missing.wasm"),
        (
            &["test", "x", "--key", "k", "--value-file", missing],
            "missing.wasm",
        ),
        (
            &["test", "x", "--key", "k", "--value", "not json"],
            "--value: not JSON",
        ),
        (
            &["test", "x", "--key", "k", "--value-base64", "***"],
            "not base64",
        ),
        (
            &[
                "test",
                "x",
                "--key",
                "k",
                "--value",
                "1",
                "--options",
                "[1]",
            ],
            "not a JSON object",
        ),
    ] {
        let out = plugin(&nowhere, args);
        assert_eq!(code(&out), 2, "{args:?}: {out:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{args:?}: {err}"
        );
        assert!(!err.contains("cannot connect"), "{args:?}: {err}");
    }
    // And the server is reached when the input is fine.
    let out = plugin(&nowhere, &["list"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stderr(&out).contains("cannot connect"), "{out:?}");

    // Exactly one form of the value.
    for args in [
        &["test", "x", "--key", "k"][..],
        &[
            "test",
            "x",
            "--key",
            "k",
            "--value",
            "1",
            "--value-base64",
            "AA==",
        ],
    ] {
        let out = plugin(&url, args);
        assert_eq!(code(&out), 2, "{args:?}: {out:?}");
    }
    server.stop().expect("stop");
}
