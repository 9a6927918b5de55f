//! A pool of in-memory resources, exercised by concurrent tasks; needs no server.
//!
//! `cargo run --example in_memory`

use std::time::Duration;

use pool_drivers::{Manager, Pool};

/// Hands out scratch buffers, as a database manager would hand out sessions.
struct Buffers;

/// A pooled scratch buffer.
struct Buffer {
    data: Vec<u8>,
}

impl Manager for Buffers {
    type Connection = Buffer;
    type Error = std::io::Error;

    async fn connect(&self) -> Result<Buffer, std::io::Error> {
        // Opening a real connection takes a round trip or three.
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(Buffer {
            data: Vec::with_capacity(1024),
        })
    }

    async fn check(&self, _: &mut Buffer) -> Result<(), std::io::Error> {
        Ok(())
    }

    async fn reset(&self, buffer: &mut Buffer) -> Result<(), std::io::Error> {
        // The next borrower must not see this one's data.
        buffer.data.clear();
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::builder(Buffers)
        .max_size(4)
        .min_idle(1)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await?;

    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for round in 0..50 {
                    let mut buffer = pool.get().await?;
                    assert!(
                        buffer.data.is_empty(),
                        "reset cleared the previous borrower's data"
                    );
                    buffer
                        .data
                        .extend_from_slice(format!("task {task} round {round}").as_bytes());
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                Ok::<_, pool_drivers::Error<std::io::Error>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    let status = pool.status();
    let stats = pool.stats();
    println!("32 tasks x 50 acquires on a pool of {}", status.max_size);
    println!("connections opened: {}", stats.connects_ok);
    println!(
        "acquires: {} direct, {} waited, {} timed out",
        stats.acquires_direct, stats.acquires_waited, stats.acquires_timed_out
    );
    println!(
        "wait p50 {:?}, p95 {:?}, p99 {:?}, max {:?}",
        stats.wait_time.p50(),
        stats.wait_time.p95(),
        stats.wait_time.p99(),
        stats.wait_time.max()
    );
    println!("now: {status:?}");
    Ok(())
}
