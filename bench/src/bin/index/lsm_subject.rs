//! The lsm subjects: an [`Instance`] of this repository's engine with two secondary
//! indexes, identical except for the extractor.
//!
//! - `lsm-native`: `by_city` (type `equality`) and `by_age` (type `range`), scope
//!   `users:`, both with the built-in `json_path` extractor
//!   ([`ExtractorSpec::JsonPath`]) on `$.city` and `$.age`.
//! - `lsm-wasm`: the same two indexes with [`ExtractorSpec::Custom`] extractors: the
//!   standard `json_path` WebAssembly component (`extractors/dist/json_path.wasm`,
//!   built by `extractors/build.sh`), put in the instance's plugin store and called
//!   through `lsm::plugin::WasmExtractor` with `{"path": "$.city"}` and
//!   `{"path": "$.age"}` as options. It measures what extraction through the component
//!   costs at ingest; its queries read the same kind of index as `lsm-native`'s. When
//!   the component is not built, the harness skips the subject with a note (see
//!   [`wasm_component`]); it is never replaced by the native one.
//!
//! Settings, to be comparable with the SQLite subject (WAL, `synchronous=NORMAL`):
//!
//! - `sync = never` (`SyncPolicy::Never`): every batch is written to the WAL, so it
//!   reaches the OS, without an fsync; block cache `Config::cache_bytes`; memtable
//!   32 MiB, as `lsm-bench` uses; the other settings are those of
//!   `Config::embedded_default()` (leveled compaction, L0 trigger 4, raw codec);
//! - both indexes are created on the empty instance and their build tasks waited for
//!   before the ingest, so the index records are written with the documents, as SQLite
//!   maintains its indexes;
//! - `ingest`: one `Instance::write` (one atomic engine batch with the index records)
//!   per call; `settle`, at the end of the timed ingest, `Db::compact_pending` (the
//!   flushes and compactions the ingest left due), so the queries do not share the
//!   machine with the ingest's last compaction, nor meet tables it has just replaced;
//! - `query_city`: a `term` query on `by_city`; `query_city_age`: the `and` of that and
//!   a `range` (`gte` lo, `lt` hi) on `by_age`, the AND done by the index. Results come
//!   with their stored values, in doc id order (for this ingest, SQLite's rowid order);
//! - an answer longer than the index API's page limit (`QueryLimits::max_limit`, 10,000)
//!   is read page by page through `next_cursor`: the check queries ask with no limit.
//!
//! Timed: building the JSON request, `QueryRequest::parse` and `Indexes::query`, as a
//! caller of the library does; the HTTP server adds its own layers on top.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lsm::config::Config as LsmConfig;
use lsm::config::SyncSetting;
use lsm::engine::WriteBatch;
use lsm::extractor::ExtractorSpec;
use lsm::index::{IndexDef, IndexType, Indexes, OnError, QueryLimits, QueryRequest, TaskState};
use lsm::instance::Instance;
use lsm::plugin::{Limits, PluginHost};
use serde_json::{json, Value};

use crate::corpus::Hit;
use crate::subject::{Config, Subject};

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

/// The memtable size, as `lsm-bench` uses.
const MEMTABLE_BYTES: usize = 32 * 1024 * 1024;

/// The scope of both indexes.
const SCOPE: &str = "users:";

/// The longest the index builds on the empty instance may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The component file, when it is built; otherwise why the subject cannot run.
pub fn wasm_component() -> std::result::Result<PathBuf, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(WASM_COMPONENT);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{WASM_COMPONENT} is not built (run extractors/build.sh)"
        ))
    }
}

/// What the queries of one kind read, summed over the first-page calls (warm-up and
/// timed; the no-limit check queries are left out).
#[derive(Default)]
struct QueryCounts {
    calls: u64,
    results: u64,
    postings_scanned: u64,
    blocks_read: u64,
    blocks_skipped: u64,
    terms_read: u64,
    dead_skipped: u64,
}

impl QueryCounts {
    fn describe(&self) -> String {
        let per = |x: u64| x as f64 / self.calls.max(1) as f64;
        format!(
            "{:.1} results, {:.1} postings decoded, {:.2} posting blocks read ({:.2} skipped), \
             {:.2} term meta records read, {:.2} dead ids skipped",
            per(self.results),
            per(self.postings_scanned),
            per(self.blocks_read),
            per(self.blocks_skipped),
            per(self.terms_read),
            per(self.dead_skipped)
        )
    }
}

/// An lsm instance with indexes on `$.city` (equality) and `$.age` (range).
pub struct LsmSubject {
    extraction: Extraction,
    instance: Instance,
    cache_bytes: u64,
    max_limit: usize,
    /// Size of the uploaded component, for the settings line.
    component_bytes: Option<usize>,
    /// Bytes of the documents ingested (keys and values).
    doc_bytes: u64,
    docs: u64,
    city: QueryCounts,
    city_age: QueryCounts,
    /// Engine counters when the first query ran.
    at_first_query: Option<EngineCounters>,
    closed: bool,
}

/// Engine counters read when the first query runs, to tell what the queries read and
/// whether background work (flushes, compactions) overlapped them.
struct EngineCounters {
    blocks_read: u64,
    blocks_read_from_disk: u64,
    flushes: u64,
    compactions: u64,
}

fn index_def(name: &str, index_type: IndexType, extractor: ExtractorSpec) -> IndexDef {
    IndexDef {
        index_name: name.into(),
        scope_prefix: SCOPE.into(),
        index_type,
        extractor,
        on_error: OnError::Reject,
    }
}

/// Waits for task `id` to finish.
fn wait_task(indexes: &Indexes, id: u64) -> Result<()> {
    let started = Instant::now();
    loop {
        let info = indexes
            .task(id)
            .ok_or_else(|| anyhow!("task {id} is gone"))?;
        match info.state {
            TaskState::Done => return Ok(()),
            TaskState::Running => {}
            TaskState::Failed | TaskState::Cancelled => bail!(
                "index {} build: {:?}: {}",
                info.index,
                info.state,
                info.error.unwrap_or_default()
            ),
        }
        if started.elapsed() > BUILD_TIMEOUT {
            bail!(
                "index {} build still running after {BUILD_TIMEOUT:?}",
                info.index
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl LsmSubject {
    /// A fresh instance in `dir` (which must not exist yet) with both indexes built.
    pub fn open(extraction: Extraction, dir: &Path, cfg: &Config) -> Result<LsmSubject> {
        let mut ic = LsmConfig::embedded_default()
            .instances
            .into_iter()
            .next()
            .context("the embedded default configuration has an instance")?;
        ic.name = "bench".into();
        ic.data_dir = dir.to_path_buf();
        ic.sync = SyncSetting::Never;
        ic.memtable_max_size = MEMTABLE_BYTES;
        ic.block_cache_size = cfg.cache_bytes;
        ic.query = true;
        ic.indexes_file = None;
        let limits = QueryLimits::default();
        let max_limit = limits.max_limit;
        let host = PluginHost::new(Limits::default()).map_err(|e| anyhow!("plugin host: {e}"))?;
        let instance = Instance::open(ic, host, limits)
            .map_err(|e| anyhow!("lsm: opening {}: {e}", dir.display()))?;
        let mut component_bytes = None;
        if extraction == Extraction::Wasm {
            let path = wasm_component().map_err(|e| anyhow!(e))?;
            let wasm =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            instance
                .plugins()
                .put(WASM_PLUGIN, &wasm)
                .map_err(|e| anyhow!("uploading {}: {e}", path.display()))?;
            component_bytes = Some(wasm.len());
        }
        let s = LsmSubject {
            extraction,
            instance,
            cache_bytes: cfg.cache_bytes,
            max_limit,
            component_bytes,
            doc_bytes: 0,
            docs: 0,
            city: QueryCounts::default(),
            city_age: QueryCounts::default(),
            at_first_query: None,
            closed: false,
        };
        let indexes = s.indexes()?.clone();
        for def in [
            index_def("by_city", IndexType::Equality, s.extractor("$.city")),
            index_def("by_age", IndexType::Range, s.extractor("$.age")),
        ] {
            let name = def.index_name.clone();
            let task = indexes
                .create(def)
                .with_context(|| format!("creating index {name}"))?;
            wait_task(&indexes, task.id)?;
        }
        Ok(s)
    }

    fn indexes(&self) -> Result<&Indexes> {
        Ok(self.instance.indexes()?)
    }

    /// The extractor of the index on the JSON field at `path` (`$.city`, `$.age`).
    pub fn extractor(&self, path: &str) -> ExtractorSpec {
        match self.extraction {
            Extraction::Native => ExtractorSpec::JsonPath { path: path.into() },
            Extraction::Wasm => ExtractorSpec::Custom {
                plugin: WASM_PLUGIN.into(),
                options: json!({ "path": path }),
            },
        }
    }

    /// Up to `limit` results of the query `clause`, following `next_cursor` past the
    /// page limit of the index API.
    fn query(&mut self, clause: Value, limit: usize, and: bool) -> Result<Vec<Hit>> {
        if self.at_first_query.is_none() {
            let st = self.instance.db().stats();
            self.at_first_query = Some(EngineCounters {
                blocks_read: st.blocks_read,
                blocks_read_from_disk: st.blocks_read_from_disk,
                flushes: st.flushes,
                compactions: st.compactions,
            });
        }
        let mut hits = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let want = (limit - hits.len()).min(self.max_limit);
            let mut body = clause.clone();
            body["limit"] = json!(want);
            if let Some(c) = cursor.take() {
                body["cursor"] = json!(c);
            }
            let req = QueryRequest::parse(&body)?;
            let page = self.indexes()?.query(&req)?;
            if limit != usize::MAX {
                let counts = if and {
                    &mut self.city_age
                } else {
                    &mut self.city
                };
                counts.calls += 1;
                counts.results += page.results.len() as u64;
                counts.postings_scanned += page.stats.postings_scanned;
                counts.blocks_read += page.stats.blocks_read;
                counts.blocks_skipped += page.stats.blocks_skipped;
                counts.terms_read += page.stats.terms_read;
                counts.dead_skipped += page.stats.dead_skipped;
            }
            hits.extend(
                page.results
                    .into_iter()
                    .map(|(key, value)| Hit { key, value }),
            );
            match page.next_cursor {
                Some(c) if hits.len() < limit => cursor = Some(c),
                _ => return Ok(hits),
            }
        }
    }

    /// Bytes (keys and values) of the index records, by kind, read from the engine.
    fn index_bytes(&self) -> Result<Vec<(String, u64, u64)>> {
        let groups = [
            ("by_city postings", "\0idx:by_city@"),
            ("by_age postings", "\0idx:by_age@"),
            ("`pk` records (key → doc id)", "\0pk:"),
            ("`doc` records (doc id → key)", "\0doc:"),
        ];
        let mut out: Vec<(String, u64, u64)> = groups
            .iter()
            .map(|(name, _)| ((*name).to_string(), 0, 0))
            .collect();
        out.push(("other internal records".into(), 0, 0));
        for item in self.instance.db().iter_range("\0".."\u{1}")? {
            let (key, value) = item?;
            let i = groups
                .iter()
                .position(|(_, p)| key.starts_with(p))
                .unwrap_or(groups.len());
            out[i].1 += 1;
            out[i].2 += (key.len() + value.len()) as u64;
        }
        Ok(out)
    }

    fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if let Ok(ix) = self.instance.indexes() {
            ix.close();
        }
        self.instance.db().clone().close()?;
        Ok(())
    }
}

impl Drop for LsmSubject {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            eprintln!("[{}] closing: {e:#}", self.name());
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Subject for LsmSubject {
    fn name(&self) -> String {
        match self.extraction {
            Extraction::Native => "lsm-native".into(),
            Extraction::Wasm => "lsm-wasm".into(),
        }
    }

    fn settings(&self) -> String {
        let extractor = match self.component_bytes {
            None => "the built-in `json_path` extractor".to_string(),
            Some(n) => format!(
                "`custom` extractors: the `json_path` WebAssembly component ({WASM_COMPONENT}, \
                 {n} bytes) uploaded to the instance's plugin store, options `{{\"path\": ...}}`"
            ),
        };
        format!(
            "{} (lsm {}): `Instance` with sync = never (each batch written to the WAL, so it \
             reaches the OS, no fsync), memtable {} MiB, block cache {} MiB, leveled \
             compaction; indexes `by_city` (equality, `$.city`) and `by_age` (range, `$.age`), \
             scope `{SCOPE}`, {extractor}, created and built on the empty instance before the \
             ingest; one `Instance::write` per batch, then `Db::compact_pending` (in the \
             ingest time); queries `term` on by_city and `and` of \
             it with a `range` (gte, lt) on by_age through `Indexes::query`, first page with \
             values",
            self.name(),
            env!("CARGO_PKG_VERSION"),
            MEMTABLE_BYTES / (1024 * 1024),
            self.cache_bytes / (1024 * 1024)
        )
    }

    fn ingest(&mut self, docs: &[(String, Vec<u8>)]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (key, value) in docs {
            batch.put(key, value);
            self.doc_bytes += (key.len() + value.len()) as u64;
        }
        self.docs += docs.len() as u64;
        self.instance.write(batch)?;
        Ok(())
    }

    fn settle(&mut self) -> Result<()> {
        self.instance.db().compact_pending()?;
        Ok(())
    }

    fn query_city(&mut self, city: &str, limit: usize) -> Result<Vec<Hit>> {
        self.query(json!({"index": "by_city", "term": city}), limit, false)
    }

    fn query_city_age(&mut self, city: &str, lo: i64, hi: i64, limit: usize) -> Result<Vec<Hit>> {
        self.query(
            json!({"and": [
                {"index": "by_city", "term": city},
                {"index": "by_age", "range": {"gte": lo, "lt": hi}},
            ]}),
            limit,
            true,
        )
    }

    fn notes(&mut self) -> Result<Vec<String>> {
        let name = self.name();
        let mut notes = Vec::new();
        notes.push(format!(
            "{name}, per equality query (first pages): {}",
            self.city.describe()
        ));
        notes.push(format!(
            "{name}, per AND query (first pages): {}",
            self.city_age.describe()
        ));
        let st = self.instance.db().stats();
        if let Some(first) = &self.at_first_query {
            notes.push(format!(
                "{name}, engine data blocks read by all the queries (checks, warm-up, timed): \
                 {}, of which {} from disk (block cache misses); background work finished \
                 after the first query: {} flushes, {} compactions",
                st.blocks_read - first.blocks_read,
                st.blocks_read_from_disk - first.blocks_read_from_disk,
                st.flushes - first.flushes,
                st.compactions - first.compactions
            ));
        }
        let levels: Vec<String> = st.tables_per_level.iter().map(u64::to_string).collect();
        notes.push(format!(
            "{name}, engine after the queries: {} tables ({} per level), {:.1} MiB of tables \
             holding {} entries of which {} tombstones, {} flushes, {} compactions, {} write \
             stalls, {} write slowdowns, write amplification {:.2}",
            st.tables,
            levels.join("/"),
            mib(st.table_bytes),
            st.table_entries,
            st.table_deletions,
            st.flushes,
            st.compactions,
            st.write_stalls,
            st.write_slowdowns,
            (st.flush_bytes_written + st.compaction_bytes_written) as f64
                / st.flush_bytes_written.max(1) as f64
        ));
        if self.extraction == Extraction::Wasm {
            let store = self.instance.config().data_dir.join("plugins");
            notes.push(format!(
                "{name}, plugin store (the component and its compiled artifact), counted in \
                 its bytes on disk: {:.1} MiB",
                mib(crate::sysinfo::dir_bytes(&store)?)
            ));
        }
        let groups = self.index_bytes()?;
        let total: u64 = groups.iter().map(|g| g.2).sum();
        let parts: Vec<String> = groups
            .iter()
            .filter(|g| g.1 > 0)
            .map(|(what, n, bytes)| format!("{what} {n} records, {:.1} MiB", mib(*bytes)))
            .collect();
        notes.push(format!(
            "{name}, index records (keys + values, before the engine's own overhead): \
             {:.1} MiB = {:.0} bytes per document, against {:.1} MiB of documents: {}",
            mib(total),
            total as f64 / self.docs.max(1) as f64,
            mib(self.doc_bytes),
            parts.join("; ")
        ));
        Ok(notes)
    }
}
