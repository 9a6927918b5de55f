//! Whether a Docker engine answers, asked cheaply so that a machine without one skips fast.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `true` when `DOCKER_HOST` is set (testcontainers will use it) or the local engine's socket
/// answers a ping.
pub(crate) async fn answers() -> bool {
    if std::env::var_os("DOCKER_HOST").is_some() {
        return true;
    }
    tokio::time::timeout(Duration::from_secs(2), ping())
        .await
        .unwrap_or(false)
}

#[cfg(unix)]
async fn ping() -> bool {
    let Ok(mut socket) = tokio::net::UnixStream::connect("/var/run/docker.sock").await else {
        return false;
    };
    if socket
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut reply = [0; 12];
    socket.read_exact(&mut reply).await.is_ok() && reply.ends_with(b"200")
}

#[cfg(not(unix))]
async fn ping() -> bool {
    false
}
