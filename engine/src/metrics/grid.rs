//! Tempo's step arithmetic (`alignStart`, `alignEnd`, `IntervalCount`, `IntervalOf`,
//! `IntervalOfMs`, `TimestampOf` in `pkg/traceql/engine_metrics.go`), with checked arithmetic
//! where Go would wrap.
//!
//! A range `[start, end)` with step `s` has `(alignEnd(end) - alignStart(start)) / s + 1`
//! intervals: one more than the steps it spans, so an aligned range query always ends in an
//! interval stamped `end` that no span (they start before `end`) falls into. Tempo answers
//! that interval too (a zero for counts), and so does this module.
//!
//! An instant query (`end - start == step`) is not aligned, and its grid starts at `start`:
//! two intervals, the first holding all of `[start, end)`. Tempo 2.7.2 lays the step grid
//! from `alignStart(start)` here too, which for a start that is not a multiple of the step
//! splits the range across two intervals; its instant answer (the first sample) then misses
//! the second part. For an aligned start both grids are the same.

/// Rounds `start` down to a multiple of `step` (`alignStart`).
pub(super) fn align_start(start: u64, step: u64) -> u64 {
    if step == 0 {
        return 0;
    }
    start - start % step
}

/// Rounds `end` up to a multiple of `step` (`alignEnd`); `None` when that overflows.
pub(super) fn align_end(end: u64, step: u64) -> Option<u64> {
    if step == 0 {
        return Some(0);
    }
    match end % step {
        0 => Some(end),
        m => end.checked_add(step - m),
    }
}

pub(super) const NS_PER_MS: u64 = 1_000_000;

/// The intervals of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Grid {
    start: u64,
    end: u64,
    pub step: u64,
    instant: bool,
    /// The start of interval 0.
    origin: u64,
    /// The start of the last interval.
    last: u64,
    /// `IntervalCount`; 0 when the arithmetic overflows (`MetricsRequest::new` refuses such
    /// a request).
    pub intervals: usize,
}

impl Grid {
    pub fn new(start: u64, end: u64, step: u64) -> Grid {
        let instant = end.wrapping_sub(start) == step;
        let (origin, last) = if instant {
            (start, Some(end))
        } else {
            (align_start(start, step), align_end(end, step))
        };
        let intervals = match last {
            // `IntervalOf` accepts up to one step past the last interval: that must not
            // overflow either.
            Some(last) if step > 0 && last >= origin && last.checked_add(step).is_some() => {
                usize::try_from((last - origin) / step)
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .unwrap_or(0)
            }
            _ => 0,
        };
        Grid {
            start,
            end,
            step,
            instant,
            origin,
            last: last.unwrap_or(0),
            intervals,
        }
    }

    /// `IntervalOf(ts, start, end, step)`; also `None` past the last interval (Tempo indexes
    /// its buffers with it and relies on the caller's time check instead).
    pub fn interval_of(&self, ts: u64) -> Option<usize> {
        if self.intervals == 0 || ts < self.origin || ts > self.last + self.step {
            return None;
        }
        let i = usize::try_from((ts - self.origin) / self.step).ok()?;
        (i < self.intervals).then_some(i)
    }

    /// `IntervalOfMs(ts_ms, start, end, step)`: the interval of a millisecond timestamp, the
    /// range's bounds truncated to milliseconds first; also `None` past the last interval
    /// (Tempo's `bucketSet.inRange`).
    pub fn interval_of_ms(&self, ts_ms: i64) -> Option<usize> {
        if self.intervals == 0 {
            return None;
        }
        let ts = u64::try_from(ts_ms).ok()?.checked_mul(NS_PER_MS)?;
        let start = self.start - self.start % NS_PER_MS;
        let end = self.end - self.end % NS_PER_MS;
        let (origin, last) = if self.instant {
            (start, end)
        } else {
            (align_start(start, self.step), align_end(end, self.step)?)
        };
        let bound = last.checked_add(self.step)?;
        if ts < origin || ts > bound || bound == origin {
            return None;
        }
        let i = usize::try_from((ts - origin) / self.step).ok()?;
        (i < self.intervals).then_some(i)
    }

    /// `TimestampOf(i)` in Unix milliseconds, as `ToProto` stamps samples.
    pub fn timestamp_ms(&self, i: usize) -> Option<i64> {
        let offset = u64::try_from(i).ok()?.checked_mul(self.step)?;
        let ts = self.origin.checked_add(offset)?;
        i64::try_from(ts / NS_PER_MS).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tempo's `TestStepRangeToIntervals`, `TestTimestampOf` and `TestIntervalOf` (in
    /// milliseconds; Tempo's `start = 0` is "missing" for a request).
    #[test]
    fn tempo_cases() {
        let ms = NS_PER_MS;
        assert_eq!(Grid::new(ms, 2 * ms, ms).intervals, 2);
        assert_eq!(Grid::new(0, 10 * ms, 3 * ms).intervals, 5);
        assert_eq!(Grid::new(0, 10 * ms, 0).intervals, 0);
        assert_eq!(Grid::new(0, 0, 0).interval_of(0), None);
        let g = Grid::new(0, 10 * ms, ms);
        assert_eq!(g.interval_of(10 * ms), Some(10));
        assert_eq!(g.interval_of(11 * ms), None);
        assert_eq!(g.interval_of_ms(10), Some(10));
        // TimestampOf(2, 10, 3) = 15: start 10 aligned to 9, then 9, 12, 15.
        let g = Grid::new(10 * ms, 20 * ms, 3 * ms);
        assert_eq!(g.timestamp_ms(2), Some(15));
        assert_eq!(g.interval_of_ms(15), Some(2));
        assert_eq!(g.interval_of_ms(8), None);
        assert_eq!(align_end(u64::MAX, 2), None);
        assert_eq!(Grid::new(1, u64::MAX, 2).intervals, 0);
        assert_eq!(Grid::new(1, u64::MAX - 1, 2).intervals, 0);
    }

    #[test]
    fn instant_grid_starts_at_start() {
        let ms = NS_PER_MS;
        let g = Grid::new(30 * ms, 90 * ms, 60 * ms);
        assert_eq!(g.intervals, 2);
        assert_eq!(g.interval_of(30 * ms), Some(0));
        assert_eq!(g.interval_of(89 * ms), Some(0));
        assert_eq!(g.timestamp_ms(0), Some(30));
        assert_eq!(g.timestamp_ms(1), Some(90));
        assert_eq!(g.interval_of_ms(89), Some(0));
        // Aligned: the same grid as Tempo's.
        let g = Grid::new(60 * ms, 120 * ms, 60 * ms);
        assert_eq!((g.intervals, g.timestamp_ms(0)), (2, Some(60)));
    }
}
