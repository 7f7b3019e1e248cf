//! ATTENTION of few queries (decode) on AVX-512: per query head, the scores of sixteen
//! keys at a time (sixteen dot products in registers, reduced together), the softmax, and
//! the weighted values in registers.
//!
//! The reference op computes the same sums in another order (one dot product at a time,
//! the weights divided rather than multiplied by the inverse sum), so the results agree
//! to f32 rounding, not bit for bit. A decode step on SmolLM2 spent a fifth of its time
//! in the reference op at a few hundred positions; this runs it several times faster.
//! It allocates nothing: the scores live in the step's arena.

use core::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_castpd_ps, _mm512_castps_pd, _mm512_fmadd_ps, _mm512_loadu_ps,
    _mm512_mask_storeu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_shuffle_f32x4,
    _mm512_storeu_ps, _mm512_unpackhi_pd, _mm512_unpackhi_ps, _mm512_unpacklo_pd,
    _mm512_unpacklo_ps,
};

use bumpalo::Bump;

use crate::error::ExecError;
use crate::fast_math::{exp_f32, lanes};
use crate::op::{Op, OpDesc};

use super::attention::{MIN_QUERIES, Operands};

/// Whether `op` is an ATTENTION this module runs: fewer than [`MIN_QUERIES`] queries
/// (longer steps take the GEMM form or the reference op), head sizes in whole registers,
/// and a CPU with AVX-512 F.
pub(crate) fn applies(op: &OpDesc) -> bool {
    let (Some(q), Some(v)) = (op.srcs.first(), op.srcs.get(2)) else { return false };
    matches!(op.op, Op::Attention { .. })
        && q.desc.ne[2] < MIN_QUERIES
        && q.desc.ne[0].is_multiple_of(16)
        && v.desc.ne[0].is_multiple_of(16)
        && std::arch::is_x86_feature_detected!("avx512f")
}

/// Runs ATTENTION `op` (checked by the caller, [`applies`]) on `srcs`' plain bytes into
/// `out`, the scores in `scratch`.
///
/// Errors: those of [`Operands::parse`].
pub(crate) fn run(
    op: &OpDesc,
    srcs: &[&[u8]],
    out: &mut [f32],
    scratch: &Bump,
) -> Result<(), ExecError> {
    let a = Operands::parse(op, srcs)?;
    // `applies` reads the head sizes from the same descriptions `Operands` took them from.
    if !applies(op) {
        return Err(ExecError::Sources {
            op: op.name().clone(),
            what: "not a decode ATTENTION with heads in whole registers",
        });
    }
    let scores = scratch.alloc_slice_fill_copy((a.h / a.hkv.max(1)) * (a.p0 + a.t), 0f32);
    // SAFETY: AVX-512 F was detected by `applies` just above.
    unsafe { heads(&a, scores, out) };
    Ok(())
}

/// Query heads whose weighted values are summed together against each value row read.
const HEADS_PER_PASS: usize = 4;

/// Every query of every head (see the module docs). The query heads sharing a key/value
/// head are done together, so that each key and value is read from memory once per
/// query, not once per head (a decode step's caches do not fit the L2 cache).
///
/// # Safety
///
/// The CPU has AVX-512 F; `a.dk` and `a.dv` are multiples of 16; `scores` holds at least
/// `(a.h / a.hkv) * (a.p0 + a.t)` values and `out` `t * h * dv`.
#[target_feature(enable = "avx512f")]
unsafe fn heads(a: &Operands<'_>, scores: &mut [f32], out: &mut [f32]) {
    let (group, all) = (a.h / a.hkv, a.p0 + a.t);
    for ti in 0..a.t {
        let p = a.p0 + ti;
        let lo = if a.window > 0 { (p + 1).saturating_sub(a.window) } else { 0 };
        let len = p + 1 - lo;
        for g in 0..a.hkv {
            let first_head = ti * a.h + g * group;
            for b in (0..len).step_by(16) {
                let n = (len - b).min(16);
                // A short last block repeats its last key; those lanes are not stored.
                let keys: [&[f32]; 16] = core::array::from_fn(|i| a.key(lo + b + i.min(n - 1), g));
                for i in 0..group {
                    let q = &a.q[(first_head + i) * a.dk..][..a.dk];
                    let block = &mut scores[i * all + b..][..n];
                    // SAFETY: AVX-512 F (this function's contract); every key is `dk`
                    // values, a multiple of 16, as is the query; the block holds at most
                    // 16 scores.
                    unsafe { score_block(q, &keys, block, a.scale) };
                }
            }
            for i in 0..group {
                let s = &mut scores[i * all..][..len];
                let max = lanes(s, f32::NEG_INFINITY, |m, x| m.max(x), f32::max);
                for x in s.iter_mut() {
                    *x = exp_f32(*x - max);
                }
                let inv = 1.0 / lanes(s, 0.0, |m, x| m + x, |m, x| m + x);
                for x in s.iter_mut() {
                    *x *= inv;
                }
            }
            let o = &mut out[first_head * a.dv..][..group * a.dv];
            let w = &scores[..group * all];
            let val = |j: usize| a.val(lo + j, g);
            let mut i = 0;
            while i < group {
                let heads = (group - i).min(HEADS_PER_PASS);
                let (w, o) = (&w[i * all..], &mut o[i * a.dv..][..heads * a.dv]);
                // SAFETY: AVX-512 F; `dv` is a multiple of 16; `w` holds `heads` rows
                // of `all >= len` weights and `o` `heads` rows of `dv` values.
                unsafe {
                    match heads {
                        1 => weigh_heads::<1>(w, all, len, &val, o, a.dv),
                        2 => weigh_heads::<2>(w, all, len, &val, o, a.dv),
                        3 => weigh_heads::<3>(w, all, len, &val, o, a.dv),
                        _ => weigh_heads::<HEADS_PER_PASS>(w, all, len, &val, o, a.dv),
                    }
                }
                i += heads;
            }
        }
    }
}

/// `o` row `i < H` = `sum_{j < len} w[i * stride + j] * val(j)`, `dv` values each.
///
/// # Safety
///
/// The CPU has AVX-512 F; `dv` is a multiple of 16; `w` holds `(H - 1) * stride + len`
/// weights, `o` `H * dv` values, and every `val(j)` for `j < len` `dv` values.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn weigh_heads<'v, const H: usize>(
    w: &[f32],
    stride: usize,
    len: usize,
    val: &impl Fn(usize) -> &'v [f32],
    o: &mut [f32],
    dv: usize,
) {
    let mut d = 0;
    while d + 64 <= dv {
        // SAFETY: values `d..d + 64` lie in every row (the caller's contract).
        unsafe { weigh::<H, 4>(w, stride, len, |j| &val(j)[d..], o, d, dv) };
        d += 64;
    }
    while d < dv {
        // SAFETY: `dv` is a multiple of 16, so `d + 16 <= dv`.
        unsafe { weigh::<H, 1>(w, stride, len, |j| &val(j)[d..], o, d, dv) };
        d += 16;
    }
}

/// Values `d..d + 16 C` of [`weigh_heads`]'s rows: the `H x C` sums in registers.
///
/// # Safety
///
/// As [`weigh_heads`], with `d + 16 C <= dv` and every `val(j)` holding `16 C` values.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)] // the weights' and outputs' shapes, spelled out
unsafe fn weigh<'v, const H: usize, const C: usize>(
    w: &[f32],
    stride: usize,
    len: usize,
    val: impl Fn(usize) -> &'v [f32],
    o: &mut [f32],
    d: usize,
    dv: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); C]; H];
    for j in 0..len {
        let row = val(j);
        // SAFETY: `16 C <= row.len()` (the caller's contract).
        let v: [__m512; C] =
            core::array::from_fn(|c| unsafe { _mm512_loadu_ps(row.as_ptr().add(16 * c)) });
        for (i, acc) in acc.iter_mut().enumerate() {
            let wv = _mm512_set1_ps(w[i * stride + j]);
            for (a, x) in acc.iter_mut().zip(v) {
                *a = _mm512_fmadd_ps(wv, x, *a);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (c, a) in acc.iter().enumerate() {
            let at = i * dv + d + 16 * c;
            // SAFETY: `at + 16 <= i * dv + dv <= H * dv <= o.len()` (the caller's
            // contract).
            unsafe { _mm512_storeu_ps(o[at..at + 16].as_mut_ptr(), *a) };
        }
    }
}

/// `block[i] = scale * dot(q, keys[i])` for the block's (at most 16) keys.
///
/// # Safety
///
/// The CPU has AVX-512 F; `q.len()` is a multiple of 16 and every key is as long as
/// `q`; `block.len() <= 16`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn score_block(q: &[f32], keys: &[&[f32]; 16], block: &mut [f32], scale: f32) {
    let n = block.len();
    let mut acc = [_mm512_setzero_ps(); 16];
    for c in (0..q.len()).step_by(16) {
        // SAFETY: `c + 16 <= q.len()`, the length of every key (the caller's contract).
        unsafe {
            let qc = _mm512_loadu_ps(q.as_ptr().add(c));
            for (a, k) in acc.iter_mut().zip(keys) {
                *a = _mm512_fmadd_ps(qc, _mm512_loadu_ps(k.as_ptr().add(c)), *a);
            }
        }
    }
    let s = _mm512_mul_ps(reduce16(acc), _mm512_set1_ps(scale));
    let mask = if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
    // SAFETY: the mask covers the block's `n <= 16` values.
    unsafe { _mm512_mask_storeu_ps(block.as_mut_ptr(), mask, s) };
}

/// Lane `i` = the sum of the sixteen lanes of `v[i]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce16(v: [__m512; 16]) -> __m512 {
    // Pairs: in each 128-bit lane, [a0 + a2, b0 + b2, a1 + a3, b1 + b3].
    let s1: [__m512; 8] = core::array::from_fn(|i| {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b))
    });
    // Quads: s2[i]'s 128-bit lane L holds lane L's sums of v[4i..4i + 4], in order.
    let s2: [__m512; 4] = core::array::from_fn(|i| {
        let (x, y) = (_mm512_castps_pd(s1[2 * i]), _mm512_castps_pd(s1[2 * i + 1]));
        let lo = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
        let hi = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
        _mm512_add_ps(lo, hi)
    });
    // The four 128-bit lanes of each: block i of the result sums s2[i]'s lanes.
    let half = |a: __m512, b: __m512| {
        let t0 = _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b);
        let t1 = _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b);
        _mm512_add_ps(t0, t1)
    };
    let (u0, u1) = (half(s2[0], s2[1]), half(s2[2], s2[3]));
    let w0 = _mm512_shuffle_f32x4::<0b10_00_10_00>(u0, u1);
    let w1 = _mm512_shuffle_f32x4::<0b11_01_11_01>(u0, u1);
    _mm512_add_ps(w0, w1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce16_sums_each_vector_into_its_lane() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: no AVX-512 F on this CPU");
            return;
        }
        let vals: Vec<f32> = (0..256).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
        // SAFETY: AVX-512 F was detected above; each load reads 16 of the 256 values.
        let got: [f32; 16] = unsafe {
            let v = core::array::from_fn(|i| _mm512_loadu_ps(vals[16 * i..].as_ptr()));
            core::mem::transmute(reduce16(v))
        };
        for (i, g) in got.iter().enumerate() {
            let want: f32 = vals[16 * i..16 * i + 16].iter().sum();
            assert_eq!(*g, want, "lane {i}");
        }
    }
}
