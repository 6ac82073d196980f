//! A small seedable PRNG: xoshiro256++ seeded through SplitMix64.
//!
//! Not cryptographic. Fast enough that drawing the IDs of a 100-span request costs well under a
//! microsecond, and deterministic for a given seed so generated shapes are reproducible.

/// xoshiro256++ (Blackman and Vigna), seeded with SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// SplitMix64 step: used to expand a 64-bit seed and to derive per-worker seeds.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut state = seed;
        let s = [
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
        ];
        // SplitMix64 never yields four zero words in a row, so the state is never all-zero.
        assert!(s.iter().any(|&w| w != 0));
        Rng { s }
    }

    /// A child generator for stream `index` of this seed (per worker, per template).
    pub fn derive(seed: u64, index: u64) -> Rng {
        let mut state = seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng::new(splitmix64(&mut state))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3]))
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)`; `n` must be positive.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        // Lemire's multiply-shift; the bias is below 2^-64 * n, irrelevant here.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform index into a non-empty slice length.
    #[inline]
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Uniform in `[low, high]`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high);
        low + self.below(high - low + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Standard normal through Box-Muller.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Log-normal with the given median and shape `sigma`: long-tailed, like real latencies.
    pub fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// A count with the given non-negative mean: `floor(mean)` plus one with probability
    /// `fract(mean)`. Keeps the average exact without a Poisson sampler.
    pub fn count_with_mean(&mut self, mean: f64) -> usize {
        assert!(mean >= 0.0);
        let whole = mean.floor();
        whole as usize + usize::from(self.chance(mean - whole))
    }

    /// A non-zero 16-byte trace ID.
    #[inline]
    pub fn trace_id(&mut self) -> [u8; 16] {
        let hi = self.next_u64();
        let lo = self.next_u64() | 1;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&hi.to_be_bytes());
        id[8..].copy_from_slice(&lo.to_be_bytes());
        id
    }

    /// A non-zero 8-byte span ID.
    #[inline]
    pub fn span_id(&mut self) -> [u8; 8] {
        (self.next_u64() | 1).to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert_ne!(Rng::derive(1, 0).next_u64(), Rng::derive(1, 1).next_u64());
    }

    #[test]
    fn ranges_hold() {
        let mut rng = Rng::new(7);
        for _ in 0..10_000 {
            let f = rng.f64();
            assert!((0.0..1.0).contains(&f));
            assert!(rng.below(3) < 3);
            let r = rng.range(5, 9);
            assert!((5..=9).contains(&r));
            assert!(rng.log_normal(10.0, 1.0) > 0.0);
        }
    }

    #[test]
    fn count_with_mean_is_exact_on_average() {
        let mut rng = Rng::new(9);
        let n = 200_000;
        let total: usize = (0..n).map(|_| rng.count_with_mean(0.3)).sum();
        let mean = total as f64 / n as f64;
        assert!((mean - 0.3).abs() < 0.01, "mean {mean}");
        assert_eq!(rng.count_with_mean(2.0), 2);
    }
}
