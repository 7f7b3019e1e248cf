//! The fused VNNI kernel for the formats with integer sub-block scales
//! ([`Scales::Int`]: Q2_K, Q3_K): as [`super::fused`], but each pair of 16-value
//! sub-blocks (one activation block) takes the sequence of [`int_scales`]: the two int32
//! sums scaled and added in int32, then one conversion and one multiply-add per row and
//! activation block instead of two of each per sub-block, and the group's parameters
//! computed in integers instead of 32 float vectors.
//!
//! One body: these formats have no VBMI decoder, so the [`Grids`] do not matter.
//!
//! [`int_scales`]: crate::formats::int_scales
//! [`Grids`]: crate::formats::codec::Grids

use core::arch::x86_64::{
    _mm512_add_epi32, _mm512_cvtepi32_ps, _mm512_dpbusd_epi32, _mm512_dpwssd_epi32,
    _mm512_fmadd_ps, _mm512_madd_epi16, _mm512_mask_storeu_ps, _mm512_mul_ps, _mm512_set1_epi32,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512,
};
use core::sync::atomic::{Ordering, compiler_fence};

use crate::formats::codec::Codec;
use crate::formats::int_scales::{FOLD_MIN_ROWS, IntAffine, Scales};
use crate::kernels::decode::x86::for_each_sub_block;
use crate::pack::PackedLayout;
use crate::quantize::Q8Layout;

use super::fused::{NEAR_BYTES, prefetch};
use super::read;

/// One panel against `R` activation rows, for a format with [`Scales::Int`] (16-value
/// sub-blocks); for [`Scales::Float`] it writes zeros (the caller runs
/// [`super::fused`]'s kernel for those).
///
/// # Safety
///
/// AVX-512 F/BW/VL/VNNI are available; [`fits`](crate::kernels::decode::x86::fits)`::<F>(layout,
/// panel)` holds; each `recs[i]` is a whole Q8 record of `q8` for K = `layout.k()`; each
/// `out[i]` is writable for the 16 masked columns and written by no one else meanwhile.
// Not inlined, as the float kernel.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn panel_block<F: Codec, const R: usize>(
    layout: &PackedLayout,
    panel: &[u8],
    q8: Q8Layout,
    recs: [*const u8; R],
    out: [*mut f32; R],
    mask: u16,
) {
    let mut acc = [_mm512_setzero_ps(); R];
    let Scales::Int { c, bias, fold } = F::SCALES else {
        for o in out {
            // SAFETY: the caller's contract on `out`.
            unsafe { _mm512_mask_storeu_ps(o, mask, acc[0]) };
        }
        return;
    };
    const { assert!(matches!(F::SCALES, Scales::Float) || F::SUB_BLOCK == 16) };
    let (quads, rows) = (panel.as_ptr(), panel.as_ptr().wrapping_add(layout.per_row_offset(0)));
    let gv = F::SUB_BLOCK * F::SUB_BLOCKS;
    let near_groups = NEAR_BYTES.div_ceil(F::QUADS);
    let (far, pairs) = (layout.panel_bytes(), F::SUB_BLOCKS / 2);
    let folded = fold && R >= FOLD_MIN_ROWS;
    let mut ia = IntAffine::zero();
    for g in 0..layout.groups() {
        let (q, p) = (quads.wrapping_add(g * F::QUADS), rows.wrapping_add(g * F::PER_ROW));
        // SAFETY: `fits` puts group g's per-row bytes inside the panel; the CPU has AVX-512
        // F/BW/VL.
        unsafe { F::int_affine(p, &mut ia) };
        // Sub-blocks s and s + 1 (s even) are the 32 values of activation block
        // (g * gv) / 32 + s / 2 (odd s are skipped: the unrolling needs constant indices).
        for_each_sub_block!(F::SUB_BLOCKS, |s| {
            if s.is_multiple_of(2) {
                let t = s / 2;
                prefetch(q, (far, near_groups * F::QUADS), F::QUADS, t, pairs);
                prefetch(p, (far, near_groups * F::PER_ROW), F::PER_ROW, t, pairs);
                // SAFETY: `fits` puts group g's quads and per-row bytes inside the panel and
                // s | 1 = s + 1 < SUB_BLOCKS (SUB_BLOCKS is even), so the reads stay in the group;
                // the CPU has AVX-512 F/BW/VL.
                let w = unsafe {
                    if folded {
                        let (a0, a1) = (ia.a[s], ia.a[s | 1]);
                        [F::sub_block_folded(q, p, s, a0), F::sub_block_folded(q, p, s | 1, a1)]
                    } else {
                        [F::sub_block(q, p, s), F::sub_block(q, p, s | 1)]
                    }
                };
                let k0 = g * gv + 32 * t;
                let (dx_at, is_at) = (q8.dx_offset() + k0 / 8, q8.isum16_offset() + k0 / 8);
                let s16_at = q8.sum16_offset() + k0 / 4;
                for i in 0..R {
                    let rec = recs[i];
                    let mut sums = [_mm512_setzero_si512(); 2];
                    for (h, wh) in w.iter().enumerate() {
                        for (j, wj) in wh.iter().enumerate().take(4) {
                            // SAFETY: k0 + 16h + 4j + 4 <= K: the quad lies in the record's
                            // values.
                            let x = unsafe { read::<i32>(rec.add(k0 + 16 * h + 4 * j)) };
                            sums[h] = _mm512_dpbusd_epi32(sums[h], *wj, _mm512_set1_epi32(x));
                        }
                    }
                    // SAFETY: the offsets index the record's dx and i16-sum arrays.
                    let (dx, is) =
                        unsafe { (read::<f32>(rec.add(dx_at)), read::<i32>(rec.add(is_at))) };
                    // The same int32 either way: the scales are in the folded bytes, or
                    // multiply the sums here (`|S| < 2^15`, the high i16 of `a` zero).
                    let mut tt = if folded {
                        _mm512_add_epi32(sums[0], sums[1])
                    } else {
                        let t0 = _mm512_madd_epi16(sums[0], ia.a[s]);
                        _mm512_dpwssd_epi32(t0, sums[1], ia.a[s | 1])
                    };
                    if c {
                        tt = _mm512_dpwssd_epi32(tt, ia.c[t], _mm512_set1_epi32(is));
                    }
                    let f = _mm512_mul_ps(_mm512_cvtepi32_ps(tt), ia.alpha);
                    acc[i] = _mm512_fmadd_ps(f, _mm512_set1_ps(dx), acc[i]);
                    if bias {
                        for h in 0..2 {
                            // SAFETY: the offset indexes the record's dx * sum16 array.
                            let dxs = unsafe { read::<f32>(rec.add(s16_at + 4 * h)) };
                            acc[i] = _mm512_fmadd_ps(ia.bias[s | h], _mm512_set1_ps(dxs), acc[i]);
                        }
                    }
                }
                // As in the float kernel: each pair's chunks live only while its rows take
                // them. Emits no instruction.
                compiler_fence(Ordering::SeqCst);
            }
        });
    }
    for i in 0..R {
        // SAFETY: the caller's contract on `out`.
        unsafe { _mm512_mask_storeu_ps(out[i], mask, acc[i]) };
    }
}
