//! The list of subjects `--only` can name, and how each is opened. Kept apart from
//! the `Subject` trait so the implementations depend on the trait alone.

use std::path::Path;

use anyhow::Result;
use clap::ValueEnum;

use crate::lsm_subject::{self, Extraction, LsmSubject};
use crate::sqlite::Sqlite;
use crate::subject::{Config, Subject};

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
