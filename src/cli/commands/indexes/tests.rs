//! Unit tests of the `lsm index` command's parsing and output.

use clap::Parser;
use serde_json::json;

use super::*;
use crate::cli::{Cli, Command};

/// The definition `lsm <args>` would send.
fn sent(args: &[&str]) -> Result<Value> {
    let cli = Cli::try_parse_from(std::iter::once("lsm").chain(args.iter().copied()))?;
    let Command::Index {
        action: IndexAction::Create(create),
        ..
    } = cli.command
    else {
        bail!("not index create");
    };
    Ok(serde_json::to_value(definition(create)?)?)
}

#[test]
fn create_flags_make_a_definition() -> Result<()> {
    assert_eq!(
        sent(&[
            "index",
            "create",
            "by_city",
            "--type",
            "equality",
            "--scope",
            "users:",
            "--json-path",
            "$.city"
        ])?,
        json!({"index_name": "by_city", "scope_prefix": "users:", "index_type": "equality",
               "extractor": {"type": "json_path", "path": "$.city"}, "on_error": "reject"})
    );
    // A trailing `*` of the scope means the same as none; no scope is every key.
    let def = sent(&[
        "index",
        "create",
        "age",
        "--type",
        "range",
        "--bson-path",
        "$.age",
        "--scope",
        "people:*",
        "--on-error",
        "skip",
    ])?;
    assert_eq!(def["scope_prefix"], "people:");
    assert_eq!(
        def["extractor"],
        json!({"type": "bson_path", "path": "$.age"})
    );
    assert_eq!(def["on_error"], "skip");
    let def = sent(&["index", "create", "whole", "--type", "text", "--raw"])?;
    assert_eq!(def["scope_prefix"], "");
    assert_eq!(def["extractor"], json!({"type": "raw"}));
    let def = sent(&[
        "index",
        "create",
        "geo",
        "--type",
        "equality",
        "--plugin",
        "geo",
        "--options",
        r#"{"field": "city"}"#,
    ])?;
    assert_eq!(
        def["extractor"],
        json!({"type": "custom", "plugin": "geo", "options": {"field": "city"}})
    );
    let def = sent(&[
        "index", "create", "geo", "--type", "equality", "--plugin", "geo",
    ])?;
    assert_eq!(def["extractor"]["options"], json!({}));
    // `--token`, `--url` and `--instance` go anywhere.
    sent(&[
        "index",
        "--url",
        "http://h:1",
        "create",
        "x",
        "--raw",
        "--type",
        "text",
        "--token",
        "t",
        "--instance",
        "docs",
        "--no-wait",
    ])?;
    Ok(())
}

#[test]
fn bad_create_arguments_fail_before_any_request() {
    for args in [
        // No extractor, two extractors, no type, no name.
        &["index", "create", "a", "--type", "equality"][..],
        &[
            "index",
            "create",
            "a",
            "--type",
            "equality",
            "--raw",
            "--json-path",
            "$.a",
        ],
        &["index", "create", "a", "--raw"],
        &["index", "create", "--type", "equality", "--raw"],
        // Checked as the server checks them.
        &["index", "create", "Bad Name", "--type", "equality", "--raw"],
        &[
            "index",
            "create",
            "a",
            "--type",
            "equality",
            "--json-path",
            "city",
        ],
        &[
            "index",
            "create",
            "a",
            "--type",
            "equality",
            "--plugin",
            "p",
            "--options",
            "[1]",
        ],
        &["index", "create", "a", "--type", "equality", "--plugin", ""],
        // Options belong to plugins; a file is the whole definition.
        &[
            "index",
            "create",
            "a",
            "--type",
            "equality",
            "--raw",
            "--options",
            "{}",
        ],
        &[
            "index", "create", "a", "--type", "range", "--file", "def.json",
        ],
        &["index", "create", "a", "--type", "fuzzy", "--raw"],
    ] {
        assert!(sent(args).is_err(), "{args:?}");
    }
}

#[test]
fn create_reads_a_definition_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let json_file = dir.path().join("def.json");
    std::fs::write(
        &json_file,
        r#"{"index_name": "by_city", "index_type": "equality",
            "extractor": {"type": "json_path", "path": "$.city"}}"#,
    )?;
    let json_path = json_file.to_str().unwrap_or_default();
    let def = sent(&["index", "create", "--file", json_path])?;
    assert_eq!(def["index_name"], "by_city");
    assert_eq!(def["on_error"], "reject");
    // The name may be repeated, not contradicted.
    sent(&["index", "create", "by_city", "--file", json_path])?;
    assert!(sent(&["index", "create", "other", "--file", json_path]).is_err());

    let toml_file = dir.path().join("def.toml");
    std::fs::write(
        &toml_file,
        "index_type = \"text\"\nscope_prefix = \"posts:\"\non_error = \"skip\"\n\
         [extractor]\ntype = \"json_path\"\npath = \"$.body\"\n",
    )?;
    let toml_path = toml_file.to_str().unwrap_or_default();
    let def = sent(&["index", "create", "bodies", "--file", toml_path])?;
    assert_eq!(
        def,
        json!({"index_name": "bodies", "scope_prefix": "posts:", "index_type": "text",
               "extractor": {"type": "json_path", "path": "$.body"}, "on_error": "skip"})
    );
    // A name is needed somewhere; unknown fields and broken files are refused.
    assert!(sent(&["index", "create", "--file", toml_path]).is_err());
    for bad in [
        r#"{"index_name": "a", "index_type": "equality", "extractor": {"type": "raw"}, "x": 1}"#,
        r#"[{"index_name": "a", "index_type": "equality", "extractor": {"type": "raw"}}]"#,
        "{",
    ] {
        std::fs::write(&json_file, bad)?;
        assert!(
            sent(&["index", "create", "--file", json_path]).is_err(),
            "{bad}"
        );
    }
    let missing = dir.path().join("missing.json");
    assert!(sent(&[
        "index",
        "create",
        "--file",
        missing.to_str().unwrap_or_default()
    ])
    .is_err());
    Ok(())
}

fn task(v: Value) -> TaskInfo {
    serde_json::from_value(v).expect("task")
}

#[test]
fn progress_and_outcomes_read_well() {
    let running = task(json!({"id": 7, "kind": "build", "index": "by_city",
        "state": "running", "done": 1200, "total": 5000, "unit": "doc ids"}));
    assert_eq!(doing(&running), "building by_city");
    assert_eq!(progress_text(&running), "1200/5000 doc ids (24%)");
    let unknown_total = TaskInfo {
        total: 0,
        ..running.clone()
    };
    assert_eq!(progress_text(&unknown_total), "1200 doc ids");

    let done = task(
        json!({"id": 7, "kind": "build", "index": "by_city", "state": "done",
        "done": 5000, "total": 5000, "unit": "doc ids", "elapsed_ms": 1234}),
    );
    assert_eq!(
        summary(&done),
        "built by_city: 5000 doc ids in 1.2 s (task 7)"
    );
    let skipped = task(
        json!({"id": 8, "kind": "rebuild", "index": "age", "state": "done",
        "done": 10, "total": 10, "unit": "doc ids", "skipped": 2, "elapsed_ms": 35}),
    );
    assert_eq!(
        summary(&skipped),
        "rebuilt age: 10 doc ids in 35 ms, 2 skipped (task 8)"
    );
    let failed = task(
        json!({"id": 9, "kind": "rebuild", "index": "geo", "state": "failed",
        "error": "plugin geo trapped"}),
    );
    assert_eq!(
        failure(&failed),
        "rebuilding geo failed: plugin geo trapped (task 9)"
    );
    let cancelled = task(json!({"id": 9, "kind": "build", "index": "geo",
        "state": "cancelled"}));
    assert!(failure(&cancelled).starts_with("building geo was cancelled ("));
    assert_eq!(duration(125_000), "2 min 05 s");
}

#[test]
fn the_table_shows_scopes_and_extractors() -> Result<()> {
    let list: Vec<IndexInfo> = serde_json::from_value(json!([
        {"index_name": "by_city", "scope_prefix": "users:", "index_type": "equality",
         "extractor": {"type": "json_path", "path": "$.city"}, "on_error": "reject",
         "source": "api", "state": "ready", "generation": 3, "task": null,
         "skipped": 0, "skipped_sample": []},
        {"index_name": "geo", "scope_prefix": "", "index_type": "range",
         "extractor": {"type": "custom", "plugin": "geo", "options": {"f": 1}},
         "source": "file", "state": "building", "generation": null, "task": 4},
        {"index_name": "whole", "index_type": "text", "extractor": {"type": "raw"},
         "state": "rebuilding"}
    ]))?;
    let mut out = Vec::new();
    print_table(&list, &mut out)?;
    assert_eq!(
        String::from_utf8(out)?,
        "NAME     TYPE      SCOPE    EXTRACTOR           STATE       SOURCE\n\
         by_city  equality  users:*  json_path $.city    ready       api\n\
         geo      range     *        custom geo {\"f\":1}  building    file\n\
         whole    text      *        raw                 rebuilding  -\n"
    );
    Ok(())
}
