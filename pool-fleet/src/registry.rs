//! [`PoolRegistry`]: named pools, created on first use, reported on and closed together.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pool_core::{Health, Manager, Pool, Stats, Status};
use tokio::sync::OnceCell;

use crate::error::{BoxError, RegistryError};

/// What the loader returns: the pool for a name, or why it could not be made.
type Loading<M> = Pin<Box<dyn Future<Output = Result<Pool<M>, BoxError>> + Send>>;

/// Makes the pool for a name on its first use.
type Loader<M> = Arc<dyn Fn(&str) -> Option<Loading<M>> + Send + Sync>;

/// Named pools of one kind, each created the first time it is asked for.
///
/// Cheap to clone: clones share the pools. Two callers asking for the same new name at the same
/// moment share one load; a load whose caller gave up (its future dropped) is taken over by the
/// next caller, so a cancelled creator never leaves a name stuck, and a load that failed is
/// tried again by the next caller.
///
/// # Examples
///
/// ```
/// # use pool_core::{Manager, Pool};
/// # struct Counter;
/// # impl Manager for Counter {
/// #     type Connection = u64;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(0) }
/// #     async fn check(&self, _: &mut u64) -> Result<(), std::io::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pool_fleet::PoolRegistry;
///
/// let registry = PoolRegistry::new(|name: String| async move {
///     let size = if name == "reports" { 2 } else { 8 };
///     Pool::builder(Counter).max_size(size).build_lazy()
/// });
/// let reports = registry.get("reports").await?;
/// assert_eq!(reports.status().max_size, 2);
/// assert_eq!(registry.names(), ["reports"]);
/// registry.close_all();
/// assert!(registry.get("orders").await.is_err(), "a closed registry opens nothing");
/// # Ok(())
/// # }
/// ```
pub struct PoolRegistry<M: Manager> {
    inner: Arc<Inner<M>>,
}

struct Inner<M: Manager> {
    load: Loader<M>,
    state: Mutex<State<M>>,
}

struct State<M: Manager> {
    entries: BTreeMap<String, Arc<Entry<M>>>,
    closed: bool,
}

/// One name: its pool once loaded, and the last load's failure.
struct Entry<M: Manager> {
    pool: OnceCell<Pool<M>>,
    failure: Mutex<Option<String>>,
}

/// Where a name of a [`PoolRegistry`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolState {
    /// Asked for, and its pool is being made (or its last maker gave up).
    Loading,
    /// Its last load failed; the next [`PoolRegistry::get`] tries again.
    Failed {
        /// The load's error, printed with its causes.
        error: String,
    },
    /// Its pool is open.
    Open(Status),
    /// Its pool is closed.
    Closed,
}

/// One pool's figures in [`PoolRegistry::report`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolReport {
    /// The pool's name.
    pub name: String,
    /// Its counts right now.
    pub status: Status,
    /// Its counters since it was built.
    pub stats: Stats,
    /// What it has lately seen of its server.
    pub health: Health,
    /// Whether it is closed.
    pub closed: bool,
}

impl<M: Manager> Clone for PoolRegistry<M> {
    fn clone(&self) -> Self {
        PoolRegistry {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M: Manager> fmt::Debug for PoolRegistry<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolRegistry")
            .field("pools", &self.list())
            .finish()
    }
}

impl<M: Manager> PoolRegistry<M> {
    /// A registry whose pools `load` makes, given the name, the first time each name is asked
    /// for. Any name is accepted; the loader may refuse one with an error.
    pub fn new<F, Fut, E>(load: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Pool<M>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::with_loader(Arc::new(move |name: &str| {
            let loading = load(name.to_owned());
            Some(Box::pin(async move { loading.await.map_err(Into::into) }) as Loading<M>)
        }))
    }

    /// A registry of the names in `configs`, each pool made by `build` from its configuration
    /// on first use. Other names are refused with [`RegistryError::Unknown`].
    pub fn from_configs<C, E>(
        configs: impl IntoIterator<Item = (impl Into<String>, C)>,
        build: impl Fn(&C) -> Result<Pool<M>, E> + Send + Sync + 'static,
    ) -> Self
    where
        C: Send + Sync + 'static,
        E: Into<BoxError>,
    {
        let configs: HashMap<String, C> = configs
            .into_iter()
            .map(|(name, config)| (name.into(), config))
            .collect();
        Self::with_loader(Arc::new(move |name: &str| {
            let made = build(configs.get(name)?).map_err(Into::into);
            Some(Box::pin(std::future::ready(made)) as Loading<M>)
        }))
    }

    /// A registry of the names in `prefixes`, each pool made on first use by `build` from the
    /// environment prefix paired with its name (read then, not now, so a variable set after
    /// the registry is made counts). Other names are refused with [`RegistryError::Unknown`].
    ///
    /// With the drivers, `build` is one line, for example
    /// `|prefix| pool_drivers::postgres::Config::from_env(prefix)?.build_pool_lazy()`, which reads
    /// `{prefix}_URL`, `{prefix}_MAX_SIZE` and the other pool settings.
    pub fn from_env<E>(
        prefixes: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
        build: impl Fn(&str) -> Result<Pool<M>, E> + Send + Sync + 'static,
    ) -> Self
    where
        E: Into<BoxError>,
    {
        let prefixes = prefixes
            .into_iter()
            .map(|(name, prefix)| (name, prefix.into()));
        Self::from_configs(prefixes, move |prefix: &String| build(prefix))
    }

    fn with_loader(load: Loader<M>) -> Self {
        PoolRegistry {
            inner: Arc::new(Inner {
                load,
                state: Mutex::new(State {
                    entries: BTreeMap::new(),
                    closed: false,
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // Nothing that can panic runs under this lock, so a poisoned lock still holds
        // consistent state.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool named `name`, made by the loader if this is its first use.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`] for a name the registry was not configured with,
    /// [`RegistryError::Load`] when the loader failed (the next call tries again),
    /// [`RegistryError::Closed`] after [`close_all`](Self::close_all).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while the pool is being made drops that load; the next caller
    /// starts it again, and callers already waiting on it take it over. Nothing is left behind.
    pub async fn get(&self, name: &str) -> Result<Pool<M>, RegistryError> {
        let entry = {
            let mut st = self.lock();
            if st.closed {
                return Err(RegistryError::Closed);
            }
            match st.entries.get(name) {
                Some(entry) => Arc::clone(entry),
                None => {
                    let entry = Arc::new(Entry {
                        pool: OnceCell::new(),
                        failure: Mutex::new(None),
                    });
                    st.entries.insert(name.to_owned(), Arc::clone(&entry));
                    entry
                }
            }
        };
        if let Some(pool) = entry.pool.get() {
            return Ok(pool.clone());
        }
        let made = entry
            .pool
            .get_or_try_init(|| async {
                let Some(loading) = (self.inner.load)(name) else {
                    return Err(RegistryError::Unknown {
                        name: name.to_owned(),
                    });
                };
                loading.await.map_err(|source| RegistryError::Load {
                    name: name.to_owned(),
                    source,
                })
            })
            .await;
        match made {
            Ok(pool) => {
                *lock_failure(&entry) = None;
                // A load that finished after `close_all` must not leave an open pool behind.
                if self.lock().closed {
                    pool.close();
                    return Err(RegistryError::Closed);
                }
                Ok(pool.clone())
            }
            Err(error) => {
                let mut st = self.lock();
                if matches!(error, RegistryError::Unknown { .. }) {
                    // An unknown name leaves no trace in `names`.
                    st.entries.remove(name);
                } else {
                    *lock_failure(&entry) = Some(with_causes(&error));
                }
                Err(error)
            }
        }
    }

    /// The pool named `name` if it has been made; never loads one.
    pub fn get_loaded(&self, name: &str) -> Option<Pool<M>> {
        let entry = self.lock().entries.get(name).cloned()?;
        entry.pool.get().cloned()
    }

    /// The names asked for so far (including those still loading or whose load failed), in
    /// order.
    pub fn names(&self) -> Vec<String> {
        self.lock().entries.keys().cloned().collect()
    }

    /// Every name asked for so far with where it stands, in name order.
    pub fn list(&self) -> Vec<(String, PoolState)> {
        let entries: Vec<_> = self
            .lock()
            .entries
            .iter()
            .map(|(name, entry)| (name.clone(), Arc::clone(entry)))
            .collect();
        entries
            .into_iter()
            .map(|(name, entry)| {
                let state = match entry.pool.get() {
                    Some(pool) if pool.is_closed() => PoolState::Closed,
                    Some(pool) => PoolState::Open(pool.status()),
                    None => match lock_failure(&entry).clone() {
                        Some(error) => PoolState::Failed { error },
                        None => PoolState::Loading,
                    },
                };
                (name, state)
            })
            .collect()
    }

    /// The figures of every pool made so far, in name order: one place to feed metrics or a
    /// dashboard from.
    pub fn report(&self) -> Vec<PoolReport> {
        self.loaded()
            .into_iter()
            .map(|(name, pool)| PoolReport {
                name,
                status: pool.status(),
                stats: pool.stats(),
                health: pool.health(),
                closed: pool.is_closed(),
            })
            .collect()
    }

    fn loaded(&self) -> Vec<(String, Pool<M>)> {
        let st = self.lock();
        st.entries
            .iter()
            .filter_map(|(name, entry)| Some((name.clone(), entry.pool.get()?.clone())))
            .collect()
    }

    /// Closes every pool (see [`Pool::close`]) and the registry: later [`get`](Self::get)s
    /// fail with [`RegistryError::Closed`], and a pool whose load finishes after this is closed
    /// as it arrives.
    pub fn close_all(&self) {
        self.lock().closed = true;
        for (_, pool) in self.loaded() {
            pool.close();
        }
    }

    /// Like [`close_all`](Self::close_all), then waits at most `limit` in all until every pool
    /// has closed its connections. Returns whether they all did.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops only the waiting; everything is closed either way.
    pub async fn close_all_and_wait(&self, limit: Duration) -> bool {
        self.close_all();
        let deadline = tokio::time::Instant::now() + limit;
        let mut all = true;
        for (_, pool) in self.loaded() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            all &= pool.close_and_wait(left).await;
        }
        all
    }

    /// Whether [`close_all`](Self::close_all) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// An error's message followed by those of its causes.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        next = cause.source();
    }
    message
}

fn lock_failure<M: Manager>(entry: &Entry<M>) -> MutexGuard<'_, Option<String>> {
    entry.failure.lock().unwrap_or_else(|e| e.into_inner())
}
