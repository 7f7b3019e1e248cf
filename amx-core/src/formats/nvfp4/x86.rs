//! NVFP4's AVX-512 decoder. Sub-block `s` (16 values) is packed qs chunks `2s` and
//! `2s + 1` (qs bytes `8s..8s + 8`): their low nibbles are decoded chunks 0 and 1 of the
//! sub-block, their high nibbles chunks 2 and 3, each mapped through MXFP4's `vpshufb`
//! table. The per-row region is the 16 rows' four scale bytes, row `r` at dword `r`: byte
//! `s` of every dword is sub-block `s`'s scale, turned into an f32 by bit operations.

use core::arch::x86_64::{
    __m512, __m512i, _mm512_add_epi32, _mm512_and_si512, _mm512_castsi512_ps,
    _mm512_cmpeq_epi32_mask, _mm512_cvtepi32_ps, _mm512_mask_blend_ps, _mm512_maskz_mov_ps,
    _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_si512, _mm512_shuffle_epi8,
    _mm512_slli_epi32, _mm512_testn_epi32_mask,
};

use super::{BlockNVFP4, U_OFFSET};
use crate::formats::codec::{Affine, Codec, byte_u, ld, nibble};
use crate::formats::mxfp4::x86::MXFP4_U;

/// `ue4m3_half_bits` of each dword lane `x` (a byte, zero extended), as the scalar one
/// computes it: `((x & 0x7f) << 20) + (119 << 23)` as f32 bits where the exponent field
/// `x & 0x78` is not zero, `(x & 7) * 2^-10` where it is, 0 where `x` is `0x7f`.
#[inline]
#[target_feature(enable = "avx512f")]
fn ue4m3_half(x: __m512i) -> __m512 {
    let normal = _mm512_castsi512_ps(_mm512_add_epi32(
        _mm512_slli_epi32::<20>(_mm512_and_si512(x, _mm512_set1_epi32(0x7f))),
        _mm512_set1_epi32(119 << 23),
    ));
    let m = _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(0x07)));
    let small = _mm512_mul_ps(m, _mm512_set1_ps(f32::from_bits((127 - 10) << 23)));
    let d =
        _mm512_mask_blend_ps(_mm512_testn_epi32_mask(x, _mm512_set1_epi32(0x78)), normal, small);
    _mm512_maskz_mov_ps(!_mm512_cmpeq_epi32_mask(x, _mm512_set1_epi32(0x7f)), d)
}

/// NVFP4: `u = KVALUES_MXFP4[q] + 12`, scale `ue4m3_to_f32_half(d[s])`, bias
/// `-12 * scale`, per 16 values.
impl Codec for BlockNVFP4 {
    const QUADS: usize = 512;
    const PER_ROW: usize = 64;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        // SAFETY: the table is 64 bytes.
        let table = unsafe { ld(MXFP4_U.as_ptr(), 0) };
        // SAFETY: qs chunks 2s and 2s + 1 < 8 for s < 4 lie in the group's 512 bytes (the
        // caller's contract).
        let (a, b) = unsafe { (ld(q, 128 * s), ld(q, 128 * s + 64)) };
        let mut w = [_mm512_setzero_si512(); 8];
        for (j, v) in [nibble(a, false), nibble(b, false), nibble(a, true), nibble(b, true)]
            .into_iter()
            .enumerate()
        {
            w[j] = _mm512_shuffle_epi8(table, v);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 64 bytes of the 16 rows' scale bytes (the caller's contract).
        let x = unsafe { ld(p, 0) };
        let offset = _mm512_set1_ps(-f32::from(U_OFFSET));
        for s in 0..Self::SUB_BLOCKS {
            let d = ue4m3_half(byte_u(x, s as i32));
            out.scale[s] = d;
            out.bias[s] = _mm512_mul_ps(offset, d);
        }
    }
}
