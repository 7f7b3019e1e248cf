//! Q8_0's AVX-512 decoder. Packed qs chunk `c` (0..8) is decoded chunk `c`, each byte
//! `^ 0x80`.

use core::arch::x86_64::{
    __m512i, _mm512_mul_ps, _mm512_set1_epi8, _mm512_set1_ps, _mm512_setzero_si512,
    _mm512_xor_si512,
};

use super::BlockQ8_0;
use crate::formats::codec::{Affine, Codec, f16x16, ld};

/// Q8_0: `u = q ^ 0x80`, scale `d`, bias `-128 d`.
impl Codec for BlockQ8_0 {
    const QUADS: usize = 512;
    const PER_ROW: usize = 32;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, _s: usize) -> [__m512i; 8] {
        let flip = _mm512_set1_epi8(i8::MIN);
        let mut w = [_mm512_setzero_si512(); 8];
        for (c, wc) in w.iter_mut().enumerate() {
            // SAFETY: chunks 0..8 are the group's 512 bytes (the caller's contract).
            let v = unsafe { ld(q, 64 * c) };
            *wc = _mm512_xor_si512(v, flip);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 32 bytes of the 16 `d` (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        out.scale[0] = d;
        out.bias[0] = _mm512_mul_ps(_mm512_set1_ps(-128.0), d);
    }
}
