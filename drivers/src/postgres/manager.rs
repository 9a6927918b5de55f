//! [`Manager`]: opens, checks and resets PostgreSQL sessions for the pool.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_core::ErrorKind;
use tokio_postgres::config::{Host, SslMode as PgSslMode, SslNegotiation};
use tokio_postgres::AsyncMessage;

use super::config::{Check, Config};
use super::connection::PgConnection;
use super::credentials::CredentialSource;
use super::error::Error;
use super::statement_stats::{StatementCacheStats, StatementCounters};
use super::stream::Connector;
use super::target::TargetRole;
use crate::InvalidConfig;

/// Opens [`PgConnection`]s and keeps them fit for the next user. Build it with
/// [`Config::manager`](crate::DriverConfig::manager).
pub struct Manager {
    postgres: tokio_postgres::Config,
    connector: Connector,
    check: Check,
    /// `ROLLBACK` and the clean-up, as one batch.
    rollback_and_cleanup: String,
    /// The clean-up alone, for sessions known to be outside a transaction; empty when none.
    cleanup: String,
    discards_statements: bool,
    statement_cache_capacity: usize,
    /// Whether the driver sees each session's stream (see `stream`).
    watchable: bool,
    /// How old a request a borrower abandoned may get before its connection is given up.
    drain_timeout: Duration,
    /// Hits and misses of every connection's statement cache.
    statement_counters: Arc<StatementCounters>,
    /// The role the URL's `target_session_attrs` asks of the server, checked on checkout.
    target: Option<TargetRole>,
    /// Where each connect's credentials come from, if not the URL.
    credentials: Option<Arc<dyn CredentialSource>>,
    /// How long before their credentials expire connections are retired, if at all.
    retire_before_expiry: Option<Duration>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("user", &self.postgres.get_user())
            .field("dbname", &self.postgres.get_dbname())
            .field("application_name", &self.postgres.get_application_name())
            .field("check", &self.check)
            .field("cleanup", &self.cleanup)
            .field("drain_timeout", &self.drain_timeout)
            .field("target", &self.target)
            .field("credentials", &self.credentials.as_ref().map(|_| "source"))
            .field("retire_before_expiry", &self.retire_before_expiry)
            .finish_non_exhaustive()
    }
}

impl Manager {
    pub(crate) fn new(config: &Config) -> Result<Self, InvalidConfig> {
        let mut postgres = config.postgres.clone();
        let hosts = postgres.get_hosts();
        // The stream can be watched only when tokio_postgres hands every socket to the
        // connector, which it does for TCP hosts it knows the name of (see `stream`).
        #[cfg(unix)]
        let watchable = !hosts.is_empty() && hosts.iter().all(|h| matches!(h, Host::Tcp(_)));
        #[cfg(not(unix))]
        let watchable = !hosts.is_empty();
        let direct_tls = postgres.get_ssl_negotiation() == SslNegotiation::Direct;
        if watchable {
            postgres.ssl_mode(PgSslMode::Require);
            postgres.ssl_negotiation(SslNegotiation::Direct);
        } else {
            // Unix sockets never carry TLS; `validate_tls` refused modes that need it.
            postgres.ssl_mode(PgSslMode::Disable);
        }
        #[cfg(feature = "tls")]
        let tls = super::tls::connector(config.ssl_mode, config.ssl_root_cert.as_deref())?;
        let connector = Connector::new(
            config.ssl_mode,
            direct_tls,
            config.pgbouncer,
            #[cfg(feature = "tls")]
            tls,
        );
        let statements = config.cleanup.statements();
        let cleanup = statements.join("; ");
        let rollback_and_cleanup = std::iter::once("ROLLBACK")
            .chain(statements.iter().copied())
            .collect::<Vec<_>>()
            .join("; ");
        Ok(Manager {
            postgres,
            connector,
            check: config.check,
            rollback_and_cleanup,
            cleanup,
            discards_statements: config.cleanup.discard_all,
            statement_cache_capacity: config.statement_cache_capacity,
            watchable,
            // The pool cuts a reset off at its reset_timeout anyway; past it, waiting is moot.
            drain_timeout: config.drain_timeout.min(config.pool.reset_timeout),
            statement_counters: Arc::default(),
            target: TargetRole::of(config.postgres.get_target_session_attrs()),
            credentials: config.credentials.clone(),
            retire_before_expiry: config.retire_before_expiry,
        })
    }

    /// Hits and misses of the statement caches of every connection this manager opened
    /// (reach it through the pool: `pool.manager().statement_cache_stats()`).
    pub fn statement_cache_stats(&self) -> StatementCacheStats {
        self.statement_counters.read()
    }

    /// The settings to log in with: the configured ones, or with the credentials the source
    /// gives now; and when a connection opened with them is to be retired.
    async fn login(&self) -> Result<(Cow<'_, tokio_postgres::Config>, Option<Instant>), Error> {
        let Some(source) = &self.credentials else {
            return Ok((Cow::Borrowed(&self.postgres), None));
        };
        let credentials = source.credentials().await.map_err(Error::Credentials)?;
        let retire_at = match (self.retire_before_expiry, credentials.expiry()) {
            (Some(margin), Some(expiry)) => {
                let at = expiry.checked_sub(margin).unwrap_or(expiry);
                if at <= Instant::now() {
                    return Err(Error::Credentials(
                        "the credentials expire sooner than retire_before_expiry allows a \
                         connection to live"
                            .into(),
                    ));
                }
                Some(at)
            }
            _ => None,
        };
        let mut postgres = self.postgres.clone();
        if let Some(user) = credentials.role() {
            postgres.user(user);
        }
        postgres.password(credentials.password());
        Ok((Cow::Owned(postgres), retire_at))
    }

    /// A request sent at `sent` and still unanswered is too old to wait for.
    fn overdue(&self, sent: Instant) -> bool {
        sent.elapsed() >= self.drain_timeout
    }
}

impl pool_core::Manager for Manager {
    type Connection = PgConnection;
    type Error = Error;

    async fn connect(&self) -> Result<PgConnection, Error> {
        let (postgres, retire_at) = self.login().await?;
        let connector = self.connector.fresh();
        let (client, mut connection) = match postgres.connect(connector.clone()).await {
            Ok(pair) => pair,
            Err(e) => return Err(Error::from_connect(e, &postgres).await),
        };
        // Without a watched stream the tracker the connector made sees nothing, and an empty
        // view would pass for a settled, idle session.
        let tracker = connector.take_tracker().filter(|_| self.watchable);
        let ended = tracker.clone();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notice(notice))) => {
                        tracing::debug!(
                            target: "pool_drivers::postgres",
                            severity = notice.severity(),
                            code = notice.code().code(),
                            "server notice: {}",
                            notice.message()
                        );
                    }
                    // Pooled sessions are not the place for LISTEN; notifications are dropped.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(target: "pool_drivers::postgres", error = %e, "connection ended");
                        break;
                    }
                    None => break,
                }
            }
            // Whoever waits for replies stops waiting.
            if let Some(tracker) = ended {
                tracker.end();
            }
        });
        Ok(PgConnection::new(
            client,
            driver,
            tracker,
            connector,
            self.statement_cache_capacity,
            Arc::clone(&self.statement_counters),
            retire_at,
        ))
    }

    /// As [`Check`] says; with `target_session_attrs` in the URL, the round trip asks the
    /// server for its role instead, so a session on a server that a failover promoted,
    /// fenced or demoted is closed rather than handed out.
    async fn check(&self, conn: &mut PgConnection) -> Result<(), Error> {
        match (self.check, self.target) {
            (Check::RoundTrip, Some(target)) => target.verify(conn).await,
            (Check::RoundTrip, None) => conn.batch_execute("").await.map_err(Error::Postgres),
            (Check::IsClosed, _) if conn.is_closed() => Err(Error::Closed),
            (Check::IsClosed, _) => Ok(()),
        }
    }

    /// Waits for the replies of requests the last borrower abandoned (their futures were
    /// dropped), until the oldest is [`Config::drain_timeout`](super::Config::drain_timeout)
    /// old, then rolls back what is left open and runs the clean-up. A connection whose
    /// replies do not come in time fails the reset, so the pool closes it (and the abandoned
    /// request is cancelled as the connection is dropped).
    async fn reset(&self, conn: &mut PgConnection) -> Result<(), Error> {
        if let Some(tracker) = conn.tracker() {
            if let Some(since) = tracker.unanswered_since() {
                let deadline = since + self.drain_timeout;
                match tokio::time::timeout_at(deadline.into(), tracker.settle()).await {
                    Ok(true) => {}
                    Ok(false) => return Err(Error::Closed),
                    Err(_) => {
                        return Err(Error::Undrained {
                            age: since.elapsed(),
                        })
                    }
                }
            }
        }
        let outside_transaction = conn.tracker().is_some_and(|t| t.idle_outside_transaction());
        let batch = if outside_transaction {
            &self.cleanup
        } else {
            &self.rollback_and_cleanup
        };
        if batch.is_empty() {
            return Ok(());
        }
        conn.batch_execute(batch).await.map_err(Error::Postgres)?;
        if self.discards_statements {
            conn.forget_server_statements();
        }
        Ok(())
    }

    /// [`reset`](pool_core::Manager::reset) (the wait for abandoned replies, the `ROLLBACK` of
    /// an open or aborted transaction, the configured clean-up), then `DISCARD ALL` unless the
    /// configured clean-up already did its work: settings, temporary tables, prepared
    /// statements and open cursors, `LISTEN`s, advisory locks, cached plans and sequence
    /// state, and `SET SESSION AUTHORIZATION`, are all back to how the session started.
    /// Settings given when connecting (`application_name`, `options`) come back as given.
    /// The server forgets every prepared statement, so the connection's statement cache (and
    /// `tokio_postgres`'s cached type lookups) are emptied with it, and
    /// [`prepare_cached`](PgConnection::prepare_cached) prepares afresh.
    ///
    /// `DISCARD ALL` refuses to run inside a transaction block, hence the rollback first: one
    /// round trip for a session idle outside a transaction with no clean-up configured, two
    /// otherwise.
    async fn full_reset(&self, conn: &mut PgConnection) -> Result<(), Error> {
        pool_core::Manager::reset(self, conn).await?;
        if self.discards_statements {
            return Ok(());
        }
        conn.batch_execute("DISCARD ALL")
            .await
            .map_err(Error::Postgres)?;
        conn.forget_server_statements();
        Ok(())
    }

    /// Clean when the session is idle outside a transaction and no clean-up is configured:
    /// then reset would send nothing, so it is skipped altogether. A reply still on its way
    /// (an abandoned request) makes the session not idle, so reset waits for it.
    fn needs_reset(&self, conn: &mut PgConnection) -> bool {
        !(self.cleanup.is_empty() && conn.tracker().is_some_and(|t| t.idle_outside_transaction()))
    }

    /// Broken: the socket is closed; a [`CancelHandle`](super::CancelHandle) sent a cancel
    /// during the borrow (it may land late, on the next borrower's query); a request the
    /// borrower abandoned is already older than
    /// [`Config::drain_timeout`](super::Config::drain_timeout) (a query that slow is likely to
    /// run on, and waiting for it is not worth the next caller's time); or a result was left
    /// part-read while its rows streamed in (the rest may be huge); or the connection is due
    /// to retire because its credentials expire ([`PgConnection::retire_at`]). Runs when the pool takes
    /// the connection back and again before handing it out; each time it ends the borrow, so
    /// handles taken during it stop working. A younger abandoned request does not count:
    /// reset waits for its reply instead.
    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        let cancelled = conn.end_borrow();
        cancelled
            || conn.is_closed()
            || conn.retire_at().is_some_and(|at| Instant::now() >= at)
            || conn.tracker().is_some_and(|t| {
                t.streaming() || t.abandoned_since().is_some_and(|sent| self.overdue(sent))
            })
    }

    /// As [`Error::kind`], except that with a credential source a refused login is
    /// transient: the credentials may have rotated between the source handing them out and
    /// the server reading them, and the next connect asks the source again.
    fn classify(&self, error: &Error) -> ErrorKind {
        match error {
            Error::Authentication { .. } if self.credentials.is_some() => ErrorKind::Transient,
            _ => error.kind(),
        }
    }
}
