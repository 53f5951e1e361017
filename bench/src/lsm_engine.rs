//! The [`Engine`] implementation for this repository's engine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lsm::engine::{Db, Options, SyncPolicy, WriteBatch};

use crate::engine::{Durability, Engine, EngineConfig, Shape};

pub struct LsmEngine {
    /// `None` only while `reopen` is between its close and its open.
    db: Option<Db>,
    dir: PathBuf,
    opts: Options,
    durability: Durability,
}

impl LsmEngine {
    pub fn open(dir: &Path, cfg: &EngineConfig, durability: Durability) -> Result<LsmEngine> {
        let opts = Options {
            memtable_max_size: usize::try_from(cfg.memtable_bytes)?,
            block_cache_size: cfg.block_cache_bytes,
            sync: match durability {
                Durability::Buffered => SyncPolicy::Never,
                Durability::Synced => SyncPolicy::Always,
            },
            ..Options::default()
        };
        let db = Db::open(dir, opts.clone())
            .with_context(|| format!("lsm: opening {}", dir.display()))?;
        Ok(LsmEngine {
            db: Some(db),
            dir: dir.to_path_buf(),
            opts,
            durability,
        })
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("the database is open")
    }
}

impl Engine for LsmEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db().put(key, value)?;
        Ok(())
    }

    fn sync_put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.durability != Durability::Synced {
            bail!("lsm: sync_put on a database opened without SyncPolicy::Always");
        }
        self.db().put(key, value)?;
        Ok(())
    }

    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (k, v) in items {
            batch.put(k, v);
        }
        self.db().write_batch(batch)?;
        Ok(())
    }

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.db().get(key)? {
            Some(v) => {
                check(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn prefix_count(&self, prefix: &[u8]) -> Result<usize> {
        let mut n = 0;
        for item in self.db().iter_prefix(prefix)? {
            let (key, value) = item?;
            std::hint::black_box((key, value));
            n += 1;
        }
        Ok(n)
    }

    fn reopen(&mut self) -> Result<(Duration, Duration)> {
        let db = self.db.take().expect("the database is open");
        let start = Instant::now();
        db.close()?;
        let closed = start.elapsed();
        let start = Instant::now();
        let db = Db::open(&self.dir, self.opts.clone())
            .with_context(|| format!("lsm: reopening {}", self.dir.display()))?;
        let opened = start.elapsed();
        self.db = Some(db);
        Ok((closed, opened))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        if let Some(db) = self.db.take() {
            db.close()?;
        }
        Ok(())
    }

    fn shape(&self) -> Result<Shape> {
        let s = self.db().stats();
        Ok(Shape {
            tables: Some(s.tables),
            write_amplification: (s.flush_bytes_written > 0).then_some(s.write_amplification),
            write_amplification_source: "`Stats::write_amplification`: (flush + compaction \
                 bytes written) / flush bytes written",
        })
    }

    fn compact_all(&self) -> Result<bool> {
        self.db().compact()?;
        Ok(true)
    }

    fn state(&self) -> String {
        let s = self.db().stats();
        format!(
            "tables={} tables_per_level={:?} table_bytes={} memtable_bytes={} \
             immutable_memtables={} writes={} wal_appends={} wal_syncs={} flushes={} \
             compactions={} write_stalls={} write_slowdowns={} bloom_negatives={} \
             blocks_read={} blocks_read_from_disk={}",
            s.tables,
            s.tables_per_level,
            s.table_bytes,
            s.memtable_bytes,
            s.immutable_memtables,
            s.writes,
            s.wal_appends,
            s.wal_syncs,
            s.flushes,
            s.compactions,
            s.write_stalls,
            s.write_slowdowns,
            s.bloom_negatives,
            s.blocks_read,
            s.blocks_read_from_disk
        )
    }
}
