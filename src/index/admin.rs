//! Index administration: creating, rebuilding and dropping indexes (each a background
//! task), and describing them.

use std::sync::Arc;

use super::registry::{Building, Entry, Gen};
use super::{IndexDef, IndexError, IndexInfo, Indexes, Result, Source, TaskInfo};

impl Indexes {
    /// Creates an index over the API; it is built in the background and queryable
    /// when the returned task is done.
    pub fn create(&self, def: IndexDef) -> Result<TaskInfo> {
        let def = def.validate().map_err(IndexError::Invalid)?;
        self.create_from(def, Source::Api)
    }

    pub(super) fn create_from(&self, def: IndexDef, source: Source) -> Result<TaskInfo> {
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
    pub(super) fn start_build(
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

    pub(super) fn unknown(&self, name: &str) -> IndexError {
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

    pub(super) fn drop_index(&self, name: &str, by: Source) -> Result<TaskInfo> {
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
}
