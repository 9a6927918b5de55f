//! The `realistic` suite: a service's load. 64 tasks share 16 connections and hold each for a
//! simulated server round trip of 200 µs (see [`crate::roundtrip`]), so connections are busy,
//! every task queues now and then, and who gets a returned connection decides the tail of the
//! acquire wait.
//!
//! Per pool and runtime flavor: throughput, and the wait of every `get()` measured by the suite
//! itself (an `Instant` before and after), so every pool is measured the same way. Each sample
//! builds a fresh pool as its users do (connections opened on demand), runs an unmeasured
//! eighth of the operations to open them, then the measured ones. Ours runs twice: with its
//! defaults (bounded unfairness) and with strict FIFO hand-off.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::contenders::{Bb8, Contender, Deadpool, Mobc, Ours, OursDefault, OursStrict, Qp, Setup};
use crate::isolate::{limit, Flavor, Gone, Lane};
use crate::report::{percentile, table, Samples};
use crate::roundtrip::round_trip;

/// What the run measures and how long.
pub struct Plan {
    /// Measured operations per sample.
    pub ops: usize,
    /// Samples per pool and flavor.
    pub samples: usize,
    /// Concurrent tasks.
    pub tasks: usize,
    /// Connections per pool.
    pub size: usize,
    /// How long each operation holds its connection (the simulated round trip).
    pub hold: Duration,
}

impl Plan {
    /// The published figures: 7 samples of 32,768 operations (about half a second each).
    pub fn full() -> Self {
        Plan {
            ops: 1 << 15,
            samples: 7,
            tasks: 64,
            size: 16,
            hold: Duration::from_micros(200),
        }
    }

    /// A short run that keeps the suite working: 3 samples of 2,048 operations.
    pub fn quick() -> Self {
        Plan {
            ops: 1 << 11,
            samples: 3,
            ..Plan::full()
        }
    }
}

/// What one sample measured.
struct Figures {
    /// Operations per second.
    throughput: f64,
    /// Every acquire's wait.
    waits: Vec<Duration>,
    /// Every simulated round trip, as the holding task saw it.
    io: Vec<Duration>,
}

/// Takes one sample of a pool: `(ops, tasks, size, hold)`.
type Sampler = fn(&Runtime, usize, usize, usize, Duration) -> Figures;

/// One column: its lane, how it samples, and what it gathered per flavor.
struct Column {
    lane: Lane,
    sampler: Sampler,
    throughput: [Samples; 2],
    waits: [Vec<Duration>; 2],
    io: [Vec<Duration>; 2],
    gone: [Option<Gone>; 2],
}

impl Column {
    fn of<C: Contender>() -> Self {
        Column {
            lane: Lane::new(C::NAME),
            sampler: sample::<C>,
            throughput: Default::default(),
            waits: Default::default(),
            io: Default::default(),
            gone: [None, None],
        }
    }
}

/// One sample of pool `C`: a fresh pool, an unmeasured warm-up, then `ops` operations.
fn sample<C: Contender>(
    rt: &Runtime,
    ops: usize,
    tasks: usize,
    size: usize,
    hold: Duration,
) -> Figures {
    rt.block_on(async {
        let pool = C::build(&Setup::unit(size, 0)).await;
        drive(&pool, tasks, (ops / 8).max(tasks), hold).await;
        drive(&pool, tasks, ops, hold).await
    })
}

/// `ops` operations over `tasks` tasks: acquire (timed), round trip (timed), release.
async fn drive<C: Contender>(pool: &C, tasks: usize, ops: usize, hold: Duration) -> Figures {
    let per_task = (ops / tasks).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut waits = Vec::with_capacity(per_task);
                let mut io = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let asked = Instant::now();
                    let conn = pool.get().await;
                    let got = Instant::now();
                    round_trip(hold).await;
                    io.push(got.elapsed());
                    drop(conn);
                    waits.push(got - asked);
                }
                (waits, io)
            })
        })
        .collect();
    let mut figures = Figures {
        throughput: 0.0,
        waits: Vec::with_capacity(per_task * tasks),
        io: Vec::with_capacity(per_task * tasks),
    };
    for handle in handles {
        let (waits, io) = handle.await.expect("bench task");
        figures.waits.extend(waits);
        figures.io.extend(io);
    }
    figures.throughput = (per_task * tasks) as f64 / start.elapsed().as_secs_f64();
    figures
}

/// Every column, ours first so that the peers' bounds have a reference.
fn columns() -> Vec<Column> {
    vec![
        Column::of::<Ours<OursDefault>>(),
        Column::of::<Ours<OursStrict>>(),
        Column::of::<Deadpool>(),
        Column::of::<Bb8>(),
        Column::of::<Qp>(),
        Column::of::<Mobc>(),
    ]
}

/// Runs the suite and prints its tables and summary line.
pub fn run(plan: &Plan) {
    let mut columns = columns();
    let mut summary = Vec::new();
    for (f, flavor) in Flavor::ALL.into_iter().enumerate() {
        // Seconds per operation of the slowest sample so far: the bound's reference.
        let mut slowest: Option<f64> = None;
        for _ in 0..plan.samples {
            for column in &mut columns {
                if column.gone[f].is_some() {
                    continue;
                }
                if let Some(gone) = column.lane.gone() {
                    column.gone[f] = Some(gone);
                    continue;
                }
                let total = plan.ops + (plan.ops / 8).max(plan.tasks);
                let bound = limit(
                    slowest,
                    total,
                    Duration::from_secs(1),
                    Duration::from_secs(2),
                );
                let sampler = column.sampler;
                let (ops, tasks, size, hold) = (plan.ops, plan.tasks, plan.size, plan.hold);
                match column
                    .lane
                    .run(flavor, bound, move |rt| sampler(rt, ops, tasks, size, hold))
                {
                    Ok(figures) => {
                        let per_op = 1.0 / figures.throughput;
                        slowest = Some(slowest.map_or(per_op, |s| s.max(per_op)));
                        column.throughput[f].push(figures.throughput);
                        column.waits[f].extend(figures.waits);
                        column.io[f].extend(figures.io);
                    }
                    Err(gone) => {
                        println!(
                            "realistic: {} {gone} ({flavor} runtime; bound {bound:.1?}); not measured again\n",
                            column.lane.name
                        );
                        column.gone[f] = Some(gone);
                    }
                }
            }
        }
        summary.push(print_table(&mut columns, plan, f, flavor));
    }
    println!("realistic summary: {}", summary.join("; "));
}

/// Milliseconds with two decimals.
fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Prints one flavor's table and the measured round trip; returns its part of the summary.
fn print_table(columns: &mut [Column], plan: &Plan, f: usize, flavor: Flavor) -> String {
    let header: Vec<String> = [
        "pool",
        "throughput (ops/s)",
        "pool-core vs this",
        "acquire wait p50 (ms)",
        "p99 (ms)",
        "p99.9 (ms)",
        "max (ms)",
    ]
    .map(String::from)
    .to_vec();
    let ours = columns[0].throughput[f].median();
    let mut rows = Vec::new();
    // The summary: throughput ratios, then p99 / max acquire waits.
    let mut ratios = Vec::new();
    let mut tails = Vec::new();
    let mut io = Vec::new();
    for (i, column) in columns.iter_mut().enumerate() {
        let name = column.lane.name;
        if let Some(gone) = column.gone[f] {
            rows.push(vec![
                name.to_string(),
                gone.to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
            ratios.push(format!("{name} {gone}"));
            continue;
        }
        let waits = &mut column.waits[f];
        waits.sort_unstable();
        let throughput = column.throughput[f].median();
        // p99.9 as well: a pool that lets a releasing task take its connection straight back
        // serves almost every acquire at once and starves a few callers, which only the far
        // tail shows.
        let (p50, p99, p999, max) = (
            percentile(waits, 0.50),
            percentile(waits, 0.99),
            percentile(waits, 0.999),
            waits.last().copied().unwrap_or_default(),
        );
        rows.push(vec![
            name.to_string(),
            column.throughput[f].cell(1.0, 0),
            format!("{:.2}x", ours / throughput),
            ms(p50),
            ms(p99),
            ms(p999),
            ms(max),
        ]);
        if i > 0 {
            ratios.push(format!("{:.2}x {name}", ours / throughput));
        }
        tails.push(format!("{name} {}/{}/{}", ms(p99), ms(p999), ms(max)));
        io.extend_from_slice(&column.io[f]);
    }
    io.sort_unstable();
    println!(
        "### realistic: {} tasks on {} connections, each holding its connection for a simulated {} µs round trip; fresh pool per sample, connections opened on demand; {flavor} runtime; {} ops per sample, median of {} (min–max); acquire waits over all samples\n",
        plan.tasks,
        plan.size,
        plan.hold.as_micros(),
        plan.ops,
        plan.samples
    );
    table(&header, &rows);
    println!(
        "\"pool-core vs this\" is our default column's throughput over this row's. The simulated round trip took p50 {:.0} µs, p99 {:.0} µs as the holding tasks saw it (target {} µs): a throughput ceiling of about {:.0} ops/s for {} connections.\n",
        percentile(&io, 0.5).as_secs_f64() * 1e6,
        percentile(&io, 0.99).as_secs_f64() * 1e6,
        plan.hold.as_micros(),
        plan.size as f64 / percentile(&io, 0.5).as_secs_f64(),
        plan.size
    );
    format!(
        "{flavor} pool-core {:.0} ops/s, {}; acquire wait p99/p99.9/max ms: {}",
        ours,
        ratios.join(", "),
        tails.join(", ")
    )
}
