//! Q4_1's AVX-512 decoder. Packed qs chunk `c` (0..4) gives decoded chunks `c` (its low
//! nibbles) and `4 + c` (its high nibbles), as Q4_0.

use core::arch::x86_64::__m512i;

use super::BlockQ4_1;
use crate::formats::codec::{Affine, Codec, f16x16, nibbles_4x2};

/// Q4_1: `u` = the nibble, scale `d`, bias `m`.
impl Codec for BlockQ4_1 {
    const QUADS: usize = 256;
    const PER_ROW: usize = 64;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _s: usize) -> [__m512i; 8] {
        // SAFETY: chunks 0..4 are the group's 256 bytes (the caller's contract).
        unsafe { nibbles_4x2(q, 0) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: 16 `d` then 16 `m`, the group's 64 bytes (the caller's contract).
        unsafe {
            out.scale[0] = f16x16(p, 0);
            out.bias[0] = f16x16(p, 32);
        }
    }
}
