//! Prometheus text exposition (feature `prometheus`): the metric families are built from the
//! snapshots and written by the `prometheus` crate's text encoder.
//!
//! The OpenTelemetry names become Prometheus names the usual way (dots to underscores, the
//! unit as a suffix, `_total` on counters): `db_client_connection_count`,
//! `db_client_connection_wait_time_seconds`, `db_client_connection_timeouts_total`, ...,
//! labelled `db_client_connection_pool_name`. The figures OpenTelemetry has no name for are
//! under `db_client_pool_`.

use std::time::Duration;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use super::Snapshot;
use crate::health::Health;
use crate::stats::{CloseReason, WaitHistogram};

/// The upper bounds of the histogram buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const POOL: &str = "db_client_connection_pool_name";

/// The snapshots in the Prometheus text exposition format, one series per pool in each
/// family.
///
/// # Errors
///
/// The encoder's error, which well-formed families cannot cause; it is passed on rather than
/// hidden behind a panic.
pub fn to_prometheus(snapshots: &[Snapshot]) -> Result<String, prometheus::Error> {
    // The encoder refuses a family without samples, which no snapshots would give.
    let families: Vec<MetricFamily> = families(snapshots)
        .into_iter()
        .filter(|f| !f.get_metric().is_empty())
        .collect();
    let mut out = Vec::new();
    TextEncoder::new().encode(&families, &mut out)?;
    Ok(String::from_utf8(out).expect("the text encoder writes UTF-8"))
}

/// A family of `kind` with one metric per snapshot (or more, from `metrics`).
fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    snapshots: &[Snapshot],
    metrics: impl Fn(&Snapshot) -> Vec<Metric>,
) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(snapshots.iter().flat_map(metrics).collect());
    family
}

fn labels(snapshot: &Snapshot, extra: &[(&str, &str)]) -> Vec<LabelPair> {
    std::iter::once((POOL, snapshot.name.as_str()))
        .chain(extra.iter().copied())
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_owned());
            pair.set_value(value.to_owned());
            pair
        })
        .collect()
}

fn gauge(snapshot: &Snapshot, extra: &[(&str, &str)], value: f64) -> Metric {
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = Metric::default();
    metric.set_label(labels(snapshot, extra));
    metric.set_gauge(gauge);
    metric
}

fn counter(snapshot: &Snapshot, extra: &[(&str, &str)], value: u64) -> Metric {
    let mut counter = Counter::default();
    counter.set_value(value as f64);
    let mut metric = Metric::default();
    metric.set_label(labels(snapshot, extra));
    metric.set_counter(counter);
    metric
}

fn histogram(snapshot: &Snapshot, h: &WaitHistogram) -> Metric {
    let buckets = BUCKETS
        .iter()
        .map(|&bound| {
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(bound);
            bucket.set_cumulative_count(h.count_within(Duration::from_secs_f64(bound)));
            bucket
        })
        .collect();
    let mut histogram = Histogram::default();
    histogram.set_sample_count(h.count());
    histogram.set_sample_sum(h.sum().as_secs_f64());
    histogram.set_bucket(buckets);
    let mut metric = Metric::default();
    metric.set_label(labels(snapshot, &[]));
    metric.set_histogram(histogram);
    metric
}

/// Every family, in a fixed order.
fn families(snapshots: &[Snapshot]) -> Vec<MetricFamily> {
    use MetricType::{COUNTER, GAUGE, HISTOGRAM};
    let one_gauge = |f: fn(&Snapshot) -> f64| move |s: &Snapshot| vec![gauge(s, &[], f(s))];
    let one_counter = |f: fn(&Snapshot) -> u64| move |s: &Snapshot| vec![counter(s, &[], f(s))];
    vec![
        family(
            "db_client_connection_count",
            "Open connections, by state.",
            GAUGE,
            snapshots,
            |s| {
                let state = "db_client_connection_state";
                vec![
                    gauge(s, &[(state, "idle")], s.status.idle as f64),
                    gauge(s, &[(state, "used")], s.status.in_use as f64),
                ]
            },
        ),
        family(
            "db_client_connection_idle_max",
            "Most idle connections allowed.",
            GAUGE,
            snapshots,
            one_gauge(|s| s.status.max_size as f64),
        ),
        family(
            "db_client_connection_idle_min",
            "Idle connections kept open.",
            GAUGE,
            snapshots,
            one_gauge(|s| s.min_idle as f64),
        ),
        family(
            "db_client_connection_max",
            "Most open connections allowed.",
            GAUGE,
            snapshots,
            one_gauge(|s| s.status.max_size as f64),
        ),
        family(
            "db_client_connection_pending_requests",
            "Callers queued for a connection.",
            GAUGE,
            snapshots,
            one_gauge(|s| s.status.waiting as f64),
        ),
        family(
            "db_client_connection_timeouts_total",
            "Acquires that timed out.",
            COUNTER,
            snapshots,
            one_counter(|s| s.stats.acquires_timed_out),
        ),
        family(
            "db_client_connection_create_time_seconds",
            "Time to open a connection.",
            HISTOGRAM,
            snapshots,
            |s| vec![histogram(s, &s.stats.connect_time)],
        ),
        family(
            "db_client_connection_wait_time_seconds",
            "Time to get a connection.",
            HISTOGRAM,
            snapshots,
            |s| vec![histogram(s, &s.stats.wait_time)],
        ),
        family(
            "db_client_connection_use_time_seconds",
            "Time a connection was held.",
            HISTOGRAM,
            snapshots,
            |s| vec![histogram(s, &s.stats.use_time)],
        ),
        family(
            "db_client_pool_connecting",
            "Connects in flight.",
            GAUGE,
            snapshots,
            one_gauge(|s| s.status.connecting as f64),
        ),
        family(
            "db_client_pool_acquires_total",
            "Acquires, by outcome.",
            COUNTER,
            snapshots,
            |s| {
                let st = &s.stats;
                [
                    ("direct", st.acquires_direct),
                    ("waited", st.acquires_waited),
                    ("timed_out", st.acquires_timed_out),
                    ("rejected", st.acquires_rejected),
                    ("cancelled", st.acquires_cancelled),
                ]
                .into_iter()
                .map(|(outcome, n)| counter(s, &[("outcome", outcome)], n))
                .collect()
            },
        ),
        family(
            "db_client_pool_connects_total",
            "Connect attempts, by outcome.",
            COUNTER,
            snapshots,
            |s| {
                vec![
                    counter(s, &[("outcome", "ok")], s.stats.connects_ok),
                    counter(s, &[("outcome", "failed")], s.stats.connects_failed),
                ]
            },
        ),
        family(
            "db_client_pool_closed_total",
            "Connections closed, by reason.",
            COUNTER,
            snapshots,
            |s| {
                CloseReason::ALL
                    .iter()
                    .map(|&r| counter(s, &[("reason", r.as_str())], s.stats.closes.get(r)))
                    .collect()
            },
        ),
        family(
            "db_client_pool_health",
            "1 for the pool's current health, 0 for the others.",
            GAUGE,
            snapshots,
            |s| {
                [Health::Healthy, Health::Degraded, Health::Unavailable]
                    .into_iter()
                    .map(|h| gauge(s, &[("state", h.as_str())], f64::from(s.health == h)))
                    .collect()
            },
        ),
        family(
            "db_client_pool_utilisation_ratio",
            "Time-weighted share of the pool's capacity in use since it was built.",
            GAUGE,
            snapshots,
            one_gauge(|s| s.stats.utilisation()),
        ),
        family(
            "db_client_pool_reuse_ratio",
            "Acquires served per connection opened.",
            GAUGE,
            snapshots,
            one_gauge(|s| s.stats.reuse_rate()),
        ),
        family(
            "db_client_pool_leaks",
            "Connections out longer than the leak threshold now.",
            GAUGE,
            snapshots,
            one_gauge(|s| s.leaks.len() as f64),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::fixture;

    #[test]
    fn golden() {
        let text = to_prometheus(&[fixture::snapshot()]).unwrap();
        assert_eq!(text, include_str!("golden/snapshot.prom"));
    }

    #[test]
    fn no_pools_is_an_empty_exposition() {
        assert_eq!(to_prometheus(&[]).unwrap(), "");
    }

    #[test]
    fn a_real_parser_reads_back_the_figures() {
        let mut other = fixture::snapshot();
        other.name = "reports".to_owned();
        other.status.in_use = 3;
        let text = to_prometheus(&[fixture::snapshot(), other]).unwrap();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let value = |name: &str, pool: &str, extra: Option<(&str, &str)>| {
            let sample = scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == name
                        && s.labels.get(POOL) == Some(pool)
                        && extra.is_none_or(|(k, v)| s.labels.get(k) == Some(v))
                })
                .unwrap_or_else(|| panic!("{name} {pool} {extra:?}"));
            sample.value.clone()
        };
        use prometheus_parse::Value;
        let state = "db_client_connection_state";
        assert_eq!(
            value(
                "db_client_connection_count",
                "orders",
                Some((state, "used"))
            ),
            Value::Gauge(1.0)
        );
        assert_eq!(
            value(
                "db_client_connection_count",
                "reports",
                Some((state, "used"))
            ),
            Value::Gauge(3.0)
        );
        assert_eq!(
            value("db_client_connection_pending_requests", "orders", None),
            Value::Gauge(1.0)
        );
        assert_eq!(
            value("db_client_connection_timeouts_total", "orders", None),
            Value::Counter(1.0)
        );
        let Value::Histogram(buckets) =
            value("db_client_connection_wait_time_seconds", "orders", None)
        else {
            panic!("not a histogram");
        };
        // Three direct (zero), 2 ms and 40 ms.
        let within = |le: f64| buckets.iter().find(|b| b.less_than == le).unwrap().count;
        assert_eq!(within(0.001), 3.0);
        assert_eq!(within(0.0025), 4.0);
        assert_eq!(within(0.05), 5.0);
        assert_eq!(
            value(
                "db_client_pool_closed_total",
                "orders",
                Some(("reason", "expired"))
            ),
            Value::Counter(1.0)
        );
    }
}
