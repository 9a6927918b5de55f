//! Cancelling queries on pooled PostgreSQL connections, against a real server: the client's own
//! cancel token is inert, so one kept past its borrow cannot cancel the next borrower's query;
//! the borrow-scoped `CancelHandle` cancels its holder's query, refuses once the borrow ended,
//! and a connection it was used on is closed on return rather than reused.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use integration_tests::{server, unique_name, Kind};
use pool_drivers::postgres::tokio_postgres::config::Host;
use pool_drivers::postgres::tokio_postgres::error::SqlState;
use pool_drivers::postgres::tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};
use pool_drivers::postgres::tokio_postgres::{CancelToken, NoTls};
use pool_drivers::postgres::{CancelError, Config, Connection, Pool};
use pool_drivers::CloseReason;
use pool_drivers::DriverConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The URL with `params` added to its query string.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// A pool of `max_size` sessions that carry an `application_name` no other test uses; every
/// other setting at its default.
fn pool(url: &str, params: &str, max_size: usize) -> Pool {
    let app = unique_name("cancel");
    let url = with_params(url, &format!("application_name={app}"));
    let url = if params.is_empty() {
        url
    } else {
        with_params(&url, params)
    };
    let mut config = Config::from_url(&url).expect("the server URL parses");
    config.pool.max_size = max_size;
    config.build_pool_lazy().unwrap()
}

async fn backend_pid(conn: &Connection) -> i32 {
    conn.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// A `SELECT pg_sleep(seconds)` on `conn`, returning the backend's pid, or the error.
async fn sleep_on(
    conn: &Connection,
    seconds: f64,
) -> Result<i32, pool_drivers::postgres::tokio_postgres::Error> {
    conn.query_one(
        "SELECT pg_backend_pid() FROM (SELECT pg_sleep($1)) AS slept",
        &[&seconds],
    )
    .await
    .map(|row| row.get(0))
}

/// A "TLS" connector that passes the socket through: what a caller has to write to fire a
/// pooled client's `CancelToken` at all, because the manager gives every client
/// `sslmode=require` with `sslnegotiation=direct` (so `cancel_query(NoTls)` fails), and
/// PostgreSQL 15 takes a plain cancel request.
struct Passthrough;

struct Plain(TcpStream);

impl TlsConnect<TcpStream> for Passthrough {
    type Stream = Plain;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<Plain>>;

    fn connect(self, stream: TcpStream) -> Self::Future {
        std::future::ready(Ok(Plain(stream)))
    }
}

impl TlsStream for Plain {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for Plain {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Plain {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Sends `token`'s cancel request to the server at `url`, in plain text.
async fn fire(url: &str, token: &CancelToken) {
    let pg = Config::from_url(url).unwrap().postgres;
    let Some(Host::Tcp(host)) = pg.get_hosts().first() else {
        panic!("the test server is reached over TCP");
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let socket = TcpStream::connect((host.as_str(), port)).await.unwrap();
    token
        .cancel_query_raw(socket, Passthrough)
        .await
        .expect("the cancel request was delivered");
}

/// (a) A `cancel_token()` kept from borrow 1 and fired during borrow 2's query on the same
/// backend does not cancel it: the token quotes a made-up key, which the server ignores.
#[tokio::test]
async fn a_stale_cancel_token_does_not_cancel_the_next_borrower() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let pool = pool(server.url(), "", 1);
    let (first, stale) = {
        let conn = pool.get().await.unwrap();
        (backend_pid(&conn).await, conn.cancel_token())
    };

    let conn = pool.get().await.unwrap();
    let (slept, ()) = tokio::join!(sleep_on(&conn, 0.5), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fire(server.url(), &stale).await;
    });
    match slept {
        Ok(pid) => assert_eq!(pid, first, "the same backend served both borrows"),
        Err(e) => panic!(
            "borrow 1's token cancelled borrow 2's query (SQLSTATE {:?}): {e}",
            e.code().map(SqlState::code)
        ),
    }

    // Fired in the current borrow, the token does nothing either: it is inert, not stale.
    let (slept, ()) = tokio::join!(sleep_on(&conn, 0.3), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fire(server.url(), &conn.cancel_token()).await;
    });
    assert_eq!(slept.expect("not cancelled"), first);
    // And the usual way to fire it cannot work on a pooled client.
    assert!(conn.cancel_token().cancel_query(NoTls).await.is_err());
}

/// (b) The handle cancels its holder's long query (SQLSTATE 57014), from another task, with the
/// pool's default settings, and with TLS off and required.
#[tokio::test]
async fn the_cancel_handle_cancels_its_holders_query() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let ssl: String = pool(server.url(), "sslmode=disable", 1)
        .get()
        .await
        .unwrap()
        .query_one("SELECT current_setting('ssl')", &[])
        .await
        .unwrap()
        .get(0);
    let mut settings = vec!["", "sslmode=disable"];
    if ssl == "on" {
        settings.push("sslmode=require");
    }
    for params in settings {
        let pool = pool(server.url(), params, 1);
        let conn = pool.get().await.unwrap();
        let handle = conn.cancel_handle();
        assert!(handle.is_current());
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            handle.cancel().await
        });
        let err = sleep_on(&conn, 30.0)
            .await
            .expect_err("the query was cancelled");
        assert_eq!(
            err.code(),
            Some(&SqlState::QUERY_CANCELED),
            "{params}: {err}"
        );
        canceller
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{params}: {e}"));
        // The connection itself still works for the rest of the borrow.
        backend_pid(&conn).await;
    }
}

/// (c) A handle used after its borrow ended returns the typed error and cancels nothing.
#[tokio::test]
async fn a_handle_from_an_ended_borrow_refuses_and_cancels_nothing() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let pool = pool(server.url(), "", 1);
    let (first, handle) = {
        let conn = pool.get().await.unwrap();
        (backend_pid(&conn).await, conn.cancel_handle())
    };
    assert!(!handle.is_current());
    let shown = format!("{handle:?}");
    assert!(shown.contains(&first.to_string()), "{shown}");

    let conn = pool.get().await.unwrap();
    let (slept, refused) = tokio::join!(sleep_on(&conn, 0.5), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        handle.cancel().await
    });
    assert!(
        matches!(refused, Err(CancelError::BorrowEnded)),
        "{refused:?}"
    );
    assert_eq!(slept.expect("not cancelled"), first, "the same backend");
    drop(conn);
    assert_eq!(pool.stats().connects_ok, 1);
}

/// (d) A cancel sent during a borrow closes that connection on return: the request may still
/// be on its way, so the next borrower gets a new backend and its query runs to the end. This
/// holds for a cancel sent while a query ran and for one sent while the session was idle.
#[tokio::test]
async fn a_connection_sent_a_cancel_is_closed_on_return() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let pool = pool(server.url(), "", 1);
    let mut pids = Vec::new();
    {
        let conn = pool.get().await.unwrap();
        pids.push(backend_pid(&conn).await);
        let handle = conn.cancel_handle();
        let (slept, sent) = tokio::join!(sleep_on(&conn, 30.0), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            handle.cancel().await
        });
        sent.unwrap();
        assert_eq!(slept.unwrap_err().code(), Some(&SqlState::QUERY_CANCELED));
    }
    assert_eq!(pool.stats().closes.get(CloseReason::Broken), 1);
    {
        let conn = pool.get().await.unwrap();
        let pid = sleep_on(&conn, 0.3).await.expect("not cancelled");
        assert!(!pids.contains(&pid), "a new backend, not {pids:?}");
        pids.push(pid);
        // Sent while nothing runs: the server may drop it or may not have seen it yet.
        conn.cancel_handle().cancel().await.unwrap();
    }
    assert_eq!(pool.stats().closes.get(CloseReason::Broken), 2);
    let conn = pool.get().await.unwrap();
    let pid = sleep_on(&conn, 0.3).await.expect("not cancelled");
    assert!(!pids.contains(&pid), "a new backend, not {pids:?}");
}
