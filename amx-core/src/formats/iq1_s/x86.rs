//! IQ1_S's AVX-512 decoder. Decoded chunk `j` of sub-block `s` (values `32s + 4j ..
//! 32s + 4j + 4`) is half `j % 2` of one grid entry per row: the low 8 bits of its index
//! are byte `j / 2` of qs chunk `s`, the high 3 bits `(qh >> 3 (j / 2)) & 7` of the row's
//! `u16` of the sub-block (a per-row field: one `vpgatherdd` of the dword holding it per
//! sub-block), and the four values `g + 1` come from `IQ1S_GRID_BYTES` by one
//! `vpgatherdd` (16 KiB: no register form) and are `u` as they are.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_and_si512, _mm512_cvtepi32_ps, _mm512_i32gather_epi32,
    _mm512_mask_blend_ps, _mm512_mul_ps, _mm512_or_si512, _mm512_set1_epi32, _mm512_set1_ps,
    _mm512_setr_epi32, _mm512_setzero_si512, _mm512_slli_epi32, _mm512_srli_epi32,
    _mm512_srlv_epi32, _mm512_test_epi32_mask,
};

use super::{BlockIQ1_S, IQ1S_GRID_BYTES};
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld};

/// Offset of the 16 rows' 16-byte `qh` in the per-row data (after the 16 `d`).
const QH: usize = 32;

/// The `u16` of sub-block `s` of each of the 16 rows, zero extended (row `r` at dword `r`).
///
/// # Safety
///
/// `p` is readable for the format's `PER_ROW` bytes.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn qh(p: *const u8, s: usize) -> __m512i {
    let s = s % 8;
    let rows =
        _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    // SAFETY: row r's dword s / 2 is at QH + 16r + 4 (s / 2) < 288, inside the per-row data.
    let v = unsafe { _mm512_i32gather_epi32::<1>(rows, p.add(QH + 4 * (s / 2)).cast()) };
    let v = _mm512_srlv_epi32(v, _mm512_set1_epi32(16 * (s % 2) as i32));
    _mm512_and_si512(v, _mm512_set1_epi32(0xffff))
}

/// IQ1_S: `u = g + 1`, scale `dl`, bias `dl * (delta - 1)`.
impl Codec for BlockIQ1_S {
    const QUADS: usize = 512;
    const PER_ROW: usize = 288;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        let s = s % 8;
        // SAFETY: the caller's contract (`p` readable for PER_ROW bytes).
        let qh = unsafe { qh(p, s) };
        // SAFETY: qs chunk s < 8 lies in the group's 512 quads bytes.
        let chunk = unsafe { ld(q, 64 * s) };
        let mut w = [_mm512_setzero_si512(); 8];
        for (j, wj) in w.iter_mut().enumerate() {
            let l = j / 2;
            let high = _mm512_srlv_epi32(qh, _mm512_set1_epi32(3 * l as i32));
            let high = _mm512_slli_epi32::<8>(_mm512_and_si512(high, _mm512_set1_epi32(7)));
            let idx = _mm512_or_si512(byte_u(chunk, l as i32), high);
            // Dword 2 idx + half of the byte table.
            let at =
                _mm512_add_epi32(_mm512_add_epi32(idx, idx), _mm512_set1_epi32((j % 2) as i32));
            // SAFETY: idx < 2048, so `at` < 4096, an entry of the 4096-entry table.
            *wj = unsafe { _mm512_i32gather_epi32::<4>(at, IQ1S_GRID_BYTES.as_ptr().cast()) };
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 16 f16 `d` are the first 32 per-row bytes (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        for s in 0..Self::SUB_BLOCKS {
            // SAFETY: the caller's contract.
            let qh = unsafe { qh(p, s) };
            let ls = _mm512_and_si512(_mm512_srli_epi32::<12>(qh), _mm512_set1_epi32(7));
            // 2 ls + 1, an exact integer, then d times it as gguf-py's f32 multiply.
            let k = _mm512_add_epi32(_mm512_add_epi32(ls, ls), _mm512_set1_epi32(1));
            let dl = _mm512_mul_ps(d, _mm512_cvtepi32_ps(k));
            // delta - 1: -0.875 for delta = 1/8, -1.125 where bit 15 is set.
            let minus = _mm512_test_epi32_mask(qh, _mm512_set1_epi32(0x8000));
            let c = _mm512_mask_blend_ps(minus, _mm512_set1_ps(-0.875), _mm512_set1_ps(-1.125));
            out.scale[s] = dl;
            out.bias[s] = _mm512_mul_ps(dl, c);
        }
    }
}
