//! [`Tracker`]: what the stream has seen of the conversation (unanswered requests, the
//! transaction status, the session's cancel key), and [`BackendKey`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;

use super::tags::{backend, frontend, status};

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
    pub(super) real: [u8; 4],
    pub(super) shown: [u8; 4],
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
    pub(super) fn cancel_request(&self, key: [u8; 4]) -> [u8; 16] {
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

    pub(super) fn sent(&self, tag: u8) {
        let mut track = self.lock();
        match tag {
            frontend::QUERY => track.unanswered.push_back(Pending::new(false, false)),
            frontend::SYNC => match track.copy_in {
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
            frontend::COPY_DONE | frontend::COPY_FAIL => {
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
            frontend::CLOSE => {}
            _ => track.only_closes = false,
        }
    }

    pub(super) fn received(&self, tag: u8, first: Option<u8>) {
        match tag {
            backend::READY_FOR_QUERY => self.ready(first),
            // ErrorResponse: the server skips the rest of the request.
            backend::ERROR_RESPONSE => {
                if let Some(front) = self.lock().unanswered.front_mut() {
                    front.harmless = true;
                }
            }
            // CommandComplete, EmptyQueryResponse, PortalSuspended: the one command of an
            // extended-protocol request is done.
            backend::COMMAND_COMPLETE
            | backend::EMPTY_QUERY_RESPONSE
            | backend::PORTAL_SUSPENDED => {
                if let Some(front) = self.lock().unanswered.front_mut() {
                    front.harmless |= front.extended;
                }
            }
            // CopyInResponse.
            backend::COPY_IN_RESPONSE => self.copy_in_started(),
            // DataRow, CopyData.
            backend::DATA_ROW | backend::COPY_DATA => {
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

    pub(super) fn ready(&self, status: Option<u8>) {
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

    pub(super) fn set_key(&self, key: BackendKey) {
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
        track.unanswered.is_empty() && track.status == Some(status::IDLE)
    }
}
