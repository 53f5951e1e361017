//! The [`Engine`] implementation for RocksDB (the `rocksdb` crate), built only with the
//! `rocksdb` cargo feature.
//!
//! Settings match the other engines: a 64 MiB LRU block cache, a 32 MiB write buffer
//! (memtable), a 10 bits/key bloom filter, no compression (lsm does not compress and
//! the values are incompressible); everything else is RocksDB's default, including its
//! leveled compaction. Statistics are on at the tickers-only level, so the overwrite
//! report can read the bytes written by flushes and compactions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rocksdb::statistics::{StatsLevel, Ticker};
use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options, WriteOptions, DB};

use crate::engine::{Durability, Engine, EngineConfig, Shape};

pub struct RocksdbEngine {
    /// `None` only while `reopen` is between its close and its open.
    db: Option<DB>,
    dir: PathBuf,
    /// Kept for its statistics object, which the open database updates.
    opts: Options,
    write: WriteOptions,
    durability: Durability,
}

fn options(cfg: &EngineConfig) -> Result<Options> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.set_write_buffer_size(usize::try_from(cfg.memtable_bytes)?);
    opts.set_compression_type(DBCompressionType::None);
    let cache = Cache::new_lru_cache(usize::try_from(cfg.block_cache_bytes)?);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_bloom_filter(10.0, false);
    opts.set_block_based_table_factory(&table);
    opts.enable_statistics();
    opts.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
    Ok(opts)
}

impl RocksdbEngine {
    pub fn open(dir: &Path, cfg: &EngineConfig, durability: Durability) -> Result<RocksdbEngine> {
        let opts = options(cfg)?;
        let db =
            DB::open(&opts, dir).with_context(|| format!("rocksdb: opening {}", dir.display()))?;
        let mut write = WriteOptions::default();
        write.set_sync(durability == Durability::Synced);
        Ok(RocksdbEngine {
            db: Some(db),
            dir: dir.to_path_buf(),
            opts,
            write,
            durability,
        })
    }

    fn db(&self) -> &DB {
        self.db.as_ref().expect("the database is open")
    }

    /// Closes the way RocksDB documents it for a WAL-enabled database: sync the WAL
    /// (reporting an error instead of losing it in the destructor), then drop the
    /// handle, which waits for running background jobs. The memtable is not flushed;
    /// the next open replays the WAL.
    fn close_db(db: DB) -> Result<()> {
        db.flush_wal(true)?;
        drop(db);
        Ok(())
    }
}

impl Engine for RocksdbEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db().put_opt(key, value, &self.write)?;
        Ok(())
    }

    fn sync_put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.durability != Durability::Synced {
            bail!("rocksdb: sync_put on a database opened without WriteOptions::set_sync(true)");
        }
        self.db().put_opt(key, value, &self.write)?;
        Ok(())
    }

    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let mut batch = rocksdb::WriteBatch::default();
        for (k, v) in items {
            batch.put(k, v);
        }
        self.db().write_opt(batch, &self.write)?;
        Ok(())
    }

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.db().get_pinned(key)? {
            Some(v) => {
                check(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn prefix_count(&self, prefix: &[u8]) -> Result<usize> {
        let mut it = self.db().raw_iterator();
        it.seek(prefix);
        let mut n = 0;
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if !key.starts_with(prefix) {
                break;
            }
            std::hint::black_box((key, value));
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }

    fn reopen(&mut self) -> Result<(Duration, Duration)> {
        let db = self.db.take().expect("the database is open");
        let start = Instant::now();
        Self::close_db(db)?;
        let closed = start.elapsed();
        let start = Instant::now();
        let db = DB::open(&self.opts, &self.dir)
            .with_context(|| format!("rocksdb: reopening {}", self.dir.display()))?;
        let opened = start.elapsed();
        self.db = Some(db);
        Ok((closed, opened))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        if let Some(db) = self.db.take() {
            Self::close_db(db)?;
        }
        Ok(())
    }

    fn shape(&self) -> Result<Shape> {
        let tables = self.db().live_files()?.len() as u64;
        let flushed = self.opts.get_ticker_count(Ticker::FlushWriteBytes);
        let compacted = self.opts.get_ticker_count(Ticker::CompactWriteBytes);
        Ok(Shape {
            tables: Some(tables),
            write_amplification: (flushed > 0)
                .then(|| (flushed + compacted) as f64 / flushed as f64),
            write_amplification_source: "(flush + compaction bytes) / flush bytes, \
                 from the tickers rocksdb.flush.write.bytes and rocksdb.compact.write.bytes",
        })
    }

    fn compact_all(&self) -> Result<bool> {
        self.db().compact_range(None::<&[u8]>, None::<&[u8]>);
        Ok(true)
    }

    fn state(&self) -> String {
        let db = self.db();
        let prop = |name: &str| {
            db.property_int_value(name)
                .ok()
                .flatten()
                .map_or_else(|| "?".to_string(), |v| v.to_string())
        };
        let per_level: Vec<String> = (0..7)
            .map(|l| prop(&format!("rocksdb.num-files-at-level{l}")))
            .collect();
        format!(
            "tables_per_level=[{}] live_sst_bytes={} memtable_bytes={} \
             flush_bytes={} compaction_bytes={} stall_micros={}",
            per_level.join(","),
            prop("rocksdb.live-sst-files-size"),
            prop("rocksdb.cur-size-all-mem-tables"),
            self.opts.get_ticker_count(Ticker::FlushWriteBytes),
            self.opts.get_ticker_count(Ticker::CompactWriteBytes),
            self.opts.get_ticker_count(Ticker::StallMicros),
        )
    }
}
