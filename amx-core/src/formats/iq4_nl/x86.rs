//! IQ4_NL's AVX-512 decoder. Packed qs chunk `c` (0..4) gives decoded chunks `c` (its low
//! nibbles) and `4 + c` (its high nibbles), as Q4_0, each nibble then mapped through the
//! table (`codec::iq4nl_u`, a `vpshufb`), as IQ4_XS.

use core::arch::x86_64::{__m512i, _mm512_mul_ps, _mm512_set1_ps};

use super::BlockIQ4_NL;
use crate::formats::codec::{Affine, Codec, f16x16, iq4nl_u, nibbles_4x2};

/// IQ4_NL: `u = KVALUES_IQ4NL[q] ^ 0x80`, scale `d`, bias `-128 d`.
impl Codec for BlockIQ4_NL {
    const QUADS: usize = 256;
    const PER_ROW: usize = 32;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, _s: usize) -> [__m512i; 8] {
        // SAFETY: chunks 0..4 are the group's 256 bytes (the caller's contract).
        iq4nl_u(unsafe { nibbles_4x2(q, 0) })
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
