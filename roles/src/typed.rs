//! [`WritePool`] and [`AdminPool`]: a [`Pool`] whose guards say which role they came from.

use std::ops::{Deref, DerefMut};

use pool_core::{Error, Manager, Pool, PooledConnection, Priority, Retry};

macro_rules! role_pool {
    ($(#[$pool_doc:meta])* $pool:ident, $(#[$conn_doc:meta])* $conn:ident) => {
        $(#[$pool_doc])*
        pub struct $pool<M: Manager> {
            pool: Pool<M>,
        }

        impl<M: Manager> Clone for $pool<M> {
            fn clone(&self) -> Self {
                $pool { pool: self.pool.clone() }
            }
        }

        impl<M: Manager> std::fmt::Debug for $pool<M> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($pool)).field("pool", &self.pool).finish()
            }
        }

        impl<M: Manager> $pool<M> {
            /// Gives `pool` this role.
            pub fn new(pool: Pool<M>) -> Self {
                $pool { pool }
            }

            /// The pool underneath, for its status, stats and configuration.
            pub fn pool(&self) -> &Pool<M> {
                &self.pool
            }

            /// Checks out a connection, as [`Pool::get`].
            ///
            /// # Errors
            ///
            /// As [`Pool::get`].
            ///
            /// # Cancel safety
            ///
            /// As [`Pool::get`]: dropping the future loses nothing.
            #[track_caller]
            pub fn get(
                &self,
            ) -> impl std::future::Future<Output = Result<$conn<M>, Error<M::Error>>> + Send + '_ {
                let get = self.pool.get();
                async move { get.await.map(|conn| $conn { conn }) }
            }

            /// Checks out a connection at `priority`, as [`Pool::get_with`].
            ///
            /// # Errors
            ///
            /// As [`Pool::get`].
            ///
            /// # Cancel safety
            ///
            /// As [`Pool::get`]: dropping the future loses nothing.
            #[track_caller]
            pub fn get_with(
                &self,
                priority: Priority,
            ) -> impl std::future::Future<Output = Result<$conn<M>, Error<M::Error>>> + Send + '_ {
                let get = self.pool.get_with(priority);
                async move { get.await.map(|conn| $conn { conn }) }
            }

            /// Checks out a connection, retrying while the server is unreachable, as
            /// [`Pool::get_retrying`].
            ///
            /// # Errors
            ///
            /// As [`Pool::get_retrying`].
            ///
            /// # Cancel safety
            ///
            /// As [`Pool::get_retrying`]: dropping the future loses nothing.
            #[track_caller]
            pub fn get_retrying<'a>(
                &'a self,
                retry: &'a Retry,
            ) -> impl std::future::Future<Output = Result<$conn<M>, Error<M::Error>>> + Send + 'a {
                let get = self.pool.get_retrying(retry);
                async move { get.await.map(|conn| $conn { conn }) }
            }
        }

        $(#[$conn_doc])*
        pub struct $conn<M: Manager> {
            conn: PooledConnection<M>,
        }

        impl<M: Manager> $conn<M> {
            /// The pooled connection underneath (its metrics, or `take`).
            pub fn into_inner(self) -> PooledConnection<M> {
                self.conn
            }
        }

        impl<M: Manager> Deref for $conn<M> {
            type Target = M::Connection;

            fn deref(&self) -> &M::Connection {
                &self.conn
            }
        }

        impl<M: Manager> DerefMut for $conn<M> {
            fn deref_mut(&mut self) -> &mut M::Connection {
                &mut self.conn
            }
        }

        impl<M: Manager> std::fmt::Debug for $conn<M>
        where
            M::Connection: std::fmt::Debug,
        {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($conn)).field(&*self.conn).finish()
            }
        }
    };
}

role_pool!(
    /// The primary: the only pool that hands out [`WriteConnection`]s. Cheap to clone.
    WritePool,
    /// A connection to the primary, for writes (and reads that must see them). Returns to its
    /// pool when dropped.
    WriteConnection
);

role_pool!(
    /// A small pool with its own (elevated) credentials, for migrations and DDL. Cheap to
    /// clone.
    AdminPool,
    /// A connection with administrative rights. Returns to its pool when dropped.
    AdminConnection
);
