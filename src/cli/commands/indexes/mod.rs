//! `lsm index list|show|create|drop|rebuild`: the instance's secondary indexes.
//!
//! Output:
//! - `list`: a table with a header line: name, type, scope (`users:*`; `*` for every
//!   key), extractor (`json_path $.city`, `custom geo {"field":"city"}` ...), state,
//!   source.
//! - `show`: the server's description, as pretty JSON.
//! - `create`, `rebuild`: the task is followed until it ends, polling its progress
//!   every 200 ms: a progress bar on standard error when standard output is a terminal,
//!   else a plain progress line on standard error every few seconds. Then
//!   `built NAME: N doc ids in 1.2 s (task 7)` (`rebuilt ...`, with `, N skipped`
//!   when the extractor failed on records). With `--no-wait`, the task as the server
//!   sent it, as pretty JSON, right after the request is accepted.
//! - `drop`: `dropped NAME (its records are deleted in the background: task N)`.
//!
//! Exit codes as for the other commands, with these negative answers (1): `show` of an
//! index that does not exist, and a build or rebuild that failed or was cancelled (its
//! error on standard error). A failure to read the task's progress is an error (2);
//! the task goes on on the server. The definition of `create` is read and checked
//! before any request.

use super::text::read_text;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

use super::EXIT_NEGATIVE;
use crate::cli::client::{Accepted, Client, IndexInfo, TaskInfo};
use crate::cli::{CreateArgs, DefinitionSource, IndexAction, IndexKind, OnErrorKind};
use crate::extractor::ExtractorSpec;
use crate::index::{IndexDef, IndexType, OnError};

/// How often a task's progress is read.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often a progress line is printed when there is no progress bar.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Runs `action`, writing its answer to `out`; returns the exit code of an answer that
/// is not an error (0, or [`EXIT_NEGATIVE`]).
pub fn execute(client: &Client, action: IndexAction, out: &mut dyn Write) -> Result<u8> {
    match action {
        IndexAction::List => print_table(&client.indexes()?, out)?,
        IndexAction::Show { name } => match client.index(&name) {
            Ok(info) => writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?,
            Err(e) if is_unknown_index(&e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_NEGATIVE);
            }
            Err(e) => return Err(e.into()),
        },
        IndexAction::Create(args) => {
            let no_wait = args.no_wait;
            let definition = definition(args)?;
            let accepted = client.create_index(&serde_json::to_value(&definition)?)?;
            return finish(client, accepted, no_wait, out);
        }
        IndexAction::Drop { name } => {
            let accepted = client.drop_index(&name)?;
            writeln!(
                out,
                "dropped {name} (its records are deleted in the background: task {})",
                accepted.task.id
            )?;
        }
        IndexAction::Rebuild { name, no_wait } => {
            let accepted = client.rebuild_index(&name)?;
            return finish(client, accepted, no_wait, out);
        }
    }
    Ok(0)
}

/// A 404 about the index itself (not about the instance or the route).
fn is_unknown_index(e: &crate::cli::client::ClientError) -> bool {
    matches!(e, crate::cli::client::ClientError::Api { status: 404, code, .. }
        if code.starts_with("index"))
}

/// The definition `lsm index create` sends: built from the flags, or read from
/// `--file`; checked as the server checks it.
pub fn definition(args: CreateArgs) -> Result<IndexDef> {
    let CreateArgs {
        name,
        index_type,
        scope,
        source,
        options,
        on_error,
        no_wait: _,
    } = args;
    let DefinitionSource {
        json_path,
        bson_path,
        raw,
        plugin,
        file,
    } = source;
    let def = if let Some(path) = file {
        let text = read_text(&path)?;
        let toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        definition_from_text(&text, toml, name.as_deref())
            .with_context(|| format!("--file {}", path.display()))?
    } else {
        if options.is_some() && plugin.is_none() {
            bail!("--options goes with --plugin (options of a custom extractor)");
        }
        let extractor = match (json_path, bson_path, raw, plugin) {
            (Some(path), None, false, None) => ExtractorSpec::JsonPath { path },
            (None, Some(path), false, None) => ExtractorSpec::BsonPath { path },
            (None, None, true, None) => ExtractorSpec::Raw {},
            (None, None, false, Some(plugin)) => ExtractorSpec::Custom {
                plugin,
                options: Value::Object(match options {
                    Some(text) => parse_options(&text)?,
                    None => Map::new(),
                }),
            },
            _ => bail!("give one of --json-path, --bson-path, --raw, --plugin or --file"),
        };
        IndexDef {
            index_name: name.ok_or_else(|| anyhow!("the index name is missing"))?,
            scope_prefix: scope.unwrap_or_default(),
            index_type: match index_type {
                Some(IndexKind::Equality) => IndexType::Equality,
                Some(IndexKind::Range) => IndexType::Range,
                Some(IndexKind::Text) => IndexType::Text,
                None => bail!("--type is missing (equality, range or text)"),
            },
            extractor,
            on_error: match on_error {
                Some(OnErrorKind::Skip) => OnError::Skip,
                Some(OnErrorKind::Reject) | None => OnError::Reject,
            },
        }
    };
    def.validate().map_err(|e| anyhow!(e))
}

/// A definition from the text of `--file` (JSON, or TOML); `name` fills in a missing
/// `index_name` and must agree with one that is there.
fn definition_from_text(text: &str, toml: bool, name: Option<&str>) -> Result<IndexDef> {
    let parsed: Value = if toml {
        toml::from_str(text).map_err(|e| anyhow!("not TOML: {}", e.to_string().trim_end()))?
    } else {
        serde_json::from_str(text).map_err(|e| anyhow!("not JSON: {e}"))?
    };
    let Value::Object(mut fields) = parsed else {
        bail!(
            "expected one index definition (an object with index_name, index_type, extractor ...)"
        );
    };
    match (fields.get("index_name"), name) {
        (None, Some(name)) => {
            fields.insert("index_name".into(), Value::String(name.to_string()));
        }
        (Some(Value::String(in_file)), Some(name)) if in_file != name => {
            bail!("the file defines index {in_file:?}, not {name:?}")
        }
        _ => {}
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| anyhow!("not an index definition: {e}"))
}

fn parse_options(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("--options: not a JSON object: {text:?}"),
        Err(e) => bail!("--options: not JSON: {text:?}: {e}"),
    }
}

/// After a create or rebuild was accepted: prints the task (`no_wait`), or follows it
/// to its end and prints how it ended.
fn finish(client: &Client, accepted: Accepted, no_wait: bool, out: &mut dyn Write) -> Result<u8> {
    if no_wait {
        writeln!(out, "{}", serde_json::to_string_pretty(&accepted.raw)?)?;
        return Ok(0);
    }
    let task = follow(client, &accepted)?;
    match task.state.as_str() {
        "done" => {
            writeln!(out, "{}", summary(&task))?;
            Ok(0)
        }
        _ => {
            out.flush()?;
            eprintln!("error: {}", failure(&task));
            Ok(EXIT_NEGATIVE)
        }
    }
}

/// Polls the task until it ends, showing its progress; returns it as it ended.
fn follow(client: &Client, accepted: &Accepted) -> Result<TaskInfo> {
    let mut task = accepted.task.clone();
    let mut progress = Progress::new(std::io::stdout().is_terminal(), &task);
    while !task.is_finished() {
        std::thread::sleep(POLL_INTERVAL);
        task = client.task_at(&accepted.poll_url).with_context(|| {
            format!(
                "reading the progress of task {} at {} (it goes on on the server)",
                accepted.task.id, accepted.poll_url
            )
        })?;
        progress.update(&task);
    }
    progress.finish();
    Ok(task)
}

/// What a task is doing, for progress and messages: `building by_city`.
fn doing(task: &TaskInfo) -> String {
    let verb = match task.kind.as_str() {
        "build" => "building",
        "rebuild" => "rebuilding",
        "drop" => "dropping",
        other => other,
    };
    format!("{verb} {}", task.index)
}

/// `1200/5000 doc ids (24%)`, or `1200 doc ids` while the total is not known.
fn progress_text(task: &TaskInfo) -> String {
    let unit = if task.unit.is_empty() {
        "items"
    } else {
        &task.unit
    };
    if task.total == 0 {
        return format!("{} {unit}", task.done);
    }
    let percent = task.done.min(task.total) * 100 / task.total;
    format!("{}/{} {unit} ({percent}%)", task.done, task.total)
}

/// `built by_city: 5000 doc ids in 1.2 s, 3 skipped (task 7)`.
fn summary(task: &TaskInfo) -> String {
    let verb = match task.kind.as_str() {
        "build" => "built",
        "rebuild" => "rebuilt",
        "drop" => "dropped",
        other => other,
    };
    let unit = if task.unit.is_empty() {
        "items"
    } else {
        &task.unit
    };
    let mut text = format!(
        "{verb} {}: {} {unit} in {}",
        task.index,
        task.done,
        duration(task.elapsed_ms)
    );
    if task.skipped > 0 {
        text.push_str(&format!(", {} skipped", task.skipped));
    }
    text.push_str(&format!(" (task {})", task.id));
    text
}

/// Why a task did not finish: `building by_city failed: <error> (task 7)`.
fn failure(task: &TaskInfo) -> String {
    let doing = doing(task);
    match task.state.as_str() {
        "cancelled" => format!(
            "{doing} was cancelled (the index was dropped or replaced, or the instance closed) (task {})",
            task.id
        ),
        _ => format!(
            "{doing} failed: {} (task {})",
            task.error.as_deref().unwrap_or("no reason given"),
            task.id
        ),
    }
}

/// `850 ms`, `1.2 s`, `2 min 05 s`.
fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, ms / 1000 % 60),
    }
}

/// How a task's progress is shown while it runs.
enum Progress {
    /// A bar on standard error (a spinner while the total is not known yet); whether
    /// it shows the bar.
    Bar(ProgressBar, bool),
    /// A line on standard error every [`LINE_INTERVAL`].
    Lines(Instant),
}

impl Progress {
    fn new(bar: bool, task: &TaskInfo) -> Progress {
        if !bar || task.is_finished() {
            return Progress::Lines(Instant::now());
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(spinner_style())
            .with_message(doing(task));
        bar.enable_steady_tick(Duration::from_millis(100));
        let mut progress = Progress::Bar(bar, false);
        progress.update(task);
        progress
    }

    fn update(&mut self, task: &TaskInfo) {
        match self {
            Progress::Bar(bar, with_total) => {
                if task.total > 0 && !*with_total {
                    bar.set_style(bar_style());
                    *with_total = true;
                }
                bar.set_length(task.total.max(task.done));
                bar.set_position(task.done);
                bar.set_prefix(task.unit.clone());
                bar.set_elapsed(Duration::from_millis(task.elapsed_ms));
            }
            Progress::Lines(last) => {
                if !task.is_finished() && last.elapsed() >= LINE_INTERVAL {
                    eprintln!("{}: {}", doing(task), progress_text(task));
                    *last = Instant::now();
                }
            }
        }
    }

    fn finish(self) {
        if let Progress::Bar(bar, _) = self {
            bar.finish_and_clear();
        }
    }
}

/// Before the total is known.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} {prefix} ({percent}%, {elapsed})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `users:*` for a prefix, `*` for every key.
fn scope(prefix: &str) -> String {
    format!("{prefix}*")
}

/// `json_path $.city`, `raw`, `custom geo {"field":"city"}` (options when there are).
fn extractor(spec: &Value) -> String {
    let kind = spec.get("type").and_then(Value::as_str).unwrap_or("?");
    match kind {
        "json_path" | "bson_path" => {
            let path = spec.get("path").and_then(Value::as_str).unwrap_or("?");
            format!("{kind} {path}")
        }
        "custom" => {
            let plugin = spec.get("plugin").and_then(Value::as_str).unwrap_or("?");
            match spec.get("options") {
                Some(Value::Object(o)) if !o.is_empty() => {
                    format!("custom {plugin} {}", Value::Object(o.clone()))
                }
                _ => format!("custom {plugin}"),
            }
        }
        other => other.to_string(),
    }
}

fn print_table(indexes: &[IndexInfo], out: &mut dyn Write) -> Result<()> {
    const HEADER: [&str; 6] = ["NAME", "TYPE", "SCOPE", "EXTRACTOR", "STATE", "SOURCE"];
    let rows: Vec<[String; 6]> = indexes
        .iter()
        .map(|i| {
            [
                i.index_name.clone(),
                i.index_type.clone(),
                scope(&i.scope_prefix),
                extractor(&i.extractor),
                i.state.clone(),
                i.source.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    super::text::print_table(HEADER, &rows, out)
}

#[cfg(test)]
mod tests;
