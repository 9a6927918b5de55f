//! `DatabaseConfig::from_env`, alone in its binary: it sets environment variables, which must
//! not race other threads.

use std::time::Duration;

use pool_drivers::postgres::DatabaseConfig;

#[test]
fn roles_are_read_from_the_environment() {
    let vars = [
        (
            "ROLES_PRIMARY_URL",
            "postgres://app:secret@127.0.0.1:5432/app",
        ),
        (
            "ROLES_REPLICA_URLS",
            "postgres://app@127.0.0.1:5433/app, postgres://app@127.0.0.1:5434/app",
        ),
        ("ROLES_ADMIN_URL", "postgres://admin@127.0.0.1:5432/app"),
        ("ROLES_PRIMARY_MAX_SIZE", "20"),
        ("ROLES_REPLICA_MAX_SIZE", "30"),
        ("ROLES_READ_YOUR_WRITES", "2s"),
    ];
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
    let config = DatabaseConfig::from_env("ROLES").unwrap();
    assert_eq!(config.primary.pool.max_size, 20);
    assert_eq!(config.replicas.len(), 2);
    assert!(config.replicas.iter().all(|r| r.pool.max_size == 30));
    assert_eq!(config.admin.as_ref().map(|a| a.pool.max_size), Some(2));
    assert_eq!(config.read_your_writes, Some(Duration::from_secs(2)));
    assert!(!format!("{config:?}").contains("secret"), "{config:?}");

    std::env::set_var("ROLES_REPLICA_URLS", "postgres//broken");
    let err = DatabaseConfig::from_env("ROLES").unwrap_err();
    assert_eq!(err.setting(), "url");

    std::env::remove_var("ROLES_PRIMARY_URL");
    let err = DatabaseConfig::from_env("ROLES").unwrap_err();
    assert_eq!(err.setting(), "ROLES_PRIMARY_URL");
}
