//! The TCP driver against an echo server each test starts on a loopback port of its own.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_drivers::tcp::{AsyncReadExt, AsyncWriteExt, Config, Error, Permanent, TcpStream};
use pool_drivers::DriverConfig;
use pool_drivers::{CloseReason, ErrorKind, Manager as _};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An echo server on 127.0.0.1 that can close every connection it accepted.
struct EchoServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    close_all: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl EchoServer {
    async fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (close_all, closes) = watch::channel(0u64);
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(echo(stream, closes.clone()));
            }
        });
        EchoServer {
            addr,
            accepted,
            close_all,
            task,
        }
    }

    fn config(&self) -> Config {
        let mut config = Config::from_url(&format!("tcp://{}", self.addr)).unwrap();
        config.pool.acquire_timeout = Some(Duration::from_secs(5));
        config
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes every connection accepted so far, from the server's side.
    fn close_all(&self) {
        self.close_all.send_modify(|generation| *generation += 1);
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
        // Dropping the sender ends every connection task too.
    }
}

async fn echo(mut stream: TcpStream, mut closes: watch::Receiver<u64>) {
    closes.borrow_and_update();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            // A change or a dropped sender both mean: close.
            _ = closes.changed() => return,
        }
    }
}

/// Sends `message` and reads the echo back.
async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    stream.write_all(message).await?;
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).await?;
    if reply != message {
        return Err(io::Error::other(format!("sent {message:?}, got {reply:?}")));
    }
    Ok(())
}

#[tokio::test]
async fn get_use_return_reuses_the_connection() {
    let server = EchoServer::start().await;
    let pool = server.config().build_pool_lazy().unwrap();
    for i in 0..5 {
        let mut conn = pool.get().await.unwrap();
        round_trip(&mut conn, format!("hello {i}\n").as_bytes())
            .await
            .unwrap();
    }
    assert_eq!(pool.stats().connects_ok, 1);
    assert_eq!(server.accepted(), 1);
    assert_eq!(pool.status().idle, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_few_connections() {
    let server = EchoServer::start().await;
    let mut config = server.config();
    config.pool.max_size = 3;
    let pool = config.build_pool_lazy().unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|task| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let mut conn = pool.get().await?;
                    // Each reply must be this task's own: a connection mixed up between
                    // borrowers would show here.
                    round_trip(&mut conn, format!("task {task} message {i}\n").as_bytes())
                        .await
                        .map_err(|e| format!("task {task}: {e}"))?;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stats = pool.stats();
    assert!(stats.connects_ok <= 3, "{stats:?}");
    assert_eq!(stats.acquires_direct + stats.acquires_waited, 400);
    assert!(server.accepted() <= 3);
}

#[tokio::test]
async fn check_sees_a_closed_peer_without_reading() {
    let server = EchoServer::start().await;
    let manager = server.config().manager().unwrap();
    let mut stream = manager.connect().await.unwrap();
    manager.check(&mut stream).await.unwrap();
    assert!(!manager.has_broken(&mut stream));

    // Bytes waiting are left where they are: the check only peeks.
    stream.write_all(b"unread\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(
        manager.check(&mut stream).await,
        Err(Error::UnreadData)
    ));
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"unread\n");
    manager.check(&mut stream).await.unwrap();

    server.close_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = manager.check(&mut stream).await.unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert!(manager.has_broken(&mut stream));
}

#[tokio::test]
async fn a_closed_connection_is_replaced() {
    let server = EchoServer::start().await;
    let pool = server.config().build_pool_lazy().unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        round_trip(&mut conn, b"before\n").await.unwrap();
    }
    server.close_all();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut conn = pool.get().await.unwrap();
    round_trip(&mut conn, b"after\n").await.unwrap();
    let stats = pool.stats();
    assert_eq!(stats.connects_ok, 2, "{stats:?}");
    // Found on the way out, by whichever look comes first: `has_broken` (a peek), the reset
    // or the check.
    assert_eq!(
        stats.closes.get(CloseReason::Broken)
            + stats.closes.get(CloseReason::ResetFailed)
            + stats.closes.get(CloseReason::CheckFailed),
        1,
        "{stats:?}"
    );
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn a_reply_left_unread_is_not_handed_on() {
    let server = EchoServer::start().await;
    let pool = server.config().build_pool_lazy().unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        // A request whose reader went away: the reply arrives while the guard is still held.
        conn.write_all(b"abandoned\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pool.stats().closes.get(CloseReason::Broken), 1);

    let mut conn = pool.get().await.unwrap();
    round_trip(&mut conn, b"fresh\n").await.unwrap();
    assert_eq!(pool.stats().connects_ok, 2);
}

#[tokio::test]
async fn handshake_and_probe_hooks_run() {
    let server = EchoServer::start().await;
    let handshakes = Arc::new(AtomicUsize::new(0));
    let probes = Arc::new(AtomicUsize::new(0));
    let mut config = {
        let handshakes = handshakes.clone();
        let probes = probes.clone();
        server
            .config()
            .handshake(move |stream| {
                let handshakes = handshakes.clone();
                Box::pin(async move {
                    round_trip(stream, b"HELLO\n").await?;
                    handshakes.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            })
            .probe(move |stream| {
                let probes = probes.clone();
                Box::pin(async move {
                    round_trip(stream, b"PING\n").await?;
                    probes.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            })
    };
    config.pool.skip_check_within = Duration::from_millis(10);
    let pool = config.build_pool_lazy().unwrap();
    for i in 0..3 {
        let mut conn = pool.get().await.unwrap();
        round_trip(&mut conn, format!("work {i}\n").as_bytes())
            .await
            .unwrap();
        drop(conn);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
    // The first checkout follows the connect; the other two come after an idle spell.
    assert!(probes.load(Ordering::SeqCst) >= 2, "{probes:?}");
    assert_eq!(pool.stats().checks_failed, 0);
}

#[tokio::test]
async fn a_failing_probe_replaces_the_connection() {
    let server = EchoServer::start().await;
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut config = {
        let fail = fail.clone();
        server.config().probe(move |_| {
            let fail = fail.load(Ordering::SeqCst);
            Box::pin(async move {
                if fail {
                    Err("the server says it is draining".into())
                } else {
                    Ok(())
                }
            })
        })
    };
    config.pool.skip_check_within = Duration::from_millis(10);
    let pool = config.build_pool_lazy().unwrap();
    drop(pool.get().await.unwrap());
    fail.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(30)).await;
    // The idle connection fails its probe and is closed; a fresh one (which needs no check,
    // it was just opened) takes its place.
    let mut conn = pool.get().await.unwrap();
    let stats = pool.stats();
    assert_eq!(stats.checks_failed, 1, "{stats:?}");
    assert_eq!(stats.closes.get(CloseReason::CheckFailed), 1, "{stats:?}");
    assert_eq!(stats.connects_ok, 2, "{stats:?}");
    assert_eq!(server.accepted(), 2);
    round_trip(&mut conn, b"replaced\n").await.unwrap();
}

#[tokio::test]
async fn a_permanent_handshake_error_is_reported_at_once() {
    let server = EchoServer::start().await;
    let config = server
        .config()
        .handshake(|_| Box::pin(async { Err(Permanent::new("server refused our token").into()) }));
    let pool = config.build_pool_lazy().unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{err:?}");
    let backend = err.backend().expect("the handshake error");
    assert!(matches!(backend, Error::Handshake(_)), "{backend:?}");
    assert_eq!(pool.manager().classify(backend), ErrorKind::Permanent);
    let source = std::error::Error::source(backend).unwrap().to_string();
    assert_eq!(source, "server refused our token");
}

#[tokio::test]
async fn a_refused_port_ends_at_the_deadline_with_the_refusal() {
    let mut config = Config::from_url("tcp://127.0.0.1:1").unwrap();
    config.pool.acquire_timeout = Some(Duration::from_millis(500));
    let pool = config.build_pool_lazy().unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.is_timeout(), "{err:?}");
    match err.backend() {
        Some(Error::Connect { addr, source }) => {
            assert_eq!(addr.port(), 1);
            assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_host_is_reported_at_once() {
    let config = Config::from_url("tcp://no-such-host.invalid:7000").unwrap();
    let pool = config.build_pool_lazy().unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    match err.backend() {
        Some(e @ Error::UnknownHost { host, .. }) => {
            assert_eq!(host, "no-such-host.invalid");
            assert!(e.to_string().contains("no-such-host.invalid"));
            // The resolver's own message is kept as the cause.
            assert!(std::error::Error::source(e).is_some());
        }
        other => panic!("expected a resolve error, got {other:?}"),
    }
}

#[tokio::test]
async fn build_pool_opens_the_initial_connections_or_fails() {
    let server = EchoServer::start().await;
    let mut config = server.config();
    config.pool.initial_size = 2;
    let pool = config.build_pool().await.unwrap();
    assert_eq!(pool.status().idle, 2);
    assert_eq!(server.accepted(), 2);

    let mut refused = Config::from_url("tcp://127.0.0.1:1?connect_timeout=1s").unwrap();
    refused.pool.initial_size = 1;
    match refused.build_pool().await {
        Err(pool_drivers::BuildPoolError::Connect(e)) => {
            assert!(matches!(e.backend(), Some(Error::Connect { .. })), "{e:?}");
        }
        other => panic!("expected a connect error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn socket_options_are_applied() {
    let server = EchoServer::start().await;
    let mut config = Config::from_url(&format!(
        "tcp://{}?nodelay=false&keepalive=30s",
        server.addr
    ))
    .unwrap();
    config.pool.acquire_timeout = Some(Duration::from_secs(5));
    let pool = config.build_pool_lazy().unwrap();
    let conn = pool.get().await.unwrap();
    assert!(!conn.nodelay().unwrap());
    let pool = server.config().build_pool_lazy().unwrap();
    let conn = pool.get().await.unwrap();
    assert!(conn.nodelay().unwrap());
}
