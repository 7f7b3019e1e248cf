//! Q5_1's AVX-512 decoder: the values decode as Q5_0's (the same quads, bit 4 of each
//! value from the per-row `qh`), which follows `d` and `m` here.

use core::arch::x86_64::__m512i;

use super::BlockQ5_1;
use crate::formats::codec::{Affine, Codec, f16x16, ld, nibbles_4x2, with_fifth_bits};

/// Q5_1: `u` = the 5-bit value, scale `d`, bias `m`. Per-row region: 16 `d` (32 bytes),
/// 16 `m` (32 bytes), then 16 `qh` (64 bytes).
impl Codec for BlockQ5_1 {
    const QUADS: usize = 256;
    const PER_ROW: usize = 128;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, _s: usize) -> [__m512i; 8] {
        // SAFETY: chunks 0..4 are the group's 256 bytes of quads, and the 64 bytes of
        // `qh` at 64 end at the group's 128 per-row bytes (the caller's contract).
        let (n, qh) = unsafe { (nibbles_4x2(q, 0), ld(p, 64)) };
        with_fifth_bits(n, qh)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: 16 `d` at 0..32 then 16 `m` at 32..64, inside the group's 128 per-row
        // bytes (the caller's contract).
        unsafe {
            out.scale[0] = f16x16(p, 0);
            out.bias[0] = f16x16(p, 32);
        }
    }
}
