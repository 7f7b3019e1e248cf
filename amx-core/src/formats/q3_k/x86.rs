//! Q3_K's AVX-512 decoder. The low 2 bits come as in Q2_K (bits `2j, 2j + 1` of packed
//! qs chunk `c` (0..16) are decoded chunk `32(c/8) + 8j + c%8`); bit `t` of packed hmask
//! chunk `c` (0..8) is bit 2 of decoded chunk `8t + c`. So the 16-value sub-block `s`
//! takes qs chunks `8(s/8) + 4(s%2) + i` and hmask chunks `4(s%2) + i`, `i < 4`, the
//! latter's bit `4(s/8) + (s%8)/2`. The 12 bytes of 6-bit scales of the 16 rows are
//! transposed as Q4_K's.

use core::arch::x86_64::{
    __m512, __m512i, _mm512_and_si512, _mm512_cvtepi32_ps, _mm512_mask_add_epi8, _mm512_mul_ps,
    _mm512_or_si512, _mm512_set1_epi8, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr4_epi32,
    _mm512_setzero_si512, _mm512_shuffle_epi8, _mm512_slli_epi32, _mm512_srai_epi16,
    _mm512_srli_epi32, _mm512_sub_epi8, _mm512_sub_epi32, _mm512_test_epi8_mask,
};

use super::BlockQ3_K;
use crate::formats::codec::{Affine, Codec, byte_u, f16x16, ld};
use crate::formats::int_scales::{IntAffine, Scales};
use crate::formats::q2_k::x86::crumb;
use crate::formats::q4_k::x86::rows12_dwords;

/// Q3_K: `u` = the 3-bit value, scale `d * (sc - 32)`, bias `-4 * scale` per 16 values.
impl Codec for BlockQ3_K {
    const QUADS: usize = 1536;
    const PER_ROW: usize = 224;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        let (h, j, i0) = (s / 8, s % 8 / 2, 4 * (s % 2));
        // The hmask bit of this sub-block, in every byte.
        let bit = _mm512_set1_epi8((1u8 << (4 * h + j)) as i8);
        let four = _mm512_set1_epi8(4);
        let mut w = [_mm512_setzero_si512(); 8];
        for (i, wi) in w.iter_mut().take(4).enumerate() {
            // SAFETY: qs chunk 8h + i0 + i < 16 and hmask chunk i0 + i < 8 (at 1024 bytes,
            // after the 16 qs chunks) for s < 16 (the caller's contract).
            let (v, hm) = unsafe { (ld(q, 64 * (8 * h + i0 + i)), ld(q, 1024 + 64 * (i0 + i))) };
            let low = crumb(v, j);
            // Adding 4 where the bit is set is or-ing it in as bit 2: `low` is at most 3.
            *wi = _mm512_mask_add_epi8(low, _mm512_test_epi8_mask(hm, bit), low, four);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the caller's contract.
        let (d, sc) = unsafe { d_and_scales(p) };
        for (g, scg) in sc.into_iter().enumerate() {
            for b in 0..4 {
                let signed = _mm512_sub_epi32(byte_u(scg, b as i32), _mm512_set1_epi32(32));
                let scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(signed));
                out.scale[4 * g + b] = scale;
                out.bias[4 * g + b] = _mm512_mul_ps(_mm512_set1_ps(-4.0), scale);
            }
        }
    }

    /// `alpha = d / 64`, `a = 64 (sc - 32)`, `c = -256 (sc - 32)`: `T = 64 * sum (sc -
    /// 32) (S - 4 I)`, exact (`|S - 4 I| <= 16 * 4 * 128`, so `T / 64` is below 2^24, and
    /// each partial sum below 2^31).
    const SCALES: Scales = Scales::Int { c: true, bias: false, fold: false };

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn int_affine(p: *const u8, out: &mut IntAffine) {
        // SAFETY: the caller's contract.
        let (d, sc) = unsafe { d_and_scales(p) };
        out.alpha = _mm512_mul_ps(d, _mm512_set1_ps(1.0 / 64.0));
        for (g, scg) in sc.into_iter().enumerate() {
            // sc - 32 and 32 - sc as signed bytes (-32..=31 and -31..=32).
            let signed = _mm512_sub_epi8(scg, _mm512_set1_epi8(32));
            let negated = _mm512_sub_epi8(_mm512_set1_epi8(32), scg);
            for b in 0..4 {
                // Byte b as the high byte of the low i16 (256 (sc - 32)), shifted down
                // arithmetically to 64 (sc - 32); the high i16 stays zero.
                out.a[4 * g + b] = _mm512_srai_epi16::<2>(high_bytes(signed, b as i32, None));
            }
            for h in 0..2 {
                out.c[2 * g + h] = high_bytes(negated, 2 * h as i32, Some(2 * h as i32 + 1));
            }
        }
    }
}

/// The 16 rows' `d` and 6-bit sub-block scales (0..=63): scale `4g + b` in byte `b` of
/// each row's dword of `sc[g]`.
///
/// # Safety
///
/// The CPU has AVX-512 F/BW/VL; `p` is readable for the 224 bytes of a group's per-row
/// data (16 `d`, then per row the 12 bytes of scales).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn d_and_scales(p: *const u8) -> (__m512, [__m512i; 4]) {
    // SAFETY: all reads are inside the 224 bytes (the caller's contract).
    let (d, z) = unsafe { (f16x16(p, 0), [ld(p, 32), ld(p, 96), ld(p, 160)]) };
    let w = rows12_dwords(z);
    // unpack_scales_k3, four sub-blocks per dword byte lane: scale 4g + b from byte b
    // of `sc[g]`. The 32-bit shifts move bits across bytes only into bits the masks
    // drop.
    let (m0f, m30) = (_mm512_set1_epi8(0x0f), _mm512_set1_epi8(0x30));
    let join = |lo, hi| _mm512_or_si512(_mm512_and_si512(lo, m0f), _mm512_and_si512(hi, m30));
    let sc = [
        join(w[0], _mm512_slli_epi32::<4>(w[2])),
        join(w[1], _mm512_slli_epi32::<2>(w[2])),
        join(_mm512_srli_epi32::<4>(w[0]), w[2]),
        join(_mm512_srli_epi32::<4>(w[1]), _mm512_srli_epi32::<2>(w[2])),
    ];
    (d, sc)
}

/// Byte `lo` (0..4) of every dword as the high byte of the dword's low i16 (the signed
/// byte times 256), and byte `hi` as that of its high i16 (zero for `None`); the low
/// bytes of both zero.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn high_bytes(x: __m512i, lo: i32, hi: Option<i32>) -> __m512i {
    // vpshufb: byte j of dword i is byte 4i + j; control bytes with bit 7 set give zero.
    let ctrl = |i: i32| {
        let top = hi.map_or(0x80, |hi| 4 * i + hi);
        (top << 24) | 0x0080_0000 | ((4 * i + lo) << 8) | 0x80
    };
    _mm512_shuffle_epi8(x, _mm512_setr4_epi32(ctrl(0), ctrl(1), ctrl(2), ctrl(3)))
}
