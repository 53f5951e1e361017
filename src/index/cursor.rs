//! Query cursors: the opaque `next_cursor` text, and the table of open cursors that
//! keeps each query's snapshot (and the index generations its plan used) on the server
//! until the cursor's time-to-live runs out.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;

use super::error::{IndexError, Result};
use super::registry::Gen;
use crate::engine::Snapshot;

/// An open cursor: the snapshot and generations its query reads.
pub(super) struct OpenCursor {
    pub(super) snap: Arc<Snapshot>,
    pub(super) gens: HashMap<String, Arc<Gen>>,
    pub(super) fingerprint: u64,
    pub(super) used: Instant,
}

/// The open cursors of an instance.
#[derive(Default)]
pub struct Cursors {
    open: Mutex<Table>,
}

/// Open cursors by id, and their ids in the order they were kept (which is the order
/// of their `used` times, since [`Cursors::put`] stamps them): the oldest are at the
/// front, so expiring and evicting cost no scan of the table. An id taken out stays
/// in `order` until it reaches the front or the queue is compacted; an entry counts
/// only while the table holds that id with that `used` time.
#[derive(Default)]
struct Table {
    by_id: HashMap<u64, OpenCursor>,
    order: VecDeque<(u64, Instant)>,
}

impl Table {
    /// Whether the `order` entry `(id, used)` still stands for an open cursor.
    fn is_current(&self, id: u64, used: Instant) -> bool {
        self.by_id.get(&id).is_some_and(|c| c.used == used)
    }

    /// Removes the oldest cursor still open, if any.
    fn pop_oldest(&mut self) -> bool {
        while let Some((id, used)) = self.order.pop_front() {
            if self.is_current(id, used) {
                self.by_id.remove(&id);
                return true;
            }
        }
        false
    }

    /// Removes every cursor idle for longer than `ttl` at `now`.
    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some(&(id, used)) = self.order.front() {
            if now.saturating_duration_since(used) <= ttl {
                break;
            }
            self.order.pop_front();
            if self.is_current(id, used) {
                self.by_id.remove(&id);
            }
        }
    }
}

impl Cursors {
    /// Open cursors right now.
    pub fn len(&self) -> usize {
        self.open.lock().by_id.len()
    }

    /// Whether no cursor is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes cursor `id` out of the table, first dropping every cursor idle for longer
    /// than `ttl`.
    pub(super) fn take(&self, id: u64, ttl: Duration) -> Option<OpenCursor> {
        let mut open = self.open.lock();
        open.expire(Instant::now(), ttl);
        open.by_id.remove(&id)
    }

    /// Keeps `cursor` as `id`, used now, dropping the least recently used ones beyond
    /// `max`.
    pub(super) fn put(&self, id: u64, mut cursor: OpenCursor, max: usize) {
        let mut open = self.open.lock();
        while open.by_id.len() >= max.max(1) && open.pop_oldest() {}
        // Never before the last entry, so `order` stays sorted by time.
        let now = Instant::now();
        cursor.used = open.order.back().map_or(now, |&(_, last)| now.max(last));
        open.order.push_back((id, cursor.used));
        // A cursor kept again under its id (its next page) replaces its older entry.
        open.by_id.insert(id, cursor);
        // Ids taken out leave entries behind; keep the queue within twice the table.
        if open.order.len() > 2 * open.by_id.len() + 64 {
            let order = std::mem::take(&mut open.order);
            open.order = order
                .into_iter()
                .filter(|&(id, used)| open.is_current(id, used))
                .collect();
        }
    }
}

pub(super) fn random_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

pub(super) fn encode_cursor(id: u64, after: u64, fingerprint: u64) -> String {
    let mut raw = Vec::with_capacity(25);
    raw.push(1u8);
    raw.extend_from_slice(&id.to_be_bytes());
    raw.extend_from_slice(&after.to_be_bytes());
    raw.extend_from_slice(&fingerprint.to_be_bytes());
    format!(
        "q1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

pub(super) fn decode_cursor(text: &str) -> Result<(u64, u64, u64)> {
    let bad = || IndexError::BadCursor("not a cursor from this server".into());
    let body = text.strip_prefix("q1.").ok_or_else(bad)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad())?;
    if raw.len() != 25 || raw[0] != 1 {
        return Err(bad());
    }
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[1 + i * 8..9 + i * 8]);
        u64::from_be_bytes(b)
    };
    Ok((word(0), word(1), word(2)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cursor(db: &crate::engine::Db) -> OpenCursor {
        OpenCursor {
            snap: Arc::new(db.snapshot()),
            gens: HashMap::new(),
            fingerprint: 0,
            used: Instant::now(),
        }
    }

    #[test]
    fn the_least_recently_kept_cursors_are_dropped_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::engine::Db::open(dir.path(), crate::engine::Options::default()).unwrap();
        let cursors = Cursors::default();
        let ttl = Duration::from_secs(3600);
        for id in 0..3 {
            cursors.put(id, cursor(&db), 3);
        }
        // Cursor 0 serves its next page: kept again, it is now the most recent.
        let c = cursors.take(0, ttl).unwrap();
        cursors.put(0, c, 3);
        cursors.put(3, cursor(&db), 3);
        assert_eq!(cursors.len(), 3);
        assert!(cursors.take(1, ttl).is_none(), "the oldest goes first");
        for id in [0, 2, 3] {
            assert!(cursors.take(id, ttl).is_some(), "{id}");
        }
        assert!(cursors.is_empty());
        // Many pages of one query leave the bookkeeping bounded.
        cursors.put(9, cursor(&db), 3);
        for _ in 0..1000 {
            let c = cursors.take(9, ttl).unwrap();
            cursors.put(9, c, 3);
        }
        assert_eq!(cursors.len(), 1);
        assert!(cursors.open.lock().order.len() <= 2 + 64 + 1);
    }

    #[test]
    fn idle_cursors_expire() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::engine::Db::open(dir.path(), crate::engine::Options::default()).unwrap();
        let cursors = Cursors::default();
        cursors.put(1, cursor(&db), 10);
        cursors.put(2, cursor(&db), 10);
        std::thread::sleep(Duration::from_millis(30));
        cursors.put(3, cursor(&db), 10);
        assert!(cursors.take(2, Duration::from_millis(20)).is_none());
        assert_eq!(cursors.len(), 1, "cursor 1 expired too");
        assert!(cursors.take(3, Duration::from_millis(20)).is_some());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = encode_cursor(7, 1234, 99);
        assert_eq!(decode_cursor(&c).unwrap(), (7, 1234, 99));
        for bad in ["", "q1.", "q1.!!!", "k1.AAAA", &c[..c.len() - 2]] {
            assert!(
                matches!(decode_cursor(bad), Err(IndexError::BadCursor(_))),
                "{bad}"
            );
        }
    }
}
