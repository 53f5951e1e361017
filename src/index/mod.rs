//! Secondary indexes: block posting lists in the instance's own engine, maintained in
//! the same atomic batch as the records, queried without ever scanning records.
//!
//! - [`def`]: index definitions (`index_name`, `scope_prefix`, `index_type`,
//!   `extractor`, `on_error`).
//! - [`keys`]: where index records live (an internal namespace under U+0000).
//! - [`term`], [`postings`]: terms as order-preserving key text; blocks of postings
//!   (doc id and key) and the per-term meta record with its skip table.
//! - [`write`](mod@write): the write path (doc ids, posting appends, one engine batch).
//! - [`list`], [`query`]: posting iterators (term, union, intersection) and queries
//!   with stable cursors.
//! - [`build`], [`tasks`]: background builds, rebuilds and drops with progress;
//!   `admin` and `open` the facade's administration and opening (with the upgrade of
//!   an older layout).
//! - [`verify`]: index consistency checks.
//!
//! A record's doc id is the engine sequence number of the write that put its current
//! version, so each write of it gives it a new, larger one and posting lists only ever
//! grow at their end and stay sorted. A posting is live while its record still has
//! that version: queries check it with the one read they make of each result, and
//! rebuilds drop the dead ones. [`Indexes`] is the facade the instance layer uses.

mod admin;
pub mod build;
pub mod cursor;
pub mod def;
pub mod dict;
pub mod error;
pub mod keys;
pub mod list;
mod open;
pub mod postings;
pub mod query;
pub mod registry;
pub mod request;
pub mod tasks;
pub mod term;
pub mod verify;
pub mod write;

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

pub use def::{IndexDef, IndexType, OnError};
pub use error::{IndexError, Result};
pub use query::QueryPage;
pub use registry::Source;
pub use request::{QueryLimits, QueryRequest};
pub use tasks::{TaskInfo, TaskState};
pub use verify::IndexReport;

use crate::engine::{Db, SeqNo, Snapshot, WriteBatch};
use crate::extractor::{Extractor, ExtractorSpec};
use registry::{Gen, IndexSet};
use tasks::{Task, Tasks};
use write::WriterState;

/// Builds the extractor of a spec (native, or an uploaded plugin for `custom`).
pub type Resolver =
    Arc<dyn Fn(&ExtractorSpec) -> std::result::Result<Arc<dyn Extractor>, String> + Send + Sync>;

/// Runs a task's body; a panic (a bug) becomes the task's error, so the task still
/// finishes and whoever waits for it (a drop, `close`) does not wait forever.
fn catch_panic(what: &str, body: impl FnOnce() -> Result<()>) -> Result<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!(task = what, %why, "index task panicked");
        Err(IndexError::Conflict(format!(
            "the {what} task panicked: {why}"
        )))
    })
}

/// The state shared by the facade and its background tasks.
pub(crate) struct Shared {
    pub(crate) db: Db,
    pub(crate) set: RwLock<Arc<IndexSet>>,
    pub(crate) writer: Mutex<WriterState>,
    pub(crate) cursors: query::Cursors,
    pub(crate) tasks: Tasks,
    pub(crate) limits: QueryLimits,
    pub(crate) resolver: Resolver,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// An index as `GET /indexes` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IndexInfo {
    /// The definition (the one being built, when a build is under way).
    #[serde(flatten)]
    pub def: IndexDef,
    /// `file` or `api`.
    pub source: Source,
    /// `ready`, `building` (not queryable yet) or `rebuilding` (queryable, a new
    /// generation is being built).
    pub state: &'static str,
    /// The generation served.
    pub generation: Option<u64>,
    /// The build or rebuild under way.
    pub task: Option<u64>,
    /// Records not indexed because the extractor failed on them (`on_error = skip`).
    pub skipped: u64,
    /// Some of those records' keys, with the reason.
    pub skipped_sample: Vec<(String, String)>,
}

/// The indexes of one instance.
#[derive(Clone)]
pub struct Indexes {
    shared: Arc<Shared>,
}

impl Indexes {
    /// The current set of indexes.
    pub(crate) fn set(&self) -> Arc<IndexSet> {
        Arc::clone(&self.shared.set.read())
    }

    /// Whether the instance has any index (writes then take the indexed path).
    pub fn is_empty(&self) -> bool {
        self.shared.set.read().entries.is_empty()
    }

    /// Applies a user batch and its index changes atomically. Keys starting with U+0000
    /// are refused; an extractor failure on an index with `on_error = "reject"` refuses
    /// the whole batch.
    pub fn write(&self, batch: WriteBatch) -> Result<SeqNo> {
        if batch.ops().iter().any(|op| keys::is_internal(op.key())) {
            return Err(IndexError::ReservedKey);
        }
        loop {
            {
                // Without indexes a write skips the bookkeeping. It holds the set (read)
                // until it is committed: an index cannot be created meanwhile, so its
                // build, which gives ids to the records it finds, finds this one.
                let current = self.shared.set.read();
                if current.entries.is_empty() {
                    return Ok(self.shared.db.write_batch(batch)?);
                }
            }
            let set = self.set();
            let extracted = write::extract_batch(&set, &batch)?;
            let mut w = self.shared.writer.lock();
            if self.shared.set.read().version != extracted.version {
                continue;
            }
            let db = &self.shared.db;
            // Submitted under the lock (this fixes the commit order, and so the doc
            // ids), waited for without it (concurrent writers share one WAL sync).
            let (pending, ticket) = match w.submit(db, &set, &batch, extracted) {
                Ok(submitted) => submitted,
                Err(e) => {
                    w.reset(db);
                    return Err(e);
                }
            };
            w.in_flight += 1;
            drop(w);
            let outcome = pending.wait();
            let mut w = self.shared.writer.lock();
            w.committed(ticket);
            if outcome.is_err() {
                w.reset(db);
            }
            return Ok(outcome?);
        }
    }

    /// Takes the writer lock with every submitted write committed, so the engine shows
    /// everything the writer knows (for the callers that read it under the lock).
    pub(crate) fn lock_settled(&self) -> Result<parking_lot::MutexGuard<'_, WriterState>> {
        let w = self.shared.writer.lock();
        self.shared.db.barrier()?;
        Ok(w)
    }

    /// Changes the set under the writer lock and persists it. Returns the new set.
    pub(crate) fn update(&self, change: impl FnOnce(&mut IndexSet)) -> Result<Arc<IndexSet>> {
        let _w = self.lock_settled()?;
        self.update_locked(change)
    }

    /// [`update`](Self::update) for a caller that holds the writer lock.
    pub(crate) fn update_locked(
        &self,
        change: impl FnOnce(&mut IndexSet),
    ) -> Result<Arc<IndexSet>> {
        let mut next = (*self.set()).clone();
        change(&mut next);
        next.version += 1;
        let bytes = serde_json::to_vec(&next.stored())
            .map_err(|e| IndexError::Invalid(format!("cannot encode the registry: {e}")))?;
        self.shared.db.put(keys::REGISTRY, bytes)?;
        let next = Arc::new(next);
        *self.shared.set.write() = Arc::clone(&next);
        Ok(next)
    }

    /// The current set, and a snapshot taken while no change of it can happen. A
    /// generation leaves the set before its records are deleted, so the snapshot holds
    /// every record of every generation in the set; taken apart, a rebuild could swap
    /// a generation out and delete it in between, and a query of it find nothing.
    fn set_and_snapshot(&self) -> (Arc<IndexSet>, Snapshot) {
        let set = self.shared.set.read();
        (Arc::clone(&set), self.shared.db.snapshot())
    }

    /// Loads the term dictionary of `gen` (a range index) unless it is loaded or being
    /// loaded. The writer lock is held only to start: the terms are read from a
    /// snapshot, and terms created meanwhile are collected by the dictionary itself.
    fn load_dict(&self, gen: &Gen) -> Result<()> {
        let snap = {
            let _w = self.lock_settled()?;
            if !gen.terms.begin_load() {
                return Ok(());
            }
            self.shared.db.snapshot()
        };
        let read = || -> Result<Option<std::collections::BTreeSet<String>>> {
            let mut terms = std::collections::BTreeSet::new();
            for item in snap.iter_prefix(&gen.prefix)? {
                let (key, _) = item?;
                if let Some(t) = keys::term_of_meta_key(&gen.prefix, &key) {
                    terms.insert(t.to_string());
                    if terms.len() > dict::MAX_TERMS {
                        return Ok(None);
                    }
                }
            }
            Ok(Some(terms))
        };
        match read() {
            Ok(terms) => {
                gen.terms.loaded(terms);
                Ok(())
            }
            Err(e) => {
                gen.terms.failed();
                Err(e)
            }
        }
    }

    /// Runs one page of a query.
    pub fn query(&self, req: &QueryRequest) -> Result<QueryPage> {
        if req.has_range() {
            let set = self.set();
            for name in req.indexes() {
                if let Some(g) = set.entries.get(name).and_then(|e| e.ready.as_ref()) {
                    if g.def.index_type == IndexType::Range && !g.terms.is_loaded() {
                        self.load_dict(g)?;
                    }
                }
            }
        }
        let (set, snap) = self.set_and_snapshot();
        query::run(snap, &set, &self.shared.cursors, &self.shared.limits, req)
    }

    /// The task `id`.
    pub fn task(&self, id: u64) -> Option<TaskInfo> {
        self.shared.tasks.get(id).map(|t| t.info())
    }

    /// Every task kept.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.shared.tasks.list()
    }

    /// Open query cursors.
    pub fn open_cursors(&self) -> usize {
        self.shared.cursors.len()
    }

    /// Checks every served index against the records (see [`verify`]).
    pub fn verify(&self) -> Result<Vec<IndexReport>> {
        let (set, snap) = self.set_and_snapshot();
        verify::verify(&snap, &set)
    }

    /// Stops background tasks and waits for them (before the engine closes). A build
    /// that swaps its generation in meanwhile starts deleting the old one: that task is
    /// waited for too.
    pub fn close(&self) {
        self.shared.tasks.cancel_all();
        loop {
            let threads = std::mem::take(&mut *self.shared.threads.lock());
            if threads.is_empty() {
                break;
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }

    fn spawn_build(&self, gen: Arc<Gen>, task: Arc<Task>) {
        let me = self.clone();
        let name = format!("lsm-index-build-{}", gen.def.index_name);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let outcome = catch_panic("build", || build::build(&me, &gen, &task));
            if let Err(e) = &outcome {
                if !task.is_cancelled() {
                    tracing::error!(index = %gen.def.index_name, generation = gen.number, error = %e, "index build failed");
                }
            }
            task.finish(outcome.map_err(|e| e.to_string()));
        });
        self.keep(spawned);
    }

    /// Deletes generation `generation` of `name` in the background. `build_task` is the
    /// cancelled task that was building it, if any: the records are deleted once it
    /// has stopped, so that it cannot write any after the deletion.
    pub(crate) fn spawn_drop(
        &self,
        name: &str,
        generation: u64,
        build_task: Option<Arc<Task>>,
    ) -> TaskInfo {
        let task = self.shared.tasks.start("drop", name, generation);
        let info = task.info();
        let me = self.clone();
        let name = name.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("lsm-index-drop-{name}"))
            .spawn(move || {
                if let Some(b) = build_task {
                    while !b.is_finished() {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                let outcome = catch_panic("drop", || {
                    build::drop_generation(&me, &name, generation, &task)
                });
                task.finish(outcome.map_err(|e| e.to_string()));
            });
        self.keep(spawned);
        info
    }

    fn keep(&self, spawned: std::io::Result<std::thread::JoinHandle<()>>) {
        match spawned {
            Ok(handle) => {
                let mut threads = self.shared.threads.lock();
                threads.retain(|t| !t.is_finished());
                threads.push(handle);
            }
            Err(e) => tracing::error!(error = %e, "cannot start an index task thread"),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}
