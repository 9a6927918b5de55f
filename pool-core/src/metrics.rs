//! Recording the pool's figures through the [`metrics`](https://docs.rs/metrics) facade, under
//! the names of the OpenTelemetry semantic conventions for database clients
//! (`db.client.connection.*`), with the feature `metrics`. The library links only the facade;
//! the application installs the recorder (a Prometheus exporter, an OpenTelemetry bridge...).
//!
//! | name | kind | what |
//! | --- | --- | --- |
//! | `db.client.connection.count` | gauge | open connections, by `db.client.connection.state` (`idle` or `used`) |
//! | `db.client.connection.idle.max` | gauge | most idle connections allowed (`max_size`) |
//! | `db.client.connection.idle.min` | gauge | idle connections kept open (`min_idle`) |
//! | `db.client.connection.max` | gauge | most open connections allowed (`max_size`) |
//! | `db.client.connection.pending_requests` | gauge | callers queued for a connection |
//! | `db.client.connection.timeouts` | counter | acquires that timed out |
//! | `db.client.connection.create_time` | histogram (s) | how long successful connects took |
//! | `db.client.connection.wait_time` | histogram (s) | how long acquires waited (zero when served at once) |
//! | `db.client.connection.use_time` | histogram (s) | how long connections were held |
//!
//! Every one is labelled `db.client.connection.pool.name` with
//! [`Config::name`](crate::Config::name). The handles are registered with the recorder
//! installed when the pool is built, so install it first. Gauges are brought up to date on
//! every checkout, return, connect and queue change (not when the background task closes idle
//! connections: the next of those events catches up).

#[cfg(feature = "metrics")]
pub(crate) use enabled::Recorder;

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::Recorder;

/// The names recorded, as constants for code that reads them back.
pub mod names {
    /// Open connections, by state.
    pub const COUNT: &str = "db.client.connection.count";
    /// The label of [`COUNT`]: `idle` or `used`.
    pub const STATE: &str = "db.client.connection.state";
    /// Most idle connections allowed.
    pub const IDLE_MAX: &str = "db.client.connection.idle.max";
    /// Idle connections kept open.
    pub const IDLE_MIN: &str = "db.client.connection.idle.min";
    /// Most open connections allowed.
    pub const MAX: &str = "db.client.connection.max";
    /// Callers queued for a connection.
    pub const PENDING_REQUESTS: &str = "db.client.connection.pending_requests";
    /// Acquires that timed out.
    pub const TIMEOUTS: &str = "db.client.connection.timeouts";
    /// Connect durations, in seconds.
    pub const CREATE_TIME: &str = "db.client.connection.create_time";
    /// Acquire waits, in seconds.
    pub const WAIT_TIME: &str = "db.client.connection.wait_time";
    /// How long connections were held, in seconds.
    pub const USE_TIME: &str = "db.client.connection.use_time";
    /// The label every metric carries: the pool's name.
    pub const POOL_NAME: &str = "db.client.connection.pool.name";
}

#[cfg(feature = "metrics")]
mod enabled {
    use std::time::Duration;

    use ::metrics::{Counter, Gauge, Histogram, Unit};

    use super::names::*;
    use crate::config::Config;
    use crate::manager::Manager;
    use crate::shared::State;

    /// The pool's registered metric handles.
    pub(crate) struct Recorder {
        idle: Gauge,
        used: Gauge,
        idle_max: Gauge,
        idle_min: Gauge,
        max: Gauge,
        pending: Gauge,
        timeouts: Counter,
        create_time: Histogram,
        wait_time: Histogram,
        use_time: Histogram,
    }

    impl Recorder {
        /// Registers the handles of a pool configured by `config` with the recorder installed
        /// now.
        pub(crate) fn new(config: &Config) -> Self {
            let name = config.pool_name().to_owned();
            describe();
            Recorder {
                idle: ::metrics::gauge!(COUNT, POOL_NAME => name.clone(), STATE => "idle"),
                used: ::metrics::gauge!(COUNT, POOL_NAME => name.clone(), STATE => "used"),
                idle_max: ::metrics::gauge!(IDLE_MAX, POOL_NAME => name.clone()),
                idle_min: ::metrics::gauge!(IDLE_MIN, POOL_NAME => name.clone()),
                max: ::metrics::gauge!(MAX, POOL_NAME => name.clone()),
                pending: ::metrics::gauge!(PENDING_REQUESTS, POOL_NAME => name.clone()),
                timeouts: ::metrics::counter!(TIMEOUTS, POOL_NAME => name.clone()),
                create_time: ::metrics::histogram!(CREATE_TIME, POOL_NAME => name.clone()),
                wait_time: ::metrics::histogram!(WAIT_TIME, POOL_NAME => name.clone()),
                use_time: ::metrics::histogram!(USE_TIME, POOL_NAME => name),
            }
        }

        /// Brings the gauges up to date with `st`.
        pub(crate) fn publish<M: Manager>(&self, st: &State<M>) {
            let max = st.config.max_size as f64;
            self.idle.set(st.ledger.idle() as f64);
            self.used.set(st.ledger.in_use() as f64);
            self.idle_max.set(max);
            self.idle_min.set(st.config.min_idle as f64);
            self.max.set(max);
            self.pending.set(st.queue.len() as f64);
        }

        /// An acquire was served after waiting `waited`.
        pub(crate) fn waited(&self, waited: Duration) {
            self.wait_time.record(waited.as_secs_f64());
        }

        /// A connection came back after `held` nanoseconds.
        pub(crate) fn used(&self, held: u64) {
            self.use_time.record(held as f64 / 1e9);
        }

        /// A connect succeeded after `took`.
        pub(crate) fn created(&self, took: Duration) {
            self.create_time.record(took.as_secs_f64());
        }

        /// An acquire timed out.
        pub(crate) fn timed_out(&self) {
            self.timeouts.increment(1);
        }
    }

    /// Describes the metrics to the installed recorder (units and help texts).
    fn describe() {
        ::metrics::describe_gauge!(COUNT, Unit::Count, "Open connections, by state.");
        ::metrics::describe_gauge!(IDLE_MAX, Unit::Count, "Most idle connections allowed.");
        ::metrics::describe_gauge!(IDLE_MIN, Unit::Count, "Idle connections kept open.");
        ::metrics::describe_gauge!(MAX, Unit::Count, "Most open connections allowed.");
        ::metrics::describe_gauge!(
            PENDING_REQUESTS,
            Unit::Count,
            "Callers queued for a connection."
        );
        ::metrics::describe_counter!(TIMEOUTS, Unit::Count, "Acquires that timed out.");
        ::metrics::describe_histogram!(CREATE_TIME, Unit::Seconds, "Time to open a connection.");
        ::metrics::describe_histogram!(WAIT_TIME, Unit::Seconds, "Time to get a connection.");
        ::metrics::describe_histogram!(USE_TIME, Unit::Seconds, "Time a connection was held.");
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    use std::time::Duration;

    use crate::config::Config;
    use crate::manager::Manager;
    use crate::shared::State;

    /// Nothing is recorded without the `metrics` feature; every call compiles away.
    pub(crate) struct Recorder;

    impl Recorder {
        #[inline(always)]
        pub(crate) fn new(_: &Config) -> Self {
            Recorder
        }

        #[inline(always)]
        pub(crate) fn publish<M: Manager>(&self, _: &State<M>) {}

        #[inline(always)]
        pub(crate) fn waited(&self, _: Duration) {}

        #[inline(always)]
        pub(crate) fn used(&self, _: u64) {}

        #[inline(always)]
        pub(crate) fn created(&self, _: Duration) {}

        #[inline(always)]
        pub(crate) fn timed_out(&self) {}
    }
}
