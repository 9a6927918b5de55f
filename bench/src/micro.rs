//! The `micro` suite: acquire + release throughput with a unit resource.

use std::time::Instant;

use tokio::runtime::{Builder, Runtime};

use crate::contenders::{Bb8, Contender, Deadpool, Ours};
use crate::report::{table, Samples};

/// The shape of one measured configuration.
#[derive(Clone, Copy)]
struct Shape {
    size: usize,
    tasks: usize,
    hold: bool,
}

/// What the run measures and how long.
pub struct Plan {
    /// Operations per sample.
    pub ops: usize,
    /// Samples per figure.
    pub samples: usize,
    /// Pool sizes.
    pub sizes: &'static [usize],
    /// Concurrent tasks.
    pub tasks: &'static [usize],
}

impl Plan {
    /// The full run of the issue: 1,048,576 operations, 7 samples.
    pub fn full() -> Self {
        Plan {
            ops: 1 << 20,
            samples: 7,
            sizes: &[8, 32],
            tasks: &[16, 64, 256],
        }
    }

    /// A short run that only proves the suite works.
    pub fn quick() -> Self {
        Plan {
            ops: 1 << 14,
            samples: 3,
            sizes: &[8],
            tasks: &[16, 256],
        }
    }
}

fn runtime(multi: bool) -> Runtime {
    let mut builder = if multi {
        Builder::new_multi_thread()
    } else {
        Builder::new_current_thread()
    };
    builder.enable_all().build().expect("a tokio runtime")
}

/// Seconds for `ops` operations spread over `shape.tasks` tasks.
async fn sample<C: Contender>(pool: &C, shape: Shape, ops: usize) -> f64 {
    let per_task = ops / shape.tasks;
    let start = Instant::now();
    let tasks: Vec<_> = (0..shape.tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    pool.cycle(shape.hold).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("bench task");
    }
    start.elapsed().as_secs_f64() / (per_task * shape.tasks) as f64
}

/// Seconds per operation, one figure per pool, the pools taking turns within each round.
fn measure(rt: &Runtime, shape: Shape, plan: &Plan) -> [Samples; 3] {
    rt.block_on(async {
        let ours = Ours::build(shape.size).await;
        let deadpool = Deadpool::build(shape.size).await;
        let bb8 = Bb8::build(shape.size).await;
        let mut out: [Samples; 3] = Default::default();
        // One unmeasured round warms caches and allocator for every pool alike.
        sample(&ours, shape, plan.ops / 8).await;
        sample(&deadpool, shape, plan.ops / 8).await;
        sample(&bb8, shape, plan.ops / 8).await;
        for _ in 0..plan.samples {
            out[0].push(sample(&ours, shape, plan.ops).await);
            out[1].push(sample(&deadpool, shape, plan.ops).await);
            out[2].push(sample(&bb8, shape, plan.ops).await);
        }
        out
    })
}

/// Runs the suite and prints its tables and summary line.
pub fn run(plan: &Plan) {
    let mut worst = [[f64::INFINITY; 2]; 2];
    for (flavor, multi) in [("current-thread", false), ("multi-thread", true)] {
        let rt = runtime(multi);
        let header: Vec<String> = ["size", "tasks", "hold"]
            .into_iter()
            .map(String::from)
            .chain([Ours::NAME, Deadpool::NAME, Bb8::NAME].map(|n| format!("{n} (Mops/s)")))
            .chain([Deadpool::NAME, Bb8::NAME].map(|n| format!("vs {n}")))
            .collect();
        let mut rows = Vec::new();
        for &hold in &[false, true] {
            for &size in plan.sizes {
                for &tasks in plan.tasks {
                    let shape = Shape { size, tasks, hold };
                    let [ours, deadpool, bb8] = measure(&rt, shape, plan);
                    // Throughput ratio: their time per operation over ours.
                    let vs_deadpool = deadpool.median() / ours.median();
                    let vs_bb8 = bb8.median() / ours.median();
                    let w = &mut worst[usize::from(multi)];
                    w[0] = w[0].min(vs_deadpool);
                    w[1] = w[1].min(vs_bb8);
                    let mops = |s: &Samples| {
                        let mut inv = Samples::default();
                        for &v in &s.raw() {
                            inv.push(1.0 / v);
                        }
                        inv.cell(1e-6, 2)
                    };
                    rows.push(vec![
                        size.to_string(),
                        tasks.to_string(),
                        if hold { "yield" } else { "-" }.to_string(),
                        mops(&ours),
                        mops(&deadpool),
                        mops(&bb8),
                        format!("{vs_deadpool:.2}x"),
                        format!("{vs_bb8:.2}x"),
                    ]);
                }
            }
        }
        println!(
            "### micro, {flavor} runtime, {} ops per sample, median of {} (min–max)\n",
            plan.ops, plan.samples
        );
        table(&header, &rows);
        let uncontended = measure(
            &rt,
            Shape {
                size: 8,
                tasks: 1,
                hold: false,
            },
            plan,
        );
        let header: Vec<String> = ["", Ours::NAME, Deadpool::NAME, Bb8::NAME]
            .map(String::from)
            .to_vec();
        let row = std::iter::once("uncontended acquire + release (ns/op)".to_string())
            .chain(uncontended.iter().map(|s| s.cell(1e9, 1)))
            .collect();
        table(&header, &[row]);
    }
    println!(
        "micro summary: worst ratio vs deadpool {:.2}, vs bb8 {:.2} (current-thread); {:.2}, {:.2} (multi-thread)",
        worst[0][0], worst[0][1], worst[1][0], worst[1][1]
    );
}
