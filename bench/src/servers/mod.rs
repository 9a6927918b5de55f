//! The server suites (`postgres`, `mysql`, `redis`): pools in front of real servers.
//!
//! Each pool gets `size` connections and `tasks` tasks that loop on one operation: acquire,
//! run the suite's trivial command, release. A sample builds the pool, warms it (which opens its
//! connections), measures, then closes the pool and waits until the server holds no session of
//! it, so that no pool runs beside another's connections (two cores, shared with the servers)
//! and the servers' connection limits are never approached. The pools take turns within each
//! round, each round starting with the next column, and a round counts only when every pool
//! finished it, so every column has the same number of samples taken at the same times.
//!
//! A server that does not answer when the suite starts skips the suite with a line saying why.
//! A failure during a round (the server restarted, say) is reported, and the round is tried
//! again once the server answers; after a few failures the suite stops with the error. Every
//! wait is bounded, so a server that goes silent cannot hang the run.
//!
//! For profiling one pool alone, `POOL_BENCH_ONLY=<column name>` (for example
//! `POOL_BENCH_ONLY=pool-drivers`) measures only the columns so named and prints no ratios.

pub mod mysql;
pub mod postgres;
pub mod redis;

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Builder;

use crate::report::{percentile, table, Samples};

/// Any error of any pool or driver, kept with its chain of causes.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// How long the suite waits for its server to answer at the start, and again after a failure.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// How long a closed pool's sessions may take to disappear from the server before the run
/// goes on anyway (with a warning).
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
/// Failed rounds in a row a suite tolerates before it stops (a server restarted by someone
/// else costs one; a server that stays broken ends the suite).
const MAX_RETRIES: usize = 3;

/// What a run measures and how long.
pub struct Plan {
    /// Measured operations per sample and pool.
    pub ops: usize,
    /// Measured operations per sample of the connect-per-request baseline, which is two orders
    /// of magnitude slower.
    pub baseline_ops: usize,
    /// Samples (rounds) per figure.
    pub samples: usize,
    /// Concurrent tasks.
    pub tasks: usize,
    /// Connections per pool, and most connections at once for the baseline.
    pub size: usize,
    /// Bound on one sample (build, warm-up, measurement); a sample that outlasts it fails.
    pub sample_limit: Duration,
}

impl Plan {
    /// The published figures: 11 samples of 32,768 operations per pool. More, shorter rounds
    /// rather than fewer, longer ones: the pools alternate faster than the load of whatever
    /// else runs on the machine changes.
    pub fn full() -> Self {
        Plan {
            ops: 1 << 15,
            baseline_ops: 512,
            samples: 11,
            tasks: 64,
            size: 16,
            sample_limit: Duration::from_secs(60),
        }
    }

    /// A short run that keeps the suites working (CI): 3 samples of 2,048 operations.
    pub fn quick() -> Self {
        Plan {
            ops: 2048,
            baseline_ops: 256,
            samples: 3,
            tasks: 64,
            size: 16,
            sample_limit: Duration::from_secs(15),
        }
    }
}

/// How a server suite ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All samples taken and printed.
    Done,
    /// The server did not answer at the start.
    Skipped,
    /// Stopped by errors during the run.
    Failed,
}

/// One server: where it is, how the suite watches its sessions, and the pools measured on it.
pub trait Server: Send + Sync + Sized + 'static {
    /// The suite's name.
    const NAME: &'static str;
    /// The environment variable with the server's URL.
    const URL_VAR: &'static str;
    /// The URL used when the variable is not set.
    const DEFAULT_URL: &'static str;
    /// What one operation runs, for the table's heading.
    const WORK: &'static str;

    /// Connects the monitor that counts the suite's sessions; fails when the server does not
    /// answer.
    fn connect(url: &str) -> impl Future<Output = Result<Self, BoxError>> + Send;

    /// How many of the suite's sessions the server still has: `ids` are the server-side ids of
    /// the pool just closed (for servers that cannot tell the suite's sessions apart otherwise).
    fn open_sessions(&self, ids: &[u64]) -> impl Future<Output = Result<usize, BoxError>> + Send;

    /// The columns: ours first, then the peers, then the connect-per-request baseline.
    fn lanes() -> Vec<Lane<Self>>;

    /// What each column does per checkout, printed under the table.
    fn notes(plan: &Plan) -> Vec<String>;
}

/// One pool (or the baseline) measured against server `S`.
pub trait Contender<S: Server>: Clone + Send + Sync + 'static {
    /// The column header.
    const NAME: &'static str;

    /// A checked-out connection, returned when dropped.
    type Held: Send;

    /// A pool of at most `size` connections, with the pool's defaults otherwise.
    fn build(server: &S, size: usize) -> impl Future<Output = Result<Self, BoxError>> + Send;

    /// Checks out one connection, for the warm-up, which holds `size` of them at once so that
    /// every pool has all its connections open before anything is measured.
    fn checkout(&self) -> impl Future<Output = Result<Self::Held, BoxError>> + Send;

    /// One operation: acquire, run the suite's command, release.
    fn op(&self) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// The server-side ids of the pool's sessions, found by holding `size` connections at once.
    /// Asked after the measurement, since it may leave session state behind. The default
    /// knows none (for servers that tell the suite's sessions apart by name).
    fn sessions(&self, size: usize) -> impl Future<Output = Result<Vec<u64>, BoxError>> + Send {
        let _ = size;
        async { Ok(Vec::new()) }
    }

    /// Closes the pool and every connection it holds.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// The role of a column.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Our pool.
    Ours,
    /// Another pool.
    Peer,
    /// A new connection per operation.
    Baseline,
}

/// A boxed sample of one column.
type SampleFuture<'a> = Pin<Box<dyn Future<Output = Result<Figures, BoxError>> + 'a>>;

/// One column of a server suite.
pub struct Lane<S> {
    name: &'static str,
    kind: Kind,
    run: for<'a> fn(&'a S, &'a Plan, usize) -> SampleFuture<'a>,
}

impl<S: Server> Lane<S> {
    /// The column of contender `P`.
    pub fn of<P: Contender<S>>(kind: Kind) -> Self {
        Lane {
            name: P::NAME,
            kind,
            run: run_lane::<S, P>,
        }
    }
}

fn run_lane<'a, S: Server, P: Contender<S>>(
    server: &'a S,
    plan: &'a Plan,
    ops: usize,
) -> SampleFuture<'a> {
    Box::pin(sample::<S, P>(server, plan, ops))
}

/// What one sample measured.
#[derive(Debug, Clone, Copy)]
struct Figures {
    /// Operations per second.
    throughput: f64,
    /// Seconds.
    p50: f64,
    /// Seconds.
    p99: f64,
    /// Seconds of this process's CPU time per operation (NaN where unknown).
    cpu: f64,
}

/// All samples of one column.
#[derive(Default)]
struct Column {
    throughput: Samples,
    p50: Samples,
    p99: Samples,
    cpu: Samples,
}

impl Column {
    fn push(&mut self, f: Figures) {
        self.throughput.push(f.throughput);
        self.p50.push(f.p50);
        self.p99.push(f.p99);
        self.cpu.push(f.cpu);
    }
}

/// Runs the suite of server `S` and prints its table, notes and summary line.
pub fn run<S: Server>(plan: &Plan) -> Outcome {
    let url = std::env::var(S::URL_VAR).unwrap_or_else(|_| S::DEFAULT_URL.to_owned());
    // A multi-thread runtime on the two cores, as a service would run; the server shares them.
    let rt = Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = rt.block_on(run_rounds::<S>(&url, plan));
    // Connection tasks still winding down must not keep the suite waiting.
    rt.shutdown_timeout(Duration::from_secs(1));
    outcome
}

async fn run_rounds<S: Server>(url: &str, plan: &Plan) -> Outcome {
    let mut server = match connect::<S>(url).await {
        Ok(server) => server,
        Err(e) => {
            println!(
                "{} suite skipped: no answer from {} ({}): {}\n",
                S::NAME,
                redact(url),
                S::URL_VAR,
                chain(&*e)
            );
            return Outcome::Skipped;
        }
    };
    let only = std::env::var("POOL_BENCH_ONLY").ok();
    let lanes: Vec<_> = S::lanes()
        .into_iter()
        .filter(|l| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == l.name))
        })
        .collect();
    if lanes.is_empty() {
        println!("{} suite: no column named in POOL_BENCH_ONLY\n", S::NAME);
        return Outcome::Skipped;
    }
    let mut columns: Vec<Column> = lanes.iter().map(|_| Column::default()).collect();
    let mut failures = 0;
    let mut taken = 0;
    while taken < plan.samples {
        match round(&server, &lanes, plan, taken % lanes.len()).await {
            Ok(figures) => {
                for (column, f) in columns.iter_mut().zip(figures) {
                    column.push(f);
                }
                taken += 1;
                failures = 0;
            }
            Err((lane, e)) => {
                failures += 1;
                let e = chain(&*e);
                if failures > MAX_RETRIES {
                    println!(
                        "{} suite stopped after {failures} failed rounds in a row; last: {lane}: {e}\n",
                        S::NAME
                    );
                    return Outcome::Failed;
                }
                eprintln!(
                    "{}: round {} failed ({lane}: {e}); retrying once the server answers",
                    S::NAME,
                    taken + 1
                );
                // The server may be restarting: wait for it, with a fresh monitor session.
                let deadline = Instant::now() + 3 * CONNECT_LIMIT;
                server = loop {
                    match connect::<S>(url).await {
                        Ok(server) => break server,
                        Err(e) if Instant::now() >= deadline => {
                            println!(
                                "{} suite stopped: the server did not come back: {}\n",
                                S::NAME,
                                chain(&*e)
                            );
                            return Outcome::Failed;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                };
            }
        }
    }
    print_results::<S>(&lanes, &columns, plan);
    Outcome::Done
}

async fn connect<S: Server>(url: &str) -> Result<S, BoxError> {
    match tokio::time::timeout(CONNECT_LIMIT, S::connect(url)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {CONNECT_LIMIT:?}").into()),
    }
}

/// One sample of every column, in turn, starting with column `first`; the figures in column
/// order, or the name of the column that failed.
///
/// The starting column moves on each round: whichever column runs right after another one
/// (the connect-per-request baseline above all, which leaves the server reaping hundreds of
/// sessions) measures on a busier server, and rotating spreads that over every column.
async fn round<S: Server>(
    server: &S,
    lanes: &[Lane<S>],
    plan: &Plan,
    first: usize,
) -> Result<Vec<Figures>, (&'static str, BoxError)> {
    let mut figures = vec![None; lanes.len()];
    for i in (0..lanes.len()).map(|k| (first + k) % lanes.len()) {
        let lane = &lanes[i];
        let ops = if lane.kind == Kind::Baseline {
            plan.baseline_ops
        } else {
            plan.ops
        };
        let f = (lane.run)(server, plan, ops)
            .await
            .map_err(|e| (lane.name, e))?;
        figures[i] = Some(f);
    }
    Ok(figures.into_iter().flatten().collect())
}

/// One sample of contender `P`: build, warm up, measure, close, wait for its sessions to go.
async fn sample<S: Server, P: Contender<S>>(
    server: &S,
    plan: &Plan,
    ops: usize,
) -> Result<Figures, BoxError> {
    let deadline = Instant::now() + plan.sample_limit;
    let pool = within(deadline, P::build(server, plan.size)).await?;
    let measured = async {
        // Unmeasured, for every pool alike: open all its connections (pools open them on
        // demand, each at its own pace), then warm caches and allocator.
        within(deadline, fill::<S, P>(&pool, plan.size)).await?;
        drive(&pool, plan.tasks, (ops / 8).max(plan.tasks), deadline).await?;
        drive(&pool, plan.tasks, ops, deadline).await
    }
    .await;
    let ids = match &measured {
        Ok(_) => within(deadline, pool.sessions(plan.size)).await,
        Err(_) => Ok(Vec::new()),
    };
    // Closing is bounded too: a pool whose server went silent may hang on its goodbyes.
    let _ = tokio::time::timeout(SETTLE_LIMIT, pool.close()).await;
    let figures = measured?;
    settle(server, &ids?).await?;
    Ok(figures)
}

/// Holds `size` connections of `pool` at once, then returns them.
async fn fill<S: Server, P: Contender<S>>(pool: &P, size: usize) -> Result<(), BoxError> {
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(pool.checkout().await?);
    }
    Ok(())
}

/// Waits until the server has none of the suite's sessions left, or `SETTLE_LIMIT` passed.
async fn settle<S: Server>(server: &S, ids: &[u64]) -> Result<(), BoxError> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let open = within(deadline + CONNECT_LIMIT, server.open_sessions(ids)).await?;
        if open == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            eprintln!(
                "{}: {open} sessions of the last pool still open after {SETTLE_LIMIT:?}; going on",
                S::NAME
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `future`'s result, or an error if `deadline` passes first.
async fn within<T>(
    deadline: Instant,
    future: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, BoxError> {
    match tokio::time::timeout_at(deadline.into(), future).await {
        Ok(result) => result,
        Err(_) => Err("timed out (the sample's time limit passed)".into()),
    }
}

/// `ops` operations spread over `tasks` tasks: throughput over the whole run, latency of each
/// operation (acquire + command + release).
async fn drive<S: Server, P: Contender<S>>(
    pool: &P,
    tasks: usize,
    ops: usize,
    deadline: Instant,
) -> Result<Figures, BoxError> {
    let per_task = ops.div_ceil(tasks);
    // One failed task stops the others after their current operation.
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_time();
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let pool = pool.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let began = Instant::now();
                    if let Err(e) = pool.op().await {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    latencies.push(began.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
    let joined = tokio::time::timeout_at(deadline.into(), async {
        let mut all = Vec::with_capacity(per_task * tasks);
        let mut first_error = None;
        for handle in handles {
            match handle.await {
                Ok(Ok(latencies)) => all.extend(latencies),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(format!("a benchmark task failed: {e}").into());
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(all),
        }
    })
    .await;
    let elapsed = start.elapsed();
    let cpu = match (cpu_before, cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before).as_secs_f64(),
        _ => f64::NAN,
    };
    let mut latencies = match joined {
        Ok(result) => result?,
        Err(_) => {
            // The tasks' operations are dropped where they stand, which every pool survives.
            for abort in aborts {
                abort.abort();
            }
            return Err("timed out (the sample's time limit passed)".into());
        }
    };
    latencies.sort_unstable();
    Ok(Figures {
        throughput: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50).as_secs_f64(),
        p99: percentile(&latencies, 0.99).as_secs_f64(),
        cpu: cpu / latencies.len() as f64,
    })
}

/// CPU time this process has used, user and system (Linux only).
///
/// Summed over the threads' `/proc/self/task/*/schedstat`, which counts nanoseconds; a thread
/// that ends between two readings takes its time with it, which the runtime's worker threads
/// never do. Where that file is missing, `/proc/self/stat`, which counts ticks of 10 ms: too
/// coarse for quick runs, fine over samples of a second or more.
fn cpu_time() -> Option<Duration> {
    thread_cpu_time().or_else(process_cpu_time)
}

fn thread_cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may end between the listing and the read: it has no time left to count.
        let Ok(stat) = std::fs::read_to_string(path) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 12th and 13th of them.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture.
    Some(Duration::from_millis((utime + stime) * 10))
}

fn print_results<S: Server>(lanes: &[Lane<S>], columns: &[Column], plan: &Plan) {
    let ours = &columns[0];
    // Ratios only when our column is there (`POOL_BENCH_ONLY` may leave it out).
    let compare = lanes[0].kind == Kind::Ours;
    let others = || {
        lanes
            .iter()
            .zip(columns)
            .skip(if compare { 1 } else { lanes.len() })
    };
    println!(
        "### {}: {}, {} tasks on {} connections, multi-thread runtime, {} ops per sample \
         ({} for connect per request), median of {} (min–max)\n",
        S::NAME,
        S::WORK,
        plan.tasks,
        plan.size,
        plan.ops,
        plan.baseline_ops,
        plan.samples
    );
    let header: Vec<String> = std::iter::once("figure".to_owned())
        .chain(lanes.iter().map(|l| l.name.to_owned()))
        .chain(others().map(|(l, _)| format!("vs {}", l.name)))
        .collect();
    // Ratios read the same way on every row: above 1, ours is better.
    let higher_better = |f: fn(&Column) -> &Samples| -> Vec<String> {
        others()
            .map(|(_, c)| format!("{:.2}x", f(ours).median() / f(c).median()))
            .collect()
    };
    let lower_better = |f: fn(&Column) -> &Samples| -> Vec<String> {
        others()
            .map(|(_, c)| format!("{:.2}x", f(c).median() / f(ours).median()))
            .collect()
    };
    let row = |label: &str, f: fn(&Column) -> &Samples, scale: f64, digits, ratios: Vec<String>| {
        std::iter::once(label.to_owned())
            .chain(columns.iter().map(|c| f(c).cell(scale, digits)))
            .chain(ratios)
            .collect::<Vec<String>>()
    };
    let mut rows = vec![
        row(
            "throughput (kops/s)",
            |c| &c.throughput,
            1e-3,
            1,
            higher_better(|c| &c.throughput),
        ),
        row(
            "p50 latency (µs)",
            |c| &c.p50,
            1e6,
            0,
            lower_better(|c| &c.p50),
        ),
        row(
            "p99 latency (µs)",
            |c| &c.p99,
            1e6,
            0,
            lower_better(|c| &c.p99),
        ),
    ];
    if !ours.cpu.median().is_nan() {
        rows.push(row(
            "client CPU per op (µs)",
            |c| &c.cpu,
            1e6,
            1,
            lower_better(|c| &c.cpu),
        ));
    }
    table(&header, &rows);
    for note in S::notes(plan) {
        println!("- {note}");
    }
    println!(
        "- Ratios: ours over theirs for throughput, theirs over ours for latency; above 1 \
         means ours is better. Latency is one acquire + command + release, waiting included. \
         Client CPU is this process's user + system time (pool, driver, runtime, kernel \
         network stack) per operation; the server's is not in it."
    );
    println!();
    if !compare || lanes.len() < 2 {
        return;
    }
    let ratios: Vec<String> = others()
        .map(|(l, c)| {
            format!(
                "vs {} {:.2}",
                l.name,
                ours.throughput.median() / c.throughput.median()
            )
        })
        .collect();
    println!(
        "{} summary: ratio {} (throughput)\n",
        S::NAME,
        ratios.join(", ")
    );
}

/// An error and its causes, joined.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        // Some errors repeat their cause in their own message.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// `url` without the password, for messages.
fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@').map(|i| start + i) {
        Some(at) => match url[start..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..start + colon], &url[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&ms[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact("mysql://root:secret@127.0.0.1:3306/test"),
            "mysql://root:***@127.0.0.1:3306/test"
        );
        assert_eq!(
            redact("redis://:pw@127.0.0.1:6379/"),
            "redis://:***@127.0.0.1:6379/"
        );
    }
}
