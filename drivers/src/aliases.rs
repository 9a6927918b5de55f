//! [`driver_aliases!`]: the `Pool`, `Connection` and `PoolError` aliases every driver module
//! has, written once.

/// Declares a driver module's aliases for its `$manager`: `Pool` (documented by `$pool`),
/// `Connection` (documented by `$connection`) and `PoolError`, what `Pool::get` fails with.
macro_rules! driver_aliases {
    ($manager:ty, pool: $pool:literal, connection: $connection:literal $(,)?) => {
        #[doc = $pool]
        pub type Pool = pool_core::Pool<$manager>;
        #[doc = $connection]
        pub type Connection = pool_core::PooledConnection<$manager>;
        /// What [`Pool::get`](pool_core::Pool::get) fails with.
        pub type PoolError = pool_core::Error<<$manager as pool_core::Manager>::Error>;
    };
}
