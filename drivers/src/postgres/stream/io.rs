//! [`PgStream`]: the client's socket (plain or TLS), which reports the messages it carries to a
//! [`Tracker`] and keeps the real cancel key from the client.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
#[cfg(feature = "tls")]
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::tls::{ChannelBinding, TlsStream};
use tokio_postgres::Socket;

use super::framer::{Framer, Piece};
use super::tags::backend;
use super::tracker::{BackendKey, Tracker};
use super::unnamed::UnnamedStatements;

/// Swaps the secret key of the server's `BackendKeyData` for a made-up one on its way to
/// `tokio_postgres`, and keeps the real one.
pub(super) struct KeySwap {
    /// The body as received: the process id, then the secret key.
    pub(super) body: [u8; 8],
    /// How many bytes of `body` arrived.
    pub(super) seen: usize,
    /// What `tokio_postgres` gets instead of the secret key.
    pub(super) shown: [u8; 4],
}

impl KeySwap {
    pub(super) fn new() -> Self {
        KeySwap {
            body: [0; 8],
            seen: 0,
            shown: made_up_key(),
        }
    }

    /// Takes in a piece of a `BackendKeyData` body, and notes which bytes of the data must be
    /// overwritten (index, byte) so only the made-up key passes on.
    pub(super) fn take(&mut self, piece: &Piece<'_>, patches: &mut Vec<(usize, u8)>) {
        // Protocol 3.0, the one `tokio_postgres` speaks: a 4-byte process id and a 4-byte key.
        if piece.tag != backend::BACKEND_KEY_DATA || piece.body_len != 8 {
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
    pub(super) fn key(&self) -> Option<BackendKey> {
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

pub(super) enum Inner {
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
    /// In PgBouncer mode: the statement rewriting, and the rewritten bytes not yet written.
    unnamed: Option<(Box<UnnamedStatements>, Vec<u8>)>,
}

/// The cancel request `tokio_postgres` writes quotes the made-up key it was shown; on its way
/// out the real key takes its place. Anything else is refused, so the real key goes only to
/// the session it belongs to.
pub(super) struct CancelRewrite {
    /// The request `tokio_postgres` is expected to write.
    pub(super) expected: [u8; 16],
    /// What is sent instead.
    pub(super) sent: [u8; 16],
    /// How many bytes of it went out.
    pub(super) written: usize,
    /// Once the request is out: how long to wait for the peer to close the connection (see
    /// [`PgStream::poll_shutdown`]).
    pub(super) closing: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long a cancel connection waits for the peer to close it once the request is out.
const CANCEL_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl CancelRewrite {
    /// Which bytes of the rewritten request to write for `buf`, which must be the next part
    /// of the expected request.
    pub(super) fn next(&self, buf: &[u8]) -> io::Result<std::ops::Range<usize>> {
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
    /// `unnamed`: send only unnamed statements (see `unnamed`); never on a cancel connection,
    /// which sends nothing but its one request.
    pub(super) fn new(
        inner: Inner,
        tracker: Arc<Tracker>,
        cancel: Option<BackendKey>,
        unnamed: bool,
    ) -> Self {
        let unnamed =
            (unnamed && cancel.is_none()).then(|| (Box::new(UnnamedStatements::new()), Vec::new()));
        PgStream {
            unnamed,
            inner,
            tracker,
            writes: Framer::new(true),
            reads: Framer::new(false),
            key: KeySwap::new(),
            cancel: cancel.map(|key| CancelRewrite {
                expected: key.cancel_request(key.shown),
                sent: key.cancel_request(key.real),
                written: 0,
                closing: None,
            }),
        }
    }

    /// Writes the rewritten bytes still waiting, all of them or `Pending`.
    fn poll_write_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let waiting = match &mut self.unnamed {
                Some((_, waiting)) if !waiting.is_empty() => std::mem::take(waiting),
                _ => return Poll::Ready(Ok(())),
            };
            let result = self.poll_write_inner(cx, &waiting);
            let rest = match &result {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => &waiting[*n..],
                Poll::Ready(Err(_)) | Poll::Pending => &waiting[..],
            };
            if let Some((_, slot)) = &mut self.unnamed {
                slot.extend_from_slice(rest);
            }
            match result {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
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
        loop {
            let result = match &mut this.inner {
                Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
                #[cfg(feature = "tls")]
                Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            };
            if let Poll::Ready(Ok(())) = result {
                let data = &mut buf.filled_mut()[before..];
                if data.is_empty() {
                    // The end of the stream.
                    return result;
                }
                received(&mut this.reads, &mut this.key, &this.tracker, data);
                if let Some((unnamed, _)) = &mut this.unnamed {
                    let kept = unnamed.incoming(data);
                    buf.set_filled(before + kept);
                    // Nothing left (only replies taken out): an empty read would mean the end
                    // of the stream, so read on.
                    if kept == 0 {
                        continue;
                    }
                }
            }
            return result;
        }
    }
}

/// Reports the messages in `data` (bytes just read) to `tracker`, and swaps the secret of a
/// `BackendKeyData` among them in place.
pub(super) fn received(reads: &mut Framer, key: &mut KeySwap, tracker: &Tracker, data: &mut [u8]) {
    // Empty unless a `BackendKeyData` passes, which happens once, at startup.
    let mut patches = Vec::new();
    let mut key_done = false;
    reads.feed_with(
        data,
        |piece| key.take(&piece, &mut patches),
        |tag, first| {
            key_done |= tag == backend::BACKEND_KEY_DATA;
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
        if this.unnamed.is_some() {
            // The rewritten bytes of earlier writes go first; then these are taken whole.
            match this.poll_write_rewritten(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other.map(|r| r.map(|()| 0)),
            }
            if let Some((unnamed, waiting)) = &mut this.unnamed {
                unnamed.outgoing(buf, waiting);
            }
            let tracker = &this.tracker;
            this.writes.feed(buf, |tag, _| tracker.sent(tag));
            // Errors surface on the next write or flush.
            let _ = this.poll_write_rewritten(cx);
            return Poll::Ready(Ok(buf.len()));
        }
        let result = this.poll_write_inner(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            let tracker = &this.tracker;
            this.writes.feed(&buf[..n], |tag, _| tracker.sent(tag));
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_write_rewritten(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_write_rewritten(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        // A cancel request is done when the peer closes the connection, which is what libpq
        // waits for; shutting the socket for writing first would end it too soon for a pooler
        // (PgBouncer 1.18 drops a cancel whose connection ends before it has passed the
        // request on to the server).
        if let Some(cancel) = this.cancel.as_mut() {
            let closing = cancel
                .closing
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(CANCEL_CLOSE_WAIT)));
            return this.inner.poll_peer_close(cx, closing);
        }
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Inner {
    /// Reads (and discards) until the peer closes the connection, or `limit` passes.
    fn poll_peer_close(
        &mut self,
        cx: &mut Context<'_>,
        limit: &mut Pin<Box<tokio::time::Sleep>>,
    ) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 64];
        loop {
            if limit.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            let read = match self {
                Inner::Plain(s) => Pin::new(s).poll_read(cx, &mut buf),
                #[cfg(feature = "tls")]
                Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, &mut buf),
            };
            match read {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                // Closed, or failed: either way nothing more will come.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
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
