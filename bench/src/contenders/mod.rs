//! The pools under test, each built its own normal way around the same unit manager.
//!
//! Every pool gets a [`Setup`] (most connections, how many to open before measuring, how long
//! a connect takes) and is built the way its documentation shows, keeping its own defaults
//! otherwise; each file says what that means for its pool.

mod bb8;
mod deadpool;
mod mobc;
mod ours;
mod qp;
mod unit;

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

pub use self::bb8::Bb8;
pub use self::deadpool::Deadpool;
pub use self::mobc::Mobc;
pub use self::ours::{Ours, OursDefault, OursResetPerCheckout, OursStrict};
pub use self::qp::Qp;
pub use self::unit::Unit;

/// How a pool is built for one sample.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Most connections open at once (each pool's "max size").
    pub max_size: usize,
    /// Connections opened, and idle, before the pool is handed to the measurement; `0` builds
    /// the pool the way users do, opening connections on demand.
    pub min_idle: usize,
    /// How long each connect takes (zero: it completes without waiting).
    pub connect_delay: Duration,
    /// Connects completed by the pool's manager, for the suites that count them.
    pub opened: Arc<AtomicUsize>,
}

impl Setup {
    /// A pool of at most `max_size` instant connections, `min_idle` of them open up front.
    pub fn unit(max_size: usize, min_idle: usize) -> Self {
        Setup {
            max_size,
            min_idle,
            connect_delay: Duration::ZERO,
            opened: Arc::default(),
        }
    }

    /// The manager this setup describes.
    pub fn manager(&self) -> Unit {
        Unit::new(self.connect_delay, Arc::clone(&self.opened))
    }
}

/// A pool measured by the unit suites.
pub trait Contender: Clone + Send + Sync + 'static {
    /// The column header.
    const NAME: &'static str;

    /// A checked-out connection, returned to the pool when dropped.
    type Guard<'a>: Send + 'a
    where
        Self: 'a;

    /// The pool of `setup`, with `setup.min_idle` connections open and idle when it returns.
    fn build(setup: &Setup) -> impl Future<Output = Self> + Send;

    /// Checks out one connection, waiting as long as it takes.
    fn get(&self) -> impl Future<Output = Self::Guard<'_>> + Send;

    /// Checks out one connection as a type-erased guard (the memory suite keeps them).
    fn keep(&self) -> impl Future<Output = Box<dyn Send + '_>> + Send {
        async { Box::new(self.get().await) as Box<dyn Send + '_> }
    }
}

/// Opens `n` connections of a pool that opens them on demand, by holding `n` at once, then
/// returns them.
///
/// One after the other rather than in spawned tasks: with 100,000 connections the memory suite
/// would otherwise count the tasks too. With slow connects that takes `n` connect times, which
/// only the (unmeasured) set-up pays.
pub async fn hold_at_once<C: Contender>(pool: &C, n: usize) {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(pool.get().await);
    }
}

/// Waits until `idle` reports at least `n`, checking every millisecond (pools that open or
/// return connections in the background).
pub async fn wait_idle(n: usize, mut idle: impl FnMut() -> usize) {
    while idle() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
