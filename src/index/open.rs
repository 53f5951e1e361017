//! Opening an instance's indexes: reading the registry (upgrading an older layout),
//! resuming interrupted builds and drops, and reconciling with the `indexes_file`.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::registry::{self, Entry, Gen, IndexSet, StoredRegistry};
use super::tasks::Tasks;
use super::write::WriterState;
use super::{build, keys, query, IndexDef, Indexes, QueryLimits, Resolver, Shared, Source};
use crate::engine::Db;

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
}
