//! Plugin costs: per-record term extraction by the native `json_path` extractor, the
//! same extractor as a Rust WebAssembly component, and the example plugins of other
//! languages, called singly and in batches; and plugin load time, cold (compiling the
//! component) against warm (loading the cached artifact).
//!
//! Build the components first: `extractors/build.sh` and `plugins-examples/build.sh`.
//! Components that are missing are skipped and listed.
//!
//! ```sh
//! cd bench && cargo run --release --bin lsm-bench-plugins
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lsm::extractor::{native, Extractor, ExtractorSpec};
use lsm::plugin::{Limits, PluginHost, PluginStore, WasmExtractor};
use rand::{Rng, SeedableRng};

const DOCS: usize = 20_000;
const BATCH: usize = 1_000;

/// ~200-byte JSON documents: a city out of 100, an age, tags, an email.
fn documents() -> Vec<(String, Vec<u8>)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    (0..DOCS)
        .map(|i| {
            let city = format!("City Number {:03}", rng.random_range(0..100));
            let doc = serde_json::json!({
                "name": format!("User {i}"),
                "email": format!("user{i}@Example{}.com", i % 37),
                "city": city,
                "age": rng.random_range(18..91),
                "tags": ["alpha", "beta", if i % 2 == 0 { "gamma" } else { "delta" }],
                "bio": "Writes storage engines and reads papers about them."
            });
            (
                format!("users:{i:06}"),
                serde_json::to_vec(&doc).expect("json"),
            )
        })
        .collect()
}

struct Candidate {
    name: &'static str,
    /// Where the build scripts put it (the first that exists is used).
    files: Vec<PathBuf>,
    options: serde_json::Value,
}

fn candidates(root: &Path) -> Vec<Candidate> {
    let c = |name, file: &str, options| Candidate {
        name,
        files: file.split('|').map(|f| root.join(f)).collect(),
        options,
    };
    vec![
        c("json_path (Rust component)", "extractors/dist/json_path.wasm", serde_json::json!({"path": "$.city"})),
        c("email-domain (Rust example)", "plugins-examples/dist/rust-email-domain.wasm", serde_json::json!({})),
        c("city-normalizer (Python example)", "plugins-examples/dist/city-normalizer.wasm|plugins-examples/dist/python-city-normalizer.wasm", serde_json::json!({"field": "city"})),
        c("tags (JavaScript example)", "plugins-examples/dist/tags.wasm|plugins-examples/dist/js-tags.wasm", serde_json::json!({"field": "tags"})),
    ]
}

/// Mean per-record time of one call per record, and of batches of `BATCH`.
fn time_extraction(x: &dyn Extractor, docs: &[(String, Vec<u8>)]) -> Result<(Duration, Duration)> {
    let refs: Vec<(&str, &[u8])> = docs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    // Warm-up (instances, caches).
    for (k, v) in refs.iter().take(200) {
        x.extract(k, v).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let started = Instant::now();
    for (k, v) in &refs {
        x.extract(k, v).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let single = started.elapsed() / refs.len() as u32;
    let started = Instant::now();
    for chunk in refs.chunks(BATCH) {
        for r in x.extract_batch(chunk) {
            r.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let batched = started.elapsed() / refs.len() as u32;
    Ok((single, batched))
}

fn us(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = documents();
    let mean_len = docs.iter().map(|(_, v)| v.len()).sum::<usize>() / docs.len();
    println!("# Plugin costs\n");
    println!("{DOCS} JSON documents of {mean_len} bytes on average; batches of {BATCH}.\n");

    let native = native(&ExtractorSpec::JsonPath {
        path: "$.city".into(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .context("json_path is native")?;
    let (n_single, n_batched) = time_extraction(native.as_ref(), &docs)?;

    println!("| extractor | µs/record, one call each | µs/record, batched | batched ÷ native | load cold (compile) ms | load warm (cached) ms | cold ÷ warm |");
    println!("|---|--:|--:|--:|--:|--:|--:|");
    println!(
        "| json_path (native) | {} | {} | 1.00 | | | |",
        us(n_single),
        us(n_batched)
    );
    let mut missing = Vec::new();
    for c in candidates(&root) {
        let Some(file) = c.files.iter().find(|f| f.is_file()) else {
            missing.push(c.files[0].display().to_string());
            continue;
        };
        let wasm = std::fs::read(file)?;
        let dir = tempfile::tempdir()?;
        let host = PluginHost::new(Limits::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let started = Instant::now();
        let store =
            PluginStore::open(dir.path(), Arc::clone(&host)).map_err(|e| anyhow::anyhow!("{e}"))?;
        store
            .put("p", &wasm)
            .map_err(|e| anyhow::anyhow!("{}: {e}", c.name))?;
        let cold = started.elapsed();
        drop(store);
        let host = PluginHost::new(Limits::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let started = Instant::now();
        let store =
            PluginStore::open(dir.path(), Arc::clone(&host)).map_err(|e| anyhow::anyhow!("{e}"))?;
        let plugin = store.get("p").map_err(|e| anyhow::anyhow!("{e}"))?;
        let warm = started.elapsed();
        if host.compiles() != 0 {
            bail!("{}: the warm load compiled", c.name);
        }
        let x = WasmExtractor::new(plugin, &c.options).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (single, batched) = time_extraction(&x, &docs)?;
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.1} | {:.0}× |",
            c.name,
            us(single),
            us(batched),
            batched.as_secs_f64() / n_batched.as_secs_f64(),
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            cold.as_secs_f64() / warm.as_secs_f64()
        );
    }
    if !missing.is_empty() {
        println!(
            "\nNot built (run extractors/build.sh and plugins-examples/build.sh): {}",
            missing.join(", ")
        );
    }
    Ok(())
}
