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
        closing: None,
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

/// The messages in `wire` (tagged), as (tag, body).
fn messages(mut wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let len = u32::from_be_bytes([wire[1], wire[2], wire[3], wire[4]]) as usize;
        out.push((wire[0], wire[5..1 + len].to_vec()));
        wire = &wire[1 + len..];
    }
    out
}

#[test]
fn named_statements_go_out_unnamed_and_are_parsed_again_where_used() {
    use super::unnamed::UnnamedStatements;

    let mut unnamed = UnnamedStatements::new();
    let mut startup = 8u32.to_be_bytes().to_vec();
    startup.extend_from_slice(&[0, 3, 0, 0]);
    let parse_body = b"s1\0SELECT $1\0\0\x01\0\0\0\x17".to_vec();
    let mut prepare = message(frontend::PARSE, &parse_body);
    prepare.extend(message(frontend::DESCRIBE, b"Ss1\0"));
    prepare.extend(message(frontend::SYNC, b""));
    let mut execute = message(frontend::BIND, b"\0s1\0\0\0\0\0\0\0");
    execute.extend(message(frontend::EXECUTE, b"\0\0\0\0\0"));
    execute.extend(message(frontend::SYNC, b""));
    let mut close = message(frontend::CLOSE, b"Ss1\0");
    close.extend(message(frontend::SYNC, b""));

    // Written one byte at a time: whole messages come out all the same.
    let mut out = Vec::new();
    for byte in startup.iter().chain(&prepare).chain(&execute).chain(&close) {
        unnamed.outgoing(std::slice::from_ref(byte), &mut out);
    }
    assert_eq!(out[..8], startup[..]);
    let sent = messages(&out[8..]);
    let unnamed_parse = (frontend::PARSE, parse_body[2..].to_vec());
    assert_eq!(
        sent,
        vec![
            unnamed_parse.clone(),
            (frontend::DESCRIBE, b"S\0".to_vec()),
            (frontend::SYNC, vec![]),
            // The execution is a request of its own: the statement is parsed again in it.
            unnamed_parse,
            (frontend::BIND, b"\0\0\0\0\0\0\0\0".to_vec()),
            (frontend::EXECUTE, b"\0\0\0\0\0".to_vec()),
            (frontend::SYNC, vec![]),
            (frontend::CLOSE, b"S\0".to_vec()),
            (frontend::SYNC, vec![]),
        ]
    );

    // The replies: the added Parse's ParseComplete is taken out, split anywhere.
    let ready = message(backend::READY_FOR_QUERY, &[status::IDLE]);
    let mut replies = ready.clone();
    replies.extend(message(backend::PARSE_COMPLETE, b""));
    replies.extend(message(b't', b"\0\x01\0\0\0\x17"));
    replies.extend(message(b'n', b""));
    replies.extend(ready.clone());
    let expected = replies.clone();
    replies.extend(message(backend::PARSE_COMPLETE, b""));
    let mut expected_all = expected;
    let rest = [
        message(backend::BIND_COMPLETE, b""),
        message(backend::COMMAND_COMPLETE, b"SELECT 0\0"),
        ready.clone(),
        message(b'3', b""),
        ready,
    ]
    .concat();
    replies.extend(&rest);
    expected_all.extend(&rest);
    let mut kept = Vec::new();
    for chunk in replies.chunks(3) {
        let mut data = chunk.to_vec();
        let n = unnamed.incoming(&mut data);
        kept.extend_from_slice(&data[..n]);
    }
    assert_eq!(kept, expected_all);
}

#[test]
fn a_refused_parse_takes_its_statement_and_pending_completions_with_it() {
    use super::unnamed::UnnamedStatements;

    let mut unnamed = UnnamedStatements::new();
    let mut out = Vec::new();
    unnamed.outgoing(&8u32.to_be_bytes(), &mut out);
    unnamed.outgoing(&[0, 3, 0, 0], &mut out);
    let mut prepare = message(frontend::PARSE, b"s2\0SELEC\0\0\0");
    prepare.extend(message(frontend::SYNC, b""));
    unnamed.outgoing(&prepare, &mut out);
    let mut startup_ready = message(backend::READY_FOR_QUERY, &[status::IDLE]);
    let n = unnamed.incoming(&mut startup_ready);
    assert_eq!(n, startup_ready.len());
    let mut refused = message(backend::ERROR_RESPONSE, b"Mno\0\0");
    refused.extend(message(backend::READY_FOR_QUERY, &[status::IDLE]));
    let len = refused.len();
    assert_eq!(unnamed.incoming(&mut refused), len);
    // A Bind of it now goes to the server as it is, which answers for it.
    out.clear();
    let bind = message(frontend::BIND, b"\0s2\0\0\0\0\0\0\0");
    unnamed.outgoing(&bind, &mut out);
    assert_eq!(out, bind);
}
