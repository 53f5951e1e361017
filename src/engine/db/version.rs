//! A version: the set of memtables and tables a read sees, frozen at one moment.
//!
//! Versions are immutable and shared as `Arc<Version>`; every change (a memtable
//! rotation, a finished flush or compaction) installs a new one. A reader clones the
//! current `Arc` once and then reads without locks, and everything it reads stays alive
//! until it drops that `Arc`, even if the version was replaced meanwhile.

use std::sync::Arc;

use super::super::memtable::Memtable;
use super::super::sstable::Table;

/// What a read sees.
#[derive(Clone)]
pub struct Version {
    /// The memtable receiving writes.
    pub active: Arc<Memtable>,
    /// Frozen memtables waiting for their flush, oldest first.
    pub immutables: Vec<Arc<Memtable>>,
    /// Tables by level. `levels[0]` holds flushed (and size-tiered) tables, which may
    /// overlap, newest first; every deeper level holds tables with disjoint key ranges,
    /// sorted by key. A key's newest version is in the first L0 table that holds it, or
    /// else in the shallowest level that holds it.
    pub levels: Vec<Vec<Arc<Table>>>,
}

impl Version {
    /// Memtables newest first.
    pub fn memtables_newest_first(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        std::iter::once(&self.active).chain(self.immutables.iter().rev())
    }

    /// Every table with its level, shallowest level first.
    pub fn tables(&self) -> impl Iterator<Item = (usize, &Arc<Table>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(level, tables)| tables.iter().map(move |t| (level, t)))
    }

    /// The tables that may hold `key`, in the order a point read must visit them: every
    /// L0 table newest first, then at most one table per deeper level.
    pub fn tables_for_key<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = &'a Arc<Table>> {
        let l0 = self.levels.first().into_iter().flatten();
        let deeper = self.levels.iter().skip(1).filter_map(move |tables| {
            let i = tables.partition_point(|t| t.properties().largest_key.as_slice() < key);
            tables
                .get(i)
                .filter(|t| t.properties().smallest_key.as_slice() <= key)
        });
        l0.chain(deeper)
    }

    /// Number of tables in all levels.
    pub fn table_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// A copy with the same memtables and new levels.
    pub fn with_levels(&self, levels: Vec<Vec<Arc<Table>>>) -> Version {
        Version {
            active: Arc::clone(&self.active),
            immutables: self.immutables.clone(),
            levels,
        }
    }
}
