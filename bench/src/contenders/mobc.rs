//! mobc: `Pool::builder().max_open(n).build(manager)`, connections opened on demand.
//!
//! Its defaults keep at most 2 idle connections (`max_idle`) and check every connection on
//! checkout; a returned connection goes back through a spawned task. Built the way users build
//! it, a pool of 8 closes all but 2 of the connections returned at once and opens new ones when
//! they are asked for again: that is what the fresh-pool figures measure. To have connections
//! open up front (the pre-filled and spike suites), `max_idle` is raised to `max_open` so that
//! the pool keeps what it opened, and they are opened by holding that many at once.

use super::{hold_at_once, Contender, Setup, Unit};

/// mobc's pool.
#[derive(Clone)]
pub struct Mobc(mobc::Pool<Unit>);

#[mobc::async_trait]
impl mobc::Manager for Unit {
    type Connection = ();
    type Error = std::convert::Infallible;

    async fn connect(&self) -> Result<(), Self::Error> {
        Unit::connect(self).await;
        Ok(())
    }

    async fn check(&self, conn: ()) -> Result<(), Self::Error> {
        Ok(conn)
    }
}

impl Contender for Mobc {
    const NAME: &'static str = "mobc";
    type Guard<'a> = mobc::Connection<Unit>;

    async fn build(setup: &Setup) -> Self {
        let max = u64::try_from(setup.max_size).expect("small pool");
        let mut builder = mobc::Pool::builder().max_open(max);
        if setup.min_idle > 0 {
            builder = builder.max_idle(max);
        }
        let pool = Mobc(builder.build(setup.manager()));
        hold_at_once(&pool, setup.min_idle).await;
        // Returned connections reach the idle list through spawned tasks.
        // (`state` is async, so `wait_idle` cannot poll it.)
        while usize::try_from(pool.0.state().await.idle).expect("small pool") < setup.min_idle {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        pool
    }

    async fn get(&self) -> mobc::Connection<Unit> {
        self.0.get().await.expect("unit acquire")
    }
}
