//! Q6_K's AVX-512 decoder. Packed ql chunk `c` (0..32) gives decoded chunks
//! `32(c/16) + c%16` (its low nibbles) and `32(c/16) + 16 + c%16` (its high nibbles); bits
//! `2t, 2t+1` of packed qh chunk `c` (0..16) are bits 4, 5 of decoded chunk
//! `32(c/8) + 8t + c%8`. So the 16-value sub-block `s` takes chunks `i = 4(s%2)..+4` of ql
//! `16(s/8) + 8(t%2) + i` (high nibbles when `t >= 2`, with `t = (s%8)/2`) and of qh
//! `8(s/8) + i`. The 8-bit sub-block scales of the 16 rows are transposed to one vector
//! per sub-block with dword permutes.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_and_si512, _mm512_cvtepi32_ps, _mm512_mask_blend_epi32,
    _mm512_mul_ps, _mm512_permutex2var_epi32, _mm512_set1_epi8, _mm512_set1_epi32, _mm512_set1_ps,
    _mm512_setr_epi32, _mm512_setzero_si512, _mm512_slli_epi16, _mm512_srli_epi16,
    _mm512_ternarylogic_epi32,
};

use super::BlockQ6_K;
use crate::formats::codec::{Affine, Codec, byte_i, f16x16, ld};

/// `c ? a : b`, bit by bit, for `vpternlogd`.
const C_SELECTS_A_ELSE_B: i32 = 0xe4;

/// The 16-byte per-row fields of 16 rows (`z`: row `r` at bytes `16r..16r + 16` of the
/// 256) as four vectors of dwords: vector `q` holds bytes `4q..4q + 4` of row `r` at dword
/// `r` (Q6_K's and Q2_K's sub-block scales, four sub-blocks per dword).
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::formats) fn rows16_dwords(z: [__m512i; 4]) -> [__m512i; 4] {
    // Dword q of row r is dword 4r + q of the 64; rows 0..8 are in z[0], z[1], rows
    // 8..16 in z[2], z[3].
    let rows4 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    let mut w = [_mm512_setzero_si512(); 4];
    for (q, wq) in w.iter_mut().enumerate() {
        let idx = _mm512_add_epi32(rows4, _mm512_set1_epi32(q as i32));
        let first = _mm512_permutex2var_epi32(z[0], idx, z[1]);
        let last = _mm512_permutex2var_epi32(z[2], idx, z[3]);
        *wq = _mm512_mask_blend_epi32(0xff00, first, last);
    }
    w
}

/// Q6_K: `u` = the 6-bit value, scale `d * sc`, bias `-32 * scale` per 16 values.
impl Codec for BlockQ6_K {
    const QUADS: usize = 3072;
    const PER_ROW: usize = 288;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        // Sub-block s is decoded chunks 4s..4s + 4 = 32h + 8t + i (see the table): the
        // low (t < 2) or high nibbles of ql chunk 16h + 8(t%2) + i as bits 0..4, and bits
        // 2t, 2t + 1 of qh chunk 8h + i as bits 4, 5. With `lo` the qh bits 0, 1, 4, 5
        // (t = 0, 2) or 2, 3, 6, 7 shifted down by 2 (t = 1, 3), the high bits are `lo`
        // shifted up by 4 (t < 2) or `lo` itself (t >= 2), each byte's bits 6, 7 clear;
        // a bit select then takes bits 0..4 from the nibbles and 4..8 from them (the
        // shifts move bits across bytes only into places the select drops). These are
        // the same four pure expressions of a chunk for all t, so the compiler shares
        // them across the sub-blocks of one unrolled group.
        let (h, t, i0) = (s / 8, s % 8 / 2, 4 * (s % 2));
        let m33 = _mm512_set1_epi8(0x33);
        let mut w = [_mm512_setzero_si512(); 8];
        for (j, wj) in w.iter_mut().take(4).enumerate() {
            let i = i0 + j;
            // SAFETY: ql chunk 16h + 8(t%2) + i < 32 and qh chunk 8h + i < 16 for s < 16
            // (the caller's contract).
            let (v, qh) =
                unsafe { (ld(q, 64 * (16 * h + 8 * (t % 2) + i)), ld(q, 2048 + 64 * (8 * h + i))) };
            let lo = if t % 2 == 0 {
                _mm512_and_si512(qh, m33)
            } else {
                _mm512_and_si512(_mm512_srli_epi16::<2>(qh), m33)
            };
            let (nib, high) = if t < 2 {
                (v, _mm512_slli_epi16::<4>(lo))
            } else {
                (_mm512_srli_epi16::<4>(v), lo)
            };
            *wj =
                _mm512_ternarylogic_epi32::<C_SELECTS_A_ELSE_B>(nib, high, _mm512_set1_epi8(0x0f));
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // Per row 16 i8 scales (dword q holds sub-blocks 4q..4q + 4).
        // SAFETY: all reads are inside the 288 bytes (the caller's contract).
        let (z, d) = unsafe { ([ld(p, 0), ld(p, 64), ld(p, 128), ld(p, 192)], f16x16(p, 256)) };
        for (qd, w) in rows16_dwords(z).into_iter().enumerate() {
            for b in 0..4 {
                let sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_i(w, b as i32)));
                out.scale[4 * qd + b] = sc;
                out.bias[4 * qd + b] = _mm512_mul_ps(_mm512_set1_ps(-32.0), sc);
            }
        }
    }
}
