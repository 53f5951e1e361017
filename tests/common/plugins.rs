//! Real WebAssembly components for the plugin tests, built from the hand-written core
//! module `tests/fixtures/plugins/extractor.wat` and the project's own `wit/`.

/// `extract` returns `ok([text(key)])`.
pub const ECHO_KEY: &str = "
    (i32.store8 (i32.const 1024) (i32.const 0))
    (local.set $t (call $alloc (i32.const 16) (i32.const 8)))
    (i32.store8 (local.get $t) (i32.const 0))
    (i32.store offset=8 (local.get $t) (local.get $kp))
    (i32.store offset=12 (local.get $t) (local.get $kl))
    (i32.store (i32.const 1028) (local.get $t))
    (i32.store (i32.const 1032) (i32.const 1))
    (i32.const 1024)";

/// `extract` returns `err(options)`: the plugin's own error.
pub const ERR_OPTIONS: &str = "
    (i32.store8 (i32.const 1024) (i32.const 1))
    (i32.store (i32.const 1028) (local.get $op))
    (i32.store (i32.const 1032) (local.get $ol))
    (i32.const 1024)";

/// Never returns.
pub const INFINITE_LOOP: &str = "(loop $spin (br $spin)) (unreachable)";

/// Grows memory until refused.
pub const MEMORY_BOMB: &str = "
    (block $refused
      (loop $grow
        (br_if $refused (i32.eq (memory.grow (i32.const 256)) (i32.const -1)))
        (br $grow)))
    (unreachable)";

/// Traps at once.
pub const TRAP: &str = "(unreachable)";

/// Returns a list pointer far outside its memory.
pub const GARBAGE: &str = "
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 0x7fff0000))
    (i32.store (i32.const 1032) (i32.const 1000))
    (i32.const 1024)";

/// The core module with `body` as `extract`, compiled from text.
pub fn core_module(body: &str) -> Vec<u8> {
    let template = include_str!("../fixtures/plugins/extractor.wat");
    wat::parse_str(template.replace("{EXTRACT_BODY}", body)).expect("fixture WAT")
}

/// Wraps `core` as a component of `world` of the WIT package in `wit_dir`.
pub fn componentize(mut core: Vec<u8>, wit_dir: &std::path::Path, world: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(wit_dir).expect("WIT");
    let world = resolve.select_world(&[pkg], Some(world)).expect("world");
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embed WIT");
    wit_component::ComponentEncoder::default()
        .module(&core)
        .expect("module")
        .validate(true)
        .encode()
        .expect("component")
}

/// An extractor component whose `extract` is `body`.
pub fn extractor(body: &str) -> Vec<u8> {
    componentize(
        core_module(body),
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/wit")),
        "extractor",
    )
}

/// An extractor whose `extract` and `extract-batch` both return `ok([text(options)])`:
/// every record gets the index's options (as JSON text) as its one term.
#[allow(dead_code)]
pub fn echo_options_extractor() -> Vec<u8> {
    let template = include_str!("../fixtures/plugins/extractor.wat")
        .replace(
            "(i32.store offset=8 (local.get $t) (i32.load (local.get $e)))",
            "(i32.store offset=8 (local.get $t) (local.get $op))",
        )
        .replace(
            "(i32.store offset=12 (local.get $t) (i32.load offset=4 (local.get $e)))",
            "(i32.store offset=12 (local.get $t) (local.get $ol))",
        )
        .replace(
            "{EXTRACT_BODY}",
            &ECHO_KEY.replace("$kp", "$op").replace("$kl", "$ol"),
        );
    componentize(
        wat::parse_str(template).expect("fixture WAT"),
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/wit")),
        "extractor",
    )
}

/// A valid component of a world that is not a plugin world.
pub fn foreign_component() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("other.wit"),
        "package test:other@1.0.0;\ninterface api { answer: func() -> u32; }\nworld other { export api; }\n",
    )
    .expect("write WIT");
    let core = wat::parse_str(
        r#"(module (func (export "test:other/api@1.0.0#answer") (result i32) (i32.const 42)))"#,
    )
    .expect("WAT");
    componentize(core, dir.path(), "other")
}

/// A codec component storing JSON text as is and refusing JSON strings.
pub fn json_text_codec() -> Vec<u8> {
    let core = wat::parse_str(include_str!("../fixtures/plugins/codec.wat")).expect("codec WAT");
    componentize(
        core,
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/wit")),
        "codec",
    )
}
