//! The AVX-512 VNNI path, for small M (decode-time matmuls).
//!
//! Quantized weights (`fused`): each sub-block of a panel's groups is decoded, once per
//! block of up to [`ROWS`] activation rows, from the packed chunks straight into
//! registers as unsigned bytes with a per-row affine map (see [`super::decode`]);
//! `vpdpbusd` takes the bytes (unsigned operand) against broadcast quads of int8
//! activations (signed operand), one int32 sum per row of the panel and sub-block, and
//! the sum becomes `dx * (scale * sum + bias * sum(q))` in f32. One monomorphised kernel
//! per format and row count.
//!
//! F16/BF16 weights: each packed chunk holds a pair of values per row; both are widened
//! to f32 and multiplied with broadcast f32 activations.

use core::arch::x86_64::{
    __m512, __m512i, _MM_HINT_T0, _MM_HINT_T1, _mm_prefetch, _mm256_loadu_si256, _mm512_add_ps,
    _mm512_and_si512, _mm512_castsi512_ps, _mm512_cvtepi32_epi16, _mm512_cvtph_ps, _mm512_fmadd_ps,
    _mm512_loadu_epi32, _mm512_mask_storeu_ps, _mm512_permutex2var_ps, _mm512_set_epi32,
    _mm512_set1_epi32, _mm512_set1_epi64, _mm512_set1_ps, _mm512_setzero_ps, _mm512_slli_epi32,
    _mm512_srli_epi32,
};

use crate::formats::codec::{Codec, Grids};
use crate::formats::int_scales::Scales;
use crate::formats::{Format, with_quantized};
use crate::gemm::PreparedKind;
use crate::pack::{PANEL_ROWS, PackedLayout};

use super::Job;
use super::decode::x86::fits;

mod fused;
mod fused_int;

/// Activation rows computed together against each decoded sub-block (each row block
/// decodes the panel once).
pub(crate) const ROWS: usize = 8;

/// The mask of the valid columns of panel `p` (`n` columns in all).
fn column_mask(n: usize, p: usize) -> u16 {
    let valid = (n - p * PANEL_ROWS).min(PANEL_ROWS);
    if valid == PANEL_ROWS { u16::MAX } else { (1u16 << valid) - 1 }
}

/// Prefetches the bytes group `g` reads, one panel further on (into L2) and half a KiB
/// further on (into L1), in both regions of the panel (past the panel's end this reaches
/// into the next panel, which is next in memory; prefetches never fault).
#[inline]
#[target_feature(enable = "avx512f")]
fn prefetch_ahead(layout: &PackedLayout, panel: &[u8], g: usize) {
    let base = panel.as_ptr();
    let quads = layout.quads_offset(g + 1) - layout.quads_offset(g);
    let rows = layout.per_row_offset(g + 1) - layout.per_row_offset(g);
    for (start, len) in [(layout.quads_offset(g), quads), (layout.per_row_offset(g), rows)] {
        let mut off = 0;
        while off < len {
            // Far: the same bytes of the next panel, into L2 (measured best for the
            // fused kernel too); near: half a KiB ahead, into L1.
            let p = base.wrapping_add(start + layout.panel_bytes() + off);
            // SAFETY: a prefetch is a hint that never faults, whatever the address; the
            // block is needed before Rust 1.93, where `_mm_prefetch` became a safe function
            // (the MSRV is 1.89).
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T1>(p.cast());
                _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(start + 512 + off).cast());
            }
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

/// Runs a job of quantized weights on Q8 activations.
///
/// # Safety
///
/// As [`super::run`]; the CPU has AVX-512 F/BW/VL/VNNI; the job's activations are Q8
/// records of the weights' K.
///
/// The fused kernel decodes in registers with the formats' AVX-512 codecs
/// ([`Codec`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn run_quantized(job: &Job<'_, '_, '_, '_>) {
    // SAFETY: this function's contract.
    unsafe {
        with_quantized!(
            job.weights.layout().format(),
            F => run_format::<F>(job, Grids::detected()),
            // Float weights run `run_float` (never prepared as Q8).
            Format::F16 | Format::BF16 => {}
        )
    }
}

/// [`run_quantized`] for the format of `F` (the weights' format), with the grid lookups
/// `grids`.
///
/// # Safety
///
/// As [`run_quantized`]; `grids` is [`Grids::Gather`] or the CPU has AVX-512 VBMI.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn run_format<F: Codec>(job: &Job<'_, '_, '_, '_>, grids: Grids) {
    let PreparedKind::Q8 { bytes, layout: q8 } = job.x.kind else { return };
    let layout = job.weights.layout();
    let rb = q8.row_bytes();
    if bytes.len() < job.rows.end * rb || q8.k != layout.k() {
        return;
    }
    for p in job.panels.clone() {
        let Some(panel) = job.weights.panel(p) else { return };
        if !fits::<F>(layout, panel) {
            return;
        }
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
                    // SAFETY: the records are whole rows of the checked Q8 buffer of K
                    // values, the outputs are rows m0.. of this job's block at panel p's
                    // columns (masked to the valid ones); `fits` was checked; the rest is
                    // this function's contract (VBMI for the VBMI body).
                    unsafe {
                        match (F::SCALES, grids) {
                            // Integer scales: one body (the grids do not matter).
                            (Scales::Int { .. }, Grids::Gather | Grids::Vbmi) => {
                                fused_int::panel_block::<F, $r>(layout, panel, q8, recs, out, mask)
                            }
                            (Scales::Float, Grids::Gather) => {
                                fused::panel_block::<F, $r>(layout, panel, q8, recs, out, mask)
                            }
                            // A format without a VBMI body gets no VBMI copy.
                            (Scales::Float, Grids::Vbmi) if !F::VBMI => {
                                fused::panel_block::<F, $r>(layout, panel, q8, recs, out, mask)
                            }
                            (Scales::Float, Grids::Vbmi) => {
                                fused::panel_block_vbmi::<F, $r>(layout, panel, q8, recs, out, mask)
                            }
                        }
                    }
                }};
            }
            with_rows!(count, go);
            m0 += count;
        }
    }
}

/// Calls `$go!(R)` with `R` the literal equal to `$count` (1 to [`ROWS`]), so that each
/// row-block size gets its own straight-line kernel.
macro_rules! with_rows {
    ($count:expr, $go:ident) => {
        match $count {
            1 => $go!(1),
            2 => $go!(2),
            3 => $go!(3),
            4 => $go!(4),
            5 => $go!(5),
            6 => $go!(6),
            7 => $go!(7),
            _ => $go!(8),
        }
    };
}
use with_rows;

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
        prefetch_ahead(layout, panel, g);
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

/// One F16 panel against `R` f32 activation rows, with the F16 pairs widened in place:
/// `vcvtph2ps` of a chunk's halves gives rows 0..8 and 8..16 as (even, odd) f32 pairs,
/// multiplied by the activation pair broadcast as one 64-bit value; each row's even and
/// odd sums are added once, at the end. (Splitting the pairs first costs two `vpmovdw`
/// per chunk on the shuffle port, which limited the decode-time rate.)
///
/// # Safety
///
/// As [`float_block`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn f16_block<const R: usize>(
    layout: &PackedLayout,
    panel: &[u8],
    xs: [*const f32; R],
    out: [*mut f32; R],
    mask: u16,
) {
    let k = layout.k();
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    for g in 0..layout.groups() {
        prefetch_ahead(layout, panel, g);
        let (base, k0) = (layout.quads_offset(g), 32 * g);
        for c in 0..(k - k0).min(32).div_ceil(2) {
            // SAFETY: chunk c lies inside the group, its pair at k0 + 2c < k.
            unsafe { f16_chunk(panel, base + 64 * c, k0 + 2 * c, k, &xs, &mut lo, &mut hi) };
        }
    }
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for i in 0..R {
        let sum = _mm512_add_ps(
            _mm512_permutex2var_ps(lo[i], even, hi[i]),
            _mm512_permutex2var_ps(lo[i], odd, hi[i]),
        );
        // SAFETY: the caller's contract on `out`.
        unsafe { _mm512_mask_storeu_ps(out[i], mask, sum) };
    }
}

/// One F16 chunk (64 bytes at `at` in the panel: the pair at `ke`, `ke + 1` of 16 rows)
/// into the sums `lo`, `hi` of `R` activation rows.
///
/// # Safety
///
/// `at + 64 <= panel.len()`; `ke < k`; each `xs[i]` is readable for `k` f32; AVX-512 F is
/// available.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn f16_chunk<const R: usize>(
    panel: &[u8],
    at: usize,
    ke: usize,
    k: usize,
    xs: &[*const f32; R],
    lo: &mut [__m512; R],
    hi: &mut [__m512; R],
) {
    // SAFETY: the caller's contract.
    let (wl, wh) = unsafe {
        let p = panel.as_ptr().add(at);
        (
            _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())),
            _mm512_cvtph_ps(_mm256_loadu_si256(p.add(32).cast())),
        )
    };
    for i in 0..R {
        // The pair as one 64-bit broadcast straight from memory (a single load uop); the
        // odd value past an odd K is read as 0.
        let pair = if ke + 1 < k {
            // SAFETY: ke + 1 < k: both values lie inside the row.
            unsafe { xs[i].add(ke).cast::<i64>().read_unaligned() }
        } else {
            // SAFETY: ke < k.
            i64::from(unsafe { *xs[i].add(ke) }.to_bits())
        };
        let x = _mm512_castsi512_ps(_mm512_set1_epi64(pair));
        lo[i] = _mm512_fmadd_ps(wl, x, lo[i]);
        hi[i] = _mm512_fmadd_ps(wh, x, hi[i]);
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
                core::array::from_fn(|i| x.row_in(m0 + i.min(count - 1)).as_ptr());
            let out: [*mut f32; ROWS] =
                core::array::from_fn(|i| job.y.at(m0 + i.min(count - 1), p * PANEL_ROWS));
            macro_rules! go {
                ($r:literal) => {{
                    // SAFETY: the rows are whole K-value rows of the checked activations;
                    // the outputs are rows m0.. of this job's block at panel p's columns.
                    unsafe {
                        if layout.format() == Format::F16 {
                            f16_block::<$r>(
                                layout,
                                panel,
                                first::<$r, _>(xs),
                                first::<$r, _>(out),
                                mask,
                            )
                        } else {
                            float_block::<$r>(
                                layout,
                                panel,
                                first::<$r, _>(xs),
                                first::<$r, _>(out),
                                mask,
                            )
                        }
                    }
                }};
            }
            with_rows!(count, go);
            m0 += count;
        }
    }
}

#[cfg(test)]
mod tests;
