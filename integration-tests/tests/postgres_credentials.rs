//! Rotating credentials against the real PostgreSQL server (`POSTGRES_URL`): a credential
//! source asked before every connect, two login roles whose passwords the test changes in
//! turn every 2 seconds under load (each password stays valid for two periods, as an
//! alternating-users rotation does), connections retired before their credentials expire,
//! and secrets out of `Debug`, errors and logs.
//!
//! The server must require a password of the roles the test creates: `.ci/services` adds a
//! `pg_hba.conf` line asking `scram-sha-256` of the members of `pool_rotating_credentials`,
//! and creates that group role.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use integration_tests::{skip_or_fail, unique_name, url_from_env};
use pool_drivers::postgres::tokio_postgres::{self, NoTls};
use pool_drivers::postgres::{Config, Credentials, Error, PoolError};
use pool_drivers::{CloseReason, DriverConfig};

/// How often the test rotates a password.
const PERIOD: Duration = Duration::from_secs(2);
/// How long before their credentials expire connections are retired.
const MARGIN: Duration = Duration::from_secs(1);
/// The role the server asks a password of (see the module docs).
const GROUP: &str = "pool_rotating_credentials";

/// Everything the test binary logs, to look for secrets in.
fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Captured(logs))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

struct Captured(&'static Mutex<Vec<u8>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs_contain(text: &str) -> bool {
    let logs = captured_logs().lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&logs).contains(text)
}

/// A connection to the server as its superuser, for the roles and passwords.
async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the server answers");
    // The task ends with the connection, when the client is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A password no one guesses and no earlier run used.
fn new_password() -> String {
    format!("pw-{}-{:016x}", unique_name("secret"), fastrand_u64())
}

/// 64 random bits: the standard library seeds every `RandomState` afresh.
fn fastrand_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

/// The test's stand-in for a vault: the credentials it hands out now, and every password it
/// ever handed out (to look for in logs).
#[derive(Default)]
struct Vault {
    current: Mutex<Option<Credentials>>,
    issued: Mutex<Vec<String>>,
}

impl Vault {
    fn issue(&self, role: &str, password: &str, valid_for: Duration) {
        let credentials = Credentials::new(password).user(role).expires_in(valid_for);
        *self.current.lock().unwrap() = Some(credentials);
        self.issued.lock().unwrap().push(password.to_owned());
    }

    fn current(&self) -> Credentials {
        self.current.lock().unwrap().clone().expect("issued")
    }
}

/// Creates login roles in [`GROUP`] with the given passwords; says whether the server refuses
/// them without their password (else it does not require passwords, and the test cannot run).
async fn create_roles(admin: &tokio_postgres::Client, url: &str, roles: &[(&str, &str)]) -> bool {
    for (role, password) in roles {
        admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE {GROUP}"
            ))
            .await
            .expect("the role is created");
    }
    let mut config: tokio_postgres::Config = url.parse().expect("POSTGRES_URL parses");
    config.user(roles[0].0).password("not-the-password");
    config.connect(NoTls).await.is_err()
}

/// Drops the roles (ending their sessions first), on a connection of its own so that it
/// works after a failure, retrying for a while if the server is restarting.
async fn drop_roles(url: &str, roles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let (admin, _driver) = tokio_postgres::connect(url, NoTls)
                .await
                .map(|(client, connection)| (client, tokio::spawn(connection)))?;
            for role in roles {
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                        &[role],
                    )
                    .await?;
                admin
                    .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        };
        match attempt.await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("dropping the test roles failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("the test roles {roles:?} could not be dropped: {e}"),
        }
    }
}

/// Whether the server has the group role the `pg_hba.conf` line names.
async fn group_exists(admin: &tokio_postgres::Client) -> bool {
    admin
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&GROUP])
        .await
        .expect("pg_roles")
        .is_some()
}

fn missing_password_auth() {
    skip_or_fail(&format!(
        "the server at POSTGRES_URL does not require a password of the members of {GROUP}: \
         add `host all +{GROUP} 127.0.0.1/32 scram-sha-256` before its trust lines and create \
         the role, as .ci/services does"
    ));
}

/// The server's URL and a superuser connection to it, with logs captured; `None` (the test
/// is skipped, or fails under CI) when there is no server or it asks no password of [`GROUP`].
async fn setup() -> Option<(String, tokio_postgres::Client)> {
    captured_logs();
    let url = url_from_env("POSTGRES_URL", "PostgreSQL")?;
    let admin = admin(&url).await;
    if !group_exists(&admin).await {
        missing_password_auth();
        return None;
    }
    Some((url, admin))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_passwords_under_load_never_fail_a_connect() {
    let Some((url, admin)) = setup().await else {
        return;
    };
    let roles = [unique_name("rot_a"), unique_name("rot_b")];
    let first = [new_password(), new_password()];
    let required = create_roles(
        &admin,
        &url,
        &[(&roles[0], &first[0]), (&roles[1], &first[1])],
    )
    .await;
    let outcome = if required {
        let admin = Arc::new(admin);
        let load_url = url.clone();
        let load_roles = roles.clone();
        let admin_for_load = Arc::clone(&admin);
        let load = tokio::spawn(async move {
            tokio::time::timeout(
                Duration::from_secs(90),
                rotate_under_load(&load_url, &admin_for_load, &load_roles, &first),
            )
            .await
            .expect("the test ends within 90 s");
        });
        let outcome = load.await;
        drop_roles(&url, &[&roles[0], &roles[1]]).await;
        outcome
    } else {
        drop_roles(&url, &[&roles[0], &roles[1]]).await;
        missing_password_auth();
        return;
    };
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn rotate_under_load(
    url: &str,
    admin: &tokio_postgres::Client,
    roles: &[String; 2],
    first: &[String; 2],
) {
    // Each role's password changes every other period, so the one handed out stays valid for
    // two periods: the expiry the vault reports.
    let vault = Arc::new(Vault::default());
    vault.issue(&roles[0], &first[0], 2 * PERIOD);
    vault.issued.lock().unwrap().push(first[1].clone());
    let source_vault = Arc::clone(&vault);
    let mut config = Config::from_url(&format!(
        "{url}{}application_name={}",
        if url.contains('?') { '&' } else { '?' },
        unique_name("rotating")
    ))
    .expect("POSTGRES_URL parses")
    .with_credentials(move || {
        let vault = Arc::clone(&source_vault);
        async move { Ok::<_, std::convert::Infallible>(vault.current()) }
    })
    .with_retire_before_expiry(MARGIN);
    config.pool.max_size = 8;
    let shown = format!("{config:?}");
    let pool = config.build_pool_lazy().expect("the pool builds");

    let stop = Arc::new(AtomicBool::new(false));
    let used_past_expiry = Arc::new(AtomicUsize::new(0));
    let queries = Arc::new(AtomicUsize::new(0));
    let seen_roles = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            let stop = Arc::clone(&stop);
            let used_past_expiry = Arc::clone(&used_past_expiry);
            let queries = Arc::clone(&queries);
            let seen_roles = Arc::clone(&seen_roles);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let conn = pool.get().await.expect("no acquire fails");
                    // Retirement is decided when a connection is returned and when it
                    // leaves the idle set; the margin covers a borrow, so no connection
                    // is used once its credentials have expired.
                    let expiry = conn.retire_at().expect("a retirement time") + MARGIN;
                    if Instant::now() >= expiry {
                        used_past_expiry.fetch_add(1, Ordering::Relaxed);
                    }
                    let role: String = conn
                        .query_one("SELECT current_user::TEXT", &[])
                        .await
                        .expect("no query fails")
                        .get(0);
                    seen_roles.lock().unwrap().insert(role);
                    queries.fetch_add(1, Ordering::Relaxed);
                    drop(conn);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    // Five rotations: role b, then a, then b, ... each with a fresh password, changed on the
    // server before the vault hands it out.
    for rotation in 1..=5 {
        tokio::time::sleep(PERIOD).await;
        let role = &roles[rotation % 2];
        let password = new_password();
        admin
            .batch_execute(&format!("ALTER ROLE {role} PASSWORD '{password}'"))
            .await
            .expect("the password changes");
        vault.issue(role, &password, 2 * PERIOD);
    }
    tokio::time::sleep(PERIOD).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("no worker failed");
    }

    let stats = pool.stats();
    pool.close();
    assert_eq!(stats.connects_failed, 0, "a connect failed: {stats:?}");
    assert_eq!(
        used_past_expiry.load(Ordering::Relaxed),
        0,
        "a connection was used after its credentials expired"
    );
    assert!(
        stats.closes.get(CloseReason::Broken) > 0,
        "no connection was retired before its credentials expired: {stats:?}"
    );
    assert!(
        stats.connects_ok > 8,
        "connections were not renewed: {stats:?}"
    );
    let seen = seen_roles.lock().unwrap().clone();
    println!(
        "rotation: {} queries, {} connects ({} failed), {} connections retired, roles {seen:?}",
        queries.load(Ordering::Relaxed),
        stats.connects_ok,
        stats.connects_failed,
        stats.closes.get(CloseReason::Broken)
    );
    assert_eq!(seen.len(), 2, "both roles served queries: {seen:?}");
    assert!(queries.load(Ordering::Relaxed) > 0);

    // The first passwords no longer work: the rotation was real.
    let mut stale: tokio_postgres::Config = url.parse().unwrap();
    stale.user(&roles[0]).password(first[0].as_str());
    let refused = stale
        .connect(NoTls)
        .await
        .err()
        .expect("a stale password is refused");
    assert!(
        refused.to_string().contains("password") || refused.as_db_error().is_some(),
        "{refused}"
    );

    // No password ever shows in the configuration's Debug or in the logs.
    for password in vault.issued.lock().unwrap().iter() {
        assert!(!shown.contains(password.as_str()), "Debug shows a password");
        assert!(!logs_contain(password), "the logs show a password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_is_reported_without_its_secret() {
    let Some((url, admin)) = setup().await else {
        return;
    };
    let role = unique_name("rot_wrong");
    let password = new_password();
    let required = create_roles(&admin, &url, &[(&role, &password)]).await;
    let wrong = format!("wrong-{}", new_password());
    let outcome = tokio::spawn({
        let url = url.clone();
        let role = role.clone();
        let wrong = wrong.clone();
        async move {
            let source_role = role.clone();
            let source_wrong = wrong.clone();
            let mut config = Config::from_url(&url)
                .expect("POSTGRES_URL parses")
                .with_credentials(move || {
                    let credentials = Credentials::new(source_wrong.clone())
                        .user(source_role.clone())
                        .expires_in(Duration::from_secs(60));
                    async move { Ok::<_, std::convert::Infallible>(credentials) }
                });
            config.pool.acquire_timeout = Some(Duration::from_secs(2));
            let pool = config.build_pool_lazy().expect("the pool builds");
            let err = tokio::time::timeout(Duration::from_secs(30), pool.get())
                .await
                .expect("the acquire ends")
                .expect_err("the wrong password is refused");
            // Retried (the credentials may have rotated meanwhile), and the cause is kept.
            assert!(matches!(err, PoolError::Timeout(_)), "{err:#}");
            assert!(
                matches!(err.backend(), Some(Error::Authentication { .. })),
                "{err:#}"
            );
            for shown in [format!("{err}"), format!("{err:#}"), format!("{err:?}")] {
                assert!(!shown.contains(&wrong), "the error shows the password");
            }
            assert!(logs_contain("opening a connection failed"));
            assert!(!logs_contain(&wrong), "the logs show the password");
            pool.close();
        }
    })
    .await;
    drop_roles(&url, &[&role]).await;
    if !required {
        missing_password_auth();
        return;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[test]
fn retiring_needs_a_credential_source() {
    let config = Config::from_url("postgres://app@127.0.0.1/db")
        .unwrap()
        .with_retire_before_expiry(Duration::from_secs(60));
    let err = config.manager().unwrap_err();
    assert_eq!(err.setting(), "retire_before_expiry");
    let credentials = Credentials::new("hunter2").user("app");
    assert!(!format!("{credentials:?}").contains("hunter2"));
}
