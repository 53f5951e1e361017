//! `lsm.toml` parsing: the repository's example is valid, and every kind of mistake is
//! refused with the file, the line and the reason.

use std::path::Path;

use lsm::config::{BuiltinCodec, CodecConfig, Config};
use lsm::engine::{CompactionStrategy, SyncPolicy};

fn parse(text: &str) -> Result<Config, lsm::config::ConfigError> {
    Config::parse(text, Path::new("/etc/lsm/lsm.toml"))
}

#[test]
fn the_repository_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lsm.toml");
    let config = Config::load(&path).expect("lsm.toml must be valid");
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["app", "log"]);
    let app = &config.instances[0];
    assert_eq!(app.codec, CodecConfig::Builtin(BuiltinCodec::Bson));
    assert!(app.query);
    let log = &config.instances[1];
    assert_eq!(log.codec, CodecConfig::Builtin(BuiltinCodec::Raw));
    assert!(!log.query);
    assert_eq!(log.memtable_max_size, 4 * 1024 * 1024);
    // Relative paths are anchored at the file's directory.
    assert_eq!(app.data_dir, path.parent().expect("dir").join("./data/app"));
    // Its index file is valid too.
    let file = app
        .indexes_file
        .as_deref()
        .expect("app has an indexes_file");
    let defs = lsm::index::def::load_file(file).expect("indexes_app.toml must be valid");
    let names: Vec<&str> = defs.iter().map(|d| d.index_name.as_str()).collect();
    assert_eq!(names, ["by_city", "by_age", "bio"]);
    assert_eq!(defs[0].scope_prefix, "users:");
}

#[test]
fn index_files_report_mistakes_with_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = dir.path().join("ix.toml");
    std::fs::write(
        &toml,
        "[[index]]\nindex_name = \"a\"\nindex_type = \"sorted\"\nextractor = { type = \"raw\" }\n",
    )
    .expect("write");
    let e = lsm::index::def::load_file(&toml).expect_err("bad type");
    assert!(e.contains("ix.toml") && e.contains("sorted"), "{e}");
    let json = dir.path().join("ix.json");
    std::fs::write(&json, r#"{"indexes": [{"index_name": "a", "index_type": "range", "extractor": {"type": "raw"}}, {"index_name": "a", "index_type": "range", "extractor": {"type": "raw"}}]}"#).expect("write");
    let e = lsm::index::def::load_file(&json).expect_err("twice");
    assert!(e.contains("defined twice"), "{e}");
    std::fs::write(&json, r#"[{"index_name": "b", "index_type": "text", "extractor": {"type": "json_path", "path": "$.bio"}}]"#).expect("write");
    assert_eq!(
        lsm::index::def::load_file(&json).expect("valid")[0].index_name,
        "b"
    );
}

#[test]
fn values_map_to_engine_options() {
    let config = parse(
        r#"
[[instance]]
name = "events"
data_dir = "data/events"
memtable_max_size = 1048576
codec = { plugin = "codecs/msgpack.wasm" }
sync = "periodic"
sync_interval_ms = 250
compaction_strategy = "size_tiered"
max_sstables_before_compact = 8
"#,
    )
    .expect("valid");
    let inst = &config.instances[0];
    assert_eq!(
        inst.codec,
        CodecConfig::Plugin {
            plugin: Path::new("/etc/lsm/codecs/msgpack.wasm").to_path_buf()
        }
    );
    assert_eq!(inst.data_dir, Path::new("/etc/lsm/data/events"));
    let opts = inst.engine_options();
    assert_eq!(opts.memtable_max_size, 1 << 20);
    assert_eq!(
        opts.sync,
        SyncPolicy::Periodic(std::time::Duration::from_millis(250))
    );
    assert_eq!(opts.compaction.strategy, CompactionStrategy::SizeTiered);
    assert_eq!(opts.compaction.l0_trigger, 8);
    opts.validate().expect("the mapped options are consistent");
    // Defaults: raw codec, synced WAL, leveled compaction.
    let config = parse("[[instance]]\nname = \"a\"\ndata_dir = \"a\"\n").expect("valid");
    let opts = config.instances[0].engine_options();
    assert_eq!(
        config.instances[0].codec,
        CodecConfig::Builtin(BuiltinCodec::Raw)
    );
    assert_eq!(opts.sync, SyncPolicy::Always);
    assert_eq!(opts.compaction.strategy, CompactionStrategy::Leveled);
}

fn refused(text: &str) -> (Option<usize>, String) {
    let e = parse(text).expect_err("must be refused");
    let shown = e.to_string();
    assert!(shown.starts_with("/etc/lsm/lsm.toml"), "{shown}");
    (e.line, e.message)
}

#[test]
fn mistakes_are_refused_with_line_and_reason() {
    let (line, msg) = refused("[[instance]]\nname = \"a\"\ndata_dir = \"a\"\ncolour = \"blue\"\n");
    assert_eq!(line, Some(4), "{msg}");
    assert!(msg.contains("colour"), "{msg}");

    let (line, msg) = refused("[[instance]]\nname = \"a\"\ndata_dir = \"a\"\ncodec = \"xml\"\n");
    assert_eq!(line, Some(4), "{msg}");

    let (line, msg) =
        refused("[[instance]]\nname = \"a\"\ndata_dir = \"a\"\nmemtable_max_size = \"big\"\n");
    assert_eq!(line, Some(4), "{msg}");

    let (_, msg) = refused("[[instance]]\nname = \"a\"\n");
    assert!(msg.contains("data_dir"), "{msg}");

    let (line, msg) =
        refused("[[instance]]\nname = \"a\"\ndata_dir = \"a\"\nmemtable_max_size = 10\n");
    assert_eq!(line, Some(1), "{msg}");
    assert!(msg.contains("memtable_max_size"), "{msg}");

    let inst = "\n[[instance]]\nname = \"a\"\ndata_dir = \"a\"\n";
    let (line, msg) = refused(&format!("[server]\nlisten = \"x\"\n{inst}"));
    assert_eq!(line, Some(1), "{msg}");
    assert!(msg.contains("listen"), "{msg}");
    let (line, msg) = refused(&format!("[server]\nport = 1\n{inst}"));
    assert_eq!(line, Some(2), "{msg}");
    assert!(msg.contains("port"), "{msg}");
    let (_, msg) = refused(&format!("[server]\ndefault_instance = \"b\"\n{inst}"));
    assert!(msg.contains("default_instance"), "{msg}");
    let (_, msg) = refused(&format!("[server]\nadmin_token = \"\"\n{inst}"));
    assert!(msg.contains("admin_token"), "{msg}");

    let (_, msg) = refused("# nothing\n");
    assert!(msg.contains("no [[instance]]"), "{msg}");

    let (line, msg) = refused("[[instance]\nname = \"a\"\n");
    assert_eq!(line, Some(1), "{msg}");
}

#[test]
fn names_and_directories_are_checked() {
    for bad in [
        "../etc",
        "A",
        "",
        "-x",
        "a/b",
        "a b",
        "ünï",
        &"x".repeat(65),
    ] {
        let text = format!("[[instance]]\nname = {bad:?}\ndata_dir = \"d\"\n");
        let (_, msg) = refused(&text);
        assert!(msg.contains("invalid name"), "{bad}: {msg}");
    }
    let twice = "[[instance]]\nname = \"a\"\ndata_dir = \"a\"\n\n[[instance]]\nname = \"a\"\ndata_dir = \"b\"\n";
    let (line, msg) = refused(twice);
    assert_eq!(line, Some(5));
    assert!(msg.contains("used twice"), "{msg}");
    let shared = "[[instance]]\nname = \"a\"\ndata_dir = \"d\"\n\n[[instance]]\nname = \"b\"\ndata_dir = \"./d/../d\"\n";
    let shared_plain = "[[instance]]\nname = \"a\"\ndata_dir = \"d\"\n\n[[instance]]\nname = \"b\"\ndata_dir = \"d\"\n";
    let (_, msg) = refused(shared_plain);
    assert!(msg.contains("own"), "{msg}");
    // Paths that differ in spelling are compared as written; the server checks the
    // directories themselves when it opens them (a LOCK file per directory).
    assert!(parse(shared).is_ok());
}

#[test]
fn the_server_table_and_the_default_instance() {
    let two = "[[instance]]\nname = \"app\"\ndata_dir = \"a\"\n\n[[instance]]\nname = \"log\"\ndata_dir = \"l\"\n";
    let config = parse(two).expect("parse");
    assert_eq!(config.server.listen, "127.0.0.1:7700");
    assert_eq!(config.server.admin_token, None);
    assert_eq!(
        config.default_instance(),
        "app",
        "the first instance by default"
    );

    let config = parse(&format!(
        "[server]\nlisten = \"0.0.0.0:9000\"\nadmin_token = \"s3cret\"\nmax_body_size = 4096\ndefault_instance = \"log\"\n\n{two}"
    ))
    .expect("parse");
    assert_eq!(config.server.listen, "0.0.0.0:9000");
    assert_eq!(config.server.admin_token.as_deref(), Some("s3cret"));
    assert_eq!(config.server.max_body_size, 4096);
    assert_eq!(config.default_instance(), "log");

    let named_default = format!("{two}\n[[instance]]\nname = \"default\"\ndata_dir = \"d\"\n");
    assert_eq!(
        parse(&named_default).expect("parse").default_instance(),
        "default"
    );
}
