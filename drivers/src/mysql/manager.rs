//! [`Manager`]: opens, checks and resets MySQL connections for the pool.

use std::fmt;

use mysql_async::prelude::Queryable;
use mysql_async::{ChangeUserOpts, Conn, Opts, QueryResult, TextProtocol};
use pool_core::ErrorKind;

use super::Error;
use crate::unknown_host::unresolved_host;

/// Opens [`mysql_async::Conn`]s with fixed options and keeps them clean between borrowers.
///
/// Made by [`Config::manager`](crate::DriverConfig::manager).
#[derive(Clone)]
pub struct Manager {
    opts: Opts,
}

impl Manager {
    pub(super) fn new(opts: Opts) -> Self {
        Manager { opts }
    }

    /// The connection options every connection is opened with.
    pub fn opts(&self) -> &Opts {
        &self.opts
    }

    /// Turns a failed connect into the most precise [`Error`].
    async fn connect_error(&self, error: mysql_async::Error) -> Error {
        if let mysql_async::Error::Io(_) = error {
            // The driver reports a failed name lookup as an uncategorised I/O error, which
            // would read as transient. Only on this failure path, look the name up again to
            // tell "no such host" (permanent) from a network problem.
            if self.opts.socket().is_none() {
                let host = self.opts.ip_or_hostname();
                if let Some((host, source)) = unresolved_host([(host, self.opts.tcp_port())]).await
                {
                    return Error::UnknownHost { host, source };
                }
            }
        }
        Error::from_connect(error)
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not `Opts`' own Debug: it would print the password.
        f.debug_struct("Manager")
            .field("host", &self.opts.ip_or_hostname())
            .field("port", &self.opts.tcp_port())
            .field("user", &self.opts.user())
            .field("database", &self.opts.db_name())
            .finish_non_exhaustive()
    }
}

impl pool_core::Manager for Manager {
    type Connection = Conn;
    type Error = Error;

    async fn connect(&self) -> Result<Conn, Error> {
        match Conn::new(self.opts.clone()).await {
            Ok(conn) => Ok(conn),
            Err(e) => Err(self.connect_error(e).await),
        }
    }

    /// `COM_PING`.
    async fn check(&self, conn: &mut Conn) -> Result<(), Error> {
        conn.ping().await?;
        Ok(())
    }

    /// `COM_RESET_CONNECTION`, or `COM_CHANGE_USER` where the server lacks it. The driver first
    /// rolls back a transaction its `Transaction` guard left open (a result left unread never
    /// gets this far: [`has_broken`](pool_core::Manager::has_broken) closed that connection);
    /// the server then drops session variables, temporary tables, locks and prepared
    /// statements, and the driver forgets its statement cache and runs the connection's setup
    /// statements again.
    async fn reset(&self, conn: &mut Conn) -> Result<(), Error> {
        if !conn.reset().await? {
            conn.change_user(ChangeUserOpts::default()).await?;
        }
        Ok(())
    }

    /// [`reset`](pool_core::Manager::reset), which is already the protocol's full clean-up
    /// (`COM_RESET_CONNECTION`), then `USE` of the configured database: the reset keeps
    /// whatever database the borrower switched to. Without a configured database there is
    /// none to go back to, and a borrower's `USE` stays.
    async fn full_reset(&self, conn: &mut Conn) -> Result<(), Error> {
        pool_core::Manager::reset(self, conn).await?;
        if let Some(db) = self.opts.db_name() {
            conn.query_drop(format!("USE `{}`", db.replace('`', "``")))
                .await?;
        }
        Ok(())
    }

    /// True when the socket is gone, a request was abandoned mid-flight, or a result was left
    /// unread.
    ///
    /// The driver marks the connection disconnected for the length of each request and clears
    /// the mark only when the request completes, so a dropped future leaves it set. A result
    /// set dropped before its last row is not an abandoned request to the driver: it would
    /// read and discard every remaining row before the next command, inside the next
    /// borrower's reset, however many millions there are. Closing keeps that off every
    /// borrower's time.
    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.is_disconnected() || has_unread_result(conn)
    }

    fn classify(&self, error: &Error) -> ErrorKind {
        error.kind()
    }
}

/// Whether rows or further result sets of an earlier query are still to be read.
///
/// The driver keeps this to itself, but a [`QueryResult`] over the connection reads it
/// without I/O: building one is free and it has no `Drop`. The protocol parameter only
/// matters for reading rows, which this never does.
fn has_unread_result(conn: &mut Conn) -> bool {
    !QueryResult::<'_, '_, TextProtocol>::new(conn).is_empty()
}
