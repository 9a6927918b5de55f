//! A [`Snapshot`] of one pool, and its exports: Prometheus text exposition (feature
//! `prometheus`), JSON (feature `json`) and CSV (feature `csv`), each taking the snapshots of
//! one pool or several.
//!
//! ```
//! # use pool_core::{Manager, Pool};
//! # struct Counter;
//! # impl Manager for Counter {
//! #     type Connection = u64;
//! #     type Error = std::io::Error;
//! #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(0) }
//! #     async fn check(&self, _: &mut u64) -> Result<(), std::io::Error> { Ok(()) }
//! # }
//! let pool = Pool::builder(Counter).name("cache").build_lazy().unwrap();
//! let snapshot = pool.snapshot();
//! assert_eq!(snapshot.name, "cache");
//! assert_eq!(snapshot.status.in_use, 0);
//! ```

#[cfg(feature = "csv")]
mod csv;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "prometheus")]
mod prometheus;
#[cfg(feature = "serde")]
mod serialize;
mod snapshot;

#[cfg(feature = "csv")]
pub use self::csv::{csv_columns, to_csv};
#[cfg(feature = "json")]
pub use self::json::to_json;
#[cfg(feature = "prometheus")]
pub use self::prometheus::{to_prometheus, BUCKETS};
pub use self::snapshot::Snapshot;

#[cfg(all(test, any(feature = "json", feature = "csv", feature = "prometheus")))]
pub(crate) mod fixture;
