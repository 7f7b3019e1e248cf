//! MXFP4's AVX-512 decoder. Packed qs chunk `c` (0..4) gives decoded chunks `c` (its low
//! nibbles) and `4 + c` (its high nibbles), as Q4_0's; each nibble is then mapped through
//! a `vpshufb` table, as IQ4_XS's. The 16 exponent bytes of the per-row region become
//! the 16 rows' scales.

use core::arch::x86_64::{
    __m512i, _mm_loadu_si128, _mm512_castsi512_ps, _mm512_cmplt_epu32_mask, _mm512_cvtepu8_epi32,
    _mm512_mask_sllv_epi32, _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_shuffle_epi8,
    _mm512_slli_epi32, _mm512_sub_epi32,
};

use super::{BlockMXFP4, KVALUES_MXFP4, U_OFFSET};
use crate::formats::codec::{Affine, Codec, ld, nibbles_4x2};

/// `KVALUES_MXFP4[q] + U_OFFSET` for `q` in 0..16, in each 16-byte lane.
pub(in crate::formats) static MXFP4_U: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = (KVALUES_MXFP4[i % 16] + U_OFFSET) as u8;
        i += 1;
    }
    t
};

/// MXFP4: `u = KVALUES_MXFP4[q] + 12`, scale `e8m0_to_f32_half(e)`, bias `-12 * scale`.
impl Codec for BlockMXFP4 {
    const QUADS: usize = 256;
    const PER_ROW: usize = 16;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, _s: usize) -> [__m512i; 8] {
        // SAFETY: the table is 64 bytes.
        let table = unsafe { ld(MXFP4_U.as_ptr(), 0) };
        // SAFETY: chunks 0..4 are the group's 256 bytes (the caller's contract).
        let mut w = unsafe { nibbles_4x2(q, 0) };
        for v in &mut w {
            *v = _mm512_shuffle_epi8(table, *v);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 16 exponent bytes, row r at byte r (the caller's contract: 16
        // bytes); the load is unaligned.
        let e = _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(p.cast()) });
        // e8m0_to_f32_half: (e - 1) << 23 (the exponent field) from e = 2 on, and the
        // subnormals 0x0020_0000 << e below (lanes e = 0, 1, whose first form is wrong).
        let normal = _mm512_slli_epi32::<23>(_mm512_sub_epi32(e, _mm512_set1_epi32(1)));
        let small = _mm512_cmplt_epu32_mask(e, _mm512_set1_epi32(2));
        let bits = _mm512_mask_sllv_epi32(normal, small, _mm512_set1_epi32(0x0020_0000), e);
        let d = _mm512_castsi512_ps(bits);
        out.scale[0] = d;
        out.bias[0] = _mm512_mul_ps(_mm512_set1_ps(-f32::from(U_OFFSET)), d);
    }
}
