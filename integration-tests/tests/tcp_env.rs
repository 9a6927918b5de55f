//! `tcp::Config::from_env`, alone in its own test binary: it sets environment variables, which
//! must not race with other threads reading them.

use std::time::Duration;

use pool_drivers::tcp::Config;
use pool_drivers::DriverConfig;

#[test]
fn config_from_env() {
    let prefix = "POOL_TCP_ENV_TEST";
    std::env::set_var(
        format!("{prefix}_URL"),
        "tcp://127.0.0.1:7000?keepalive=45s",
    );
    std::env::set_var(format!("{prefix}_MAX_SIZE"), "3");
    std::env::set_var(format!("{prefix}_ACQUIRE_TIMEOUT"), "750ms");
    let config = Config::from_env(prefix).unwrap();
    assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 7000));
    assert_eq!(config.keepalive, Some(Duration::from_secs(45)));
    assert_eq!(config.pool.max_size, 3);
    assert_eq!(
        config.pool.acquire_timeout,
        Some(Duration::from_millis(750))
    );

    std::env::set_var(format!("{prefix}_URL"), "tcp://127.0.0.1");
    let err = Config::from_env(prefix).unwrap_err();
    assert_eq!(err.setting(), format!("{prefix}_URL"));
    assert!(err.problem().contains("port is missing"), "{err}");

    std::env::remove_var(format!("{prefix}_URL"));
    let err = Config::from_env(prefix).unwrap_err();
    assert_eq!(err.setting(), format!("{prefix}_URL"));
    for suffix in ["MAX_SIZE", "ACQUIRE_TIMEOUT"] {
        std::env::remove_var(format!("{prefix}_{suffix}"));
    }
}
