//! What every subject of the index benchmark implements (the list of subjects is in
//! `subjects.rs`).

use anyhow::Result;

use crate::corpus::Hit;

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

    /// Called once after the last batch, inside the timed ingest: finishes the work the
    /// store deferred (for lsm, the flushes and compactions the ingest left due), so the
    /// queries meet the settled store and the ingest figure includes that work.
    fn settle(&mut self) -> Result<()> {
        Ok(())
    }

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
