//! The pool's clock: nanoseconds since the pool was built, read cheaply on the hot path.
//!
//! Reading the system clock costs tens of nanoseconds, as much as the rest of an acquire and
//! release together, and the pool's time-based decisions (lifetime, idle timeout, the skip
//! window of the checkout check, leaks) need far less precision than that. So the hot path
//! reads a cached value, and the background task marks that value stale every
//! [`RESOLUTION`]; the first reader after that reads the real clock and caches it again. While
//! the pool is idle the background task stops marking and the first reader wakes it; if the
//! task is gone (its runtime shut down), the cache is dropped and the first reader starts the
//! task again on its own runtime. The cached value is therefore never more than about
//! [`RESOLUTION`] behind the real clock, and slow paths read the real clock anyway.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How far behind the real clock the cached reading may fall.
pub(crate) const RESOLUTION: Duration = Duration::from_millis(10);

/// Nanoseconds since the pool was built.
pub(crate) type Nanos = u64;

/// A duration in the clock's unit, saturating.
pub(crate) fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) struct Clock {
    epoch: Instant,
    cached: AtomicU64,
    fresh: AtomicBool,
    /// Whether the background task is marking the cache stale every `RESOLUTION`.
    ticking: AtomicBool,
    /// Seconds since the Unix epoch at `epoch` (wall time), for the hour of day of a reading.
    epoch_unix_secs: u64,
    /// The hour of the day (UTC) of the last real reading: the hot path counts acquires by hour
    /// without dividing a reading into hours each time.
    hour: AtomicU8,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            epoch: Instant::now(),
            cached: AtomicU64::new(0),
            fresh: AtomicBool::new(false),
            ticking: AtomicBool::new(false),
            epoch_unix_secs: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            hour: AtomicU8::new(0),
        }
    }

    /// The cached time, if it is fresh (marked stale less than `RESOLUTION` ago).
    #[inline]
    pub(crate) fn cached(&self) -> Option<Nanos> {
        self.fresh
            .load(Ordering::Relaxed)
            .then(|| self.cached.load(Ordering::Relaxed))
    }

    /// Reads the real clock into the cache. Returns the time and whether the background task
    /// must be woken (or started) to mark the cache stale again: nobody was doing that.
    #[cold]
    pub(crate) fn refresh(&self) -> (Nanos, bool) {
        let now = self.precise();
        self.fresh.store(true, Ordering::SeqCst);
        (now, !self.ticking.swap(true, Ordering::SeqCst))
    }

    /// Stops trusting the cache: the background task that marks it stale is gone (its runtime
    /// shut down, or it could not be started), so the next reader reads the real clock and
    /// starts ticking again.
    pub(crate) fn stop(&self) {
        self.ticking.store(false, Ordering::SeqCst);
        self.fresh.store(false, Ordering::SeqCst);
    }

    /// The real time; also refreshes the cached reading.
    pub(crate) fn precise(&self) -> Nanos {
        let now = nanos(self.epoch.elapsed());
        // Readings from several threads may land out of order; the cache only moves forward.
        self.cached.fetch_max(now, Ordering::Relaxed);
        self.hour.store(self.hour_of_day(now), Ordering::Relaxed);
        now
    }

    /// Marks the cached reading stale. Returns whether to do it again after `RESOLUTION`:
    /// no, when nobody read the clock since the last time.
    pub(crate) fn tick(&self) -> bool {
        if self.fresh.swap(false, Ordering::SeqCst) {
            return true;
        }
        self.ticking.store(false, Ordering::SeqCst);
        // A reader that refreshed between the two lines above saw `ticking` still set and did
        // not wake us: keep ticking for it.
        if self.fresh.load(Ordering::SeqCst) {
            self.ticking.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// The hour of the day (UTC, `0..24`) a reading falls in. Follows the monotonic clock
    /// from the wall time at the pool's start, so a wall clock set later is not seen.
    fn hour_of_day(&self, at: Nanos) -> u8 {
        ((self.epoch_unix_secs + at / 1_000_000_000) / 3600 % 24) as u8
    }

    /// The hour of the day (UTC, `0..24`) of the last real reading, at most about
    /// `RESOLUTION` old while the pool is busy.
    #[inline]
    pub(crate) fn hour(&self) -> usize {
        usize::from(self.hour.load(Ordering::Relaxed))
    }

    /// How long since the pool was built.
    pub(crate) fn uptime(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The moment a reading stands for.
    pub(crate) fn instant(&self, at: Nanos) -> Instant {
        self.epoch + Duration::from_nanos(at)
    }
}
