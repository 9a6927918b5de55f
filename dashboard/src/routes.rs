//! [`Dashboard`]: the pools to show, and the routes that show them.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use pool_core::export::{to_prometheus, Snapshot};
use pool_core::{Manager, Pool};
use serde::Serialize;

use crate::history::{History, Point};
use crate::page::PAGE;
use crate::source::Source;

/// The pools a dashboard shows. Add pools with [`pool`](Self::pool) and
/// [`database_pools`](Self::database_pools), then mount [`router`](Self::router).
#[derive(Default)]
pub struct Dashboard {
    sources: Vec<Source>,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("pools", &self.sources.len())
            .finish()
    }
}

/// What the routes share.
struct Shown {
    sources: Vec<Source>,
    /// One per source, in the same order.
    histories: Mutex<Vec<History>>,
}

/// One pool in `/pools`.
#[derive(Serialize)]
struct PoolView<'a> {
    role: Option<&'a str>,
    in_rotation: Option<bool>,
    snapshot: &'a Snapshot,
    /// `[unix ms, size, idle, in use, waiting]`, oldest first; the last is `snapshot`'s.
    history: Vec<Point>,
}

impl Dashboard {
    /// A dashboard with no pool yet.
    pub fn new() -> Self {
        Dashboard::default()
    }

    /// Adds `pool`, shown under its [`Config::name`](pool_core::Config::name).
    pub fn pool<M: Manager>(mut self, pool: &Pool<M>) -> Self {
        self.add(Source::pool(pool, None));
        self
    }

    pub(crate) fn add(&mut self, source: Source) {
        self.sources.push(source);
    }

    /// The routes: `/` (the page), `/pools` (JSON) and `/metrics` (Prometheus text). Serve it
    /// as it is, or mount it with [`Router::nest`] under a path of its own: nested at
    /// `/pools-dashboard`, the page is at `/pools-dashboard` (no trailing slash, as axum nests
    /// a `/` route) and reads `/pools-dashboard/pools`.
    pub fn router(self) -> Router {
        let histories = self.sources.iter().map(|_| History::default()).collect();
        let shown = Arc::new(Shown {
            sources: self.sources,
            histories: Mutex::new(histories),
        });
        let for_pools = Arc::clone(&shown);
        Router::new()
            .route("/", get(|| async { Html(PAGE) }))
            .route("/pools", get(move || async move { for_pools.pools() }))
            .route("/metrics", get(move || async move { shown.metrics() }))
    }
}

impl Shown {
    fn snapshots(&self) -> Vec<Snapshot> {
        self.sources.iter().map(|s| (s.snapshot)()).collect()
    }

    fn metrics(&self) -> Response {
        match to_prometheus(&self.snapshots()) {
            Ok(text) => (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            Err(e) => failed(&e),
        }
    }

    fn pools(&self) -> Response {
        let snapshots = self.snapshots();
        let views: Vec<PoolView<'_>> = {
            let mut histories = self
                .histories
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.sources
                .iter()
                .zip(&snapshots)
                .zip(histories.iter_mut())
                .map(|((source, snapshot), history)| {
                    history.record(Point::of(snapshot));
                    PoolView {
                        role: source.role.as_deref(),
                        in_rotation: source.in_rotation.as_ref().map(|up| up()),
                        snapshot,
                        history: history.points().copied().collect(),
                    }
                })
                .collect()
        };
        match serde_json::to_string(&serde_json::json!({ "pools": views })) {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(e) => failed(&e),
        }
    }
}

/// A 500 naming what failed.
fn failed(error: &dyn std::error::Error) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the dashboard could not export the pools: {error}"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    async fn status(router: &Router, path: &str) -> StatusCode {
        let request = Request::get(path).body(Body::empty()).unwrap();
        router.clone().oneshot(request).await.unwrap().status()
    }

    /// The page finds `pools` next to itself: at `/dash` it reads `/dash/pools`.
    #[tokio::test]
    async fn nested_under_a_path_the_page_and_its_data_are_found() {
        let app = Router::new().nest("/dash", Dashboard::new().router());
        assert_eq!(status(&app, "/dash").await, StatusCode::OK);
        assert_eq!(status(&app, "/dash/pools").await, StatusCode::OK);
        assert_eq!(status(&app, "/dash/metrics").await, StatusCode::OK);
    }
}
