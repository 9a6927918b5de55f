//! A pool over time: lifetimes, idle timeouts, `min_idle`, keepalive checks, leak reports,
//! resizing, closing, recovery, `retain`, configuration changes, building, and the background
//! task's end.

mod common;

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_quiet, closes, hold, hold_n, settle, Behave, Mock, Op};
use pool_core::{AddRefusal, BuildError, CloseReason, ConnectError, Error, Pool};
use tokio::time::Instant;
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const TICK: Duration = Duration::from_secs(1);

// ---- lifetime, idle timeout, min_idle, keepalive ------------------------------------------

#[tokio::test(start_paused = true)]
async fn max_lifetime_closes_idle_connections_in_the_background_and_busy_ones_on_return() {
    const LIFETIME: Duration = Duration::from_secs(40);
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(5)
        .max_lifetime(LIFETIME)
        .idle_timeout(None)
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();
    let opened = Instant::now();
    let mut held = hold_n(&pool, 5).await;
    let busy = held.pop().unwrap();
    drop(held); // four idle, one in use

    // Each connection's lifetime is cut by a random part of up to four upkeep intervals here
    // (more than 1/40 of it), so no idle one may go before that, and each must be gone by the
    // round after the lifetime, give or take the short pauses between retirements (at most a
    // tenth of the pool per round, the next round a tenth of an interval later).
    let mut expiries = Vec::new();
    let mut seen = 0;
    while opened.elapsed() < LIFETIME + TICK * 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = closes(&pool, CloseReason::Expired);
        for _ in seen..now {
            expiries.push(opened.elapsed());
        }
        seen = now;
    }
    assert_eq!(
        expiries.len(),
        4,
        "every idle connection expired: {expiries:?}"
    );
    for at in &expiries {
        assert!(
            *at >= LIFETIME - TICK * 4 && *at <= LIFETIME + TICK + Duration::from_millis(450),
            "expired at {at:?}"
        );
    }
    assert_eq!(
        pool.status().in_use,
        1,
        "the connection in use is not taken from its holder"
    );

    drop(busy);
    assert_eq!(
        closes(&pool, CloseReason::Expired),
        5,
        "an expired connection is closed on return"
    );
    assert_eq!(assert_quiet(&pool, 0).await.size, 0);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_idle_connections_but_never_below_min_idle() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(5)
        .min_idle(2)
        .idle_timeout(Duration::from_secs(10))
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();
    drop(hold_n(&pool, 5).await);

    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(pool.status().idle, 5, "none idled long enough yet");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pool.status().idle, 2, "idle down to min_idle");
    assert_eq!(closes(&pool, CloseReason::IdleTimeout), 3);

    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        pool.status().idle,
        2,
        "min_idle connections stay however long they idle"
    );
    assert_eq!(
        mock.connects_attempted(),
        5,
        "and they are kept, not churned"
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn min_idle_is_refilled_after_losses_backing_off_while_connects_fail() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(4)
        .min_idle(2)
        .connect_backoff(Duration::from_millis(100))
        .connect_backoff_max(Duration::from_secs(1))
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();
    tokio::time::sleep(TICK).await;
    assert_eq!(
        pool.status().idle,
        2,
        "filled to min_idle in the background"
    );

    // Both die while the server is down.
    mock.set(Op::Connect, Behave::Transient);
    let mut held = hold_n(&pool, 2).await;
    for conn in &mut held {
        conn.broken = true;
    }
    drop(held);
    let before = mock.connects_attempted();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let attempts = mock.connects_attempted() - before;
    assert_eq!(pool.status().idle, 0);
    // Two refills, each retried with a backoff that grows to 1 s: a few dozen attempts at most
    // in 10 s, not a tight loop.
    assert!(
        (2..=60).contains(&attempts),
        "{attempts} connect attempts in 10 s"
    );

    mock.set(Op::Connect, Behave::Ok);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.status().idle, 2, "refilled once connects work");
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn keepalive_checks_long_idle_connections_and_closes_those_that_fail() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .keepalive_interval(Duration::from_secs(10))
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();
    drop(hold_n(&pool, 2).await);

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        mock.checks(),
        0,
        "not idle long enough for a keepalive check"
    );
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(mock.checks(), 2, "each idle connection was checked once");
    assert_eq!(pool.status().idle, 2, "passing the check keeps it");

    // A check resets the clock: the next one is due a full interval later, and fails.
    mock.set(Op::Check, Behave::Transient);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(mock.checks(), 2);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(closes(&pool, CloseReason::CheckFailed), 2);
    assert_eq!(pool.stats().checks_failed, 2);
    assert_eq!(assert_quiet(&pool, 0).await.size, 0);
}

/// A keepalive check that panics is a failed check: it costs no slot, the connections
/// waiting for their own check are not lost, and upkeep goes on afterwards.
#[tokio::test(start_paused = true)]
async fn a_panicking_keepalive_check_costs_no_slot_and_upkeep_goes_on() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .keepalive_interval(Duration::from_secs(10))
        .max_lifetime(Duration::from_secs(100))
        .idle_timeout(None)
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();
    drop(hold_n(&pool, 3).await);

    mock.script(Op::Check, [Behave::Panic]);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(mock.checks(), 3, "the other connections were still checked");
    assert_eq!(
        assert_quiet(&pool, 0).await.size,
        2,
        "only the connection whose check panicked is gone"
    );

    // The background task survived: it still closes connections when they expire.
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(closes(&pool, CloseReason::Expired), 2);
    assert_eq!(assert_quiet(&pool, 0).await.size, 0);
}

/// While the background task waits on a keepalive check that does not answer, time goes on
/// for everyone else: a connection idle for 10 s is still checked on checkout.
#[tokio::test(start_paused = true)]
async fn a_hanging_keepalive_check_does_not_stop_the_pools_clock() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .keepalive_interval(Duration::from_secs(10))
        .check_timeout(Duration::from_secs(60))
        .skip_check_within(Duration::from_millis(500))
        .idle_timeout(None)
        .max_lifetime(None)
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();
    let mut held = hold_n(&pool, 2).await;
    let a = held.pop().unwrap();
    drop(held); // B idles and will be due a keepalive check in 10 s

    mock.script(Op::Check, [Behave::Hang]);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(mock.checks(), 1, "B's keepalive check started and hangs");
    let a_id = a.id;
    drop(a);

    tokio::time::sleep(Duration::from_secs(10)).await;
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, a_id, "B is still under its check");
    assert_eq!(
        mock.checks(),
        2,
        "A idled 10 s, far past skip_check_within: it was checked"
    );
    drop(conn);
    assert_quiet(&pool, 0).await;
}

// ---- leak reports ----------------------------------------------------------------------------

/// Events seen by the subscriber installed for one test: level, target and rendered fields.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(Level, String, String)>>>);

impl Captured {
    fn on(&self, level: Level, target: &str) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|(l, t, _)| *l == level && t == target)
            .map(|(_, _, text)| text.clone())
            .collect()
    }
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl<S: Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut text = String::new();
        event.record(&mut Fields(&mut text));
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((*meta.level(), meta.target().to_owned(), text));
    }
}

/// A connection held past `leak_threshold` is reported once, naming where it was checked
/// out; its return is noted. (The current-thread runtime runs the background task on this
/// thread, so the thread's default subscriber sees its events.)
#[tokio::test(start_paused = true)]
async fn a_connection_held_too_long_is_reported_once_with_its_checkout_location() {
    let captured = Captured::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .leak_threshold(Duration::from_secs(5))
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();

    // Returned in time: nothing to report.
    let brief = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(brief);

    let (conn, line) = (pool.get().await.unwrap(), line!());
    tokio::time::sleep(Duration::from_secs(7)).await;
    let warnings = captured.on(Level::WARN, "pool_core::leak");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let location = format!("{}:{line}:", file!());
    assert!(
        warnings[0].contains(&location),
        "{location:?} missing from {:?}",
        warnings[0]
    );

    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        captured.on(Level::WARN, "pool_core::leak").len(),
        1,
        "reported once, not every round"
    );
    assert!(captured.on(Level::INFO, "pool_core::leak").is_empty());

    drop(conn);
    let notes = captured.on(Level::INFO, "pool_core::leak");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains(file!()), "{notes:?}");
    assert_quiet(&pool, 0).await;
}

// ---- resizing --------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn growing_serves_queued_callers_at_once() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .build_lazy()
        .unwrap();
    let held = hold_n(&pool, 2).await;
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(hold) })
        })
        .collect();
    settle().await;
    assert_eq!(pool.status().waiting, 2);

    pool.resize(4).unwrap();
    let start = Instant::now();
    let mut more = Vec::new();
    for waiter in waiters {
        more.push(waiter.await.unwrap().expect("served by a new connection"));
    }
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no waiting for a connection to come back"
    );
    assert_eq!(pool.status().size, 4);
    drop((held, more));
    assert_eq!(assert_quiet(&pool, 0).await.size, 4);
}

#[tokio::test(start_paused = true)]
async fn shrinking_closes_idle_extras_now_and_busy_extras_as_they_come_back() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(4)
        .build_lazy()
        .unwrap();
    let mut held = hold_n(&pool, 4).await;
    drop(held.split_off(1)); // one in use, three idle

    pool.resize(2).unwrap();
    let status = pool.status();
    assert_eq!(
        (status.size, status.idle, status.in_use),
        (2, 1, 1),
        "idle extras closed at once"
    );
    assert_eq!(closes(&pool, CloseReason::Retired), 2);

    // Now every connection is busy when the pool shrinks to one.
    held.extend(hold_n(&pool, 1).await);
    pool.resize(1).unwrap();
    assert_eq!(
        pool.status().size,
        2,
        "connections in use are not taken from their holders"
    );
    drop(held.pop());
    assert_eq!(pool.status().size, 1, "an extra is closed as it comes back");
    drop(held);
    let status = assert_quiet(&pool, 0).await;
    assert_eq!(
        (status.size, status.max_size),
        (1, 1),
        "size ends at the new max"
    );
    assert_eq!(closes(&pool, CloseReason::Retired), 3);
}

// ---- closing ---------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn close_fails_waiters_at_once_and_closes_connections_as_they_come_back() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .build_lazy()
        .unwrap();
    let mut held = hold_n(&pool, 2).await;
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(drop) })
        })
        .collect();
    settle().await;

    pool.close();
    assert!(pool.is_closed());
    let start = Instant::now();
    for waiter in waiters {
        assert!(matches!(waiter.await.unwrap(), Err(Error::Closed)));
    }
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "queued callers are told at once"
    );
    assert!(matches!(pool.get().await, Err(Error::Closed)));
    assert!(matches!(pool.try_get().await, Err(Error::Closed)));

    drop(held.pop());
    assert_eq!(
        closes(&pool, CloseReason::PoolClosed),
        1,
        "returned to a closed pool: closed"
    );
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close_and_wait(Duration::from_secs(60)).await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!closing.is_finished(), "one connection is still out");
    drop(held);
    assert!(closing.await.unwrap(), "all closed");
    assert_eq!(mock.live(), 0);
    assert_eq!(pool.status().size, 0);
}

#[tokio::test(start_paused = true)]
async fn close_and_wait_gives_up_at_its_limit_while_a_connection_is_out() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let start = Instant::now();
    assert!(!pool.close_and_wait(Duration::from_secs(2)).await);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    drop(conn);
    assert!(
        pool.close_and_wait(Duration::ZERO).await,
        "nothing left once it came back"
    );
}

/// Once closed, a pool opens nothing more: a connect backing off after failures stops
/// instead of trying again, so closing does not wait for it.
#[tokio::test(start_paused = true)]
async fn a_closed_pool_attempts_no_more_connects() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .connect_backoff(Duration::from_secs(4))
        .connect_backoff_max(Duration::from_secs(4))
        .build_lazy()
        .unwrap();
    mock.set(Op::Connect, Behave::Transient);
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    settle().await;
    assert_eq!(
        mock.connects_attempted(),
        1,
        "the first attempt failed; the next waits 2-4 s"
    );

    let start = Instant::now();
    assert!(pool.close_and_wait(Duration::from_secs(10)).await);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "close waited {:?} for a connect backing off",
        start.elapsed()
    );
    assert!(matches!(waiter.await.unwrap(), Err(Error::Closed)));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        mock.connects_attempted(),
        1,
        "no connect attempted after close"
    );
}

#[tokio::test(start_paused = true)]
async fn the_background_task_ends_when_the_last_handle_is_dropped() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();
    let conn = pool.get().await.unwrap();
    let runtime = tokio::runtime::Handle::current();
    assert_eq!(
        runtime.metrics().num_alive_tasks(),
        1,
        "the background task runs"
    );
    assert_eq!(mock.managers(), 2, "the test's mock and the pool's");

    // A checked-out connection is a handle too: the pool lives on through it.
    drop(pool);
    tokio::time::sleep(TICK * 3).await;
    assert_eq!(mock.managers(), 2);
    assert_eq!(runtime.metrics().num_alive_tasks(), 1);

    drop(conn);
    assert_eq!(
        mock.managers(),
        1,
        "the pool's state was freed with its last handle"
    );
    assert_eq!(mock.live(), 0, "its idle connection went with it");
    tokio::time::sleep(TICK * 2).await;
    assert_eq!(
        runtime.metrics().num_alive_tasks(),
        0,
        "the background task ended"
    );
}

// ---- recovery, retain, configuration -----------------------------------------------------

#[tokio::test(start_paused = true)]
async fn signal_recovery_evicts_idle_connections_and_retires_busy_ones() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .build_lazy()
        .unwrap();
    let mut held = hold_n(&pool, 3).await;
    let busy = held.pop().unwrap();
    drop(held);

    pool.signal_recovery();
    assert_eq!(
        pool.status().idle,
        0,
        "idle connections to the old server are gone"
    );
    assert_eq!(closes(&pool, CloseReason::Retired), 2);
    drop(busy);
    assert_eq!(
        closes(&pool, CloseReason::Retired),
        3,
        "a busy one is closed when it comes back"
    );

    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 4, "a new connection is opened");
    drop(conn);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn signal_recovery_ends_the_connect_backoff() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .connect_backoff(Duration::from_secs(20))
        .connect_backoff_max(Duration::from_secs(20))
        .acquire_timeout(Duration::from_secs(60))
        .build_lazy()
        .unwrap();
    mock.set(Op::Connect, Behave::Transient);
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    tokio::time::sleep(TICK).await;
    assert_eq!(mock.connects_attempted(), 1, "backing off for 10-20 s");

    mock.set(Op::Connect, Behave::Ok);
    let signalled = Instant::now();
    pool.signal_recovery();
    waiter.await.unwrap().expect("served after recovery");
    assert_eq!(
        signalled.elapsed(),
        Duration::ZERO,
        "the connect was retried at once"
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn retain_closes_the_idle_connections_it_rejects() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(4)
        .build_lazy()
        .unwrap();
    let mut held = hold_n(&pool, 4).await;
    let busy = held.pop().unwrap();
    let rejected = held[1].id;
    drop(held);

    let mut seen = Vec::new();
    pool.retain(|conn, metrics| {
        seen.push(conn.id);
        assert_eq!(metrics.uses, 1);
        conn.id != rejected
    });
    assert_eq!(seen.len(), 3, "only idle connections are looked at");
    assert!(!seen.contains(&busy.id));
    assert_eq!(closes(&pool, CloseReason::Retain), 1);
    assert_eq!(pool.status().idle, 2);

    drop(busy);
    let mut ids: Vec<u64> = hold_n(&pool, 3).await.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    assert!(!ids.contains(&rejected));
    assert_eq!(mock.connects_attempted(), 4, "the kept ones are reused");
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn update_config_applies_at_once_and_rejects_invalid_settings_by_name() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());

    let mut config = pool.config();
    config.acquire_timeout = Some(Duration::from_millis(200));
    config.max_waiters = Some(0);
    pool.update_config(config.clone()).unwrap();
    assert_eq!(pool.config(), config);
    assert!(matches!(
        pool.get().await,
        Err(Error::Rejected { max_waiters: 0 })
    ));

    config.max_waiters = None;
    pool.update_config(config.clone()).unwrap();
    let start = Instant::now();
    assert!(pool.get().await.unwrap_err().is_timeout());
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(200),
        "the new acquire timeout applies"
    );

    let mut invalid = config.clone();
    invalid.min_idle = 2;
    let err = pool.update_config(invalid).unwrap_err();
    assert_eq!(err.field, "min_idle");
    assert!(err.to_string().contains("min_idle"), "{err}");
    let mut invalid = config.clone();
    invalid.connect_timeout = Duration::ZERO;
    assert_eq!(
        pool.update_config(invalid).unwrap_err().field,
        "connect_timeout"
    );
    assert_eq!(
        pool.config(),
        config,
        "a rejected configuration changes nothing"
    );

    drop(conn);
    assert_quiet(&pool, 0).await;
}

// ---- building --------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn build_opens_initial_connections_and_fails_fast_when_it_cannot() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(4)
        .initial_size(3)
        .build()
        .await
        .unwrap();
    assert_eq!(pool.status().idle, 3, "open before build returns");
    assert_quiet(&pool, 0).await;

    let failing = Mock::new();
    failing.script(Op::Connect, [Behave::Ok, Behave::Transient, Behave::Ok]);
    let start = Instant::now();
    let err = Pool::builder(failing.clone())
        .max_size(4)
        .initial_size(3)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, BuildError::Connect(ConnectError::Backend(_))),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "no retries, no backoff");
    assert_eq!(failing.connects_attempted(), 3);
    assert_eq!(
        failing.live(),
        0,
        "the connections that did open were closed"
    );

    let hanging = Mock::new();
    hanging.set(Op::Connect, Behave::Hang);
    let err = Pool::builder(hanging)
        .initial_size(1)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, BuildError::Connect(ConnectError::Timeout(_))),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn build_lazy_never_fails_to_connect_and_opens_initial_connections_in_the_background() {
    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Transient);
    let pool = Pool::builder(mock.clone())
        .max_size(4)
        .initial_size(3)
        .connect_backoff(Duration::from_millis(100))
        .connect_backoff_max(Duration::from_millis(500))
        .build_lazy()
        .expect("a lazy build does not connect");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.status().size, 0);
    assert!(
        mock.connects_attempted() > 3,
        "it keeps trying in the background"
    );

    mock.set(Op::Connect, Behave::Ok);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.status().idle, 3);
    assert_eq!(assert_quiet(&pool, 0).await.size, 3);
}

#[test]
fn build_lazy_works_outside_a_runtime() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .initial_size(1)
        .build_lazy()
        .unwrap();
    assert_eq!(
        pool.status().size,
        0,
        "nothing can be opened without a runtime"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        drop(hold(pool.get().await.unwrap()));
        assert_quiet(&pool, 0).await;
    });
}

/// A connection returned with session state left behind (an open transaction, say) is reset in
/// the background within a maintenance interval, not only at its next checkout, so it does
/// not hold server-side locks while it sits idle.
#[tokio::test(start_paused = true)]
async fn a_returned_connection_is_reset_while_it_sits_idle() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .maintenance_interval(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    pool.get().await.unwrap().dirty = true;
    assert_eq!(mock.resets(), 0);

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(mock.resets(), 1, "reset without waiting for a checkout");
    let conn = pool.get().await.unwrap();
    assert!(!conn.dirty);
    assert_eq!(mock.resets(), 1, "not reset a second time at checkout");
    drop(conn);
}

/// Connections returned inside open transactions with nobody waiting are all rolled back about
/// one round trip after they sit idle, concurrently, not one per round trip by the background
/// task at its next round.
#[tokio::test(start_paused = true)]
async fn connections_returned_dirty_are_reset_together_soon_after_their_return() {
    const N: usize = 20;
    const ROUND_TRIP: Duration = Duration::from_millis(20);
    let mock = Mock::new();
    mock.track_state(true);
    mock.set(Op::Reset, Behave::Slow(ROUND_TRIP));
    let pool = Pool::builder(mock.clone())
        .max_size(N)
        .maintenance_interval(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    let mut held = hold_n(&pool, N).await;
    for conn in &mut held {
        conn.dirty = true; // a transaction left open
    }
    let returned = Instant::now();
    drop(held);
    assert_eq!(mock.resets(), 0, "nothing is reset in the caller's drop");

    while mock.resets() < N || pool.status().idle < N {
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(
            returned.elapsed() < Duration::from_millis(100),
            "{} of {N} reset after {:?}",
            mock.resets(),
            returned.elapsed()
        );
    }
    assert_eq!(mock.resets(), N);
    for conn in hold_n(&pool, N).await {
        assert!(!conn.dirty, "connection {} still dirty", conn.id);
    }
    assert_eq!(mock.resets(), N, "not reset again at checkout");
    assert_quiet(&pool, 0).await;
}

/// Connections opened together with a short lifetime are not all retired in the same moment:
/// retirement is spread, so a nearly idle pool never loses more than a small share at once and
/// never empties before refilling.
#[tokio::test(start_paused = true)]
async fn connections_opened_together_do_not_expire_together() {
    const N: usize = 50;
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(N)
        .min_idle(N)
        .max_lifetime(Duration::from_secs(2))
        .maintenance_interval(TICK)
        .build_lazy()
        .unwrap();
    drop(hold_n(&pool, N).await);
    let start = Instant::now();
    let mut last = 0;
    let mut most_at_once = 0;
    let mut smallest = N;
    while start.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let expired = closes(&pool, CloseReason::Expired);
        most_at_once = most_at_once.max(expired - last);
        last = expired;
        smallest = smallest.min(pool.status().size);
    }
    assert!(
        last >= N as u64,
        "every connection of the first generation expired ({last})"
    );
    assert!(
        most_at_once <= (N / 10) as u64,
        "{most_at_once} of {N} retired within 10 ms"
    );
    assert!(
        smallest >= N - N / 5,
        "the pool shrank to {smallest} of {N}"
    );
    assert_quiet(&pool, 0).await;
}

/// A pool used from a second runtime after the first shut down (a `static` shared by tests, say)
/// restarts its background task and its clock there, even if no acquire ever queues: lifetimes
/// are still enforced.
#[test]
fn a_pool_moved_to_a_new_runtime_keeps_its_clock_and_upkeep() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .max_lifetime(Duration::from_millis(200))
        .maintenance_interval(Duration::from_millis(20))
        .build_lazy()
        .unwrap();
    let first = runtime().block_on(async {
        // Runs the background task and leaves the cached clock fresh when the runtime goes.
        let id = pool.get().await.unwrap().id;
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(pool.get().await.unwrap());
        id
    });
    let expired = runtime().block_on(async {
        let start = std::time::Instant::now();
        // One connection, taken and returned in turn: no acquire ever queues.
        while start.elapsed() < Duration::from_millis(600) {
            drop(pool.get().await.unwrap());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let id = pool.get().await.unwrap().id;
        (id, closes(&pool, CloseReason::Expired))
    });
    assert_ne!(
        expired.0, first,
        "the first connection outlived its lifetime"
    );
    assert!(expired.1 >= 1, "nothing expired on the second runtime");
}

/// `add` takes a connection made elsewhere within `max_size` and hands refused ones back with
/// the reason; `dedicated_connection` opens one the pool does not count.
#[tokio::test(start_paused = true)]
async fn add_and_dedicated_connections() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .build_lazy()
        .unwrap();
    let own = pool.dedicated_connection().await.unwrap();
    assert_eq!(
        pool.status().size,
        0,
        "a dedicated connection is not counted"
    );
    assert_eq!(mock.live(), 1);
    pool.add(own).unwrap();
    assert_eq!(pool.status().idle, 1);

    let held = hold_n(&pool, 2).await;
    let extra = pool.dedicated_connection().await.unwrap();
    let refused = pool.add(extra).unwrap_err();
    assert_eq!(refused.refusal(), AddRefusal::Full);
    let mut broken = refused.into_connection();
    drop(held);
    broken.broken = true;
    assert_eq!(pool.add(broken).unwrap_err().refusal(), AddRefusal::Broken);
    assert_eq!(pool.stats().connections_added, 1);
    assert_quiet(&pool, 0).await;

    pool.close();
    let late = pool.dedicated_connection().await.unwrap();
    assert_eq!(pool.add(late).unwrap_err().refusal(), AddRefusal::Closed);
}

/// `resize(0)` drains a pool without closing it: idle connections close now, busy ones on
/// return, no connect starts, and acquires wait until it grows again. A closed pool refuses to
/// be resized rather than report a size that does not apply.
#[tokio::test(start_paused = true)]
async fn resize_to_zero_drains_and_a_closed_pool_is_not_resized() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .build_lazy()
        .unwrap();
    let mut held = hold_n(&pool, 3).await;
    let busy = held.pop().unwrap();
    drop(held);
    pool.resize(0).unwrap();
    assert_eq!(pool.status().size, 1, "idle connections closed at once");
    drop(busy);
    assert_eq!(pool.status().size, 0, "a busy one closed on return");
    let attempts = mock.connects_attempted();
    let waiting = pool.get_timeout(Duration::from_millis(200)).await;
    assert!(waiting.unwrap_err().is_timeout());
    assert_eq!(
        mock.connects_attempted(),
        attempts,
        "no connect while drained"
    );

    let later = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.id) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    pool.resize(2).unwrap();
    later.await.unwrap().expect("served once the pool grows");
    assert_quiet(&pool, 0).await;

    let mut min_idle = pool.config();
    min_idle.min_idle = 1;
    pool.update_config(min_idle).unwrap();
    assert_eq!(pool.resize(0).unwrap_err().field, "min_idle");

    pool.close();
    let error = pool.resize(5).unwrap_err();
    assert_eq!(error.field, "pool");
    assert_eq!(pool.config().max_size, 2, "a closed pool keeps its size");
}
