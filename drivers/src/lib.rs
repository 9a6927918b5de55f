//! Ready connection pools built on [`pool_core`].
//!
//! This crate re-exports the whole of `pool-core`, so an application depends on one crate.
//! Driver modules (PostgreSQL, MySQL, Redis, TCP, sqlx), each behind its own feature flag,
//! build on it.

pub use pool_core::*;
