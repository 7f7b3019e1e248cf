//! Vectorizable float helpers for the CPU backend's hot loops: an `exp` in plain
//! arithmetic (libm's `expf` is a call per value, which no loop vectorizes) and folds in
//! independent lanes (one running sum or max is a chain of dependent operations).

/// `exp(x)` within 4 ulp of `f32::exp` for `x` in `[-87.3, 88.3]`; below, about `1e-38`
/// instead of a smaller number or 0; above, about `2e38` instead of a larger number or
/// infinity; a NaN stays a NaN. Plain arithmetic and bit operations (Cephes' range
/// reduction and polynomial), so that a loop over it vectorizes.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // Round to nearest by the 1.5 * 2^23 trick (no call, unlike `round` on x86-64 v1).
    const ROUND: f32 = 12_582_912.0;
    // Comparisons, not `max`/`min`, so that a NaN stays a NaN (and shows).
    let x = if x < -87.336_55 { -87.336_55 } else { x };
    // n = 127 at most: 2^n must stay a finite exponent field.
    let x = if x > 88.3 { 88.3 } else { x };
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    // ln 2 in two parts, so that `r` is exact enough.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut y = 1.987_569_1e-4_f32;
    y = y * r + 1.398_199_9e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 1.666_666_5e-1;
    y = y * r + 0.5;
    let y = y * r * r + r + 1.0;
    // 2^n for n in -126..=127: the exponent field alone. `n` is read from the low bits
    // of `t` (1.5 * 2^23 + n) rather than by `as i32`, whose saturation and NaN rules the
    // compiler keeps per lane (scalar code).
    let biased = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    y * f32::from_bits(biased << 23)
}

/// `fold(init, f)` over `v` in 16 interleaved lanes, combined with `join`: independent
/// chains, so that the compiler vectorizes and the latency of `f` overlaps.
#[inline(always)]
pub(crate) fn lanes(
    v: &[f32],
    init: f32,
    f: impl Fn(f32, f32) -> f32,
    join: impl Fn(f32, f32) -> f32,
) -> f32 {
    let mut acc = [init; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = f(*a, x);
        }
    }
    let tail = chunks.remainder().iter().fold(init, |a, &x| f(a, x));
    acc.iter().fold(tail, |a, &b| join(a, b))
}

#[cfg(test)]
mod tests {
    use super::{exp_f32, lanes};

    #[test]
    fn exp_f32_is_within_4_ulp_of_exp_and_keeps_nan() {
        let mut worst = 0f32;
        for i in -873_365..=883_000 {
            let x = i as f32 * 1e-4;
            let (got, want) = (exp_f32(x), x.exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 4.0 * f32::EPSILON, "relative error {worst}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1000.0) < 1e-37 && exp_f32(f32::NEG_INFINITY) < 1e-37);
        assert!(exp_f32(1000.0) > 2e38 && exp_f32(f32::INFINITY).is_finite());
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn lanes_fold_every_value_once() {
        let v: Vec<f32> = (1..=37).map(|i| i as f32).collect();
        assert_eq!(lanes(&v, 0.0, |a, x| a + x, |a, b| a + b), 703.0);
        assert_eq!(lanes(&v, f32::NEG_INFINITY, f32::max, f32::max), 37.0);
        assert_eq!(lanes(&[], 0.0, |a, x| a + x, |a, b| a + b), 0.0);
    }
}
