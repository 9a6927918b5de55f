//! Whether testcontainers can use a Docker engine here, asked cheaply so that a machine without
//! one skips at once, and answered with the reason when it cannot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testcontainers::bollard::API_DEFAULT_VERSION;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `Ok` when the engine testcontainers will talk to answers and accepts the Engine API version
/// testcontainers speaks; otherwise why not, in a few words.
///
/// The engine is the one testcontainers picks: `DOCKER_HOST`, else the first of its usual
/// sockets that exists (`/var/run/docker.sock`, then rootless Docker's and Docker Desktop's).
/// testcontainers 0.28 does not negotiate the API version: an older engine refuses every request
/// it makes, so that is asked here too.
pub(crate) async fn usable() -> Result<(), String> {
    let host = std::env::var("DOCKER_HOST").ok();
    let socket = match host.as_deref() {
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) => Engine::Unix(PathBuf::from(path)),
            None => match host.strip_prefix("tcp://").or(host.strip_prefix("http://")) {
                Some(addr) if std::env::var_os("DOCKER_TLS_VERIFY").is_none() => {
                    Engine::Tcp(addr.trim_end_matches('/').to_owned())
                }
                // TLS or a transport not asked here: testcontainers finds out.
                _ => return Ok(()),
            },
        },
        None => Engine::Unix(default_socket()),
    };
    let version = format!(
        "{}.{}",
        API_DEFAULT_VERSION.major_version, API_DEFAULT_VERSION.minor_version
    );
    let request = format!("GET /v{version}/version HTTP/1.0\r\nHost: docker\r\n\r\n");
    let reply = tokio::time::timeout(Duration::from_secs(2), socket.ask(&request)).await;
    match reply {
        Ok(Some(reply)) if reply.starts_with("HTTP/") && reply.get(9..12) == Some("200") => Ok(()),
        Ok(Some(reply)) => {
            let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b.trim());
            Err(format!(
                "the Docker engine at {socket} refuses the Engine API {version} that \
                 testcontainers speaks ({body}): a newer Docker engine, or \
                 .ci/docker-api-shim in front of this one, is needed"
            ))
        }
        _ => Err(format!("no Docker engine answers at {socket}")),
    }
}

/// testcontainers' choice when `DOCKER_HOST` is not set.
fn default_socket() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let candidates = [
        Some(PathBuf::from("/var/run/docker.sock")),
        std::env::var_os("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join(".docker/run/docker.sock")),
        home.as_ref().map(|h| h.join(".docker/run/docker.sock")),
        home.as_ref().map(|h| h.join(".docker/desktop/docker.sock")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

enum Engine {
    Unix(PathBuf),
    Tcp(String),
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Unix(path) => write!(f, "unix://{}", path.display()),
            Engine::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl Engine {
    /// Sends `request` and reads the reply to its end (the engine closes an HTTP/1.0 exchange).
    async fn ask(&self, request: &str) -> Option<String> {
        match self {
            #[cfg(unix)]
            Engine::Unix(path) => {
                exchange(tokio::net::UnixStream::connect(path).await.ok()?, request).await
            }
            #[cfg(not(unix))]
            Engine::Unix(_) => None,
            Engine::Tcp(addr) => {
                exchange(tokio::net::TcpStream::connect(addr).await.ok()?, request).await
            }
        }
    }
}

async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
) -> Option<String> {
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut reply = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut reply).await.ok()?;
    Some(String::from_utf8_lossy(&reply).into_owned())
}
