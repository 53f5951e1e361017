//! Choosing the next compaction: pure functions of the tables' metadata, so every rule
//! can be tested without files.
//!
//! **Leveled** (the default): L0 holds flushed tables, which overlap; every deeper level
//! is one sorted run of non-overlapping tables, each level `level_size_ratio` times
//! larger than the one above. When L0 reaches `l0_trigger` tables, all of them merge
//! with the L1 tables they overlap. Otherwise the level most over its target size sends
//! one table (chosen round-robin through the key space) down into the next level.
//!
//! **Size-tiered**: every table stays in L0 as a sorted run, ordered by age. When
//! `l0_trigger` consecutive runs (in age order) have similar sizes, they merge into one.
//! Runs must be adjacent in age: a point read stops at the newest run holding a key, so
//! a merged run must not jump over a run of intermediate age.

use super::CompactionOptions;
use crate::engine::types::SeqNo;

/// What the picker needs to know of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// File id.
    pub id: u64,
    /// Size on disk.
    pub size: u64,
    /// Smallest user key.
    pub smallest: Vec<u8>,
    /// Largest user key.
    pub largest: Vec<u8>,
    /// Smallest sequence number.
    pub min_seq: SeqNo,
    /// Largest sequence number.
    pub max_seq: SeqNo,
}

impl TableInfo {
    fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        self.smallest.as_slice() <= largest && self.largest.as_slice() >= smallest
    }
}

/// A compaction to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Input table ids, with their levels.
    pub inputs: Vec<(usize, u64)>,
    /// Level the output tables go to.
    pub output_level: usize,
    /// True when no table outside the inputs could hold an older version of a key in
    /// the inputs' range: tombstones with nothing under them can be dropped.
    pub bottommost: bool,
    /// Split the output into tables of about this size (`u64::MAX`: one table).
    pub target_table_size: u64,
    /// Why it was picked (for the log).
    pub reason: String,
}

/// Target sizes of the levels, sized from the bottom up (the last level holds about all
/// live data; each level above it `level_size_ratio` times less), and the *base level*:
/// the level L0 compacts into, the shallowest whose target is at least
/// `base_level_size`. Levels above the base stay empty, so however small the database,
/// the levels under the base hold about `1 / (ratio - 1)` of the bottom's size, which
/// bounds space amplification near `1 + 1 / (ratio - 1)`.
pub fn level_targets(levels: &[Vec<TableInfo>], opts: &CompactionOptions) -> (usize, Vec<u64>) {
    let last = levels.len().saturating_sub(1).max(1);
    let bottom: u64 = levels
        .get(last)
        .map_or(0, |l| l.iter().map(|t| t.size).sum());
    let mut targets = vec![0u64; last + 1];
    targets[last] = bottom.max(opts.base_level_size);
    let mut base = last;
    for level in (1..last).rev() {
        targets[level] = targets[level + 1] / opts.level_size_ratio.max(2);
        if targets[level] >= opts.base_level_size {
            base = level;
        }
    }
    (base, targets)
}

/// The next leveled compaction, if any level needs one. `pointers[l]` is where the last
/// compaction out of level `l` ended; it is advanced.
pub fn pick_leveled(
    levels: &[Vec<TableInfo>],
    opts: &CompactionOptions,
    pointers: &mut Vec<Vec<u8>>,
) -> Option<Task> {
    let last = levels.len().checked_sub(1)?;
    if last == 0 {
        return None;
    }
    let (base, targets) = level_targets(levels, opts);
    // Every level is scored and the highest score goes first: L0 by its table count
    // over the trigger, deeper levels by size over target. A level above the base
    // should be empty (the base moves deeper when data shrinks): any table there is
    // sent down first. Scoring L0 like the others keeps a backlog in a deeper level
    // from starving while flushes keep L0 at its trigger; L0 then grows towards
    // `l0_slowdown`, and the slowdown holds writers back until compaction catches up.
    let l0_score = levels[0].len() as f64 / opts.l0_trigger.max(1) as f64;
    let deeper = (1..last)
        .filter(|&l| !levels[l].is_empty())
        .map(|l| {
            let size: u64 = levels[l].iter().map(|t| t.size).sum();
            let score = if l < base {
                f64::INFINITY
            } else {
                size as f64 / targets[l].max(1) as f64
            };
            (l, score)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let (level, score) = match deeper {
        Some((l, s)) if s >= 1.0 && s > l0_score => (l, s),
        _ if l0_score >= 1.0 => {
            let inputs: Vec<&TableInfo> = levels[0].iter().collect();
            let reason = format!(
                "L0 has {} tables (trigger {}); base level L{base}",
                levels[0].len(),
                opts.l0_trigger
            );
            return Some(with_overlaps(levels, 0, &inputs, base, opts, reason));
        }
        _ => return None,
    };
    if pointers.len() <= level {
        pointers.resize(level + 1, Vec::new());
    }
    let pointer = &pointers[level];
    let table = levels[level]
        .iter()
        .find(|t| t.smallest.as_slice() > pointer.as_slice())
        .or_else(|| levels[level].first())?;
    pointers[level] = table.largest.clone();
    let reason = format!("L{level} is at {score:.2}x its target size");
    Some(with_overlaps(
        levels,
        level,
        &[table],
        level + 1,
        opts,
        reason,
    ))
}

/// A task merging `inputs` (from `level`) with the tables of `output_level` they overlap.
fn with_overlaps(
    levels: &[Vec<TableInfo>],
    level: usize,
    inputs: &[&TableInfo],
    output_level: usize,
    opts: &CompactionOptions,
    reason: String,
) -> Task {
    let smallest = inputs
        .iter()
        .map(|t| t.smallest.as_slice())
        .min()
        .unwrap_or_default();
    let largest = inputs
        .iter()
        .map(|t| t.largest.as_slice())
        .max()
        .unwrap_or_default();
    let mut all: Vec<(usize, &TableInfo)> = inputs.iter().map(|t| (level, *t)).collect();
    all.extend(
        levels[output_level]
            .iter()
            .filter(|t| t.overlaps(smallest, largest))
            .map(|t| (output_level, t)),
    );
    // The outputs cover the union of the inputs' ranges (an overlapping table of the
    // output level may stretch it).
    let lo = all
        .iter()
        .map(|(_, t)| t.smallest.as_slice())
        .min()
        .unwrap_or_default();
    let hi = all
        .iter()
        .map(|(_, t)| t.largest.as_slice())
        .max()
        .unwrap_or_default();
    let bottommost = levels[output_level + 1..]
        .iter()
        .flatten()
        .all(|t| !t.overlaps(lo, hi));
    Task {
        inputs: all.iter().map(|(l, t)| (*l, t.id)).collect(),
        output_level,
        bottommost,
        target_table_size: opts.target_table_size,
        reason,
    }
}

/// The next size-tiered compaction. `runs` are the tables, all in L0, in any order.
pub fn pick_size_tiered(runs: &[TableInfo], opts: &CompactionOptions) -> Option<Task> {
    let mut by_age: Vec<&TableInfo> = runs.iter().collect();
    by_age.sort_by_key(|t| std::cmp::Reverse(t.max_seq));
    let n = opts.l0_trigger.max(2);
    let similar = |w: &[&TableInfo]| {
        let min = w.iter().map(|t| t.size).min().unwrap_or(0).max(1);
        let max = w.iter().map(|t| t.size).max().unwrap_or(0);
        max <= min.saturating_mul(opts.size_tiered_ratio)
    };
    let window = by_age
        .windows(n)
        .position(similar)
        .map(|i| (i, "similar-sized runs".to_string()))
        // Too many runs of dissimilar sizes: merge the newest ones anyway, so the
        // number of tables a read may visit stays bounded.
        .or_else(|| {
            (by_age.len() >= 2 * n).then(|| (0, format!("{} runs exceed the bound", by_age.len())))
        });
    let (start, reason) = window?;
    let chosen = &by_age[start..start + n];
    let bottommost = start + n == by_age.len();
    Some(Task {
        inputs: chosen.iter().map(|t| (0, t.id)).collect(),
        output_level: 0,
        bottommost,
        target_table_size: u64::MAX,
        reason,
    })
}

/// Every table into one sorted run at the bottom level (manual `compact`).
pub fn pick_everything(levels: &[Vec<TableInfo>], opts: &CompactionOptions) -> Option<Task> {
    let inputs: Vec<(usize, u64)> = levels
        .iter()
        .enumerate()
        .flat_map(|(l, tables)| tables.iter().map(move |t| (l, t.id)))
        .collect();
    if inputs.is_empty() {
        return None;
    }
    let leveled = opts.strategy == super::CompactionStrategy::Leveled;
    Some(Task {
        inputs,
        output_level: if leveled {
            levels.len().saturating_sub(1)
        } else {
            0
        },
        bottommost: true,
        target_table_size: if leveled {
            opts.target_table_size
        } else {
            u64::MAX
        },
        reason: "manual compaction of everything".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64, size: u64, lo: &str, hi: &str, seq: SeqNo) -> TableInfo {
        TableInfo {
            id,
            size,
            smallest: lo.as_bytes().to_vec(),
            largest: hi.as_bytes().to_vec(),
            min_seq: seq,
            max_seq: seq,
        }
    }

    fn opts() -> CompactionOptions {
        CompactionOptions {
            l0_trigger: 3,
            base_level_size: 100,
            level_size_ratio: 10,
            target_table_size: 50,
            ..CompactionOptions::default()
        }
    }

    #[test]
    fn l0_at_trigger_merges_into_the_base_level() {
        // Small database: the base level is the bottom one.
        let levels = vec![
            vec![
                t(10, 5, "b", "d", 30),
                t(11, 5, "c", "f", 31),
                t(12, 5, "a", "c", 32),
            ],
            vec![],
            vec![
                t(1, 40, "a", "b", 1),
                t(2, 40, "e", "g", 2),
                t(3, 40, "x", "z", 3),
            ],
        ];
        let task = pick_leveled(&levels, &opts(), &mut Vec::new()).expect("task");
        let mut ids: Vec<u64> = task.inputs.iter().map(|x| x.1).collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2, 10, 11, 12]);
        assert_eq!(task.output_level, 2);
        assert!(task.bottommost);
        // Below the trigger and within targets: nothing to do.
        let levels = vec![levels[0][..2].to_vec(), vec![], levels[2].clone()];
        assert_eq!(pick_leveled(&levels, &opts(), &mut Vec::new()), None);
    }

    #[test]
    fn level_targets_are_sized_from_the_bottom() {
        let big = |id| t(id, 1000, "a", "z", 1);
        // Bottom holds 1000: L2 target 100 (= base), L1 10 (under base: not used).
        let levels = vec![vec![], vec![], vec![], vec![big(1)]];
        let (base, targets) = level_targets(&levels, &opts());
        assert_eq!(targets, vec![0, 10, 100, 1000]);
        assert_eq!(base, 2);
        // An empty database compacts L0 straight into the bottom level.
        let (base, _) = level_targets(&[vec![], vec![], vec![], vec![]], &opts());
        assert_eq!(base, 3);
    }

    #[test]
    fn an_oversized_level_sends_tables_down_round_robin() {
        // Bottom 10_000 -> L2 target 1000, L1 target 100 (base 1).
        let l1 = vec![
            t(1, 60, "a", "c", 1),
            t(2, 60, "d", "f", 2),
            t(3, 60, "g", "i", 3),
        ];
        let levels = vec![
            vec![],
            l1,
            vec![t(4, 10, "e", "e", 0)],
            vec![t(5, 10_000, "a", "a", 0)],
        ];
        let mut ptr = Vec::new();
        let first = pick_leveled(&levels, &opts(), &mut ptr).expect("task");
        assert_eq!(first.inputs, vec![(1, 1)]);
        assert_eq!(first.output_level, 2);
        assert!(!first.bottommost, "L3 holds key a under the output range");
        let second = pick_leveled(&levels, &opts(), &mut ptr).expect("task");
        assert_eq!(second.inputs, vec![(1, 2), (2, 4)]);
        assert!(second.bottommost);
        let third = pick_leveled(&levels, &opts(), &mut ptr).expect("task");
        assert_eq!(third.inputs, vec![(1, 3)]);
        let wrapped = pick_leveled(&levels, &opts(), &mut ptr).expect("task");
        assert_eq!(wrapped.inputs, vec![(1, 1)]);
    }

    #[test]
    fn the_highest_score_goes_first() {
        // L0 at its trigger scores 1.0; L2 at 3x its target (1000) scores 3.0.
        let l0 = vec![
            t(10, 1, "a", "b", 30),
            t(11, 1, "a", "b", 31),
            t(12, 1, "a", "b", 32),
        ];
        let l2 = vec![t(1, 1500, "a", "f", 1), t(2, 1500, "g", "m", 2)];
        let levels = vec![l0.clone(), vec![], l2, vec![t(5, 10_000, "a", "z", 0)]];
        let task = pick_leveled(&levels, &opts(), &mut Vec::new()).expect("task");
        assert_eq!(task.output_level, 3, "{task:?}");
        // With L0 further past its trigger than L2 is past its target, L0 goes first.
        let mut busy_l0 = l0;
        busy_l0.extend((20..30).map(|i| t(i, 1, "a", "b", i)));
        let levels = vec![busy_l0, vec![], levels[2].clone(), levels[3].clone()];
        let task = pick_leveled(&levels, &opts(), &mut Vec::new()).expect("task");
        assert!(task.inputs.iter().any(|&(l, _)| l == 0), "{task:?}");
    }

    #[test]
    fn tables_above_the_base_level_are_sent_down() {
        // Bottom is small, so the base is L3; a table left in L1 goes down.
        let levels = vec![
            vec![],
            vec![t(1, 5, "a", "b", 1)],
            vec![],
            vec![t(2, 50, "a", "z", 0)],
        ];
        let task = pick_leveled(&levels, &opts(), &mut Vec::new()).expect("task");
        assert_eq!(task.inputs, vec![(1, 1)]);
        assert_eq!(task.output_level, 2);
    }

    #[test]
    fn size_tiered_merges_adjacent_similar_runs() {
        let runs = vec![
            t(1, 1000, "a", "z", 1),
            t(2, 10, "a", "z", 2),
            t(3, 12, "a", "z", 3),
            t(4, 9, "a", "z", 4),
            t(5, 11, "a", "z", 5),
        ];
        let task = pick_size_tiered(&runs, &opts()).expect("task");
        let ids: Vec<u64> = task.inputs.iter().map(|x| x.1).collect();
        assert_eq!(ids, vec![5, 4, 3]);
        assert!(!task.bottommost);
        // Dissimilar sizes below the bound: wait.
        let runs = vec![
            t(1, 1000, "a", "z", 1),
            t(2, 10, "a", "z", 2),
            t(3, 100, "a", "z", 3),
        ];
        assert_eq!(pick_size_tiered(&runs, &opts()), None);
        // Too many dissimilar runs: merge the newest anyway.
        let runs: Vec<TableInfo> = (0..6)
            .map(|i| t(i, 10u64.pow(i as u32), "a", "z", i))
            .collect();
        let task = pick_size_tiered(&runs, &opts()).expect("bounded");
        assert_eq!(
            task.inputs.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![5, 4, 3]
        );
    }
}
