//! The block cache shared by every open table of a database: parsed data blocks keyed by
//! (table id, block offset) and weighed by their size in bytes.
//!
//! Blocks enter the cache only after their checksum was verified on the read from disk,
//! so a cache hit needs no further check.

use std::sync::Arc;

use super::block::Block;

/// Weighs a cached block by its size in bytes (at least 1, so every block can be evicted).
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockWeighter;

impl quick_cache::Weighter<(u64, u64), Arc<Block>> for BlockWeighter {
    fn weight(&self, _key: &(u64, u64), block: &Arc<Block>) -> u64 {
        (block.size() as u64).max(1)
    }
}

/// Parsed data blocks keyed by (table id, block offset).
pub type BlockCache = quick_cache::sync::Cache<(u64, u64), Arc<Block>, BlockWeighter>;

/// A block cache holding about `capacity_bytes` bytes of blocks. A capacity of 0 caches
/// nothing.
pub fn new_block_cache(capacity_bytes: u64) -> Arc<BlockCache> {
    let estimated_items = usize::try_from(capacity_bytes / 4096)
        .unwrap_or(usize::MAX)
        .clamp(16, 1 << 20);
    Arc::new(BlockCache::with_weighter(
        estimated_items,
        capacity_bytes,
        BlockWeighter,
    ))
}
