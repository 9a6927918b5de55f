//! A small web service on [`Pools`]: writes go to the primary, reads to the replicas, a caller's
//! own write is visible to its next read, and an unreachable database is answered with 503.
//!
//! - `POST /notes` stores the request body and answers `201` with the new id, and in the
//!   `x-last-write` header the write's WAL position.
//! - `GET /notes/{id}` answers the note from a replica; sent with the `x-last-write` it got, it
//!   is served by a replica that has replayed that write, or else by the primary.
//! - `GET /health` answers the write pool's health and the number of healthy replicas.
//!
//! A database that stays unreachable makes a request answer `503 Service Unavailable` once
//! its [`Retry`] gives up, rather than hang.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pool_drivers::postgres::Pools;
use pool_drivers::roles::Session;
use pool_drivers::Retry;

/// The header that carries a caller's last write position between requests.
pub const LAST_WRITE: &str = "x-last-write";

#[derive(Clone)]
struct App {
    pools: Pools,
    table: Arc<str>,
    retry: Retry,
}

/// The service's routes over `pools`, keeping notes in `table`; requests give up on an
/// unreachable database as `retry` says.
pub fn router(pools: Pools, table: &str, retry: Retry) -> Router {
    Router::new()
        .route("/notes", post(create_note))
        .route("/notes/{id}", get(read_note))
        .route("/health", get(health))
        .with_state(App {
            pools,
            table: table.into(),
            retry,
        })
}

/// Creates `table` if it does not exist.
///
/// # Errors
///
/// The database's error.
pub async fn create_table(
    pools: &Pools,
    table: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let conn = pools.write().await?;
    conn.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)"
    ))
    .await?;
    Ok(())
}

async fn create_note(State(app): State<App>, body: String) -> Response {
    let mut conn = match app.pools.write_pool().get_retrying(&app.retry).await {
        Ok(conn) => conn,
        Err(e) => return pool_error(&e.into()),
    };
    let insert = format!("INSERT INTO {} (body) VALUES ($1) RETURNING id", app.table);
    let id: i64 = match conn.query_one(&insert, &[&body]).await {
        Ok(row) => row.get(0),
        Err(e) => return internal(&e),
    };
    let mut session = Session::new();
    if let Err(e) = app.pools.record_write(&mut session, &mut conn).await {
        return internal(&e);
    }
    let position = session.position().unwrap_or_default();
    (
        StatusCode::CREATED,
        [(LAST_WRITE, position.to_string())],
        id.to_string(),
    )
        .into_response()
}

async fn read_note(State(app): State<App>, Path(id): Path<i64>, headers: HeaderMap) -> Response {
    let session = headers
        .get(LAST_WRITE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .map_or_else(Session::new, Session::with_position);
    let conn = match app.pools.read_after(&session).await {
        Ok(conn) => conn,
        Err(e) => return pool_error(&e),
    };
    let select = format!("SELECT body FROM {} WHERE id = $1", app.table);
    match conn.query_opt(&select, &[&id]).await {
        Ok(Some(row)) => (StatusCode::OK, row.get::<_, String>(0)).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such note").into_response(),
        Err(e) => internal(&e),
    }
}

async fn health(State(app): State<App>) -> Response {
    let read = app.pools.read_pool();
    let text = format!(
        "write: {}, healthy replicas: {} of {}",
        app.pools.write_pool().pool().health().as_str(),
        read.healthy(),
        read.replicas().count()
    );
    (StatusCode::OK, text).into_response()
}

/// 503 when the database cannot be reached, 500 for anything else.
fn pool_error(error: &pool_drivers::postgres::PoolsError) -> Response {
    if error.is_unavailable() {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{error:#}")).into_response()
    } else {
        internal(error)
    }
}

fn internal(error: &dyn std::error::Error) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}")).into_response()
}
