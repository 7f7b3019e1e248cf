//! Q4_K's AVX-512 decoder. Packed qs chunk `c` (0..32) gives decoded chunks `16(c/8) + c%8`
//! (its low nibbles) and `16(c/8) + 8 + c%8` (its high nibbles): sub-blocks `2t`, `2t + 1`
//! are the low and the high nibbles of qs chunks `8t..8t + 8`. The affine maps
//! ([`k4_affine`]) are Q5_K's too.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_and_si512, _mm512_cmpge_epu32_mask, _mm512_cvtepi32_ps,
    _mm512_mask_permutexvar_epi32, _mm512_mul_ps, _mm512_or_si512, _mm512_permutex2var_epi32,
    _mm512_set1_epi8, _mm512_set1_epi32, _mm512_setr_epi32, _mm512_setzero_si512,
    _mm512_srli_epi32,
};

use super::BlockQ4_K;
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld, neg, nibble};

/// The 12-byte per-row fields of 16 rows (`z`: row `r` at bytes `12r..12r + 12` of the
/// 192) as three vectors of dwords: vector `q` holds bytes `4q..4q + 4` of row `r` at
/// dword `r` (the 6-bit scales of Q4_K, Q5_K and Q3_K).
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::formats) fn rows12_dwords(z: [__m512i; 3]) -> [__m512i; 3] {
    // Dword q of row r is dword 3r + q of the 48.
    let rows3 = _mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45);
    let mut w = [_mm512_setzero_si512(); 3];
    for (q, wq) in w.iter_mut().enumerate() {
        let idx = _mm512_add_epi32(rows3, _mm512_set1_epi32(q as i32));
        let low = _mm512_permutex2var_epi32(z[0], idx, z[1]);
        let from_z2 = _mm512_cmpge_epu32_mask(idx, _mm512_set1_epi32(32));
        *wq = _mm512_mask_permutexvar_epi32(low, from_z2, idx, z[2]);
    }
    w
}

/// The Q4_K/Q5_K affine maps from the per-row data `p` (16 `d`, 16 `dmin`, 16 x 12 bytes
/// of 6-bit scales and mins): scale `d * sc`, bias `-(dmin * m)` per sub-block.
///
/// # Safety
///
/// `p` is readable for 256 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(in crate::formats) unsafe fn k4_affine(p: *const u8, out: &mut Affine) {
    // SAFETY: all reads are inside the 256 bytes (the caller's contract).
    let (d, dmin, z) =
        unsafe { (f16x16(p, 0), f16x16(p, 32), [ld(p, 64), ld(p, 128), ld(p, 192)]) };
    let w = rows12_dwords(z);
    // unpack_scales_mins_k4, four sub-blocks per dword byte lane.
    let (m3f, m0f, m30) = (_mm512_set1_epi8(0x3f), _mm512_set1_epi8(0x0f), _mm512_set1_epi8(0x30));
    let sc_lo = _mm512_and_si512(w[0], m3f);
    let m_lo = _mm512_and_si512(w[1], m3f);
    let sc_hi = _mm512_or_si512(
        _mm512_and_si512(w[2], m0f),
        _mm512_and_si512(_mm512_srli_epi32::<2>(w[0]), m30),
    );
    let m_hi = _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi32::<4>(w[2]), m0f),
        _mm512_and_si512(_mm512_srli_epi32::<2>(w[1]), m30),
    );
    for j in 0..4 {
        let sc = |x| _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_u(x, j as i32)));
        let bi = |x| neg(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(byte_u(x, j as i32))));
        (out.scale[j], out.bias[j]) = (sc(sc_lo), bi(m_lo));
        (out.scale[j + 4], out.bias[j + 4]) = (sc(sc_hi), bi(m_hi));
    }
}

/// Q4_K: `u` = the nibble, affine maps of [`k4_affine`].
impl Codec for BlockQ4_K {
    const QUADS: usize = 2048;
    const PER_ROW: usize = 256;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        let mut w = [_mm512_setzero_si512(); 8];
        for (i, wi) in w.iter_mut().enumerate() {
            // SAFETY: chunk 8(s/2) + i < 32 for s < 8 (the caller's contract).
            let v = unsafe { ld(q, 64 * (8 * (s / 2) + i)) };
            *wi = nibble(v, s % 2 == 1);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the caller's contract is k4_affine's.
        unsafe { k4_affine(p, out) }
    }
}
