//! Tempo's power-of-two histograms: `Log2Bucketize` and `Log2Quantile`, with Go's `math.Log2`
//! and `math.Pow(2, y)` reproduced step by step (`Frexp`, then `Log`/`Exp` of the fraction)
//! so bucket bounds and interpolated quantiles come out as Tempo's do. Powers of two are
//! exact; an interpolated quantile can differ from Go's in the last bit because `ln`/`exp`
//! come from the platform's libm.

/// Go's `math.Frexp`: `x = frac * 2^exp` with `frac` in `[0.5, 1)`.
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || x.is_nan() || x.is_infinite() {
        return (x, 0);
    }
    let (mut x, mut exp) = (x, 0i32);
    if x.abs() < f64::MIN_POSITIVE {
        x *= (1u64 << 52) as f64;
        exp = -52;
    }
    let bits = x.to_bits();
    exp += ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, exp)
}

/// `2^k` exactly, for the exponents a histogram uses (normal range only).
fn pow2i(k: i32) -> f64 {
    let k = k.clamp(-1022, 1023);
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Go's `math.Log2`: exact for powers of two.
pub(super) fn go_log2(x: f64) -> f64 {
    let (frac, exp) = frexp(x);
    if frac == 0.5 {
        return f64::from(exp - 1);
    }
    frac.ln() * std::f64::consts::LOG2_E + f64::from(exp)
}

/// Go's `math.Pow(2, y)` for finite `y`: `Exp(yf * Log(2))` for the fraction, repeated
/// squaring (here an exact power of two) for the integer part.
pub(super) fn go_pow2(y: f64) -> f64 {
    if !y.is_finite() {
        return 2f64.powf(y);
    }
    if y == 0.0 {
        return 1.0;
    }
    if y == 1.0 {
        return 2.0;
    }
    if y == 0.5 {
        return std::f64::consts::SQRT_2;
    }
    if y == -0.5 {
        return 1.0 / std::f64::consts::SQRT_2;
    }
    let a = y.abs();
    if a >= 2048.0 {
        return if y > 0.0 { f64::INFINITY } else { 0.0 };
    }
    let (mut yi, mut yf) = (a.trunc(), a.fract());
    let mut a1 = 1.0;
    if yf != 0.0 {
        if yf > 0.5 {
            yf -= 1.0;
            yi += 1.0;
        }
        a1 = (yf * std::f64::consts::LN_2).exp();
    }
    let mut ae = yi as i32;
    if y < 0.0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    // Ldexp in two steps so that neither factor leaves the normal range.
    let half = ae / 2;
    a1 * pow2i(half) * pow2i(ae - half)
}

/// `Log2Bucketize`: the power of two at or above `v`; -1 below 2.
pub(super) fn log2_bucketize(v: u64) -> f64 {
    if v < 2 {
        return -1.0;
    }
    let exponent = go_log2(v as f64).ceil();
    pow2i(exponent as i32)
}

/// `Log2Quantile`: the `p` quantile of `buckets` (upper bound, count), ascending by bound,
/// interpolating exponentially inside the bucket where it falls; 0 without samples.
pub(super) fn log2_quantile(p: f64, buckets: &[(f64, u64)]) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) || buckets.is_empty() {
        return 0.0;
    }
    let total_count: u64 = buckets.iter().map(|b| b.1).sum();
    if total_count == 0 {
        return 0.0;
    }
    // At most this many samples (rounded up for small counts), at least one.
    let max_samples = ((p * total_count as f64).ceil() as u64).max(1);
    let mut total = 0u64;
    let mut bucket = 0usize;
    for (i, &(max, count)) in buckets.iter().enumerate() {
        bucket = i;
        if total + count > max_samples {
            break;
        }
        total += count;
        if total == max_samples {
            return max;
        }
    }
    let Some(&(max, count)) = buckets.get(bucket) else {
        return 0.0;
    };
    let interp = max_samples.saturating_sub(total) as f64 / count as f64;
    let max = go_log2(max);
    let min = match bucket.checked_sub(1).and_then(|b| buckets.get(b)) {
        Some(&(prior, _)) => go_log2(prior),
        None => max - 1.0,
    };
    go_pow2(min + (max - min) * interp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucketize() {
        assert_eq!(log2_bucketize(0), -1.0);
        assert_eq!(log2_bucketize(1), -1.0);
        assert_eq!(log2_bucketize(2), 2.0);
        assert_eq!(log2_bucketize(3), 4.0);
        assert_eq!(log2_bucketize(128), 128.0);
        assert_eq!(log2_bucketize(129), 256.0);
        assert_eq!(log2_bucketize(200), 256.0);
        assert_eq!(log2_bucketize(1 << 40), (1u64 << 40) as f64);
        assert_eq!(log2_bucketize(u64::MAX), 2f64.powi(64));
    }

    #[test]
    fn go_math() {
        assert_eq!(go_log2(8.0), 3.0);
        assert_eq!(go_log2(0.25), -2.0);
        assert_eq!(go_pow2(-3.0), 0.125);
        assert_eq!(go_pow2(10.0), 1024.0);
        assert!((go_pow2(7.5) - 181.019_335_983_756_2).abs() < 1e-12);
        assert!((go_pow2(-22.25) - 2f64.powf(-22.25)).abs() < 1e-20);
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
    }

    /// Tempo's `TestQuantileOverTime` expectations and hand-worked interpolations.
    #[test]
    fn quantiles() {
        let (n128, n256, n512) = (128e-9, 256e-9, 512e-9);
        let b = [(n128, 1), (n256, 1), (n512, 1)];
        assert_eq!(log2_quantile(0.0, &b), n128);
        assert_eq!(log2_quantile(0.5, &b), n256);
        assert_eq!(log2_quantile(1.0, &b), n512);
        assert_eq!(log2_quantile(0.5, &[]), 0.0);
        assert_eq!(log2_quantile(1.5, &b), 0.0);
        // 4 samples in one bucket: p=0 reads one sample, a quarter of the way from 128ns.
        let one = [(n256, 4)];
        let expected = go_pow2(go_log2(n256) - 1.0 + 0.25);
        assert_eq!(log2_quantile(0.0, &one), expected);
        assert!((log2_quantile(0.0, &one) - 128e-9 * 2f64.powf(0.25)).abs() < 1e-18);
        assert_eq!(log2_quantile(1.0, &one), n256);
        // Integer buckets: p50 of {4:1, 8:3} is 2 samples: one in 4, one of three in 8.
        let ints = [(4.0, 1), (8.0, 3)];
        assert!((log2_quantile(0.5, &ints) - 2f64.powf(2.0 + 1.0 / 3.0)).abs() < 1e-12);
    }
}
