//! IQ2_S's AVX-512 decoder. Packed qs chunk `c` (0..8) holds, per row, the low index
//! bits of values `32c..32c + 32` (a byte per 8 values), chunk `8 + c` their sign bytes;
//! the per-row `qh` gives each row's two high index bits per 8 values ([`row_bits`]).
//! Sub-block `s` (16 values) is bytes `2(s % 2)` and `2(s % 2) + 1` of chunks `s / 2`
//! and `8 + s / 2`: each byte's grid entries come from one `vpgatherdd`, values and signs
//! from IQ2_XXS's register operations ([`expand`]; the sign bytes are plain bits).

use core::arch::x86_64::{
    __m512i, _mm512_and_si512, _mm512_or_si512, _mm512_set1_epi32, _mm512_setzero_si512,
    _mm512_slli_epi32, _mm512_srli_epi32,
};

use super::{BlockIQ2_S, IQ2S_GRID};
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld};
use crate::formats::iq2_xs::x86::{nibble_scales, row_bits};
use crate::formats::iq2_xxs::x86::{expand, grid_entries, padded};

/// [`IQ2S_GRID`], padded for [`grid_entries`].
static GRID: [u16; 1025] = padded(&IQ2S_GRID);

/// IQ2_S: `u = 43 ± grid`, scale `db`, bias `db * -43`, per 16 values.
impl Codec for BlockIQ2_S {
    const QUADS: usize = 1024;
    const PER_ROW: usize = 288;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        let mut w = [_mm512_setzero_si512(); 8];
        // SAFETY: chunks s / 2 < 8 and 8 + s / 2 < 16 (the caller's contract: the group's
        // 1024 quads bytes); the 16 rows' qh at per-row bytes 32..160 (of 288).
        let (qs, signs, lo, hi) =
            unsafe { (ld(q, 64 * (s / 2)), ld(q, 64 * (8 + s / 2)), ld(p, 32), ld(p, 96)) };
        for t in 0..2 {
            let (m, b) = (2 * s + t, (2 * (s % 2) + t) as i32);
            let high = _mm512_and_si512(row_bits(lo, hi, 2 * m), _mm512_set1_epi32(3));
            let idx = _mm512_or_si512(byte_u(qs, b), _mm512_slli_epi32::<8>(high));
            // SAFETY: the indices are below 1024 and GRID has 1025 entries.
            let e = unsafe { grid_entries(GRID.as_ptr(), idx) };
            let y = byte_u(signs, b);
            w[2 * t] = expand(e, 0, y);
            w[2 * t + 1] = expand(e, 1, _mm512_srli_epi32::<4>(y));
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 16 `d` at 0..32, the rows' 8 scale bytes at 160..288 (the caller's
        // contract: 288 bytes).
        let (d, lo, hi) = unsafe { (f16x16(p, 0), ld(p, 160), ld(p, 224)) };
        nibble_scales(d, lo, hi, out);
    }
}
