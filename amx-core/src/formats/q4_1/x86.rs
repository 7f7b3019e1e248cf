//! Q4_1's AVX-512 decoder. Packed qs chunk `c` (0..4) gives decoded chunks `c` (its low
//! nibbles) and `4 + c` (its high nibbles), as Q4_0: the values decode with Q4_0's codec.

use core::arch::x86_64::__m512i;

use super::BlockQ4_1;
use crate::formats::BlockQ4_0;
use crate::formats::codec::{Affine, Codec, f16x16};

/// Q4_1: `u` = the nibble, scale `d`, bias `m`.
impl Codec for BlockQ4_1 {
    const QUADS: usize = 256;
    const PER_ROW: usize = 64;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        // SAFETY: Q4_1's quads are Q4_0's (16 bytes of nibbles in the same order, 256
        // bytes in a panel), and its 64 per-row bytes cover Q4_0's 32, so the caller's
        // contract is Q4_0's.
        unsafe { <BlockQ4_0 as Codec>::sub_block(q, p, s) }
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
