//! [`CredentialSource`] and [`Credentials`]: a password or token fetched before each connect,
//! for credentials that rotate (cloud IAM tokens, Vault leases, a password changed on a
//! schedule).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// What a [`CredentialSource`] fails with: its own error, boxed.
pub type CredentialError = Box<dyn StdError + Send + Sync>;

/// The future [`CredentialSource::credentials`] returns.
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, CredentialError>> + Send + 'a>>;

/// The password (or token) to log in with, optionally the role, and when it stops being valid.
///
/// `Debug` shows the role and the expiry, never the password; there is no `Display`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pool_drivers::postgres::Credentials;
///
/// let credentials = Credentials::new("token-from-the-vault")
///     .user("app_v42")
///     .expires_in(Duration::from_secs(15 * 60));
/// assert!(!format!("{credentials:?}").contains("token-from-the-vault"));
/// ```
#[derive(Clone)]
pub struct Credentials {
    user: Option<String>,
    password: String,
    expires_at: Option<Instant>,
}

impl Credentials {
    /// Credentials with this password (or token), for the role the URL names, valid until
    /// further notice.
    pub fn new(password: impl Into<String>) -> Self {
        Credentials {
            user: None,
            password: password.into(),
            expires_at: None,
        }
    }

    /// Logs in as `user` instead of the role the URL names (for sources that hand out a role
    /// with each password, as Vault's database secrets engine does).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The credential stops being valid at `at`.
    pub fn expires_at(mut self, at: Instant) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The credential stops being valid `ttl` from now.
    pub fn expires_in(self, ttl: Duration) -> Self {
        let at = Instant::now() + ttl;
        self.expires_at(at)
    }

    /// When the credential stops being valid, if it said.
    pub fn expiry(&self) -> Option<Instant> {
        self.expires_at
    }

    /// The role to log in as, if the credential names one.
    pub fn role(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where the credentials of each new connection come from: asked once before every connect
/// (like pgx's `BeforeConnect`), so a rotated password or a fresh token is used as soon as the
/// source hands it out, and an expired one never is.
///
/// Any `Fn() -> impl Future<Output = Result<Credentials, E>>` is a source (`E` any error);
/// implement the trait for a type that holds state of its own (a cached token, a client).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use pool_drivers::DriverConfig;
/// use pool_drivers::postgres::{Config, Credentials};
///
/// async fn fetch_token() -> Result<String, std::io::Error> {
///     // Ask the cloud provider or the vault for a token.
/// #   Ok(String::new())
/// }
///
/// let config = Config::from_url("postgres://app@db.internal/app")?
///     .with_credentials(|| async {
///         let token = fetch_token().await?;
///         Ok::<_, std::io::Error>(
///             Credentials::new(token).expires_in(Duration::from_secs(15 * 60)),
///         )
///     })
///     // Connections are closed a minute before their token expires.
///     .with_retire_before_expiry(Duration::from_secs(60));
/// let pool = config.build_pool_lazy()?;
/// # Ok::<(), pool_drivers::InvalidConfig>(())
/// ```
pub trait CredentialSource: Send + Sync + 'static {
    /// The credentials for the next connect.
    ///
    /// # Errors
    ///
    /// Whatever the source fails with; the connect fails with
    /// [`Error::Credentials`](super::Error::Credentials), which the pool retries as a
    /// transient failure.
    ///
    /// # Cancel safety
    ///
    /// The pool drops the future if the connect is given up (its timeout, the pool closing);
    /// a source must leave nothing half-done behind when that happens.
    fn credentials(&self) -> CredentialFuture<'_>;
}

impl<F, Fut, E> CredentialSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credentials, E>> + Send + 'static,
    E: Into<CredentialError>,
{
    fn credentials(&self) -> CredentialFuture<'_> {
        let fetch = self();
        Box::pin(async move { fetch.await.map_err(Into::into) })
    }
}
