//! TQ1_0's AVX-512 decoder. A packed qs chunk holds, in each of its bytes, five base-3
//! digits of five values that lie 32 (`qs[0..32]`, chunks 0..8) or 16 (`qs[32..48]`,
//! chunks 8..12) values apart; the per-row `qh` (16 rows: one vector, row `r` at dword
//! `r`) holds four digits of values 4 apart. Digit `k` of every byte comes from the chunk
//! by in-register arithmetic on 16-bit lanes ([`digits`]), so each decoded chunk is one
//! packed chunk (or `qh`) and a digit index:
//!
//! | sub-block `s` | decoded chunks 0..4 | decoded chunks 4..8 |
//! |---|---|---|
//! | 0..5 | qs chunks 0..4, digit `s` | qs chunks 4..8, digit `s` |
//! | 5 | qs chunks 8..12, digit 0 | qs chunks 8..12, digit 1 |
//! | 6 | qs chunks 8..12, digit 2 | qs chunks 8..12, digit 3 |
//! | 7 | qs chunks 8..12, digit 4 | `qh`, digits 0..4 |
//!
//! The 16 f16 scales after `qh` are every sub-block's scale.

use core::arch::x86_64::{
    __m512i, _mm512_and_si512, _mm512_mulhi_epu16, _mm512_mullo_epi16, _mm512_set1_epi16,
    _mm512_setzero_si512, _mm512_slli_epi16, _mm512_ternarylogic_epi32,
};

use super::BlockTQ1_0;
use crate::formats::codec::{Affine, Codec, f16x16, ld, neg};

/// `3^k mod 2^16` for the digits `k` (0..5).
const POW3: [i16; 5] = [1, 3, 9, 27, 81];

/// Digit `k` (`k < 5`) of every byte `b` of `v`: `((b * 3^k mod 256) * 3) >> 8`, as
/// `trit` computes it. In each 16-bit lane: the low byte times `3^k`, shifted up by 8,
/// keeps exactly `(b * 3^k mod 256) << 8`, and `vpmulhuw` by 3 leaves `(y * 3) >> 8` in
/// the low byte; the high byte, masked to `y << 8` and multiplied by `3^k`, stays
/// `(b * 3^k mod 256) << 8`, and `vpmulhuw` by `3 << 8` leaves `y * 3`, whose high byte is
/// the digit. One ternary-logic op merges the two.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn digits(v: __m512i, k: usize) -> __m512i {
    let p = _mm512_set1_epi16(POW3[k % 5]);
    let lo = _mm512_slli_epi16::<8>(if k == 0 { v } else { _mm512_mullo_epi16(v, p) });
    let lo = _mm512_mulhi_epu16(lo, _mm512_set1_epi16(3));
    let hi = _mm512_and_si512(v, _mm512_set1_epi16(0xff00_u16 as i16));
    let hi = if k == 0 { hi } else { _mm512_mullo_epi16(hi, p) };
    let hi = _mm512_mulhi_epu16(hi, _mm512_set1_epi16(0x300));
    // lo | (hi & 0xff00): lo's high bytes are zero (digits are at most 2).
    _mm512_ternarylogic_epi32::<0xf8>(lo, hi, _mm512_set1_epi16(0xff00_u16 as i16))
}

/// TQ1_0: `u` = the digit, scale `d`, bias `-d`.
impl Codec for BlockTQ1_0 {
    const QUADS: usize = 768;
    const PER_ROW: usize = 96;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        let mut w = [_mm512_setzero_si512(); 8];
        for (j, wj) in w.iter_mut().enumerate() {
            // (chunk, from qh, digit) per the table in the module docs.
            let (c, k) = if s < 5 { (j, s) } else { (8 + j % 4, 2 * (s - 5) + j / 4) };
            let v = if s == 7 && j >= 4 {
                // SAFETY: the first 64 per-row bytes are the 16 rows' qh (the caller's
                // contract: `p` is readable for 96).
                unsafe { ld(p, 0) }
            } else {
                // SAFETY: chunk c < 12 lies in the group's 768 quads bytes (the caller's
                // contract).
                unsafe { ld(q, 64 * c) }
            };
            let k = if s == 7 && j >= 4 { j - 4 } else { k };
            *wj = digits(v, k);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 32 bytes of the 16 `d` after the 64 of qh (the caller's contract:
        // 96 bytes).
        let d = unsafe { f16x16(p, 64) };
        let bias = neg(d);
        for s in 0..Self::SUB_BLOCKS {
            out.scale[s] = d;
            out.bias[s] = bias;
        }
    }
}
