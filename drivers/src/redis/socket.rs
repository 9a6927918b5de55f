//! Opening the socket of a Redis connection, while keeping the server's first words.
//!
//! A server at its `maxclients` limit accepts the connection, writes
//! `-ERR max number of clients reached` and closes it. The driver reads that line as the reply
//! to the first command of its handshake (`CLIENT SETINFO`, whose reply it ignores, or
//! `HELLO`), then fails on the next read with a bare "broken pipe" or "connection reset", and
//! the line is gone. Opening the socket here, behind a wrapper that keeps a copy of the first
//! line the server sends, lets the manager report the server's reason instead.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, ConnectionAddr, RedisError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

/// How much of the server's first reply is kept: more than any refusal line.
const KEEP: usize = 256;

/// A connect that failed: the driver's error, and the error line the server opened with, if
/// it opened with one.
pub(super) struct Failed {
    pub(super) error: RedisError,
    pub(super) refusal: Option<String>,
}

/// The connection's I/O task, stopped when the connection is dropped, as the driver does for
/// connections it opens itself: otherwise closing could wait on a peer that stopped reading.
///
/// The task owns the socket and ends when the socket does: the server closed it (`CLIENT
/// KILL`, a restart, `timeout`), or the runtime the task ran on shut down. Its handle is how
/// the connection learns, without I/O, that it is dead. `None` for addresses the driver opens
/// itself (TLS): the driver keeps that task, and the connection cannot see it end.
pub(super) struct Driver(Option<JoinHandle<()>>);

impl Driver {
    /// Whether the connection's I/O task has ended.
    pub(super) fn has_ended(&self) -> bool {
        self.0.as_ref().is_some_and(JoinHandle::is_finished)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Opens a connection as `client` would, and runs the driver's handshake on it.
///
/// Plain TCP and Unix sockets are opened here; any other address (TLS) is left to `client`
/// itself, without the refusal line.
pub(super) async fn connect(
    client: &Client,
    config: &AsyncConnectionConfig,
) -> Result<(MultiplexedConnection, Driver), Failed> {
    let info = client.get_connection_info();
    let failed = |error: RedisError| Failed {
        error,
        refusal: None,
    };
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| failed(e.into()))?;
            handshake(client, config, stream).await
        }
        #[cfg(unix)]
        ConnectionAddr::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| failed(e.into()))?;
            handshake(client, config, stream).await
        }
        _ => client
            .get_multiplexed_async_connection_with_config(config)
            .await
            .map(|conn| (conn, Driver(None)))
            .map_err(failed),
    }
}

/// Runs the driver's handshake on `stream`, keeping what the server sends first.
async fn handshake<S>(
    client: &Client,
    config: &AsyncConnectionConfig,
    stream: S,
) -> Result<(MultiplexedConnection, Driver), Failed>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let first = Arc::new(Mutex::new(Vec::new()));
    let stream = Recorded {
        inner: stream,
        first: Some(Arc::clone(&first)),
    };
    let settings = client.get_connection_info().redis_settings();
    match MultiplexedConnection::new_with_config(settings, stream, config.clone()).await {
        Ok((conn, io)) => Ok((conn, Driver(Some(tokio::spawn(io))))),
        Err(error) => {
            let first = first.lock().unwrap_or_else(PoisonError::into_inner);
            Err(Failed {
                error,
                refusal: error_line(&first),
            })
        }
    }
}

/// The text of `bytes` when they start with a complete RESP error line (`-CODE detail\r\n`).
fn error_line(bytes: &[u8]) -> Option<String> {
    let line = bytes.strip_prefix(b"-")?;
    let end = line.windows(2).position(|w| w == b"\r\n")?;
    Some(String::from_utf8_lossy(&line[..end]).into_owned())
}

/// A stream that copies the first [`KEEP`] bytes it reads (or up to the first line end) to
/// `first`, then stops copying.
struct Recorded<S> {
    inner: S,
    first: Option<Arc<Mutex<Vec<u8>>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Some(first) = &this.first {
            let read = &buf.filled()[before..];
            if !read.is_empty() {
                let mut kept = first.lock().unwrap_or_else(PoisonError::into_inner);
                let room = KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&read[..read.len().min(room)]);
                if kept.len() >= KEEP || kept.contains(&b'\n') {
                    drop(kept);
                    this.first = None;
                }
            }
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{error_line, Driver};

    #[tokio::test]
    async fn a_finished_task_is_an_ended_connection() {
        let task = tokio::spawn(async {});
        let driver = Driver(Some(task));
        while !driver.0.as_ref().unwrap().is_finished() {
            tokio::task::yield_now().await;
        }
        assert!(driver.has_ended());
    }

    #[test]
    fn finds_a_leading_error_line() {
        assert_eq!(
            error_line(b"-ERR max number of clients reached\r\n").as_deref(),
            Some("ERR max number of clients reached")
        );
        assert_eq!(error_line(b"+OK\r\n-ERR later\r\n"), None);
        assert_eq!(error_line(b"-ERR cut sho"), None);
        assert_eq!(error_line(b""), None);
    }
}
