//! [`TargetRole`]: which server of several a pool wants (libpq's `target_session_attrs`), and
//! the check that a pooled session's server still is one.

use tokio_postgres::config::TargetSessionAttrs;
use tokio_postgres::SimpleQueryMessage;

use super::connection::PgConnection;
use super::error::Error;

/// The role of server a pool's sessions must be on, from the URL's
/// `target_session_attrs`: with several hosts (`postgres://h1:5432,h2:5432/db?...`) each
/// connect takes the first host, in order, whose server has the role, and each checkout
/// checks that the session's server still has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TargetRole {
    /// `read-write`: a primary that accepts writes (not in recovery, not set read-only).
    Writable,
    /// `read-only`: a standby, or a primary set read-only.
    ReadOnly,
}

impl TargetRole {
    pub(super) fn of(attrs: TargetSessionAttrs) -> Option<TargetRole> {
        match attrs {
            TargetSessionAttrs::ReadWrite => Some(TargetRole::Writable),
            TargetSessionAttrs::ReadOnly => Some(TargetRole::ReadOnly),
            // `Any`, and whatever later versions add, wants no particular role.
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TargetRole::Writable => "read-write",
            TargetRole::ReadOnly => "read-only",
        }
    }

    /// Asks the session's server for its role (one simple-query round trip, as the plain
    /// check's empty query): a promoted standby now accepts writes, and a former primary
    /// that was fenced (`default_transaction_read_only`) or came back as a standby does not.
    pub(super) async fn verify(self, conn: &PgConnection) -> Result<(), Error> {
        let messages = conn
            .simple_query(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool",
            )
            .await
            .map_err(Error::Postgres)?;
        let read_only = messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(|v| v == "t"),
            _ => None,
        });
        let writable = read_only == Some(false);
        if writable == (self == TargetRole::Writable) {
            Ok(())
        } else {
            Err(Error::WrongRole {
                wanted: self.name(),
            })
        }
    }
}
