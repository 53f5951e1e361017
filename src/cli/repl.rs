//! The `lsm repl`: the user's commands over an embedded database.
//!
//! Lines come from a terminal (with line editing and history) or from standard input,
//! so `printf 'SET a 1\nGET a\n' | lsm repl` works in scripts. Every command prints its
//! answer on standard output; a failed command prints `ERR <reason>` and the REPL goes
//! on, and the process exits non-zero if any command failed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};

use crate::engine::{Db, WriteBatch};

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
  EXIT                   leave (also QUIT or end of input)";

/// What the REPL loop should do after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// Read the next line.
    Continue,
    /// Leave the REPL.
    Exit,
}

/// The REPL's state between lines: the open database and a batch being collected.
pub struct Repl {
    db: Db,
    batch: Option<WriteBatch>,
}

impl Repl {
    /// A REPL over `db`.
    pub fn new(db: Db) -> Self {
        Repl { db, batch: None }
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
                self.db.put(&key, value.as_bytes())?;
                writeln!(out, "OK")?;
            }
            "GET" => {
                let key = single_key(rest)?;
                match self.db.get(&key)? {
                    Some(v) => writeln!(out, "{}", show_value(&v))?,
                    None => writeln!(out, "(nil)")?,
                }
            }
            "DELETE" | "DEL" => {
                let key = single_key(rest)?;
                self.db.delete(&key)?;
                writeln!(out, "OK")?;
            }
            "SCAN" => {
                let prefix = if rest.trim().is_empty() {
                    String::new()
                } else {
                    single_key(rest)?
                };
                let n = print_pairs(self.db.iter_prefix(&prefix)?, out, true)?;
                writeln!(out, "({n} keys)")?;
            }
            "ALL" => {
                let n = print_pairs(self.db.iter()?, out, true)?;
                writeln!(out, "({n} keys)")?;
            }
            "KEYS" => {
                let n = print_pairs(self.db.iter()?, out, false)?;
                writeln!(out, "({n} keys)")?;
            }
            "COUNT" => {
                let mut n = 0u64;
                for item in self.db.iter()? {
                    item?;
                    n += 1;
                }
                writeln!(out, "{n}")?;
            }
            "STATS" => {
                if rest.trim().eq_ignore_ascii_case("all") {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&self.db.stats_all())?
                    )?;
                } else {
                    writeln!(out, "{}", serde_json::to_string_pretty(&self.db.stats())?)?;
                }
            }
            "BATCH" => {
                if rest.trim().is_empty() {
                    self.batch = Some(WriteBatch::new());
                    writeln!(out, "batch started: SET/DELETE lines, then END or ABORT")?;
                } else {
                    let mut batch = WriteBatch::new();
                    for op in rest.split(';').filter(|op| !op.trim().is_empty()) {
                        add_to_batch(&mut batch, op)?;
                    }
                    let n = batch.len();
                    self.db.write_batch(batch)?;
                    writeln!(out, "OK ({n} operations)")?;
                }
            }
            "DEMO" => {
                let n = load_demo(&self.db)?;
                writeln!(out, "OK (loaded {n} sample keys)")?;
            }
            "FLUSH" => {
                self.db.flush()?;
                writeln!(out, "OK")?;
            }
            "COMPACT" => {
                self.db.compact()?;
                let s = self.db.stats();
                writeln!(out, "OK ({} tables, {} bytes)", s.tables, s.table_bytes)?;
            }
            "VERIFY" => {
                let report = self.db.verify();
                for f in &report.files {
                    match &f.error {
                        None => writeln!(
                            out,
                            "ok   {} {} ({} checked)",
                            f.kind,
                            f.path.display(),
                            f.items
                        )?,
                        Some(e) => writeln!(out, "BAD  {} {}: {e}", f.kind, f.path.display())?,
                    }
                }
                if !report.ok {
                    bail!("verification found damaged files");
                }
                writeln!(out, "OK ({} files verified)", report.files.len())?;
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
                let batch = self.batch.take().unwrap_or_default();
                let n = batch.len();
                self.db.write_batch(batch)?;
                writeln!(out, "OK ({n} operations)")?;
            }
            "ABORT" => {
                self.batch = None;
                writeln!(out, "batch dropped")?;
            }
            "EXIT" | "QUIT" => {
                bail!("a batch is open: END to apply it or ABORT to drop it first")
            }
            _ => {
                let batch = self.batch.get_or_insert_with(WriteBatch::new);
                add_to_batch(batch, &format!("{command} {rest}"))?;
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

fn add_to_batch(batch: &mut WriteBatch, op: &str) -> Result<()> {
    let (command, rest) = split_word(op.trim());
    match command.to_ascii_uppercase().as_str() {
        "SET" => {
            let (key, value) = key_and_value(rest)?;
            batch.put(key, value);
        }
        "DELETE" | "DEL" => {
            batch.delete(single_key(rest)?);
        }
        other => bail!("only SET and DELETE can go in a batch, not {other:?}"),
    }
    Ok(())
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

/// Text for a value: itself when it is UTF-8, else its length and hex bytes.
fn show_value(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("(binary, {} bytes) 0x{hex}", v.len())
        }
    }
}

fn print_pairs(
    items: impl Iterator<Item = crate::engine::Result<(String, Vec<u8>)>>,
    out: &mut dyn Write,
    with_values: bool,
) -> Result<u64> {
    let mut n = 0;
    for item in items {
        let (k, v) = item?;
        if with_values {
            writeln!(out, "{k} = {}", show_value(&v))?;
        } else {
            writeln!(out, "{k}")?;
        }
        n += 1;
    }
    Ok(n)
}

/// Loads the sample data set atomically and returns the number of keys written.
pub fn load_demo(db: &Db) -> Result<usize> {
    const CITIES: [&str; 5] = ["PortoAlegre", "SaoPaulo", "Recife", "Curitiba", "Manaus"];
    const NAMES: [&str; 10] = [
        "Ana", "Bruno", "Carla", "Diego", "Elisa", "Fabio", "Gabi", "Hugo", "Iris", "Joao",
    ];
    let mut batch = WriteBatch::new();
    for (i, name) in NAMES.iter().enumerate() {
        let city = CITIES[i % CITIES.len()];
        let age = 20 + (i * 7) % 40;
        let value = format!(
            r#"{{"name":"{name}","email":"{}@example.com","city":"{city}","age":{age}}}"#,
            name.to_lowercase()
        );
        batch.put(format!("users:{}", i + 1), value);
    }
    for city in CITIES {
        batch.put(format!("cities:{city}"), format!(r#"{{"name":"{city}"}}"#));
    }
    batch.put("config:version", "1");
    batch.put("config:motd", "hello from the demo data set");
    let n = batch.len();
    db.write_batch(batch).context("loading the demo data")?;
    Ok(n)
}

/// Runs the REPL over `db` until `EXIT` or the end of input. Returns the number of
/// commands that failed.
pub fn run(db: Db) -> Result<u64> {
    let mut repl = Repl::new(db);
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
            repl.db.path().display()
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
    fn binary_values_show_as_hex() {
        assert_eq!(show_value(b"abc"), "abc");
        assert_eq!(show_value(&[0xff, 0x00]), "(binary, 2 bytes) 0xff00");
    }
}
