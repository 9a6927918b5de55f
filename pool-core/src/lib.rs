//! A small, fast, cancellation-safe generic async pool for tokio.
//!
//! Implement [`Manager`] for a kind of connection, build a [`Pool`] with [`Pool::builder`],
//! and check connections out with [`Pool::get`]. A [`PooledConnection`] derefs to the
//! connection and goes back to the pool when dropped.
//!
//! What the pool promises:
//!
//! - **Fast under load, fair within a bound.** A caller may take an idle connection ahead of
//!   the queue, so a busy pool costs what an idle one does, but no queued caller is passed over
//!   once it has waited [`Config::fairness`]'s bound (strict FIFO is a setting); priorities
//!   ([`Pool::get_with`]) with a starvation boost; nobody waits on a connect that is not
//!   theirs while a connection is idle.
//! - **Never wedged.** Every count belongs to an RAII guard, so a dropped future, an aborted
//!   task or a panicking manager cannot leak a slot; a caller who gives up after being handed a
//!   connection passes it on.
//! - **Says why.** A timeout carries what the pool was doing and the last connect error, so a
//!   wrong password reads as a wrong password; permanent connect errors come back at once.
//! - **Fast.** Taking an idle connection and returning it is one short lock each way: no timer,
//!   no allocation, no task.
//!
//! # Examples
//!
//! ```
//! use pool_core::{Manager, Pool};
//!
//! /// Connections that are just numbered buffers.
//! struct Buffers;
//!
//! impl Manager for Buffers {
//!     type Connection = Vec<u8>;
//!     type Error = std::io::Error;
//!
//!     async fn connect(&self) -> Result<Vec<u8>, std::io::Error> {
//!         Ok(Vec::new())
//!     }
//!
//!     async fn check(&self, _: &mut Vec<u8>) -> Result<(), std::io::Error> {
//!         Ok(())
//!     }
//!
//!     async fn reset(&self, buf: &mut Vec<u8>) -> Result<(), std::io::Error> {
//!         buf.clear();
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(Buffers).max_size(8).build().await?;
//! let mut buf = pool.get().await?;
//! buf.extend_from_slice(b"hello");
//! drop(buf);
//! assert!(pool.get().await?.is_empty(), "reset ran before the next checkout");
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `serde`: `Deserialize` for [`Config`], `Serialize` for the figures ([`Status`],
//!   [`Stats`], [`ConnectionMetrics`], [`Health`], [`Leak`], [`export::Snapshot`]).
//! - `metrics`: records through the `metrics` facade under OpenTelemetry's names (see
//!   [`metrics`]).
//! - `prometheus`, `json`, `csv`: the exports of [`export`].
//!
//! # Tracing
//!
//! Events use stable targets: `pool_core::connect` (connects and their failures),
//! `pool_core::close` (connections closed, with the reason), `pool_core::leak` (leak
//! warnings), `pool_core::deadlock` (self-deadlock warnings), `pool_core::warning` (soft
//! limits: see [`SoftLimits`]), `pool_core::aging` (lifetimes shortened and restored by
//! [`AgingPolicy::Adaptive`]), `pool_core::upkeep` (rounds of background work, at trace level),
//! `pool_core::recovery` (recovery signals, pause and resume).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(unreachable_pub, missing_debug_implementations)]

mod acquire;
mod aging;
mod bounded;
mod builder;
mod clock;
mod config;
mod connection;
mod connector;
mod deferral;
mod error;
pub mod export;
mod health;
mod idle;
mod leak;
mod ledger;
mod maintenance;
mod manager;
pub mod metrics;
mod place;
mod pool;
mod priority;
mod queue;
mod recycle;
mod replace;
mod retry;
mod shared;
mod stats;
mod taken;
mod upkeep;
mod waiter;
mod warnings;

pub use aging::{AdaptiveAging, AgingPolicy};
pub use builder::Builder;
pub use config::{Config, Fairness, IdleOrder, SelfDeadlock};
pub use connection::{ConnectionMetrics, PooledConnection};
pub use error::{
    AddError, AddRefusal, BuildError, ConfigError, ConnectError, Error, TimeoutError, TimeoutStage,
};
pub use health::Health;
pub use leak::Leak;
pub use manager::{ErrorKind, Manager};
pub use place::QueuePlace;
pub use pool::Pool;
pub use priority::Priority;
pub use recycle::{AdaptiveRecycle, Recycle};
pub use replace::Replaceable;
pub use retry::Retry;
pub use stats::{CloseReason, Closes, PriorityStats, Stats, Status, WaitHistogram};
pub use upkeep::{Maintenance, UpkeepLevel};
pub use warnings::{SoftLimits, Warnings};
