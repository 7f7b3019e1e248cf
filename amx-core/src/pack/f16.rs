//! F16 weights as BF16 VNNI pairs plus a 4-bit residue per value, so that BF16 tiles read
//! the pairs directly and `unpack` gives back the exact F16 bits.
//!
//! An F16 value widened to f32 has zeros in its 13 low mantissa bits, so its f32 bits are
//! `hi << 16 | rem << 13` with `rem` 3 bits. The packed BF16 is `hi` rounded to nearest even
//! (`hi + up`); the residue nibble is `rem | up << 3`. For a NaN the BF16 is `hi` with the
//! quiet bit forced (so it stays a NaN instead of rounding to an infinity) and bit 3 of the
//! nibble says whether the quiet bit was forced.

/// F16 bits to the bits of the same value as f32 (exact; NaN payloads kept).
pub(crate) const fn f16_to_f32_bits(h: u16) -> u32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    if exp == 0 {
        if man == 0 {
            return sign;
        }
        // Subnormal: value = man * 2^-24; normalise on the highest set bit p.
        let p = 31 - man.leading_zeros();
        return sign | ((p + 103) << 23) | ((man << (23 - p)) & 0x7f_ffff);
    }
    if exp == 31 {
        return sign | 0x7f80_0000 | (man << 13);
    }
    sign | ((exp + 112) << 23) | (man << 13)
}

/// The inverse of [`f16_to_f32_bits`] for every value it produces. Other inputs (only from
/// a corrupt packed buffer) give some F16 value, never a panic.
pub(crate) const fn f32_bits_to_f16(f: u32) -> u16 {
    let sign = ((f >> 16) & 0x8000) as u16;
    let exp = (f >> 23) & 0xff;
    let man = f & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | (man >> 13) as u16;
    }
    if exp >= 113 && exp <= 142 {
        return sign | (((exp - 112) << 10) | (man >> 13)) as u16;
    }
    if exp >= 103 && exp < 113 {
        let p = exp - 103;
        return sign | ((man | 0x80_0000) >> (23 - p)) as u16;
    }
    sign
}

const fn is_bf16_nan(b: u16) -> bool {
    b & 0x7f80 == 0x7f80 && b & 0x7f != 0
}

/// Encodes one F16 value as (BF16 bits, residue nibble).
pub(crate) const fn encode(h: u16) -> (u16, u8) {
    let f = f16_to_f32_bits(h);
    let hi = (f >> 16) as u16;
    let rem = ((f >> 13) & 7) as u8;
    if is_bf16_nan(hi) || (hi & 0x7f80 == 0x7f80 && rem != 0) {
        let forced = (hi & 0x40 == 0) as u8;
        return (hi | 0x40, rem | (forced << 3));
    }
    let round = (f >> 15) & 1;
    let sticky = (f >> 13) & 3 != 0;
    let up = (round == 1 && (sticky || hi & 1 == 1)) as u16;
    (hi + up, rem | ((up as u8) << 3))
}

/// Decodes (BF16 bits, residue nibble) back to the F16 bits [`encode`] started from.
pub(crate) const fn decode(b: u16, nibble: u8) -> u16 {
    let rem = (nibble & 7) as u32;
    let bit3 = (nibble >> 3) & 1;
    let hi = if is_bf16_nan(b) {
        if bit3 == 1 { b & !0x40 } else { b }
    } else {
        b.wrapping_sub(bit3 as u16)
    };
    f32_bits_to_f16(((hi as u32) << 16) | (rem << 13))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::half;

    #[test]
    fn every_f16_round_trips_exactly() {
        for h in 0..=u16::MAX {
            let (b, nib) = encode(h);
            assert!(nib < 16);
            assert_eq!(decode(b, nib), h, "f16 {h:#06x} -> bf16 {b:#06x} nibble {nib:#x}");
        }
    }

    #[test]
    fn bf16_is_the_rounded_value_and_nan_stays_nan() {
        for h in 0..=u16::MAX {
            let x = half::f16_to_f32(h);
            assert_eq!(f16_to_f32_bits(h), x.to_bits(), "widening {h:#06x}");
            let (b, _) = encode(h);
            let y = half::bf16_to_f32(b);
            if x.is_nan() {
                assert!(y.is_nan(), "{h:#06x} must stay NaN, got bf16 {b:#06x}");
            } else {
                assert_eq!(b, half::f32_to_bf16(x), "rounding {h:#06x}");
            }
        }
    }
}
