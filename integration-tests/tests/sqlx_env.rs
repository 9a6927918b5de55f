//! `sqlx::*::Config::from_env`, alone in its own test binary: it sets environment variables,
//! which must not race with other threads reading them.

use pool_drivers::sqlx::{postgres, sqlite};
use pool_drivers::DriverConfig;

#[test]
fn config_from_env() {
    let prefix = "POOL_SQLX_ENV_TEST";
    std::env::set_var(format!("{prefix}_URL"), "sqlite::memory:");
    std::env::set_var(format!("{prefix}_MIN_IDLE"), "1");
    std::env::set_var(format!("{prefix}_MAX_LIFETIME"), "none");
    let config = sqlite::Config::from_env(prefix).unwrap();
    assert_eq!(config.url, "sqlite::memory:");
    assert_eq!(config.pool.min_idle, 1);
    assert_eq!(config.pool.max_lifetime, None);

    // The variable is named, the password is not shown.
    std::env::set_var(
        format!("{prefix}_URL"),
        "postgres://app:s3cret@127.0.0.1:notaport/db",
    );
    let err = postgres::Config::from_env(prefix).unwrap_err();
    assert_eq!(err.setting(), format!("{prefix}_URL"));
    assert!(!err.to_string().contains("s3cret"), "{err}");
    std::env::set_var(format!("{prefix}_URL"), "sqlite::memory:");
    std::env::set_var(format!("{prefix}_MIN_IDLE"), "a few");
    let err = sqlite::Config::from_env(prefix).unwrap_err();
    assert_eq!(err.setting(), format!("{prefix}_MIN_IDLE"));
    assert_eq!(
        sqlite::Config::from_env("POOL_SQLX_ENV_TEST_UNSET")
            .unwrap_err()
            .setting(),
        "POOL_SQLX_ENV_TEST_UNSET_URL"
    );
    for suffix in ["URL", "MIN_IDLE", "MAX_LIFETIME"] {
        std::env::remove_var(format!("{prefix}_{suffix}"));
    }
}
