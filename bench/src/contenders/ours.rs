//! Ours, in three variants: the defaults with a manager that says a unit connection never needs
//! a reset; the same with a manager that keeps the trait's default `needs_reset` (so a reset
//! future runs on every checkout, as deadpool's `recycle` does); and strict FIFO hand-off.

use std::marker::PhantomData;

use pool_core::{Builder, Fairness, Pool};

use super::{wait_idle, Contender, Setup, Unit};

/// A configuration of our pool: its column name, its manager and its settings.
pub trait Variant: Send + Sync + 'static {
    /// The column header.
    const NAME: &'static str;
    /// The manager type.
    type Manager: pool_core::Manager<Connection = ()>;

    /// Wraps the unit manager.
    fn manager(unit: Unit) -> Self::Manager;

    /// Settings beyond `max_size` and `min_idle`; none by default.
    fn configure(builder: Builder<Self::Manager>) -> Builder<Self::Manager> {
        builder
    }
}

/// The defaults; the manager overrides `needs_reset`, as a driver for a stateless resource
/// would.
pub struct OursDefault;

impl Variant for OursDefault {
    const NAME: &'static str = "pool-core";
    type Manager = Unit;

    fn manager(unit: Unit) -> Unit {
        unit
    }
}

/// The defaults, with a manager that keeps the trait's default `needs_reset` (`true`).
pub struct OursResetPerCheckout;

impl Variant for OursResetPerCheckout {
    const NAME: &'static str = "pool-core (reset per checkout)";
    type Manager = ResettingUnit;

    fn manager(unit: Unit) -> ResettingUnit {
        ResettingUnit(unit)
    }
}

/// Strict FIFO: every returned connection goes to the oldest waiter.
pub struct OursStrict;

impl Variant for OursStrict {
    const NAME: &'static str = "pool-core (strict FIFO)";
    type Manager = Unit;

    fn manager(unit: Unit) -> Unit {
        unit
    }

    fn configure(builder: Builder<Unit>) -> Builder<Unit> {
        builder.fairness(Fairness::Strict)
    }
}

/// Our pool in variant `V`.
pub struct Ours<V: Variant>(Pool<V::Manager>, PhantomData<fn() -> V>);

impl<V: Variant> Clone for Ours<V> {
    fn clone(&self) -> Self {
        Ours(self.0.clone(), PhantomData)
    }
}

impl pool_core::Manager for Unit {
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self) -> Result<(), std::io::Error> {
        Unit::connect(self).await;
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

/// The unit manager with the trait's default `needs_reset` and `reset`.
pub struct ResettingUnit(Unit);

impl pool_core::Manager for ResettingUnit {
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self) -> Result<(), std::io::Error> {
        self.0.connect().await;
        Ok(())
    }

    async fn check(&self, _: &mut ()) -> Result<(), std::io::Error> {
        Ok(())
    }
}

impl<V: Variant> Contender for Ours<V> {
    const NAME: &'static str = V::NAME;
    type Guard<'a> = pool_core::PooledConnection<V::Manager>;

    async fn build(setup: &Setup) -> Self {
        let builder = V::configure(Pool::builder(V::manager(setup.manager())));
        if setup.min_idle == 0 {
            // As users build it: nothing opened until asked for.
            let pool = builder
                .max_size(setup.max_size)
                .build()
                .await
                .expect("a unit pool builds");
            return Ours(pool, PhantomData);
        }
        // Lazily, so the connections are opened a few at a time in the background rather than
        // by `min_idle` tasks at once, whose memory the memory suite would count.
        let pool = builder
            .max_size(setup.max_size)
            .min_idle(setup.min_idle)
            .initial_size(setup.min_idle)
            .build_lazy()
            .expect("a unit pool builds");
        wait_idle(setup.min_idle, || pool.status().idle).await;
        Ours(pool, PhantomData)
    }

    async fn get(&self) -> pool_core::PooledConnection<V::Manager> {
        self.0.get().await.expect("unit acquire")
    }
}
