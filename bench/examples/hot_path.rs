//! pool-core alone on the current-thread runtime, for profilers (`perf record` or
//! `valgrind --tool=callgrind` on `cargo build --release -p pool-bench --example hot_path`).
//!
//! `hot_path [OPS]` runs the uncontended path (acquire an idle connection, drop it);
//! `hot_path OPS TASKS hold` runs TASKS tasks on 8 connections that hold each one across a
//! `yield_now`, so most acquires wait. A last argument `multi` runs them on the multi-thread
//! runtime instead; an argument `strict` (before `multi`) serves waiters in strict FIFO order.
//! An argument `tokens` (before `multi`) runs the same tasks on the cheapest hand-off there is
//! in place of the pool: 8 tokens in one atomic word, taken and put back with one atomic
//! operation each, a task that finds none yielding and trying again. With a few tasks per
//! token it is about the least a pool whose connections move between threads can cost (with
//! many more, the retries cost more than parking would); `runtime` runs the loop with no pool
//! at all (the runtime's own floor). Both work with or without `hold`.
//!
//! `hot_path OPS floor` measures the floor of the uncontended path: the atomic operations any
//! design with a shared, locked idle set and an owned guard pays per acquire + release (the
//! lock taken and released twice, the pool's `Arc` cloned into the guard and dropped), in a
//! loop with nothing else. `hot_path OPS lock-free-floor` measures the same for a design whose
//! idle set is lock-free: one atomic exchange to take a connection and one to put it back.

use pool_core::{Manager, Pool};

/// A manager of unit resources.
struct Unit;

impl Manager for Unit {
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    async fn check(&self, _: &mut ()) -> Result<(), std::io::Error> {
        Ok(())
    }

    /// A unit resource keeps no session state, so there is never anything to reset.
    fn needs_reset(&self, _: &mut ()) -> bool {
        false
    }
}

/// The uncontended path's floor: two lock/unlock pairs and an `Arc` clone and drop per
/// operation, around the least work that keeps them from being optimised away.
fn floor(ops: u32) {
    let shared = std::sync::Arc::new(std::sync::Mutex::new(0_u64));
    let start = std::time::Instant::now();
    for _ in 0..ops {
        *shared.lock().expect("unpoisoned") += 1;
        let guard = std::hint::black_box(std::sync::Arc::clone(&shared));
        *guard.lock().expect("unpoisoned") -= 1;
        drop(guard);
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(ops);
    println!("{ns:.1} ns per two lock/unlock pairs and an Arc clone and drop");
}

/// 8 tokens, one bit each: the least shared state a pool of 8 connections can have.
struct Tokens(std::sync::atomic::AtomicU64);

impl Tokens {
    /// Takes a token, yielding to the runtime until one is free.
    async fn take(&self) -> u64 {
        use std::sync::atomic::Ordering;
        loop {
            let free = self.0.load(Ordering::Acquire);
            let token = free & free.wrapping_neg();
            if token == 0 {
                tokio::task::yield_now().await;
            } else if self
                .0
                .compare_exchange(free, free & !token, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return token;
            }
        }
    }

    fn put_back(&self, token: u64) {
        self.0.fetch_or(token, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The loop of `tasks` tasks on `Tokens` instead of the pool (`tokens`), or with nothing in
/// place of the pool (`runtime`); `hold` as in the pool's loop.
async fn tasks_floor(ops: u32, tasks: u32, hold: bool, tokens: bool) {
    let shared = std::sync::Arc::new(Tokens(std::sync::atomic::AtomicU64::new(0xff)));
    let start = std::time::Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let shared = std::sync::Arc::clone(&shared);
            tokio::spawn(async move {
                for _ in 0..ops / tasks {
                    let held = if tokens {
                        let token = shared.take().await;
                        Some((token, std::hint::black_box(std::sync::Arc::clone(&shared))))
                    } else {
                        None
                    };
                    if hold {
                        tokio::task::yield_now().await;
                    }
                    if let Some((token, guard)) = held {
                        guard.put_back(token);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(ops);
    let what = if tokens { "token hand-off" } else { "no pool" };
    println!("{ns:.1} ns per operation ({what})");
}

/// The floor of a lock-free idle set: one atomic exchange per acquire and one per release, and
/// the `Arc` cloned and dropped.
fn lock_free_floor(ops: u32) {
    let shared = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
    let start = std::time::Instant::now();
    for _ in 0..ops {
        let taken = shared.swap(0, std::sync::atomic::Ordering::AcqRel);
        let guard = std::hint::black_box(std::sync::Arc::clone(&shared));
        guard.swap(taken, std::sync::atomic::Ordering::AcqRel);
        drop(guard);
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(ops);
    println!("{ns:.1} ns per two atomic exchanges and an Arc clone and drop");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number =
        |i: usize, default: u32| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    let ops = number(1, 10_000_000);
    match args.get(2).map(String::as_str) {
        Some("floor") => return floor(ops),
        Some("lock-free-floor") => return lock_free_floor(ops),
        _ => {}
    }
    let tasks = number(2, 1);
    let hold = args.iter().any(|a| a == "hold");
    let multi = args.last().is_some_and(|a| a == "multi");
    let fairness = if args.iter().any(|a| a == "strict") {
        pool_core::Fairness::Strict
    } else {
        pool_core::Fairness::default()
    };
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()
    .expect("a tokio runtime");
    let floor = ["tokens", "runtime"]
        .into_iter()
        .find(|f| args.iter().any(|a| a == f));
    if let Some(floor) = floor {
        return rt.block_on(tasks_floor(ops, tasks, hold, floor == "tokens"));
    }
    rt.block_on(async {
        let pool = Pool::builder(Unit)
            .fairness(fairness)
            .max_size(8)
            .initial_size(8)
            .build()
            .await
            .expect("unit pool");
        let start = std::time::Instant::now();
        let workers: Vec<_> = (0..tasks)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for _ in 0..ops / tasks {
                        let conn = pool.get().await.expect("unit acquire");
                        if hold {
                            tokio::task::yield_now().await;
                        }
                        drop(conn);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("worker");
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(ops);
        println!("{ns:.1} ns per acquire + release");
    });
}
