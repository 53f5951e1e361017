//! `lsm query`: an indexed query, its results printed as JSON lines.
//!
//! The query is a request body as `POST /query` takes it (the argument, or
//! `--body-file`), or one clause given by flags: `--index NAME` with `--term T`,
//! `--range 'gte=30,lt=40'` or `--match 'some words'`. `--limit`, `--cursor` and
//! `--explain` are added to either. A value of `--term` or of a bound of `--range` is
//! sent as a JSON number or boolean when it reads as one (`30`, `2.5`, `true`), as a
//! string otherwise; a JSON string (`'"30"'`) is sent as that string.
//!
//! Output: one `{"key": ..., "value": ...}` per result on standard output, compact, as
//! pages arrive: the first page, or every page with `--all`. When more pages follow and
//! `--all` was not given, `next_cursor: C` on standard error. `--explain` prints the
//! plan (of the first page) and `-v` the stats (added up over the pages) on standard
//! error. A query with no results prints nothing and succeeds.

use super::text::read_text;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

use crate::cli::client::{Client, ClientError};
use crate::cli::QueryArgs;

/// Runs the query of `args`, writing its results to `out`; returns the exit code (0).
pub fn execute(client: &Client, args: QueryArgs, out: &mut dyn Write) -> Result<u8> {
    let all = args.all;
    let verbose = args.verbose;
    let mut body = request_body(&args, read_text)?;
    let mut stats: Option<Map<String, Value>> = None;
    let mut pages = 0u64;
    loop {
        let page = client.query(&Value::Object(body.clone()))?;
        pages += 1;
        if pages == 1 {
            if let Some(plan) = &page.plan {
                out.flush()?;
                eprintln!("plan: {}", serde_json::to_string_pretty(plan)?);
            }
            // The plan is printed once; later pages need not make it.
            body.remove("explain");
        }
        for result in &page.results {
            writeln!(out, "{result}")?;
        }
        if let Some(Value::Object(page_stats)) = &page.stats {
            add_stats(stats.get_or_insert_with(Map::new), page_stats);
        }
        let Some(next) = page.next_cursor else {
            break;
        };
        if !all {
            out.flush()?;
            eprintln!("next_cursor: {next}");
            break;
        }
        let previous = body.get("cursor").and_then(Value::as_str);
        if page.results.is_empty() && previous == Some(next.as_str()) {
            return Err(ClientError::Protocol {
                url: format!("{}/query", client.url()),
                reason: "the cursor does not advance".into(),
            }
            .into());
        }
        body.insert("cursor".into(), Value::String(next));
    }
    if verbose {
        out.flush()?;
        let stats = Value::Object(stats.unwrap_or_default());
        if pages > 1 {
            eprintln!("stats: {stats} ({pages} pages)");
        } else {
            eprintln!("stats: {stats}");
        }
    }
    Ok(0)
}

/// The request body of `args`: the JSON given (argument, or the file `read` returns),
/// or the clause of the shorthand flags, with `limit`, `cursor` and `explain` added.
pub fn request_body(
    args: &QueryArgs,
    read: impl Fn(&Path) -> Result<String>,
) -> Result<Map<String, Value>> {
    let mut body = match (&args.body, &args.body_file, &args.index) {
        (Some(text), None, None) => parse_body(text).context("the query")?,
        (None, Some(path), None) => {
            parse_body(&read(path)?).with_context(|| format!("--body-file {}", path.display()))?
        }
        (None, None, Some(index)) => shorthand(index, args)?,
        (None, None, None) => bail!(
            "give the query as JSON ('{{\"index\": \"by_city\", \"term\": \"Recife\"}}'), \
             with --body-file, or with --index and --term, --range or --match"
        ),
        _ => bail!("give the query one way: as JSON, with --body-file, or with --index"),
    };
    if let Some(limit) = args.limit {
        body.insert("limit".into(), Value::from(limit));
    }
    if let Some(cursor) = &args.cursor {
        body.insert("cursor".into(), Value::String(cursor.clone()));
    }
    if args.explain {
        body.insert("explain".into(), Value::Bool(true));
    }
    Ok(body)
}

fn parse_body(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(_) => bail!("not a JSON object: {}", text.trim()),
        Err(e) => bail!("not JSON: {e}"),
    }
}

fn shorthand(index: &str, args: &QueryArgs) -> Result<Map<String, Value>> {
    let mut body = Map::new();
    body.insert("index".into(), Value::String(index.to_string()));
    match (&args.term, &args.range, &args.match_text) {
        (Some(term), None, None) => body.insert("term".into(), scalar(term)),
        (None, Some(range), None) => body.insert("range".into(), Value::Object(bounds(range)?)),
        (None, None, Some(text)) => body.insert("match".into(), Value::String(text.clone())),
        _ => bail!("--index takes one of --term, --range or --match"),
    };
    Ok(body)
}

/// A term as typed: a JSON number, boolean or string when it reads as one, else the
/// text itself.
fn scalar(text: &str) -> Value {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::String(_))) => v,
        _ => Value::String(text.to_string()),
    }
}

/// `gte=30,lt=40` as `{"gte": 30, "lt": 40}`. Commas inside a quoted value
/// (`gte="a,b"`) do not separate bounds.
fn bounds(text: &str) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for part in split_outside_quotes(text) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (op, value) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("--range: {part:?} is not OP=VALUE (OP: gte, gt, lte, lt)"))?;
        let op = op.trim();
        if !matches!(op, "gte" | "gt" | "lte" | "lt") {
            bail!("--range: {op:?} is not one of gte, gt, lte, lt");
        }
        let lower = |o: &str| matches!(o, "gte" | "gt");
        if out.keys().any(|k| lower(k) == lower(op)) {
            bail!("--range: two lower or two upper bounds in {text:?}");
        }
        out.insert(op.to_string(), scalar(value.trim()));
    }
    if out.is_empty() {
        bail!("--range: give at least one bound, e.g. 'gte=30,lt=40'");
    }
    Ok(out)
}

fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Adds each numeric field of `page` to `total` (other fields keep their last value).
fn add_stats(total: &mut Map<String, Value>, page: &Map<String, Value>) {
    for (k, v) in page {
        let sum = match (total.get(k).and_then(Value::as_u64), v.as_u64()) {
            (Some(a), Some(b)) => Value::from(a.saturating_add(b)),
            _ => v.clone(),
        };
        total.insert(k.clone(), sum);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::cli::{Cli, Command};

    /// The body `lsm <args>` would send first (`--body-file` reads "file.json" as
    /// `file`).
    fn sent_with(args: &[&str], file: &str) -> Result<Value> {
        let cli = Cli::try_parse_from(std::iter::once("lsm").chain(args.iter().copied()))?;
        let Command::Query { query, .. } = cli.command else {
            bail!("not a query");
        };
        let body = request_body(&query, |p| match p.to_str() {
            Some("file.json") => Ok(file.to_string()),
            _ => bail!("no such file: {}", p.display()),
        })?;
        Ok(Value::Object(body))
    }

    fn sent(args: &[&str]) -> Result<Value> {
        sent_with(args, "")
    }

    #[test]
    fn shorthand_flags_make_a_body() -> Result<()> {
        assert_eq!(
            sent(&["query", "--index", "by_city", "--term", "PortoAlegre"])?,
            json!({"index": "by_city", "term": "PortoAlegre"})
        );
        assert_eq!(
            sent(&["query", "--index", "by_age", "--term", "30"])?,
            json!({"index": "by_age", "term": 30})
        );
        assert_eq!(
            sent(&["query", "--index", "zip", "--term", r#""30""#])?,
            json!({"index": "zip", "term": "30"})
        );
        assert_eq!(
            sent(&["query", "--index", "zip", "--term", "007"])?,
            json!({"index": "zip", "term": "007"})
        );
        assert_eq!(
            sent(&["query", "--index", "vip", "--term", "true"])?,
            json!({"index": "vip", "term": true})
        );
        assert_eq!(
            sent(&["query", "--index", "t", "--term", "-2.5"])?,
            json!({"index": "t", "term": -2.5})
        );
        assert_eq!(
            sent(&["query", "--index", "by_age", "--range", "gte=30,lt=40"])?,
            json!({"index": "by_age", "range": {"gte": 30, "lt": 40}})
        );
        assert_eq!(
            sent(&[
                "query",
                "--index",
                "names",
                "--range",
                r#"gt="b,c", lte = d"#
            ])?,
            json!({"index": "names", "range": {"gt": "b,c", "lte": "d"}})
        );
        assert_eq!(
            sent(&[
                "query",
                "--index",
                "bio",
                "--match",
                "rust storage",
                "--limit",
                "5"
            ])?,
            json!({"index": "bio", "match": "rust storage", "limit": 5})
        );
        assert_eq!(
            sent(&[
                "query",
                "--index",
                "bio",
                "--match",
                "x",
                "--explain",
                "--cursor",
                "c1",
                "--all",
                "-v",
                "--instance",
                "docs"
            ])?,
            json!({"index": "bio", "match": "x", "explain": true, "cursor": "c1"})
        );
        Ok(())
    }

    #[test]
    fn bodies_are_sent_as_given_with_the_flags_added() -> Result<()> {
        let and = r#"{"and": [{"index": "by_city", "term": "Recife"},
                              {"index": "by_age", "range": {"gte": 30}}]}"#;
        assert_eq!(
            sent(&["query", and, "--limit", "2", "--explain"])?,
            json!({"and": [{"index": "by_city", "term": "Recife"},
                           {"index": "by_age", "range": {"gte": 30}}],
                   "limit": 2, "explain": true})
        );
        assert_eq!(
            sent_with(
                &["query", "--body-file", "file.json"],
                r#"{"index": "bio", "match": "rust", "limit": 7}"#
            )?,
            json!({"index": "bio", "match": "rust", "limit": 7})
        );
        // --limit replaces the body's.
        assert_eq!(
            sent(&[
                "query",
                r#"{"index": "a", "term": 1, "limit": 7}"#,
                "--limit",
                "3"
            ])?,
            json!({"index": "a", "term": 1, "limit": 3})
        );
        Ok(())
    }

    #[test]
    fn bad_queries_fail_before_any_request() {
        for args in [
            &["query"][..],
            &["query", "--index", "a"],
            &["query", "--term", "x"],
            &["query", "--index", "a", "--term", "x", "--match", "y"],
            &["query", "--index", "a", "--term", "x", "--range", "gt=1"],
            &[
                "query",
                r#"{"index": "a", "term": 1}"#,
                "--index",
                "a",
                "--term",
                "1",
            ],
            &[
                "query",
                r#"{"index": "a", "term": 1}"#,
                "--body-file",
                "file.json",
            ],
            &["query", "{"],
            &["query", "[1]"],
            &["query", "--body-file", "missing.json"],
            &["query", "--index", "a", "--range", "30"],
            &["query", "--index", "a", "--range", "ge=30"],
            &["query", "--index", "a", "--range", "gte=1,gt=2"],
            &["query", "--index", "a", "--range", ","],
            &["query", "--index", "a", "--term", "x", "--limit", "-1"],
        ] {
            assert!(sent(args).is_err(), "{args:?}");
        }
        assert!(sent_with(&["query", "--body-file", "file.json"], "not json").is_err());
    }

    #[test]
    fn stats_add_up_over_pages() {
        let mut total = Map::new();
        for page in [
            json!({"postings_scanned": 10, "blocks_read": 2, "note": "a"}),
            json!({"postings_scanned": 5, "blocks_read": 1, "dead_skipped": 3, "note": "b"}),
        ] {
            if let Value::Object(p) = page {
                add_stats(&mut total, &p);
            }
        }
        assert_eq!(
            Value::Object(total),
            json!({"postings_scanned": 15, "blocks_read": 3, "dead_skipped": 3, "note": "b"})
        );
    }
}
