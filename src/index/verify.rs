//! Index consistency: every posting of a live doc points to a record that still has the
//! term, every record in scope is indexed under each of its terms (or, when the
//! extractor fails on it, listed as skipped), and only such records are listed as
//! skipped.
//!
//! Three passes over one snapshot. The records pass extracts every record in the scope
//! and checks that each of its terms' lists holds its posting (its doc id, the sequence
//! number of its version, and its key) and that the doc catalog lists it, counting how
//! many live postings each term should have. The postings pass reads every list
//! (checking blocks against the skip table) and counts the postings whose record still
//! has the posting's version. The catalog pass checks every doc record in the scope
//! names a record's current version. Membership plus
//! equal counts per term means no list holds a live posting it should not.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::error::Result;
use super::keys;
use super::list::{Postings, ReadStats, TermList};
use super::postings::{Block, Meta};
use super::registry::{Gen, IndexSet};
use super::write::{self, Outcome};
use crate::engine::Snapshot;

/// Differences listed per index (the rest are only counted).
const MAX_LISTED: usize = 100;

/// What `verify` found for one index.
#[derive(Debug, Clone, Serialize)]
pub struct IndexReport {
    /// The index.
    pub index: String,
    /// The generation checked.
    pub generation: u64,
    /// Records in scope.
    pub records: u64,
    /// Records skipped by the extractor (`on_error = skip`).
    pub skipped: u64,
    /// Terms.
    pub terms: u64,
    /// Postings whose doc is live.
    pub live_postings: u64,
    /// Postings of dead docs (dropped by a rebuild).
    pub dead_postings: u64,
    /// Differences found (the first ones are listed in `problems`).
    pub problem_count: u64,
    /// The first differences.
    pub problems: Vec<String>,
}

impl IndexReport {
    /// Whether the index agrees with the records.
    pub fn ok(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(p);
        }
    }
}

/// Checks every served index of `set` at `snap` (taken together with `set`).
pub fn verify(snap: &Snapshot, set: &IndexSet) -> Result<Vec<IndexReport>> {
    set.ready().map(|g| verify_gen(snap, g)).collect()
}

fn verify_gen(snap: &Snapshot, gen: &Gen) -> Result<IndexReport> {
    let mut report = IndexReport {
        index: gen.def.index_name.clone(),
        generation: gen.number,
        records: 0,
        skipped: 0,
        terms: 0,
        live_postings: 0,
        dead_postings: 0,
        problem_count: 0,
        problems: Vec::new(),
    };
    let mut expected: HashMap<String, u64> = HashMap::new();
    let mut skipped_keys: HashSet<String> = HashSet::new();
    let mut stats = ReadStats::default();
    let scope_start = if gen.def.scope_prefix.is_empty() {
        keys::FIRST_USER_KEY
    } else {
        gen.def.scope_prefix.as_str()
    };
    let mut records = snap.iter_range(scope_start..)?;
    while let Some(item) = records.next_versioned() {
        let (key, id, value) = item?;
        if !gen.def.in_scope(&key) || keys::is_internal(key.as_bytes()) {
            break;
        }
        report.records += 1;
        if snap.get(keys::doc_key(id))?.as_deref() != Some(key.as_bytes()) {
            report.problem(format!(
                "record {key:?} (doc {id}) is not in the doc catalog"
            ));
        }
        let outcome = write::extract(gen, &[(key.as_str(), value.as_slice())], false)?.pop();
        match outcome {
            Some(Outcome::Terms(terms)) => {
                for t in terms {
                    let mut list =
                        TermList::open(keys::term_base(&gen.prefix, &t), snap, &mut stats)?;
                    if list.next_geq(id, snap, &mut stats)? != Some(id)
                        || list.key() != Some(key.as_bytes())
                    {
                        report.problem(format!(
                            "record {key:?} (doc {id}) is missing from term {t:?}"
                        ));
                    }
                    *expected.entry(t).or_default() += 1;
                }
            }
            Some(Outcome::Skipped(message)) => {
                let skip = snap.get(format!("{}{key}", gen.skip_prefix()))?;
                if skip.is_none() {
                    report.problem(format!(
                        "record {key:?} cannot be indexed ({message}) but is not listed as skipped"
                    ));
                }
                report.skipped += 1;
                skipped_keys.insert(key);
            }
            None => {}
        }
    }
    let prefix = gen.skip_prefix();
    for item in snap.iter_prefix(&prefix)? {
        let (skip_key, _) = item?;
        let key = &skip_key[prefix.len()..];
        if !skipped_keys.contains(key) {
            report.problem(format!(
                "record {key:?} is listed as skipped but is indexed or gone"
            ));
        }
    }
    for item in snap.iter_prefix(&gen.prefix)? {
        let (key, value) = item?;
        let Some(term) = keys::term_of_meta_key(&gen.prefix, &key) else {
            continue;
        };
        report.terms += 1;
        let meta = Meta::decode(&value)?;
        let base = keys::term_base(&gen.prefix, term);
        let mut live = 0;
        for b in &meta.blocks {
            let Some(bytes) = snap.get(keys::block_key(&base, b.number))? else {
                report.problem(format!("term {term:?}: block {} is missing", b.number));
                continue;
            };
            let mut block = Block::decode(&bytes)?;
            let ids = block.ids();
            if ids.len() as u32 != b.count
                || ids.first() != Some(&b.first)
                || ids.last() != Some(&b.last)
            {
                report.problem(format!(
                    "term {term:?}: block {} disagrees with the skip table",
                    b.number
                ));
            }
            for (id, key) in block.to_postings()? {
                let version = snap.get_versioned(&key)?.map(|(v, _)| v);
                if gen.def.in_scope(&key) && version == Some(id) {
                    live += 1;
                } else {
                    report.dead_postings += 1;
                }
            }
        }
        report.live_postings += live;
        let want = expected.remove(term).unwrap_or(0);
        if live != want {
            report.problem(format!(
                "term {term:?}: {live} live postings, the records give {want}"
            ));
        }
    }
    // The catalog names only live versions (a stale doc record would make a build
    // index a record twice, or a dead version).
    for item in snap.iter_prefix(keys::DOC_PREFIX)? {
        let (doc, key) = item?;
        let key = String::from_utf8_lossy(&key);
        if !gen.def.in_scope(&key) {
            continue;
        }
        let id = keys::id_of_doc_key(&doc);
        let version = snap.get_versioned(key.as_bytes())?.map(|(v, _)| v);
        if id.is_none() || version != id {
            report.problem(format!(
                "doc record {doc:?} names {key:?}, whose current version is {version:?}"
            ));
        }
    }
    for (term, want) in expected {
        report.problem(format!(
            "term {term:?}: no list, the records give {want} postings"
        ));
    }
    Ok(report)
}
