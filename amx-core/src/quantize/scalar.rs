//! Portable activation quantizers (the definition the vectorised ones must match).

use crate::formats::half::f32_to_bf16;

use super::{Q8Layout, TileLayout};

/// Rounds to the nearest integer, ties to even, for |v| < 2^22 (what `vcvtps2dq` does
/// under the default rounding mode). `f32::round_ties_even` is not in `core`.
fn round_ties_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it leaves no fraction bits.
    (v + MAGIC) - MAGIC
}

/// Quantizes one row `x` (`k` values, `k` a multiple of 32) into its Q8 record `out`
/// (`Q8Layout { k }.row_bytes()` bytes).
pub(crate) fn q8_row(x: &[f32], out: &mut [u8]) {
    let l = Q8Layout { k: x.len() };
    let (qs, rest) = out.split_at_mut(l.k);
    let mut put = |at: usize, v: &[u8]| rest[at - l.k..at - l.k + v.len()].copy_from_slice(v);
    for (b, (block, q)) in x.chunks_exact(32).zip(qs.chunks_exact_mut(32)).enumerate() {
        let mut amax = 0f32;
        let mut nan = false;
        for &v in block {
            nan |= v.is_nan();
            amax = amax.max(v.abs());
        }
        let dx = if nan { f32::NAN } else { amax / 127.0 };
        let inv = if dx != 0.0 && dx.is_finite() { 1.0 / dx } else { 0.0 };
        // Below max|x| ~ 3.7e-37, 1 / dx overflows to infinity (every value would become
        // +-127): such tiny blocks divide by dx instead, which is exact-rounded too.
        let tiny = inv == f32::INFINITY;
        let mut sums = [0i32; 2];
        for (i, (&v, out)) in block.iter().zip(q.iter_mut()).enumerate() {
            let t = if tiny { v / dx } else { v * inv };
            // |t| <= 127 up to rounding; `as` saturates and maps NaN to 0.
            let qi = round_ties_even(t) as i8;
            *out = qi as u8;
            sums[i / 16] += i32::from(qi);
        }
        put(l.dx_offset() + 4 * b, &dx.to_le_bytes());
        put(l.sum32_offset() + 4 * b, &(dx * (sums[0] + sums[1]) as f32).to_le_bytes());
        put(l.sum16_offset() + 8 * b, &(dx * sums[0] as f32).to_le_bytes());
        put(l.sum16_offset() + 8 * b + 4, &(dx * sums[1] as f32).to_le_bytes());
        for (h, sum) in sums.into_iter().enumerate() {
            // |sum| <= 16 * 128: an i16.
            put(l.isum16_offset() + 4 * b + 2 * h, &(sum as i16).to_le_bytes());
        }
    }
}

/// Writes rows `x(i)` for `i` in `first..first + count` into their BF16 tiles in `out`
/// (all tiles of `layout`). Values past `k` in the last value tile are left as they are:
/// callers zero the buffer once.
pub(crate) fn bf16_tile_rows<'a>(
    layout: &TileLayout,
    rows: impl Iterator<Item = (usize, &'a [f32])>,
    out: &mut [u8],
) {
    for (i, row) in rows {
        let (mt, r) = (i / 16, i % 16);
        for (kt, vals) in row.chunks(32).enumerate() {
            let at = layout.tile(mt, kt) + 64 * r;
            for (j, v) in vals.iter().enumerate() {
                out[at + 2 * j..at + 2 * j + 2].copy_from_slice(&f32_to_bf16(*v).to_le_bytes());
            }
        }
    }
}
