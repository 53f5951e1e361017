//! SQLite (the `rusqlite` crate's bundled build): one table of documents and expression
//! indexes on `json_extract` of the two queried fields.
//!
//! Durability: WAL journal with `synchronous=NORMAL`: a commit is written to the WAL
//! (it reaches the OS, so it survives a crash of the process) but not fsynced; the WAL
//! is fsynced only at checkpoints. That is the setting comparable with lsm's
//! `SyncPolicy::Never` / `Periodic`; the lsm subjects use `Never`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};

use crate::corpus::Hit;
use crate::subject::{Config, Subject};

// The query expressions must be the indexed expressions for SQLite to use the indexes.
const CITY: &str = "json_extract(value, '$.city')";
const AGE: &str = "json_extract(value, '$.age')";

pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
    cache_bytes: u64,
    insert: String,
    by_city: String,
    by_city_age: String,
}

impl Sqlite {
    pub fn open(dir: &Path, cfg: &Config) -> Result<Sqlite> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("docs.sqlite");
        let conn = Connection::open(&path)
            .with_context(|| format!("sqlite: opening {}", path.display()))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("sqlite: journal_mode is {mode}, not wal");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A negative cache_size is in KiB.
        conn.pragma_update(None, "cache_size", -i64::try_from(cfg.cache_bytes / 1024)?)?;
        // The value is TEXT: SQLite's JSON functions read a BLOB as its binary JSONB.
        conn.execute_batch(&format!(
            "CREATE TABLE docs(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE INDEX docs_city ON docs({CITY});
             CREATE INDEX docs_age ON docs({AGE});"
        ))?;
        Ok(Sqlite {
            conn,
            path,
            cache_bytes: cfg.cache_bytes,
            insert: "INSERT INTO docs(key, value) VALUES (?1, ?2)".into(),
            by_city: format!(
                "SELECT key, value FROM docs WHERE {CITY} = ?1 ORDER BY rowid LIMIT ?2"
            ),
            by_city_age: format!(
                "SELECT key, value FROM docs WHERE {CITY} = ?1 AND {AGE} >= ?2 AND {AGE} < ?3 \
                 ORDER BY rowid LIMIT ?4"
            ),
        })
    }

    fn plan(&self, sql: &str, args: impl rusqlite::Params) -> Result<String> {
        let mut stmt = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let rows = stmt.query_map(args, |r| r.get::<_, String>(3))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
    }
}

fn hit(row: &Row<'_>) -> rusqlite::Result<Hit> {
    let key = row.get(0)?;
    let value = match row.get_ref(1)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
        other => {
            return Err(rusqlite::Error::InvalidColumnType(
                1,
                "value".into(),
                other.data_type(),
            ))
        }
    };
    Ok(Hit { key, value })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Subject for Sqlite {
    fn name(&self) -> String {
        "sqlite".into()
    }

    fn settings(&self) -> String {
        format!(
            "sqlite {} (bundled): journal_mode=WAL, synchronous=NORMAL (commits reach the \
             OS but are not fsynced; the WAL is fsynced at checkpoints, every 1000 pages by \
             default), cache_size {} MiB, table `docs(key TEXT PRIMARY KEY, value TEXT)`, \
             indexes on `{CITY}` and `{AGE}` created before the ingest, one transaction \
             per batch through a prepared INSERT, queries `... ORDER BY rowid LIMIT ?` \
             reading key and value",
            rusqlite::version(),
            self.cache_bytes / (1024 * 1024)
        )
    }

    fn ingest(&mut self, docs: &[(String, Vec<u8>)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(&self.insert)?;
            for (key, value) in docs {
                let text = std::str::from_utf8(value).context("documents are UTF-8")?;
                stmt.execute(params![key, text])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn query_city(&mut self, city: &str, n: usize) -> Result<Vec<Hit>> {
        let mut stmt = self.conn.prepare_cached(&self.by_city)?;
        let rows = stmt.query_map(params![city, limit(n)], hit)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn query_city_age(&mut self, city: &str, lo: i64, hi: i64, n: usize) -> Result<Vec<Hit>> {
        let mut stmt = self.conn.prepare_cached(&self.by_city_age)?;
        let rows = stmt.query_map(params![city, lo, hi, limit(n)], hit)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn notes(&mut self) -> Result<Vec<String>> {
        let city = self.plan(&self.by_city, params!["Lisbon", 100])?;
        let and = self.plan(&self.by_city_age, params!["Lisbon", 30, 40, 100])?;
        let file_mib = |suffix: &str| {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            std::fs::metadata(&p).map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0))
        };
        Ok(vec![
            format!("sqlite query plan, equality: `{city}`"),
            format!("sqlite query plan, AND: `{and}`"),
            format!(
                "sqlite files after the queries: database {:.1} MiB, WAL {:.1} MiB",
                file_mib(""),
                file_mib("-wal")
            ),
        ])
    }
}
