//! The socket under every pooled client.
//!
//! `tokio_postgres` hides two facts the pool needs: whether a request is still unanswered (its
//! future was dropped mid-flight) and whether the session sits inside a transaction. Both are
//! plain to see in the wire protocol: every simple `Query` and every `Sync` is answered by
//! exactly one `ReadyForQuery`, whose one-byte body is the transaction status. So the stream
//! below counts those messages as they pass.
//!
//! To get hold of the stream, the driver hands `tokio_postgres` a [`Connector`] and tells it
//! to negotiate TLS "directly": `tokio_postgres` then passes the fresh socket to the connector
//! before sending anything. The connector does the real negotiation itself (the `SSLRequest`
//! of the configured [`SslMode`], or nothing) and wraps whatever results, plain or TLS, in a
//! [`PgStream`]. The client keeps every other part of its connect logic (hosts, timeouts,
//! keepalives, cancel tokens).

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;

use super::config::SslMode;

/// What the stream has seen of the conversation.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    state: Mutex<Track>,
}

#[derive(Debug, Default)]
struct Track {
    /// One entry per request awaiting its `ReadyForQuery`.
    unanswered: VecDeque<Pending>,
    /// Whether the messages since the last `Sync` were all `Close`.
    only_closes: bool,
    /// The status byte of the last `ReadyForQuery`: `I` idle, `T` in a transaction, `E` in a
    /// failed transaction.
    status: Option<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Nothing more can happen on the server for this request but its `ReadyForQuery`: it
    /// only closed statements or portals (sent by `tokio_postgres` when a `Statement` is
    /// dropped), or the server already reported its error or the end of its one command.
    /// `tokio_postgres` may hand out such results before the `ReadyForQuery` arrives.
    harmless: bool,
    /// Ended by `Sync` (extended protocol: one command per request) rather than a simple
    /// `Query` (any number of commands).
    extended: bool,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Track> {
        // The state stays consistent at every step, so a panic elsewhere cannot spoil it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sent(&self, tag: u8) {
        let mut track = self.lock();
        match tag {
            b'Q' => track.unanswered.push_back(Pending {
                harmless: false,
                extended: false,
            }),
            b'S' => {
                let harmless = track.only_closes;
                track.unanswered.push_back(Pending {
                    harmless,
                    extended: true,
                });
                track.only_closes = true;
            }
            b'C' => {}
            _ => track.only_closes = false,
        }
    }

    fn received(&self, tag: u8, first: Option<u8>) {
        match tag {
            b'Z' => self.ready(first),
            // ErrorResponse: the server skips the rest of the request.
            b'E' => {
                if let Some(front) = self.lock().unanswered.front_mut() {
                    front.harmless = true;
                }
            }
            // CommandComplete, EmptyQueryResponse, PortalSuspended: the one command of an
            // extended-protocol request is done.
            b'C' | b'I' | b's' => {
                if let Some(front) = self.lock().unanswered.front_mut() {
                    front.harmless |= front.extended;
                }
            }
            _ => {}
        }
    }

    fn ready(&self, status: Option<u8>) {
        let mut track = self.lock();
        // The `ReadyForQuery` that ends the startup answers no request; what the startup
        // sent does not make the first request after it look like more than closes.
        if track.unanswered.pop_front().is_none() {
            track.only_closes = true;
        }
        track.status = status;
    }

    /// A request other than closing statements is still unanswered.
    pub(crate) fn abandoned(&self) -> bool {
        self.lock().unanswered.iter().any(|p| !p.harmless)
    }

    /// Nothing is unanswered and the server last said the session is outside any transaction.
    pub(crate) fn idle_outside_transaction(&self) -> bool {
        let track = self.lock();
        track.unanswered.is_empty() && track.status == Some(b'I')
    }
}

/// Splits a byte stream of protocol messages (a tag byte, then a big-endian length that counts
/// itself, then the body) and reports each complete message with the first byte of its body.
#[derive(Debug)]
pub(crate) struct Framer {
    header: [u8; 5],
    filled: usize,
    /// The next message has no tag byte (the startup or cancel message a client sends first).
    untagged: bool,
    tag: u8,
    first: Option<u8>,
    body_left: usize,
    in_body: bool,
}

impl Framer {
    pub(crate) fn new(first_untagged: bool) -> Self {
        Framer {
            header: [0; 5],
            filled: 0,
            untagged: first_untagged,
            tag: 0,
            first: None,
            body_left: 0,
            in_body: false,
        }
    }

    pub(crate) fn feed(&mut self, mut data: &[u8], mut done: impl FnMut(u8, Option<u8>)) {
        while !data.is_empty() {
            if self.in_body {
                if self.first.is_none() {
                    self.first = Some(data[0]);
                }
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                if self.body_left == 0 {
                    self.in_body = false;
                    done(self.tag, self.first);
                }
                continue;
            }
            let want = if self.untagged { 4 } else { 5 };
            let n = (want - self.filled).min(data.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled < want {
                return;
            }
            let h = self.header;
            let (tag, len) = if self.untagged {
                (0, u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
            } else {
                (h[0], u32::from_be_bytes([h[1], h[2], h[3], h[4]]))
            };
            self.untagged = false;
            self.filled = 0;
            self.tag = tag;
            self.first = None;
            self.body_left = usize::try_from(len).unwrap_or(usize::MAX).saturating_sub(4);
            if self.body_left == 0 {
                done(tag, None);
            } else {
                self.in_body = true;
            }
        }
    }
}

#[cfg(feature = "tls")]
type RustlsStream = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

enum Inner {
    Plain(Socket),
    #[cfg(feature = "tls")]
    Tls(Box<RustlsStream>),
}

/// A client's socket (plain or TLS) that reports requests and `ReadyForQuery` messages to a
/// [`Tracker`].
pub(crate) struct PgStream {
    inner: Inner,
    tracker: Arc<Tracker>,
    writes: Framer,
    reads: Framer,
}

impl fmt::Debug for PgStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Plain(_) => "plain",
            #[cfg(feature = "tls")]
            Inner::Tls(_) => "tls",
        };
        f.debug_struct("PgStream").field("kind", &kind).finish()
    }
}

impl AsyncRead for PgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let Poll::Ready(Ok(())) = result {
            let tracker = &this.tracker;
            this.reads.feed(&buf.filled()[before..], |tag, first| {
                tracker.received(tag, first)
            });
        }
        result
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        if let Poll::Ready(Ok(n)) = result {
            let tracker = &this.tracker;
            this.writes.feed(&buf[..n], |tag, _| tracker.sent(tag));
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl TlsStream for PgStream {
    fn channel_binding(&self) -> ChannelBinding {
        match &self.inner {
            Inner::Plain(_) => ChannelBinding::none(),
            #[cfg(feature = "tls")]
            Inner::Tls(s) => s.channel_binding(),
        }
    }
}

/// The server answered an `SSLRequest` with "no" while the `sslmode` demands TLS.
#[derive(Debug)]
pub(crate) struct TlsRefused(pub(crate) SslMode);

impl fmt::Display for TlsRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server does not accept TLS connections, and sslmode={} requires TLS",
            self.0
        )
    }
}

impl StdError for TlsRefused {}

/// Makes the per-connection [`Handshake`]s `tokio_postgres` asks for, and keeps the tracker of
/// the latest one so the manager can pick it up once the connect succeeded.
#[derive(Clone)]
pub(crate) struct Connector {
    mode: SslMode,
    /// TLS without an `SSLRequest` first (`sslnegotiation=direct`, PostgreSQL 17).
    direct_tls: bool,
    #[cfg(feature = "tls")]
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    latest: Arc<Mutex<Option<Arc<Tracker>>>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("mode", &self.mode)
            .field("direct_tls", &self.direct_tls)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(
        mode: SslMode,
        direct_tls: bool,
        #[cfg(feature = "tls")] tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    ) -> Self {
        Connector {
            mode,
            direct_tls,
            #[cfg(feature = "tls")]
            tls,
            latest: Arc::default(),
        }
    }

    /// A copy with its own tracker slot, for one connect.
    pub(crate) fn fresh(&self) -> Self {
        Connector {
            latest: Arc::default(),
            ..self.clone()
        }
    }

    /// The tracker of the last handshake made.
    pub(crate) fn take_tracker(&self) -> Option<Arc<Tracker>> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl MakeTlsConnect<Socket> for Connector {
    type Stream = PgStream;
    type TlsConnect = Handshake;
    type Error = std::convert::Infallible;

    fn make_tls_connect(&mut self, host: &str) -> Result<Handshake, Self::Error> {
        let tracker = Arc::new(Tracker::default());
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&tracker));
        Ok(Handshake {
            mode: self.mode,
            direct_tls: self.direct_tls,
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
            host: host.to_owned(),
            tracker,
        })
    }
}

/// Negotiates TLS on one new socket, as the `sslmode` says.
pub(crate) struct Handshake {
    mode: SslMode,
    direct_tls: bool,
    #[cfg(feature = "tls")]
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    host: String,
    tracker: Arc<Tracker>,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl TlsConnect<Socket> for Handshake {
    type Stream = PgStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<PgStream, BoxError>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let inner = self.negotiate(socket).await?;
            Ok(PgStream {
                inner,
                tracker: self.tracker,
                writes: Framer::new(true),
                reads: Framer::new(false),
            })
        })
    }
}

impl Handshake {
    #[cfg(not(feature = "tls"))]
    async fn negotiate(&self, socket: Socket) -> Result<Inner, BoxError> {
        // Without the `tls` feature the configuration only admits `disable` and `prefer`, and
        // `prefer` cannot be honoured, so the socket stays plain.
        let _ = (self.mode, self.direct_tls);
        Ok(Inner::Plain(socket))
    }

    #[cfg(feature = "tls")]
    async fn negotiate(&self, mut socket: Socket) -> Result<Inner, BoxError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let Some(tls) = self.tls.clone().filter(|_| self.mode != SslMode::Disable) else {
            return Ok(Inner::Plain(socket));
        };
        if !self.direct_tls {
            // SSLRequest: length 8, then the magic code 80877103.
            socket
                .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
                .await?;
            let mut answer = [0u8];
            socket.read_exact(&mut answer).await?;
            match answer[0] {
                b'S' => {}
                b'N' if self.mode == SslMode::Prefer => return Ok(Inner::Plain(socket)),
                b'N' => return Err(Box::new(TlsRefused(self.mode))),
                other => {
                    return Err(Box::new(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected answer {other:#04x} to the TLS request"),
                    )))
                }
            }
        }
        let mut tls = tls;
        let handshake = MakeTlsConnect::<Socket>::make_tls_connect(&mut tls, &self.host)?;
        let stream = handshake.connect(socket).await?;
        Ok(Inner::Tls(Box::new(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(u32::try_from(body.len()).unwrap() + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn framer_reports_messages_split_anywhere() {
        let mut wire = Vec::new();
        // An untagged startup message first.
        wire.extend_from_slice(&12u32.to_be_bytes());
        wire.extend_from_slice(&[0, 3, 0, 0, 1, 2, 3, 4]);
        wire.extend(message(b'Q', b"SELECT 1\0"));
        wire.extend(message(b'S', b""));
        wire.extend(message(b'Z', b"T"));
        for chunk in 1..wire.len() {
            let mut framer = Framer::new(true);
            let mut seen = Vec::new();
            for piece in wire.chunks(chunk) {
                framer.feed(piece, |tag, first| seen.push((tag, first)));
            }
            assert_eq!(
                seen,
                [
                    (0, Some(0)),
                    (b'Q', Some(b'S')),
                    (b'S', None),
                    (b'Z', Some(b'T'))
                ],
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn tracker_tells_abandoned_requests_from_statement_closes() {
        let tracker = Tracker::default();
        tracker.ready(Some(b'I')); // end of startup
        assert!(tracker.idle_outside_transaction());

        // Close + Sync, as sent when a Statement is dropped: harmless while unanswered.
        tracker.sent(b'C');
        tracker.sent(b'S');
        assert!(!tracker.abandoned());
        assert!(!tracker.idle_outside_transaction());
        tracker.ready(Some(b'I'));

        // Parse/Bind/Execute/Sync of a query: abandoned until answered.
        for tag in [b'P', b'B', b'E', b'S'] {
            tracker.sent(tag);
        }
        assert!(tracker.abandoned());
        tracker.ready(Some(b'T'));
        assert!(!tracker.abandoned());
        assert!(!tracker.idle_outside_transaction());

        tracker.sent(b'Q');
        assert!(tracker.abandoned());
        tracker.ready(Some(b'I'));
        assert!(tracker.idle_outside_transaction());

        // A failed request is over once the error arrived, even before its ReadyForQuery.
        tracker.sent(b'Q');
        tracker.received(b'E', Some(b'S'));
        assert!(!tracker.abandoned());
        tracker.received(b'Z', Some(b'E'));
        assert!(!tracker.idle_outside_transaction());

        // An extended request is over at its CommandComplete; a simple query is not.
        for tag in [b'B', b'E', b'S'] {
            tracker.sent(tag);
        }
        tracker.received(b'C', Some(b'S'));
        assert!(!tracker.abandoned());
        tracker.received(b'Z', Some(b'I'));
        tracker.sent(b'Q');
        tracker.received(b'C', Some(b'S'));
        assert!(tracker.abandoned());
    }
}
