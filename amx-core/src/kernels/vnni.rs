//! The AVX-512 VNNI path, for small M (decode-time matmuls).
//!
//! Quantized weights: each group of a panel is decoded once per block of up to
//! [`ROWS`] activation rows into unsigned bytes with a per-row affine map (see
//! [`super::decode`]); `vpdpbusd` takes the bytes (unsigned operand) against broadcast
//! quads of int8 activations (signed operand), one int32 sum per row of the panel and
//! sub-block, and the sum becomes `dx * (scale * sum + bias * sum(q))` in f32.
//!
//! F16/BF16 weights: each packed chunk holds a pair of values per row; both are widened
//! to f32 and multiplied with broadcast f32 activations.

use core::arch::x86_64::{
    __m512, __m512i, _MM_HINT_T0, _MM_HINT_T1, _mm_prefetch, _mm512_and_si512, _mm512_castsi512_ps,
    _mm512_cvtepi32_epi16, _mm512_cvtepi32_ps, _mm512_cvtph_ps, _mm512_dpbusd_epi32,
    _mm512_fmadd_ps, _mm512_loadu_epi32, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_mul_ps,
    _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512, _mm512_slli_epi32,
    _mm512_srli_epi32,
};

use crate::formats::Format;
use crate::gemm::PreparedKind;
use crate::pack::{PANEL_ROWS, PackedLayout, group_values};
use crate::quantize::Q8Layout;

use super::Job;
use super::decode::{DecodeFn, Decoded, span_groups, sub_block};

/// Activation rows computed together against one decoded group (each row block decodes
/// the panel once).
pub(crate) const ROWS: usize = 8;

/// The mask of the valid columns of panel `p` (`n` columns in all).
fn column_mask(n: usize, p: usize) -> u16 {
    let valid = (n - p * PANEL_ROWS).min(PANEL_ROWS);
    if valid == PANEL_ROWS { u16::MAX } else { (1u16 << valid) - 1 }
}

/// How far ahead of the group being decoded the weights are prefetched, in bytes: enough
/// lines in flight to cover DRAM latency at full bandwidth (decode-time matmuls read each
/// weight once, from memory).
const PREFETCH_BYTES: usize = 8192;

/// Prefetches the bytes groups `g..g + count` will read `PREFETCH_BYTES` further on in
/// both regions of the panel (past the panel's end this reaches into the next panel,
/// which is next in memory; prefetches never fault).
#[inline]
#[target_feature(enable = "avx512f")]
fn prefetch_ahead(layout: &PackedLayout, panel: &[u8], g: usize, count: usize) {
    let base = panel.as_ptr();
    let quads = layout.quads_offset(g + count) - layout.quads_offset(g);
    let rows = layout.per_row_offset(g + count) - layout.per_row_offset(g);
    for (start, len) in [(layout.quads_offset(g), quads), (layout.per_row_offset(g), rows)] {
        let mut off = 0;
        while off < len {
            let p = base.wrapping_add(start + PREFETCH_BYTES + off);
            _mm_prefetch::<_MM_HINT_T1>(p.cast());
            _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(start + 512 + off).cast());
            off += 64;
        }
    }
}

/// Reads the little-endian value of type `T` at `p` (any alignment).
///
/// # Safety
///
/// `p` is readable for `size_of::<T>()` bytes.
#[inline(always)]
unsafe fn read<T: Copy>(p: *const u8) -> T {
    // SAFETY: the caller's contract.
    unsafe { p.cast::<T>().read_unaligned() }
}

/// One panel against `R` activation rows: every group decoded once, its sub-blocks'
/// `SB / 4` chunks held in registers while each row takes its `vpdpbusd`s.
///
/// # Safety
///
/// AVX-512 F/BW/VL/VNNI are available and `decode` runs on this CPU; each `recs[i]` is a
/// whole Q8 record of `q8` for K = `layout.k()`; each `out[i]` is writable for the 16
/// masked columns and written by no one else meanwhile; `SB` is the format's sub-block.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn panel_block<const R: usize, const SB: usize>(
    (layout, panel, decode): (&PackedLayout, &[u8], DecodeFn),
    d: &mut Decoded,
    q8: Q8Layout,
    recs: [*const u8; R],
    out: [*mut f32; R],
    mask: u16,
) {
    let gv = group_values(layout.format());
    let span = span_groups(layout.format());
    let mut acc = [_mm512_setzero_ps(); R];
    let mut g = 0;
    while g < layout.groups() {
        let count = span.min(layout.groups() - g);
        prefetch_ahead(layout, panel, g, count);
        // SAFETY: `decode` runs on this CPU (the caller's contract).
        unsafe { decode(layout, panel, g, count, d) };
        for s in 0..count * gv / SB {
            let k0 = g * gv + s * SB;
            // SAFETY: scale/bias rows hold 16 f32; the sub-block's SB / 4 chunks of 64
            // bytes lie inside `d.u` (gv / 4 chunks at most 64 of them).
            let (scale, bias, w) = unsafe {
                let w: [__m512i; 8] = core::array::from_fn(|j| {
                    let j = j.min(SB / 4 - 1);
                    _mm512_loadu_epi32(d.u.as_ptr().add(64 * (s * SB / 4 + j)).cast())
                });
                (_mm512_loadu_ps(d.scale[s].as_ptr()), _mm512_loadu_ps(d.bias[s].as_ptr()), w)
            };
            let (dx_at, sum_at) = (
                q8.dx_offset() + 4 * (k0 / 32),
                if SB == 32 {
                    q8.sum32_offset() + 4 * (k0 / 32)
                } else {
                    q8.sum16_offset() + 4 * (k0 / 16)
                },
            );
            for i in 0..R {
                let rec = recs[i];
                let mut sum = _mm512_setzero_si512();
                for (j, wj) in w.iter().enumerate().take(SB / 4) {
                    // SAFETY: k0 + 4j + 4 <= K: the quad lies in the record's values.
                    let x = unsafe { read::<i32>(rec.add(k0 + 4 * j)) };
                    sum = _mm512_dpbusd_epi32(sum, *wj, _mm512_set1_epi32(x));
                }
                // SAFETY: the offsets index the record's dx and dx * sum arrays.
                let (dx, dxs) =
                    unsafe { (read::<f32>(rec.add(dx_at)), read::<f32>(rec.add(sum_at))) };
                let t = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), scale);
                acc[i] = _mm512_fmadd_ps(t, _mm512_set1_ps(dx), acc[i]);
                acc[i] = _mm512_fmadd_ps(bias, _mm512_set1_ps(dxs), acc[i]);
            }
        }
        g += count;
    }
    for i in 0..R {
        // SAFETY: the caller's contract on `out`.
        unsafe { _mm512_mask_storeu_ps(out[i], mask, acc[i]) };
    }
}

/// Runs a job of quantized weights on Q8 activations.
///
/// # Safety
///
/// As [`super::run`]; the CPU has AVX-512 F/BW/VL/VNNI; the job's activations are Q8
/// records of the weights' K; `decode` runs on this CPU.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn run_quantized(job: &Job<'_, '_, '_, '_>, decode: DecodeFn) {
    let PreparedKind::Q8 { bytes, layout: q8 } = job.x.kind else { return };
    let layout = job.weights.layout();
    let Some(sb) = sub_block(layout.format()) else { return };
    let rb = q8.row_bytes();
    if bytes.len() < job.rows.end * rb {
        return;
    }
    let mut d = Decoded::new();
    for p in job.panels.clone() {
        let Some(panel) = job.weights.panel(p) else { return };
        let mask = column_mask(layout.n(), p);
        let mut m0 = job.rows.start;
        while m0 < job.rows.end {
            let count = (job.rows.end - m0).min(ROWS);
            let recs: [*const u8; ROWS] =
                core::array::from_fn(|i| bytes[(m0 + i.min(count - 1)) * rb..].as_ptr());
            let out: [*mut f32; ROWS] =
                core::array::from_fn(|i| job.y.at(m0 + i.min(count - 1), p * PANEL_ROWS));
            macro_rules! go {
                ($r:literal) => {{
                    let (recs, out) = (first::<$r, _>(recs), first::<$r, _>(out));
                    // SAFETY: the records are whole rows of the checked Q8 buffer, the
                    // outputs are rows m0.. of this job's block at panel p's columns
                    // (masked to the valid ones); the rest is this function's contract.
                    unsafe {
                        if sb == 32 {
                            panel_block::<$r, 32>(
                                (layout, panel, decode),
                                &mut d,
                                q8,
                                recs,
                                out,
                                mask,
                            )
                        } else {
                            panel_block::<$r, 16>(
                                (layout, panel, decode),
                                &mut d,
                                q8,
                                recs,
                                out,
                                mask,
                            )
                        }
                    }
                }};
            }
            match count {
                1 => go!(1),
                2 => go!(2),
                3 => go!(3),
                4 => go!(4),
                5 => go!(5),
                6 => go!(6),
                7 => go!(7),
                _ => go!(8),
            }
            m0 += count;
        }
    }
}

/// The first `R` entries of `a`.
#[inline(always)]
fn first<const R: usize, T: Copy>(a: [T; ROWS]) -> [T; R] {
    core::array::from_fn(|i| a[i])
}

/// The two values of each row in a packed F16/BF16 chunk, widened to f32: (values `2c`,
/// values `2c + 1`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn widen_pair(format: Format, chunk: __m512i) -> (__m512, __m512) {
    if format == Format::BF16 {
        let lo = _mm512_slli_epi32::<16>(chunk);
        let hi = _mm512_and_si512(chunk, _mm512_set1_epi32(0xffff_0000_u32 as i32));
        (_mm512_castsi512_ps(lo), _mm512_castsi512_ps(hi))
    } else {
        let lo = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(chunk));
        let hi = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(chunk)));
        (lo, hi)
    }
}

/// One F16/BF16 panel against `R` f32 activation rows.
///
/// # Safety
///
/// AVX-512 F/BW/VL are available; each `xs[i]` is readable for `layout.k()` f32; each
/// `out[i]` is writable for the 16 masked columns and written by no one else meanwhile.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn float_block<const R: usize>(
    layout: &PackedLayout,
    panel: &[u8],
    xs: [*const f32; R],
    out: [*mut f32; R],
    mask: u16,
) {
    let (format, k) = (layout.format(), layout.k());
    let mut acc = [_mm512_setzero_ps(); R];
    for g in 0..layout.groups() {
        prefetch_ahead(layout, panel, g, 1);
        let (base, k0) = (layout.quads_offset(g), 32 * g);
        let values = (k - k0).min(32);
        for c in 0..values.div_ceil(2) {
            // SAFETY: the group's 16 chunks of 64 bytes lie inside the panel.
            let chunk = unsafe { _mm512_loadu_epi32(panel.as_ptr().add(base + 64 * c).cast()) };
            let (even, odd) = widen_pair(format, chunk);
            let ke = k0 + 2 * c;
            for i in 0..R {
                // SAFETY: ke < k, and ke + 1 is read only when it is < k.
                let (xe, xo) =
                    unsafe { (*xs[i].add(ke), if ke + 1 < k { *xs[i].add(ke + 1) } else { 0.0 }) };
                acc[i] = _mm512_fmadd_ps(even, _mm512_set1_ps(xe), acc[i]);
                acc[i] = _mm512_fmadd_ps(odd, _mm512_set1_ps(xo), acc[i]);
            }
        }
    }
    for i in 0..R {
        // SAFETY: the caller's contract on `out`.
        unsafe { _mm512_mask_storeu_ps(out[i], mask, acc[i]) };
    }
}

/// Runs a job of F16/BF16 weights on f32 activations.
///
/// # Safety
///
/// As [`super::run`]; the CPU has AVX-512 F/BW/VL; the job's activations are f32 rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn run_float(job: &Job<'_, '_, '_, '_>) {
    let PreparedKind::F32(x) = job.x.kind else { return };
    let layout = job.weights.layout();
    for p in job.panels.clone() {
        let Some(panel) = job.weights.panel(p) else { return };
        let mask = column_mask(layout.n(), p);
        let mut m0 = job.rows.start;
        while m0 < job.rows.end {
            let count = (job.rows.end - m0).min(ROWS);
            let xs: [*const f32; ROWS] =
                core::array::from_fn(|i| x.row(m0 + i.min(count - 1)).as_ptr());
            let out: [*mut f32; ROWS] =
                core::array::from_fn(|i| job.y.at(m0 + i.min(count - 1), p * PANEL_ROWS));
            macro_rules! go {
                ($r:literal) => {{
                    // SAFETY: the rows are whole K-value rows of the checked activations;
                    // the outputs are rows m0.. of this job's block at panel p's columns.
                    unsafe {
                        float_block::<$r>(
                            layout,
                            panel,
                            first::<$r, _>(xs),
                            first::<$r, _>(out),
                            mask,
                        )
                    }
                }};
            }
            match count {
                1 => go!(1),
                2 => go!(2),
                3 => go!(3),
                4 => go!(4),
                5 => go!(5),
                6 => go!(6),
                7 => go!(7),
                _ => go!(8),
            }
            m0 += count;
        }
    }
}
