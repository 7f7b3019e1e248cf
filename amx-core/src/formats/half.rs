//! IEEE binary16 (`f16`) and bfloat16 (`bf16`) bit conversions, exact and `const`.
//!
//! The 16-bit values are carried as their bit patterns (`u16`), as they are stored in a GGUF
//! file. Widening to `f32` is exact for every pattern; narrowing rounds to nearest, ties to
//! even, as `numpy.astype(float16)` and ggml's `GGML_FP32_TO_BF16` do.

/// Widens the bits of an IEEE binary16 value to `f32`, exactly.
///
/// Normal and subnormal values, signed zeros and infinities convert exactly. A NaN stays a
/// NaN with the same sign, its payload shifted into the top of the `f32` payload (not
/// quieted).
pub const fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits as u32) & 0x8000) << 16;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let man = (bits & 0x03ff) as u32;
    let out = if exp == 0x1f {
        // Infinity (man == 0) or NaN (payload kept).
        sign | 0x7f80_0000 | (man << 13)
    } else if exp != 0 {
        // Normal: rebias the exponent from 15 to 127.
        sign | ((exp + 112) << 23) | (man << 13)
    } else if man == 0 {
        sign
    } else {
        // Subnormal: man * 2^-24. Shift the leading one up to bit 10 (the implicit bit).
        let shift = man.leading_zeros() - 21;
        let man = (man << shift) & 0x03ff;
        sign | ((113 - shift) << 23) | (man << 13)
    };
    f32::from_bits(out)
}

/// Widens the bits of a bfloat16 value to `f32`, exactly (the bits become the top half).
pub const fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// Narrows an `f32` to IEEE binary16 bits, rounding to nearest, ties to even.
///
/// Finite values beyond the binary16 range round to infinity, tiny values to a subnormal or a
/// signed zero. A NaN stays a NaN with the same sign: it keeps the top ten payload bits and is
/// made quiet.
pub const fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = (bits >> 23) & 0xff;
    let man = bits & 0x007f_ffff;
    if exp == 0xff {
        if man == 0 {
            return sign | 0x7c00;
        }
        return sign | 0x7e00 | (man >> 13) as u16;
    }
    let e = exp as i32 - 127;
    if e > 15 {
        return sign | 0x7c00;
    }
    if e >= -14 {
        // Normal range: drop 13 mantissa bits. A carry out of the mantissa bumps the
        // exponent, which is right, and past 0x7bff gives 0x7c00 (infinity), also right.
        let mut h = (((e + 15) as u32) << 10) | (man >> 13);
        let rem = man & 0x1fff;
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) {
            h += 1;
        }
        return sign | h as u16;
    }
    if e < -25 {
        // Below half the smallest subnormal (2^-25): rounds to zero. Also f32 subnormals.
        return sign;
    }
    // Subnormal result, in units of 2^-24: (man | 1<<23) * 2^(e - 23 + 24).
    let m = man | 0x0080_0000;
    let shift = (-(e + 1)) as u32; // 14 ..= 24
    let mut h = m >> shift;
    let rem = m & ((1u32 << shift) - 1);
    let halfway = 1u32 << (shift - 1);
    if rem > halfway || (rem == halfway && (h & 1) == 1) {
        h += 1; // may reach 0x400, the smallest normal: right.
    }
    sign | h as u16
}

/// Narrows an `f32` to bfloat16 bits, rounding to nearest, ties to even.
///
/// Subnormals are kept (not flushed); large finite values round to infinity. A NaN stays a
/// NaN with the same sign and the top payload bits, made quiet (as ggml's
/// `ggml_compute_fp32_to_bf16`).
pub const fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if (bits & 0x7fff_ffff) > 0x7f80_0000 {
        return ((bits >> 16) | 0x0040) as u16;
    }
    // Largest non-NaN pattern is 0xff80_0000; adding at most 0x8000 cannot overflow.
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2^e as f64 by repeated multiplication (independent of the bit tricks above).
    fn pow2(e: i32) -> f64 {
        let mut v = 1.0f64;
        let (f, n) = if e >= 0 { (2.0, e) } else { (0.5, -e) };
        for _ in 0..n {
            v *= f;
        }
        v
    }

    /// The value of an f16 bit pattern computed arithmetically from its fields.
    fn f16_value(h: u16) -> f64 {
        let s = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let e = i32::from((h >> 10) & 0x1f);
        let m = f64::from(h & 0x3ff);
        if e == 0 { s * m * pow2(-24) } else { s * (1.0 + m / 1024.0) * pow2(e - 15) }
    }

    fn f16_is_nan(h: u16) -> bool {
        h & 0x7c00 == 0x7c00 && h & 0x03ff != 0
    }

    fn bf16_is_nan(h: u16) -> bool {
        h & 0x7f80 == 0x7f80 && h & 0x007f != 0
    }

    #[test]
    fn f16_to_f32_matches_field_arithmetic_for_all_finite() {
        for h in (0..=u16::MAX).step_by(crate::test_util::MIRI_STRIDE) {
            if h & 0x7c00 == 0x7c00 {
                continue;
            }
            let got = f16_to_f32(h);
            assert_eq!(f64::from(got), f16_value(h), "h = {h:#06x}");
            assert_eq!(got.is_sign_negative(), h & 0x8000 != 0, "h = {h:#06x}");
        }
    }

    #[test]
    fn f16_specials() {
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7c01).is_nan());
        assert!(f16_to_f32(0xfe00).is_nan());
        assert!(f16_to_f32(0xfe00).is_sign_negative());
        // Payload bits land at the top of the f32 payload.
        assert_eq!(f16_to_f32(0x7d55).to_bits(), 0x7f80_0000 | (0x155 << 13));
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    }

    #[test]
    fn f16_round_trip_all_patterns() {
        for h in (0..=u16::MAX).step_by(crate::test_util::MIRI_STRIDE) {
            let x = f16_to_f32(h);
            let back = f32_to_f16(x);
            if f16_is_nan(h) {
                assert!(x.is_nan(), "h = {h:#06x}");
                assert!(f16_is_nan(back), "h = {h:#06x} -> {back:#06x}");
                assert_eq!(back & 0x8000, h & 0x8000);
            } else {
                assert_eq!(back, h, "h = {h:#06x}");
            }
        }
    }

    #[test]
    fn bf16_round_trip_all_patterns() {
        for h in (0..=u16::MAX).step_by(crate::test_util::MIRI_STRIDE) {
            let x = bf16_to_f32(h);
            let back = f32_to_bf16(x);
            if bf16_is_nan(h) {
                assert!(x.is_nan(), "h = {h:#06x}");
                assert!(bf16_is_nan(back), "h = {h:#06x} -> {back:#06x}");
                assert_eq!(back & 0x8000, h & 0x8000);
            } else {
                assert_eq!(back, h, "h = {h:#06x}");
            }
        }
    }

    #[test]
    fn f16_known_values() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(0.5), 0x3800);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(6.103_515_6e-5), 0x0400); // 2^-14, smallest normal
        assert_eq!(f32_to_f16(5.960_464_5e-8), 0x0001); // 2^-24, smallest subnormal
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f32_to_f16(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16(f32::NEG_INFINITY), 0xfc00);
        assert_eq!(f32_to_f16(1.0e10), 0x7c00);
        assert_eq!(f32_to_f16(-1.0e10), 0xfc00);
        assert_eq!(f32_to_f16(f32::MIN_POSITIVE), 0x0000);
        assert_eq!(f32_to_f16(1.0e-45), 0x0000); // f32 subnormal
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn f16_rounding_ties() {
        // 1 + 2^-11 is halfway between 0x3c00 and 0x3c01: ties to even (0x3c00).
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00);
        // 1 + 3 * 2^-11 is halfway between 0x3c01 and 0x3c02: ties to even (0x3c02).
        assert_eq!(f32_to_f16(1.0 + 3.0 / 2048.0), 0x3c02);
        // 65520 is halfway between 65504 and "65536" (infinity): ties to even -> inf.
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(65519.996), 0x7bff);
        // 2^-25 is halfway between 0 and the smallest subnormal: ties to even (0).
        assert_eq!(f32_to_f16(2.980_232_2e-8), 0x0000);
        assert_eq!(f32_to_f16(f32::from_bits(2.980_232_2e-8f32.to_bits() + 1)), 0x0001);
        // 3 * 2^-25 is halfway between subnormals 1 and 2: ties to even (2).
        assert_eq!(f32_to_f16(8.940_697e-8), 0x0002);
    }

    #[test]
    fn f16_rounding_around_every_midpoint() {
        // For each pair of adjacent positive finite f16 values, the midpoint (exact in f32)
        // rounds to the even one, and the f32 neighbours of the midpoint round to the
        // nearer one. The same holds for the negative values.
        for h in (0u16..0x7bff).step_by(crate::test_util::MIRI_STRIDE) {
            let lo = f16_to_f32(h);
            let hi = f16_to_f32(h + 1);
            let mid = (lo + hi) / 2.0;
            assert_eq!(f64::from(mid), (f64::from(lo) + f64::from(hi)) / 2.0);
            let even = if h & 1 == 0 { h } else { h + 1 };
            let below = f32::from_bits(mid.to_bits() - 1);
            let above = f32::from_bits(mid.to_bits() + 1);
            for (x, want) in [(mid, even), (below, h), (above, h + 1)] {
                assert_eq!(f32_to_f16(x), want, "x = {x:e}");
                assert_eq!(f32_to_f16(-x), want | 0x8000, "x = {:e}", -x);
            }
        }
    }

    #[test]
    fn bf16_rounding_around_every_midpoint() {
        for h in (0u16..0x7f7f).step_by(crate::test_util::MIRI_STRIDE) {
            let lo = bf16_to_f32(h);
            let hi = bf16_to_f32(h + 1);
            let mid = f32::from_bits((lo.to_bits() + hi.to_bits()) / 2);
            assert_eq!(f64::from(mid), (f64::from(lo) + f64::from(hi)) / 2.0);
            let even = if h & 1 == 0 { h } else { h + 1 };
            let below = f32::from_bits(mid.to_bits() - 1);
            let above = f32::from_bits(mid.to_bits() + 1);
            for (x, want) in [(mid, even), (below, h), (above, h + 1)] {
                assert_eq!(f32_to_bf16(x), want, "x = {x:e}");
                assert_eq!(f32_to_bf16(-x), want | 0x8000, "x = {:e}", -x);
            }
        }
    }

    #[test]
    fn bf16_known_values() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(f32_to_bf16(-2.0), 0xc000);
        assert_eq!(f32_to_bf16(f32::INFINITY), 0x7f80);
        assert_eq!(f32_to_bf16(f32::MAX), 0x7f80); // rounds up past the largest bf16
        assert_eq!(1.0e-40f32.to_bits(), 0x0001_16c2);
        assert_eq!(f32_to_bf16(1.0e-40), 0x0001); // subnormal kept, rounded down
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0x4049), 3.140_625);
        // A signalling NaN comes out quiet, sign kept.
        assert_eq!(f32_to_bf16(f32::from_bits(0xff80_0001)), 0xffc0);
        assert_eq!(f32_to_bf16(f32::from_bits(0x7fa0_0000)), 0x7fe0);
        assert_eq!(f32_to_f16(f32::from_bits(0x7f80_0001)), 0x7e00);
    }
}
