//! The `lsm repl`: the user's commands over a [`Backend`]: a database opened in this
//! process (`lsm repl --data-dir DIR`) or a running server (`lsm repl --url URL`, which
//! works while the server holds the directory). Both share the parsing and the output
//! below; over HTTP, FLUSH is refused (the server has no such route) and a batch either
//! sets or deletes keys (the server's atomic batch routes do one or the other).
//!
//! Lines come from a terminal (with line editing and history) or from standard input,
//! so `printf 'SET a 1\nGET a\n' | lsm repl` works in scripts. Every command prints its
//! answer on standard output; a missing key reads as `(nil)`. A failed command prints
//! `ERR <reason>` and the REPL goes on, and the process exits non-zero if any command
//! failed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};

use super::backend::{show, Backend, BatchOp, Compacted, Verified};

const HELP: &str = "\
Commands (case-insensitive; quote keys with spaces as \"my key\"):
  SET <key> <value>      set a key (the value is the rest of the line)
  GET <key>              print a key's value
  DELETE <key>           delete a key
  SCAN <prefix>          print the keys starting with <prefix> and their values
  ALL                    print every key and value
  KEYS                   print every key
  COUNT                  print the number of keys
  STATS [ALL]            print engine statistics (ALL: per table)
  BATCH                  start a batch: then SET/DELETE lines, END to apply them
                         atomically, ABORT to drop them
  BATCH <op>; <op>; ...  apply SET/DELETE operations atomically on one line
  DEMO                   load sample data (users:*, cities:*, config:*)
  FLUSH                  write the memtable to an SSTable now
  COMPACT                flush, then merge every table into one sorted run
  VERIFY                 check every table and WAL record against its checksum
  HELP                   this text
  EXIT                   leave (also QUIT or end of input)
Connected to a server (lsm repl --url): FLUSH is not available, a batch either sets
or deletes keys, and COMPACT/VERIFY need the admin token if the server has one.";

/// What the REPL loop should do after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// Read the next line.
    Continue,
    /// Leave the REPL.
    Exit,
}

/// The REPL's state between lines: the backend and a batch being collected.
pub struct Repl {
    backend: Box<dyn Backend>,
    batch: Option<Vec<BatchOp>>,
}

impl Repl {
    /// A REPL over `backend`.
    pub fn new(backend: Box<dyn Backend>) -> Self {
        Repl {
            backend,
            batch: None,
        }
    }

    /// The prompt to show before the next line.
    pub fn prompt(&self) -> &'static str {
        if self.batch.is_some() {
            "batch> "
        } else {
            "lsm> "
        }
    }

    /// Runs one line, writing its answer to `out`.
    pub fn execute(&mut self, line: &str, out: &mut dyn Write) -> Result<Control> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(Control::Continue);
        }
        let (command, rest) = split_word(line);
        let command = command.to_ascii_uppercase();
        if self.batch.is_some() {
            return self.batch_line(&command, rest, out);
        }
        match command.as_str() {
            "SET" => {
                let (key, value) = key_and_value(rest)?;
                self.backend.set(&key, &value)?;
                writeln!(out, "OK")?;
            }
            "GET" => {
                let key = single_key(rest)?;
                match self.backend.get(&key)? {
                    Some(v) => writeln!(out, "{}", show(&v))?,
                    None => writeln!(out, "(nil)")?,
                }
            }
            "DELETE" | "DEL" => {
                let key = single_key(rest)?;
                self.backend.delete(&key)?;
                writeln!(out, "OK")?;
            }
            "SCAN" => {
                let prefix = if rest.trim().is_empty() {
                    String::new()
                } else {
                    single_key(rest)?
                };
                let n = print_entries(self.backend.scan(&prefix)?, out)?;
                writeln!(out, "({n} keys)")?;
            }
            "ALL" => {
                let n = print_entries(self.backend.scan("")?, out)?;
                writeln!(out, "({n} keys)")?;
            }
            "KEYS" => {
                let mut n = 0u64;
                for key in self.backend.keys()? {
                    writeln!(out, "{}", key?)?;
                    n += 1;
                }
                writeln!(out, "({n} keys)")?;
            }
            "COUNT" => writeln!(out, "{}", self.backend.count()?)?,
            "STATS" => {
                let all = match rest.trim() {
                    "" => false,
                    word if word.eq_ignore_ascii_case("all") => true,
                    other => bail!("STATS takes nothing or ALL, not {other:?}"),
                };
                let stats = self.backend.stats(all)?;
                writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
            }
            "BATCH" => {
                if rest.trim().is_empty() {
                    self.batch = Some(Vec::new());
                    writeln!(out, "batch started: SET/DELETE lines, then END or ABORT")?;
                } else {
                    let mut ops = Vec::new();
                    for op in rest.split(';').filter(|op| !op.trim().is_empty()) {
                        ops.push(parse_batch_op(op)?);
                    }
                    self.backend.check_batch(&ops)?;
                    self.backend.write_batch(&ops)?;
                    writeln!(out, "OK ({} operations)", ops.len())?;
                }
            }
            "DEMO" => {
                let n = load_demo(self.backend.as_ref())?;
                writeln!(out, "OK (loaded {n} sample keys)")?;
            }
            "FLUSH" => {
                self.backend.flush()?;
                writeln!(out, "OK")?;
            }
            "COMPACT" => print_compacted(&self.backend.compact()?, out)?,
            "VERIFY" => {
                if !print_verified(&self.backend.verify()?, out)? {
                    bail!("verification found damaged files");
                }
            }
            "HELP" | "?" => writeln!(out, "{HELP}")?,
            "EXIT" | "QUIT" => return Ok(Control::Exit),
            other => bail!("unknown command {other:?}; type HELP for the list"),
        }
        Ok(Control::Continue)
    }

    fn batch_line(&mut self, command: &str, rest: &str, out: &mut dyn Write) -> Result<Control> {
        match command {
            "END" | "COMMIT" => {
                let ops = self.batch.take().unwrap_or_default();
                if !ops.is_empty() {
                    self.backend.write_batch(&ops)?;
                }
                writeln!(out, "OK ({} operations)", ops.len())?;
            }
            "ABORT" => {
                self.batch = None;
                writeln!(out, "batch dropped")?;
            }
            "EXIT" | "QUIT" => {
                bail!("a batch is open: END to apply it or ABORT to drop it first")
            }
            _ => {
                let op = parse_batch_op(&format!("{command} {rest}"))?;
                let batch = self.batch.get_or_insert_with(Vec::new);
                batch.push(op);
                if let Err(e) = self.backend.check_batch(batch) {
                    batch.pop();
                    return Err(e);
                }
                writeln!(out, "queued ({} operations)", batch.len())?;
            }
        }
        Ok(Control::Continue)
    }

    /// True if a batch was started and neither applied nor dropped.
    pub fn has_open_batch(&self) -> bool {
        self.batch.is_some()
    }
}

fn parse_batch_op(op: &str) -> Result<BatchOp> {
    let (command, rest) = split_word(op.trim());
    match command.to_ascii_uppercase().as_str() {
        "SET" => {
            let (key, value) = key_and_value(rest)?;
            Ok(BatchOp::Set { key, value })
        }
        "DELETE" | "DEL" => Ok(BatchOp::Delete {
            key: single_key(rest)?,
        }),
        other => bail!("only SET and DELETE can go in a batch, not {other:?}"),
    }
}

/// Splits off the first whitespace-separated word.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Reads a key: a bare word or a double-quoted string (with `\"` and `\\` escapes).
/// Returns the key and the rest of the line.
fn parse_key(s: &str) -> Result<(String, &str)> {
    let s = s.trim_start();
    let Some(quoted) = s.strip_prefix('"') else {
        let (word, rest) = split_word(s);
        if word.is_empty() {
            bail!("a key is required");
        }
        return Ok((word.to_string(), rest));
    };
    let mut key = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((key, &quoted[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e)) => key.push(e),
                None => break,
            },
            c => key.push(c),
        }
    }
    bail!("unterminated quoted key")
}

fn single_key(s: &str) -> Result<String> {
    let (key, rest) = parse_key(s)?;
    if !rest.trim().is_empty() {
        bail!("unexpected text after the key: {:?}", rest.trim());
    }
    Ok(key)
}

fn key_and_value(s: &str) -> Result<(String, String)> {
    let (key, rest) = parse_key(s)?;
    let value = rest.strip_prefix(char::is_whitespace).unwrap_or(rest);
    if rest.trim().is_empty() {
        bail!("SET needs a value: SET <key> <value>");
    }
    Ok((key, value.to_string()))
}

/// Prints `key = value` lines; returns how many.
pub(super) fn print_entries(
    entries: super::backend::Entries<'_>,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut n = 0;
    for entry in entries {
        let (key, value) = entry?;
        writeln!(out, "{key} = {}", show(&value))?;
        n += 1;
    }
    Ok(n)
}

/// Prints the outcome of COMPACT.
pub(super) fn print_compacted(c: &Compacted, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "OK ({} tables, {} bytes)", c.tables, c.table_bytes)?;
    Ok(())
}

/// Prints the outcome of VERIFY, one line per file; returns whether every file passed
/// (the closing `OK` line is printed only then).
pub(super) fn print_verified(report: &Verified, out: &mut dyn Write) -> Result<bool> {
    for f in &report.files {
        match &f.error {
            None => writeln!(out, "ok   {} {} ({} checked)", f.kind, f.path, f.items)?,
            Some(e) => writeln!(out, "BAD  {} {}: {e}", f.kind, f.path)?,
        }
    }
    for ix in &report.indexes {
        if ix.problem_count == 0 {
            writeln!(
                out,
                "ok   index {} ({} records, {} live postings, {} dead)",
                ix.index, ix.records, ix.live_postings, ix.dead_postings
            )?;
        } else {
            writeln!(
                out,
                "BAD  index {}: {} problems",
                ix.index, ix.problem_count
            )?;
            for p in &ix.problems {
                writeln!(out, "       {p}")?;
            }
        }
    }
    if report.ok {
        match report.indexes.len() {
            0 => writeln!(out, "OK ({} files verified)", report.files.len())?,
            n => writeln!(
                out,
                "OK ({} files and {n} indexes verified)",
                report.files.len()
            )?,
        }
    }
    Ok(report.ok)
}

/// Loads the sample data set atomically and returns the number of keys written.
pub fn load_demo(backend: &dyn Backend) -> Result<usize> {
    const CITIES: [&str; 5] = ["PortoAlegre", "SaoPaulo", "Recife", "Curitiba", "Manaus"];
    const NAMES: [&str; 10] = [
        "Ana", "Bruno", "Carla", "Diego", "Elisa", "Fabio", "Gabi", "Hugo", "Iris", "Joao",
    ];
    let mut batch = Vec::new();
    let mut set = |key: String, value: String| batch.push(BatchOp::Set { key, value });
    for (i, name) in NAMES.iter().enumerate() {
        let city = CITIES[i % CITIES.len()];
        let age = 20 + (i * 7) % 40;
        let value = format!(
            r#"{{"name":"{name}","email":"{}@example.com","city":"{city}","age":{age}}}"#,
            name.to_lowercase()
        );
        set(format!("users:{}", i + 1), value);
    }
    for city in CITIES {
        set(format!("cities:{city}"), format!(r#"{{"name":"{city}"}}"#));
    }
    set("config:version".into(), "1".into());
    set("config:motd".into(), "hello from the demo data set".into());
    let n = batch.len();
    backend
        .write_batch(&batch)
        .context("loading the demo data")?;
    Ok(n)
}

/// Runs the REPL over `backend` until `EXIT` or the end of input. Returns the number of
/// commands that failed.
pub fn run(backend: Box<dyn Backend>) -> Result<u64> {
    let mut repl = Repl::new(backend);
    let stdin = std::io::stdin();
    let mut failures = 0;
    if stdin.is_terminal() {
        let mut editor = rustyline::DefaultEditor::new()?;
        let history =
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".lsm_history"));
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        println!(
            "lsm REPL on {} (HELP for commands)",
            repl.backend.describe()
        );
        loop {
            match editor.readline(repl.prompt()) {
                Ok(line) => {
                    let _ = editor.add_history_entry(line.as_str());
                    if run_line(&mut repl, &line, &mut failures)? == Control::Exit {
                        break;
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
    } else {
        for line in stdin.lock().lines() {
            if run_line(&mut repl, &line?, &mut failures)? == Control::Exit {
                break;
            }
        }
    }
    if repl.has_open_batch() {
        eprintln!("ERR input ended with an open batch; it was not applied");
        failures += 1;
    }
    Ok(failures)
}

fn run_line(repl: &mut Repl, line: &str, failures: &mut u64) -> Result<Control> {
    let mut out = std::io::stdout().lock();
    match repl.execute(line, &mut out) {
        Ok(c) => Ok(c),
        Err(e) => {
            *failures += 1;
            writeln!(out, "ERR {e:#}")?;
            Ok(Control::Continue)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_bare_and_quoted() {
        assert_eq!(parse_key(" a b").expect("bare"), ("a".to_string(), " b"));
        assert_eq!(
            parse_key(r#""my \"key\"" rest"#).expect("quoted"),
            ("my \"key\"".to_string(), " rest")
        );
        assert!(parse_key(r#""open"#).is_err());
        assert!(parse_key("   ").is_err());
        assert_eq!(
            key_and_value("k  two words").expect("kv"),
            ("k".to_string(), " two words".to_string())
        );
        assert!(key_and_value("k").is_err());
    }

    #[test]
    fn batch_ops_parse() {
        assert_eq!(
            parse_batch_op(" set \"a b\" 1 2").expect("set"),
            BatchOp::Set {
                key: "a b".into(),
                value: "1 2".into()
            }
        );
        assert_eq!(
            parse_batch_op("DEL k").expect("delete"),
            BatchOp::Delete { key: "k".into() }
        );
        assert!(parse_batch_op("GET k").is_err());
    }
}
