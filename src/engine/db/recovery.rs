//! Opening a database: lock, manifest, orphan clean-up, table checks with quarantine,
//! and WAL replay.
//!
//! Whatever a crash left behind, `open` either produces a database holding every
//! acknowledged write or fails with an error that names the damaged file:
//! - tables not named by the manifest (an interrupted flush) are deleted;
//! - a table that fails its format or checksum check is moved to `quarantine/` with a
//!   `.reason` file and reported, instead of failing the open;
//! - WAL segments newer than the manifest's `log_number` are replayed; a torn tail of
//!   the newest one is truncated, a damaged record anywhere else is an error.
//!
//! Replayed writes are flushed to a table before `open` returns, so the WAL it starts
//! with is new and empty.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::super::error::{Error, Result};
use super::super::manifest::{parse_table_name, table_path, Manifest, MANIFEST_FILE};
use super::super::memtable::Memtable;
use super::super::options::{Options, SyncPolicy};
use super::super::sstable::{new_block_cache, Table};
use super::super::stats::ReadCounters;
use super::super::types::BatchOp;
use super::super::types::ValueKind;
use super::super::wal;
use super::stats::QuarantinedTable;
use super::write::{new_segment, LeaderState, WriteQueue};
use super::{sort_level, FlushSignal, Inner, Version, WriteCounters};

const QUARANTINE_DIR: &str = "quarantine";

pub(super) fn open(dir: &Path, opts: Options) -> Result<Arc<Inner>> {
    opts.validate()?;
    if !dir.exists() {
        if !opts.create_if_missing {
            return Err(Error::InvalidOption(format!(
                "{} does not exist and create_if_missing is false",
                dir.display()
            )));
        }
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let lock = lock_dir(dir)?;
    let tables_dir = dir.join("tables");
    let wal_dir = dir.join("wal");
    for d in [&tables_dir, &wal_dir] {
        fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }

    let mut manifest = match Manifest::load(dir)? {
        Some(m) => m,
        None => {
            if !wal::list_segments(&wal_dir)?.is_empty() || !table_ids(&tables_dir)?.is_empty() {
                return Err(Error::corruption(
                    dir.join(MANIFEST_FILE),
                    0,
                    "the manifest is missing but the directory holds tables or WAL segments; \
                     restore the MANIFEST file from a backup",
                ));
            }
            let m = Manifest {
                next_file_id: 1,
                ..Manifest::default()
            };
            m.store(dir)?;
            m
        }
    };
    remove_orphans(dir, &tables_dir, &manifest)?;

    let cache = new_block_cache(opts.block_cache_size);
    let counters = Arc::new(ReadCounters::default());
    let mut tables = Vec::new();
    let mut quarantined_now = false;
    let mut kept = Vec::new();
    for entry in std::mem::take(&mut manifest.tables) {
        let path = table_path(&tables_dir, entry.id);
        match Table::open(&path, entry.id, Arc::clone(&cache), Arc::clone(&counters)) {
            Ok(table) => {
                tables.push((entry.level as usize, table));
                kept.push(entry);
            }
            // A table from a newer release is not damage: refuse the open instead of
            // moving the table aside.
            Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
            Err(e) if e.is_corruption() || is_not_found(&e) => {
                quarantine(dir, &path, &e)?;
                quarantined_now = true;
            }
            Err(e) => return Err(e),
        }
    }
    manifest.tables = kept;
    let depth = tables.iter().map(|(l, _)| l + 1).max().unwrap_or(0);
    let mut levels = vec![Vec::new(); depth.max(opts.compaction.max_levels)];
    for (level, table) in tables {
        levels[level].push(table);
    }
    for (level, tables) in levels.iter_mut().enumerate() {
        sort_level(level, tables);
    }
    if quarantined_now {
        manifest.store(dir)?;
    }

    // Replay the WAL into one memtable.
    let mut segments = wal::list_segments(&wal_dir)?;
    super::flush::remove_segments_before(&wal_dir, manifest.log_number);
    segments.retain(|&id| id >= manifest.log_number);
    let max_table = manifest.tables.iter().map(|t| t.id).max().unwrap_or(0);
    let mut next_file_id = manifest
        .next_file_id
        .max(segments.last().map_or(0, |s| s + 1))
        .max(max_table + 1);
    let recovered = Arc::new(Memtable::new(
        segments.first().copied().unwrap_or(next_file_id),
        opts.memtable_max_size,
        opts.bloom_bits_per_key,
    ));
    let mut last_seq = manifest.last_seq;
    let mut kept_segments = segments.len();
    for (i, &id) in segments.iter().enumerate() {
        let path = wal::segment_path(&wal_dir, id);
        let is_last = i + 1 == segments.len();
        let outcome = wal::replay_segment(&path, is_last, |first_seq, batch| {
            for (j, op) in batch.ops().iter().enumerate() {
                let seq = first_seq + j as u64;
                if seq <= manifest.last_seq {
                    continue;
                }
                match op {
                    BatchOp::Put { key, value } => {
                        recovered.insert(key, seq, ValueKind::Put, value)?
                    }
                    BatchOp::Delete { key } => {
                        recovered.insert(key, seq, ValueKind::Delete, b"")?
                    }
                }
                last_seq = last_seq.max(seq);
            }
            Ok(())
        })?;
        if let Some(at) = outcome.truncated_at {
            tracing::warn!(
                path = %path.display(),
                offset = at,
                "truncated a torn write at the end of the WAL"
            );
        }
        if is_last && outcome.records == 0 {
            // A segment that holds nothing (possibly with a torn header): drop it now, so
            // it never becomes a damaged segment in the middle of the log.
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            kept_segments -= 1;
        }
    }
    if !segments.is_empty() {
        tracing::info!(
            segments = segments.len(),
            versions = recovered.len(),
            last_seq,
            "replayed the WAL"
        );
    }

    let wal_id = next_file_id;
    next_file_id += 1;
    let wal_writer = new_segment(&wal_dir, wal_id, &opts)?;
    let sync_handle = Arc::new(wal_writer.sync_handle()?);
    let wal_size = wal_writer.size();
    // Replayed writes (and segments that must be retired) go through the normal flush
    // path before `open` returns.
    let immutables = if recovered.is_empty() && kept_segments == 0 {
        Vec::new()
    } else {
        vec![recovered]
    };
    let quarantined = list_quarantine(dir);
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        tables_dir,
        wal_dir,
        _lock: lock,
        version: RwLock::new(Arc::new(Version {
            active: Arc::new(Memtable::new(
                wal_id,
                opts.memtable_max_size,
                opts.bloom_bits_per_key,
            )),
            immutables,
            levels,
        })),
        visible_seq: AtomicU64::new(last_seq),
        next_file_id: AtomicU64::new(next_file_id),
        queue: Mutex::new(WriteQueue::after(last_seq)),
        queue_cv: Condvar::new(),
        gather_cv: Condvar::new(),
        leader: Mutex::new(LeaderState::new(wal_writer, last_seq)),
        wal_sync_handle: Mutex::new(Some(sync_handle)),
        manifest: Mutex::new(manifest),
        flush_signal: Mutex::new(FlushSignal::default()),
        flush_wakeup: Condvar::new(),
        flush_done: Condvar::new(),
        compaction_wakeup: Condvar::new(),
        compaction_lock: Mutex::new(()),
        compact_pointers: Mutex::new(Vec::new()),
        compaction_counters: Default::default(),
        cache,
        counters,
        write_counters: WriteCounters {
            wal_active_id: AtomicU64::new(wal_id),
            wal_active_bytes: AtomicU64::new(wal_size),
            ..WriteCounters::default()
        },
        snapshots: Mutex::new(Default::default()),
        quarantined: Mutex::new(quarantined),
        poisoned: Mutex::new(None),
        background_error: Mutex::new(None),
        closed: AtomicBool::new(false),
        threads: Mutex::new(Vec::new()),
        opts,
    });
    spawn_threads(&inner)?;
    if let Err(e) = inner.flush_and_wait() {
        let _ = inner.close();
        return Err(e);
    }
    Ok(inner)
}

fn spawn_threads(inner: &Arc<Inner>) -> Result<()> {
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| Error::io(&inner.dir, e))
    };
    let flusher = Arc::clone(inner);
    let compactor = Arc::clone(inner);
    let mut threads = vec![
        spawn("lsm-flush", Box::new(move || flusher.flush_loop()))?,
        spawn("lsm-compact", Box::new(move || compactor.compaction_loop()))?,
    ];
    if let SyncPolicy::Periodic(every) = inner.opts.sync {
        let syncer = Arc::clone(inner);
        threads.push(spawn(
            "lsm-wal-sync",
            Box::new(move || syncer.periodic_sync(every)),
        )?);
    }
    *inner.threads.lock() = threads;
    Ok(())
}

/// Takes the directory's lock file, failing with [`Error::Locked`] if it is held.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn table_ids(tables_dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(tables_dir).map_err(|e| Error::io(tables_dir, e))? {
        let entry = entry.map_err(|e| Error::io(tables_dir, e))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_table_name) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Deletes table files the manifest does not name and temporary files.
fn remove_orphans(dir: &Path, tables_dir: &Path, manifest: &Manifest) -> Result<()> {
    let live: std::collections::HashSet<u64> = manifest.tables.iter().map(|t| t.id).collect();
    for entry in fs::read_dir(tables_dir).map_err(|e| Error::io(tables_dir, e))? {
        let entry = entry.map_err(|e| Error::io(tables_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let orphan = match parse_table_name(name) {
            Some(id) => !live.contains(&id),
            None => name.ends_with(".tmp"),
        };
        if orphan {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing an orphan file");
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    let tmp = dir.join("MANIFEST.tmp");
    if tmp.exists() {
        fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    Ok(())
}

/// Moves a damaged table into `quarantine/` and records why in a `.reason` file next to
/// it (also for a table whose file is missing, so the loss stays visible).
fn quarantine(dir: &Path, path: &Path, why: &Error) -> Result<()> {
    tracing::error!(path = %path.display(), error = %why, "quarantining a damaged table");
    let qdir = dir.join(QUARANTINE_DIR);
    fs::create_dir_all(&qdir).map_err(|e| Error::io(&qdir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "table.sst".into());
    let target = unique_path(&qdir, &name);
    if path.exists() {
        fs::rename(path, &target).map_err(|e| Error::io(path, e))?;
    }
    let reason_path = reason_path(&target);
    let text = format!("{}\n{}\n", path.display(), why);
    fs::write(&reason_path, text).map_err(|e| Error::io(&reason_path, e))
}

fn reason_path(table: &Path) -> PathBuf {
    PathBuf::from(format!("{}.reason", table.display()))
}

fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let mut candidate = dir.join(name);
    let mut n = 1;
    while candidate.exists() || reason_path(&candidate).exists() {
        candidate = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    candidate
}

/// Every table in `quarantine/`, with the reason recorded when it was moved there.
fn list_quarantine(dir: &Path) -> Vec<QuarantinedTable> {
    let qdir = dir.join(QUARANTINE_DIR);
    let Ok(entries) = fs::read_dir(&qdir) else {
        return Vec::new();
    };
    let mut out: Vec<QuarantinedTable> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "reason"))
        .map(|reason| {
            let text = fs::read_to_string(&reason).unwrap_or_default();
            let mut lines = text.lines();
            let table = reason.with_extension("");
            QuarantinedTable {
                original_path: lines.next().map(PathBuf::from).unwrap_or_default(),
                reason: lines.collect::<Vec<_>>().join("\n"),
                quarantine_path: table.exists().then_some(table),
            }
        })
        .collect();
    out.sort_by(|a, b| a.original_path.cmp(&b.original_path));
    out
}
