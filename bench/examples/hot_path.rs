//! The uncontended hot path of pool-core alone (acquire an idle connection, drop it), for
//! profilers: `perf record` or `valgrind --tool=callgrind` on
//! `cargo build --release -p pool-bench --example hot_path`.

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
}

fn main() {
    let ops: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let pool = Pool::builder(Unit)
            .max_size(8)
            .initial_size(8)
            .build()
            .await
            .expect("unit pool");
        let start = std::time::Instant::now();
        for _ in 0..ops {
            drop(pool.get().await.expect("unit acquire"));
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(ops);
        println!("{ns:.1} ns per acquire + release");
    });
}
