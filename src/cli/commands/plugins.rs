//! `lsm plugin upload|list|show|delete|test`: the instance's WebAssembly plugins,
//! through the admin routes.
//!
//! Output:
//! - `upload`: `registered NAME (WORLD, SIZE bytes, sha256 PREFIX, load N ms)`, or
//!   `replaced ...` when a plugin of that name was replaced.
//! - `list`: a table with a header line: name, world, size, status, calls, errors, mean
//!   call time in µs (`-` for a plugin that could not be loaded).
//! - `show`: the server's description, as pretty JSON.
//! - `delete`: `deleted NAME`.
//! - `test`: an extractor's terms, one per line (`text "PortoAlegre"`, `integer 30`,
//!   `float 2.5`, `boolean true`, `bytes 0x00ff`; `(no terms)` on stderr when there are
//!   none), or the value a codec decodes back, as `lsm get` prints values.
//!
//! Exit codes as for the other commands, with these negative answers (1): `show` of a
//! plugin that does not exist, and `test` of a plugin that fails (timeout, trap, its own
//! error ...), which prints `error: <message> (<code>)` on stderr. Files and arguments
//! are read and checked before any request.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use lsm_extract::Term;
use serde_json::{Map, Value};

use super::EXIT_NEGATIVE;
use crate::cli::backend::show;
use crate::cli::client::{Client, PluginInfo, Sample, SampleValue, Tried, UploadLimits, Uploaded};
use crate::cli::{PluginAction, SampleArgs};
use crate::codec::ValueOut;

/// Hex digits of the SHA-256 shown by `upload`.
const SHA_PREFIX: usize = 12;

/// Runs `action`, writing its answer to `out`; returns the exit code of an answer that
/// is not an error (0, or [`EXIT_NEGATIVE`]).
pub fn execute(client: &Client, action: PluginAction, out: &mut dyn Write) -> Result<u8> {
    match action {
        PluginAction::Upload {
            name,
            file,
            deadline_ms,
            memory_bytes,
        } => {
            let wasm = read_file(&file)?;
            let limits = UploadLimits {
                deadline_ms,
                memory_bytes,
            };
            let uploaded = client.upload_plugin(&name, &wasm, limits)?;
            writeln!(out, "{}", upload_summary(&uploaded))?;
        }
        PluginAction::List => print_table(&client.plugins()?, out)?,
        PluginAction::Show { name } => match client.plugin(&name) {
            Ok(info) => writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?,
            Err(e) if e.code() == Some("plugin-not-found") => {
                eprintln!("error: {e}");
                return Ok(EXIT_NEGATIVE);
            }
            Err(e) => return Err(e.into()),
        },
        PluginAction::Delete { name } => {
            client.delete_plugin(&name)?;
            writeln!(out, "deleted {name}")?;
        }
        PluginAction::Test {
            name,
            key,
            value,
            options,
        } => {
            let sample = Sample {
                key,
                value: sample_value(value)?,
                options: options.as_deref().map(parse_options).transpose()?,
            };
            match client.test_plugin(&name, &sample)? {
                Tried::Terms(terms) => {
                    for term in &terms {
                        writeln!(out, "{}", show_term(term))?;
                    }
                    if terms.is_empty() {
                        eprintln!("(no terms)");
                    }
                }
                Tried::Decoded { decoded, .. } => {
                    writeln!(out, "{}", show(&ValueOut::Json(decoded)))?;
                }
                Tried::Failed { code, message } => {
                    out.flush()?;
                    eprintln!("error: {message} ({code})");
                    return Ok(EXIT_NEGATIVE);
                }
            }
        }
    }
    Ok(0)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn sample_value(args: SampleArgs) -> Result<SampleValue> {
    let SampleArgs {
        value,
        value_base64,
        value_file,
    } = args;
    if let Some(text) = value {
        let json = serde_json::from_str(&text)
            .with_context(|| format!("--value: not JSON: {text:?} (quote a string: '\"text\"')"))?;
        return Ok(SampleValue::Json(json));
    }
    if let Some(b64) = value_base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim().as_bytes())
            .context("--value-base64: not base64")?;
        return Ok(SampleValue::Bytes(bytes));
    }
    match value_file {
        Some(path) => Ok(SampleValue::Bytes(read_file(&path)?)),
        // The argument group requires one of the three.
        None => bail!("give --value, --value-base64 or --value-file"),
    }
}

fn parse_options(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("--options: not a JSON object: {text:?}"),
        Err(e) => bail!("--options: not JSON: {text:?}: {e}"),
    }
}

fn upload_summary(uploaded: &Uploaded) -> String {
    let info = &uploaded.info;
    let verb = if uploaded.created {
        "registered"
    } else {
        "replaced"
    };
    let sha: String = info.sha256.chars().take(SHA_PREFIX).collect();
    let mut details = format!("{}, {} bytes, sha256 {sha}", info.world, info.size);
    if let Some(ms) = info.load_ms {
        details.push_str(&format!(", load {ms} ms"));
    }
    if info.status != "loaded" {
        details.push_str(&format!(", {}", info.status));
    }
    format!("{verb} {} ({details})", info.name)
}

/// One term as `type value`: text JSON-quoted, bytes in hex.
fn show_term(term: &Term) -> String {
    match term {
        Term::Text(s) => format!("text {}", Value::String(s.clone())),
        Term::Integer(i) => format!("integer {i}"),
        Term::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => format!("float {n}"),
            None => format!("float {f}"),
        },
        Term::Boolean(b) => format!("boolean {b}"),
        Term::Bytes(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("bytes 0x{hex}")
        }
    }
}

fn print_table(plugins: &[PluginInfo], out: &mut dyn Write) -> Result<()> {
    const HEADER: [&str; 7] = [
        "NAME", "WORLD", "SIZE", "STATUS", "CALLS", "ERRORS", "MEAN_US",
    ];
    let dash = || "-".to_string();
    let rows: Vec<[String; 7]> = plugins
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.world.clone(),
                p.size.to_string(),
                p.status.clone(),
                p.calls.map_or_else(dash, |n| n.to_string()),
                p.errors.map_or_else(dash, |n| n.to_string()),
                p.mean_call_us.map_or_else(dash, |us| format!("{us:.1}")),
            ]
        })
        .collect();
    super::text::print_table(HEADER, &rows, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_print_with_their_type() {
        let shown: Vec<String> = [
            Term::Text("Porto \"Alegre\"".into()),
            Term::Integer(-30),
            Term::Float(2.5),
            Term::Float(3.0),
            Term::Boolean(true),
            Term::Bytes(vec![0, 255]),
        ]
        .iter()
        .map(show_term)
        .collect();
        assert_eq!(
            shown,
            [
                r#"text "Porto \"Alegre\"""#,
                "integer -30",
                "float 2.5",
                "float 3.0",
                "boolean true",
                "bytes 0x00ff"
            ]
        );
    }

    #[test]
    fn options_must_be_an_object() {
        assert!(parse_options(r#"{"a": 1}"#).is_ok());
        assert!(parse_options("[1]").is_err());
        assert!(parse_options("{").is_err());
    }

    #[test]
    fn the_table_aligns_and_marks_unloaded_plugins() -> Result<()> {
        let loaded = PluginInfo {
            name: "echo".into(),
            sha256: "ab".repeat(32),
            size: 1234,
            world: "extractor".into(),
            status: "loaded".into(),
            reason: None,
            calls: Some(3),
            errors: Some(1),
            mean_call_us: Some(12.34),
            load_ms: None,
        };
        let broken = PluginInfo {
            name: "a-long-name".into(),
            status: "broken".into(),
            calls: None,
            errors: None,
            mean_call_us: None,
            ..loaded.clone()
        };
        let mut out = Vec::new();
        print_table(&[loaded, broken], &mut out)?;
        assert_eq!(
            String::from_utf8(out)?,
            "NAME         WORLD      SIZE  STATUS  CALLS  ERRORS  MEAN_US\n\
             echo         extractor  1234  loaded  3      1       12.3\n\
             a-long-name  extractor  1234  broken  -      -       -\n"
        );
        Ok(())
    }
}
