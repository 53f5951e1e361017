//! The write path: group commit, memtable rotation and write stalls.
//!
//! A write is two steps. [`Db::submit`] queues the batch, which fixes its place in the
//! commit order; [`PendingCommit::wait`] waits for its outcome. A caller can so order its
//! writes under a lock of its own and wait for them outside it.
//!
//! Waiting is what drives commits: the first waiter that finds no leader becomes the
//! leader, takes every batch queued so far as one group, assigns them consecutive
//! sequence numbers, appends the group to the WAL with one `write` (and, under
//! `SyncPolicy::Always`, one fsync), inserts it into the active memtable and only then
//! publishes the group's last sequence number to readers. Batches queued meanwhile form
//! the next group, so under concurrency one fsync serves many writes.
//!
//! Every queued batch therefore needs someone to wait for it. Its [`PendingCommit`] is
//! that someone: dropping one without calling `wait` waits all the same (and may lead),
//! so a queued batch is never left behind. [`Db::barrier`] and closing the database also
//! lead until the queue they found is committed, which covers a leaked `PendingCommit`.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use super::super::error::{Error, Result};
use super::super::options::{Options, SyncPolicy};
use super::super::types::{BatchOp, SeqNo, ValueKind, WriteBatch};
use super::super::wal::{self, WalWriter};
use super::{Db, Inner, Version};

/// A batch waiting in the queue, and the slot for its outcome.
pub(super) struct PendingWrite {
    batch: WriteBatch,
    /// The sequence number of its first operation, fixed when it was queued.
    first_seq: SeqNo,
    result: Mutex<Option<Result<SeqNo>>>,
}

/// Batches waiting to be committed.
#[derive(Default)]
pub(super) struct WriteQueue {
    pending: VecDeque<Arc<PendingWrite>>,
    leader_active: bool,
    /// Batches ever queued.
    submitted: u64,
    /// The last sequence number handed to a queued batch (batches are committed in the
    /// order they were queued, so this is also the order of their sequence numbers).
    last_queued_seq: SeqNo,
    /// Batches ever given their outcome. Groups are taken from the front of the queue
    /// and committed one at a time, so these are exactly the first `finished` queued.
    finished: u64,
    /// Batches in the last group committed.
    last_group: usize,
    /// Duration of the last WAL fsync.
    last_sync: Duration,
}

impl WriteQueue {
    /// An empty queue whose first batch gets sequence number `last_seq + 1`.
    pub(super) fn after(last_seq: SeqNo) -> Self {
        WriteQueue {
            last_queued_seq: last_seq,
            ..WriteQueue::default()
        }
    }
}

/// The longest a leader waits for writers to join its group (see `gather`).
const MAX_GATHER_WAIT: Duration = Duration::from_millis(1);

/// Creates WAL segment `id`. When the WAL is fsynced (`Always`, `Periodic`), room for
/// one memtable's worth of records is reserved up front, so those fsyncs do not also
/// have to commit a growing file size; under `Always`, zeros are kept written ahead of
/// the records so they do not have to commit block allocations either.
pub(super) fn new_segment(wal_dir: &std::path::Path, id: u64, opts: &Options) -> Result<WalWriter> {
    let mut wal = WalWriter::create(wal_dir, id)?;
    if opts.sync != SyncPolicy::Never {
        let zero_ahead = opts.sync == SyncPolicy::Always;
        wal.preallocate((opts.memtable_max_size as u64).min(64 << 20), zero_ahead)?;
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
    /// Queues `batch` (already validated and non-empty) behind every batch queued before
    /// it. Its sequence numbers are assigned in this order when a leader commits it.
    pub(super) fn submit(&self, batch: WriteBatch) -> Result<Arc<PendingWrite>> {
        self.check_open()?;
        let mut queue = self.queue.lock();
        Ok(self.enqueue(&mut queue, batch))
    }

    /// [`Db::submit_with`]: `None` when `build` returned an empty batch.
    pub(super) fn submit_with<E: From<Error>>(
        &self,
        build: impl FnOnce(SeqNo) -> std::result::Result<WriteBatch, E>,
    ) -> std::result::Result<Option<Arc<PendingWrite>>, E> {
        self.check_open()?;
        let mut queue = self.queue.lock();
        let batch = build(queue.last_queued_seq + 1)?;
        batch.validate()?;
        if batch.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.enqueue(&mut queue, batch)))
    }

    /// Queues a validated, non-empty batch, giving it the next sequence numbers.
    fn enqueue(&self, queue: &mut WriteQueue, batch: WriteBatch) -> Arc<PendingWrite> {
        let first_seq = queue.last_queued_seq + 1;
        queue.last_queued_seq += batch.len() as u64;
        let write = Arc::new(PendingWrite {
            batch,
            first_seq,
            result: Mutex::new(None),
        });
        queue.submitted += 1;
        queue.pending.push_back(Arc::clone(&write));
        if queue.leader_active {
            self.gather_cv.notify_one();
        }
        write
    }

    /// Waits for the outcome of a queued batch, leading group commits whenever no other
    /// writer does, and returns its last sequence number.
    pub(super) fn wait_for(&self, write: &Arc<PendingWrite>) -> Result<SeqNo> {
        let mut queue = self.queue.lock();
        loop {
            if let Some(result) = write.result.lock().take() {
                return result;
            }
            if queue.leader_active {
                self.queue_cv.wait(&mut queue);
            } else {
                self.lead(&mut queue, Some(write));
            }
        }
    }

    /// Returns once every batch queued before the call has its outcome, leading group
    /// commits whenever no other writer does.
    pub(super) fn drain_queue(&self) {
        let mut queue = self.queue.lock();
        let target = queue.submitted;
        while queue.finished < target {
            if queue.leader_active {
                self.queue_cv.wait(&mut queue);
            } else {
                self.lead(&mut queue, None);
            }
        }
    }

    /// Commits every queued batch as one group. Called with the queue locked and no
    /// leader active; returns with the queue locked again, every batch of the group given
    /// its outcome and the waiters woken.
    ///
    /// `own` is the caller's batch, if it has one: on failure it gets the error itself,
    /// the rest of the group a copy (see [`group_error`]).
    fn lead(&self, queue: &mut MutexGuard<'_, WriteQueue>, own: Option<&Arc<PendingWrite>>) {
        // No leader means every unfinished batch is in the queue, so the caller's batch
        // (or the batches a drain waits for) are in this group.
        debug_assert!(!queue.pending.is_empty(), "a leader with nothing to commit");
        queue.leader_active = true;
        self.gather(queue);
        let group: Vec<Arc<PendingWrite>> = queue.pending.drain(..).collect();
        queue.last_group = group.len();

        let outcome = MutexGuard::unlocked(queue, || self.commit_group(&group));

        match outcome {
            Ok(seqs) => {
                for (p, seq) in group.iter().zip(seqs) {
                    *p.result.lock() = Some(Ok(seq));
                }
            }
            Err(e) => {
                for p in &group {
                    *p.result.lock() = Some(Err(group_error(&e)));
                }
                if let Some(own) = own {
                    *own.result.lock() = Some(Err(e));
                }
            }
        }
        queue.finished += group.len() as u64;
        queue.leader_active = false;
        self.queue_cv.notify_all();
    }

    /// Under `SyncPolicy::Always`, waits briefly for writers to join a group that is
    /// smaller than the previous one.
    ///
    /// Without this, groups alternate between large and small: the writers released by
    /// one fsync come back a few microseconds after the next leader has already taken
    /// the queue, and wait a whole fsync more. Waiting up to half an fsync for them
    /// (never more than `MAX_GATHER_WAIT`) lets one fsync serve them all. A shrinking
    /// load corrects itself: a group that times out sets the next, smaller target.
    fn gather(&self, queue: &mut MutexGuard<'_, WriteQueue>) {
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
            // A group that failed before reaching the WAL (a write stall that gave up, a
            // background error) leaves its numbers unused: numbers only have to grow.
            if p.first_seq <= seq {
                // Groups are committed in queue order, each batch with the numbers it
                // was given when queued; anything else is a bug, and committing on
                // would break every reader relying on those numbers.
                let e = Error::Poisoned(format!(
                    "write queued with sequence number {} committed after {seq}",
                    p.first_seq
                ));
                *self.poisoned.lock() = Some(e.to_string());
                return Err(e);
            }
            wal::encode_batch_record(&mut leader.buf, p.first_seq, &p.batch);
            seq = p.first_seq + p.batch.len() as u64 - 1;
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
        let inserted = group.iter().try_for_each(|p| {
            p.batch
                .ops()
                .iter()
                .zip(p.first_seq..)
                .try_for_each(|(op, s)| match op {
                    BatchOp::Put { key, value } => mem.insert(key, s, ValueKind::Put, value),
                    BatchOp::Delete { key } => mem.insert(key, s, ValueKind::Delete, b""),
                })
        });
        if let Err(e) = inserted {
            // The WAL holds the group but the memtable does not: nothing more can be
            // acknowledged consistently.
            *self.poisoned.lock() = Some(e.to_string());
            tracing::error!(error = %e, "memtable insert failed; the database is now read-only");
            return Err(e);
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
        self.wait_frozen_flushed()
    }

    /// Waits until no frozen memtable is left (each is in a table).
    pub(super) fn wait_frozen_flushed(&self) -> Result<()> {
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

/// The error a batch gets when its group failed and it was not the leader's own.
///
/// `Error` is not `Clone`. The kinds that tell a caller what the database does next
/// (closed, read-only, waiting on a failing flush) are kept; anything else (a failed WAL
/// write, after which the database is read-only) becomes [`Error::Poisoned`].
fn group_error(e: &Error) -> Error {
    match e {
        Error::Closed => Error::Closed,
        Error::Poisoned(reason) => Error::Poisoned(reason.clone()),
        Error::Background(reason) => Error::Background(reason.clone()),
        other => Error::Poisoned(other.to_string()),
    }
}

/// A batch queued by [`Db::submit`], whose outcome [`wait`](PendingCommit::wait) returns.
///
/// Its place in the commit order was fixed when it was submitted; waiting only learns
/// the outcome. Dropping it without waiting does not lose the write: the drop waits for
/// the commit all the same (leading the group commit if no other writer does) and
/// discards the outcome, logging a failure. That is what keeps queued batches moving:
/// each one has an owner that waits for it, at the latest when dropped. The handle keeps
/// the database open until then.
#[must_use = "dropping a PendingCommit waits for the commit and discards its outcome"]
pub struct PendingCommit {
    state: Pending,
}

enum Pending {
    /// An empty batch: nothing to commit, the outcome is known.
    Ready(SeqNo),
    /// A batch in the write queue (or already committed, its outcome in its slot).
    Queued { db: Db, write: Arc<PendingWrite> },
    /// `wait` took the outcome.
    Taken,
}

impl PendingCommit {
    pub(super) fn ready(seq: SeqNo) -> Self {
        PendingCommit {
            state: Pending::Ready(seq),
        }
    }

    pub(super) fn queued(db: Db, write: Arc<PendingWrite>) -> Self {
        PendingCommit {
            state: Pending::Queued { db, write },
        }
    }

    /// Waits until the batch is committed and returns what
    /// [`write_batch`](Db::write_batch) would have: the sequence number of its last
    /// operation, or why it could not be committed. The caller may become the leader of
    /// a group commit meanwhile, committing other writers' batches with its own.
    pub fn wait(mut self) -> Result<SeqNo> {
        match std::mem::replace(&mut self.state, Pending::Taken) {
            Pending::Ready(seq) => Ok(seq),
            Pending::Queued { db, write } => db.inner.wait_for(&write),
            Pending::Taken => Err(Error::Poisoned("write outcome lost".into())),
        }
    }
}

impl Drop for PendingCommit {
    fn drop(&mut self) {
        if let Pending::Queued { db, write } = std::mem::replace(&mut self.state, Pending::Taken) {
            if let Err(e) = db.inner.wait_for(&write) {
                tracing::warn!(error = %e, "a write nobody waited for failed");
            }
        }
    }
}

impl std::fmt::Debug for PendingCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            Pending::Ready(_) => "ready",
            Pending::Queued { .. } => "queued",
            Pending::Taken => "taken",
        };
        f.debug_struct("PendingCommit")
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests;
