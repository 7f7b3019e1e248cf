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
    __m512, __m512i, _mm512_and_si512, _mm512_castsi512_ps, _mm512_cvtepi32_epi16,
    _mm512_cvtepi32_ps, _mm512_cvtph_ps, _mm512_dpbusd_epi32, _mm512_fmadd_ps, _mm512_loadu_epi32,
    _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_mul_ps, _mm512_set1_epi32,
    _mm512_set1_epi32 as bcast_i32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512,
    _mm512_slli_epi32, _mm512_srli_epi32,
};

use crate::formats::Format;
use crate::gemm::PreparedKind;
use crate::pack::{PANEL_ROWS, group_values};

use super::Job;
use super::decode::{DecodeFn, Decoded, sub_block};

/// Activation rows computed together against one decoded group.
pub(crate) const ROWS: usize = 8;

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The mask of the valid columns of panel `p` (`n` columns in all).
fn column_mask(n: usize, p: usize) -> u16 {
    let valid = (n - p * PANEL_ROWS).min(PANEL_ROWS);
    if valid == PANEL_ROWS { u16::MAX } else { (1u16 << valid) - 1 }
}

/// Runs a job of quantized weights on Q8 activations.
///
/// # Safety
///
/// As [`super::run`]; the CPU has AVX-512 F/BW/VL/VNNI; the job's activations are Q8
/// records of the weights' K; `decode` is safe to call on this CPU.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn run_quantized(job: &Job<'_, '_, '_, '_>, decode: DecodeFn) {
    let PreparedKind::Q8 { bytes, layout: q8 } = job.x.kind else { return };
    let layout = job.weights.layout();
    let format = layout.format();
    let Some(sb) = sub_block(format) else { return };
    let (gv, rb) = (group_values(format), q8.row_bytes());
    let mut d = Decoded::new();
    for p in job.panels.clone() {
        let Some(panel) = job.weights.panel(p) else { return };
        let mask = column_mask(layout.n(), p);
        let mut m0 = job.rows.start;
        while m0 < job.rows.end {
            let count = (job.rows.end - m0).min(ROWS);
            let recs: [&[u8]; ROWS] = core::array::from_fn(|i| {
                let m = m0 + i.min(count - 1);
                &bytes[m * rb..(m + 1) * rb]
            });
            let mut acc = [_mm512_setzero_ps(); ROWS];
            for g in 0..layout.groups() {
                // SAFETY: `decode` runs on this CPU (the caller's contract).
                unsafe { decode(layout, panel, g, &mut d) };
                for s in 0..gv / sb {
                    let k0 = g * gv + s * sb;
                    // SAFETY: `scale` and `bias` rows are 16 f32 each.
                    let (scale, bias) = unsafe {
                        (_mm512_loadu_ps(d.scale[s].as_ptr()), _mm512_loadu_ps(d.bias[s].as_ptr()))
                    };
                    for (rec, a) in recs.iter().zip(acc.iter_mut()).take(count) {
                        let mut sum = _mm512_setzero_si512();
                        for j in 0..sb / 4 {
                            let chunk = 64 * (s * sb / 4 + j);
                            // SAFETY: chunk + 64 <= 64 * gv / 4 <= the size of `d.u`.
                            let w = unsafe { _mm512_loadu_epi32(d.u.as_ptr().add(chunk).cast()) };
                            let x = bcast_i32(i32_at(rec, k0 + 4 * j));
                            sum = _mm512_dpbusd_epi32(sum, w, x);
                        }
                        let dx = f32_at(rec, q8.dx_offset() + 4 * (k0 / 32));
                        let dxs = if sb == 32 {
                            f32_at(rec, q8.sum32_offset() + 4 * (k0 / 32))
                        } else {
                            f32_at(rec, q8.sum16_offset() + 4 * (k0 / 16))
                        };
                        let t = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), scale);
                        *a = _mm512_fmadd_ps(t, _mm512_set1_ps(dx), *a);
                        *a = _mm512_fmadd_ps(bias, _mm512_set1_ps(dxs), *a);
                    }
                }
            }
            for (i, a) in acc.iter().enumerate().take(count) {
                // SAFETY: row m0 + i is in the job's rows and the masked columns are the
                // panel's valid ones, all inside the output and this job's block.
                unsafe { _mm512_mask_storeu_ps(job.y.at(m0 + i, p * PANEL_ROWS), mask, *a) };
            }
            m0 += count;
        }
    }
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

/// Runs a job of F16/BF16 weights on f32 activations.
///
/// # Safety
///
/// As [`super::run`]; the CPU has AVX-512 F/BW/VL; the job's activations are f32 rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn run_float(job: &Job<'_, '_, '_, '_>) {
    let PreparedKind::F32(x) = job.x.kind else { return };
    let layout = job.weights.layout();
    let (format, k) = (layout.format(), layout.k());
    for p in job.panels.clone() {
        let Some(panel) = job.weights.panel(p) else { return };
        let mask = column_mask(layout.n(), p);
        let mut m0 = job.rows.start;
        while m0 < job.rows.end {
            let count = (job.rows.end - m0).min(ROWS);
            let rows: [&[f32]; ROWS] = core::array::from_fn(|i| x.row(m0 + i.min(count - 1)));
            let mut acc = [_mm512_setzero_ps(); ROWS];
            for g in 0..layout.groups() {
                let base = layout.quads_offset(g);
                let k0 = 32 * g;
                for c in 0..(k - k0).min(32).div_ceil(2) {
                    // SAFETY: the group's 16 chunks of 64 bytes lie inside the panel.
                    let chunk =
                        unsafe { _mm512_loadu_epi32(panel.as_ptr().add(base + 64 * c).cast()) };
                    let (even, odd) = widen_pair(format, chunk);
                    let (ke, ko) = (k0 + 2 * c, k0 + 2 * c + 1);
                    for (row, a) in rows.iter().zip(acc.iter_mut()).take(count) {
                        *a = _mm512_fmadd_ps(even, _mm512_set1_ps(row[ke]), *a);
                        let xo = if ko < k { row[ko] } else { 0.0 };
                        *a = _mm512_fmadd_ps(odd, _mm512_set1_ps(xo), *a);
                    }
                }
            }
            for (i, a) in acc.iter().enumerate().take(count) {
                // SAFETY: as in `run_quantized`.
                unsafe { _mm512_mask_storeu_ps(job.y.at(m0 + i, p * PANEL_ROWS), mask, *a) };
            }
            m0 += count;
        }
    }
}
