//! Samples run on threads of their own, so that a pool that hangs can be walked away from.
//!
//! Each column of a suite (a [`Lane`]) gets one thread per runtime flavor, with its own tokio
//! runtime, and hands it one job per sample. The suite waits for the answer with a bound; a
//! job that outlasts it is abandoned with its thread and runtime (a stuck `block_on` cannot be
//! stopped from outside) and the lane is gone for the rest of the suite. A job that panics
//! ends its thread and the lane the same way. An abandoned thread that waits forever costs
//! nothing; the process exits without it.

use std::any::Any;
use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

/// Which tokio runtime a job runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `new_current_thread`: everything on the lane's own thread.
    CurrentThread,
    /// `new_multi_thread` with its default number of workers (one per core: 2 here).
    MultiThread,
}

impl Flavor {
    /// Both, in the order the suites print them.
    pub const ALL: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

    /// A runtime of this flavor with time and I/O enabled.
    pub fn runtime(self) -> Runtime {
        let mut builder = match self {
            Flavor::CurrentThread => Builder::new_current_thread(),
            Flavor::MultiThread => Builder::new_multi_thread(),
        };
        builder.enable_all().build().expect("a tokio runtime")
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::CurrentThread => "current-thread",
            Flavor::MultiThread => "multi-thread",
        })
    }
}

/// Why a lane stopped answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// A job did not finish within its bound.
    Hung,
    /// A job panicked.
    Failed,
}

impl fmt::Display for Gone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Gone::Hung => "hangs",
            Gone::Failed => "fails",
        })
    }
}

/// A job and its type-erased answer.
type Job = Box<dyn FnOnce(&Runtime) -> Box<dyn Any + Send> + Send>;

/// One thread with its runtime, running jobs one at a time.
struct Worker {
    jobs: mpsc::Sender<Job>,
    answers: mpsc::Receiver<Box<dyn Any + Send>>,
}

impl Worker {
    fn spawn(name: &str, flavor: Flavor) -> Self {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (answer_tx, answers) = mpsc::channel();
        thread::Builder::new()
            .name(format!("{name} {flavor}"))
            .spawn(move || {
                let rt = flavor.runtime();
                // Ends when the lane drops its sender, or when nobody listens any more.
                while let Ok(job) = job_rx.recv() {
                    if answer_tx.send(job(&rt)).is_err() {
                        break;
                    }
                }
            })
            .expect("a benchmark thread");
        Worker { jobs, answers }
    }
}

/// One column of a suite: its threads, and whether it is still answering.
pub struct Lane {
    /// The column header.
    pub name: &'static str,
    workers: [Option<Worker>; 2],
    gone: Option<Gone>,
}

impl Lane {
    /// A lane; its threads start with its first job of each flavor.
    pub fn new(name: &'static str) -> Self {
        Lane {
            name,
            workers: [None, None],
            gone: None,
        }
    }

    /// Why the lane stopped, if it did.
    pub fn gone(&self) -> Option<Gone> {
        self.gone
    }

    /// Runs `job` on the lane's `flavor` runtime and waits at most `limit` for its answer.
    /// Once a job hung or panicked, the lane runs nothing more and answers why at once.
    pub fn run<T: Send + 'static>(
        &mut self,
        flavor: Flavor,
        limit: Duration,
        job: impl FnOnce(&Runtime) -> T + Send + 'static,
    ) -> Result<T, Gone> {
        if let Some(gone) = self.gone {
            return Err(gone);
        }
        let slot = &mut self.workers[usize::from(flavor == Flavor::MultiThread)];
        let worker = slot.get_or_insert_with(|| Worker::spawn(self.name, flavor));
        let sent = worker.jobs.send(Box::new(move |rt: &Runtime| {
            Box::new(job(rt)) as Box<dyn Any + Send>
        }));
        let answer = match sent {
            Ok(()) => worker.answers.recv_timeout(limit),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        };
        match answer {
            Ok(answer) => Ok(*answer.downcast().expect("the job's own type")),
            Err(e) => {
                let gone = match e {
                    RecvTimeoutError::Timeout => Gone::Hung,
                    RecvTimeoutError::Disconnected => Gone::Failed,
                };
                // Walk away from both threads: the stuck one, and the other flavor's, so that
                // the lane's state cannot leak into later samples.
                self.workers = [None, None];
                self.gone = Some(gone);
                Err(gone)
            }
        }
    }
}

/// The bound on one job: 30 times the slowest time any lane needed for the same job so far
/// (`slowest`, scaled to this job's `ops` from seconds per operation), plus `setup` for
/// building and filling the pool; at least `floor`, and at most 60 s. Without a reference yet,
/// 60 s.
pub fn limit(slowest: Option<f64>, ops: usize, setup: Duration, floor: Duration) -> Duration {
    const MAX: Duration = Duration::from_secs(60);
    match slowest {
        None => MAX,
        Some(per_op) => {
            let bound = Duration::from_secs_f64((30.0 * per_op * ops as f64).min(60.0)) + setup;
            bound.clamp(floor, MAX)
        }
    }
}
