//! Counters shared by the read path, and the statistics the engine reports.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated on the read path. Shared (behind an `Arc`) by every table of one
/// database; relaxed atomics, since they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct ReadCounters {
    /// Data blocks accessed (from the block cache or from disk).
    pub blocks_read: AtomicU64,
    /// Data blocks that missed the block cache and were read from disk.
    pub blocks_read_from_disk: AtomicU64,
    /// Point lookups that a table's bloom filter answered "definitely absent".
    pub bloom_negatives: AtomicU64,
    /// Point lookups that passed a bloom filter and found the key.
    pub bloom_true_positives: AtomicU64,
    /// Point lookups that passed a bloom filter but did not find the key.
    pub bloom_false_positives: AtomicU64,
    /// Range reads (iterators) opened.
    pub range_reads: AtomicU64,
}

impl ReadCounters {
    /// Adds one to `counter`.
    #[inline]
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    #[inline]
    pub fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
