//! Simulated server round trips, for the suites that hold a connection for a while.
//!
//! `tokio::time::sleep` rounds up to the timer wheel's 1 ms, far too coarse for a 200 µs
//! request, and a busy wait would take the core the pools run on. Instead one OS thread is the
//! "server" of every connection: a request is a deadline and a oneshot; the thread keeps the
//! pending ones ordered by deadline, sleeps until the earliest (`recv_timeout`, so a new
//! request wakes it), and answers each once its deadline has passed. Requests overlap like
//! requests on separate connections do; what one really takes (deadline overshoot, the wake-up
//! of the task) is measured by the suites and printed with their figures.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// One pending request: when to answer, and where.
struct Request {
    due: Instant,
    /// Breaks ties between equal deadlines, in arrival order.
    seq: u64,
    reply: oneshot::Sender<()>,
}

impl PartialEq for Request {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Request {}

impl PartialOrd for Request {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Request {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// The server thread's inbox, started on first use and shared by every runtime.
fn server() -> &'static mpsc::Sender<Request> {
    static SERVER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("simulated server".into())
            .spawn(move || serve(&rx))
            .expect("the simulated server's thread");
        tx
    })
}

/// Answers every request once its deadline has passed, until the process ends.
fn serve(inbox: &mpsc::Receiver<Request>) {
    // Linux lets a sleeping thread wake up to 50 µs late by default, to batch wake-ups; a
    // 200 µs round trip needs better. Without it the requests take a quarter longer.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
    let mut pending: BinaryHeap<Reverse<Request>> = BinaryHeap::new();
    loop {
        let now = Instant::now();
        while pending.peek().is_some_and(|r| r.0.due <= now) {
            let Reverse(request) = pending.pop().expect("peeked");
            // A caller that gave up has dropped its receiver: nothing to answer.
            let _ = request.reply.send(());
        }
        let next = match pending.peek() {
            Some(first) => inbox.recv_timeout(first.0.due.saturating_duration_since(now)),
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(request) => pending.push(Reverse(request)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One request that the server answers `latency` after it was sent.
pub async fn round_trip(latency: Duration) {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let (reply, answer) = oneshot::channel();
    let request = Request {
        due: Instant::now() + latency,
        seq: SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        reply,
    };
    server().send(request).expect("the simulated server runs");
    answer.await.expect("the simulated server answers");
}
