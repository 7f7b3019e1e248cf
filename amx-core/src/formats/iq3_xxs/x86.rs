//! IQ3_XXS's AVX-512 decoder. Decoded chunk `j` of sub-block `s` (values `32s + 4j ..
//! 32s + 4j + 4`) is one grid entry per row: its index is byte `j % 4` of qs chunk
//! `2s + j / 4`, and the four magnitudes come from `IQ3XXS_GRID` by one `vpgatherdd`
//! (the 1 KiB table does not fit a register form). The signs are the row's `aux` of the
//! sub-block (a per-row field: one `vpgatherdd` over the 16 rows' 32-byte scales), whose
//! 7-bit sign index plus its parity (shifts and xors in registers) gives 8 sign bits; the
//! four of the chunk are spread to its bytes by a multiply and tested into a mask:
//! `u = 62 + g`, or `62 - g` under the mask.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi8, _mm512_add_ps, _mm512_and_si512, _mm512_cvtepi32_ps,
    _mm512_i32gather_epi32, _mm512_mask_sub_epi8, _mm512_mul_ps, _mm512_mullo_epi32,
    _mm512_or_si512, _mm512_set1_epi8, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32,
    _mm512_setzero_si512, _mm512_slli_epi32, _mm512_srli_epi32, _mm512_srlv_epi32,
    _mm512_test_epi8_mask, _mm512_xor_si512,
};

use super::{BlockIQ3_XXS, IQ3XXS_GRID};
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld};

/// Offset of the 16 rows' 32-byte `scales` in the per-row data (after the 16 `d`).
const SCALES: usize = 32;

/// The `aux` `u32` of sub-block `s` of each of the 16 rows (row `r` at dword `r`).
///
/// # Safety
///
/// `p` is readable for the format's `PER_ROW` bytes; `s < 8`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn aux(p: *const u8, s: usize) -> __m512i {
    let rows = _mm512_setr_epi32(
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 480,
    );
    // SAFETY: row r's dword s is at SCALES + 32r + 4s < 544, inside the per-row data.
    unsafe { _mm512_i32gather_epi32::<1>(rows, p.add(SCALES + 4 * (s % 8)).cast()) }
}

/// The 8 sign bits `ksigns(x)` of the low 7 bits of each dword: the seven bits and their
/// parity as bit 7.
#[inline]
#[target_feature(enable = "avx512f")]
fn ksigns(x: __m512i) -> __m512i {
    let i = _mm512_and_si512(x, _mm512_set1_epi32(127));
    let t = _mm512_xor_si512(i, _mm512_srli_epi32::<4>(i));
    let t = _mm512_xor_si512(t, _mm512_srli_epi32::<2>(t));
    let t = _mm512_xor_si512(t, _mm512_srli_epi32::<1>(t));
    let parity = _mm512_slli_epi32::<7>(_mm512_and_si512(t, _mm512_set1_epi32(1)));
    _mm512_or_si512(i, parity)
}

/// IQ3_XXS: `u = 62 + grid * sign`, scale `db`, bias `db * -62`.
impl Codec for BlockIQ3_XXS {
    const QUADS: usize = 1024;
    const PER_ROW: usize = 544;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        let s = s % 8;
        // SAFETY: the caller's contract (`p` readable for PER_ROW bytes), s < 8.
        let aux = unsafe { aux(p, s) };
        let mut w = [_mm512_setzero_si512(); 8];
        let base = _mm512_set1_epi8(62);
        for (j, wj) in w.iter_mut().enumerate() {
            // SAFETY: chunk 2s + j / 4 < 16 lies in the group's 1024 quads bytes.
            let chunk = unsafe { ld(q, 64 * (2 * s + j / 4)) };
            let idx = byte_u(chunk, (j % 4) as i32);
            // SAFETY: every index is a byte (< 256), an entry of the 256-entry table.
            let g = unsafe { _mm512_i32gather_epi32::<4>(idx, IQ3XXS_GRID.as_ptr().cast()) };
            let signs = ksigns(_mm512_srlv_epi32(aux, _mm512_set1_epi32(7 * (j / 2) as i32)));
            let nib = _mm512_and_si512(
                _mm512_srlv_epi32(signs, _mm512_set1_epi32(4 * (j % 2) as i32)),
                _mm512_set1_epi32(0xf),
            );
            // Sign bit k of the nibble into byte k, tested against bit k.
            let spread = _mm512_mullo_epi32(nib, _mm512_set1_epi32(0x0101_0101));
            let neg = _mm512_test_epi8_mask(spread, _mm512_set1_epi32(0x0804_0201));
            *wj = _mm512_mask_sub_epi8(_mm512_add_epi8(base, g), neg, base, g);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 16 f16 `d` are the first 32 per-row bytes (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        for s in 0..Self::SUB_BLOCKS {
            // SAFETY: the caller's contract; s < 8.
            let ls = _mm512_srli_epi32::<28>(unsafe { aux(p, s) });
            let ls = _mm512_cvtepi32_ps(ls);
            let db = _mm512_mul_ps(
                _mm512_mul_ps(d, _mm512_add_ps(_mm512_set1_ps(0.5), ls)),
                _mm512_set1_ps(0.5),
            );
            out.scale[s] = db;
            out.bias[s] = _mm512_mul_ps(db, _mm512_set1_ps(-62.0));
        }
    }
}
