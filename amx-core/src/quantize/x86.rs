//! AVX-512 activation quantizers, bit-identical to [`super::scalar`].
//!
//! `q8_row` takes 16 blocks of 32 values at a time: the per-block abs-max (as integer
//! bits, so a NaN wins), `dx`, its reciprocal and the sums are computed for the 16 blocks
//! in one vector each, with the scalar's f32 operations (a tiny block whose reciprocal
//! overflows divides by `dx`, as the scalar does); the values are rounded to
//! nearest even and narrowed with the saturation and NaN-to-0 of Rust's `as i8`.
//! `bf16_tile_rows` rounds with `vcvtne2ps2bf16`, which matches `f32_to_bf16` (NaNs
//! included) except that it flushes subnormal inputs to zero: 32-value parts holding a
//! subnormal redo those lanes with the scalar's integer rounding.

use core::arch::x86_64::{
    __m512, __m512bh, __m512i, _CMP_EQ_OQ, _CMP_UNORD_Q, _MM_FROUND_NO_EXC,
    _MM_FROUND_TO_NEAREST_INT, _mm_storeu_si128, _mm512_add_epi32, _mm512_and_si512,
    _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmp_ps_mask, _mm512_cmpgt_epu32_mask,
    _mm512_cmplt_epu32_mask, _mm512_cvtepi32_epi8, _mm512_cvtepi32_ps, _mm512_cvtne2ps_pbh,
    _mm512_div_ps, _mm512_loadu_epi16, _mm512_loadu_ps, _mm512_mask_blend_epi16,
    _mm512_mask_mov_ps, _mm512_mask_storeu_epi16, _mm512_mask_storeu_ps,
    _mm512_maskz_cvt_roundps_epi32, _mm512_maskz_div_ps, _mm512_maskz_loadu_ps, _mm512_max_epu32,
    _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_or_si512, _mm512_permutex2var_epi16,
    _mm512_permutex2var_ps, _mm512_set1_epi16, _mm512_set1_epi32, _mm512_set1_ps,
    _mm512_setr_epi32, _mm512_setzero_ps, _mm512_setzero_si512, _mm512_shuffle_i32x4,
    _mm512_shuffle_ps, _mm512_slli_epi32, _mm512_srli_epi32, _mm512_storeu_ps, _mm512_storeu_si512,
    _mm512_test_epi32_mask, _mm512_testn_epi16_mask, _mm512_testn_epi32_mask,
    _mm512_unpackhi_epi64, _mm512_unpacklo_epi64,
};

use super::{Q8Layout, TileLayout};

/// 16 f32 at `x[at..at + 16]`, or zeros when `at >= x.len()` (`x.len()` is a multiple of
/// 16, so a chunk is either wholly there or wholly missing).
#[inline]
#[target_feature(enable = "avx512f")]
fn ld(x: &[f32], at: usize) -> __m512 {
    match x.get(at..at + 16) {
        // SAFETY: `s` is 16 readable f32; the full mask reads all of them.
        Some(s) => unsafe { _mm512_maskz_loadu_ps(u16::MAX, s.as_ptr()) },
        None => _mm512_setzero_ps(),
    }
}

/// The scalar's `round_ties_even(t) as i8`, widened to i32, per lane (`t` is `v * inv`,
/// or `v / dx` in a tiny block).
///
/// The scalar rounds with `(t + 1.5 * 2^23) - 1.5 * 2^23`, which is round-to-nearest-even
/// for `|t| < 2^22` and otherwise stays beyond `[-128, 127]` with the sign of `t`; `as
/// i8` then saturates and maps NaN to 0. Here: clamp to `[-128, 127]` (so the sums see
/// the saturated values), round to nearest even, NaN lanes zeroed.
#[inline]
#[target_feature(enable = "avx512f")]
fn quantize16(t: __m512) -> __m512i {
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(t, t);
    let clamped = _mm512_max_ps(_mm512_min_ps(t, _mm512_set1_ps(127.0)), _mm512_set1_ps(-128.0));
    _mm512_maskz_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        !nan, clamped,
    )
}

/// `op` of all 16 lanes of each `v[b]`, in lane `b`.
///
/// Four halving steps, each combining two vectors into one (256-bit halves, 128-bit
/// blocks, 64-bit pairs, then 32-bit lanes); after them lane `4j + t` holds source
/// `j + 4t`, so source `s` is fed `v[4 (s % 4) + s / 4]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose_reduce<const ADD: bool>(v: &[__m512i; 16]) -> __m512i {
    let op = |a, b| if ADD { _mm512_add_epi32(a, b) } else { _mm512_max_epu32(a, b) };
    let src = |s: usize| v[4 * (s % 4) + s / 4];
    // Blocks 0, 1: source 2i; blocks 2, 3: source 2i + 1.
    let r: [__m512i; 8] = core::array::from_fn(|i| {
        let (a, b) = (src(2 * i), src(2 * i + 1));
        op(_mm512_shuffle_i32x4::<0x44>(a, b), _mm512_shuffle_i32x4::<0xee>(a, b))
    });
    // Block j: source 4i + j.
    let s: [__m512i; 4] = core::array::from_fn(|i| {
        let (a, b) = (r[2 * i], r[2 * i + 1]);
        op(_mm512_shuffle_i32x4::<0x88>(a, b), _mm512_shuffle_i32x4::<0xdd>(a, b))
    });
    // Block j: lanes 0, 1 source 8i + j, lanes 2, 3 source 8i + 4 + j.
    let u: [__m512i; 2] = core::array::from_fn(|i| {
        let (a, b) = (s[2 * i], s[2 * i + 1]);
        op(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
    });
    // Block j, lane t: source j + 4t.
    let (a, b) = (_mm512_castsi512_ps(u[0]), _mm512_castsi512_ps(u[1]));
    op(
        _mm512_castps_si512(_mm512_shuffle_ps::<0x88>(a, b)),
        _mm512_castps_si512(_mm512_shuffle_ps::<0xdd>(a, b)),
    )
}

/// Stores the first `lanes` f32 of `v` into `dst` (`4 * lanes` bytes, `lanes <= 16`).
#[inline]
#[target_feature(enable = "avx512f")]
fn store_f32(dst: &mut [u8], lanes: usize, v: __m512) {
    let Some(d) = dst.get_mut(..4 * lanes) else { return };
    let mask = if lanes >= 16 { u16::MAX } else { (1u16 << lanes) - 1 };
    // SAFETY: the mask writes the first `lanes` f32, the `4 * lanes` bytes of `d`.
    unsafe { _mm512_mask_storeu_ps(d.as_mut_ptr().cast(), mask, v) }
}

/// Quantizes up to 16 blocks: `x` (`32 * nb` values, `1 <= nb <= 16`) into `qs` (as many
/// bytes), their `dx` into `dx` (`4 nb` bytes), `dx * sum32` into `s32` (`4 nb`),
/// `dx * sum16` into `s16` (`8 nb`), `sum16` as i16 into `is16` (`4 nb`). Every per-block
/// quantity is computed for 16 blocks at once (missing blocks are zeros, and are not
/// stored).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn blocks16(x: &[f32], qs: &mut [u8], dx_out: &mut [u8], sums: [&mut [u8]; 3]) {
    let [s32, s16, is16] = sums;
    let nb = (x.len() / 32).min(16);
    let abs = _mm512_set1_epi32(i32::MAX);
    // |v| as bits: non-negative floats order as integers, and NaNs above infinity.
    let amax: [__m512i; 16] = core::array::from_fn(|b| {
        let (v0, v1) = (ld(x, 32 * b), ld(x, 32 * b + 16));
        let a0 = _mm512_and_si512(_mm512_castps_si512(v0), abs);
        _mm512_max_epu32(a0, _mm512_and_si512(_mm512_castps_si512(v1), abs))
    });
    let amax = transpose_reduce::<false>(&amax);
    let inf = _mm512_set1_epi32(0x7f80_0000);
    let nan = _mm512_cmpgt_epu32_mask(amax, inf);
    let dx = _mm512_div_ps(_mm512_castsi512_ps(amax), _mm512_set1_ps(127.0));
    let dx = _mm512_mask_mov_ps(dx, nan, _mm512_set1_ps(f32::NAN));
    // dx is never negative: 0 < bits < infinity is "non-zero and finite".
    let bits = _mm512_castps_si512(dx);
    let ok =
        _mm512_cmpgt_epu32_mask(bits, _mm512_setzero_si512()) & _mm512_cmplt_epu32_mask(bits, inf);
    let (mut inv, mut dxs) = ([0f32; 16], [0f32; 16]);
    let inv_v = _mm512_maskz_div_ps(ok, _mm512_set1_ps(1.0), dx);
    // Blocks whose 1 / dx overflowed (max|x| below ~3.7e-37) divide by dx instead, as
    // the scalar does; they are rare, so the common case keeps its multiply.
    let tiny = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(inv_v, _mm512_set1_ps(f32::INFINITY));
    // SAFETY: `inv` and `dxs` are 16 writable f32 each.
    unsafe {
        _mm512_storeu_ps(inv.as_mut_ptr(), inv_v);
        if tiny != 0 {
            _mm512_storeu_ps(dxs.as_mut_ptr(), dx);
        }
    }
    let zero = _mm512_setzero_si512();
    let (mut q0s, mut q1s) = ([zero; 16], [zero; 16]);
    for (b, q) in qs.chunks_exact_mut(32).enumerate().take(nb) {
        let (v0, v1) = (ld(x, 32 * b), ld(x, 32 * b + 16));
        let (t0, t1) = if tiny & (1 << b) != 0 {
            let d = _mm512_set1_ps(dxs[b]);
            (_mm512_div_ps(v0, d), _mm512_div_ps(v1, d))
        } else {
            let iv = _mm512_set1_ps(inv[b]);
            (_mm512_mul_ps(v0, iv), _mm512_mul_ps(v1, iv))
        };
        let (q0, q1) = (quantize16(t0), quantize16(t1));
        // SAFETY: `q` is 32 writable bytes; each store writes 16 of them, unaligned.
        unsafe {
            _mm_storeu_si128(q.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128(q.as_mut_ptr().add(16).cast(), _mm512_cvtepi32_epi8(q1));
        }
        (q0s[b], q1s[b]) = (q0, q1);
    }
    let (s0, s1) = (transpose_reduce::<true>(&q0s), transpose_reduce::<true>(&q1s));
    let scaled = |s| _mm512_mul_ps(dx, _mm512_cvtepi32_ps(s));
    let (f0, f1) = (scaled(s0), scaled(s1));
    store_f32(dx_out, nb, dx);
    store_f32(s32, nb, scaled(_mm512_add_epi32(s0, s1)));
    // Interleave: block b's two halves at 2b, 2b + 1.
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    store_f32(s16, (2 * nb).min(16), _mm512_permutex2var_ps(f0, lo, f1));
    if nb > 8 {
        store_f32(&mut s16[64..], 2 * nb - 16, _mm512_permutex2var_ps(f0, hi, f1));
    }
    // Block b's two integer sums as the i16 pair of dword b (|sum| <= 16 * 128).
    let low = _mm512_and_si512(s0, _mm512_set1_epi32(0xffff));
    let pairs = _mm512_or_si512(low, _mm512_slli_epi32::<16>(s1));
    store_f32(is16, nb, _mm512_castsi512_ps(pairs));
}

/// Quantizes one row `x` into its Q8 record `out`, exactly as [`super::scalar::q8_row`]
/// (`x.len()` a multiple of 32, `out` at least `Q8Layout { k: x.len() }.row_bytes()`
/// long). Does nothing when `out` is too short for the record's arrays.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn q8_row(x: &[f32], out: &mut [u8]) {
    let l = Q8Layout { k: x.len() };
    let blocks = l.k / 32;
    if out.len() < l.isum16_offset() + 4 * blocks {
        return;
    }
    let (qs, rest) = out.split_at_mut(l.k);
    let (dx, rest) = rest.split_at_mut(4 * blocks);
    let (s32, rest) = rest.split_at_mut(4 * blocks);
    let (s16, is16) = rest.split_at_mut(8 * blocks);
    let mut b0 = 0;
    while b0 < blocks {
        let nb = (blocks - b0).min(16);
        let (x, qs) = (&x[32 * b0..32 * (b0 + nb)], &mut qs[32 * b0..32 * (b0 + nb)]);
        let sums = [&mut s32[4 * b0..], &mut s16[8 * b0..], &mut is16[4 * b0..]];
        blocks16(x, qs, &mut dx[4 * b0..], sums);
        b0 += nb;
    }
}

/// `f32_to_bf16` of 16 non-NaN lanes by the scalar's integer rounding, in the low half of
/// each dword.
#[inline]
#[target_feature(enable = "avx512f")]
fn bf16_round(v: __m512) -> __m512i {
    let bits = _mm512_castps_si512(v);
    let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
    let biased = _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb);
    _mm512_srli_epi32::<16>(biased)
}

/// Lanes of `v` holding a subnormal (zero exponent, non-zero mantissa).
#[inline]
#[target_feature(enable = "avx512f")]
fn subnormal(v: __m512) -> u16 {
    let bits = _mm512_castps_si512(v);
    let mantissa = _mm512_test_epi32_mask(bits, _mm512_set1_epi32(0x007f_ffff));
    mantissa & _mm512_testn_epi32_mask(bits, _mm512_set1_epi32(0x7f80_0000))
}

/// Word `2i` of two dword vectors (their low halves, lanes 0..16 then 16..32), the
/// indices of `vpermt2w`.
const EVENS: [i16; 32] = {
    let mut w = [0i16; 32];
    let mut i = 0;
    while i < 32 {
        w[i] = 2 * i as i16;
        i += 1;
    }
    w
};

/// `f32_to_bf16` of the 32 values `lo` (first 16) and `hi`, as 32 words.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
fn to_bf16(lo: __m512, hi: __m512, evens: __m512i) -> __m512i {
    let bf = bh_bits(_mm512_cvtne2ps_pbh(hi, lo));
    // A subnormal input comes out as a signed zero: look closer only when there is one.
    if _mm512_testn_epi16_mask(bf, _mm512_set1_epi16(0x7fff)) == 0 {
        return bf;
    }
    let sub = u32::from(subnormal(lo)) | (u32::from(subnormal(hi)) << 16);
    if sub == 0 {
        return bf;
    }
    let exact = _mm512_permutex2var_epi16(bf16_round(lo), evens, bf16_round(hi));
    _mm512_mask_blend_epi16(sub, bf, exact)
}

/// Writes each row `(i, x)` of `rows` into its BF16 tiles in `out`, exactly as
/// [`super::scalar::bf16_tile_rows`]. Row parts whose 64 bytes would lie past the end of
/// `out` are skipped (the scalar one would panic there).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub(crate) fn bf16_tile_rows<'a>(
    layout: &TileLayout,
    rows: impl Iterator<Item = (usize, &'a [f32])>,
    out: &mut [u8],
) {
    // SAFETY: `EVENS` is 32 readable i16.
    let evens = unsafe { _mm512_loadu_epi16(EVENS.as_ptr()) };
    for (i, row) in rows {
        // Part `kt` of the row goes to `first + 1024 kt`; parts `..fit` lie inside `out`.
        let first = layout.tile(i / 16, 0) + 64 * (i % 16);
        let fit = match out.len().checked_sub(first).and_then(|room| room.checked_sub(64)) {
            Some(spare) => spare / 1024 + 1,
            None => 0,
        };
        let whole = row.chunks_exact(32);
        let tail = whole.remainder();
        let full = whole.len().min(fit);
        for (kt, vals) in whole.take(fit).enumerate() {
            let p = vals.as_ptr();
            // SAFETY: `vals` is 32 readable f32; `kt < fit`, so the 64 bytes at
            // `first + 1024 kt` are inside `out`.
            unsafe {
                let bf = to_bf16(_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)), evens);
                _mm512_storeu_si512(out.as_mut_ptr().add(first + 1024 * kt).cast(), bf);
            }
        }
        if !tail.is_empty() && full < fit {
            let mask = (1u32 << tail.len()) - 1;
            let p = tail.as_ptr();
            // SAFETY: the masks select the `tail.len() < 32` readable f32 at `p` (lanes
            // outside a mask are not read, so the second address may be past them) and
            // write `2 tail.len()` of the 64 bytes at `first + 1024 full`, inside `out`
            // since `full < fit`.
            unsafe {
                let lo = _mm512_maskz_loadu_ps(mask as u16, p);
                let hi = _mm512_maskz_loadu_ps((mask >> 16) as u16, p.wrapping_add(16));
                let dst = out.as_mut_ptr().add(first + 1024 * full);
                _mm512_mask_storeu_epi16(dst.cast(), mask, to_bf16(lo, hi, evens));
            }
        }
    }
}

/// The bits of 32 BF16 values as an integer vector.
#[inline]
fn bh_bits(v: __m512bh) -> __m512i {
    // SAFETY: both are 64 bytes of plain integer bits, every pattern valid.
    unsafe { core::mem::transmute::<__m512bh, __m512i>(v) }
}
