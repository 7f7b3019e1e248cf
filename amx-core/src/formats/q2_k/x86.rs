//! Q2_K's AVX-512 decoder. Bits `2j, 2j + 1` of packed qs chunk `c` (0..16) are decoded
//! chunk `32(c/8) + 8j + c%8`: the 16-value sub-block `s` is bits `2j, 2j + 1`
//! (`j = (s%8)/2`) of qs chunks `8(s/8) + 4(s%2) + i`, `i < 4` ([`crumb`], Q3_K's low bits
//! too). The 16 bytes of scales and mins of the 16 rows are transposed as Q6_K's scales,
//! to one vector per sub-block.

use core::arch::x86_64::{
    __m512i, _mm512_and_si512, _mm512_cvtepi32_ps, _mm512_mul_ps, _mm512_set1_epi8,
    _mm512_setzero_si512, _mm512_srli_epi16, _mm512_srli_epi32,
};

use super::BlockQ2_K;
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld, neg};
use crate::formats::q6_k::x86::rows16_dwords;

/// Bits `2j, 2j + 1` of every byte of `v`, as the byte's value (0..=3); `j < 4`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(in crate::formats) fn crumb(v: __m512i, j: usize) -> __m512i {
    // A 16-bit shift brings bits of the byte above only into the top 2j bits of a byte,
    // which the mask drops. `j` is a constant in the unrolled sub-block loops, so the
    // match folds to one shift.
    let v = match j {
        0 => v,
        1 => _mm512_srli_epi16::<2>(v),
        2 => _mm512_srli_epi16::<4>(v),
        _ => _mm512_srli_epi16::<6>(v),
    };
    _mm512_and_si512(v, _mm512_set1_epi8(3))
}

/// Q2_K: `u` = the 2-bit value, scale `d * sc`, bias `-(dmin * m)` per 16 values.
impl Codec for BlockQ2_K {
    const QUADS: usize = 1024;
    const PER_ROW: usize = 320;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        let (h, j, i0) = (s / 8, s % 8 / 2, 4 * (s % 2));
        let mut w = [_mm512_setzero_si512(); 8];
        for (i, wi) in w.iter_mut().take(4).enumerate() {
            // SAFETY: qs chunk 8h + i0 + i < 16 for s < 16 (the caller's contract).
            let v = unsafe { ld(q, 64 * (8 * h + i0 + i)) };
            *wi = crumb(v, j);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // 16 `d`, 16 `dmin`, then per row 16 bytes of scale (low nibble) and min (high
        // nibble), dword q holding sub-blocks 4q..4q + 4.
        // SAFETY: all reads are inside the 320 bytes (the caller's contract).
        let (d, dmin, z) = unsafe {
            (f16x16(p, 0), f16x16(p, 32), [ld(p, 64), ld(p, 128), ld(p, 192), ld(p, 256)])
        };
        let m0f = _mm512_set1_epi8(0x0f);
        for (qd, w) in rows16_dwords(z).into_iter().enumerate() {
            // The 32-bit shift moves bits across bytes only into the high nibbles, which
            // the mask drops.
            let (sc, m) =
                (_mm512_and_si512(w, m0f), _mm512_and_si512(_mm512_srli_epi32::<4>(w), m0f));
            for b in 0..4 {
                let s = 4 * qd + b;
                out.scale[s] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_u(sc, b as i32)));
                out.bias[s] = neg(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(byte_u(m, b as i32))));
            }
        }
    }
}
