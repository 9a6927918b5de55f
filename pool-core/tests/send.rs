//! Compile-time guarantees: every future the pool returns is `Send`, so it can run inside
//! `tokio::spawn` on a multi-threaded runtime, and handles move freely between threads. If any
//! of this stops holding, this file stops compiling.

mod common;

use std::time::Duration;

use common::Mock;
use pool_core::{Pool, PooledConnection};

fn assert_send<T: Send>(_: &T) {}

fn assert_send_type<T: Send>() {}

fn assert_handle<T: Send + Sync + Clone + 'static>() {}

#[test]
fn the_pools_futures_and_handles_can_cross_threads() {
    assert_handle::<Pool<Mock>>();
    assert_send_type::<PooledConnection<Mock>>();

    // Futures are only created here, never polled: no runtime is needed.
    let build = Pool::builder(Mock::new()).build();
    assert_send(&build);
    drop(build);

    let pool = Pool::builder(Mock::new()).build_lazy().unwrap();
    assert_send(&pool.get());
    assert_send(&pool.get_timeout(Duration::from_secs(1)));
    assert_send(&pool.get_retrying(&pool_core::Retry::default()));
    assert_send(&pool.try_get());
    assert_send(&pool.close_and_wait(Duration::from_secs(1)));
    assert!(
        !pool.is_closed(),
        "creating a close_and_wait future closes nothing"
    );
}

/// The same, the way users meet it: a spawned task that acquires, and a connection handed to
/// another task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquiring_in_a_spawned_task_and_passing_the_connection_on() {
    let pool = Pool::builder(Mock::new()).max_size(1).build_lazy().unwrap();
    let conn = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.unwrap() }
    })
    .await
    .unwrap();
    let id = tokio::spawn(async move { conn.id }).await.unwrap();
    assert_eq!(id, 1);
    assert_eq!(
        pool.status().idle,
        1,
        "dropped in the other task, back in the pool"
    );
}
