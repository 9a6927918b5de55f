//! A live dashboard of connection pools, as an [`axum::Router`] any web service can mount.
//!
//! - `/metrics`: every pool in the Prometheus text exposition format (see
//!   [`pool_core::export::to_prometheus`]).
//! - `/pools`: every pool as JSON: its [`Snapshot`](pool_core::export::Snapshot), its role
//!   (for pools added from [`DatabasePools`](pool_roles::DatabasePools)) and whether a
//!   replica is in rotation, and the last minutes of its size, idle, in-use and waiting counts.
//! - `/`: a page that refreshes itself from `/pools`: those counts as charts, wait-time
//!   percentiles, close reasons, health and current leaks. Its script and chart library are
//!   part of the page; it loads nothing from elsewhere.
//!
//! The history behind the charts is sampled when `/pools` is read (the page reads it every
//! two seconds), so it covers the time someone was watching.
//!
//! ```no_run
//! # async fn run(pool: pool_core::Pool<impl pool_core::Manager>) -> std::io::Result<()> {
//! use pool_dashboard::Dashboard;
//!
//! let dashboard = Dashboard::new().pool(&pool);
//! let app = axum::Router::new().nest("/pools-dashboard", dashboard.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9100").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod history;
mod page;
mod roles;
mod routes;
mod source;

pub use routes::Dashboard;
