//! Q5_K's AVX-512 decoder. The low nibbles come as in Q4_K (packed qs chunk `c` gives
//! decoded chunks `16(c/8) + c%8` and `16(c/8) + 8 + c%8`); bit `t` of packed qh chunk `c`
//! (0..8) is bit 4 of decoded chunk `8t + c`. The affine maps are Q4_K's.

use core::arch::x86_64::{
    __m512i, _mm512_rolv_epi32, _mm512_set1_epi8, _mm512_set1_epi32, _mm512_setzero_si512,
    _mm512_ternarylogic_epi32,
};

use super::BlockQ5_K;
use crate::formats::codec::{Affine, Codec, ld, nibble};
use crate::formats::q4_k::x86::k4_affine;

/// `a | (b & c)` for `vpternlogd`.
const A_OR_B_AND_C: i32 = 0xf8;

/// Q5_K: `u` = the nibble plus the qh bit as bit 4, affine maps of [`k4_affine`].
impl Codec for BlockQ5_K {
    const QUADS: usize = 2560;
    const PER_ROW: usize = 256;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        // Bit t = s of each qh byte moves to bit 4: rotate the dwords left by 4 - t
        // (mod 32); the bit stays in its byte.
        let rot = _mm512_set1_epi32((4 - s as i32) & 31);
        let mut w = [_mm512_setzero_si512(); 8];
        for (i, wi) in w.iter_mut().enumerate() {
            // SAFETY: qs chunk 8(s/2) + i < 32 and qh chunk i < 8 for s < 8 (the caller's
            // contract).
            let (v, h) = unsafe { (ld(q, 64 * (8 * (s / 2) + i)), ld(q, 2048 + 64 * i)) };
            let high = _mm512_rolv_epi32(h, rot);
            *wi = _mm512_ternarylogic_epi32::<A_OR_B_AND_C>(
                nibble(v, s % 2 == 1),
                high,
                _mm512_set1_epi8(0x10),
            );
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the caller's contract is k4_affine's.
        unsafe { k4_affine(p, out) }
    }
}
