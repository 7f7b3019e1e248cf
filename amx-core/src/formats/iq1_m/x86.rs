//! IQ1_M's AVX-512 decoder. Decoded chunk `j` (`j < 4`) of sub-block `b` (values
//! `16b + 4j .. 16b + 4j + 4`) is half `j % 2` of one grid entry per row, index
//! `q = 2b + j / 2`: its low 8 bits are byte `2 (b % 2) + j / 2` of qs chunk `b / 2`, its
//! high 3 bits and the delta sign the nibble `j / 2` of `qh[b]` (byte `b % 4` of qh chunk
//! `8 + b / 4`). An entry's eight values `g + 1` come from IQ1_S's grid by its qword
//! gathers ([`grid_halves`]); `u = 8 (g + 1)` by a shift, plus 2 in every
//! byte where the delta is positive. The per-row `scales` (8 bytes, row `r` at `8r`) are
//! read by two `vpgatherdd` (their low and high dwords), which give `d`'s f16 bits and
//! every 3-bit scale.

use core::arch::x86_64::{
    __m512i, _mm256_storeu_si256, _mm512_add_epi32, _mm512_and_si512, _mm512_cvtepi32_epi16,
    _mm512_cvtepi32_ps, _mm512_i32gather_epi32, _mm512_mask_add_epi32, _mm512_mul_ps,
    _mm512_or_si512, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32, _mm512_setzero_si512,
    _mm512_slli_epi32, _mm512_srli_epi32, _mm512_srlv_epi32, _mm512_testn_epi32_mask,
};

use super::BlockIQ1_M;
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld};
use crate::formats::iq1_s::x86::grid_halves;

/// IQ1_M: `u = 8 (g + 1) + 1 + 8 delta`, scale `dl * 0.125`, bias `scale * -9`.
impl Codec for BlockIQ1_M {
    const QUADS: usize = 768;
    const PER_ROW: usize = 128;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, b: usize) -> [__m512i; 8] {
        let b = b % 16;
        // SAFETY: qs chunk b / 2 < 8 and qh chunk 8 + b / 4 < 12 lie in the group's 768
        // quads bytes (the caller's contract).
        let (qs, qh) = unsafe { (ld(q, 64 * (b / 2)), ld(q, 64 * (8 + b / 4))) };
        let qh = byte_u(qh, (b % 4) as i32);
        let mut w = [_mm512_setzero_si512(); 8];
        for l in 0..2 {
            let nib = _mm512_srlv_epi32(qh, _mm512_set1_epi32(4 * l as i32));
            let nib = _mm512_and_si512(nib, _mm512_set1_epi32(0xf));
            let high = _mm512_slli_epi32::<8>(_mm512_and_si512(nib, _mm512_set1_epi32(7)));
            let idx = _mm512_or_si512(byte_u(qs, (2 * (b % 2) + l) as i32), high);
            // SAFETY: idx < 2048 (8 + 3 bits).
            let halves = unsafe { grid_halves(idx) };
            // 8 (g + 1) in each byte (at most 16: no carry into the next byte), plus 2
            // where bit 3 of the nibble (delta negative) is clear.
            let positive = _mm512_testn_epi32_mask(nib, _mm512_set1_epi32(8));
            for (h, g1) in [halves.0, halves.1].into_iter().enumerate() {
                let u = _mm512_slli_epi32::<3>(g1);
                w[2 * l + h] =
                    _mm512_mask_add_epi32(u, positive, u, _mm512_set1_epi32(0x0202_0202));
            }
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        let rows =
            _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
        // SAFETY: row r's two dwords are at 8r and 8r + 4, inside the 128 per-row bytes
        // (the caller's contract).
        let (lo, hi) = unsafe {
            (
                _mm512_i32gather_epi32::<1>(rows, p.cast()),
                _mm512_i32gather_epi32::<1>(rows, p.add(4).cast()),
            )
        };
        // d's f16 bits: the top nibbles of sc0, sc1 (lo), sc2, sc3 (hi) at bits 0, 4, 8, 12.
        let m = |v: __m512i, mask: i32| _mm512_and_si512(v, _mm512_set1_epi32(mask));
        let bits = _mm512_or_si512(
            _mm512_or_si512(
                m(_mm512_srli_epi32::<12>(lo), 0xf),
                m(_mm512_srli_epi32::<24>(lo), 0xf0),
            ),
            _mm512_or_si512(
                m(_mm512_srli_epi32::<4>(hi), 0xf00),
                m(_mm512_srli_epi32::<16>(hi), 0xf000),
            ),
        );
        let mut h = [0u16; 16];
        // SAFETY: `h` is 32 writable bytes; the store is unaligned.
        unsafe { _mm256_storeu_si256(h.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(bits)) };
        // SAFETY: `h` is 32 readable bytes.
        let d = unsafe { f16x16(h.as_ptr().cast(), 0) };
        for s in 0..Self::SUB_BLOCKS {
            let (src, w) = if s < 8 { (lo, s / 4) } else { (hi, s / 4 - 2) };
            let ls = _mm512_srlv_epi32(src, _mm512_set1_epi32((16 * w + 3 * (s % 4)) as i32));
            let ls = m(ls, 7);
            // 2 ls + 1, an exact integer, then d times it as gguf-py's f32 multiply.
            let k = _mm512_add_epi32(_mm512_add_epi32(ls, ls), _mm512_set1_epi32(1));
            let scale =
                _mm512_mul_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(k)), _mm512_set1_ps(0.125));
            out.scale[s] = scale;
            out.bias[s] = _mm512_mul_ps(scale, _mm512_set1_ps(-9.0));
        }
    }
}
