//! IQ4_XS's AVX-512 decoder. Packed qs chunk `c` (0..32) gives decoded chunks
//! `8(c/4) + c%4` (its low nibbles) and `8(c/4) + 4 + c%4` (its high nibbles): sub-block
//! `s` is the low, then the high nibbles of qs chunks `4s..4s + 4`, each nibble then
//! mapped through the table (`codec::iq4nl_u`, a `vpshufb`).

use core::arch::x86_64::{
    __m512i, _mm256_loadu_si256, _mm512_and_si512, _mm512_cvtepi32_ps, _mm512_cvtepu16_epi32,
    _mm512_mul_ps, _mm512_or_si512, _mm512_rolv_epi32, _mm512_set1_epi32, _mm512_set1_ps,
    _mm512_srlv_epi32, _mm512_sub_epi32,
};

use super::BlockIQ4_XS;
use crate::formats::codec::{Affine, Codec, f16x16, iq4nl_u, ld, nibbles_4x2};

/// IQ4_XS: `u = KVALUES_IQ4NL[q] ^ 0x80`, scale `d * (ls - 32)`, bias `-128 * scale`.
impl Codec for BlockIQ4_XS {
    const QUADS: usize = 2048;
    const PER_ROW: usize = 128;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        // SAFETY: chunks 4s..4s + 4 < 32 for s < 8 (the caller's contract).
        iq4nl_u(unsafe { nibbles_4x2(q, 4 * s) })
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: `d` at 0..32, scales_h at 32..64, scales_l at 64..128 (the caller's
        // contract: 128 bytes).
        let (d, high, low) = unsafe {
            (f16x16(p, 0), _mm512_cvtepu16_epi32(_mm256_loadu_si256(p.add(32).cast())), ld(p, 64))
        };
        for s in 0..8 {
            let l = _mm512_and_si512(
                _mm512_srlv_epi32(low, _mm512_set1_epi32(4 * s)),
                _mm512_set1_epi32(0xf),
            );
            // Bits 2s, 2s + 1 to bits 4, 5: rotate left by 4 - 2s (mod 32).
            let h = _mm512_and_si512(
                _mm512_rolv_epi32(high, _mm512_set1_epi32((4 - 2 * s) & 31)),
                _mm512_set1_epi32(0x30),
            );
            let ls = _mm512_sub_epi32(_mm512_or_si512(l, h), _mm512_set1_epi32(32));
            let sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(ls));
            out.scale[s as usize] = sc;
            out.bias[s as usize] = _mm512_mul_ps(_mm512_set1_ps(-128.0), sc);
        }
    }
}
