//! The pools under test, each with its own defaults and a manager for a unit resource.

use std::convert::Infallible;
use std::future::Future;

/// A pool measured by the suites: built with `size` connections opened up front, then
/// acquired and released.
pub trait Contender: Clone + Send + Sync + 'static {
    /// The column header.
    const NAME: &'static str;

    /// A pool of `size` unit connections, all opened before measuring.
    fn build(size: usize) -> impl Future<Output = Self>;

    /// One operation: acquire, optionally hold across one `yield_now`, release.
    fn cycle(&self, hold: bool) -> impl Future<Output = ()> + Send;

    /// Acquires a connection and keeps it until the returned guard is dropped.
    fn keep(&self) -> impl Future<Output = Box<dyn Send + '_>> + Send;
}

/// Ours.
#[derive(Clone)]
pub struct Ours(pool_core::Pool<UnitManager>);

/// The manager of a unit resource, for every pool.
pub struct UnitManager;

impl pool_core::Manager for UnitManager {
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    async fn check(&self, _: &mut ()) -> Result<(), std::io::Error> {
        Ok(())
    }

    /// A unit resource keeps no session state, so there is never anything to reset.
    fn needs_reset(&self, _: &mut ()) -> bool {
        false
    }
}

impl Contender for Ours {
    const NAME: &'static str = "pool-core";

    async fn build(size: usize) -> Self {
        // Lazily, so the connections are opened a few at a time in the background rather than
        // by `size` tasks at once, whose memory the memory suite would count.
        let pool = pool_core::Pool::builder(UnitManager)
            .max_size(size)
            .initial_size(size)
            .build_lazy()
            .expect("a unit pool builds");
        while pool.status().idle < size {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Ours(pool)
    }

    async fn cycle(&self, hold: bool) {
        release(self.0.get().await.expect("unit acquire"), hold).await;
    }

    async fn keep(&self) -> Box<dyn Send + '_> {
        Box::new(self.0.get().await.expect("unit acquire"))
    }
}

/// deadpool's managed pool.
#[derive(Clone)]
pub struct Deadpool(deadpool::managed::Pool<UnitManager>);

impl deadpool::managed::Manager for UnitManager {
    type Type = ();
    type Error = Infallible;

    async fn create(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn recycle(
        &self,
        _: &mut (),
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

impl Contender for Deadpool {
    const NAME: &'static str = "deadpool";

    async fn build(size: usize) -> Self {
        let pool = deadpool::managed::Pool::builder(UnitManager)
            .max_size(size)
            .build()
            .expect("a unit pool builds");
        // deadpool opens connections on demand: hold `size` at once to open them all.
        let mut held = Vec::with_capacity(size);
        for _ in 0..size {
            held.push(pool.get().await.expect("unit acquire"));
        }
        drop(held);
        Deadpool(pool)
    }

    async fn cycle(&self, hold: bool) {
        release(self.0.get().await.expect("unit acquire"), hold).await;
    }

    async fn keep(&self) -> Box<dyn Send + '_> {
        Box::new(self.0.get().await.expect("unit acquire"))
    }
}

/// bb8.
#[derive(Clone)]
pub struct Bb8(bb8::Pool<UnitManager>);

impl bb8::ManageConnection for UnitManager {
    type Connection = ();
    type Error = Infallible;

    async fn connect(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn is_valid(&self, _: &mut ()) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _: &mut ()) -> bool {
        false
    }
}

impl Contender for Bb8 {
    const NAME: &'static str = "bb8";

    async fn build(size: usize) -> Self {
        let pool = bb8::Pool::builder()
            .max_size(u32::try_from(size).expect("small pool"))
            .min_idle(Some(u32::try_from(size).expect("small pool")))
            .build(UnitManager)
            .await
            .expect("a unit pool builds");
        Bb8(pool)
    }

    async fn cycle(&self, hold: bool) {
        release(self.0.get().await.expect("unit acquire"), hold).await;
    }

    async fn keep(&self) -> Box<dyn Send + '_> {
        Box::new(self.0.get().await.expect("unit acquire"))
    }
}

/// Drops a checked-out connection, after one `yield_now` when `hold` is set.
async fn release<T>(conn: T, hold: bool) {
    if hold {
        tokio::task::yield_now().await;
    }
    drop(conn);
}
