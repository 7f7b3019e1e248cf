//! The fused VNNI kernel: each sub-block of a group is decoded from the packed chunks
//! straight into registers and taken by `vpdpbusd` at once, with no [`Decoded`] round
//! trip. One monomorphised body per format ([`Codec`]) and row count, so the inner loops
//! are straight-line code.
//!
//! Every output value takes the same float sequence whatever the row block it is
//! computed in (the GEMM contract: any split of the rows gives the same bits): per
//! sub-block, in increasing K, the exact int32 sum of the sub-block's quads, then
//! `t = cvt(sum) * scale`, `acc = fma(t, dx, acc)`, `acc = fma(bias, dx * sum(q), acc)`,
//! with the scales and biases of the decoders (bit-equal to the scalar decoder's).
//!
//! Two copies of the body ([`Grids`]): one looking up the IQ formats' grids by
//! `vpgatherdd`, one by VBMI byte permutes (for the formats with such a codec body).
//!
//! [`Decoded`]: crate::kernels::decode::Decoded
//! [`Grids`]: crate::formats::codec::Grids

use core::arch::x86_64::{
    _MM_HINT_T0, _MM_HINT_T1, _mm_prefetch, _mm512_add_epi32, _mm512_cvtepi32_ps,
    _mm512_dpbusd_epi32, _mm512_fmadd_ps, _mm512_mask_storeu_ps, _mm512_mul_ps, _mm512_set1_epi32,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512,
};
use core::sync::atomic::{Ordering, compiler_fence};

use crate::formats::codec::{Affine, Codec};
use crate::kernels::decode::x86::for_each_sub_block;
use crate::pack::PackedLayout;
use crate::quantize::Q8Layout;

use super::read;

/// The near prefetch runs at least this many bytes ahead, in whole groups.
pub(super) const NEAR_BYTES: usize = 1024;

/// Prefetches sub-block `s`'s share of the `len` bytes of a group's region at `at` (the
/// lines starting in `s * len / subs .. (s + 1) * len / subs`, so that each line is
/// asked for once per group): into L2 at `far` bytes further on, into L1 at `near`.
///
/// The far prefetch runs a whole panel ahead, so that it reads the same region of the
/// next panel, which is next in memory (the quads and the per-row data of a panel are
/// two streams; a fixed distance would send the per-row stream into the next panel's
/// quads). The hardware prefetchers alone leave a single core well short of the read
/// bandwidth. The near prefetch runs whole groups ahead because a group's chunks are not
/// read in address order (Q6_K, Q5_K).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn prefetch(
    at: *const u8,
    (far, near): (usize, usize),
    len: usize,
    s: usize,
    subs: usize,
) {
    let (lo, hi) = (s * len / subs, (s + 1) * len / subs);
    let mut off = lo.div_ceil(64) * 64;
    while off < hi {
        // Prefetches never fault: the addresses may lie past the panel or the buffer.
        // SAFETY: a prefetch is a hint that never faults, whatever the address; the
        // block is needed before Rust 1.93, where `_mm_prefetch` became a safe function
        // (the MSRV is 1.89).
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T1>(at.wrapping_add(far + off).cast());
            _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(near + off).cast());
        }
        off += 64;
    }
}

/// Defines `$name`, the kernel body compiled with `$features`, calling `Codec::$sub_block`
/// (two copies: [`Grids`]' gather and VBMI lookups need different target features, and
/// a codec body inlines only into a caller with all of its features).
///
/// [`Grids`]: crate::formats::codec::Grids
macro_rules! panel_block {
    ($name:ident, $features:literal, $sub_block:ident, $doc:literal) => {
        /// One panel against `R` activation rows, each group's sub-blocks decoded into
        /// registers as the rows take them.
        #[doc = $doc]
        ///
        /// # Safety
        ///
        /// AVX-512 F/BW/VL/VNNI are available (and VBMI for the VBMI body);
        /// [`fits`](crate::kernels::decode::x86::fits)`::<F>(layout, panel)` holds; each
        /// `recs[i]` is a whole Q8 record of `q8` for K = `layout.k()`; each `out[i]` is
        /// writable for the 16 masked columns and written by no one else meanwhile.
        // Not inlined: one body per format and row count is enough code; a call per panel
        // is nothing next to a panel's work.
        #[inline(never)]
        #[target_feature(enable = $features)]
        pub(super) unsafe fn $name<F: Codec, const R: usize>(
            layout: &PackedLayout,
            panel: &[u8],
            q8: Q8Layout,
            recs: [*const u8; R],
            out: [*mut f32; R],
            mask: u16,
        ) {
            let (quads, rows) =
                (panel.as_ptr(), panel.as_ptr().wrapping_add(layout.per_row_offset(0)));
            let (gv, chunks) = (F::SUB_BLOCK * F::SUB_BLOCKS, F::SUB_BLOCK / 4);
            let mut acc = [_mm512_setzero_ps(); R];
            let near_groups = NEAR_BYTES.div_ceil(F::QUADS);
            let far = layout.panel_bytes();
            let split = R <= 2 && F::SUB_BLOCK == 32;
            let mut aff = Affine::zero();
            for g in 0..layout.groups() {
                let (q, p) = (quads.wrapping_add(g * F::QUADS), rows.wrapping_add(g * F::PER_ROW));
                // SAFETY: `fits` puts group g's quads and per-row bytes inside the panel; the CPU
                // has AVX-512 F/BW/VL (and VBMI for the VBMI body).
                unsafe { F::affine_with(q, p, &mut aff) };
                for_each_sub_block!(F::SUB_BLOCKS, |s| {
                    prefetch(q, (far, near_groups * F::QUADS), F::QUADS, s, F::SUB_BLOCKS);
                    prefetch(p, (far, near_groups * F::PER_ROW), F::PER_ROW, s, F::SUB_BLOCKS);
                    // SAFETY: `fits` puts group g's quads and per-row bytes inside the panel and
                    // s < SUB_BLOCKS, so the sub-block read stays in the group; the CPU has
                    // AVX-512 F/BW/VL, and VBMI where this is the VBMI body.
                    let w = unsafe { F::$sub_block(q, p, s) };
                    let k0 = g * gv + s * F::SUB_BLOCK;
                    let dx_at = q8.dx_offset() + 4 * (k0 / 32);
                    let sum_at = if F::SUB_BLOCK == 32 {
                        q8.sum32_offset() + 4 * (k0 / 32)
                    } else {
                        q8.sum16_offset() + 4 * (k0 / 16)
                    };
                    let (scale, bias) = (aff.scale[s], aff.bias[s]);
                    for i in 0..R {
                        let rec = recs[i];
                        // Two independent chains for one or two rows of 32-value sub-blocks (the
                        // int32 sum is exact, so its order does not matter).
                        let mut sums = [_mm512_setzero_si512(); 2];
                        for (j, wj) in w.iter().enumerate().take(chunks) {
                            // SAFETY: k0 + 4j + 4 <= K: the quad lies in the record's values.
                            let x = unsafe { read::<i32>(rec.add(k0 + 4 * j)) };
                            let c = if split { j % 2 } else { 0 };
                            sums[c] = _mm512_dpbusd_epi32(sums[c], *wj, _mm512_set1_epi32(x));
                        }
                        let sum = if split { _mm512_add_epi32(sums[0], sums[1]) } else { sums[0] };
                        // SAFETY: the offset indexes the record's dx array.
                        let dx = unsafe { read::<f32>(rec.add(dx_at)) };
                        // SAFETY: the offset indexes the record's dx * sum array.
                        let dxs = unsafe { read::<f32>(rec.add(sum_at)) };
                        let t = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), scale);
                        acc[i] = _mm512_fmadd_ps(t, _mm512_set1_ps(dx), acc[i]);
                        acc[i] = _mm512_fmadd_ps(bias, _mm512_set1_ps(dxs), acc[i]);
                    }
                    // Keeps the compiler from hoisting the next sub-blocks' loads and decoding
                    // into this one (it would, across the unrolled group, and spill): each
                    // sub-block's chunks live only while its rows take them. Emits no
                    // instruction.
                    compiler_fence(Ordering::SeqCst);
                });
            }
            for i in 0..R {
                // SAFETY: the caller's contract on `out`.
                unsafe { _mm512_mask_storeu_ps(out[i], mask, acc[i]) };
            }
        }
    };
}

panel_block!(
    panel_block,
    "avx512f,avx512bw,avx512vl,avx512vnni",
    sub_block,
    "The grids (IQ formats) by `vpgatherdd`."
);
panel_block!(
    panel_block_vbmi,
    "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi",
    sub_block_vbmi,
    "The grids (IQ formats) by VBMI byte permutes."
);
