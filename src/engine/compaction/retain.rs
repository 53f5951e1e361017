//! Which versions of one key a compaction keeps.
//!
//! Versions arrive newest first. A live snapshot at sequence `s` needs the newest version
//! with sequence `<= s`; readers of the latest state need the newest version of all.
//! Snapshots cut the versions into *stripes* (the versions between two consecutive
//! snapshots); only the newest version of each stripe can ever be read, so it is kept
//! and the rest are dropped.
//!
//! A tombstone that ends up the oldest version kept can also go, but only at the bottom:
//! when no table outside the compaction could hold an older version of the key that the
//! tombstone is hiding.

use crate::engine::types::{SeqNo, ValueKind};

/// The stripe of `seq`: the index of the oldest snapshot that sees it, or
/// `snapshots.len()` when no snapshot does (only the latest state sees it).
fn stripe(seq: SeqNo, snapshots: &[SeqNo]) -> usize {
    snapshots.partition_point(|&s| s < seq)
}

/// Fills `keep` (cleared first, reused by the caller) with the indices into `versions`
/// (newest first) of the versions to keep.
///
/// `snapshots` is sorted ascending. `bottommost` says that no older version of the key
/// exists outside `versions`.
pub fn retained_into(
    versions: &[(SeqNo, ValueKind)],
    snapshots: &[SeqNo],
    bottommost: bool,
    keep: &mut Vec<usize>,
) {
    keep.clear();
    let mut last_stripe = None;
    for (i, &(seq, _)) in versions.iter().enumerate() {
        let s = stripe(seq, snapshots);
        if last_stripe != Some(s) {
            keep.push(i);
            last_stripe = Some(s);
        }
    }
    if bottommost {
        while keep
            .last()
            .is_some_and(|&i| versions[i].1 == ValueKind::Delete)
        {
            keep.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retained(
        versions: &[(SeqNo, ValueKind)],
        snapshots: &[SeqNo],
        bottommost: bool,
    ) -> Vec<usize> {
        let mut keep = Vec::new();
        retained_into(versions, snapshots, bottommost, &mut keep);
        keep
    }
    use ValueKind::{Delete as D, Put as P};

    #[test]
    fn without_snapshots_only_the_newest_version_stays() {
        assert_eq!(retained(&[(9, P), (5, P), (1, D)], &[], false), vec![0]);
        assert_eq!(retained(&[(9, D), (5, P)], &[], false), vec![0]);
        assert_eq!(retained(&[(9, D), (5, P)], &[], true), Vec::<usize>::new());
    }

    #[test]
    fn each_snapshot_keeps_the_version_it_sees() {
        // Snapshots at 3 and 7: stripes (..=3], (3..=7], (7..).
        let v = [(9, P), (8, P), (6, D), (5, P), (2, P), (1, P)];
        assert_eq!(retained(&v, &[3, 7], false), vec![0, 2, 4]);
        // At the bottom, the oldest kept version is a put: nothing more to drop.
        assert_eq!(retained(&v, &[3, 7], true), vec![0, 2, 4]);
        // A snapshot at exactly a version's sequence sees that version.
        assert_eq!(retained(&[(5, P), (4, P)], &[5], false), vec![0]);
        assert_eq!(retained(&[(6, P), (5, P)], &[5], false), vec![0, 1]);
    }

    #[test]
    fn a_tombstone_above_a_needed_put_stays_even_at_the_bottom() {
        // Snapshot 4 needs put 3; the latest state needs the tombstone 8.
        let v = [(8, D), (3, P)];
        assert_eq!(retained(&v, &[4], true), vec![0, 1]);
        // Oldest kept is a tombstone: dropped at the bottom, kept elsewhere.
        let v = [(8, P), (3, D), (2, P)];
        assert_eq!(retained(&v, &[4], true), vec![0]);
        assert_eq!(retained(&v, &[4], false), vec![0, 1]);
    }
}
