//! What the commands sent on a connection did to it: the bookkeeping behind `reset` and
//! `has_broken`, shared by single and cluster connections.

use ::redis::aio::ConnectionLike;
use ::redis::{Arg, Cmd, ErrorKind, Pipeline, RedisResult, ServerErrorKind, Value};

/// What one command does to the connection's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Nothing that outlives the command.
    None,
    /// `MULTI`: commands are queued until `EXEC` or `DISCARD`.
    Multi,
    /// `WATCH`: keys watched until `EXEC`, `DISCARD` or `UNWATCH`.
    Watch,
    /// `EXEC` or `DISCARD`: ends a transaction and every watch.
    EndTransaction,
    /// `UNWATCH`.
    Unwatch,
    /// Changes other session state that `RESET` clears (database, user, protocol, name,
    /// tracking, read-only mode).
    Session,
    /// Leaves the connection unfit for plain request/reply use.
    Unusable,
}

fn effect(cmd: &Cmd) -> Effect {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let Some(name) = args.next() else {
        return Effect::None;
    };
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    if is("MULTI") {
        Effect::Multi
    } else if is("WATCH") {
        Effect::Watch
    } else if is("EXEC") || is("DISCARD") {
        Effect::EndTransaction
    } else if is("UNWATCH") {
        Effect::Unwatch
    } else if [
        "SELECT",
        "AUTH",
        "HELLO",
        "READONLY",
        "READWRITE",
        "RESET",
        "ASKING",
    ]
    .iter()
    .any(|w| is(w))
    {
        Effect::Session
    } else if [
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "MONITOR",
        "QUIT",
        "SHUTDOWN",
        "SYNC",
        "PSYNC",
        "REPLCONF",
    ]
    .iter()
    .any(|w| is(w))
    {
        Effect::Unusable
    } else if is("CLIENT") {
        client_effect(args.next().unwrap_or_default())
    } else {
        Effect::None
    }
}

/// `CLIENT REPLY OFF|SKIP` desynchronises replies; the reading subcommands change nothing;
/// the rest (`SETNAME`, `TRACKING`, `NO-EVICT`, ...) change the session.
fn client_effect(sub: &[u8]) -> Effect {
    let is = |word: &str| sub.eq_ignore_ascii_case(word.as_bytes());
    if is("REPLY") {
        Effect::Unusable
    } else if [
        "ID",
        "INFO",
        "LIST",
        "GETNAME",
        "KILL",
        "TRACKINGINFO",
        "GETREDIR",
    ]
    .iter()
    .any(|w| is(w))
    {
        Effect::None
    } else {
        Effect::Session
    }
}

/// Whether an error means the reply was read in full (the server answered with an error), as
/// opposed to a failure that leaves the connection in an unknown state.
pub(crate) fn is_server_reply(error: &::redis::RedisError) -> bool {
    matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}

/// The state of one connection's session as far as the commands sent on it tell.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Session {
    /// A request was sent and its reply not yet read.
    in_flight: bool,
    /// The connection must not be used again.
    broken: bool,
    /// Inside `MULTI`.
    multi: bool,
    /// Keys are watched.
    watch: bool,
    /// Some other session setting was changed.
    changed: bool,
    /// The server refused a write with `READONLY`: it is a replica (perhaps a master demoted
    /// by a failover).
    read_only: bool,
}

impl Session {
    /// Called before `cmds` are sent: assumes the worst of them until their replies are read.
    pub(crate) fn before<'c>(&mut self, cmds: impl Iterator<Item = &'c Cmd>) {
        self.in_flight = true;
        for cmd in cmds {
            match effect(cmd) {
                Effect::Multi => self.multi = true,
                Effect::Watch => self.watch = true,
                Effect::Session => self.changed = true,
                Effect::Unusable => self.broken = true,
                Effect::None | Effect::EndTransaction | Effect::Unwatch => {}
            }
        }
    }

    /// Called once the replies to `cmds` are read (or reading them failed).
    pub(crate) fn after<'c, T>(
        &mut self,
        cmds: impl Iterator<Item = &'c Cmd>,
        result: &RedisResult<T>,
    ) {
        self.in_flight = false;
        if let Err(e) = result {
            if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
                self.read_only = true;
            }
            if !is_server_reply(e) {
                self.broken = true;
                return;
            }
        }
        // The server answered: replay the commands in order to learn where they left the
        // transaction. `MULTI` and `WATCH` were already noted in `before`.
        let mut multi = self.multi;
        let mut watch = self.watch;
        for cmd in cmds {
            match effect(cmd) {
                Effect::Multi => multi = true,
                Effect::Watch => watch = true,
                Effect::EndTransaction => {
                    multi = false;
                    watch = false;
                }
                Effect::Unwatch if !multi => watch = false,
                _ => {}
            }
        }
        self.multi = multi;
        self.watch = watch;
    }

    /// Sends `cmd` on `conn`, keeping the books on what it does to the session.
    pub(crate) async fn command<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        cmd: &Cmd,
    ) -> RedisResult<Value> {
        self.before(std::iter::once(cmd));
        let result = conn.req_packed_command(cmd).await;
        self.after(std::iter::once(cmd), &result);
        if let Ok(value) = &result {
            self.note_read_only(std::slice::from_ref(value));
        }
        result
    }

    /// Sends `pipeline` on `conn` and reads `count` replies after the first `offset`, keeping
    /// the books on what it does to the session.
    pub(crate) async fn pipeline<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.before(pipeline.cmd_iter());
        let result = conn.req_packed_commands(pipeline, offset, count).await;
        self.after(pipeline.cmd_iter(), &result);
        if let Ok(values) = &result {
            self.note_read_only(values);
        }
        result
    }

    /// Notes a `READONLY` refusal among replies read in full (a pipeline's, or a
    /// transaction's inside `EXEC`'s reply).
    fn note_read_only(&mut self, values: &[Value]) {
        let refused = values.iter().any(|value| {
            match value {
            Value::ServerError(e) => e.kind() == Some(ServerErrorKind::ReadOnly),
            Value::Array(inner) => inner.iter().any(|v| {
                matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::ReadOnly))
            }),
            _ => false,
        }
        });
        self.read_only |= refused;
    }

    /// Whether the server refused a write as a replica (`READONLY`).
    pub(crate) fn saw_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the connection must be closed rather than pooled.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken || self.in_flight
    }

    /// Whether `RESET` is needed before the next borrower.
    pub(crate) fn is_dirty(&self) -> bool {
        self.multi || self.watch || self.changed
    }

    /// Marks the session as restored to its configured state.
    pub(crate) fn mark_clean(&mut self) {
        self.multi = false;
        self.watch = false;
        self.changed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::redis::cmd;

    fn ok() -> RedisResult<()> {
        Ok(())
    }

    #[test]
    fn plain_commands_leave_nothing() {
        let mut s = Session::default();
        let c = cmd("GET").arg("k").to_owned();
        s.before(std::iter::once(&c));
        assert!(s.is_broken(), "a reply not yet read");
        s.after(std::iter::once(&c), &ok());
        assert!(!s.is_broken() && !s.is_dirty());
    }

    #[test]
    fn transactions_are_tracked() {
        let mut s = Session::default();
        for name in ["multi", "SET"] {
            let c = cmd(name);
            s.before(std::iter::once(&c));
            s.after(std::iter::once(&c), &ok());
        }
        assert!(s.is_dirty(), "inside MULTI");
        let exec = cmd("EXEC");
        s.before(std::iter::once(&exec));
        s.after(std::iter::once(&exec), &ok());
        assert!(!s.is_dirty(), "EXEC ended it");

        let watch = cmd("WATCH").arg("k").to_owned();
        s.before(std::iter::once(&watch));
        s.after(std::iter::once(&watch), &ok());
        assert!(s.is_dirty());
        let unwatch = cmd("UNWATCH");
        s.before(std::iter::once(&unwatch));
        s.after(std::iter::once(&unwatch), &ok());
        assert!(!s.is_dirty());
    }

    #[test]
    fn session_changes_need_a_reset() {
        let mut s = Session::default();
        let c = cmd("CLIENT").arg("SETNAME").arg("x").to_owned();
        s.before(std::iter::once(&c));
        s.after(std::iter::once(&c), &ok());
        assert!(s.is_dirty());
        s.mark_clean();
        assert!(!s.is_dirty());
        let id = cmd("client").arg("id").to_owned();
        s.before(std::iter::once(&id));
        s.after(std::iter::once(&id), &ok());
        assert!(!s.is_dirty());
    }

    #[test]
    fn failures_and_pubsub_break_the_connection() {
        let mut s = Session::default();
        let c = cmd("GET");
        s.before(std::iter::once(&c));
        let io: RedisResult<()> = Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
        s.after(std::iter::once(&c), &io);
        assert!(s.is_broken());

        let mut s = Session::default();
        let sub = cmd("SUBSCRIBE").arg("ch").to_owned();
        s.before(std::iter::once(&sub));
        s.after(std::iter::once(&sub), &ok());
        assert!(s.is_broken());

        let mut s = Session::default();
        let reply = cmd("CLIENT").arg("REPLY").arg("OFF").to_owned();
        s.before(std::iter::once(&reply));
        assert!(s.is_broken());
    }
}
