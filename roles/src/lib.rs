//! Typed pools for read/write splitting: [`WritePool`] (the primary), [`ReadPool`] (replicas,
//! load-balanced and health-checked, falling back to the primary), [`AdminPool`] (a small pool
//! with its own credentials for migrations and DDL), grouped in [`DatabasePools`].
//!
//! Built on [`pool_core`]'s public API only, so it works with any [`Manager`](pool_core::Manager):
//! the drivers of `pool-drivers` (which re-exports this crate as `pool_drivers::roles` under its
//! `roles` feature) or a manager of your own. A read that needs a replica fails with this
//! crate's [`Error`], which wraps the pool's.
//!
//! Each hands out its own guard type, so the compiler keeps writes off replicas: a function
//! that needs a [`WriteConnection`] cannot be given a [`ReadConnection`].
//!
//! ```compile_fail
//! # use pool_roles::{ReadConnection, WriteConnection, DatabasePools};
//! # use pool_core::Manager;
//! fn record_order<M: Manager>(conn: &mut WriteConnection<M>) { /* INSERT ... */ }
//!
//! async fn handler<M: Manager>(pools: DatabasePools<M>) {
//!     let mut conn: ReadConnection<M> = pools.read().await.unwrap();
//!     record_order(&mut conn); // error: expected `WriteConnection`, found `ReadConnection`
//! }
//! ```
//!
//! # Examples
//!
//! ```no_run
//! # async fn example<M: pool_core::Manager>(
//! #     primary: pool_core::Pool<M>,
//! #     replicas: Vec<pool_core::Pool<M>>,
//! # ) -> Result<(), pool_roles::Error<M::Error>> {
//! use std::time::Duration;
//! use pool_roles::{DatabasePools, ReadPool, Session, WritePool};
//!
//! let pools = DatabasePools::new(WritePool::new(primary.clone()), ReadPool::new(replicas))
//!     .read_your_writes(Duration::from_secs(2));
//! let mut session = Session::new(); // one per user, say
//! {
//!     let conn = pools.write_for(&mut session).await?;
//!     // INSERT ...
//! }
//! // Within 2 s of the write, this caller's reads go to the primary.
//! let conn = pools.read_for(&session).await?;
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(unreachable_pub, missing_debug_implementations)]

mod balance;
mod database;
mod error;
mod lag;
mod read;
mod replica;
mod replication;
mod typed;

pub use balance::{Balance, Fallback};
pub use database::{DatabasePools, Session};
pub use error::Error;
pub use lag::{Lag, LagLimit};
pub use read::{ReadConnection, ReadPool, Source};
pub use replication::Replication;
pub use typed::{AdminConnection, AdminPool, WriteConnection, WritePool};
