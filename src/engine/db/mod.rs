//! The database: the public face of the storage engine.
//!
//! A [`Db`] owns one data directory:
//!
//! ```text
//! {dir}/LOCK            held (flock) while the directory is open
//! {dir}/MANIFEST        the live tables (see manifest.rs)
//! {dir}/wal/*.wal       write-ahead log segments
//! {dir}/tables/*.sst    SSTables
//! {dir}/quarantine/     tables that failed their checks on open, with the reason
//! ```
//!
//! Writes are group-committed by one leader at a time (`write.rs`), frozen memtables are
//! flushed by a background thread (`flush.rs`), reads see an immutable [`Version`]
//! (`read.rs`), and `open` recovers from whatever a crash left (`recovery.rs`).

mod compact;
mod flush;
mod read;
mod recovery;
pub mod stats;
mod verify;
mod version;
mod write;

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use super::bloom::KeyHash;
use super::error::{Error, Result};
use super::manifest::Manifest;
use super::memtable::Memtable;
use super::options::Options;
use super::sstable::{BlockCache, Probe};
use super::stats::ReadCounters;
use super::types::{validate_key, SeqNo, WriteBatch};
use super::wal;
pub use read::{DbIterator, Snapshot};
pub use stats::{QuarantinedTable, Stats, TableStats};
pub use verify::{FileCheck, VerifyReport};
pub use version::Version;
pub use write::PendingCommit;
use write::{LeaderState, WriteQueue};

/// Counters of the write path.
#[derive(Debug, Default)]
struct WriteCounters {
    writes: AtomicU64,
    wal_appends: AtomicU64,
    wal_syncs: AtomicU64,
    flushes: AtomicU64,
    write_stalls: AtomicU64,
    /// The WAL segment receiving writes, and the bytes of records in it.
    wal_active_id: AtomicU64,
    wal_active_bytes: AtomicU64,
}

/// Counters of compaction.
#[derive(Debug, Default)]
struct CompactionCounters {
    compactions: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    /// Bytes of tables written by flushes.
    bytes_flushed: AtomicU64,
    /// Writes delayed because L0 has `l0_slowdown` tables.
    slowdowns: AtomicU64,
}

/// Wakes the flush thread, and writers waiting for a flush.
#[derive(Debug, Default)]
struct FlushSignal {
    shutdown: bool,
}

struct Inner {
    dir: PathBuf,
    tables_dir: PathBuf,
    wal_dir: PathBuf,
    opts: Options,
    /// Held for the life of the database: the flock on `LOCK`.
    _lock: File,

    version: RwLock<Arc<Version>>,
    /// Sequence number of the newest write visible to readers.
    visible_seq: AtomicU64,
    next_file_id: AtomicU64,

    queue: Mutex<WriteQueue>,
    queue_cv: Condvar,
    /// Wakes a leader gathering its group when a writer queues.
    gather_cv: Condvar,
    leader: Mutex<LeaderState>,
    /// The current WAL segment, for the periodic sync thread.
    wal_sync_handle: Mutex<Option<Arc<File>>>,

    manifest: Mutex<Manifest>,
    flush_signal: Mutex<FlushSignal>,
    /// Signalled when there is a memtable to flush or on shutdown.
    flush_wakeup: Condvar,
    /// Signalled after every flush attempt and every compaction.
    flush_done: Condvar,
    /// Wakes the compaction thread.
    compaction_wakeup: Condvar,
    /// Held while a compaction runs: one at a time.
    compaction_lock: Mutex<()>,
    /// Per level, where the last compaction out of it ended (round-robin).
    compact_pointers: Mutex<Vec<Vec<u8>>>,
    compaction_counters: CompactionCounters,

    cache: Arc<BlockCache>,
    counters: Arc<ReadCounters>,
    write_counters: WriteCounters,
    snapshots: Mutex<BTreeMap<SeqNo, usize>>,
    quarantined: Mutex<Vec<QuarantinedTable>>,
    /// Set when a write could not be made durable: further writes are refused.
    poisoned: Mutex<Option<String>>,
    /// The last error of a background job (cleared by the next success).
    background_error: Mutex<Option<String>>,
    closed: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// An open database. Cheap to clone; every clone is the same database.
///
/// The database is closed (frozen memtables flushed, background threads stopped) when
/// [`close`](Db::close) is called or the last clone is dropped.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
    /// Shared by the clones: closing happens when the last one drops.
    _closer: Arc<Closer>,
}

struct Closer(Arc<Inner>);

impl Drop for Closer {
    fn drop(&mut self) {
        if let Err(e) = self.0.close() {
            tracing::error!(dir = %self.0.dir.display(), error = %e, "closing the database failed");
        }
    }
}

impl Db {
    /// Opens (or creates) the database in `dir`, recovering from any crash.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let inner = recovery::open(dir.as_ref(), opts)?;
        Ok(Db {
            _closer: Arc::new(Closer(Arc::clone(&inner))),
            inner,
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Sets `key` to `value`. Returns the write's sequence number once it is in the WAL
    /// (and, under [`SyncPolicy::Always`](super::SyncPolicy::Always), on stable storage).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<SeqNo> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write_batch(batch)
    }

    /// Deletes `key` by writing a tombstone.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<SeqNo> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write_batch(batch)
    }

    /// Applies every operation of `batch` atomically. Returns the sequence number of its
    /// last operation (an empty batch returns the latest sequence number).
    ///
    /// The same as [`submit`](Db::submit) followed by [`PendingCommit::wait`].
    pub fn write_batch(&self, batch: WriteBatch) -> Result<SeqNo> {
        self.submit(batch)?.wait()
    }

    /// Queues `batch` for commit and returns without waiting. Batches are committed in
    /// the order they were submitted (also relative to `write_batch` calls that return
    /// later): a batch submitted after another gets higher sequence numbers. Validation
    /// errors (key/value too large, not UTF-8, batch too large) and a closed or read-only
    /// (poisoned) database are reported here; a failure to commit, by
    /// [`PendingCommit::wait`].
    ///
    /// This lets a caller order its writes under a lock of its own and wait for them
    /// after releasing it, while concurrent writers still share WAL appends and fsyncs.
    /// Nothing is committed until someone waits: the caller's `wait` (or the drop of the
    /// [`PendingCommit`], which waits too), another writer's, or a [`barrier`](Db::barrier).
    /// An empty batch commits nothing; its `wait` returns the latest sequence number at
    /// the time of the submit.
    pub fn submit(&self, batch: WriteBatch) -> Result<PendingCommit> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(PendingCommit::ready(self.inner.visible_seq()));
        }
        let write = self.inner.submit(batch)?;
        Ok(PendingCommit::queued(self.clone(), write))
    }

    /// Like [`submit`](Db::submit), for a batch that must know its own sequence
    /// numbers: `build` is called with the one its first operation will get (operation
    /// `i` gets `first + i`) and returns the batch to queue, so a batch can record in
    /// some of its values the sequence numbers of its other operations.
    ///
    /// `build` runs while the write queue is locked (that is what fixes its place in
    /// the commit order), so it should only assemble what the caller prepared: other
    /// writers cannot queue meanwhile. If it fails, or the batch it returns is invalid,
    /// nothing is queued.
    pub fn submit_with<E: From<Error>>(
        &self,
        build: impl FnOnce(SeqNo) -> std::result::Result<WriteBatch, E>,
    ) -> std::result::Result<PendingCommit, E> {
        match self.inner.submit_with(build)? {
            Some(write) => Ok(PendingCommit::queued(self.clone(), write)),
            None => Ok(PendingCommit::ready(self.inner.visible_seq())),
        }
    }

    /// Returns once every batch submitted before the call is committed or has failed
    /// (committing them if no other writer is), so reads after it see every one that
    /// succeeded. Each batch's own outcome is reported by its [`PendingCommit`]; this
    /// fails only if the database is closed or read-only (poisoned) afterwards.
    pub fn barrier(&self) -> Result<()> {
        self.inner.drain_queue();
        self.inner.check_open()
    }

    /// The value of `key`, or `None` if it is absent or deleted.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner.get_at(key.as_ref(), self.inner.visible_seq())
    }

    /// [`get`](Db::get) that never touches the disk: `Some(answer)` when the memtables,
    /// bloom filters and block cache suffice, `None` when a table block would have to
    /// be read. For callers that must not block (an async runtime); on `None` they call
    /// `get` where blocking is allowed.
    pub fn get_if_cached(&self, key: impl AsRef<[u8]>) -> Result<Option<Option<Vec<u8>>>> {
        self.inner.get_if_cached(key.as_ref())
    }

    /// Like [`get`](Db::get), with the sequence number of the write that set the value:
    /// it identifies this version of the record (a later put of the key gets a higher
    /// one, and compaction keeps sequence numbers as they are).
    pub fn get_versioned(&self, key: impl AsRef<[u8]>) -> Result<Option<(SeqNo, Vec<u8>)>> {
        self.inner
            .get_versioned_at(key.as_ref(), self.inner.visible_seq())
    }

    /// The sequence number of the latest acknowledged write.
    pub fn last_seq(&self) -> SeqNo {
        self.inner.visible_seq()
    }

    /// Iterates the keys in `range` in ascending order, with their newest values.
    ///
    /// The iterator reads a consistent snapshot taken when it is created, and loads
    /// blocks lazily: stopping after `n` items reads only the blocks that hold them.
    /// A range starting at `Bound::Excluded(k)` resumes a page after key `k`.
    pub fn iter_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<DbIterator> {
        read::iter_range(&self.inner, self.inner.visible_seq(), range)
    }

    /// Iterates the keys that start with `prefix`, in ascending order.
    pub fn iter_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<DbIterator> {
        read::iter_prefix(&self.inner, self.inner.visible_seq(), prefix.as_ref())
    }

    /// Iterates every key in ascending order.
    pub fn iter(&self) -> Result<DbIterator> {
        self.iter_range::<&[u8]>(..)
    }

    /// A consistent read view at the current sequence number: it sees exactly the writes
    /// acknowledged before it was taken.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(Arc::clone(&self.inner))
    }

    /// Freezes the active memtable and waits until every frozen memtable is in a table.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush_and_wait()
    }

    /// Flushes the memtable, then merges every table into one sorted run at the bottom,
    /// keeping only what live snapshots and the latest state can read.
    pub fn compact(&self) -> Result<()> {
        self.inner.compact_all()
    }

    /// Settles the tree: waits until the frozen memtables are in tables, then runs, in
    /// the calling thread, every compaction the background thread would run next, until
    /// none is due. The active memtable is left alone. When it returns (and no write came
    /// meanwhile), reads meet the tree that background work would have left, with no
    /// compaction about to replace tables under them: for the end of a bulk load, a
    /// benchmark, or a maintenance window. It shares the one-at-a-time compaction lock
    /// with the background thread.
    pub fn compact_pending(&self) -> Result<()> {
        self.inner.compact_pending()
    }

    /// Statistics of the database.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Statistics of every live table.
    pub fn stats_all(&self) -> Vec<TableStats> {
        self.inner.table_stats()
    }

    /// Reads every table block by block and every WAL record, checking every checksum
    /// and the order of keys; reports on each file. Damage is reported, not fixed.
    pub fn verify(&self) -> VerifyReport {
        self.inner.verify()
    }

    /// Flushes frozen memtables and stops background threads. Also done on drop.
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }
}

impl Inner {
    fn visible_seq(&self) -> SeqNo {
        self.visible_seq.load(Ordering::Acquire)
    }

    fn current_version(&self) -> Arc<Version> {
        Arc::clone(&self.version.read())
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(reason) = self.poisoned.lock().as_ref() {
            return Err(Error::Poisoned(reason.clone()));
        }
        Ok(())
    }

    /// An empty memtable sized by the options, for writes starting in WAL segment `id`.
    fn new_memtable(&self, id: u64) -> Memtable {
        Memtable::new(
            id,
            self.opts.memtable_max_size,
            self.opts.bloom_bits_per_key,
        )
    }

    /// [`get_at`](Inner::get_at) at the latest sequence number, without any I/O: `None`
    /// when a table block that is not cached would have to be read.
    fn get_if_cached(&self, key: &[u8]) -> Result<Option<Option<Vec<u8>>>> {
        validate_key(key)?;
        let seq = self.visible_seq();
        let hash = KeyHash::of(key);
        let version = self.current_version();
        for mem in version.memtables_newest_first() {
            if let Some((_, kind, value)) = mem.get_with_hash(key, hash, seq) {
                return Ok(Some(visible(kind, value)));
            }
        }
        let mut probes = Vec::new();
        let mut answer = None;
        for table in version.tables_for_key(key) {
            let probe = table.probe_cached(key, hash, seq)?;
            if matches!(probe, Probe::NeedsIo) {
                return Ok(None);
            }
            if let Probe::Hit(Some((_, kind, value))) = &probe {
                answer = visible(*kind, value.clone());
                probes.push((table, probe));
                break;
            }
            probes.push((table, probe));
        }
        for (table, probe) in &probes {
            table.count_probe(probe);
        }
        Ok(Some(answer))
    }

    /// Newest visible version of `key` at `seq`.
    fn get_at(&self, key: &[u8], seq: SeqNo) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned_at(key, seq)?.map(|(_, value)| value))
    }

    /// Newest visible version of `key` at `seq`, with the sequence number that wrote it.
    fn get_versioned_at(&self, key: &[u8], seq: SeqNo) -> Result<Option<(SeqNo, Vec<u8>)>> {
        validate_key(key)?;
        // Hashed once for the filters of every memtable and table.
        let hash = KeyHash::of(key);
        let version = self.current_version();
        for mem in version.memtables_newest_first() {
            if let Some((s, kind, value)) = mem.get_with_hash(key, hash, seq) {
                return Ok(visible(kind, value).map(|v| (s, v)));
            }
        }
        for table in version.tables_for_key(key) {
            if let Some((s, kind, value)) = table.get_with_hash(key, hash, seq)? {
                return Ok(visible(kind, value).map(|v| (s, v)));
            }
        }
        Ok(None)
    }

    /// [`get_versioned_at`](Inner::get_versioned_at) for many keys: one answer per key,
    /// in order. The keys are looked up together, source by source and, within a table,
    /// stage by stage and in key order (see [`Table::get_many`]), so their cache misses
    /// overlap and each index search starts where the previous one ended.
    #[allow(clippy::type_complexity)]
    fn get_many_versioned_at(
        &self,
        keys: &[&[u8]],
        seq: SeqNo,
    ) -> Result<Vec<Option<(SeqNo, Vec<u8>)>>> {
        for k in keys {
            validate_key(k)?;
        }
        let hashes: Vec<KeyHash> = keys.iter().map(|k| KeyHash::of(k)).collect();
        let version = self.current_version();
        // `None` while a key's newest version is not found yet.
        let mut answers: Vec<Option<Option<(SeqNo, Vec<u8>)>>> = vec![None; keys.len()];
        for mem in version.memtables_newest_first() {
            for &hash in &hashes {
                mem.prefetch(hash);
            }
            for (i, answer) in answers.iter_mut().enumerate() {
                if answer.is_none() {
                    if let Some((s, kind, value)) = mem.get_with_hash(keys[i], hashes[i], seq) {
                        *answer = Some(visible(kind, value).map(|v| (s, v)));
                    }
                }
            }
        }
        // Tables are asked for their keys in key order, which lets them search their
        // index from where the previous key was found.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        if !keys.windows(2).all(|w| w[0] <= w[1]) {
            order.sort_unstable_by(|&a, &b| keys[a].cmp(keys[b]));
        }
        // Level 0 tables overlap: every one, newest first, for every key still open.
        // Deeper levels: each key goes to the one table whose range holds it.
        for (level, tables) in version.levels.iter().enumerate() {
            let mut by_table: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
            for &i in &order {
                if answers[i].is_some() {
                    continue;
                }
                if level == 0 {
                    by_table.iter_mut().for_each(|w| w.push(i));
                    continue;
                }
                let k = keys[i];
                let t = tables.partition_point(|x| x.properties().largest_key.as_slice() < k);
                if tables
                    .get(t)
                    .is_some_and(|x| x.properties().smallest_key.as_slice() <= k)
                {
                    by_table[t].push(i);
                }
            }
            for (table, which) in tables.iter().zip(by_table) {
                // (In level 0 a newer table may have answered some keys already.)
                let which: Vec<usize> = which
                    .into_iter()
                    .filter(|&i| answers[i].is_none())
                    .collect();
                if which.is_empty() {
                    continue;
                }
                let batch: Vec<(&[u8], KeyHash)> =
                    which.iter().map(|&i| (keys[i], hashes[i])).collect();
                for (&i, hit) in which.iter().zip(table.get_many(&batch, seq)?) {
                    if let Some((s, kind, value)) = hit {
                        answers[i] = Some(visible(kind, value).map(|v| (s, v)));
                    }
                }
            }
        }
        Ok(answers.into_iter().map(Option::flatten).collect())
    }

    fn close(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        // Batches submitted but not yet waited for are committed, not refused later.
        self.drain_queue();
        let flushed = if self.poisoned.lock().is_none() {
            self.flush_and_wait()
        } else {
            Ok(())
        };
        self.closed.store(true, Ordering::Release);
        self.flush_signal.lock().shutdown = true;
        self.flush_wakeup.notify_all();
        self.flush_done.notify_all();
        self.compaction_wakeup.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a background thread panicked");
            }
        }
        if let Err(e) = self.leader.lock().wal.seal() {
            tracing::warn!(error = %e, "final WAL sync failed");
        }
        flushed
    }

    fn wal_totals(&self) -> (u64, u64) {
        let Ok(ids) = wal::list_segments(&self.wal_dir) else {
            return (0, 0);
        };
        let (active_id, active_bytes) = {
            let c = &self.write_counters;
            (
                c.wal_active_id.load(Ordering::Relaxed),
                c.wal_active_bytes.load(Ordering::Relaxed),
            )
        };
        // The active segment's file is longer than its records (preallocation).
        let bytes = ids
            .iter()
            .filter_map(|&id| match id == active_id {
                true => Some(active_bytes),
                false => std::fs::metadata(wal::segment_path(&self.wal_dir, id))
                    .ok()
                    .map(|m| m.len()),
            })
            .sum();
        (ids.len() as u64, bytes)
    }
}

fn visible(kind: super::types::ValueKind, value: Vec<u8>) -> Option<Vec<u8>> {
    (kind == super::types::ValueKind::Put).then_some(value)
}

/// Puts a level's tables in read order: L0 newest first, deeper levels by key.
fn sort_level(level: usize, tables: &mut [Arc<super::sstable::Table>]) {
    if level == 0 {
        tables.sort_by(|a, b| {
            let (pa, pb) = (a.properties(), b.properties());
            pb.max_seq.cmp(&pa.max_seq).then(b.id().cmp(&a.id()))
        });
    } else {
        tables.sort_by(|a, b| {
            a.properties()
                .smallest_key
                .cmp(&b.properties().smallest_key)
        });
    }
}
