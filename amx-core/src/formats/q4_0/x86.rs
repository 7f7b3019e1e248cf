//! Q4_0's AVX-512 decoder. Packed qs chunk `c` (0..4) gives decoded chunks `c` (its low
//! nibbles) and `4 + c` (its high nibbles): the one sub-block is the low, then the high
//! nibbles of qs chunks 0..4.

use core::arch::x86_64::{__m512i, _mm512_mul_ps, _mm512_set1_ps};

use super::BlockQ4_0;
use crate::formats::codec::{Affine, Codec, f16x16, nibbles_4x2};

/// Q4_0: `u` = the nibble, scale `d`, bias `-8 d`.
impl Codec for BlockQ4_0 {
    const QUADS: usize = 256;
    const PER_ROW: usize = 32;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, _s: usize) -> [__m512i; 8] {
        // SAFETY: chunks 0..4 are the group's 256 bytes (the caller's contract).
        unsafe { nibbles_4x2(q, 0) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 32 bytes of the 16 `d` (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        out.scale[0] = d;
        out.bias[0] = _mm512_mul_ps(_mm512_set1_ps(-8.0), d);
    }
}
