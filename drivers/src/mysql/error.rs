//! [`Error`]: why a MySQL connection could not be opened, checked or reset.

use mysql_async::ServerError;
use pool_core::ErrorKind;

/// What the MySQL [`Manager`](super::Manager) fails with.
///
/// Connect failures that retrying cannot fix have variants of their own, each carrying the
/// server's message; the pool hands those to the caller at once
/// ([`ErrorKind::Permanent`](pool_core::ErrorKind::Permanent)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host name does not resolve to any address.
    #[error("cannot resolve the MySQL host {host:?}")]
    UnknownHost {
        /// The name from the URL.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the user name or password (errors 1045, 1044, 1698, 1130, ...).
    #[error("the MySQL server refused the credentials")]
    Authentication(#[source] ServerError),
    /// The database named in the URL does not exist (error 1049).
    #[error("the database does not exist")]
    UnknownDatabase(#[source] ServerError),
    /// The server or the account is at its connection limit (errors 1040, 1203, 1226); worth
    /// another try.
    #[error("the MySQL server has too many connections")]
    TooManyConnections(#[source] ServerError),
    /// Any other error of the driver: I/O (refused, reset, timed out), protocol, server.
    #[error(transparent)]
    Mysql(#[from] mysql_async::Error),
}

impl Error {
    /// The server's error code, for errors the server sent.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            Error::Authentication(e) | Error::UnknownDatabase(e) | Error::TooManyConnections(e) => {
                Some(e.code)
            }
            Error::Mysql(mysql_async::Error::Server(e)) => Some(e.code),
            _ => None,
        }
    }

    /// Sorts a connect error from the driver into the variants above.
    pub(super) fn from_connect(error: mysql_async::Error) -> Self {
        let mysql_async::Error::Server(server) = error else {
            return Error::Mysql(error);
        };
        match server.code {
            // ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR, ER_HOST_NOT_PRIVILEGED,
            // ER_ACCESS_DENIED_NO_PASSWORD_ERROR, ER_MUST_CHANGE_PASSWORD_LOGIN,
            // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL), ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB).
            1044 | 1045 | 1130 | 1698 | 1862 | 3118 | 4151 => Error::Authentication(server),
            1049 => Error::UnknownDatabase(server),
            // ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS, and ER_USER_LIMIT_REACHED when
            // the account's `max_user_connections` is used up: connections of the same user
            // closing frees a slot, so these are retried like the server-wide limit.
            1040 | 1203 | 1226 => Error::TooManyConnections(server),
            _ => Error::Mysql(mysql_async::Error::Server(server)),
        }
    }

    /// Whether retrying can help: no for an unknown host, refused credentials, a missing
    /// database or an authentication method this client lacks; yes for I/O failures and a
    /// server at its connection limit.
    pub fn kind(&self) -> ErrorKind {
        let permanent = match self {
            Error::UnknownHost { .. } | Error::Authentication(_) | Error::UnknownDatabase(_) => {
                true
            }
            Error::TooManyConnections(_) => false,
            Error::Mysql(e) => match e {
                mysql_async::Error::Url(_) => true,
                // ER_NOT_SUPPORTED_AUTH_MODE, ER_PLUGIN_IS_NOT_LOADED: the account needs an
                // authentication method this client lacks.
                mysql_async::Error::Server(s) => matches!(s.code, 1251 | 1524),
                mysql_async::Error::Driver(d) => matches!(
                    d,
                    mysql_async::DriverError::UnknownAuthPlugin { .. }
                        | mysql_async::DriverError::MysqlOldPasswordDisabled
                        | mysql_async::DriverError::CleartextPluginDisabled
                        | mysql_async::DriverError::NoClientSslFlagFromServer
                ),
                mysql_async::Error::Io(_) | mysql_async::Error::Other(_) => false,
            },
        };
        match permanent {
            true => ErrorKind::Permanent,
            false => ErrorKind::Transient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16, state: &str, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(ServerError {
            code,
            message: message.to_owned(),
            state: state.to_owned(),
        })
    }

    #[test]
    fn connection_limits_are_worth_retrying() {
        let cases = [
            (1040, "08004", "Too many connections"),
            (
                1203,
                "42000",
                "User root already has more than 'max_user_connections' active connections",
            ),
            (
                1226,
                "42000",
                "User 'app' has exceeded the 'max_user_connections' resource (current value: 2)",
            ),
        ];
        for (code, state, message) in cases {
            let error = Error::from_connect(server_error(code, state, message));
            assert!(
                matches!(error, Error::TooManyConnections(_)),
                "{code}: {error:?}"
            );
            assert_eq!(error.kind(), ErrorKind::Transient, "{code}");
            assert_eq!(error.server_code(), Some(code));
            let source = std::error::Error::source(&error).unwrap().to_string();
            assert!(source.contains(message), "{source}");
        }
    }

    #[test]
    fn refused_credentials_are_permanent() {
        let error = Error::from_connect(server_error(1045, "28000", "Access denied"));
        assert!(matches!(error, Error::Authentication(_)), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::Permanent);
    }
}
