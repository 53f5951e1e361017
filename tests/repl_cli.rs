//! The `lsm repl` binary driven through standard input, as a script would.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn repl(dir: &Path, input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lsm"))
        .args(["repl", "--data-dir"])
        .arg(dir)
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
    // A child that fails at startup (a locked directory) may exit before reading its
    // input; the broken pipe is then expected, and its output tells what happened.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn commands_work_from_stdin_and_persist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = repl(
        dir.path(),
        "SET a 1\nSET \"b key\" two words\nGET a\nGET \"b key\"\nGET missing\nDELETE a\nGET a\nCOUNT\n",
    );
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["OK", "OK", "1", "two words", "(nil)", "OK", "(nil)", "1"]
    );

    // A second process sees what the first wrote.
    let out = repl(dir.path(), "ALL\nKEYS\n");
    assert_eq!(
        stdout(&out),
        "b key = two words\n(1 keys)\nb key\n(1 keys)\n"
    );
}

#[test]
fn demo_scan_batch_and_stats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = repl(
        dir.path(),
        "demo\nSCAN users:\nBATCH\nSET x 1\nDELETE users:1\nEND\nBATCH SET y 2; SET z 3\nCOUNT\nGET users:1\nSTATS\nFLUSH\nSTATS ALL\n",
    );
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("OK (loaded 17 sample keys)"), "{text}");
    assert!(text.contains("users:1 = {\"name\":\"Ana\""), "{text}");
    assert!(text.contains("(10 keys)"), "{text}");
    assert!(text.contains("OK (2 operations)"), "{text}");
    // 17 demo keys - users:1 + x, y, z
    assert!(text.lines().any(|l| l == "19"), "{text}");
    assert!(text.contains("\"memtable_entries\""), "{text}");
    assert!(text.contains("\"data_blocks\""), "{text}");
}

#[test]
fn errors_are_reported_and_the_exit_code_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = repl(
        dir.path(),
        "FROB x\nSET onlykey\nGET a b\nSET ok 1\nBATCH\nSET q 1\n",
    );
    assert!(
        !out.status.success(),
        "failed commands must fail the process"
    );
    let text = stdout(&out);
    assert_eq!(text.matches("ERR ").count(), 3, "{text}");
    assert!(text.contains("unknown command"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("open batch"));
    // The good command still ran; the unterminated batch did not apply.
    let out = repl(dir.path(), "GET ok\nGET q\n");
    assert_eq!(stdout(&out), "1\n(nil)\n");
}

#[test]
fn a_locked_directory_gives_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = lsm::engine::Db::open(dir.path(), lsm::engine::Options::default()).expect("open");
    let out = repl(dir.path(), "GET a\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another process"),
        "{out:?}"
    );
    drop(db);
}
