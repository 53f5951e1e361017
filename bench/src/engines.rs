//! Opening an engine of each kind: kept apart from the `Engine` trait so the engines
//! depend on the trait alone.

use std::path::Path;

use anyhow::Result;

use crate::engine::{Durability, Engine, EngineConfig, EngineKind};
use crate::fjall_engine::FjallEngine;
use crate::lsm_engine::LsmEngine;
#[cfg(feature = "rocksdb")]
use crate::rocksdb_engine::RocksdbEngine;

/// Opens a fresh database of `kind` in `dir`.
pub fn open(
    kind: EngineKind,
    dir: &Path,
    cfg: &EngineConfig,
    durability: Durability,
) -> Result<Box<dyn Engine>> {
    Ok(match kind {
        EngineKind::Lsm => Box::new(LsmEngine::open(dir, cfg, durability)?),
        EngineKind::Fjall => Box::new(FjallEngine::open(dir, cfg, durability)?),
        #[cfg(feature = "rocksdb")]
        EngineKind::Rocksdb => Box::new(RocksdbEngine::open(dir, cfg, durability)?),
    })
}
