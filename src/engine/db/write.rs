//! The write path: group commit, memtable rotation and write stalls.
//!
//! Writers queue their batches; the first writer that finds no leader becomes the
//! leader, takes every batch queued so far as one group, assigns them consecutive
//! sequence numbers, appends the group to the WAL with one `write` (and, under
//! `SyncPolicy::Always`, one fsync), inserts it into the active memtable and only then
//! publishes the group's last sequence number to readers. Writers that queued meanwhile
//! form the next group, so under concurrency one fsync serves many writes.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::super::error::{Error, Result};
use super::super::options::{Options, SyncPolicy};
use super::super::types::{BatchOp, SeqNo, ValueKind, WriteBatch};
use super::super::wal::{self, WalWriter};
use super::{Inner, Version};

/// A batch waiting in the queue, and the slot for its outcome.
pub(super) struct PendingWrite {
    batch: WriteBatch,
    result: Mutex<Option<Result<SeqNo>>>,
}

/// Batches waiting to be committed.
#[derive(Default)]
pub(super) struct WriteQueue {
    pending: VecDeque<Arc<PendingWrite>>,
    leader_active: bool,
    /// Batches in the last group committed.
    last_group: usize,
    /// Duration of the last WAL fsync.
    last_sync: Duration,
}

/// The longest a leader waits for writers to join its group (see `gather`).
const MAX_GATHER_WAIT: Duration = Duration::from_millis(1);

/// Creates WAL segment `id`. When the WAL is fsynced (`Always`, `Periodic`), room for
/// one memtable's worth of records is reserved up front, so those fsyncs do not also
/// have to commit a growing file size.
pub(super) fn new_segment(wal_dir: &std::path::Path, id: u64, opts: &Options) -> Result<WalWriter> {
    let mut wal = WalWriter::create(wal_dir, id)?;
    if opts.sync != SyncPolicy::Never {
        wal.preallocate((opts.memtable_max_size as u64).min(64 << 20))?;
    }
    Ok(wal)
}

/// State only the write leader touches.
pub(super) struct LeaderState {
    /// The WAL segment receiving writes.
    pub(super) wal: WalWriter,
    /// The last sequence number assigned.
    pub(super) last_seq: SeqNo,
    /// Reused encoding buffer.
    buf: Vec<u8>,
}

impl LeaderState {
    pub(super) fn new(wal: WalWriter, last_seq: SeqNo) -> Self {
        LeaderState {
            wal,
            last_seq,
            buf: Vec::new(),
        }
    }
}

impl Inner {
    /// Commits `batch` (already validated and non-empty) and returns its last sequence
    /// number.
    pub(super) fn write(&self, batch: WriteBatch) -> Result<SeqNo> {
        let me = Arc::new(PendingWrite {
            batch,
            result: Mutex::new(None),
        });
        let mut queue = self.queue.lock();
        queue.pending.push_back(Arc::clone(&me));
        if queue.leader_active {
            self.gather_cv.notify_one();
        }
        loop {
            if let Some(result) = me.result.lock().take() {
                return result;
            }
            if !queue.leader_active {
                break;
            }
            self.queue_cv.wait(&mut queue);
        }
        queue.leader_active = true;
        self.gather(&mut queue);
        let group: Vec<Arc<PendingWrite>> = queue.pending.drain(..).collect();
        queue.last_group = group.len();
        drop(queue);

        let outcome = self.commit_group(&group);

        let mut queue = self.queue.lock();
        match outcome {
            Ok(seqs) => {
                for (p, seq) in group.iter().zip(seqs) {
                    *p.result.lock() = Some(Ok(seq));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for p in &group {
                    *p.result.lock() = Some(Err(Error::Poisoned(message.clone())));
                }
                *me.result.lock() = Some(Err(e));
            }
        }
        queue.leader_active = false;
        self.queue_cv.notify_all();
        drop(queue);
        let outcome = me.result.lock().take();
        outcome.unwrap_or_else(|| Err(Error::Poisoned("write outcome lost".into())))
    }

    /// Under `SyncPolicy::Always`, waits briefly for writers to join a group that is
    /// smaller than the previous one.
    ///
    /// Without this, groups alternate between large and small: the writers released by
    /// one fsync come back a few microseconds after the next leader has already taken
    /// the queue, and wait a whole fsync more. Waiting up to half an fsync for them
    /// (never more than `MAX_GATHER_WAIT`) lets one fsync serve them all. A shrinking
    /// load corrects itself: a group that times out sets the next, smaller target.
    fn gather(&self, queue: &mut parking_lot::MutexGuard<'_, WriteQueue>) {
        if self.opts.sync != SyncPolicy::Always || queue.pending.len() >= queue.last_group {
            return;
        }
        let deadline = std::time::Instant::now() + (queue.last_sync / 2).min(MAX_GATHER_WAIT);
        while queue.pending.len() < queue.last_group {
            if self.gather_cv.wait_until(queue, deadline).timed_out() {
                return;
            }
        }
    }

    /// Writes one group to the WAL and the memtable. Returns each batch's last sequence
    /// number.
    fn commit_group(&self, group: &[Arc<PendingWrite>]) -> Result<Vec<SeqNo>> {
        let mut leader = self.leader.lock();
        self.check_open()?;
        self.make_room(&mut leader)?;

        let leader = &mut *leader;
        leader.buf.clear();
        let mut seq = leader.last_seq;
        let mut seqs = Vec::with_capacity(group.len());
        for p in group {
            wal::encode_batch_record(&mut leader.buf, seq + 1, &p.batch);
            seq += p.batch.len() as u64;
            seqs.push(seq);
        }
        let synced = leader
            .wal
            .append(&leader.buf)
            .and_then(|()| match self.opts.sync {
                SyncPolicy::Always => {
                    let started = std::time::Instant::now();
                    leader.wal.sync()?;
                    self.queue.lock().last_sync = started.elapsed();
                    Ok(true)
                }
                _ => Ok(false),
            });
        let synced = match synced {
            Ok(s) => s,
            Err(e) => {
                // The WAL may hold part of the group: acknowledging anything now could
                // lie, and so could accepting later writes after a hole.
                *self.poisoned.lock() = Some(e.to_string());
                tracing::error!(error = %e, "WAL write failed; the database is now read-only");
                return Err(e);
            }
        };

        let mem = Arc::clone(&self.version.read().active);
        let mut s = leader.last_seq;
        for p in group {
            for op in p.batch.ops() {
                s += 1;
                match op {
                    BatchOp::Put { key, value } => mem.insert(key, s, ValueKind::Put, value),
                    BatchOp::Delete { key } => mem.insert(key, s, ValueKind::Delete, b""),
                }
            }
        }
        leader.last_seq = seq;
        self.visible_seq.store(seq, Ordering::Release);

        let c = &self.write_counters;
        c.writes.fetch_add(group.len() as u64, Ordering::Relaxed);
        c.wal_appends.fetch_add(1, Ordering::Relaxed);
        c.wal_active_bytes
            .store(leader.wal.size(), Ordering::Relaxed);
        if synced {
            c.wal_syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(seqs)
    }

    /// Rotates the active memtable when it is full, first waiting (a write stall) while
    /// too many frozen memtables are queued for flushing.
    fn make_room(&self, leader: &mut LeaderState) -> Result<()> {
        self.throttle_for_l0()?;
        if self.version.read().active.approximate_size() < self.opts.memtable_max_size {
            return Ok(());
        }
        let mut stalled = false;
        loop {
            if self.version.read().immutables.len() < self.opts.max_immutable_memtables {
                break;
            }
            if !stalled {
                stalled = true;
                self.write_counters
                    .write_stalls
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!("write stall: waiting for a memtable flush");
            }
            self.wait_for_background_work()?;
        }
        self.rotate(leader)
    }

    /// A stalled writer's wait: until a flush or compaction finishes (at most 100 ms, then
    /// the caller checks its condition again). Fails if background work is failing or
    /// the database is closing, rather than wait forever.
    fn wait_for_background_work(&self) -> Result<()> {
        if let Some(e) = self.background_error.lock().clone() {
            return Err(Error::Background(e));
        }
        let mut signal = self.flush_signal.lock();
        if signal.shutdown {
            return Err(Error::Closed);
        }
        self.flush_done
            .wait_for(&mut signal, Duration::from_millis(100));
        Ok(())
    }

    /// Backpressure from L0: past `l0_slowdown` tables each write group waits 1 ms; at
    /// `l0_stop` writes wait until compaction brings L0 back under it.
    fn throttle_for_l0(&self) -> Result<()> {
        let c = &self.opts.compaction;
        let l0 = || self.version.read().levels.first().map_or(0, Vec::len);
        if l0() >= c.l0_stop {
            self.write_counters
                .write_stalls
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(l0_tables = l0(), "write stall: waiting for L0 compaction");
            while l0() >= c.l0_stop {
                self.wait_for_background_work()?;
            }
        } else if l0() >= c.l0_slowdown {
            self.compaction_counters
                .slowdowns
                .fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Freezes the active memtable and starts a new one with a new WAL segment.
    pub(super) fn rotate(&self, leader: &mut LeaderState) -> Result<()> {
        // Sealed before the next segment exists, so only the newest segment can end in a
        // preallocated (zero) tail after a crash.
        leader.wal.seal()?;
        let id = self.next_file_id.fetch_add(1, Ordering::SeqCst);
        let wal = new_segment(&self.wal_dir, id, &self.opts)?;
        let handle = wal.sync_handle()?;
        let c = &self.write_counters;
        c.wal_active_id.store(id, Ordering::Relaxed);
        c.wal_active_bytes.store(wal.size(), Ordering::Relaxed);
        leader.wal = wal;
        *self.wal_sync_handle.lock() = Some(Arc::new(handle));
        {
            let mut version = self.version.write();
            let old: &Version = &version;
            let mut immutables = old.immutables.clone();
            immutables.push(Arc::clone(&old.active));
            *version = Arc::new(Version {
                active: Arc::new(self.new_memtable(id)),
                immutables,
                levels: old.levels.clone(),
            });
        }
        let _signal = self.flush_signal.lock();
        self.flush_wakeup.notify_all();
        Ok(())
    }

    /// Rotates a non-empty active memtable and waits until no frozen memtable is left.
    pub(super) fn flush_and_wait(&self) -> Result<()> {
        self.check_open()?;
        {
            let mut leader = self.leader.lock();
            if !self.version.read().active.is_empty() {
                self.rotate(&mut leader)?;
            }
        }
        let mut signal = self.flush_signal.lock();
        loop {
            if self.version.read().immutables.is_empty() {
                return Ok(());
            }
            if signal.shutdown {
                return Err(Error::Closed);
            }
            if let Some(e) = self.background_error.lock().clone() {
                return Err(Error::Background(e));
            }
            self.flush_done
                .wait_for(&mut signal, Duration::from_millis(100));
        }
    }

    /// Body of the periodic WAL sync thread.
    pub(super) fn periodic_sync(self: &Arc<Self>, every: Duration) {
        loop {
            {
                let mut signal = self.flush_signal.lock();
                if signal.shutdown {
                    return;
                }
                self.flush_wakeup.wait_for(&mut signal, every);
                if signal.shutdown {
                    return;
                }
            }
            let handle: Option<Arc<File>> = self.wal_sync_handle.lock().clone();
            if let Some(f) = handle {
                if let Err(e) = f.sync_data() {
                    tracing::warn!(error = %e, "periodic WAL sync failed");
                } else {
                    self.write_counters
                        .wal_syncs
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
