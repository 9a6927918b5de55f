//! The web service example served on a loopback port and exercised over HTTP: a note written
//! and read back (through the replica once it has replayed the write), a missing note, the
//! health endpoint, and 503 once an unreachable database makes the acquire give up.

use std::time::{Duration, Instant};

use integration_tests::{server, unique_name, Kind};
use pool_drivers::postgres::{DatabaseConfig, Pools};
use pool_drivers::Retry;
use pool_examples::web_service::{self, LAST_WRITE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves the example's routes on a free loopback port; returns its address.
async fn serve(pools: Pools, table: &str, retry: Retry) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = web_service::router(pools, table, retry);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// One HTTP/1.1 request on a connection of its own.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_string(&mut raw))
        .await
        .expect("the service answers")
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Reply {
        status: status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        headers: headers.to_owned(),
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn notes_are_written_to_the_primary_and_read_back() {
    let (Some(primary), Some(replica)) = (
        server(Kind::Postgres).await,
        server(Kind::PostgresReplica).await,
    ) else {
        return;
    };
    let mut config = DatabaseConfig::from_urls(primary.url(), &[replica.url()], None).unwrap();
    config.read_your_writes = Some(Duration::from_secs(5));
    config.replay_wait = Some(Duration::from_secs(2));
    let pools = config.build_pools_lazy().unwrap();
    let table = unique_name("notes");
    web_service::create_table(&pools, &table).await.unwrap();
    let addr = serve(pools.clone(), &table, Retry::default()).await;

    let created = request(addr, "POST", "/notes", "", "hello from a test").await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body.clone();
    let position = created
        .header(LAST_WRITE)
        .expect("the write position")
        .to_owned();

    let read = request(
        addr,
        "GET",
        &format!("/notes/{id}"),
        &format!("{LAST_WRITE}: {position}\r\n"),
        "",
    )
    .await;
    assert_eq!(
        (read.status, read.body.as_str()),
        (200, "hello from a test")
    );

    let missing = request(addr, "GET", "/notes/999999999", "", "").await;
    assert_eq!(missing.status, 404);

    let health = request(addr, "GET", "/health", "", "").await;
    assert_eq!(health.status, 200);
    assert!(health.body.contains("write: healthy"), "{}", health.body);

    pools
        .write()
        .await
        .unwrap()
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_answered_with_503() {
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres@127.0.0.1:{closed}/test");
    let mut config = DatabaseConfig::from_urls(&url, &[&url], None).unwrap();
    config.replica_timeout = Duration::from_millis(300);
    config.primary.pool.acquire_timeout = Some(Duration::from_millis(500));
    let pools = config.build_pools_lazy().unwrap();
    let retry = Retry::default().give_up_after(Some(Duration::from_secs(1)));
    let addr = serve(pools, "notes_never_created", retry).await;

    let started = Instant::now();
    let write = request(addr, "POST", "/notes", "", "lost").await;
    assert_eq!(write.status, 503, "{}", write.body);
    assert!(write.body.contains("service unavailable"), "{}", write.body);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let read = request(addr, "GET", "/notes/1", "", "").await;
    assert_eq!(read.status, 503, "{}", read.body);
}
