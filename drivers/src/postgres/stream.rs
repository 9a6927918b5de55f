//! The socket under every pooled client.
//!
//! `tokio_postgres` hides two facts the pool needs: whether a request is still unanswered (its
//! future was dropped mid-flight) and whether the session sits inside a transaction. Both are
//! plain to see in the wire protocol: every simple `Query` and every `Sync` is answered by
//! exactly one `ReadyForQuery`, whose one-byte body is the transaction status. So the stream
//! below counts those messages as they pass. (The one exception, a `COPY ... FROM STDIN`,
//! during which the server skips `Sync`, is accounted for when its `CopyInResponse` arrives.)
//!
//! The stream also keeps the session's cancel key from the client. The server's
//! `BackendKeyData` (process id and secret key: what a cancel request must quote) reaches
//! `tokio_postgres` with a made-up secret, so the `CancelToken` anyone can take from the client
//! is inert: the server ignores a cancel request whose key is wrong. A token kept past the
//! borrow can therefore never cancel the next borrower's query. The real key stays in the
//! [`Tracker`]; only a connector made by [`Connector::for_cancel`] writes it, into a cancel
//! request for this very session, and only the borrow-scoped
//! [`CancelHandle`](super::CancelHandle) makes such a connector.
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
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;

use super::config::SslMode;

/// What the stream has seen of the conversation.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    state: Mutex<Track>,
    /// Woken when the last unanswered request is answered and when the stream ends, for
    /// [`settle`](Self::settle).
    settled: Notify,
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
    /// Where a `COPY ... FROM STDIN` stands.
    copy_in: CopyIn,
    /// The session's cancel key, once the server sent it.
    key: Option<BackendKey>,
    /// The stream ended (the server closed it, or it failed): nothing more will be answered.
    ended: bool,
}

/// A `COPY ... FROM STDIN`, while the server reads copy data: it then ignores `Sync`, so the
/// `Sync`s sent meanwhile must not count as requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum CopyIn {
    /// None under way, as far as the server has said.
    #[default]
    Off,
    /// The server is reading copy data. `extended`: the COPY came as an extended-protocol
    /// request, so its `ReadyForQuery` answers the `Sync` after `CopyDone` or `CopyFail`.
    Open { extended: bool },
    /// `CopyDone` or `CopyFail` of an extended-protocol COPY went out: the next `Sync` is the
    /// one the COPY's entry waits for, not a request of its own.
    Ending,
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
    /// A `CopyDone` or `CopyFail` went out after this request and before the next one: tells
    /// which `Sync`s the server ignored once a `CopyInResponse` shows a COPY was under way.
    copy_end_follows: bool,
    /// Rows (or `COPY TO STDOUT` data) of its result have started to arrive.
    rows: bool,
    /// When its last message went out.
    sent: Instant,
}

impl Pending {
    fn new(harmless: bool, extended: bool) -> Self {
        Pending {
            harmless,
            extended,
            copy_end_follows: false,
            rows: false,
            sent: Instant::now(),
        }
    }
}

/// A session's cancel credentials: its process id, the secret key the server gave, and the
/// made-up one `tokio_postgres` was shown instead.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackendKey {
    pub(crate) pid: i32,
    real: [u8; 4],
    shown: [u8; 4],
}

impl fmt::Debug for BackendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret is what makes a cancel request count; it never goes into a log.
        f.debug_struct("BackendKey")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl BackendKey {
    /// The 16-byte `CancelRequest` for this session quoting `key`.
    fn cancel_request(&self, key: [u8; 4]) -> [u8; 16] {
        let mut m = [0u8; 16];
        m[..4].copy_from_slice(&16u32.to_be_bytes());
        // The cancel request code, 80877102.
        m[4..8].copy_from_slice(&80_877_102u32.to_be_bytes());
        m[8..12].copy_from_slice(&self.pid.to_be_bytes());
        m[12..].copy_from_slice(&key);
        m
    }
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Track> {
        // The state stays consistent at every step, so a panic elsewhere cannot spoil it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sent(&self, tag: u8) {
        let mut track = self.lock();
        match tag {
            b'Q' => track.unanswered.push_back(Pending::new(false, false)),
            b'S' => match track.copy_in {
                // The server skips a `Sync` while it reads copy data.
                CopyIn::Open { .. } => {}
                // The `Sync` the COPY's own entry waits for.
                CopyIn::Ending => {
                    track.copy_in = CopyIn::Off;
                    track.only_closes = true;
                }
                CopyIn::Off => {
                    let harmless = track.only_closes;
                    track.unanswered.push_back(Pending::new(harmless, true));
                    track.only_closes = true;
                }
            },
            // CopyDone, CopyFail.
            b'c' | b'f' => {
                track.only_closes = false;
                match track.copy_in {
                    CopyIn::Open { extended: true } => track.copy_in = CopyIn::Ending,
                    // A simple-query COPY is answered without any `Sync`.
                    CopyIn::Open { extended: false } => track.copy_in = CopyIn::Off,
                    // Sent before the server's `CopyInResponse` arrived.
                    CopyIn::Off | CopyIn::Ending => {
                        if let Some(back) = track.unanswered.back_mut() {
                            back.copy_end_follows = true;
                        }
                    }
                }
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
            // CopyInResponse.
            b'G' => self.copy_in_started(),
            // DataRow, CopyData.
            b'D' | b'd' => {
                if let Some(front) = self.lock().unanswered.front_mut() {
                    front.rows = true;
                }
            }
            _ => {}
        }
    }

    /// The request at the front started a `COPY ... FROM STDIN`. Every `Sync` the server reads
    /// from now until `CopyDone` or `CopyFail` is skipped: for an extended-protocol COPY that
    /// includes the request's own `Sync` (sent right after its `Execute`), and its
    /// `ReadyForQuery` answers the first `Sync` after the copy ends instead. Entries for the
    /// skipped `Sync`s (and for that answering one) are dropped, so the front entry alone
    /// stands for the COPY until its `ReadyForQuery`.
    fn copy_in_started(&self) {
        let mut track = self.lock();
        let Some(front) = track.unanswered.front() else {
            return;
        };
        let extended = front.extended;
        let len = track.unanswered.len();
        let end = track.unanswered.iter().position(|p| p.copy_end_follows);
        if let Some(i) = end {
            track.unanswered[i].copy_end_follows = false;
        }
        track.copy_in = match (extended, end) {
            (true, Some(i)) if i + 1 < len => {
                track.unanswered.drain(1..=i + 1);
                CopyIn::Off
            }
            (true, Some(i)) => {
                track.unanswered.drain(1..=i);
                CopyIn::Ending
            }
            (false, Some(i)) => {
                track.unanswered.drain(1..=i);
                CopyIn::Off
            }
            (extended, None) => {
                track.unanswered.truncate(1);
                CopyIn::Open { extended }
            }
        };
    }

    fn ready(&self, status: Option<u8>) {
        let mut track = self.lock();
        // The `ReadyForQuery` that ends the startup answers no request; what the startup
        // sent does not make the first request after it look like more than closes.
        if track.unanswered.pop_front().is_none() {
            track.only_closes = true;
        }
        // A simple-query COPY that failed is over with its `ReadyForQuery`; the server drops
        // whatever copy data still follows.
        if track.copy_in == (CopyIn::Open { extended: false }) {
            track.copy_in = CopyIn::Off;
        }
        track.status = status;
        let settled = track.unanswered.is_empty();
        drop(track);
        if settled {
            self.settled.notify_waiters();
        }
    }

    /// The stream ended: no answer is coming any more.
    pub(crate) fn end(&self) {
        self.lock().ended = true;
        self.settled.notify_waiters();
    }

    fn set_key(&self, key: BackendKey) {
        self.lock().key = Some(key);
    }

    /// The session's cancel key, if the server sent one.
    pub(crate) fn key(&self) -> Option<BackendKey> {
        self.lock().key
    }

    /// A request other than closing statements is still unanswered.
    pub(crate) fn abandoned(&self) -> bool {
        self.lock().unanswered.iter().any(|p| !p.harmless)
    }

    /// When the oldest request other than closing statements that is still unanswered was
    /// sent.
    pub(crate) fn abandoned_since(&self) -> Option<Instant> {
        let track = self.lock();
        track
            .unanswered
            .iter()
            .find(|p| !p.harmless)
            .map(|p| p.sent)
    }

    /// When the oldest request still unanswered was sent.
    pub(crate) fn unanswered_since(&self) -> Option<Instant> {
        self.lock().unanswered.front().map(|p| p.sent)
    }

    /// An unfinished request's result is arriving row by row: its reader stopped part-way
    /// through a result that may be of any size, so draining the rest could take long.
    pub(crate) fn streaming(&self) -> bool {
        self.lock()
            .unanswered
            .front()
            .is_some_and(|p| p.rows && !p.harmless)
    }

    /// Waits until every request sent has had its `ReadyForQuery` (`true`), or the stream
    /// ended first (`false`).
    ///
    /// Cancel safe: it only watches.
    pub(crate) async fn settle(&self) -> bool {
        loop {
            let mut notified = std::pin::pin!(self.settled.notified());
            // Registered before the state is read, so an answer arriving in between still
            // wakes this waiter.
            notified.as_mut().enable();
            {
                let track = self.lock();
                if track.unanswered.is_empty() {
                    return true;
                }
                if track.ended {
                    return false;
                }
            }
            notified.await;
        }
    }

    /// Nothing is unanswered and the server last said the session is outside any transaction.
    pub(crate) fn idle_outside_transaction(&self) -> bool {
        let track = self.lock();
        track.unanswered.is_empty() && track.status == Some(b'I')
    }
}

/// A piece of a message body as it passes the [`Framer`].
pub(crate) struct Piece<'a> {
    /// The message's tag.
    tag: u8,
    /// The length of the whole body.
    body_len: usize,
    /// Where in the body the piece starts.
    offset: usize,
    /// Where in the data fed the piece starts.
    start: usize,
    /// The piece.
    bytes: &'a [u8],
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
    body_len: usize,
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
            body_len: 0,
            body_left: 0,
            in_body: false,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8], done: impl FnMut(u8, Option<u8>)) {
        self.feed_with(data, |_| {}, done);
    }

    /// As [`feed`](Self::feed), and shows `body` each piece of a message body as it passes.
    pub(crate) fn feed_with(
        &mut self,
        data: &[u8],
        mut body: impl FnMut(Piece<'_>),
        mut done: impl FnMut(u8, Option<u8>),
    ) {
        let mut at = 0;
        while at < data.len() {
            let rest = &data[at..];
            if self.in_body {
                if self.first.is_none() {
                    self.first = Some(rest[0]);
                }
                let n = self.body_left.min(rest.len());
                body(Piece {
                    tag: self.tag,
                    body_len: self.body_len,
                    offset: self.body_len - self.body_left,
                    start: at,
                    bytes: &rest[..n],
                });
                self.body_left -= n;
                at += n;
                if self.body_left == 0 {
                    self.in_body = false;
                    done(self.tag, self.first);
                }
                continue;
            }
            let want = if self.untagged { 4 } else { 5 };
            let n = (want - self.filled).min(rest.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
            self.filled += n;
            at += n;
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
            self.body_len = self.body_left;
            if self.body_left == 0 {
                done(tag, None);
            } else {
                self.in_body = true;
            }
        }
    }
}

/// Swaps the secret key of the server's `BackendKeyData` for a made-up one on its way to
/// `tokio_postgres`, and keeps the real one.
struct KeySwap {
    /// The body as received: the process id, then the secret key.
    body: [u8; 8],
    /// How many bytes of `body` arrived.
    seen: usize,
    /// What `tokio_postgres` gets instead of the secret key.
    shown: [u8; 4],
}

impl KeySwap {
    fn new() -> Self {
        KeySwap {
            body: [0; 8],
            seen: 0,
            shown: made_up_key(),
        }
    }

    /// Takes in a piece of a `BackendKeyData` body, and notes which bytes of the data must be
    /// overwritten (index, byte) so only the made-up key passes on.
    fn take(&mut self, piece: &Piece<'_>, patches: &mut Vec<(usize, u8)>) {
        // Protocol 3.0, the one `tokio_postgres` speaks: a 4-byte process id and a 4-byte key.
        if piece.tag != b'K' || piece.body_len != 8 {
            return;
        }
        for (i, &byte) in piece.bytes.iter().enumerate() {
            let at = piece.offset + i;
            self.body[at] = byte;
            self.seen = self.seen.max(at + 1);
            if at >= 4 {
                let k = at - 4;
                // Made up, but never by chance the real key.
                if k == 3 && self.shown[..3] == self.body[4..7] && self.shown[3] == byte {
                    self.shown[3] ^= 1;
                }
                patches.push((piece.start + i, self.shown[k]));
            }
        }
    }

    /// The key, once the whole body passed.
    fn key(&self) -> Option<BackendKey> {
        (self.seen == 8).then(|| BackendKey {
            pid: i32::from_be_bytes([self.body[0], self.body[1], self.body[2], self.body[3]]),
            real: [self.body[4], self.body[5], self.body[6], self.body[7]],
            shown: self.shown,
        })
    }
}

/// Four bytes that differ from one connection to the next. They need no secrecy (they are
/// not the key), only to be unlike the real key, which [`KeySwap::take`] ensures.
fn made_up_key() -> [u8; 4] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    let h = hasher.finish().to_be_bytes();
    [h[0], h[1], h[2], h[3]]
}

#[cfg(feature = "tls")]
type RustlsStream = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

enum Inner {
    Plain(Socket),
    #[cfg(feature = "tls")]
    Tls(Box<RustlsStream>),
}

/// A client's socket (plain or TLS) that reports requests and `ReadyForQuery` messages to a
/// [`Tracker`], and swaps the secret of the server's `BackendKeyData` (see the module docs).
pub(crate) struct PgStream {
    inner: Inner,
    tracker: Arc<Tracker>,
    writes: Framer,
    reads: Framer,
    key: KeySwap,
    /// On a connection made to send a cancel request: the request to let through, rewritten.
    cancel: Option<CancelRewrite>,
}

/// The cancel request `tokio_postgres` writes quotes the made-up key it was shown; on its way
/// out the real key takes its place. Anything else is refused, so the real key goes only to
/// the session it belongs to.
struct CancelRewrite {
    /// The request `tokio_postgres` is expected to write.
    expected: [u8; 16],
    /// What is sent instead.
    sent: [u8; 16],
    /// How many bytes of it went out.
    written: usize,
}

impl CancelRewrite {
    /// Which bytes of the rewritten request to write for `buf`, which must be the next part
    /// of the expected request.
    fn next(&self, buf: &[u8]) -> io::Result<std::ops::Range<usize>> {
        let at = self.written;
        let n = buf.len().min(16 - at);
        if buf[..n] != self.expected[at..at + n] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not the cancel request of the session this connection was made for",
            ));
        }
        Ok(at..at + n)
    }
}

impl PgStream {
    fn new(inner: Inner, tracker: Arc<Tracker>, cancel: Option<BackendKey>) -> Self {
        PgStream {
            inner,
            tracker,
            writes: Framer::new(true),
            reads: Framer::new(false),
            key: KeySwap::new(),
            cancel: cancel.map(|key| CancelRewrite {
                expected: key.cancel_request(key.shown),
                sent: key.cancel_request(key.real),
                written: 0,
            }),
        }
    }

    fn poll_write_inner(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
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
            let data = &mut buf.filled_mut()[before..];
            received(&mut this.reads, &mut this.key, &this.tracker, data);
        }
        result
    }
}

/// Reports the messages in `data` (bytes just read) to `tracker`, and swaps the secret of a
/// `BackendKeyData` among them in place.
fn received(reads: &mut Framer, key: &mut KeySwap, tracker: &Tracker, data: &mut [u8]) {
    // Empty unless a `BackendKeyData` passes, which happens once, at startup.
    let mut patches = Vec::new();
    let mut key_done = false;
    reads.feed_with(
        data,
        |piece| key.take(&piece, &mut patches),
        |tag, first| {
            key_done |= tag == b'K';
            tracker.received(tag, first);
        },
    );
    for (at, byte) in patches {
        data[at] = byte;
    }
    if key_done {
        if let Some(key) = key.key() {
            tracker.set_key(key);
        }
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(cancel) = this.cancel.as_ref().filter(|c| c.written < 16) {
            let range = cancel.next(buf)?;
            let sent = cancel.sent;
            let result = this.poll_write_inner(cx, &sent[range]);
            if let (Poll::Ready(Ok(n)), Some(cancel)) = (&result, this.cancel.as_mut()) {
                cancel.written += n;
            }
            return result;
        }
        let result = this.poll_write_inner(cx, buf);
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
    /// Set on a connector for cancel requests: the session whose real key they carry.
    cancel: Option<BackendKey>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("mode", &self.mode)
            .field("direct_tls", &self.direct_tls)
            .field("cancel", &self.cancel)
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
            cancel: None,
        }
    }

    /// A copy with its own tracker slot, for one connect.
    pub(crate) fn fresh(&self) -> Self {
        Connector {
            latest: Arc::default(),
            ..self.clone()
        }
    }

    /// A copy for `tokio_postgres`'s `CancelToken::cancel_query`: it negotiates TLS as the
    /// sessions do, and puts `key`'s real secret into the cancel request the token writes
    /// (which quotes the made-up one). It refuses to send anything else.
    pub(crate) fn for_cancel(&self, key: BackendKey) -> Self {
        Connector {
            latest: Arc::default(),
            cancel: Some(key),
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
            cancel: self.cancel,
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
    cancel: Option<BackendKey>,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl TlsConnect<Socket> for Handshake {
    type Stream = PgStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<PgStream, BoxError>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let inner = self.negotiate(socket).await?;
            Ok(PgStream::new(inner, self.tracker, self.cancel))
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
        tracker.received(b'Z', Some(b'I'));

        // A result left part-read is streaming until its command completes.
        sent_all(&tracker, b"BES");
        assert!(!tracker.streaming());
        tracker.received(b'D', Some(0));
        assert!(tracker.streaming());
        tracker.received(b'C', Some(b'S'));
        assert!(!tracker.streaming());
        tracker.received(b'Z', Some(b'I'));
        assert!(!tracker.streaming());
    }

    /// Every request sent has had its `ReadyForQuery`.
    fn settled(tracker: &Tracker) -> bool {
        tracker.unanswered_since().is_none()
    }

    fn sent_all(tracker: &Tracker, tags: &[u8]) {
        for &tag in tags {
            tracker.sent(tag);
        }
    }

    #[test]
    fn a_copy_in_counts_as_one_request() {
        let tracker = Tracker::default();
        tracker.ready(Some(b'I'));

        // As tokio_postgres does it: Bind, Execute, Sync; then, once the server answered
        // CopyInResponse, the data, CopyDone and Sync. One ReadyForQuery answers it all.
        sent_all(&tracker, b"BES");
        tracker.received(b'2', None);
        tracker.received(b'G', Some(0));
        assert!(tracker.abandoned());
        sent_all(&tracker, b"ddcS");
        assert!(!settled(&tracker));
        tracker.received(b'C', Some(b'C'));
        tracker.received(b'Z', Some(b'I'));
        assert!(settled(&tracker));
        assert!(tracker.idle_outside_transaction());

        // The sink dropped mid-copy: CopyFail and Sync, an error, one ReadyForQuery.
        sent_all(&tracker, b"BES");
        tracker.received(b'G', Some(0));
        sent_all(&tracker, b"dfS");
        tracker.received(b'E', Some(b'S'));
        tracker.received(b'Z', Some(b'I'));
        assert!(settled(&tracker));

        // The copy dropped before the server's CopyInResponse arrived: everything was sent
        // first.
        sent_all(&tracker, b"BESfS");
        tracker.received(b'G', Some(0));
        assert!(!settled(&tracker));
        tracker.received(b'E', Some(b'S'));
        tracker.received(b'Z', Some(b'I'));
        assert!(settled(&tracker));

        // A request pipelined behind a copy keeps its own entry.
        sent_all(&tracker, b"BESfSQ");
        tracker.received(b'G', Some(0));
        tracker.received(b'E', Some(b'S'));
        tracker.received(b'Z', Some(b'I'));
        assert!(!settled(&tracker));
        tracker.received(b'Z', Some(b'I'));
        assert!(settled(&tracker));

        // A simple-query COPY: answered without any Sync.
        tracker.sent(b'Q');
        tracker.received(b'G', Some(0));
        sent_all(&tracker, b"dc");
        tracker.received(b'C', Some(b'C'));
        assert!(!settled(&tracker));
        tracker.received(b'Z', Some(b'I'));
        assert!(settled(&tracker));
        // A later extended request counts as usual.
        sent_all(&tracker, b"BES");
        assert!(!settled(&tracker));
        tracker.received(b'Z', Some(b'I'));
        assert!(settled(&tracker));
    }

    #[tokio::test]
    async fn settle_waits_for_the_last_answer_or_the_end() {
        let tracker = Arc::new(Tracker::default());
        tracker.ready(Some(b'I'));
        assert!(tracker.settle().await);
        sent_all(&tracker, b"QQ");
        let waiter = tokio::spawn({
            let tracker = Arc::clone(&tracker);
            async move { tracker.settle().await }
        });
        tokio::task::yield_now().await;
        tracker.ready(Some(b'T'));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        tracker.ready(Some(b'I'));
        assert!(waiter.await.unwrap());

        tracker.sent(b'Q');
        let waiter = tokio::spawn({
            let tracker = Arc::clone(&tracker);
            async move { tracker.settle().await }
        });
        tokio::task::yield_now().await;
        tracker.end();
        assert!(!waiter.await.unwrap());
    }

    #[test]
    fn the_cancel_key_is_swapped_wherever_the_reads_split() {
        let real = 0x1234_5678u32.to_be_bytes();
        let mut body = 4242i32.to_be_bytes().to_vec();
        body.extend_from_slice(&real);
        let mut wire = message(b'R', &[0, 0, 0, 0]);
        wire.extend(message(b'K', &body));
        wire.extend(message(b'Z', b"I"));
        let k_at = message(b'R', &[0, 0, 0, 0]).len() + 5;
        for chunk in 1..wire.len() {
            let tracker = Tracker::default();
            let (mut reads, mut key) = (Framer::new(false), KeySwap::new());
            let mut seen = wire.clone();
            for piece in seen.chunks_mut(chunk) {
                received(&mut reads, &mut key, &tracker, piece);
            }
            let got = tracker.key().expect("the key was seen");
            assert_eq!((got.pid, got.real), (4242, real), "chunk size {chunk}");
            assert_ne!(got.shown, real);
            // tokio_postgres reads the made-up key; everything else passes unchanged.
            assert_eq!(seen[k_at + 4..k_at + 8], got.shown);
            seen[k_at + 4..k_at + 8].copy_from_slice(&real);
            assert_eq!(seen, wire);
            assert!(tracker.idle_outside_transaction());
        }
    }

    #[test]
    fn a_made_up_key_is_never_the_real_one() {
        let mut key = KeySwap::new();
        let real = key.shown;
        let mut body = 7i32.to_be_bytes().to_vec();
        body.extend_from_slice(&real);
        let mut patches = Vec::new();
        key.take(
            &Piece {
                tag: b'K',
                body_len: 8,
                offset: 0,
                start: 0,
                bytes: &body,
            },
            &mut patches,
        );
        let got = key.key().unwrap();
        assert_eq!(got.real, real);
        assert_ne!(got.shown, real);
        assert_ne!(KeySwap::new().shown, KeySwap::new().shown);
    }

    #[test]
    fn only_this_sessions_cancel_request_goes_out_with_the_real_key() {
        let key = BackendKey {
            pid: 99,
            real: [1, 2, 3, 4],
            shown: [9, 9, 9, 9],
        };
        let mut rewrite = CancelRewrite {
            expected: key.cancel_request(key.shown),
            sent: key.cancel_request(key.real),
            written: 0,
        };
        let request = key.cancel_request(key.shown);
        assert_eq!(rewrite.next(&request[..10]).unwrap(), 0..10);
        rewrite.written = 10;
        let rest = rewrite.next(&request[10..]).unwrap();
        assert_eq!(rest, 10..16);
        assert_eq!(rewrite.sent[12..], [1, 2, 3, 4]);

        // Another session's request, or a request quoting the real key, is refused.
        let other = BackendKey { pid: 98, ..key };
        let fresh = CancelRewrite {
            written: 0,
            ..rewrite
        };
        assert!(fresh.next(&other.cancel_request(other.shown)).is_err());
        assert!(fresh.next(&key.cancel_request(key.real)).is_err());
        let shown = format!("{key:?}");
        assert!(shown.contains("99"), "{shown}");
        assert!(
            !shown.contains("1, 2") && !shown.contains("9, 9"),
            "{shown}"
        );
    }
}
