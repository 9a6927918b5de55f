//! [`Error`]: why a Redis connection could not be opened, checked or reset.

use ::redis::{ErrorKind as RedisKind, RedisError, ServerErrorKind};
use pool_core::ErrorKind;

/// What the Redis [`Manager`](super::Manager) (and the cluster manager) fails with.
///
/// Connect failures that retrying cannot fix have variants of their own, each carrying the
/// server's own reply; the pool hands those to the caller at once
/// ([`ErrorKind::Permanent`](pool_core::ErrorKind::Permanent)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host name does not resolve to any address.
    #[error("cannot resolve the Redis host {host:?}")]
    UnknownHost {
        /// The name from the URL.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the user name or password.
    #[error("the Redis server refused the credentials: {message}")]
    Authentication {
        /// The server's reply, such as `WRONGPASS invalid username-password pair or user is
        /// disabled.`.
        message: String,
    },
    /// The server cannot select the configured database (its index is out of range).
    #[error("the Redis server cannot select database {db}: {message}")]
    UnknownDatabase {
        /// The configured database index.
        db: i64,
        /// The server's reply, such as `ERR DB index is out of range`.
        message: String,
    },
    /// The server is at its client limit (`maxclients`): it answered the new connection with
    /// an error and closed it. Worth another try, once other clients have gone.
    #[error("the Redis server has too many clients: {message}")]
    TooManyConnections {
        /// The server's reply, such as `ERR max number of clients reached`.
        message: String,
    },
    /// Restoring the session on reset failed (on servers before 6.2, which lack `RESET`).
    #[error("could not reset the Redis session: {message}")]
    ResetFailed {
        /// The server's reply.
        message: String,
    },
    /// No Sentinel answered (a Sentinel pool asks them in turn for the current servers).
    #[error("none of the {sentinels} Redis Sentinels answered: {last}")]
    NoSentinel {
        /// How many Sentinels were asked.
        sentinels: usize,
        /// What the last one failed with.
        last: String,
    },
    /// Every Sentinel that answered says it monitors no service of this name.
    #[error("no Redis Sentinel monitors a service named {service:?}")]
    UnknownService {
        /// The configured service (master) name.
        service: String,
    },
    /// The Sentinels know the service but name no server of the wanted role that is fit
    /// to use (no healthy replica, say).
    #[error("the Redis Sentinels name no healthy {role} of {service:?}")]
    NoServer {
        /// The configured service name.
        service: String,
        /// `master` or `replica`.
        role: &'static str,
    },
    /// A server the Sentinels named, or a pooled connection's server, has another role than
    /// the pool wants (`ROLE` says so): a failover is under way or just happened.
    #[error("the Redis server is a {found}, not a {expected}")]
    WrongRole {
        /// The role the pool wants: `master` or `slave` (a replica).
        expected: &'static str,
        /// The role the server reported.
        found: String,
    },
    /// Any other error of the driver: I/O (refused, reset, timed out), protocol, server.
    #[error(transparent)]
    Redis(#[from] RedisError),
}

impl Error {
    /// Sorts a connect error from the driver into the variants above.
    pub(super) fn from_connect(error: RedisError) -> Self {
        let auth = matches!(
            error.kind(),
            RedisKind::AuthenticationFailed | RedisKind::Server(ServerErrorKind::NoPerm)
        ) || matches!(error.code(), Some("WRONGPASS" | "NOAUTH"));
        if auth {
            return Error::Authentication {
                message: error.to_string(),
            };
        }
        Error::Redis(error)
    }

    /// Whether retrying can help: no for an unknown host, refused credentials, a database
    /// the server cannot select, a failed session reset, a service no Sentinel monitors or a
    /// setting the client refuses; yes for I/O failures, a server at its client limit, and
    /// what a failover causes for a while (no Sentinel answers, no healthy server, a server
    /// of the wrong role).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownHost { .. }
            | Error::Authentication { .. }
            | Error::UnknownDatabase { .. }
            | Error::ResetFailed { .. }
            | Error::UnknownService { .. } => ErrorKind::Permanent,
            Error::Redis(e)
                if matches!(
                    e.kind(),
                    RedisKind::InvalidClientConfig
                        | RedisKind::AuthenticationFailed
                        | RedisKind::RESP3NotSupported
                ) =>
            {
                ErrorKind::Permanent
            }
            Error::Redis(_)
            | Error::TooManyConnections { .. }
            | Error::NoSentinel { .. }
            | Error::NoServer { .. }
            | Error::WrongRole { .. } => ErrorKind::Transient,
        }
    }
}

/// A server's error reply as the server wrote it: `CODE detail`.
pub(super) fn server_message(error: &::redis::ServerError) -> String {
    match error.details() {
        Some(detail) => format!("{} {detail}", error.code()),
        None => error.code().to_owned(),
    }
}
