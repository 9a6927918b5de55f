//! The `metrics` feature: what a real recorder receives after a scripted run matches
//! `status()` and `stats()`, under OpenTelemetry's names and labels.
#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{hold, settle, spawn_get, Behave, Mock, Op};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use pool_core::metrics::names;
use pool_core::Pool;

/// What the recorder holds, by kind, name and labels (sorted `key=value`).
type Recorded = HashMap<(MetricKind, String, Vec<String>), DebugValue>;

fn recorded(
    snapshot: Vec<(
        CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )>,
) -> Recorded {
    snapshot
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            ((kind, key.name().to_owned(), labels), value)
        })
        .collect()
}

fn labels(pool: &str, state: Option<&str>) -> Vec<String> {
    let mut labels = vec![format!("{}={pool}", names::POOL_NAME)];
    if let Some(state) = state {
        labels.push(format!("{}={state}", names::STATE));
    }
    labels.sort();
    labels
}

fn gauge(recorded: &Recorded, name: &str, pool: &str, state: Option<&str>) -> f64 {
    match recorded.get(&(MetricKind::Gauge, name.to_owned(), labels(pool, state))) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("gauge {name} {state:?}: {other:?}"),
    }
}

fn histogram(recorded: &Recorded, name: &str, pool: &str) -> Vec<f64> {
    match recorded.get(&(MetricKind::Histogram, name.to_owned(), labels(pool, None))) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|v| v.into_inner()).collect(),
        other => panic!("histogram {name}: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_recorder_sees_what_stats_and_status_say() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Slow(Duration::from_millis(30)));
    let pool = Pool::builder(mock.clone())
        .name("orders")
        .max_size(2)
        .min_idle(1)
        .build_lazy()
        .unwrap();

    // Two connections held, one caller times out, one waits and is served, one gives up.
    let a = hold(pool.get().await.unwrap());
    let b = hold(pool.get().await.unwrap());
    assert!(pool
        .get_timeout(Duration::from_millis(50))
        .await
        .unwrap_err()
        .is_timeout());
    let queued = spawn_get(&pool);
    let cancelled = spawn_get(&pool);
    settle().await;
    assert_eq!(pool.status().waiting, 2);
    cancelled.abort();
    let _ = cancelled.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(a);
    queued.await.unwrap().unwrap();
    // Still out: counted as used.
    let _b = b;

    let status = pool.status();
    let stats = pool.stats();
    let recorded = recorded(snapshotter.snapshot().into_vec());
    let name = "orders";

    assert_eq!(
        gauge(&recorded, names::COUNT, name, Some("idle")),
        status.idle as f64
    );
    assert_eq!(
        gauge(&recorded, names::COUNT, name, Some("used")),
        status.in_use as f64
    );
    assert_eq!((status.idle, status.in_use), (1, 1));
    assert_eq!(gauge(&recorded, names::MAX, name, None), 2.0);
    assert_eq!(gauge(&recorded, names::IDLE_MAX, name, None), 2.0);
    assert_eq!(gauge(&recorded, names::IDLE_MIN, name, None), 1.0);
    assert_eq!(gauge(&recorded, names::PENDING_REQUESTS, name, None), 0.0);

    let timeouts = recorded.get(&(
        MetricKind::Counter,
        names::TIMEOUTS.to_owned(),
        labels(name, None),
    ));
    assert_eq!(
        timeouts,
        Some(&DebugValue::Counter(stats.acquires_timed_out))
    );
    assert_eq!(stats.acquires_timed_out, 1);

    let waits = histogram(&recorded, names::WAIT_TIME, name);
    assert_eq!(waits.len() as u64, stats.acquires_served());
    assert_eq!(waits.len() as u64, stats.wait_time.count());
    let longest = waits.iter().copied().fold(0.0, f64::max);
    assert!(
        (longest - stats.wait_time.max().as_secs_f64()).abs() < 1e-6,
        "{longest}"
    );

    let uses = histogram(&recorded, names::USE_TIME, name);
    assert_eq!(uses.len() as u64, stats.use_time.count());
    assert_eq!(uses.len(), 2, "`a` and the queued caller's came back");
    let sum: f64 = uses.iter().sum();
    assert!(
        (sum - stats.use_time.sum().as_secs_f64()).abs() < 1e-6,
        "{sum}"
    );

    let creates = histogram(&recorded, names::CREATE_TIME, name);
    assert_eq!(creates.len() as u64, stats.connects_ok);
    assert_eq!(creates.len() as u64, stats.connect_time.count());
    assert!(
        creates.iter().all(|&s| (s - 0.030).abs() < 1e-6),
        "{creates:?}"
    );
    assert_eq!(stats.acquires_cancelled, 1);
}
