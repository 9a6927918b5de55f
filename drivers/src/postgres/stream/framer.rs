//! [`Framer`]: splits a byte stream into protocol messages as it passes.

/// A piece of a message body as it passes the [`Framer`].
pub(crate) struct Piece<'a> {
    /// The message's tag.
    pub(super) tag: u8,
    /// The length of the whole body.
    pub(super) body_len: usize,
    /// Where in the body the piece starts.
    pub(super) offset: usize,
    /// Where in the data fed the piece starts.
    pub(super) start: usize,
    /// The piece.
    pub(super) bytes: &'a [u8],
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
