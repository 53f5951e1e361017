//! A version: the set of memtables and tables a read sees, frozen at one moment.
//!
//! Versions are immutable and shared as `Arc<Version>`; every change (a memtable
//! rotation, a finished flush) installs a new one. A reader clones the current `Arc`
//! once and then reads without locks, and everything it reads stays alive until it drops
//! that `Arc`, even if the version was replaced meanwhile.

use std::sync::Arc;

use super::super::memtable::Memtable;
use super::super::sstable::Table;

/// A live table and its level.
#[derive(Clone)]
pub struct LiveTable {
    /// The open table.
    pub table: Arc<Table>,
    /// Its LSM level (0 for flushed tables).
    pub level: u32,
}

/// What a read sees.
#[derive(Clone)]
pub struct Version {
    /// The memtable receiving writes.
    pub active: Arc<Memtable>,
    /// Frozen memtables waiting for their flush, oldest first.
    pub immutables: Vec<Arc<Memtable>>,
    /// Live tables, newest first (a key's newest version is in the first table that
    /// holds the key).
    pub tables: Vec<LiveTable>,
}

impl Version {
    /// Memtables newest first.
    pub fn memtables_newest_first(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        std::iter::once(&self.active).chain(self.immutables.iter().rev())
    }
}
