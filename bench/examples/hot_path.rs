//! pool-core alone, for profilers (`perf record` or `valgrind --tool=callgrind` on
//! `cargo build --release -p pool-bench --example hot_path`), and what it is measured against.
//!
//! `hot_path [OPS]` runs the uncontended path (acquire an idle connection, drop it) on the
//! current-thread runtime. `hot_path OPS TASKS` runs TASKS tasks looping on it; with `hold`
//! each holds its connection across a `yield_now`, so most acquires wait. The pool has 8
//! connections (`size=N` for N, up to 64); `strict` serves waiters in strict FIFO order, and
//! `bound=N` lets them be overtaken for N µs (`Fairness::Bounded`; 500 by default);
//! `lifo` hands out the idle connection returned last (`IdleOrder::Lifo`); a last argument
//! `multi` runs the tasks on the multi-thread runtime.
//!
//! With one of these, the same tasks run on something else in place of the pool:
//! - `runtime`: nothing (the runtime's own floor);
//! - `tokens`: a token per connection in one atomic word, taken and put back with one atomic
//!   operation each, a task that finds none yielding and trying again. With a few tasks per
//!   token that is about the least a hand-off of connections between threads can cost; with
//!   many more, the retries cost more than parking would;
//! - `semaphore`: tokio's `Semaphore` with a permit per connection, carrying nothing: the
//!   cheapest hand-off that parks its waiters, as a pool must rather than spin;
//! - `deadpool`: deadpool's pool of unit connections, a peer in the same process.
//!
//! `hot_path OPS floor` measures the floor of the uncontended path: the atomic operations any
//! design with a shared, locked idle set and an owned guard pays per acquire + release (the
//! lock taken and released twice, the pool's `Arc` cloned into the guard and dropped), in a
//! loop with nothing else. `hot_path OPS lock-free-floor` measures the same for a design whose
//! idle set is lock-free: one atomic exchange to take a connection and one to put it back.

use std::sync::Arc;

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

/// A token per connection, one bit each: the least shared state a pool can have.
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

/// deadpool's manager of unit resources.
struct DeadpoolUnit;

impl deadpool::managed::Manager for DeadpoolUnit {
    type Type = ();
    type Error = std::io::Error;

    async fn create(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    async fn recycle(
        &self,
        _: &mut (),
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<std::io::Error> {
        Ok(())
    }
}

/// What runs in place of the pool in [`stand_in`], with what its tasks share.
#[derive(Clone)]
enum StandIn {
    /// Nothing.
    Runtime,
    /// [`Tokens`], one per connection.
    Tokens(Arc<Tokens>),
    /// tokio's `Semaphore` with a permit per connection.
    Semaphore(Arc<tokio::sync::Semaphore>),
    /// deadpool's pool.
    Deadpool(deadpool::managed::Pool<DeadpoolUnit>),
}

/// What a task holds in place of a connection; dropped, it goes back.
enum Held {
    /// Nothing (the `runtime` stand-in).
    Nothing,
    /// A token, and a clone of the `Arc` it goes back to, as a pool's guard holds.
    Token(u64, Arc<Tokens>),
    /// Held for its drop, which gives it back.
    Permit {
        _permit: tokio::sync::OwnedSemaphorePermit,
    },
    /// Held for its drop, which gives it back.
    Object {
        _object: deadpool::managed::Object<DeadpoolUnit>,
    },
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Held::Token(token, tokens) = self {
            tokens.put_back(*token);
        }
    }
}

impl StandIn {
    /// The stand-in called `name` (`runtime`, `tokens`, `semaphore` or `deadpool`) for a pool
    /// of `size`.
    fn named(name: &str, size: u32) -> Option<Self> {
        Some(match name {
            "runtime" => StandIn::Runtime,
            "tokens" => StandIn::Tokens(Arc::new(Tokens(std::sync::atomic::AtomicU64::new(
                u64::MAX >> (64 - size),
            )))),
            "semaphore" => StandIn::Semaphore(Arc::new(tokio::sync::Semaphore::new(size as usize))),
            "deadpool" => StandIn::Deadpool(
                deadpool::managed::Pool::builder(DeadpoolUnit)
                    .max_size(size as usize)
                    .build()
                    .expect("a unit pool builds"),
            ),
            _ => return None,
        })
    }

    /// Takes what stands in for a connection, waiting as the stand-in does.
    async fn take(&self) -> Held {
        match self {
            StandIn::Runtime => Held::Nothing,
            StandIn::Tokens(tokens) => Held::Token(tokens.take().await, Arc::clone(tokens)),
            StandIn::Semaphore(permits) => Held::Permit {
                _permit: Arc::clone(permits)
                    .acquire_owned()
                    .await
                    .expect("the semaphore stays open"),
            },
            StandIn::Deadpool(pool) => Held::Object {
                _object: pool.get().await.expect("unit acquire"),
            },
        }
    }

    /// What the figure printed is of.
    fn describe(&self) -> &'static str {
        match self {
            StandIn::Runtime => "no pool",
            StandIn::Tokens(_) => "token hand-off",
            StandIn::Semaphore(_) => "tokio semaphore",
            StandIn::Deadpool(_) => "deadpool",
        }
    }
}

/// The loop of `tasks` tasks on `what` in place of the pool; `hold` as in the pool's loop.
async fn stand_in(ops: u32, tasks: u32, hold: bool, what: StandIn) {
    let start = std::time::Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let what = what.clone();
            tokio::spawn(async move {
                for _ in 0..ops / tasks {
                    let held = std::hint::black_box(what.take().await);
                    if hold {
                        tokio::task::yield_now().await;
                    }
                    drop(held);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(ops);
    println!("{ns:.1} ns per operation ({})", what.describe());
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
    let size = args
        .iter()
        .find_map(|a| a.strip_prefix("size="))
        .map_or(8, |n| {
            n.parse()
                .ok()
                .filter(|size| (1..=64).contains(size))
                .expect("size=N takes a number of connections from 1 to 64")
        });
    let multi = args.last().is_some_and(|a| a == "multi");
    let bound = args
        .iter()
        .find_map(|a| a.strip_prefix("bound="))
        .map(|us| {
            us.parse()
                .map(std::time::Duration::from_micros)
                .expect("bound=N takes the fairness bound in microseconds")
        });
    let fairness = if args.iter().any(|a| a == "strict") {
        pool_core::Fairness::Strict
    } else {
        bound.map_or_else(pool_core::Fairness::default, pool_core::Fairness::Bounded)
    };
    let idle_order = if args.iter().any(|a| a == "lifo") {
        pool_core::IdleOrder::Lifo
    } else {
        pool_core::IdleOrder::Fifo
    };
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()
    .expect("a tokio runtime");
    if let Some(what) = args.iter().find_map(|a| StandIn::named(a, size)) {
        return rt.block_on(stand_in(ops, tasks, hold, what));
    }
    rt.block_on(async {
        let pool = Pool::builder(Unit)
            .fairness(fairness)
            .max_size(size as usize)
            .initial_size(size as usize)
            .idle_order(idle_order)
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
