//! [`Error`]: what connecting, checking and resetting fail with, and which failures are worth
//! retrying.

use std::error::Error as StdError;
use std::io;

use pool_core::ErrorKind;
use tokio_postgres::error::{DbError, SqlState};

use super::stream::TlsRefused;
use crate::unknown_host::unresolved_host;

/// Why the driver could not open, check or reset a connection.
///
/// `Display` names the problem; the server's own message (or the operating system's) is the
/// [`source`](StdError::source), and [`server_message`](Self::server_message) gives it
/// directly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host name does not resolve (DNS has no such name).
    #[error("cannot resolve the host name {host:?}")]
    UnknownHost {
        /// The name that does not resolve.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The server refused the login: unknown role, wrong password, or no `pg_hba.conf` entry
    /// lets it in (SQLSTATE class 28).
    #[error("the server refused the login of role {user:?}")]
    Authentication {
        /// The role that tried to log in.
        user: String,
        /// The server's answer.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database does not exist (SQLSTATE 3D000).
    #[error("the database {database:?} does not exist")]
    UnknownDatabase {
        /// The database asked for.
        database: String,
        /// The server's answer.
        #[source]
        source: tokio_postgres::Error,
    },
    /// TLS could not be set up: the server does not offer it while `sslmode` requires it, or
    /// its certificate was rejected.
    #[error("TLS could not be set up")]
    Tls(#[source] tokio_postgres::Error),
    /// The connection's socket is closed (found by [`Check::IsClosed`](super::Check)).
    #[error("the connection to the server is closed")]
    Closed,
    /// A request the previous borrower abandoned (its future was dropped mid-flight) was
    /// still unanswered [`Config::drain_timeout`](super::Config::drain_timeout) after it was
    /// sent, so reset gave up on the connection.
    #[error(
        "a request abandoned by the previous borrower was still unanswered {age:?} after it \
         was sent"
    )]
    Undrained {
        /// How long ago the oldest unanswered request was sent.
        age: std::time::Duration,
    },
    /// The session's server no longer has the role the URL's `target_session_attrs` asks
    /// for: a failover promoted a standby, or fenced or demoted the former primary. Found on
    /// checkout; the pool closes the connection, and the next connect looks for a server
    /// with the role again.
    #[error("the server is no longer {wanted}")]
    WrongRole {
        /// `read-write` or `read-only`.
        wanted: &'static str,
    },
    /// The [`CredentialSource`](super::CredentialSource) failed, or gave a credential that
    /// expires before [`Config::retire_before_expiry`](super::Config::retire_before_expiry)
    /// would let a connection live at all; nothing was connected.
    #[error("the credential source gave no usable credentials")]
    Credentials(#[source] super::CredentialError),
    /// Any other failure: a refused or lost connection, a server error during check or reset.
    #[error(transparent)]
    Postgres(tokio_postgres::Error),
}

impl Error {
    /// The SQLSTATE code the server sent, if the server answered with an error.
    pub fn code(&self) -> Option<&SqlState> {
        self.db_error().map(DbError::code)
    }

    /// The server's own error message, if the server answered with an error.
    pub fn server_message(&self) -> Option<&str> {
        self.db_error().map(DbError::message)
    }

    /// The `tokio_postgres` error behind this one, if there is one.
    pub fn as_postgres(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Error::Authentication { source, .. } | Error::UnknownDatabase { source, .. } => {
                Some(source)
            }
            Error::Tls(source) | Error::Postgres(source) => Some(source),
            Error::UnknownHost { .. }
            | Error::Closed
            | Error::Undrained { .. }
            | Error::WrongRole { .. }
            | Error::Credentials(_) => None,
        }
    }

    fn db_error(&self) -> Option<&DbError> {
        self.as_postgres()
            .and_then(tokio_postgres::Error::as_db_error)
    }

    /// Whether retrying can help: no for a wrong login, a missing database, an unknown host,
    /// a TLS mismatch or any other refusal by the server; yes for I/O failures and for a
    /// server that is starting, shutting down or out of connection slots.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownHost { .. }
            | Error::Authentication { .. }
            | Error::UnknownDatabase { .. } => ErrorKind::Permanent,
            Error::Tls(e) if tls_is_permanent(e) => ErrorKind::Permanent,
            // A credential source may well answer in a moment (a vault that restarts).
            Error::Tls(_)
            | Error::Closed
            | Error::Undrained { .. }
            | Error::WrongRole { .. }
            | Error::Credentials(_) => ErrorKind::Transient,
            Error::Postgres(e) => match e.as_db_error() {
                // 08 connection exception, 53 insufficient resources (too_many_connections),
                // 57 operator intervention (cannot_connect_now, admin_shutdown), 58 system
                // error: the server may well answer differently in a moment.
                Some(db) => match db.code().code().get(..2) {
                    Some("08" | "53" | "57" | "58") => ErrorKind::Transient,
                    _ => ErrorKind::Permanent,
                },
                None => ErrorKind::Transient,
            },
        }
    }

    /// Gives a failed connect the most precise variant, resolving `host` names once more
    /// when the failure may be a name that does not resolve.
    pub(crate) async fn from_connect(
        error: tokio_postgres::Error,
        config: &tokio_postgres::Config,
    ) -> Error {
        if let Some(db) = error.as_db_error() {
            let code = db.code();
            if *code == SqlState::INVALID_CATALOG_NAME {
                return Error::UnknownDatabase {
                    database: config
                        .get_dbname()
                        .or(config.get_user())
                        .unwrap_or_default()
                        .to_owned(),
                    source: error,
                };
            }
            if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *code == SqlState::INVALID_PASSWORD
                || code.code().starts_with("28")
            {
                return Error::Authentication {
                    user: config.get_user().unwrap_or_default().to_owned(),
                    source: error,
                };
            }
            return Error::Postgres(error);
        }
        if tls_is_permanent(&error) {
            return Error::Tls(error);
        }
        // tokio_postgres reports a failed lookup as an I/O error like any other, so ask the
        // resolver directly: a name none of whose lookups succeed is the problem.
        // A port per host, or one for all of them (5432 when none is given).
        let ports = config.get_ports();
        let names: Vec<(&str, u16)> = config
            .get_hosts()
            .iter()
            .enumerate()
            .filter_map(|(i, h)| match h {
                tokio_postgres::config::Host::Tcp(name) => {
                    let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                    Some((name.as_str(), port))
                }
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(_) => None,
            })
            .collect();
        if !names.is_empty()
            && names.len() == config.get_hosts().len()
            && config.get_hostaddrs().is_empty()
        {
            if let Some((host, source)) = unresolved_host(names).await {
                return Error::UnknownHost { host, source };
            }
        }
        Error::Postgres(error)
    }
}

/// A TLS failure retrying cannot fix: the server does not do TLS, or rustls rejected the
/// handshake (a certificate that does not verify, no common protocol version).
fn tls_is_permanent(error: &tokio_postgres::Error) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        if e.is::<TlsRefused>() {
            return true;
        }
        #[cfg(feature = "tls")]
        {
            if e.is::<rustls::Error>() {
                return true;
            }
            // io::Error::source skips the error it wraps, so look inside explicitly.
            if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
                if inner.is::<rustls::Error>() {
                    return true;
                }
            }
        }
        next = e.source();
    }
    false
}
