//! The PostgreSQL driver's `sslmode`s against the local server, whichever way its TLS is set.

use std::time::{Duration, Instant};

use integration_tests::faults::chain;
use integration_tests::{server, unique_name, Kind};
use pool_drivers::postgres::{Config, Error, SslMode};
use pool_drivers::DriverConfig;
use pool_drivers::ErrorKind;

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// Connects with extra URL parameters and says whether the session is encrypted.
async fn encrypted(url: &str, params: &str) -> Result<bool, pool_drivers::postgres::PoolError> {
    let url = with_params(
        url,
        &format!("{params}&application_name={}", unique_name("tls")),
    );
    let mut config = Config::from_url(&url).expect("the URL parses");
    config.pool.acquire_timeout = Some(Duration::from_secs(5));
    let pool = config.build_pool_lazy().expect("a pool");
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    Ok(row.get(0))
}

/// Whether the server offers TLS, and the certificate file it uses.
async fn server_tls(url: &str) -> (bool, String) {
    let pool = Config::from_url(&with_params(url, "sslmode=disable"))
        .unwrap()
        .build_pool_lazy()
        .unwrap();
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT current_setting('ssl') = 'on', current_setting('ssl_cert_file')",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn disable_and_prefer_connect() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let (offers_tls, _) = server_tls(server.url()).await;
    assert!(!encrypted(server.url(), "sslmode=disable").await.unwrap());
    // prefer encrypts exactly when the server offers TLS.
    assert_eq!(
        encrypted(server.url(), "sslmode=prefer").await.unwrap(),
        offers_tls
    );
}

#[tokio::test]
async fn require_encrypts_or_fails_clearly() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let (offers_tls, _) = server_tls(server.url()).await;
    let started = Instant::now();
    match encrypted(server.url(), "sslmode=require").await {
        Ok(ssl) => {
            assert!(offers_tls, "require connected to a server without TLS");
            assert!(ssl);
        }
        Err(err) => {
            assert!(
                !offers_tls,
                "require failed though the server offers TLS: {err}"
            );
            let backend = err.backend().expect("the driver's error");
            assert!(matches!(backend, Error::Tls(_)), "{backend:?}");
            assert_eq!(backend.kind(), ErrorKind::Permanent);
            assert!(
                chain(&err).contains("does not accept TLS"),
                "{}",
                chain(&err)
            );
            assert!(started.elapsed() < Duration::from_secs(3));
        }
    }
}

#[tokio::test]
async fn verify_full_checks_the_certificate() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let (offers_tls, cert_file) = server_tls(server.url()).await;
    if !offers_tls {
        eprintln!("the server offers no TLS: certificate checks are not exercised");
        return;
    }
    // Against the system's roots a self-signed or private certificate does not verify: a
    // permanent error, returned at once, saying why.
    let started = Instant::now();
    let err = encrypted(server.url(), "sslmode=verify-full")
        .await
        .expect_err("the local certificate is not signed by a public root");
    let backend = err.backend().expect("the driver's error");
    assert!(matches!(backend, Error::Tls(_)), "{backend:?}");
    assert_eq!(backend.kind(), ErrorKind::Permanent);
    assert!(chain(&err).contains("certificate"), "{}", chain(&err));
    assert!(started.elapsed() < Duration::from_secs(3));

    // With the server's own certificate as root, the chain verifies. Only when this test runs
    // on the server's machine and may read the file.
    if std::fs::read(&cert_file).is_err() {
        eprintln!("cannot read {cert_file}: verification against it is not exercised");
        return;
    }
    let root = format!("sslrootcert={cert_file}");
    assert!(
        encrypted(server.url(), &format!("sslmode=verify-ca&{root}"))
            .await
            .unwrap()
    );
    // verify-full also compares the host name with the certificate's.
    let localhost = server.url().replacen("127.0.0.1", "localhost", 1);
    match encrypted(&localhost, &format!("sslmode=verify-full&{root}")).await {
        Ok(ssl) => {
            eprintln!("verify-full against localhost verified");
            assert!(ssl);
        }
        Err(err) => assert!(
            chain(&err).contains("not valid for name") || chain(&err).contains("NotValidForName"),
            "{}",
            chain(&err)
        ),
    }
}

#[test]
fn unreadable_root_certificates_are_named() {
    let mut config = Config::from_url("postgres://u@127.0.0.1/db?sslmode=verify-full").unwrap();
    config.ssl_root_cert = Some("/nonexistent/root.crt".into());
    assert_eq!(config.ssl_mode, SslMode::VerifyFull);
    let err = config.manager().unwrap_err();
    assert_eq!(err.setting(), "sslrootcert");
    assert!(err.problem().contains("/nonexistent/root.crt"), "{err}");
}
