//! PLACEHOLDER: where the lsm subjects plug in. They are not written yet.
//!
//! Nothing here runs. [`LsmSubject`] has no [`Subject`](crate::subject::Subject)
//! implementation and `SubjectKind` (subject.rs) does not list it. To add the subjects:
//!
//! 1. implement `Subject` for `LsmSubject` with the index API;
//! 2. add `SubjectKind::LsmNative` (`lsm-native`) and `SubjectKind::LsmWasm`
//!    (`lsm-wasm`) to `SubjectKind`, `SubjectKind::ALL`, `name` and `open`;
//! 3. describe their settings in bench/README.md.
//!
//! The two subjects expected, identical except for the extractor:
//!
//! - `lsm-native`: an `lsm::instance::Instance` (its `Indexes` keep the index records
//!   in the same engine writes as the documents) with two indexes, scope `users:`:
//!   `by_city`, type `equality`, and `by_age`, type `range`, both with the built-in
//!   `json_path` extractor ([`ExtractorSpec::JsonPath`]) on `$.city` and `$.age`.
//! - `lsm-wasm`: the same two indexes with [`ExtractorSpec::Custom`] extractors: the
//!   standard `json_path` WebAssembly component (`extractors/dist/json_path.wasm`,
//!   built by `extractors/build.sh`), put in the instance's plugin store and called
//!   through `lsm::plugin::WasmExtractor` with `{"path": "$.city"}` and
//!   `{"path": "$.age"}` as options. It measures what extraction through the component
//!   costs at ingest; its queries read the same kind of index as `lsm-native`'s. When
//!   the component is not built, the subject must be skipped with a note, as
//!   `lsm-bench-plugins` does, not replaced by the native one.
//!
//! To be comparable with the SQLite subject (WAL, `synchronous=NORMAL`, 64 MiB cache
//! by default):
//!
//! - open with `sync = never` (`SyncPolicy::Never`) or `periodic`: writes reach the
//!   OS, no fsync per write; block cache `Config::cache_bytes`; the memtable size of
//!   `lsm-bench` (32 MiB);
//! - create both indexes on the empty instance and wait for their build tasks, before
//!   the ingest, so the index entries are written with the documents, as SQLite
//!   maintains its indexes;
//! - `ingest`: one atomic write batch per call (the harness passes `--batch` documents);
//! - `query_city`: a `term` query on `by_city`; `query_city_age`: the `and` of that
//!   and a `range` (`gte` lo, `lt` hi) on `by_age`, the AND done by the index (not by
//!   filtering documents here). Each result carries its stored value, as SQLite's
//!   answer carries `value`; results come in doc id order, which for this ingest is
//!   SQLite's rowid order;
//! - the check queries ask with no limit (`usize::MAX`): above the query limit of the
//!   index API (10,000 by default, and a city has about 10,000 documents at 1M), so
//!   the subject must follow `next_cursor` page by page for them;
//! - `notes`: anything the report should show, such as bytes of index records on disk.
//!
//! Every answer is checked against the generated documents (`Corpus::check`), so a
//! subject that returns wrong pages stops the run instead of being timed.

use std::path::PathBuf;

use lsm::extractor::ExtractorSpec;

/// How an lsm subject extracts its index terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extraction {
    /// The built-in `json_path` extractor.
    Native,
    /// The `json_path` WebAssembly component, as an uploaded plugin.
    Wasm,
}

/// The name the WebAssembly component is uploaded under.
pub const WASM_PLUGIN: &str = "json_path";

/// Where `extractors/build.sh` puts the component, relative to the repository root.
pub const WASM_COMPONENT: &str = "extractors/dist/json_path.wasm";

/// A stub: an lsm database with indexes on `$.city` and `$.age`. See the module
/// documentation for what it must become.
pub struct LsmSubject {
    pub extraction: Extraction,
    pub dir: PathBuf,
}

impl LsmSubject {
    pub fn name(&self) -> String {
        match self.extraction {
            Extraction::Native => "lsm-native".into(),
            Extraction::Wasm => "lsm-wasm".into(),
        }
    }

    /// The extractor of the index on the JSON field at `path` (`$.city`, `$.age`).
    pub fn extractor(&self, path: &str) -> ExtractorSpec {
        match self.extraction {
            Extraction::Native => ExtractorSpec::JsonPath { path: path.into() },
            Extraction::Wasm => ExtractorSpec::Custom {
                plugin: WASM_PLUGIN.into(),
                options: serde_json::json!({ "path": path }),
            },
        }
    }
}
