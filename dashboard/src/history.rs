//! [`History`]: the last minutes of each pool's counts, for the charts.

use std::collections::VecDeque;

use pool_core::export::Snapshot;
use serde::Serialize;

/// How far back the charts go, in milliseconds.
const KEEP_MS: u64 = 10 * 60 * 1000;
/// Readings closer together than this are not kept apart.
const MIN_GAP_MS: u64 = 500;

/// One reading: when (ms since the Unix epoch), size, idle, in use, waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Point(pub(crate) u64, usize, usize, usize, usize);

impl Point {
    pub(crate) fn of(snapshot: &Snapshot) -> Point {
        let s = &snapshot.status;
        Point(
            snapshot.taken_at_unix_ms,
            s.size,
            s.idle,
            s.in_use,
            s.waiting,
        )
    }
}

/// The readings of one pool, oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    points: VecDeque<Point>,
}

impl History {
    /// Adds `point` (in place of the last one if that is under `MIN_GAP_MS` old) and forgets
    /// readings older than `KEEP_MS`.
    pub(crate) fn record(&mut self, point: Point) {
        if self
            .points
            .back()
            .is_some_and(|last| point.0.saturating_sub(last.0) < MIN_GAP_MS)
        {
            self.points.pop_back();
        }
        self.points.push_back(point);
        while self
            .points
            .front()
            .is_some_and(|first| point.0.saturating_sub(first.0) > KEEP_MS)
        {
            self.points.pop_front();
        }
    }

    pub(crate) fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ten_minutes_at_most_two_readings_a_second() {
        let mut h = History::default();
        for i in 0..2000u64 {
            h.record(Point(i * 400, 1, 1, 0, 0));
        }
        let points: Vec<_> = h.points().collect();
        // Every second reading replaced the one before (400 ms apart), and 10 min is kept.
        let span = points.last().unwrap().0 - points[0].0;
        assert!(span <= KEEP_MS, "{span}");
        assert!(points.windows(2).all(|w| w[1].0 - w[0].0 >= MIN_GAP_MS));
        assert_eq!(
            points.last().unwrap().0,
            1999 * 400,
            "the latest is always kept"
        );
    }
}
