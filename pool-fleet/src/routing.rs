//! [`Router`]: picks the partition a caller is served by: by key, by a strategy (least
//! connections, round-robin, random, a closure), with a preferred partition, a fallback and
//! sticky sessions.

use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::{Error, Manager, Status};

use crate::error::AcquireError;
use crate::partitions::{PartitionAcquireError, PartitionGuard, Partitions};

/// One partition the router may pick, as a [`Strategy::Custom`] closure sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Candidate<K> {
    /// The partition's key.
    pub key: K,
    /// Its pool's counts now.
    pub status: Status,
}

/// A closure that picks one of the candidates (by index), or none.
pub type Pick<K> = Arc<dyn Fn(&[Candidate<K>]) -> Option<usize> + Send + Sync>;

/// How a [`Router`] picks among partitions when the caller names none (or its choice failed
/// and the fallback allows another).
#[non_exhaustive]
pub enum Strategy<K> {
    /// The partition with the fewest connections in use and callers waiting; the first in key
    /// order among equals.
    LeastConnections,
    /// Each partition in key order, in turn.
    RoundRobin,
    /// Any partition, uniformly at random.
    Random,
    /// The partition the closure picks from the candidates, given in key order.
    Custom(Pick<K>),
}

impl<K> Clone for Strategy<K> {
    fn clone(&self) -> Self {
        match self {
            Strategy::LeastConnections => Strategy::LeastConnections,
            Strategy::RoundRobin => Strategy::RoundRobin,
            Strategy::Random => Strategy::Random,
            Strategy::Custom(pick) => Strategy::Custom(Arc::clone(pick)),
        }
    }
}

impl<K> fmt::Debug for Strategy<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::LeastConnections => "LeastConnections",
            Strategy::RoundRobin => "RoundRobin",
            Strategy::Random => "Random",
            Strategy::Custom(_) => "Custom",
        })
    }
}

/// What happens when the partition a caller asked for (by key, preference or stickiness)
/// cannot serve it in time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback<K> {
    /// The caller gets the error: it must be served by that partition or not at all.
    Never,
    /// Another partition, picked by the router's strategy.
    Any,
    /// One of these, in this order.
    To(Vec<K>),
}

/// A caller that stays with the partition it was first served by (a user's session, a
/// connection of a client), for as long as that partition serves it.
///
/// Share one between the requests of one caller; clones share the pin.
#[derive(Debug, Clone, Default)]
pub struct StickySession<K> {
    pinned: Arc<Mutex<Option<K>>>,
}

impl<K: Clone> StickySession<K> {
    /// A session not pinned to any partition yet.
    pub fn new() -> Self {
        StickySession {
            pinned: Arc::new(Mutex::new(None)),
        }
    }

    /// The partition it is pinned to.
    pub fn pinned(&self) -> Option<K> {
        self.lock().clone()
    }

    /// Forgets the pin: the next request is routed afresh.
    pub fn unpin(&self) {
        *self.lock() = None;
    }

    fn pin(&self, key: K) {
        *self.lock() = Some(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<K>> {
        self.pinned.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where one request should go.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Route<'a, K> {
    /// The partition to try first.
    pub preferred: Option<K>,
    /// What to do when it cannot serve in time.
    pub fallback: Fallback<K>,
    /// The caller's session: tried first, and pinned to whichever partition serves it.
    pub sticky: Option<&'a StickySession<K>>,
}

impl<'a, K> Route<'a, K> {
    /// Exactly the partition `key` (routing by key): no fallback.
    pub fn key(key: K) -> Self {
        Route {
            preferred: Some(key),
            fallback: Fallback::Never,
            sticky: None,
        }
    }

    /// Any partition, as the router's strategy picks.
    pub fn any() -> Self {
        Route {
            preferred: None,
            fallback: Fallback::Any,
            sticky: None,
        }
    }

    /// `key` if it can serve in time, else as `fallback` says.
    pub fn prefer(key: K, fallback: Fallback<K>) -> Self {
        Route {
            preferred: Some(key),
            fallback,
            sticky: None,
        }
    }

    /// The same route for a caller that sticks to the partition that serves it.
    pub fn sticky(mut self, session: &'a StickySession<K>) -> Self {
        self.sticky = Some(session);
        self
    }
}

/// Picks the partition of [`Partitions`] that serves each request.
///
/// Cheap to clone: clones share the partitions and the round-robin position.
///
/// # Examples
///
/// ```
/// # use pool_core::Manager;
/// # struct Replica(&'static str);
/// # impl Manager for Replica {
/// #     type Connection = &'static str;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<&'static str, std::io::Error> { Ok(self.0) }
/// #     async fn check(&self, _: &mut &'static str) -> Result<(), std::io::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pool_fleet::{Budget, Fallback, PartitionLimits, Partitions, Route, Router, StickySession, Strategy};
///
/// let services = Partitions::new(Budget::new(8)?);
/// for name in ["eu", "us"] {
///     services.add(name, Replica(name), PartitionLimits::max(4))?;
/// }
/// let router = Router::new(services, Strategy::RoundRobin);
///
/// // By key: that partition or an error.
/// let (key, _conn) = router.get(Route::key("eu")).await?;
/// assert_eq!(key, "eu");
///
/// // A user's session sticks to the partition that first served it.
/// let session = StickySession::new();
/// let (first, _conn) = router.get(Route::any().sticky(&session)).await?;
/// let (again, _conn) = router.get(Route::any().sticky(&session)).await?;
/// assert_eq!(first, again);
///
/// // Prefer `us`, fall back to any other.
/// let (key, _conn) = router.get(Route::prefer("us", Fallback::Any)).await?;
/// assert_eq!(key, "us");
/// # Ok(())
/// # }
/// ```
pub struct Router<K, M: Manager> {
    partitions: Partitions<K, M>,
    strategy: Strategy<K>,
    preferred_wait: Duration,
    turn: Arc<AtomicUsize>,
}

impl<K, M: Manager> Clone for Router<K, M> {
    fn clone(&self) -> Self {
        Router {
            partitions: self.partitions.clone(),
            strategy: self.strategy.clone(),
            preferred_wait: self.preferred_wait,
            turn: Arc::clone(&self.turn),
        }
    }
}

impl<K: fmt::Debug + Eq + Hash, M: Manager> fmt::Debug for Router<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("partitions", &self.partitions)
            .field("strategy", &self.strategy)
            .field("preferred_wait", &self.preferred_wait)
            .finish()
    }
}

/// How long a preferred or sticky partition is given before the fallback, by default.
const DEFAULT_PREFERRED_WAIT: Duration = Duration::from_millis(100);

impl<K, M> Router<K, M>
where
    K: Eq + Hash + Ord + Clone + Send + Sync + 'static,
    M: Manager,
{
    /// A router over `partitions` that picks by `strategy` when a request names no
    /// partition.
    pub fn new(partitions: Partitions<K, M>, strategy: Strategy<K>) -> Self {
        Router {
            partitions,
            strategy,
            preferred_wait: DEFAULT_PREFERRED_WAIT,
            turn: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How long a preferred or sticky partition may take to serve before the fallback is
    /// tried (when there is one; without, the partition's own acquire timeout applies).
    /// Default 100 ms.
    pub fn preferred_wait(mut self, wait: Duration) -> Self {
        self.preferred_wait = wait;
        self
    }

    /// The partitions routed among.
    pub fn partitions(&self) -> &Partitions<K, M> {
        &self.partitions
    }

    /// The partition the strategy would pick now among all but `excluded`.
    pub fn pick(&self, excluded: &[K]) -> Option<K> {
        let mut keys = self.partitions.keys();
        keys.retain(|k| !excluded.contains(k));
        keys.sort();
        if keys.is_empty() {
            return None;
        }
        let at = match &self.strategy {
            Strategy::RoundRobin => self.turn.fetch_add(1, Ordering::Relaxed) % keys.len(),
            Strategy::Random => fastrand::usize(..keys.len()),
            Strategy::LeastConnections => {
                let load = |k: &K| {
                    self.partitions.pool(k).map_or(usize::MAX, |p| {
                        let s = p.status();
                        s.in_use + s.waiting
                    })
                };
                let (at, _) = keys
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, k)| load(k))
                    .expect("keys is not empty");
                at
            }
            Strategy::Custom(pick) => {
                let candidates: Vec<Candidate<K>> = keys
                    .iter()
                    .filter_map(|k| {
                        Some(Candidate {
                            key: k.clone(),
                            status: self.partitions.pool(k)?.status(),
                        })
                    })
                    .collect();
                let at = pick(&candidates)?;
                return candidates.into_iter().nth(at).map(|c| c.key);
            }
        };
        keys.into_iter().nth(at)
    }

    /// Checks out a connection of the partition `route` leads to, and says which it is.
    ///
    /// The sticky session's partition is tried first, then the preferred one, each for at
    /// most [`preferred_wait`](Self::preferred_wait) when a fallback exists; then the
    /// fallback's partitions in turn, each with its full acquire timeout. A sticky session is
    /// pinned to the partition that served it.
    ///
    /// # Errors
    ///
    /// The last partition's error ([`AcquireError::Pool`]), [`AcquireError::UnknownPartition`]
    /// when the only partition asked for does not exist, [`AcquireError::NoRoute`] when there
    /// was no partition to try.
    ///
    /// # Cancel safety
    ///
    /// As [`Pool::get`](pool_core::Pool::get): dropping the future loses nothing; the sticky
    /// session is left as it was.
    pub async fn get(
        &self,
        route: Route<'_, K>,
    ) -> Result<(K, PartitionGuard<M>), PartitionAcquireError<M>> {
        let mut tried: Vec<K> = Vec::new();
        let mut last: Option<PartitionAcquireError<M>> = None;
        let first_choices = route
            .sticky
            .and_then(StickySession::pinned)
            .into_iter()
            .chain(route.preferred.clone());
        let has_fallback = route.fallback != Fallback::Never;
        for key in first_choices {
            if tried.contains(&key) {
                continue;
            }
            let wait = has_fallback.then_some(self.preferred_wait);
            match self.try_one(&key, wait).await {
                Ok(conn) => return Ok(self.served(route.sticky, key, conn)),
                Err(e) => last = Some(e),
            }
            tried.push(key);
        }
        let fixed = match &route.fallback {
            Fallback::Never => return Err(last.unwrap_or(AcquireError::NoRoute)),
            Fallback::To(keys) => Some(keys.iter()),
            Fallback::Any => None,
        };
        let mut fixed = fixed.into_iter().flatten();
        loop {
            let next = match &route.fallback {
                Fallback::Any => self.pick(&tried),
                _ => fixed.find(|k| !tried.contains(k)).cloned(),
            };
            let Some(key) = next else {
                return Err(last.unwrap_or(AcquireError::NoRoute));
            };
            match self.try_one(&key, None).await {
                Ok(conn) => return Ok(self.served(route.sticky, key, conn)),
                Err(e) => last = Some(e),
            }
            tried.push(key);
        }
    }

    async fn try_one(
        &self,
        key: &K,
        wait: Option<Duration>,
    ) -> Result<PartitionGuard<M>, PartitionAcquireError<M>> {
        let pool = self
            .partitions
            .pool(key)
            .ok_or(AcquireError::UnknownPartition)?;
        let got = match wait {
            Some(wait) => pool.get_timeout(wait).await,
            None => pool.get().await,
        };
        got.map_err(|e: Error<_>| AcquireError::Pool(e))
    }

    fn served(
        &self,
        sticky: Option<&StickySession<K>>,
        key: K,
        conn: PartitionGuard<M>,
    ) -> (K, PartitionGuard<M>) {
        if let Some(session) = sticky {
            session.pin(key.clone());
        }
        (key, conn)
    }
}
