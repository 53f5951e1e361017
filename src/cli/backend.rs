//! What the REPL runs its commands against: a database opened in this process
//! ([`Embedded`]) or a running server ([`Remote`], over HTTP). Both give the REPL the
//! same operations, so command parsing and output are shared; [`show`] renders a value
//! the same way for both.

use std::sync::Arc;

use crate::instance::Instance;
use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::client::Client;
use crate::codec::ValueOut;
use crate::engine::{Db, WriteBatch};

/// Entries in key order, read lazily.
pub type Entries<'a> = Box<dyn Iterator<Item = Result<(String, ValueOut)>> + 'a>;
/// Keys in order, read lazily.
pub type Keys<'a> = Box<dyn Iterator<Item = Result<String>> + 'a>;

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to the text `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// The state of the tables after a compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Live tables.
    pub tables: u64,
    /// Their bytes on disk.
    pub table_bytes: u64,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// True when every file passed.
    pub ok: bool,
    /// One entry per file.
    pub files: Vec<FileCheck>,
    /// One entry per index (over HTTP; the embedded REPL opens no indexes).
    pub indexes: Vec<crate::cli::client::VerifiedIndex>,
}

/// One file of a [`Verified`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// `table` or `wal`.
    pub kind: String,
    /// The file (on the machine that holds the database).
    pub path: String,
    /// Versions or records checked.
    pub items: u64,
    /// What is wrong with the file, if anything.
    pub error: Option<String>,
}

/// The operations of the REPL.
pub trait Backend {
    /// What the REPL is connected to, for its banner.
    fn describe(&self) -> String;
    /// The value of `key`, if it exists.
    fn get(&self, key: &str) -> Result<Option<ValueOut>>;
    /// Sets `key` to the text `value`.
    fn set(&self, key: &str, value: &str) -> Result<()>;
    /// Deletes `key`.
    fn delete(&self, key: &str) -> Result<()>;
    /// Fails if `ops` could not be applied atomically by [`write_batch`]
    /// (checked as a batch is built, so a batch is refused before it is lost).
    ///
    /// [`write_batch`]: Backend::write_batch
    fn check_batch(&self, ops: &[BatchOp]) -> Result<()> {
        let _ = ops;
        Ok(())
    }
    /// Applies `ops` atomically: all or none.
    fn write_batch(&self, ops: &[BatchOp]) -> Result<()>;
    /// The entries whose key starts with `prefix` (all of them for `""`).
    fn scan(&self, prefix: &str) -> Result<Entries<'_>>;
    /// Every key.
    fn keys(&self) -> Result<Keys<'_>>;
    /// The number of keys.
    fn count(&self) -> Result<u64> {
        let mut n = 0;
        for key in self.keys()? {
            key?;
            n += 1;
        }
        Ok(n)
    }
    /// Engine statistics; with `all`, per table.
    fn stats(&self, all: bool) -> Result<Value>;
    /// Writes the memtable to a table now.
    fn flush(&self) -> Result<()>;
    /// Flushes, then merges every table into one sorted run.
    fn compact(&self) -> Result<Compacted>;
    /// Checks every table and WAL record against its checksum.
    fn verify(&self) -> Result<Verified>;
}

/// Text for a value: a string as itself, other JSON compactly, UTF-8 bytes as text and
/// other bytes as their length and hex.
pub fn show(value: &ValueOut) -> String {
    match value {
        ValueOut::Json(Value::String(s)) => s.clone(),
        ValueOut::Json(other) => other.to_string(),
        ValueOut::Bytes(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                format!("(binary, {} bytes) 0x{hex}", bytes.len())
            }
        },
    }
}

/// An instance opened by this process: writes go through its indexes (if the
/// directory has any), so the REPL keeps them as consistent as the server does.
pub struct Embedded {
    instance: Arc<Instance>,
    db: Db,
}

impl Embedded {
    /// The backend over `instance`.
    pub fn new(instance: Arc<Instance>) -> Self {
        let db = instance.db().clone();
        Embedded { instance, db }
    }
}

impl Backend for Embedded {
    fn describe(&self) -> String {
        self.db.path().display().to_string()
    }

    fn get(&self, key: &str) -> Result<Option<ValueOut>> {
        if crate::index::keys::is_internal(key.as_bytes()) {
            return Err(crate::index::IndexError::ReservedKey.into());
        }
        Ok(self.db.get(key)?.map(ValueOut::Bytes))
    }

    fn set(&self, key: &str, value: &str) -> Result<()> {
        self.instance.put(key, value.as_bytes())?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.instance.delete(key)?;
        Ok(())
    }

    fn write_batch(&self, ops: &[BatchOp]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for op in ops {
            match op {
                BatchOp::Set { key, value } => batch.put(key, value),
                BatchOp::Delete { key } => batch.delete(key),
            };
        }
        self.instance.write(batch)?;
        Ok(())
    }

    fn scan(&self, prefix: &str) -> Result<Entries<'_>> {
        // Index records (keys under U+0000) are not the user's.
        let iter = if prefix.is_empty() {
            self.db.iter_range(crate::index::keys::FIRST_USER_KEY..)?
        } else {
            self.db.iter_prefix(prefix)?
        };
        Ok(Box::new(iter.map(|item| {
            let (key, value) = item?;
            Ok((key, ValueOut::Bytes(value)))
        })))
    }

    fn keys(&self) -> Result<Keys<'_>> {
        let iter = self.db.iter_range(crate::index::keys::FIRST_USER_KEY..)?;
        Ok(Box::new(iter.map(|item| Ok(item?.0))))
    }

    fn stats(&self, all: bool) -> Result<Value> {
        Ok(if all {
            serde_json::to_value(self.db.stats_all())?
        } else {
            serde_json::to_value(self.db.stats())?
        })
    }

    fn flush(&self) -> Result<()> {
        Ok(self.db.flush()?)
    }

    fn compact(&self) -> Result<Compacted> {
        self.db.compact()?;
        let stats = self.db.stats();
        Ok(Compacted {
            tables: stats.tables,
            table_bytes: stats.table_bytes,
        })
    }

    fn verify(&self) -> Result<Verified> {
        let report = self.db.verify();
        Ok(Verified {
            ok: report.ok,
            files: report
                .files
                .into_iter()
                .map(|f| FileCheck {
                    kind: f.kind.to_string(),
                    path: f.path.display().to_string(),
                    items: f.items,
                    error: f.error,
                })
                .collect(),
            indexes: Vec::new(),
        })
    }
}

/// A running server, over HTTP.
pub struct Remote {
    client: Client,
}

impl Remote {
    /// The backend over `client`.
    pub fn new(client: Client) -> Self {
        Remote { client }
    }

    /// The HTTP client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Backend for Remote {
    fn describe(&self) -> String {
        match self.client.instance() {
            Some(name) => format!("{} (instance {name})", self.client.url()),
            None => format!("{} (default instance)", self.client.url()),
        }
    }

    fn get(&self, key: &str) -> Result<Option<ValueOut>> {
        Ok(self.client.get(key)?)
    }

    fn set(&self, key: &str, value: &str) -> Result<()> {
        Ok(self.client.put(key, &Value::String(value.to_string()))?)
    }

    fn delete(&self, key: &str) -> Result<()> {
        Ok(self.client.delete(key)?)
    }

    fn write_batch(&self, ops: &[BatchOp]) -> Result<()> {
        // One POST /keys/batch applies sets and deletes atomically, in order.
        let items: Vec<(String, Option<Value>)> = ops
            .iter()
            .map(|op| match op {
                BatchOp::Set { key, value } => (key.clone(), Some(Value::String(value.clone()))),
                BatchOp::Delete { key } => (key.clone(), None),
            })
            .collect();
        if !items.is_empty() {
            self.client.put_batch(&items)?;
        }
        Ok(())
    }

    fn scan(&self, prefix: &str) -> Result<Entries<'_>> {
        let pages = self.client.scan(Some(prefix), None);
        Ok(Box::new(pages.map(|item| Ok(item?.into()))))
    }

    fn keys(&self) -> Result<Keys<'_>> {
        Ok(Box::new(self.client.keys(None, None).map(|key| Ok(key?))))
    }

    fn count(&self) -> Result<u64> {
        let mut n = 0;
        for key in self.client.keys(None, Some(crate::server::page::MAX_LIMIT)) {
            key?;
            n += 1;
        }
        Ok(n)
    }

    fn stats(&self, all: bool) -> Result<Value> {
        Ok(if all {
            self.client.stats_all()?
        } else {
            self.client.stats()?
        })
    }

    fn flush(&self) -> Result<()> {
        bail!(
            "FLUSH is not available over HTTP: the server flushes its memtable by itself \
             (when it fills up, and at shutdown); COMPACT flushes it first"
        )
    }

    fn compact(&self) -> Result<Compacted> {
        let done = self.client.compact()?;
        let stats = self.client.stats()?;
        let table_bytes = stats
            .get("table_bytes")
            .and_then(Value::as_u64)
            .context("the server's statistics have no table_bytes")?;
        Ok(Compacted {
            tables: done.tables_after,
            table_bytes,
        })
    }

    fn verify(&self) -> Result<Verified> {
        let report = self.client.verify()?;
        Ok(Verified {
            ok: report.ok,
            files: report
                .files
                .into_iter()
                .map(|f| FileCheck {
                    kind: f.kind,
                    path: f.path,
                    items: f.items,
                    error: f.error,
                })
                .collect(),
            indexes: report.indexes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_as_text_json_or_hex() {
        assert_eq!(show(&ValueOut::Bytes(b"abc".to_vec())), "abc");
        assert_eq!(
            show(&ValueOut::Bytes(vec![0xff, 0x00])),
            "(binary, 2 bytes) 0xff00"
        );
        assert_eq!(show(&ValueOut::Json(Value::String("a b".into()))), "a b");
        assert_eq!(
            show(&ValueOut::Json(serde_json::json!({"a": [1, null]}))),
            r#"{"a":[1,null]}"#
        );
    }
}
