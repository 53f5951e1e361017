//! Running one compaction: merge the input tables, keep the versions that can still be
//! read, and write them to new tables.
//!
//! The job only writes new files (fsynced, their directory too) and opens them; it never
//! touches the manifest or deletes anything. Installing the outputs and retiring the
//! inputs is the caller's atomic step, so a crash during a job leaves only orphan files,
//! which the next open removes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::picker::Task;
use super::retain::retained_into;
use crate::engine::error::Result;
use crate::engine::iter::InternalIterator;
use crate::engine::manifest::{sync_dir, table_path};
use crate::engine::merge::MergeIterator;
use crate::engine::sstable::{BlockCache, Table, TableOptions, TableWriter};
use crate::engine::stats::ReadCounters;
use crate::engine::types::{SeqNo, ValueKind};

/// What a job needs from the database.
pub struct JobContext<'a> {
    /// Where tables live.
    pub tables_dir: &'a Path,
    /// Layout of the tables written.
    pub table_options: TableOptions,
    /// Hands out file ids for new tables.
    pub next_file_id: &'a dyn Fn() -> u64,
    /// Shared block cache, for opening the outputs.
    pub cache: Arc<BlockCache>,
    /// Shared read counters, for opening the outputs.
    pub counters: Arc<ReadCounters>,
}

/// What a job produced.
#[derive(Default)]
pub struct JobOutput {
    /// The new tables, in key order.
    pub tables: Vec<Arc<Table>>,
    /// Bytes of the input tables.
    pub bytes_read: u64,
    /// Bytes of the output tables.
    pub bytes_written: u64,
    /// Versions read.
    pub versions_in: u64,
    /// Versions written.
    pub versions_out: u64,
}

/// Merges `inputs` as `task` says, keeping what the `snapshots` (ascending) and the
/// latest state can still read.
pub fn run(
    inputs: &[Arc<Table>],
    task: &Task,
    snapshots: &[SeqNo],
    ctx: &JobContext<'_>,
) -> Result<JobOutput> {
    let mut written: Vec<PathBuf> = Vec::new();
    let result = merge_into_tables(inputs, task, snapshots, ctx, &mut written);
    if result.is_err() {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

fn merge_into_tables(
    inputs: &[Arc<Table>],
    task: &Task,
    snapshots: &[SeqNo],
    ctx: &JobContext<'_>,
    written: &mut Vec<PathBuf>,
) -> Result<JobOutput> {
    let mut out = JobOutput {
        bytes_read: inputs.iter().map(|t| t.properties().file_size).sum(),
        ..JobOutput::default()
    };
    let sources: Vec<Box<dyn InternalIterator>> = inputs
        .iter()
        .map(|t| Box::new(t.iter_uncached()) as Box<dyn InternalIterator>)
        .collect();
    let mut merge = MergeIterator::new(sources);
    merge.seek_to_first()?;

    let mut writer: Option<(TableWriter, u64, PathBuf)> = None;
    let mut finished: Vec<(u64, PathBuf)> = Vec::new();
    // Buffers reused from key to key: the merge copies each version's value once, into
    // `values`, and allocates nothing per key.
    let mut key: Vec<u8> = Vec::new();
    let mut values: Vec<u8> = Vec::new();
    let mut versions: Vec<(SeqNo, ValueKind, std::ops::Range<usize>)> = Vec::new();
    let mut shape: Vec<(SeqNo, ValueKind)> = Vec::new();
    let mut keep: Vec<usize> = Vec::new();
    while merge.valid() {
        key.clear();
        key.extend_from_slice(merge.user_key());
        versions.clear();
        values.clear();
        while merge.valid() && merge.user_key() == key.as_slice() {
            let start = values.len();
            values.extend_from_slice(merge.value());
            versions.push((merge.seq(), merge.kind(), start..values.len()));
            merge.next()?;
        }
        out.versions_in += versions.len() as u64;
        shape.clear();
        shape.extend(versions.iter().map(|v| (v.0, v.1)));
        retained_into(&shape, snapshots, task.bottommost, &mut keep);
        if keep.is_empty() {
            continue;
        }
        if writer.is_none() {
            let id = (ctx.next_file_id)();
            let path = table_path(ctx.tables_dir, id);
            written.push(path.clone());
            writer = Some((
                TableWriter::create(&path, ctx.table_options.clone())?,
                id,
                path,
            ));
        }
        if let Some((w, _, _)) = writer.as_mut() {
            for &i in &keep {
                let (seq, kind, range) = &versions[i];
                w.add(&key, *seq, *kind, &values[range.clone()])?;
            }
            out.versions_out += keep.len() as u64;
        }
        // Tables are cut between keys, never inside one key's versions, so tables of
        // one level never overlap.
        if writer
            .as_ref()
            .is_some_and(|(w, _, _)| w.approximate_size() >= task.target_table_size)
        {
            if let Some((w, id, path)) = writer.take() {
                w.finish()?;
                finished.push((id, path));
            }
        }
    }
    if let Some((w, id, path)) = writer.take() {
        w.finish()?;
        finished.push((id, path));
    }
    if !finished.is_empty() {
        sync_dir(ctx.tables_dir)?;
    }
    for (id, path) in finished {
        let table = Table::open(&path, id, Arc::clone(&ctx.cache), Arc::clone(&ctx.counters))?;
        out.bytes_written += table.properties().file_size;
        out.tables.push(table);
    }
    Ok(out)
}
