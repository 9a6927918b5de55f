//! qp ("Quick Pool"): `Pool::new(manager, max_size)`, connections opened on demand; its own
//! `reserve(n)` opens connections up front.
//!
//! Its waiters register their waker once and never again: a waiter woken while another caller
//! takes the freed permit first stays asleep for good. Under contention a sample can therefore
//! never finish, which the suites report as "hangs".

use super::{Contender, Setup, Unit};

/// qp's pool.
#[derive(Clone)]
pub struct Qp(qp::Pool<Unit>);

#[qp::async_trait]
impl qp::resource::Manage for Unit {
    type Output = ();
    type Error = std::convert::Infallible;

    async fn try_create(&self) -> Result<(), Self::Error> {
        self.connect().await;
        Ok(())
    }
}

impl Contender for Qp {
    const NAME: &'static str = "qp";
    type Guard<'a> = qp::Pooled<'a, Unit>;

    async fn build(setup: &Setup) -> Self {
        let pool = qp::Pool::new(setup.manager(), setup.max_size);
        if setup.min_idle > 0 {
            pool.reserve(setup.min_idle).await.expect("unit connect");
        }
        Qp(pool)
    }

    async fn get(&self) -> qp::Pooled<'_, Unit> {
        self.0.acquire().await.expect("unit acquire")
    }
}
