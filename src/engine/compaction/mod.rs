//! Compaction: merging tables so that the number of tables a read visits, and the space
//! taken by overwritten and deleted data, stay bounded however long writes go on.
//!
//! - `picker`: which tables to merge next (leveled or size-tiered).
//! - `retain`: which versions of a key a merge keeps (snapshots, tombstones).

pub mod job;
pub mod picker;
pub mod retain;

/// How tables are organised and merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionStrategy {
    /// L0 plus levels of non-overlapping tables, each `level_size_ratio` times larger:
    /// low space and read amplification (the default).
    Leveled,
    /// Sorted runs of similar size merged together: lower write amplification, more
    /// space and read amplification.
    SizeTiered,
}

/// Knobs of compaction.
#[derive(Debug, Clone)]
pub struct CompactionOptions {
    /// Strategy (default leveled).
    pub strategy: CompactionStrategy,
    /// Number of L0 tables (leveled) or of similar runs (size-tiered) that triggers a
    /// compaction: the user's `max_sstables_before_compact` (default 4).
    pub l0_trigger: usize,
    /// L0 tables at which writes are slowed down (default 20).
    pub l0_slowdown: usize,
    /// L0 tables at which writes stop until compaction catches up (default 36).
    pub l0_stop: usize,
    /// Target size of L1 in bytes (default 256 MiB).
    pub base_level_size: u64,
    /// Size ratio between consecutive levels (default 10).
    pub level_size_ratio: u64,
    /// Size of the tables a leveled compaction writes (default 64 MiB).
    pub target_table_size: u64,
    /// Number of levels, L0 included (default 7).
    pub max_levels: usize,
    /// Size-tiered: runs whose sizes are within this factor of each other are "similar"
    /// (default 2).
    pub size_tiered_ratio: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            strategy: CompactionStrategy::Leveled,
            l0_trigger: 4,
            l0_slowdown: 20,
            l0_stop: 36,
            base_level_size: 256 << 20,
            level_size_ratio: 10,
            target_table_size: 64 << 20,
            max_levels: 7,
            size_tiered_ratio: 2,
        }
    }
}

impl CompactionOptions {
    /// Rejects inconsistent knobs with a message naming the option.
    pub fn validate(&self) -> crate::engine::Result<()> {
        let bad = |m: String| Err(crate::engine::Error::InvalidOption(m));
        if self.l0_trigger < 2 {
            return bad(format!(
                "max_sstables_before_compact (l0_trigger) must be at least 2, got {}",
                self.l0_trigger
            ));
        }
        if self.l0_slowdown <= self.l0_trigger || self.l0_stop < self.l0_slowdown {
            return bad(format!(
                "need l0_trigger < l0_slowdown <= l0_stop, got {} / {} / {}",
                self.l0_trigger, self.l0_slowdown, self.l0_stop
            ));
        }
        if !(2..=16).contains(&self.max_levels) {
            return bad(format!(
                "max_levels must be between 2 and 16, got {}",
                self.max_levels
            ));
        }
        if self.level_size_ratio < 2 || self.size_tiered_ratio < 1 {
            return bad(
                "level_size_ratio must be at least 2 and size_tiered_ratio at least 1".into(),
            );
        }
        if self.target_table_size < 4096 || self.base_level_size < self.target_table_size {
            return bad(format!(
                "need 4096 <= target_table_size <= base_level_size, got {} / {}",
                self.target_table_size, self.base_level_size
            ));
        }
        Ok(())
    }
}
