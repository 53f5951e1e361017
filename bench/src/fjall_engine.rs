//! The [`Engine`] implementation for fjall 3.x: one `Database` with one keyspace.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::engine::{Durability, Engine, EngineConfig, FjallSync, Shape};

const KEYSPACE: &str = "bench";

pub struct FjallEngine {
    /// `None` only while `reopen` is between its close and its open.
    open: Option<(Database, Keyspace)>,
    dir: PathBuf,
    cfg: EngineConfig,
    durability: Durability,
}

fn open_parts(dir: &Path, cfg: &EngineConfig) -> Result<(Database, Keyspace)> {
    let db = Database::builder(dir)
        .cache_size(cfg.block_cache_bytes)
        .open()
        .with_context(|| format!("fjall: opening {}", dir.display()))?;
    let memtable = cfg.memtable_bytes;
    let ks = db.keyspace(KEYSPACE, move || {
        KeyspaceCreateOptions::default().max_memtable_size(memtable)
    })?;
    Ok((db, ks))
}

impl FjallEngine {
    pub fn open(dir: &Path, cfg: &EngineConfig, durability: Durability) -> Result<FjallEngine> {
        Ok(FjallEngine {
            open: Some(open_parts(dir, cfg)?),
            dir: dir.to_path_buf(),
            cfg: cfg.clone(),
            durability,
        })
    }

    fn db(&self) -> &Database {
        &self.open.as_ref().expect("the database is open").0
    }

    fn ks(&self) -> &Keyspace {
        &self.open.as_ref().expect("the database is open").1
    }
}

impl Engine for FjallEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.ks().insert(key, value)?;
        Ok(())
    }

    fn sync_put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.durability != Durability::Synced {
            bail!("fjall: sync_put on a database opened for buffered writes");
        }
        self.ks().insert(key, value)?;
        let mode = match self.cfg.fjall_sync {
            FjallSync::All => PersistMode::SyncAll,
            FjallSync::Data => PersistMode::SyncData,
        };
        self.db().persist(mode)?;
        Ok(())
    }

    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let ks = self.ks();
        let mut batch = self.db().batch();
        for (k, v) in items {
            batch.insert(ks, *k, *v);
        }
        batch.commit()?;
        Ok(())
    }

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.ks().get(key)? {
            Some(v) => {
                check(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn prefix_count(&self, prefix: &[u8]) -> Result<usize> {
        let mut n = 0;
        for guard in self.ks().prefix(prefix) {
            let (key, value) = guard.into_inner()?;
            std::hint::black_box((key, value));
            n += 1;
        }
        Ok(n)
    }

    fn reopen(&mut self) -> Result<(Duration, Duration)> {
        // fjall has no close call: dropping the last handles stops its background
        // threads and persists the journal (`PersistMode::SyncAll`). The explicit
        // persist first reports an I/O error instead of only logging it.
        let (db, ks) = self.open.take().expect("the database is open");
        let start = Instant::now();
        db.persist(PersistMode::SyncAll)?;
        drop(ks);
        drop(db);
        let closed = start.elapsed();
        let start = Instant::now();
        let parts = open_parts(&self.dir, &self.cfg)?;
        let opened = start.elapsed();
        self.open = Some(parts);
        Ok((closed, opened))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        // Persist explicitly so that an I/O error is reported rather than only logged.
        if let Some((db, ks)) = self.open.take() {
            db.persist(PersistMode::SyncAll)?;
            drop(ks);
            drop(db);
        }
        Ok(())
    }

    fn shape(&self) -> Result<Shape> {
        Ok(Shape {
            tables: Some(self.ks().table_count() as u64),
            write_amplification: None,
            write_amplification_source: "n/a: fjall 3.1 counts compactions but not the \
                 bytes they write",
        })
    }

    fn compact_all(&self) -> Result<bool> {
        self.ks().major_compact()?;
        Ok(true)
    }

    fn state(&self) -> String {
        let ks = self.ks();
        let db = self.db();
        format!(
            "tables={} l0_tables={} sealed_memtables={} disk_space={} journals={} \
             compactions_completed={} active_compactions={} outstanding_flushes={}",
            ks.table_count(),
            ks.l0_table_count(),
            ks.sealed_memtable_count(),
            ks.disk_space(),
            db.journal_count(),
            db.compactions_completed(),
            db.active_compactions(),
            db.outstanding_flushes()
        )
    }
}
