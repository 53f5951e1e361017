//! The registry: which indexes exist, which generation of each is served and which is
//! being built. Kept in memory as an immutable [`IndexSet`] swapped whole, and in the
//! engine as one JSON record ([`keys::REGISTRY`]), written in the same batch as the
//! change it describes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::def::IndexDef;
use super::keys;
use crate::extractor::Extractor;

/// Where an index was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The instance's `indexes_file`: changes there, not over the API.
    File,
    /// `POST /indexes`.
    Api,
}

/// One generation of an index: a definition, its extractor and the key prefix of its
/// postings.
pub struct Gen {
    /// The generation number (unique per instance).
    pub number: u64,
    /// The definition it was built from.
    pub def: IndexDef,
    /// Its extractor.
    pub extractor: Arc<dyn Extractor>,
    /// `\0idx:{name}@{number}:`.
    pub prefix: String,
    /// The terms in order (range indexes; see [`super::dict`]).
    pub terms: super::dict::TermDict,
}

impl Gen {
    /// A generation of `def`.
    pub fn new(number: u64, def: IndexDef, extractor: Arc<dyn Extractor>) -> Gen {
        Gen {
            prefix: keys::index_prefix(&def.index_name, number),
            number,
            def,
            extractor,
            terms: super::dict::TermDict::default(),
        }
    }

    /// The prefix of its skip records.
    pub fn skip_prefix(&self) -> String {
        keys::skip_prefix(&self.def.index_name, self.number)
    }
}

/// A generation being built, and the task building it.
#[derive(Clone)]
pub struct Building {
    /// The generation.
    pub gen: Arc<Gen>,
    /// The task's id.
    pub task: u64,
}

/// One index: the generation served (once one is built) and the one being built.
#[derive(Clone)]
pub struct Entry {
    /// Where it was defined.
    pub source: Source,
    /// The generation queries read and writes maintain.
    pub ready: Option<Arc<Gen>>,
    /// A generation being built; it replaces `ready` when done.
    pub building: Option<Building>,
}

impl Entry {
    /// The definition: the one being built if any (the newest), else the served one.
    pub fn def(&self) -> Option<&IndexDef> {
        self.building
            .as_ref()
            .map(|b| &b.gen.def)
            .or(self.ready.as_ref().map(|g| &g.def))
    }
}

/// Every index of an instance, immutable; changes make a new set with a new version.
#[derive(Clone, Default)]
pub struct IndexSet {
    /// Bumped on every change: a writer that extracted terms under an older set
    /// extracts again.
    pub version: u64,
    /// The indexes by name.
    pub entries: BTreeMap<String, Entry>,
    /// The next generation number.
    pub next_generation: u64,
    /// Generations whose records are to be deleted.
    pub garbage: Vec<(String, u64)>,
}

impl IndexSet {
    /// Every generation writes must know about: served ones (postings) and ones being
    /// built (doc ids only).
    pub fn in_scope_anywhere(&self, key: &str) -> bool {
        self.entries.values().any(|e| {
            e.ready.as_ref().is_some_and(|g| g.def.in_scope(key))
                || e.building.as_ref().is_some_and(|b| b.gen.def.in_scope(key))
        })
    }

    /// The served generations.
    pub fn ready(&self) -> impl Iterator<Item = &Arc<Gen>> {
        self.entries.values().filter_map(|e| e.ready.as_ref())
    }

    /// The names, for messages.
    pub fn names(&self) -> String {
        if self.entries.is_empty() {
            "none (create one with POST /indexes)".into()
        } else {
            self.entries.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    /// The persistent form.
    pub fn stored(&self) -> StoredRegistry {
        StoredRegistry {
            format: REGISTRY_FORMAT,
            next_generation: self.next_generation,
            indexes: self
                .entries
                .values()
                .map(|e| StoredIndex {
                    source: e.source,
                    ready: e.ready.as_ref().map(|g| StoredGen {
                        generation: g.number,
                        def: g.def.clone(),
                    }),
                    building: e.building.as_ref().map(|b| StoredGen {
                        generation: b.gen.number,
                        def: b.gen.def.clone(),
                    }),
                })
                .collect(),
            garbage: self
                .garbage
                .iter()
                .map(|(index, generation)| StoredGarbage {
                    index: index.clone(),
                    generation: *generation,
                })
                .collect(),
        }
    }
}

/// The layout this build writes. Format 1 gave doc ids from a counter and kept a `pk`
/// record per record; an instance stored that way has its indexes rebuilt when opened.
pub const REGISTRY_FORMAT: u32 = 2;

/// The registry record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredRegistry {
    /// Format version ([`REGISTRY_FORMAT`]; 1 is upgraded when opened).
    pub format: u32,
    /// The next generation number.
    pub next_generation: u64,
    /// The indexes.
    pub indexes: Vec<StoredIndex>,
    /// Generations to delete.
    #[serde(default)]
    pub garbage: Vec<StoredGarbage>,
}

/// One index in the registry record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredIndex {
    /// Where it was defined.
    pub source: Source,
    /// The served generation.
    pub ready: Option<StoredGen>,
    /// The generation being built (restarted from scratch after a restart).
    pub building: Option<StoredGen>,
}

/// A generation in the registry record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredGen {
    /// Its number.
    pub generation: u64,
    /// Its definition.
    pub def: IndexDef,
}

/// A generation whose records are being deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredGarbage {
    /// The index name.
    pub index: String,
    /// The generation.
    pub generation: u64,
}

impl StoredRegistry {
    /// Parses the record, refusing formats from the future.
    pub fn decode(bytes: &[u8]) -> Result<StoredRegistry, String> {
        let r: StoredRegistry =
            serde_json::from_slice(bytes).map_err(|e| format!("index registry: {e}"))?;
        if r.format == 0 || r.format > REGISTRY_FORMAT {
            return Err(format!(
                "index registry format {} is not one this build understands (1 to {REGISTRY_FORMAT})",
                r.format
            ));
        }
        Ok(r)
    }

    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}
