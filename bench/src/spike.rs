//! The `spike` suite, after HikariCP's spike demand test: a pool with 5 idle connections (at
//! most 50) whose connects take 150 ms gets 50 requests at once, each holding its connection
//! for 2 ms. The 5 idle connections can serve all 50 in about 20 ms, long before a new
//! connection could be ready; a pool that makes a caller wait for a connection it opens for
//! that caller serves the last one after 150 ms or more, and opens connections nobody needed.
//!
//! Per pool: the time from the 50 requests' start until the last one released its connection,
//! and the connections opened because of the spike (counted by the manager, after waiting long
//! enough for connects already started to finish).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::contenders::{Bb8, Contender, Deadpool, Mobc, Ours, OursDefault, Qp, Setup};
use crate::isolate::{limit, Flavor, Gone, Lane};
use crate::report::{table, Samples};
use crate::roundtrip::round_trip;

/// The shape of the spike.
const MIN_IDLE: usize = 5;
/// Most connections.
const MAX_SIZE: usize = 50;
/// Requests arriving at once.
const REQUESTS: usize = 50;
/// How long a connect takes.
const CONNECT: Duration = Duration::from_millis(150);
/// How long each request holds its connection.
const HOLD: Duration = Duration::from_millis(2);
/// How long after the last request the suite waits before counting connections: a connect
/// started during the spike has finished by then.
const SETTLE: Duration = Duration::from_millis(CONNECT.as_millis() as u64 + 250);

/// What the run measures and how long.
pub struct Plan {
    /// Samples per pool.
    pub samples: usize,
}

impl Plan {
    /// The published figures: 7 samples per pool.
    pub fn full() -> Self {
        Plan { samples: 7 }
    }

    /// A short run that keeps the suite working: 1 sample per pool.
    pub fn quick() -> Self {
        Plan { samples: 1 }
    }
}

/// What one sample measured.
struct Figures {
    /// Seconds from the spike's start until the last request released its connection.
    served: f64,
    /// Connections opened after the pool had its idle ones.
    opened: usize,
}

/// One column: its lane, how it samples, and what it gathered.
struct Column {
    lane: Lane,
    sampler: fn(&Runtime) -> Figures,
    /// How it was configured, printed under the table.
    config: &'static str,
    served: Samples,
    opened: Samples,
    gone: Option<Gone>,
}

impl Column {
    fn of<C: Contender>(config: &'static str) -> Self {
        Column {
            lane: Lane::new(C::NAME),
            sampler: sample::<C>,
            config,
            served: Samples::default(),
            opened: Samples::default(),
            gone: None,
        }
    }
}

/// One spike on a new pool of `C`.
fn sample<C: Contender>(rt: &Runtime) -> Figures {
    rt.block_on(async {
        let setup = Setup {
            max_size: MAX_SIZE,
            min_idle: MIN_IDLE,
            connect_delay: CONNECT,
            opened: Arc::default(),
        };
        let pool = C::build(&setup).await;
        let before = setup.opened.load(Ordering::Relaxed);
        let start = Instant::now();
        let requests: Vec<_> = (0..REQUESTS)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let conn = pool.get().await;
                    round_trip(HOLD).await;
                    drop(conn);
                })
            })
            .collect();
        for request in requests {
            request.await.expect("spike request");
        }
        let served = start.elapsed().as_secs_f64();
        tokio::time::sleep(SETTLE).await;
        Figures {
            served,
            opened: setup.opened.load(Ordering::Relaxed) - before,
        }
    })
}

/// Every column, ours first so that the peers' bounds have a reference.
fn columns() -> Vec<Column> {
    vec![
        Column::of::<Ours<OursDefault>>(
            "`max_size(50).min_idle(5).initial_size(5)`, defaults otherwise (at most 4 connects at once)",
        ),
        Column::of::<Deadpool>(
            "`max_size(50)`; no minimum idle setting: 5 connections opened by holding 5 at once, then returned",
        ),
        Column::of::<Bb8>("`max_size(50).min_idle(Some(5))`"),
        Column::of::<Qp>("`Pool::new(manager, 50)`, then `reserve(5)`"),
        Column::of::<Mobc>(
            "`max_open(50).max_idle(50)` (the default `max_idle` of 2 would close 3 of the 5); 5 opened by holding 5 at once, then returned",
        ),
    ]
}

/// Runs the suite and prints its table and summary line.
pub fn run(plan: &Plan) {
    // The multi-thread runtime, as a service runs; the spike is about the pool's policy, not
    // the scheduler.
    let flavor = Flavor::MultiThread;
    let mut columns = columns();
    let mut slowest: Option<f64> = None;
    for _ in 0..plan.samples {
        for column in &mut columns {
            if column.gone.is_some() {
                continue;
            }
            // Building takes up to 5 connects one after the other, and counting waits SETTLE.
            let setup = CONNECT * (MIN_IDLE as u32 + 1) + SETTLE;
            let bound = limit(slowest, 1, setup, Duration::from_secs(5));
            let sampler = column.sampler;
            match column.lane.run(flavor, bound, sampler) {
                Ok(figures) => {
                    slowest = Some(slowest.map_or(figures.served, |s| s.max(figures.served)));
                    column.served.push(figures.served);
                    column.opened.push(figures.opened as f64);
                }
                Err(gone) => {
                    println!(
                        "spike: {} {gone} (bound {bound:.1?}); not measured again\n",
                        column.lane.name
                    );
                    column.gone = Some(gone);
                }
            }
        }
    }
    let header: Vec<String> = [
        "pool",
        "all 50 served (ms)",
        "connections opened by the spike",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    let mut parts = Vec::new();
    for column in &columns {
        let name = column.lane.name;
        if let Some(gone) = column.gone {
            rows.push(vec![name.to_string(), gone.to_string(), "-".into()]);
            parts.push(format!("{name} {gone}"));
            continue;
        }
        rows.push(vec![
            name.to_string(),
            column.served.cell(1e3, 1),
            column.opened.cell(1.0, 0),
        ]);
        parts.push(format!(
            "{name} {:.0} ms, {:.0} opened",
            column.served.median() * 1e3,
            column.opened.median()
        ));
    }
    println!(
        "### spike: {REQUESTS} requests at once on a pool with {MIN_IDLE} idle connections (at most {MAX_SIZE}), connect {} ms, each request holding {} ms (simulated round trip); {flavor} runtime; median of {} (min–max)\n",
        CONNECT.as_millis(),
        HOLD.as_millis(),
        plan.samples
    );
    table(&header, &rows);
    for column in &columns {
        println!("- {}: {}", column.lane.name, column.config);
    }
    println!();
    println!("spike summary: {}", parts.join(", "));
}
