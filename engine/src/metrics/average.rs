//! `avg_over_time` and `sum_over_time` cells (`pkg/traceql/engine_metrics_average.go`).
//!
//! A cell keeps an exact sum and a count, so partials merge without loss and the answer does
//! not depend on how many shards saw the spans: integers (and durations, in nanoseconds) are
//! summed exactly, floats with Kahan-Neumaier compensation as Tempo sums them.
//!
//! Tempo grows a mean incrementally (`addIncrementMean`), which gives back a value exactly
//! when all values are equal (ten 0.1s spans average to 0.1s, where `1.0 / 10` would not); a
//! cell whose values are all equal reports that value for the same answer. Tempo's frontend
//! merge (`addWeigthedMean`) never adds the incoming weight to the running one, so its
//! averages of more than two jobs are skewed; these are not.

/// A Kahan-Neumaier sum: the value is `sum + compensation`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Kahan {
    sum: f64,
    compensation: f64,
}

impl Kahan {
    const ZERO: Kahan = Kahan {
        sum: 0.0,
        compensation: 0.0,
    };

    pub fn value(&self) -> f64 {
        self.sum + self.compensation
    }

    /// Tempo's `averageValue.add`: infinities stay as they are, otherwise `kahanSumInc`.
    pub fn add(&mut self, inc: f64) {
        if self.sum.is_infinite() {
            if inc.is_infinite() && (self.sum > 0.0) == (inc > 0.0) {
                return;
            }
            if !inc.is_infinite() && !inc.is_nan() {
                return;
            }
        }
        let t = self.sum + inc;
        if t.is_infinite() {
            self.compensation = 0.0;
        } else if self.sum.abs() >= inc.abs() {
            self.compensation += (self.sum - t) + inc;
        } else {
            self.compensation += (inc - t) + self.sum;
        }
        self.sum = t;
    }
}

/// A value as read from a span: integers (and durations in nanoseconds) or floats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub fn to_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// The sum and count of the values of one interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Total {
    ints: i128,
    floats: Kahan,
    count: u64,
    /// The first value, and whether every value since was equal to it.
    first: Num,
    uniform: bool,
}

impl Total {
    pub fn new(first: Num) -> Total {
        let mut t = Total {
            ints: 0,
            floats: Kahan::ZERO,
            count: 0,
            first,
            uniform: true,
        };
        t.add(first);
        t
    }

    pub fn add(&mut self, v: Num) {
        match v {
            Num::Int(i) => self.ints = self.ints.saturating_add(i),
            Num::Float(f) => self.floats.add(f),
        }
        self.count += 1;
        self.uniform &= v == self.first;
    }

    pub fn merge(&mut self, other: &Total) {
        self.ints = self.ints.saturating_add(other.ints);
        self.floats.add(other.floats.value());
        self.count += other.count;
        self.uniform &= other.uniform && other.first == self.first;
    }

    /// The sum, divided by `scale` (1e9 turns nanoseconds into seconds).
    pub fn sum(&self, scale: f64) -> f64 {
        (self.ints as f64 + self.floats.value()) / scale
    }

    /// The mean, divided by `scale`.
    pub fn mean(&self, scale: f64) -> f64 {
        if self.uniform {
            return self.first.to_f64() / scale;
        }
        (self.ints as f64 + self.floats.value()) / self.count as f64 / scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total_of(values: &[Num]) -> Total {
        let mut t = Total::new(values[0]);
        for &v in &values[1..] {
            t.add(v);
        }
        t
    }

    #[test]
    fn means() {
        let f = Num::Float;
        let i = Num::Int;
        assert_eq!(total_of(&[f(0.1); 10]).mean(1.0), 0.1);
        assert_eq!(total_of(&[i(100_000_000); 3]).mean(1e9), 0.1);
        assert_eq!(total_of(&[i(200), i(404), i(200)]).mean(1.0), 268.0);
        // Tempo's TestObserveSeriesAverageOverTimeForSpanAttribute: 260 = mean of
        // (200, 300, 400) and (100, 300).
        let mut a = total_of(&[i(200), i(300), i(400)]);
        a.merge(&total_of(&[i(100), i(300)]));
        assert_eq!(a.mean(1.0), 260.0);
        // Weights add up: a third part weighs by its own count.
        let mut b = total_of(&[i(1)]);
        b.merge(&total_of(&[i(2)]));
        b.merge(&total_of(&[i(3), i(3)]));
        assert_eq!(b.mean(1.0), 2.25);
        // Equal values merged stay exact.
        let mut c = total_of(&[f(0.1); 3]);
        c.merge(&total_of(&[f(0.1); 4]));
        assert_eq!(c.mean(1.0), 0.1);
        // Mixed integers and floats, and infinities as Tempo keeps them.
        assert_eq!(total_of(&[i(1), f(0.5)]).mean(1.0), 0.75);
        assert_eq!(
            total_of(&[f(f64::INFINITY), f(1.0)]).mean(1.0),
            f64::INFINITY
        );
    }

    #[test]
    fn sums() {
        let t = total_of(&[Num::Float(0.1); 10]);
        assert_eq!(t.sum(1.0), 1.0);
        let t = total_of(&[Num::Int(i128::from(i64::MAX)); 4]);
        assert_eq!(t.sum(1.0), 4.0 * i64::MAX as f64);
    }
}
