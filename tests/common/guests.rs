//! Builds the Rust guests of the repository (the standard extractors, the example
//! plugins) with their build scripts, once per test process. The first build takes a
//! few minutes; later ones are incremental (seconds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `script` (relative to the repository) with bash and `args`, failing the test
/// with its output if it fails. Returns how long it took.
fn run_build_script(script: &str, args: &[&str]) -> std::time::Duration {
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(repo().join(script))
        .args(args)
        .current_dir(repo())
        // The guests have their own target directories; the server's is not theirs.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("LSM_GUEST_TARGET_DIR")
        .env_remove("LSM_EXAMPLES_TARGET_DIR")
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

/// `extractors/dist/`, with the standard extractors freshly built.
pub fn standard_extractors() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let took = run_build_script("extractors/build.sh", &[]);
        eprintln!("extractors/build.sh: {took:?}");
        repo().join("extractors/dist")
    })
}

/// `plugins-examples/dist/`, with the `examples` freshly built (the first call of the
/// process builds them; later calls must name the same examples).
pub fn example_plugins(examples: &[&str]) -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let took = run_build_script("plugins-examples/build.sh", examples);
        eprintln!("plugins-examples/build.sh: {took:?}");
        repo().join("plugins-examples/dist")
    })
}

/// The bytes of `dir/name`.
pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
