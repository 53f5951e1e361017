//! Background tasks (index builds, rebuilds, drops) and their progress.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

/// Finished tasks kept for `GET /tasks/{id}`.
const KEEP_FINISHED: usize = 256;

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Working.
    Running,
    /// Finished.
    Done,
    /// Stopped with an error.
    Failed,
    /// Stopped because the index was dropped or replaced, or the instance closed.
    Cancelled,
}

/// A task as `GET /tasks/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    /// Its id (per instance).
    pub id: u64,
    /// `build`, `rebuild` or `drop`.
    pub kind: &'static str,
    /// The index.
    pub index: String,
    /// The generation it builds or deletes.
    pub generation: u64,
    /// Where it is.
    pub state: TaskState,
    /// Work done, in `unit`s.
    pub done: u64,
    /// Work expected, in `unit`s (grows while writes arrive during a build).
    pub total: u64,
    /// `doc ids` for builds, `keys` for drops.
    pub unit: &'static str,
    /// Records an extractor failed on (they are listed as skipped).
    pub skipped: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started (Unix milliseconds).
    pub started_at_ms: u64,
    /// How long it has run or ran.
    pub elapsed_ms: u64,
}

/// A running or finished task.
pub struct Task {
    info: Mutex<TaskInfo>,
    started: Instant,
    cancelled: AtomicBool,
}

impl Task {
    /// Its id.
    pub fn id(&self) -> u64 {
        self.info.lock().id
    }

    /// A copy of its state.
    pub fn info(&self) -> TaskInfo {
        let mut i = self.info.lock().clone();
        if i.state == TaskState::Running {
            i.elapsed_ms = self.started.elapsed().as_millis() as u64;
        }
        i
    }

    /// Records progress; a `total` of 0 keeps the total known so far.
    pub fn progress(&self, done: u64, total: u64) {
        let mut i = self.info.lock();
        i.done = done;
        let total = if total == 0 { i.total } else { total };
        i.total = total.max(done);
    }

    /// Counts records an extractor failed on.
    pub fn add_skipped(&self, n: u64) {
        self.info.lock().skipped += n;
    }

    /// Asks the task to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether it was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Whether it has ended (done, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.info.lock().state != TaskState::Running
    }

    /// Records the end.
    pub fn finish(&self, outcome: Result<(), String>) {
        let mut i = self.info.lock();
        i.elapsed_ms = self.started.elapsed().as_millis() as u64;
        match outcome {
            Ok(()) => {
                i.state = TaskState::Done;
                i.done = i.total.max(i.done);
                i.total = i.done;
            }
            Err(_) if self.is_cancelled() => i.state = TaskState::Cancelled,
            Err(e) => {
                i.state = TaskState::Failed;
                i.error = Some(e);
            }
        }
    }
}

/// The tasks of one instance.
#[derive(Default)]
pub struct Tasks {
    next: AtomicU64,
    all: Mutex<BTreeMap<u64, Arc<Task>>>,
}

impl Tasks {
    /// Registers a new running task.
    pub fn start(&self, kind: &'static str, index: &str, generation: u64) -> Arc<Task> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let task = Arc::new(Task {
            info: Mutex::new(TaskInfo {
                id,
                kind,
                index: index.to_string(),
                generation,
                state: TaskState::Running,
                done: 0,
                total: 0,
                unit: if kind == "drop" { "keys" } else { "doc ids" },
                skipped: 0,
                error: None,
                started_at_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0),
                elapsed_ms: 0,
            }),
            started: Instant::now(),
            cancelled: AtomicBool::new(false),
        });
        let mut all = self.all.lock();
        all.insert(id, Arc::clone(&task));
        let finished: Vec<u64> = all
            .iter()
            .filter(|(_, t)| t.info.lock().state != TaskState::Running)
            .map(|(id, _)| *id)
            .collect();
        if finished.len() > KEEP_FINISHED {
            for id in &finished[..finished.len() - KEEP_FINISHED] {
                all.remove(id);
            }
        }
        task
    }

    /// The task `id`.
    pub fn get(&self, id: u64) -> Option<Arc<Task>> {
        self.all.lock().get(&id).cloned()
    }

    /// Every task kept, oldest first.
    pub fn list(&self) -> Vec<TaskInfo> {
        self.all.lock().values().map(|t| t.info()).collect()
    }

    /// Asks every running task to stop.
    pub fn cancel_all(&self) {
        for t in self.all.lock().values() {
            t.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_keeps_the_known_total() {
        let tasks = Tasks::default();
        let task = tasks.start("build", "by_city", 1);
        task.progress(0, 1000);
        task.progress(300, 0);
        let i = task.info();
        assert_eq!((i.done, i.total), (300, 1000));
        task.progress(1200, 0);
        assert_eq!((task.info().done, task.info().total), (1200, 1200));
        task.progress(1500, 1400);
        assert_eq!((task.info().done, task.info().total), (1500, 1500));
        task.finish(Ok(()));
        let i = task.info();
        assert_eq!((i.state, i.done, i.total), (TaskState::Done, 1500, 1500));
    }
}
