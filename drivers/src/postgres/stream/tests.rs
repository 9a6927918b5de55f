//! The tracker and the framer against byte streams written by hand.

use std::sync::Arc;

use super::framer::{Framer, Piece};
use super::io::{received, CancelRewrite, KeySwap};
use super::tags::{backend, frontend, status};
use super::tracker::Tracker;
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
    wire.extend(message(frontend::QUERY, b"SELECT 1\0"));
    wire.extend(message(frontend::SYNC, b""));
    wire.extend(message(backend::READY_FOR_QUERY, &[status::IN_TRANSACTION]));
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
                // The first byte of a body is reported with its tag: `S` of `SELECT`.
                (frontend::QUERY, Some(b'S')),
                (frontend::SYNC, None),
                (backend::READY_FOR_QUERY, Some(status::IN_TRANSACTION))
            ],
            "chunk size {chunk}"
        );
    }
}

#[test]
fn tracker_tells_abandoned_requests_from_statement_closes() {
    let tracker = Tracker::default();
    tracker.ready(Some(status::IDLE)); // end of startup
    assert!(tracker.idle_outside_transaction());

    // Close + Sync, as sent when a Statement is dropped: harmless while unanswered.
    tracker.sent(frontend::CLOSE);
    tracker.sent(frontend::SYNC);
    assert!(!tracker.abandoned());
    assert!(!tracker.idle_outside_transaction());
    tracker.ready(Some(status::IDLE));

    // Parse/Bind/Execute/Sync of a query: abandoned until answered.
    for tag in [
        frontend::PARSE,
        frontend::BIND,
        frontend::EXECUTE,
        frontend::SYNC,
    ] {
        tracker.sent(tag);
    }
    assert!(tracker.abandoned());
    tracker.ready(Some(status::IN_TRANSACTION));
    assert!(!tracker.abandoned());
    assert!(!tracker.idle_outside_transaction());

    tracker.sent(frontend::QUERY);
    assert!(tracker.abandoned());
    tracker.ready(Some(status::IDLE));
    assert!(tracker.idle_outside_transaction());

    // A failed request is over once the error arrived, even before its ReadyForQuery.
    tracker.sent(frontend::QUERY);
    tracker.received(backend::ERROR_RESPONSE, Some(b'S'));
    assert!(!tracker.abandoned());
    tracker.received(backend::READY_FOR_QUERY, Some(status::FAILED));
    assert!(!tracker.idle_outside_transaction());

    // An extended request is over at its CommandComplete; a simple query is not.
    for tag in [frontend::BIND, frontend::EXECUTE, frontend::SYNC] {
        tracker.sent(tag);
    }
    tracker.received(backend::COMMAND_COMPLETE, Some(b'S'));
    assert!(!tracker.abandoned());
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
    tracker.sent(frontend::QUERY);
    tracker.received(backend::COMMAND_COMPLETE, Some(b'S'));
    assert!(tracker.abandoned());
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));

    // A result left part-read is streaming until its command completes.
    sent_all(
        &tracker,
        &[frontend::BIND, frontend::EXECUTE, frontend::SYNC],
    );
    assert!(!tracker.streaming());
    tracker.received(backend::DATA_ROW, Some(0));
    assert!(tracker.streaming());
    tracker.received(backend::COMMAND_COMPLETE, Some(b'S'));
    assert!(!tracker.streaming());
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
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
    tracker.ready(Some(status::IDLE));

    // As tokio_postgres does it: Bind, Execute, Sync; then, once the server answered
    // CopyInResponse, the data, CopyDone and Sync. One ReadyForQuery answers it all.
    sent_all(
        &tracker,
        &[frontend::BIND, frontend::EXECUTE, frontend::SYNC],
    );
    tracker.received(backend::BIND_COMPLETE, None);
    tracker.received(backend::COPY_IN_RESPONSE, Some(0));
    assert!(tracker.abandoned());
    sent_all(
        &tracker,
        &[
            frontend::COPY_DATA,
            frontend::COPY_DATA,
            frontend::COPY_DONE,
            frontend::SYNC,
        ],
    );
    assert!(!settled(&tracker));
    tracker.received(backend::COMMAND_COMPLETE, Some(b'C'));
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
    assert!(settled(&tracker));
    assert!(tracker.idle_outside_transaction());

    // The sink dropped mid-copy: CopyFail and Sync, an error, one ReadyForQuery.
    sent_all(
        &tracker,
        &[frontend::BIND, frontend::EXECUTE, frontend::SYNC],
    );
    tracker.received(backend::COPY_IN_RESPONSE, Some(0));
    sent_all(
        &tracker,
        &[frontend::COPY_DATA, frontend::COPY_FAIL, frontend::SYNC],
    );
    tracker.received(backend::ERROR_RESPONSE, Some(b'S'));
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
    assert!(settled(&tracker));

    // The copy dropped before the server's CopyInResponse arrived: everything was sent
    // first.
    sent_all(
        &tracker,
        &[
            frontend::BIND,
            frontend::EXECUTE,
            frontend::SYNC,
            frontend::COPY_FAIL,
            frontend::SYNC,
        ],
    );
    tracker.received(backend::COPY_IN_RESPONSE, Some(0));
    assert!(!settled(&tracker));
    tracker.received(backend::ERROR_RESPONSE, Some(b'S'));
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
    assert!(settled(&tracker));

    // A request pipelined behind a copy keeps its own entry.
    sent_all(
        &tracker,
        &[
            frontend::BIND,
            frontend::EXECUTE,
            frontend::SYNC,
            frontend::COPY_FAIL,
            frontend::SYNC,
            frontend::QUERY,
        ],
    );
    tracker.received(backend::COPY_IN_RESPONSE, Some(0));
    tracker.received(backend::ERROR_RESPONSE, Some(b'S'));
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
    assert!(!settled(&tracker));
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
    assert!(settled(&tracker));

    // A simple-query COPY: answered without any Sync.
    tracker.sent(frontend::QUERY);
    tracker.received(backend::COPY_IN_RESPONSE, Some(0));
    sent_all(&tracker, &[frontend::COPY_DATA, frontend::COPY_DONE]);
    tracker.received(backend::COMMAND_COMPLETE, Some(b'C'));
    assert!(!settled(&tracker));
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
    assert!(settled(&tracker));
    // A later extended request counts as usual.
    sent_all(
        &tracker,
        &[frontend::BIND, frontend::EXECUTE, frontend::SYNC],
    );
    assert!(!settled(&tracker));
    tracker.received(backend::READY_FOR_QUERY, Some(status::IDLE));
    assert!(settled(&tracker));
}

#[tokio::test]
async fn settle_waits_for_the_last_answer_or_the_end() {
    let tracker = Arc::new(Tracker::default());
    tracker.ready(Some(status::IDLE));
    assert!(tracker.settle().await);
    sent_all(&tracker, &[frontend::QUERY, frontend::QUERY]);
    let waiter = tokio::spawn({
        let tracker = Arc::clone(&tracker);
        async move { tracker.settle().await }
    });
    tokio::task::yield_now().await;
    tracker.ready(Some(status::IN_TRANSACTION));
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    tracker.ready(Some(status::IDLE));
    assert!(waiter.await.unwrap());

    tracker.sent(frontend::QUERY);
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
    let mut wire = message(backend::AUTHENTICATION, &[0, 0, 0, 0]);
    wire.extend(message(backend::BACKEND_KEY_DATA, &body));
    wire.extend(message(backend::READY_FOR_QUERY, &[status::IDLE]));
    let k_at = message(backend::AUTHENTICATION, &[0, 0, 0, 0]).len() + 5;
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
            tag: backend::BACKEND_KEY_DATA,
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
