//! Q2_K's AVX-512 decoder. Bits `2j, 2j + 1` of packed qs chunk `c` (0..16) are decoded
//! chunk `32(c/8) + 8j + c%8`: the 16-value sub-block `s` is bits `2j, 2j + 1`
//! (`j = (s%8)/2`) of qs chunks `8(s/8) + 4(s%2) + i`, `i < 4` ([`crumb`], Q3_K's low bits
//! too). The 16 bytes of scales and mins of the 16 rows are transposed as Q6_K's scales,
//! to one vector per sub-block.

use core::arch::x86_64::{
    __m512, __m512i, _mm512_and_si512, _mm512_cvtepi32_ps, _mm512_mul_ps, _mm512_mullo_epi32,
    _mm512_or_si512, _mm512_set1_epi8, _mm512_set1_epi32, _mm512_setr4_epi32, _mm512_setzero_si512,
    _mm512_shuffle_epi8, _mm512_srli_epi16, _mm512_srli_epi32,
};

use super::BlockQ2_K;
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld, neg};
use crate::formats::int_scales::{IntAffine, Scales};
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
        // SAFETY: the caller's contract.
        let (d, dmin, scm) = unsafe { scales_mins(p) };
        for (qd, (sc, m)) in scm.into_iter().enumerate() {
            for b in 0..4 {
                let s = 4 * qd + b;
                out.scale[s] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_u(sc, b as i32)));
                out.bias[s] = neg(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(byte_u(m, b as i32))));
            }
        }
    }

    /// The crumbs times `sc` by a byte shuffle of each row's `[0, sc, 2 sc, 3 sc]`
    /// (`3 sc <= 45`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block_folded(q: *const u8, _p: *const u8, s: usize, a: __m512i) -> [__m512i; 8] {
        let (h, j, i0) = (s / 8, s % 8 / 2, 4 * (s % 2));
        // Row r's bytes [0, sc, 2 sc, 3 sc] in its dword: sc * 0x03020100 (no carries).
        let table = _mm512_mullo_epi32(a, _mm512_set1_epi32(0x0302_0100));
        // vpshufb indexes the 16 bytes of a lane: the dword of the byte's row starts at
        // 4 (r % 4), which an OR puts above the crumb.
        let offsets = _mm512_setr4_epi32(0, 0x0404_0404, 0x0808_0808, 0x0c0c_0c0c);
        let mut w = [_mm512_setzero_si512(); 8];
        for (i, wi) in w.iter_mut().take(4).enumerate() {
            // SAFETY: qs chunk 8h + i0 + i < 16 for s < 16 (the caller's contract).
            let v = unsafe { ld(q, 64 * (8 * h + i0 + i)) };
            *wi = _mm512_shuffle_epi8(table, _mm512_or_si512(crumb(v, j), offsets));
        }
        w
    }

    /// `T = sum sc * S` (exact: `|S| <= 16 * 3 * 128`, `T` below 2^24), `alpha = d`, and
    /// the float bias `-(dmin * m)` of `affine`.
    const SCALES: Scales = Scales::Int { c: false, bias: true, fold: true };

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn int_affine(p: *const u8, out: &mut IntAffine) {
        // SAFETY: the caller's contract.
        let (d, dmin, scm) = unsafe { scales_mins(p) };
        out.alpha = d;
        for (qd, (sc, m)) in scm.into_iter().enumerate() {
            for b in 0..4 {
                let s = 4 * qd + b;
                out.a[s] = byte_u(sc, b as i32);
                out.bias[s] = neg(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(byte_u(m, b as i32))));
            }
        }
    }
}

/// The 16 rows' `d`, `dmin` and 4-bit sub-block scales and mins (`(sc, m)[q]`: those of
/// sub-block `4q + b` in byte `b` of each row's dword).
///
/// # Safety
///
/// The CPU has AVX-512 F/BW/VL; `p` is readable for the 320 bytes of a group's per-row
/// data (16 `d`, 16 `dmin`, then per row 16 bytes of scale (low nibble) and min (high
/// nibble), dword `q` holding sub-blocks `4q..4q + 4`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn scales_mins(p: *const u8) -> (__m512, __m512, [(__m512i, __m512i); 4]) {
    // SAFETY: all reads are inside the 320 bytes (the caller's contract).
    let (d, dmin, z) =
        unsafe { (f16x16(p, 0), f16x16(p, 32), [ld(p, 64), ld(p, 128), ld(p, 192), ld(p, 256)]) };
    let m0f = _mm512_set1_epi8(0x0f);
    // The 32-bit shift moves bits across bytes only into the high nibbles, which the mask
    // drops.
    let scm = rows16_dwords(z)
        .map(|w| (_mm512_and_si512(w, m0f), _mm512_and_si512(_mm512_srli_epi32::<4>(w), m0f)));
    (d, dmin, scm)
}
