//! Opening the socket of a Redis connection, while keeping the server's first words.
//!
//! A server at its `maxclients` limit accepts the connection, writes
//! `-ERR max number of clients reached` and closes it. The driver reads that line as the reply
//! to the first command of its handshake (`CLIENT SETINFO`, whose reply it ignores, or
//! `HELLO`), then fails on the next read with a bare "broken pipe" or "connection reset", and
//! the line is gone. Opening the socket here, behind a wrapper that keeps a copy of the first
//! line the server sends, lets the manager report the server's reason instead.
//!
//! Opening it here also keeps a second handle on it ([`Driver`]), so the connection can close
//! its socket at once, and see that its I/O task has ended, without waiting on that task.

use std::io;
use std::net::Shutdown;
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

/// The connection's I/O task, and a second handle on its socket.
///
/// The task owns the socket and ends when the socket does: the server closed it (`CLIENT
/// KILL`, a restart, `timeout`), or the runtime the task ran on shut down. Its handle is how
/// the connection learns, without I/O, that it is dead.
///
/// The second handle (a duplicate of the socket's descriptor) lets the connection close the
/// socket itself, at once and from any thread: the task would only close it when next polled.
/// Shutting the socket down makes the server drop the client, and with it any command still
/// running for it (a `BLPOP` that would otherwise pop the next element for nobody).
///
/// Both are `None` for addresses the driver opens itself (TLS): the driver keeps the task, and
/// the connection can neither see it end nor close the socket early.
pub(super) struct Driver {
    task: Option<JoinHandle<()>>,
    socket: Option<Socket>,
    closed: bool,
}

impl Driver {
    fn new(task: Option<JoinHandle<()>>, socket: Option<Socket>) -> Self {
        Driver {
            task,
            socket,
            closed: false,
        }
    }

    /// Whether the connection is dead: closed here, or its I/O task ended.
    pub(super) fn has_ended(&self) -> bool {
        self.closed || self.task.as_ref().is_some_and(JoinHandle::is_finished)
    }

    /// Shuts the socket down in both directions, now, and stops the I/O task.
    pub(super) fn close(&mut self) {
        if let Some(socket) = &self.socket {
            socket.shutdown();
        }
        if let Some(task) = &self.task {
            task.abort();
        }
        self.closed = true;
    }
}

impl Drop for Driver {
    /// Closes the socket here rather than when the aborted task is next polled, which could
    /// be later, or never once its runtime is gone.
    fn drop(&mut self) {
        self.close();
    }
}

/// A duplicate of a connection's socket descriptor, kept only to shut the socket down.
enum Socket {
    Tcp(std::net::TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Socket {
    fn shutdown(&self) {
        // Fails only if the socket is already closed, which is what was wanted.
        let _ = match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            Socket::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

/// `stream` as the I/O task will own it, and a [`Socket`] on the same connection.
fn tcp_twin(stream: tokio::net::TcpStream) -> io::Result<(tokio::net::TcpStream, Socket)> {
    let stream = stream.into_std()?;
    let twin = stream.try_clone()?;
    Ok((tokio::net::TcpStream::from_std(stream)?, Socket::Tcp(twin)))
}

/// `stream` as the I/O task will own it, and a [`Socket`] on the same connection.
#[cfg(unix)]
fn unix_twin(stream: tokio::net::UnixStream) -> io::Result<(tokio::net::UnixStream, Socket)> {
    let stream = stream.into_std()?;
    let twin = stream.try_clone()?;
    Ok((
        tokio::net::UnixStream::from_std(stream)?,
        Socket::Unix(twin),
    ))
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
            let (stream, socket) = tcp_twin(stream).map_err(|e| failed(e.into()))?;
            handshake(client, config, stream, socket).await
        }
        #[cfg(unix)]
        ConnectionAddr::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| failed(e.into()))?;
            let (stream, socket) = unix_twin(stream).map_err(|e| failed(e.into()))?;
            handshake(client, config, stream, socket).await
        }
        _ => client
            .get_multiplexed_async_connection_with_config(config)
            .await
            .map(|conn| (conn, Driver::new(None, None)))
            .map_err(failed),
    }
}

/// Runs the driver's handshake on `stream`, keeping what the server sends first; `socket` is
/// the same connection's second handle.
async fn handshake<S>(
    client: &Client,
    config: &AsyncConnectionConfig,
    stream: S,
    socket: Socket,
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
        Ok((conn, io)) => Ok((conn, Driver::new(Some(tokio::spawn(io)), Some(socket)))),
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
    use std::io::Read;
    use std::time::Duration;

    use super::{error_line, tcp_twin, Driver};

    #[tokio::test]
    async fn closing_reaches_the_peer_at_once_while_the_task_holds_the_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (client, socket) = tcp_twin(client).unwrap();
        // Stands in for the I/O task: owns the stream until it is dropped.
        let task = tokio::spawn(async move {
            let _owned = client;
            std::future::pending::<()>().await;
        });
        let mut driver = Driver::new(Some(task), Some(socket));
        assert!(!driver.has_ended());
        driver.close();
        assert!(driver.has_ended());
        // Read without yielding to the runtime, so the aborted task cannot have run and
        // dropped its stream: the end of stream comes from `close` alone.
        let read = server.read(&mut [0u8; 1]).expect("no time-out");
        assert_eq!(read, 0, "end of stream");
    }

    #[tokio::test]
    async fn a_finished_task_is_an_ended_connection() {
        let task = tokio::spawn(async {});
        let driver = Driver::new(Some(task), None);
        while !driver.task.as_ref().unwrap().is_finished() {
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
