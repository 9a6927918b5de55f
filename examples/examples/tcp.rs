//! A pool of plain TCP connections to a line-echo service, with a handshake and a health
//! probe.
//!
//! `cargo run --example tcp` starts its own echo server on a loopback port; set `TCP_URL`
//! (e.g. `tcp://127.0.0.1:7000`) to use a service of your own that echoes each line back.

use std::time::{Duration, Instant};

use pool_drivers::tcp::{AsyncReadExt, AsyncWriteExt, BoxError, Config, TcpStream};
use pool_drivers::DriverConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

/// Sends one line and reads the echo, exactly as many bytes as were sent, so nothing is left
/// unread on the connection (the pool would discard a connection with unread bytes).
async fn request(stream: &mut TcpStream, line: &str) -> Result<String, BoxError> {
    stream.write_all(line.as_bytes()).await?;
    stream.write_all(b"\n").await?;
    let mut reply = vec![0; line.len() + 1];
    stream.read_exact(&mut reply).await?;
    Ok(String::from_utf8(reply)?.trim_end().to_owned())
}

/// A line-echo server for when no `TCP_URL` is given.
async fn start_echo_server() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("tcp://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    Ok(url)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let url = match std::env::var("TCP_URL") {
        Ok(url) => url,
        Err(_) => start_echo_server().await?,
    };
    println!("talking to {url}");

    let mut config = Config::from_url(&url)?
        // Runs once per new connection: a greeting the server must answer.
        .handshake(|stream| {
            Box::pin(async move {
                let reply = request(stream, "HELLO").await?;
                if reply != "HELLO" {
                    return Err(format!("unexpected greeting {reply:?}").into());
                }
                Ok(())
            })
        })
        // Runs when a connection has been idle a while: proves the server still answers.
        .probe(|stream| {
            Box::pin(async move {
                request(stream, "PING").await?;
                Ok(())
            })
        });
    config.keepalive = Some(Duration::from_secs(60));
    config.pool.max_size = 4;
    config.pool.acquire_timeout = Some(Duration::from_secs(5));
    let pool = config.build_pool_lazy()?;

    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let mut conn = pool.get().await?;
                    let sent = format!("task {task} request {i}");
                    let reply = request(&mut conn, &sent).await?;
                    assert_eq!(reply, sent, "a reply went to the wrong borrower");
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    let stats = pool.stats();
    println!(
        "400 requests by 16 tasks in {:?} over {} connections",
        started.elapsed(),
        stats.connects_ok
    );
    println!(
        "acquires: {} direct, {} waited; wait p50 {:?}, p99 {:?}, max {:?}",
        stats.acquires_direct,
        stats.acquires_waited,
        stats.wait_time.p50(),
        stats.wait_time.p99(),
        stats.wait_time.max()
    );
    println!("now: {:?}", pool.status());
    Ok(())
}
