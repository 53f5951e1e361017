//! What every subject of the index benchmark implements, and the list of subjects.

use std::path::Path;

use anyhow::Result;
use clap::ValueEnum;

use crate::corpus::Hit;
use crate::lsm_subject::{self, Extraction, LsmSubject};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum SubjectKind {
    /// SQLite (bundled) with expression indexes on `json_extract`.
    Sqlite,
    /// lsm with indexes using the built-in `json_path` extractor.
    LsmNative,
    /// lsm with the same indexes using the `json_path` WebAssembly component.
    LsmWasm,
}

impl SubjectKind {
    pub const ALL: [SubjectKind; 3] = [
        SubjectKind::Sqlite,
        SubjectKind::LsmNative,
        SubjectKind::LsmWasm,
    ];

    /// The subject every other is compared with.
    pub const BASELINE: SubjectKind = SubjectKind::Sqlite;

    pub fn name(self) -> &'static str {
        match self {
            SubjectKind::Sqlite => "sqlite",
            SubjectKind::LsmNative => "lsm-native",
            SubjectKind::LsmWasm => "lsm-wasm",
        }
    }

    /// Why the subject cannot run on this machine, if it cannot (`lsm-wasm` without its
    /// component).
    pub fn unavailable(self) -> Option<String> {
        match self {
            SubjectKind::LsmWasm => lsm_subject::wasm_component().err(),
            SubjectKind::Sqlite | SubjectKind::LsmNative => None,
        }
    }

    /// A fresh, empty subject in the (not yet existing) directory `dir`.
    pub fn open(self, dir: &Path, cfg: &Config) -> Result<Box<dyn Subject>> {
        Ok(match self {
            SubjectKind::Sqlite => Box::new(Sqlite::open(dir, cfg)?),
            SubjectKind::LsmNative => Box::new(LsmSubject::open(Extraction::Native, dir, cfg)?),
            SubjectKind::LsmWasm => Box::new(LsmSubject::open(Extraction::Wasm, dir, cfg)?),
        })
    }
}
