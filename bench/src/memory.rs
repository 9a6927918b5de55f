//! The `memory` suite: what each pool costs in memory, measured in a fresh process per figure
//! so that one pool's freed memory cannot hide another's.
//!
//! - Bytes per idle connection: resident memory grown by building a pool of many unit
//!   connections, divided by their number (the connections themselves are zero-sized, so this
//!   is the pool's own bookkeeping), after a small pool was built and dropped, so that the
//!   code and runtime state every pool brings in once are not counted.
//! - Peak resident memory with many callers queued on a pool of one held connection: each
//!   caller is a task whose future is the pool's acquire future, so this is mostly that
//!   future's size plus the pool's queue entry.

use std::process::Command;
use std::time::Duration;

use crate::contenders::{Bb8, Contender, Deadpool, Ours, OursDefault, Setup};
use crate::report::Samples;

/// Connections and waiters per measurement.
pub struct Plan {
    connections: usize,
    waiters: usize,
    samples: usize,
}

impl Plan {
    /// The published figures.
    pub fn full() -> Self {
        Plan {
            connections: 100_000,
            waiters: 10_000,
            samples: 7,
        }
    }

    /// A short run that keeps the suite working.
    pub fn quick() -> Self {
        Plan {
            connections: 10_000,
            waiters: 10_000,
            samples: 1,
        }
    }
}

/// Connections in the pool built and dropped before the one measured.
const WARM_UP: usize = 64;

const NAMES: [&str; 3] = [Ours::<OursDefault>::NAME, Deadpool::NAME, Bb8::NAME];

pub fn run(plan: &Plan) {
    let mut idle = [(); 3].map(|()| Samples::default());
    let mut waiting = [(); 3].map(|()| Samples::default());
    // Pools alternate within the run, one fresh process each.
    for _ in 0..plan.samples {
        for (i, name) in NAMES.iter().enumerate() {
            idle[i].push(probe(name, "idle", plan.connections));
            waiting[i].push(probe(name, "waiters", plan.waiters));
        }
    }
    println!(
        "### memory, {} idle connections, {} queued callers, median of {}\n",
        plan.connections, plan.waiters, plan.samples
    );
    println!(
        "| figure | {} | {} | {} | vs {} | vs {} |",
        NAMES[0], NAMES[1], NAMES[2], NAMES[1], NAMES[2]
    );
    println!("|---|---|---|---|---|---|");
    let row = |label: &str, s: &[Samples; 3], scale: f64, digits: usize| {
        println!(
            "| {label} | {} | {} | {} | {:.2}x | {:.2}x |",
            s[0].cell(scale, digits),
            s[1].cell(scale, digits),
            s[2].cell(scale, digits),
            s[0].median() / s[1].median(),
            s[0].median() / s[2].median(),
        );
    };
    row("bytes per idle connection", &idle, 1.0, 0);
    row(
        &format!("peak RSS with {} callers queued (MiB)", plan.waiters),
        &waiting,
        1.0 / (1024.0 * 1024.0),
        1,
    );
    println!(
        "\nmemory summary: bytes per idle connection {:.0} (deadpool {:.0}, bb8 {:.0}); peak RSS with {} queued {:.1} MiB (deadpool {:.1}, bb8 {:.1})",
        idle[0].median(),
        idle[1].median(),
        idle[2].median(),
        plan.waiters,
        waiting[0].median() / 1048576.0,
        waiting[1].median() / 1048576.0,
        waiting[2].median() / 1048576.0,
    );
}

/// Runs one measurement in a child process and returns its figure.
fn probe(pool: &str, what: &str, n: usize) -> f64 {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let out = Command::new(exe)
        .args(["memory-probe", pool, what, &n.to_string()])
        .output()
        .expect("the probe process runs");
    assert!(
        out.status.success(),
        "memory probe {pool} {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the probe prints one number")
}

/// The child's side: measures one figure for one pool and prints it.
pub fn probe_main(args: &[String]) {
    let [pool, what, n] = args else {
        panic!("usage: memory-probe <pool> <idle|waiters> <n>");
    };
    let n: usize = n.parse().expect("a count");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let figure = rt.block_on(async {
        match pool.as_str() {
            p if p == Ours::<OursDefault>::NAME => measure::<Ours<OursDefault>>(what, n).await,
            p if p == Deadpool::NAME => measure::<Deadpool>(what, n).await,
            p if p == Bb8::NAME => measure::<Bb8>(what, n).await,
            other => panic!("unknown pool {other}"),
        }
    });
    println!("{figure}");
}

async fn measure<C: Contender>(what: &str, n: usize) -> f64 {
    match what {
        "idle" => {
            // A first pool, built and dropped, brings the pool's code and the runtime's timer
            // into memory, which the figure is not about: the first connection of a pool would
            // otherwise carry a megabyte of code pages, spread over the connections.
            drop(C::build(&Setup::unit(WARM_UP, WARM_UP)).await);
            let before = resident();
            let pool = C::build(&Setup::unit(n, n)).await;
            let grown = resident().saturating_sub(before);
            drop(pool);
            grown as f64 / n as f64
        }
        "waiters" => {
            let pool = C::build(&Setup::unit(1, 1)).await;
            let held = pool.keep().await;
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        drop(pool.keep().await);
                    })
                })
                .collect();
            // Every task gets polled and queues.
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let peak = peak_resident();
            drop(held);
            for task in tasks {
                task.await.expect("a queued caller finishes");
            }
            peak as f64
        }
        other => panic!("unknown figure {other}"),
    }
}

/// Resident memory now, in bytes.
fn resident() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// The most resident memory this process has had, in bytes.
fn peak_resident() -> u64 {
    status_kib("VmHWM:") * 1024
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("the field is in /proc/self/status")
}
