//! Compaction: merging tables so that the number of tables a read visits, and the space
//! taken by overwritten and deleted data, stay bounded however long writes go on.
//!
//! - `picker`: which tables to merge next (leveled or size-tiered).
//! - `retain`: which versions of a key a merge keeps (snapshots, tombstones).
//! - `job`: running one merge into new tables.
//!
//! The knobs, [`CompactionOptions`], live with the other options.

pub mod job;
pub mod picker;
pub mod retain;

pub use crate::engine::options::{CompactionOptions, CompactionStrategy};
