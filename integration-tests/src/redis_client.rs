//! What Redis says about the client a pooled connection is: its id and its `CLIENT INFO`
//! fields, for tests that check which server session they got and what state it is in.

use pool_drivers::redis::redis;
use pool_drivers::redis::RedisConnection;

/// `CLIENT ID`: the server's number for this connection, never reused while it runs.
///
/// # Panics
///
/// When the command fails.
pub async fn client_id(conn: &mut RedisConnection) -> i64 {
    redis::cmd("CLIENT")
        .arg("ID")
        .query_async(conn)
        .await
        .expect("CLIENT ID")
}

/// The `name=value` field of `CLIENT INFO` (`db`, `name`, `flags`, ...).
///
/// # Panics
///
/// When the command fails or its answer has no such field.
pub async fn client_info(conn: &mut RedisConnection, name: &str) -> String {
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(conn)
        .await
        .expect("CLIENT INFO");
    info.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .to_owned()
}
