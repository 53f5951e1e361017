//! Secondary indexes: block posting lists in the instance's own engine, maintained in
//! the same atomic batch as the records, queried without ever scanning records.
//!
//! - [`def`]: index definitions (`index_name`, `scope_prefix`, `index_type`,
//!   `extractor`, `on_error`).
//! - [`keys`]: where index records live (an internal namespace under U+0000).
//! - [`term`], [`postings`]: terms as order-preserving key text; blocks of doc ids and
//!   the per-term meta record with its skip table.
//! - [`write`]: the write path (doc ids, posting appends, one engine batch).
//! - [`list`], [`query`]: posting iterators (term, union, intersection) and queries
//!   with stable cursors.
//! - [`build`], [`tasks`]: background builds, rebuilds and drops with progress.
//! - [`verify`]: index consistency checks.
//!
//! Every record in some index's scope has a doc id; each write of it gets a new one,
//! and the old one dies (its `doc` record is deleted), so posting lists only ever grow
//! at their end and stay sorted. Dead postings are skipped by queries and dropped by
//! rebuilds. [`Indexes`] is the facade the instance layer uses.

pub mod build;
pub mod cursor;
pub mod def;
pub mod dict;
pub mod error;
pub mod keys;
pub mod list;
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
use registry::{Building, Entry, Gen, IndexSet, StoredRegistry};
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
    /// Opens the indexes stored in `db`, reconciles them with the definitions of the
    /// instance's `indexes_file` (when it has one: indexes from the file are created,
    /// rebuilt when their definition changed, dropped when removed from it), resumes
    /// builds and drops that a restart interrupted.
    pub fn open(
        db: Db,
        resolver: Resolver,
        file: Option<Vec<IndexDef>>,
        limits: QueryLimits,
    ) -> std::result::Result<Indexes, String> {
        let stored = match db.get(keys::REGISTRY).map_err(|e| e.to_string())? {
            Some(bytes) => StoredRegistry::decode(&bytes)?,
            None => StoredRegistry {
                format: registry::REGISTRY_FORMAT,
                next_generation: 1,
                ..StoredRegistry::default()
            },
        };
        // Format 1's doc ids and postings cannot be read by this build: its doc and
        // pk records go, and every index is built again (not served until it is).
        let upgrade = stored.format < registry::REGISTRY_FORMAT;
        if upgrade {
            tracing::warn!(
                format = stored.format,
                "index records are in an older layout: rebuilding every index"
            );
            build::delete_prefixes(
                &db,
                &[keys::OLD_PK_PREFIX.into(), keys::DOC_PREFIX.into()],
                &|_| {},
            )
            .map_err(|e| e.to_string())?;
            db.delete(keys::OLD_NEXT_ID).map_err(|e| e.to_string())?;
        }
        let mut set = IndexSet {
            version: 1,
            next_generation: stored.next_generation.max(1),
            garbage: stored
                .garbage
                .iter()
                .map(|g| (g.index.clone(), g.generation))
                .collect(),
            ..IndexSet::default()
        };
        let mut to_build = Vec::new();
        for s in stored.indexes {
            let name = s
                .ready
                .as_ref()
                .or(s.building.as_ref())
                .map(|g| g.def.index_name.clone())
                .ok_or("index registry: an index without a generation")?;
            if upgrade {
                for g in s.ready.iter().chain(&s.building) {
                    set.garbage.push((name.clone(), g.generation));
                }
                if let Some(g) = s.building.or(s.ready) {
                    to_build.push((name.clone(), None, g.def));
                }
                set.entries.insert(
                    name,
                    Entry {
                        source: s.source,
                        ready: None,
                        building: None,
                    },
                );
                continue;
            }
            let ready = match s.ready {
                Some(g) => {
                    let ex =
                        resolver(&g.def.extractor).map_err(|e| format!("index {name:?}: {e}"))?;
                    Some(Arc::new(Gen::new(g.generation, g.def, ex)))
                }
                None => None,
            };
            if let Some(g) = s.building {
                to_build.push((name.clone(), Some(g.generation), g.def));
            }
            set.entries.insert(
                name,
                Entry {
                    source: s.source,
                    ready,
                    building: None,
                },
            );
        }
        let shared = Arc::new(Shared {
            db,
            set: RwLock::new(Arc::new(set)),
            writer: Mutex::new(WriterState::default()),
            cursors: query::Cursors::default(),
            tasks: Tasks::default(),
            limits,
            resolver,
            threads: Mutex::new(Vec::new()),
        });
        let indexes = Indexes { shared };
        // Interrupted builds start again from scratch (their partial records first go).
        for (name, generation, def) in to_build {
            let kind = if indexes
                .set()
                .entries
                .get(&name)
                .is_some_and(|e| e.ready.is_some())
            {
                "rebuild"
            } else {
                "build"
            };
            indexes
                .start_build(&name, def, generation, kind)
                .map_err(|e| format!("index {name:?}: {e}"))?;
        }
        if upgrade {
            // Records the new format even when there was no index to rebuild.
            indexes.update(|_| {}).map_err(|e| e.to_string())?;
        }
        if let Some(file) = file {
            indexes.reconcile(file)?;
        }
        for (name, generation) in indexes.set().garbage.clone() {
            indexes.spawn_drop(&name, generation, None);
        }
        Ok(indexes)
    }

    fn reconcile(&self, file: Vec<IndexDef>) -> std::result::Result<(), String> {
        let set = self.set();
        for def in &file {
            let def = def.clone().validate()?;
            match set.entries.get(&def.index_name) {
                None => {
                    self.create_from(def, Source::File)
                        .map_err(|e| e.to_string())?;
                }
                Some(e) if e.def() != Some(&def) || e.source != Source::File => {
                    tracing::info!(index = %def.index_name, "indexes_file changed the index: rebuilding");
                    let name = def.index_name.clone();
                    self.start_build(&name, def, None, "rebuild")
                        .map_err(|e| e.to_string())?;
                    self.update(|s| {
                        if let Some(e) = s.entries.get_mut(&name) {
                            e.source = Source::File;
                        }
                    })
                    .map_err(|e| e.to_string())?;
                }
                Some(_) => {}
            }
        }
        for (name, e) in &set.entries {
            if e.source == Source::File && !file.iter().any(|d| &d.index_name == name) {
                tracing::info!(index = %name, "index removed from indexes_file: dropping");
                self.drop_index(name, Source::File)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

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

    /// Creates an index over the API; it is built in the background and queryable
    /// when the returned task is done.
    pub fn create(&self, def: IndexDef) -> Result<TaskInfo> {
        let def = def.validate().map_err(IndexError::Invalid)?;
        self.create_from(def, Source::Api)
    }

    fn create_from(&self, def: IndexDef, source: Source) -> Result<TaskInfo> {
        let extractor = (self.shared.resolver)(&def.extractor).map_err(IndexError::Invalid)?;
        let name = def.index_name.clone();
        let mut outcome = None;
        let writer = self.lock_settled()?;
        if self.set().entries.contains_key(&name) {
            return Err(IndexError::Exists(name));
        }
        self.update_locked(|s| {
            let number = s.next_generation;
            s.next_generation += 1;
            let task = self.shared.tasks.start("build", &name, number);
            let gen = Arc::new(Gen::new(number, def, extractor));
            s.entries.insert(
                name.clone(),
                Entry {
                    source,
                    ready: None,
                    building: Some(Building {
                        gen: Arc::clone(&gen),
                        task: task.id(),
                    }),
                },
            );
            outcome = Some((gen, task));
        })?;
        drop(writer);
        let (gen, task) = outcome.ok_or_else(|| IndexError::Exists(name.clone()))?;
        let info = task.info();
        self.spawn_build(gen, task);
        Ok(info)
    }

    /// Starts building a new generation of `name` from `def` (`generation` given when
    /// resuming one after a restart). The served generation, if any, stays served
    /// until the new one is ready.
    fn start_build(
        &self,
        name: &str,
        def: IndexDef,
        generation: Option<u64>,
        kind: &'static str,
    ) -> Result<TaskInfo> {
        let extractor = (self.shared.resolver)(&def.extractor).map_err(IndexError::Conflict)?;
        let mut started = None;
        let mut replaced = None;
        self.update(|s| {
            let number = generation.unwrap_or_else(|| {
                let n = s.next_generation;
                s.next_generation += 1;
                n
            });
            let Some(entry) = s.entries.get_mut(name) else {
                return;
            };
            let task = self.shared.tasks.start(kind, name, number);
            let gen = Arc::new(Gen::new(number, def, extractor));
            if let Some(old) = entry.building.replace(Building {
                gen: Arc::clone(&gen),
                task: task.id(),
            }) {
                if old.gen.number != number {
                    s.garbage.push((name.to_string(), old.gen.number));
                    replaced = Some(old);
                }
            }
            started = Some((gen, task));
        })?;
        if let Some(old) = replaced {
            let build = self.shared.tasks.get(old.task);
            if let Some(t) = &build {
                t.cancel();
            }
            self.spawn_drop(name, old.gen.number, build);
        }
        let (gen, task) = started.ok_or_else(|| self.unknown(name))?;
        let info = task.info();
        self.spawn_build(gen, task);
        Ok(info)
    }

    fn unknown(&self, name: &str) -> IndexError {
        IndexError::UnknownIndex {
            name: name.to_string(),
            known: self.set().names(),
        }
    }

    /// Rebuilds `name` into a new generation in the background (dropping its dead
    /// postings); it is swapped in when done. A rebuild already under way is returned.
    pub fn rebuild(&self, name: &str) -> Result<TaskInfo> {
        let set = self.set();
        let entry = set.entries.get(name).ok_or_else(|| self.unknown(name))?;
        if let Some(b) = &entry.building {
            if let Some(t) = self.shared.tasks.get(b.task) {
                return Ok(t.info());
            }
        }
        let def = entry.def().cloned().ok_or_else(|| self.unknown(name))?;
        self.start_build(name, def, None, "rebuild")
    }

    /// Rebuilds every index (a manual compaction's second half: rebuilds drop dead
    /// postings). Failures are logged; the tasks started are returned.
    pub fn rebuild_all(&self) -> Vec<TaskInfo> {
        let names: Vec<String> = self.set().entries.keys().cloned().collect();
        names
            .iter()
            .filter_map(|name| match self.rebuild(name) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::error!(index = %name, error = %e, "cannot rebuild");
                    None
                }
            })
            .collect()
    }

    /// Rebuilds every index whose extractor is the plugin `plugin` (after a new version
    /// of it was uploaded); each is swapped in when built.
    pub fn plugin_replaced(&self, plugin: &str) -> Vec<TaskInfo> {
        let set = self.set();
        let mut tasks = Vec::new();
        for (name, e) in &set.entries {
            if let Some(def) = e.def().filter(|d| d.plugin() == Some(plugin)) {
                match self.start_build(name, def.clone(), None, "rebuild") {
                    Ok(t) => tasks.push(t),
                    Err(err) => {
                        tracing::error!(index = %name, %plugin, error = %err, "cannot rebuild after a plugin upload")
                    }
                }
            }
        }
        tasks
    }

    /// The indexes whose extractor is `plugin` (a plugin in use cannot be deleted).
    pub fn users_of(&self, plugin: &str) -> Vec<String> {
        self.set()
            .entries
            .iter()
            .filter(|(_, e)| {
                e.ready
                    .as_ref()
                    .is_some_and(|g| g.def.plugin() == Some(plugin))
                    || e.building
                        .as_ref()
                        .is_some_and(|b| b.gen.def.plugin() == Some(plugin))
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Drops an index created over the API: it stops being maintained at once, its
    /// records are deleted in the background.
    pub fn drop_api(&self, name: &str) -> Result<TaskInfo> {
        self.drop_index(name, Source::Api)
    }

    fn drop_index(&self, name: &str, by: Source) -> Result<TaskInfo> {
        let set = self.set();
        let entry = set.entries.get(name).ok_or_else(|| self.unknown(name))?;
        if entry.source == Source::File && by == Source::Api {
            return Err(IndexError::FromFile(name.to_string()));
        }
        let mut gens = Vec::new();
        self.update(|s| {
            if let Some(e) = s.entries.remove(name) {
                if let Some(g) = e.ready {
                    gens.push((g.number, None));
                }
                if let Some(b) = e.building {
                    let build = self.shared.tasks.get(b.task);
                    if let Some(t) = &build {
                        t.cancel();
                    }
                    gens.push((b.gen.number, build));
                }
            }
            for (g, _) in &gens {
                s.garbage.push((name.to_string(), *g));
            }
        })?;
        let mut last = None;
        for (g, build) in gens {
            last = Some(self.spawn_drop(name, g, build));
        }
        last.ok_or_else(|| self.unknown(name))
    }

    /// Every index.
    pub fn list(&self) -> Vec<IndexInfo> {
        let set = self.set();
        set.entries
            .iter()
            .filter_map(|(name, e)| self.info_of(name, e))
            .collect()
    }

    /// One index.
    pub fn get(&self, name: &str) -> Result<IndexInfo> {
        let set = self.set();
        set.entries
            .get(name)
            .and_then(|e| self.info_of(name, e))
            .ok_or_else(|| self.unknown(name))
    }

    fn info_of(&self, _name: &str, e: &Entry) -> Option<IndexInfo> {
        let def = e.def()?.clone();
        let (skipped, skipped_sample) = match &e.ready {
            Some(g) => self.skipped(g),
            None => (0, Vec::new()),
        };
        Some(IndexInfo {
            def,
            source: e.source,
            state: match (&e.ready, &e.building) {
                (Some(_), Some(_)) => "rebuilding",
                (None, Some(_)) => "building",
                _ => "ready",
            },
            generation: e.ready.as_ref().map(|g| g.number),
            task: e.building.as_ref().map(|b| b.task),
            skipped,
            skipped_sample,
        })
    }

    /// Counts the skipped records of a generation (and lists up to 20).
    fn skipped(&self, gen: &Gen) -> (u64, Vec<(String, String)>) {
        let prefix = gen.skip_prefix();
        let mut count = 0;
        let mut sample = Vec::new();
        if let Ok(iter) = self.shared.db.iter_prefix(&prefix) {
            for (k, v) in iter.flatten() {
                count += 1;
                if sample.len() < 20 {
                    sample.push((
                        k[prefix.len()..].to_string(),
                        String::from_utf8_lossy(&v).into_owned(),
                    ));
                }
            }
        }
        (count, sample)
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
