//! bb8: `Pool::builder().max_size(n).build(manager).await`, with `min_idle` for connections to
//! have open up front (none otherwise, its default).

use std::convert::Infallible;

use super::{wait_idle, Contender, Setup, Unit};

/// bb8.
#[derive(Clone)]
pub struct Bb8(bb8::Pool<Unit>);

impl bb8::ManageConnection for Unit {
    type Connection = ();
    type Error = Infallible;

    async fn connect(&self) -> Result<(), Infallible> {
        Unit::connect(self).await;
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
    type Guard<'a> = bb8::PooledConnection<'a, Unit>;

    async fn build(setup: &Setup) -> Self {
        let small = |n: usize| u32::try_from(n).expect("small pool");
        let mut builder = bb8::Pool::builder().max_size(small(setup.max_size));
        if setup.min_idle > 0 {
            builder = builder.min_idle(Some(small(setup.min_idle)));
        }
        let pool = builder
            .build(setup.manager())
            .await
            .expect("a unit pool builds");
        // `build` starts opening `min_idle` connections; wait until they are there.
        wait_idle(setup.min_idle, || {
            usize::try_from(pool.state().idle_connections).expect("small pool")
        })
        .await;
        Bb8(pool)
    }

    async fn get(&self) -> bb8::PooledConnection<'_, Unit> {
        self.0.get().await.expect("unit acquire")
    }
}
