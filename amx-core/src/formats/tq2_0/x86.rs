//! TQ2_0's AVX-512 decoder. The quads are Q2_K's `qs`: bits `2j, 2j + 1` of packed qs
//! chunk `c` (0..16) are value `128(c/8) + 32j + 4(c%8) .. + 4`, so the 32-value
//! sub-block `s` is bits `2j, 2j + 1` (`j = s%4`) of qs chunks `8(s/4) + i`, `i < 8`
//! (one shift and one mask per chunk, [`crumb`]). The 16 f16 scales of the per-row
//! region are every sub-block's scale.

use core::arch::x86_64::{__m512i, _mm512_setzero_si512};

use super::BlockTQ2_0;
use crate::formats::codec::{Affine, Codec, f16x16, ld, neg};
use crate::formats::q2_k::x86::crumb;

/// TQ2_0: `u` = the 2-bit value, scale `d`, bias `-d`.
impl Codec for BlockTQ2_0 {
    const QUADS: usize = 1024;
    const PER_ROW: usize = 32;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        let (h, j) = (s / 4, s % 4);
        let mut w = [_mm512_setzero_si512(); 8];
        for (i, wi) in w.iter_mut().enumerate() {
            // SAFETY: qs chunk 8h + i < 16 for s < 8 (the caller's contract).
            let v = unsafe { ld(q, 64 * (8 * h + i)) };
            *wi = crumb(v, j);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 32 bytes of the 16 `d` (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        let bias = neg(d);
        for s in 0..Self::SUB_BLOCKS {
            out.scale[s] = d;
            out.bias[s] = bias;
        }
    }
}
