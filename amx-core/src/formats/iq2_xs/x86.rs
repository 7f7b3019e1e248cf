//! IQ2_XS's AVX-512 decoder. Packed qs chunk `s` holds, per row, the two 16-bit words of
//! sub-block `s` (values `16s..16s + 16`): word `t` gives decoded chunks `2t` (values
//! `0..4` of its grid entry) and `2t + 1` (values `4..8`). The 16 rows' compressed grid
//! entries come from one `vpgatherdd` per word; values and signs are IQ2_XXS's register
//! operations ([`expand`], [`high_signs`]); with VBMI ([`Codec::sub_block_vbmi`]) the
//! signs of both words come from one [`sign_bytes`] (the grid stays a gather: half of
//! two 512-entry byte-plane lookups cost more). The 4-bit scales are per-row bytes: one
//! `vpsrlvq` per half of the rows and a `vpermt2d` give a sub-block's 16 nibbles.

use core::arch::x86_64::{
    __m512, __m512i, _mm512_add_ps, _mm512_and_si512, _mm512_cvtepi32_ps, _mm512_mul_ps,
    _mm512_permutex2var_epi32, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_set1_ps,
    _mm512_setr_epi32, _mm512_setzero_si512, _mm512_srli_epi32, _mm512_srlv_epi64,
};

use super::{BlockIQ2_XS, IQ2XS_GRID};
use crate::formats::codec::{Affine, Codec, f16x16, ld};
use crate::formats::iq2_xxs::x86::{
    expand, expand_signs, grid_entries, high_signs, padded, sign_bytes,
};

/// The sign indices of the two words of a row for [`sign_bytes`]: bits 9 and 25 of its
/// dword (per qword: 9, 25, then 41, 57; the other bytes are not read).
const WORD_SIGNS: i64 = 0x0000_3929_0000_1909;

/// [`IQ2XS_GRID`], padded for [`grid_entries`].
static GRID: [u16; 513] = padded(&IQ2XS_GRID);

/// IQ2_XS: `u = 43 ± grid`, scale `db`, bias `db * -43`, per 16 values.
impl Codec for BlockIQ2_XS {
    const QUADS: usize = 1024;
    const PER_ROW: usize = 160;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        let mut w = [_mm512_setzero_si512(); 8];
        // SAFETY: chunk s < 16 (the caller's contract: the group's 1024 quads bytes).
        let v = unsafe { ld(q, 64 * s) };
        let mask = _mm512_set1_epi32(511);
        let words = [
            (_mm512_and_si512(v, mask), _mm512_srli_epi32::<9>(v)),
            (_mm512_and_si512(_mm512_srli_epi32::<16>(v), mask), _mm512_srli_epi32::<25>(v)),
        ];
        for (t, (idx, y)) in words.into_iter().enumerate() {
            // SAFETY: the indices are below 512 and GRID has 513 entries.
            let e = unsafe { grid_entries(GRID.as_ptr(), idx) };
            w[2 * t] = expand(e, 0, y);
            w[2 * t + 1] = expand(e, 1, high_signs(y));
        }
        w
    }

    const VBMI: bool = true;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    unsafe fn sub_block_vbmi(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        let mut w = [_mm512_setzero_si512(); 8];
        // SAFETY: chunk s < 16 (the caller's contract: the group's 1024 quads bytes).
        let v = unsafe { ld(q, 64 * s) };
        // SAFETY: the CPU has VBMI (the caller's contract).
        let signs = unsafe { sign_bytes(v, WORD_SIGNS) };
        let mask = _mm512_set1_epi32(511);
        let idx = [_mm512_and_si512(v, mask), _mm512_and_si512(_mm512_srli_epi32::<16>(v), mask)];
        for (t, idx) in idx.into_iter().enumerate() {
            // SAFETY: the indices are below 512 and GRID has 513 entries.
            let e = unsafe { grid_entries(GRID.as_ptr(), idx) };
            w[2 * t] = expand_signs(e, 0, signs, t as i32, false);
            w[2 * t + 1] = expand_signs(e, 1, signs, t as i32, true);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 16 `d` at 0..32, the 16 rows' 8 scale bytes at 32..160 (the caller's
        // contract: 160 bytes).
        let (d, lo, hi) = unsafe { (f16x16(p, 0), ld(p, 32), ld(p, 96)) };
        nibble_scales(d, lo, hi, out);
    }
}

/// Bits `shift..shift + 32` of each row's little-endian u64, in the row's dword: rows
/// 0..8 are the qwords of `lo`, rows 8..16 those of `hi` (a per-row 8-byte field).
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::formats) fn row_bits(lo: __m512i, hi: __m512i, shift: usize) -> __m512i {
    let sh = _mm512_set1_epi64(shift as i64);
    // The low dword of each shifted qword.
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    _mm512_permutex2var_epi32(_mm512_srlv_epi64(lo, sh), even, _mm512_srlv_epi64(hi, sh))
}

/// The 16 sub-blocks' scales `d * (0.5 + ls) * 0.25` and biases `scale * -43` from the
/// 16 rows' `d` and their 8 bytes of 4-bit scales (`lo`, `hi` as for [`row_bits`]; nibble
/// `s` for sub-block `s`), the f32 operations of the scalar decoder.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::formats) fn nibble_scales(d: __m512, lo: __m512i, hi: __m512i, out: &mut Affine) {
    for s in 0..16 {
        let x = row_bits(lo, hi, 4 * s);
        let ls = _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(15)));
        let db = _mm512_mul_ps(
            _mm512_mul_ps(d, _mm512_add_ps(_mm512_set1_ps(0.5), ls)),
            _mm512_set1_ps(0.25),
        );
        out.scale[s] = db;
        out.bias[s] = _mm512_mul_ps(db, _mm512_set1_ps(-43.0));
    }
}
