//! Q5_0's AVX-512 decoder. Packed qs chunk `c` (0..4) gives the low 4 bits of decoded
//! chunks `c` (its low nibbles) and `4 + c` (its high nibbles), as Q4_0; bit 4 of each
//! value comes from the per-row `qh` (16 rows' `qh` are one 64-byte vector after the
//! scales, row `r` at dword `r`).

use core::arch::x86_64::{__m512i, _mm512_mul_ps, _mm512_set1_ps};

use super::BlockQ5_0;
use crate::formats::codec::{Affine, Codec, f16x16, ld, nibbles_4x2, with_fifth_bits};

/// Q5_0: `u` = the 5-bit value, scale `d`, bias `-16 d`. Per-row region: 16 `d` (32
/// bytes), then 16 `qh` (64 bytes).
impl Codec for BlockQ5_0 {
    const QUADS: usize = 256;
    const PER_ROW: usize = 96;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, _s: usize) -> [__m512i; 8] {
        // SAFETY: chunks 0..4 are the group's 256 bytes of quads, and the 64 bytes of
        // `qh` at 32 end at the group's 96 per-row bytes (the caller's contract).
        let (n, qh) = unsafe { (nibbles_4x2(q, 0), ld(p, 32)) };
        with_fifth_bits(n, qh)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 32 bytes of the 16 `d`, inside the 96 per-row bytes (the caller's
        // contract).
        let d = unsafe { f16x16(p, 0) };
        out.scale[0] = d;
        out.bias[0] = _mm512_mul_ps(_mm512_set1_ps(-16.0), d);
    }
}
