//! Reading posting lists at a snapshot: one term's list, unions and intersections, all
//! as [`Postings`] iterators that can jump forward (`next_geq`) using the skip table.

use std::time::Instant;

use serde::Serialize;

use super::error::{IndexError, Result};
use super::keys;
use super::postings::{Block, Meta};
use crate::engine::Snapshot;

/// What a query read, and its guards.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadStats {
    /// Doc ids decoded from blocks.
    pub postings_scanned: u64,
    /// Blocks read from the engine.
    pub blocks_read: u64,
    /// Blocks the skip tables let the query jump over unread.
    pub blocks_skipped: u64,
    /// Meta records read.
    pub terms_read: u64,
    /// Candidate ids that turned out dead (their record was since updated or deleted).
    pub dead_skipped: u64,
    #[serde(skip)]
    pub(crate) guard: Guard,
}

/// Limits on one query's work.
#[derive(Debug, Clone, Default)]
pub(crate) struct Guard {
    pub(crate) max_postings: u64,
    pub(crate) deadline: Option<(Instant, u64)>,
}

impl ReadStats {
    pub(crate) fn new(max_postings: u64, deadline: Option<(Instant, u64)>) -> ReadStats {
        ReadStats {
            guard: Guard {
                max_postings,
                deadline,
            },
            ..ReadStats::default()
        }
    }

    fn charge(&mut self, postings: u64) -> Result<()> {
        self.blocks_read += 1;
        self.postings_scanned += postings;
        if self.guard.max_postings > 0 && self.postings_scanned > self.guard.max_postings {
            return Err(IndexError::TooManyPostings(self.guard.max_postings));
        }
        self.check_time()
    }

    /// Fails once the deadline has passed.
    pub(crate) fn check_time(&self) -> Result<()> {
        match self.guard.deadline {
            Some((at, ms)) if Instant::now() > at => Err(IndexError::Timeout(ms)),
            _ => Ok(()),
        }
    }
}

/// A sorted stream of postings (doc ids with their records' keys) that can skip ahead.
pub trait Postings {
    /// The smallest id `>= target`, or `None` when there is none.
    fn next_geq(
        &mut self,
        target: u64,
        snap: &Snapshot,
        stats: &mut ReadStats,
    ) -> Result<Option<u64>>;
    /// The key of the posting the last `next_geq` returned.
    fn key(&mut self) -> Option<&[u8]>;
    /// An upper bound of the ids it holds (used to order intersections).
    fn estimate(&self) -> u64;
}

/// One term's list.
pub struct TermList {
    base: String,
    meta: Meta,
    /// Index in `meta.blocks` of the block in `postings`.
    block: Option<usize>,
    postings: Block,
    pos: usize,
}

impl TermList {
    /// The list of the term whose records start with `base` (see [`keys::term_base`]);
    /// an absent term is an empty list.
    pub fn open(base: String, snap: &Snapshot, stats: &mut ReadStats) -> Result<TermList> {
        stats.terms_read += 1;
        let meta = match snap.get(keys::meta_key(&base))? {
            Some(bytes) => Meta::decode(&bytes)?,
            None => Meta::default(),
        };
        Ok(TermList::with_meta(base, meta))
    }

    /// A list whose meta record is already read.
    pub fn with_meta(base: String, meta: Meta) -> TermList {
        TermList {
            base,
            meta,
            block: None,
            postings: Block::default(),
            pos: 0,
        }
    }
}

impl Postings for TermList {
    fn next_geq(
        &mut self,
        target: u64,
        snap: &Snapshot,
        stats: &mut ReadStats,
    ) -> Result<Option<u64>> {
        if let Some(b) = self.block {
            if self.meta.blocks[b].last >= target {
                let ids = self.postings.ids();
                self.pos += ids[self.pos..].partition_point(|&id| id < target);
                return Ok(ids.get(self.pos).copied());
            }
        }
        let from = self.block.map_or(0, |b| b + 1);
        let b = from + self.meta.blocks[from..].partition_point(|r| r.last < target);
        stats.blocks_skipped += (b - from) as u64;
        let Some(r) = self.meta.blocks.get(b) else {
            self.block = self.meta.blocks.len().checked_sub(1);
            self.postings = Block::default();
            self.pos = 0;
            return Ok(None);
        };
        let bytes = snap
            .get(keys::block_key(&self.base, r.number))?
            .ok_or_else(|| {
                IndexError::Damaged(super::postings::PostingsError(format!(
                    "block {} of {:?} is missing",
                    r.number, self.base
                )))
            })?;
        self.postings.decode_into(&bytes)?;
        stats.charge(self.postings.len() as u64)?;
        self.block = Some(b);
        let ids = self.postings.ids();
        self.pos = ids.partition_point(|&id| id < target);
        Ok(ids.get(self.pos).copied())
    }

    fn key(&mut self) -> Option<&[u8]> {
        self.postings.key(self.pos)
    }

    fn estimate(&self) -> u64 {
        self.meta.total
    }
}

/// The union of lists (a range over terms).
pub struct Union {
    lists: Vec<(Box<dyn Postings + Send>, Option<u64>, bool)>,
    /// The list whose head was returned last.
    current: Option<usize>,
}

impl Union {
    /// The union of `lists`.
    pub fn new(lists: Vec<Box<dyn Postings + Send>>) -> Union {
        Union {
            lists: lists.into_iter().map(|l| (l, None, false)).collect(),
            current: None,
        }
    }
}

impl Postings for Union {
    fn next_geq(
        &mut self,
        target: u64,
        snap: &Snapshot,
        stats: &mut ReadStats,
    ) -> Result<Option<u64>> {
        let mut best: Option<(u64, usize)> = None;
        for (i, (list, head, done)) in self.lists.iter_mut().enumerate() {
            if *done {
                continue;
            }
            if head.is_none_or(|h| h < target) {
                *head = list.next_geq(target, snap, stats)?;
                if head.is_none() {
                    *done = true;
                    continue;
                }
            }
            if let Some(h) = *head {
                if best.is_none_or(|(b, _)| h < b) {
                    best = Some((h, i));
                }
            }
        }
        self.current = best.map(|(_, i)| i);
        Ok(best.map(|(id, _)| id))
    }

    fn key(&mut self) -> Option<&[u8]> {
        self.lists.get_mut(self.current?)?.0.key()
    }

    fn estimate(&self) -> u64 {
        self.lists.iter().map(|(l, _, _)| l.estimate()).sum()
    }
}

/// The intersection of lists (AND): leapfrog over the lists, smallest first.
pub struct Intersection {
    lists: Vec<Box<dyn Postings + Send>>,
}

impl Intersection {
    /// The intersection of `lists` (at least one).
    pub fn new(mut lists: Vec<Box<dyn Postings + Send>>) -> Intersection {
        lists.sort_by_key(|l| l.estimate());
        Intersection { lists }
    }
}

impl Postings for Intersection {
    fn next_geq(
        &mut self,
        target: u64,
        snap: &Snapshot,
        stats: &mut ReadStats,
    ) -> Result<Option<u64>> {
        let Some(first) = self.lists.first_mut() else {
            return Ok(None);
        };
        let Some(mut candidate) = first.next_geq(target, snap, stats)? else {
            return Ok(None);
        };
        'outer: loop {
            for i in 0..self.lists.len() {
                let Some(id) = self.lists[i].next_geq(candidate, snap, stats)? else {
                    return Ok(None);
                };
                if id > candidate {
                    candidate = id;
                    continue 'outer;
                }
            }
            return Ok(Some(candidate));
        }
    }

    fn key(&mut self) -> Option<&[u8]> {
        self.lists.first_mut()?.key()
    }

    fn estimate(&self) -> u64 {
        self.lists.iter().map(|l| l.estimate()).min().unwrap_or(0)
    }
}
