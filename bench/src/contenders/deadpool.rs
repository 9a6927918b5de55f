//! deadpool's managed pool: `Pool::builder(manager).max_size(n).build()`. It has no minimum
//! of idle connections, so connections to have open up front are opened by holding that many
//! at once.

use std::convert::Infallible;

use super::{hold_at_once, Contender, Setup, Unit};

/// deadpool's managed pool.
#[derive(Clone)]
pub struct Deadpool(deadpool::managed::Pool<Unit>);

impl deadpool::managed::Manager for Unit {
    type Type = ();
    type Error = Infallible;

    async fn create(&self) -> Result<(), Infallible> {
        self.connect().await;
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
    type Guard<'a> = deadpool::managed::Object<Unit>;

    async fn build(setup: &Setup) -> Self {
        let pool = deadpool::managed::Pool::builder(setup.manager())
            .max_size(setup.max_size)
            .build()
            .expect("a unit pool builds");
        let pool = Deadpool(pool);
        hold_at_once(&pool, setup.min_idle).await;
        pool
    }

    async fn get(&self) -> deadpool::managed::Object<Unit> {
        self.0.get().await.expect("unit acquire")
    }
}
