//! What every subject of the index benchmark implements, and the list of subjects.

use std::path::Path;

use anyhow::Result;
use clap::ValueEnum;

use crate::corpus::Hit;
use crate::sqlite::Sqlite;

/// A store with indexes on `$.city` (equality) and `$.age` (range) of JSON documents.
pub trait Subject {
    /// The name in the report.
    fn name(&self) -> String;

    /// The settings that matter for the comparison (version, durability, cache), one
    /// line for the report.
    fn settings(&self) -> String;

    /// Stores one batch of `(key, JSON bytes)` atomically, with its index entries; the
    /// harness calls it once per `--batch` documents, in key order.
    fn ingest(&mut self, docs: &[(String, Vec<u8>)]) -> Result<()>;

    /// The first page (up to `limit`) of documents whose `city` is `city`, with their
    /// values, in any order that is the same from call to call.
    fn query_city(&mut self, city: &str, limit: usize) -> Result<Vec<Hit>>;

    /// The first page of documents whose `city` is `city` and `lo <= age < hi`.
    fn query_city_age(&mut self, city: &str, lo: i64, hi: i64, limit: usize) -> Result<Vec<Hit>>;

    /// Facts for the report once the queries have run (query plans, index sizes).
    fn notes(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Settings shared by every subject.
pub struct Config {
    /// Page / block cache of each subject, in bytes.
    pub cache_bytes: u64,
}

/// The subjects `--only` can name, in the order they run.
///
/// The lsm subjects (`lsm-native`, `lsm-wasm`) join this list once they are written;
/// `lsm_subject.rs` describes them. Until then SQLite runs alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum SubjectKind {
    /// SQLite (bundled) with expression indexes on `json_extract`.
    Sqlite,
}

impl SubjectKind {
    pub const ALL: [SubjectKind; 1] = [SubjectKind::Sqlite];

    /// The subject every other is compared with.
    pub const BASELINE: SubjectKind = SubjectKind::Sqlite;

    pub fn name(self) -> &'static str {
        match self {
            SubjectKind::Sqlite => "sqlite",
        }
    }

    /// A fresh, empty subject in the (not yet existing) directory `dir`.
    pub fn open(self, dir: &Path, cfg: &Config) -> Result<Box<dyn Subject>> {
        Ok(match self {
            SubjectKind::Sqlite => Box::new(Sqlite::open(dir, cfg)?),
        })
    }
}
