//! [`UnnamedStatements`]: the rewriting behind [`Config::pgbouncer`](crate::postgres::Config),
//! under which the server only ever sees the unnamed statement.
//!
//! A pooler in transaction mode (PgBouncer's `pool_mode = transaction`) hands each transaction,
//! and outside a transaction each request, to whichever server connection is free. A named
//! prepared statement lives on one server connection only, so `tokio_postgres`'s way of
//! running a query (prepare `s1` in one request, bind it in the next, close it in a third)
//! meets "prepared statement "s1" does not exist" when the second request lands elsewhere, and
//! "already exists" when another client's `s1` is still on the connection it lands on.
//!
//! So every named statement is kept here, client side, and on the wire it becomes the unnamed
//! one: a `Parse` of `s1` goes out as a `Parse` of the unnamed statement, and a later `Bind`
//! or `Describe` of `s1` in a request that has not parsed it is preceded by a fresh `Parse`
//! of its text, in the same request, so it reaches the same server connection. The
//! `ParseComplete` answering such an added `Parse` is taken out of the replies before
//! `tokio_postgres` sees them. A `Close` of `s1` forgets it and closes the unnamed statement.
//! The server parses the query on every execution (no plan is kept between requests), which is
//! the price of not depending on the server connection.

use std::collections::{HashMap, VecDeque};

use super::tags::{backend, frontend};

/// Keeps the named statements client side and sends only unnamed ones (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct UnnamedStatements {
    /// Each named statement's `Parse` body after its name: the query text, its terminating
    /// zero, then the parameter types.
    parsed: HashMap<Vec<u8>, Vec<u8>>,
    /// Which named statement the unnamed one holds in the request being written, if any.
    slot: Option<Vec<u8>>,
    /// Outgoing bytes of a message not complete yet.
    partial: Vec<u8>,
    /// The first outgoing message (the startup message) has no tag.
    started: bool,
    /// The `Parse` messages of the request being written, in order.
    writing: VecDeque<ParseSent>,
    /// The same for every request sent and not yet answered by its `ReadyForQuery`, oldest
    /// first. Starts with the startup, whose `ReadyForQuery` answers no request.
    requests: VecDeque<Request>,
    /// Incoming: the bytes of the current message still to pass, and whether to drop them.
    incoming_left: usize,
    incoming_dropped: bool,
    /// Incoming: header bytes of the current message seen so far (tag and length).
    incoming_header: [u8; 5],
    incoming_filled: usize,
}

/// A `Parse` that went out, awaiting its `ParseComplete`.
#[derive(Debug)]
enum ParseSent {
    /// Added here: its `ParseComplete` is taken out of the replies.
    Added,
    /// `tokio_postgres`'s own, of the named statement given, if any: forgotten again if the
    /// server refuses it (a statement that failed to prepare is never closed).
    Own(Option<Vec<u8>>),
}

#[derive(Debug, Default)]
struct Request {
    parses: VecDeque<ParseSent>,
    /// Ended by `Sync` (rather than a simple `Query`).
    extended: bool,
    /// A `COPY ... FROM STDIN` started in it: the server skips its `Sync`, and the
    /// `ReadyForQuery` it sends answers the next request's `Sync` too.
    absorbs_next: bool,
}

impl UnnamedStatements {
    pub(crate) fn new() -> Self {
        UnnamedStatements {
            requests: VecDeque::from([Request::default()]),
            ..UnnamedStatements::default()
        }
    }

    /// Takes in bytes `tokio_postgres` writes and appends what goes to the server in their
    /// place to `out`. Bytes of an incomplete message wait for the rest.
    pub(crate) fn outgoing(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.partial.extend_from_slice(data);
        let mut at = 0;
        loop {
            let rest = &self.partial[at..];
            let header = if self.started { 5 } else { 4 };
            if rest.len() < header {
                break;
            }
            let len_at = header - 4;
            let len = u32::from_be_bytes([
                rest[len_at],
                rest[len_at + 1],
                rest[len_at + 2],
                rest[len_at + 3],
            ]) as usize;
            let total = len_at + len.max(4);
            if rest.len() < total {
                break;
            }
            let message = rest[..total].to_vec();
            at += total;
            if self.started {
                self.rewrite(message[0], &message[5..], &message, out);
            } else {
                self.started = true;
                out.extend_from_slice(&message);
            }
        }
        self.partial.drain(..at);
    }

    fn rewrite(&mut self, tag: u8, body: &[u8], whole: &[u8], out: &mut Vec<u8>) {
        match tag {
            frontend::PARSE => {
                let (name, rest) = split_name(body);
                if name.is_empty() {
                    self.slot = None;
                    out.extend_from_slice(whole);
                    self.writing.push_back(ParseSent::Own(None));
                } else {
                    self.parsed.insert(name.to_vec(), rest.to_vec());
                    self.slot = Some(name.to_vec());
                    put(out, frontend::PARSE, &[b"\0", rest]);
                    self.writing.push_back(ParseSent::Own(Some(name.to_vec())));
                }
            }
            frontend::BIND => {
                let (portal, after) = split_name(body);
                let (statement, rest) = split_name(after);
                if self.ensure_parsed(statement, out) {
                    put(out, frontend::BIND, &[portal, b"\0\0", rest]);
                } else {
                    out.extend_from_slice(whole);
                }
            }
            frontend::DESCRIBE if body.first() == Some(&b'S') => {
                let (statement, _) = split_name(&body[1..]);
                if self.ensure_parsed(statement, out) {
                    put(out, frontend::DESCRIBE, &[b"S\0"]);
                } else {
                    out.extend_from_slice(whole);
                }
            }
            frontend::CLOSE if body.first() == Some(&b'S') => {
                let (statement, _) = split_name(&body[1..]);
                if statement.is_empty() || self.parsed.remove(statement).is_none() {
                    out.extend_from_slice(whole);
                } else {
                    // Closing the unnamed statement is harmless, and is answered as the
                    // close `tokio_postgres` waits for.
                    self.slot = None;
                    put(out, frontend::CLOSE, &[b"S\0"]);
                }
            }
            frontend::SYNC | frontend::QUERY => {
                // The next request may reach another server connection.
                self.slot = None;
                self.requests.push_back(Request {
                    parses: std::mem::take(&mut self.writing),
                    extended: tag == frontend::SYNC,
                    absorbs_next: false,
                });
                out.extend_from_slice(whole);
            }
            _ => out.extend_from_slice(whole),
        }
    }

    /// Makes the unnamed statement hold `statement` for what follows in this request, with a
    /// `Parse` unless it already does. False for the unnamed statement and for names never
    /// parsed here (sent on unchanged: the server answers for those).
    fn ensure_parsed(&mut self, statement: &[u8], out: &mut Vec<u8>) -> bool {
        if statement.is_empty() {
            return false;
        }
        let Some(rest) = self.parsed.get(statement) else {
            return false;
        };
        if self.slot.as_deref() != Some(statement) {
            put(out, frontend::PARSE, &[b"\0", rest]);
            self.writing.push_back(ParseSent::Added);
            self.slot = Some(statement.to_vec());
        }
        true
    }

    /// Takes out of `data` (bytes just read, whole or in part of messages) the `ParseComplete`
    /// messages that answer `Parse` messages added here, and returns how many bytes remain at
    /// its start.
    pub(crate) fn incoming(&mut self, data: &mut [u8]) -> usize {
        let mut kept = 0;
        let mut at = 0;
        while at < data.len() {
            if self.incoming_left > 0 {
                let n = self.incoming_left.min(data.len() - at);
                if !self.incoming_dropped {
                    data.copy_within(at..at + n, kept);
                    kept += n;
                }
                at += n;
                self.incoming_left -= n;
                continue;
            }
            let byte = data[at];
            at += 1;
            self.incoming_header[self.incoming_filled] = byte;
            self.incoming_filled += 1;
            if self.incoming_filled == 1 {
                self.incoming_dropped = self.on_message(byte);
            }
            if !self.incoming_dropped {
                data[kept] = byte;
                kept += 1;
            }
            if self.incoming_filled == 5 {
                let h = self.incoming_header;
                let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
                self.incoming_left = len.saturating_sub(4);
                self.incoming_filled = 0;
            }
        }
        kept
    }

    /// A server message tagged `tag` begins: updates what the replies have reached, and says
    /// whether the message is to be dropped.
    fn on_message(&mut self, tag: u8) -> bool {
        match tag {
            backend::PARSE_COMPLETE => matches!(
                self.requests.front_mut().and_then(|r| r.parses.pop_front()),
                Some(ParseSent::Added)
            ),
            // The server skips the rest of the request: no more `ParseComplete` for it, and a
            // statement whose `Parse` got none does not exist.
            backend::ERROR_RESPONSE => {
                if let Some(front) = self.requests.front_mut() {
                    for parse in front.parses.drain(..) {
                        if let ParseSent::Own(Some(name)) = parse {
                            self.parsed.remove(&name);
                        }
                    }
                }
                false
            }
            backend::COPY_IN_RESPONSE => {
                if let Some(front) = self.requests.front_mut() {
                    front.absorbs_next = front.extended;
                }
                false
            }
            backend::READY_FOR_QUERY => {
                if let Some(front) = self.requests.pop_front() {
                    if front.absorbs_next {
                        self.requests.pop_front();
                    }
                }
                false
            }
            _ => false,
        }
    }
}

/// A zero-terminated name at the start of `body`, and what follows its zero.
fn split_name(body: &[u8]) -> (&[u8], &[u8]) {
    match body.iter().position(|&b| b == 0) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &[]),
    }
}

/// Appends a message tagged `tag` whose body is `parts`, one after the other.
fn put(out: &mut Vec<u8>, tag: u8, parts: &[&[u8]]) {
    let len: usize = 4 + parts.iter().map(|p| p.len()).sum::<usize>();
    out.push(tag);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
}
