//! The fallback for weights amx-core cannot pack natively: f32 rows packed as BF16.
//!
//! An engine that meets a weight in a format without a native packing (an F32 matrix, a
//! ggml type not in [`Format`]) dequantizes it to f32 once, at load, and packs the f32
//! rows here. The result is a [`Format::BF16`] buffer, byte for byte the one [`super::pack`]
//! gives for the BF16 bytes of the same values rounded to nearest, ties to even
//! ([`crate::formats::half::f32_to_bf16`]: subnormals kept, NaNs kept with their sign and
//! made quiet, values past the BF16 range to infinity), header and body checksum included.
//! Every reader (GEMM, MoE, [`super::verify`], [`super::unpack`]) then sees a BF16
//! weight; unpacking gives the BF16 bytes, not the f32 values.
//!
//! No allocation: each 32-value group of a panel's 16 rows is rounded into a 1 KiB stack
//! scratch and moved from there. [`pack_f32_as_bf16_panels`] packs a range of panels from
//! just the rows they cover ([`source_rows`]), so a loader can dequantize and pack a
//! large weight 16 rows at a time, or split it over threads as with [`super::pack_panels`].

use core::ops::Range;

use crate::formats::Format;

use super::checksum::{CHUNK, Run};
use super::header::HEADER_BYTES;
use super::{BodySum, PackError, PackedLayout, check_panel_range, transform, write_header};

/// The rows of the stacked source (`matrices * n` rows, matrix after matrix) that panels
/// `panels` cover: the rows whose values [`pack_f32_as_bf16_panels`] takes for them
/// (the covered rows of a last, partial panel of a matrix stop at its `n`). An empty or
/// invalid range gives `0..0`.
pub fn source_rows(layout: &PackedLayout, panels: Range<usize>) -> Range<usize> {
    if check_panel_range(layout, &panels).is_err() {
        return 0..0;
    }
    let (first, end) = transform::source_rows(layout, panels.start, panels.end);
    first..end
}

/// Bytes of `values` f32 values, for the length errors (which count bytes).
fn f32_bytes(values: usize) -> Result<usize, PackError> {
    values.checked_mul(size_of::<f32>()).ok_or(PackError::Overflow)
}

/// Packs panels `panels` of the BF16 weight described by `layout` from f32 values:
/// `rows` holds the values of exactly the rows those panels cover, row after row
/// ([`source_rows`]`(layout, panels)`, `k` values each), and `dst` those panels' bytes,
/// as for [`super::pack_panels`] (its first byte is the buffer's byte
/// `layout.panel_offset(panels.start)`, at least `panels.len() * layout.panel_bytes()`
/// long, bytes past that left alone). Returns the range's share of the body checksum,
/// for [`write_header`]. The panels are those [`super::pack_panels`] writes for the
/// values' BF16 bytes (see the module docs).
///
/// Errors: [`PackError::FormatMismatch`] when `layout` is not [`Format::BF16`],
/// [`PackError::PanelRange`], [`PackError::SourceLength`] (in bytes: 4 per value) when
/// `rows` is not the covered rows' values, [`PackError::DestinationTooSmall`],
/// [`PackError::Overflow`].
pub fn pack_f32_as_bf16_panels(
    layout: &PackedLayout,
    rows: &[f32],
    panels: Range<usize>,
    dst: &mut [u8],
) -> Result<BodySum, PackError> {
    if layout.format() != Format::BF16 {
        return Err(PackError::FormatMismatch { expected: Format::BF16, found: layout.format() });
    }
    check_panel_range(layout, &panels)?;
    let covered = source_rows(layout, panels.clone());
    let k = layout.k();
    // No overflow: the covered rows' BF16 bytes (2 per value) fit in `source_bytes`.
    let values = covered.len() * k;
    if rows.len() != values {
        return Err(PackError::SourceLength {
            expected: f32_bytes(values)?,
            actual: f32_bytes(rows.len())?,
        });
    }
    let pb = layout.panel_bytes();
    let needed = panels.len() * pb;
    if dst.len() < needed {
        return Err(PackError::DestinationTooSmall { needed, actual: dst.len() });
    }
    // The range's first chunk in the body; no overflow: the body's size fits in usize.
    let first = (panels.start * (pb / CHUNK)) as u64;
    let mut run = Run::new();
    let mut at = 0;
    for (panel, out) in panels.zip(dst.chunks_exact_mut(pb)) {
        let (start, end) = transform::source_rows(layout, panel, panel + 1);
        let len = (end - start) * k;
        transform::pack_f32_panel(layout, &rows[at..at + len], panel, out, &mut run);
        at += len;
    }
    Ok(run.at(first))
}

/// Packs `matrices` stacked weights of `n` rows by `k` f32 values (`src`, row after row,
/// matrix after matrix) as BF16 into `dst`, header included, and returns the layout
/// ([`Format::BF16`], any `k`). `dst` must hold at least
/// [`super::packed_size`]`(Format::BF16, n, k, matrices)` bytes; bytes past that are left
/// alone. The buffer is byte for byte the one [`super::pack`] gives for the BF16 bytes of
/// `src` rounded to nearest, ties to even (see the module docs).
///
/// Errors: the shape errors of [`PackedLayout::new`], [`PackError::SourceLength`] (in
/// bytes: 4 per value) when `src` is not `matrices * n * k` values,
/// [`PackError::DestinationTooSmall`], [`PackError::Overflow`].
pub fn pack_f32_as_bf16(
    n: usize,
    k: usize,
    matrices: usize,
    src: &[f32],
    dst: &mut [u8],
) -> Result<PackedLayout, PackError> {
    let layout = PackedLayout::new(Format::BF16, n, k, matrices)?;
    // No overflow: BF16's source bytes, 2 per value, fit in usize.
    let values = layout.source_bytes() / 2;
    if src.len() != values {
        return Err(PackError::SourceLength {
            expected: f32_bytes(values)?,
            actual: f32_bytes(src.len())?,
        });
    }
    if dst.len() < layout.total_bytes() {
        return Err(PackError::DestinationTooSmall {
            needed: layout.total_bytes(),
            actual: dst.len(),
        });
    }
    let (head, body) = dst.split_at_mut(HEADER_BYTES);
    let sum = pack_f32_as_bf16_panels(&layout, src, 0..layout.panels(), body)?;
    write_header(&layout, &sum, head)?;
    Ok(layout)
}

#[cfg(test)]
mod tests;
