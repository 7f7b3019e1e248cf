//! IQ1_S's AVX-512 decoder. Decoded chunk `j` of sub-block `s` (values `32s + 4j ..
//! 32s + 4j + 4`) is half `j % 2` of one grid entry per row: the low 8 bits of its index
//! are byte `j / 2` of qs chunk `s`, the high 3 bits `(qh >> 3 (j / 2)) & 7` of the row's
//! `u16` of the sub-block (a per-row field: one `vpgatherdd` of the dword holding it per
//! sub-block), and an entry's eight values `g + 1` come from `IQ1S_GRID_BYTES` by qword
//! gathers (16 KiB: no register form; [`grid_halves`]) and are `u` as they are.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_and_si512, _mm512_castsi512_si256, _mm512_cvtepi32_ps,
    _mm512_extracti64x4_epi64, _mm512_i32gather_epi64, _mm512_mask_blend_ps, _mm512_mul_ps,
    _mm512_or_si512, _mm512_permutex2var_epi32, _mm512_set1_epi32, _mm512_set1_ps,
    _mm512_setr_epi32, _mm512_setzero_si512, _mm512_slli_epi32, _mm512_srli_epi32,
    _mm512_srlv_epi32, _mm512_test_epi32_mask,
};

use super::{BlockIQ1_S, IQ1S_GRID_BYTES};
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld};
use crate::formats::q6_k::x86::rows16_dwords;

/// Offset of the 16 rows' 16-byte `qh` in the per-row data (after the 16 `d`).
const QH: usize = 32;

/// The `u16` of sub-block `s` of each of the 16 rows, zero extended (row `r` at dword `r`):
/// dword `s / 2` of the rows' 16-byte `qh`, a column of their four 64-byte loads by two
/// permutes and a blend ([`rows16_dwords`]'s; a `vpgatherdd` costs 16 loads, and the
/// kernels read each column twice per group).
///
/// # Safety
///
/// `p` is readable for the format's `PER_ROW` bytes.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn qh(p: *const u8, s: usize) -> __m512i {
    let s = s % 8;
    // SAFETY: the 16 rows' qh are the 256 bytes at QH, inside the 288 per-row bytes.
    let z = unsafe { [ld(p, QH), ld(p, QH + 64), ld(p, QH + 128), ld(p, QH + 192)] };
    let v = rows16_dwords(z)[s / 2];
    let v = _mm512_srlv_epi32(v, _mm512_set1_epi32(16 * (s % 2) as i32));
    _mm512_and_si512(v, _mm512_set1_epi32(0xffff))
}

/// The two halves of the grid entries (each 8 bytes of `g + 1` in
/// [`IQ1S_GRID_BYTES`]) of the 16 row indices `idx` (< 2048): values `0..4` of row `r`'s
/// entry at dword `r` of the first vector, values `4..8` of the second. Two 8-lane qword
/// gathers (64 loads where two dword gathers would make 128; the loads were the limit)
/// and one `vpermt2d` per half.
///
/// # Safety
///
/// Every index of `idx` is below 2048.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::formats) unsafe fn grid_halves(idx: __m512i) -> (__m512i, __m512i) {
    let base = IQ1S_GRID_BYTES.as_ptr().cast::<i64>();
    // SAFETY: entry i is the 8 bytes at 8 i, inside the 16 KiB table for i < 2048 (the
    // caller's contract).
    let (lo, hi) = unsafe {
        (
            _mm512_i32gather_epi64::<8>(_mm512_castsi512_si256(idx), base),
            _mm512_i32gather_epi64::<8>(_mm512_extracti64x4_epi64::<1>(idx), base),
        )
    };
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    (_mm512_permutex2var_epi32(lo, even, hi), _mm512_permutex2var_epi32(lo, odd, hi))
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
        for l in 0..4 {
            let high = _mm512_srlv_epi32(qh, _mm512_set1_epi32(3 * l as i32));
            let high = _mm512_slli_epi32::<8>(_mm512_and_si512(high, _mm512_set1_epi32(7)));
            let idx = _mm512_or_si512(byte_u(chunk, l as i32), high);
            // SAFETY: idx < 2048 (8 + 3 bits).
            (w[2 * l], w[2 * l + 1]) = unsafe { grid_halves(idx) };
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
