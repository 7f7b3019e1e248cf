//! Weight repack: ggml rows into this crate's packed layout (`pack`) and back to the exact
//! original bytes (`unpack`). No allocation: [`packed_size`] gives the destination size.
//!
//! # The packed layout, byte by byte (layout version 3)
//!
//! A packed buffer holds `matrices` stacked weights of `n` rows by `k` values (a plain
//! weight has `matrices = 1`; MoE experts are stacked). It is:
//!
//! | bytes | what |
//! |---|---|
//! | 0..64 | header (below) |
//! | 64.. | the body: `matrices * ceil(n / 16)` panels of [`PackedLayout::panel_bytes`] each |
//!
//! **Header** (all little endian): 0..8 magic `b"AMXPACK\0"`; 8..10 layout version (u16,
//! [`LAYOUT_VERSION`]); 10..12 rows per panel (u16, 16); 12..16 ggml type id (u32);
//! 16..24 `n`; 24..32 `k`; 32..40 `matrices` (u64 each); 40..48 total buffer bytes (u64);
//! 48..56 the header checksum, FNV-1a 64 of bytes 0..48 then 56..64; 56..64 the body
//! checksum ([`BodySum::value`] of the whole body: position-weighted sums of the body's
//! 64-byte chunks, see [`BodySum`] for its definition and exactly what it detects).
//!
//! # What is checked when
//!
//! - **Every reader, every call** (each GEMM, MoE and unpack call): [`PackedRef::parse`]
//!   checks the 64 header bytes, in this order: length, magic, header checksum (before
//!   any other field is believed), version, rows per panel, format, shape, recorded size,
//!   and that the buffer holds that size. Constant time; the body is not read.
//! - **Load, verify and unpack**: [`verify`] (the header, then the body checksum: one read
//!   of the whole buffer) and [`unpack`] (which verifies before it writes a byte) refuse a
//!   body changed after packing with [`PackError::BodyChecksum`]. amx-runtime's AMX
//!   buffer type verifies weights when they are uploaded. [`unpack_panels`],
//!   [`read_block`] and [`dequantize_row`] read part of a buffer and check the header
//!   only.
//!
//! So a flipped bit in the body of a buffer that was verified once and then changed in
//! memory is not seen by the GEMM; verify a buffer when it is loaded or received.
//!
//! **Panels.** Panel `p` of matrix `e` holds rows `16p .. 16p + 16` of that matrix; in the
//! last panel, rows past `n` are zero bytes (zero scales), which kernels never write out.
//! Each row is cut into *groups*: a ggml block for the quantized formats (32 or 256
//! values), 32 values for F16 and BF16 (a partial last group is padded with zeros, so any
//! `k` works for those two). A panel is
//!
//! 1. the **quads region**: for each group `g` in order, each *quads* field of the group in
//!    table order, each stored as `len / 4` chunks of 64 bytes; chunk `c` holds, at bytes
//!    `4r..4r + 4`, the field's bytes `4c..4c + 4` of row `r`. One chunk is one row of an
//!    AMX B tile (16 columns by a VNNI quad of int8, or a pair of BF16) and one zmm of 16
//!    lanes;
//! 2. the **per-row region**: for each group `g`, each *per-row* field (scales, minimums) in
//!    table order, as 16 runs of `len` bytes, row 0 first (so 16 F16 scales are 32
//!    contiguous bytes, ready for `vcvtph2ps`);
//! 3. zero bytes up to a multiple of 64 bytes.
//!
//! The fields, as (offset in the ggml block, length) (each format's `FIELDS`, in its
//! module under `formats`):
//!
//! | format | quads fields | per-row fields |
//! |---|---|---|
//! | Q4_0 (18 B) | qs (2, 16) | d (0, 2) |
//! | Q4_1 (20 B) | qs (4, 16) | d (0, 2), m (2, 2) |
//! | Q5_0 (22 B) | qs (6, 16) | d (0, 2), qh (2, 4) |
//! | Q5_1 (24 B) | qs (8, 16) | d (0, 2), m (2, 2), qh (4, 4) |
//! | Q8_0 (34 B) | qs (2, 32) | d (0, 2) |
//! | Q2_K (84 B) | qs (16, 64) | d (80, 2), dmin (82, 2), scales (0, 16) |
//! | Q3_K (110 B) | qs (32, 64), hmask (0, 32) | d (108, 2), scales (96, 12) |
//! | Q4_K (144 B) | qs (16, 128) | d (0, 2), dmin (2, 2), scales (4, 12) |
//! | Q5_K (176 B) | qs (48, 128), qh (16, 32) | d (0, 2), dmin (2, 2), scales (4, 12) |
//! | Q6_K (210 B) | ql (0, 128), qh (128, 64) | scales (192, 16), d (208, 2) |
//! | IQ2_XXS (66 B) | qs (2, 64) | d (0, 2) |
//! | IQ2_XS (74 B) | qs (2, 64) | d (0, 2), scales (66, 8) |
//! | IQ2_S (82 B) | qs (2, 32), signs (34, 32) | d (0, 2), qh (66, 8), scales (74, 8) |
//! | IQ3_XXS (98 B) | qs (2, 64) | d (0, 2), scales (66, 32) |
//! | IQ3_S (110 B) | qs (2, 64), signs (74, 32) | d (0, 2), qh (66, 8), scales (106, 4) |
//! | IQ1_S (50 B) | qs (2, 32) | d (0, 2), qh (34, 16) |
//! | IQ1_M (56 B) | qs (0, 32), qh (32, 16) | scales (48, 8) |
//! | IQ4_NL (18 B) | qs (2, 16) | d (0, 2) |
//! | IQ4_XS (136 B) | qs (8, 128) | d (0, 2), scales_h (2, 2), scales_l (4, 4) |
//! | MXFP4 (17 B) | qs (1, 16) | e (0, 1) |
//! | TQ1_0 (54 B) | qs (0, 48) | qh (48, 4), d (52, 2) |
//! | TQ2_0 (66 B) | qs (0, 64) | d (64, 2) |
//! | NVFP4 (36 B) | qs (4, 32) | d (0, 4) |
//! | BF16 (32 values) | values (0, 64) | none |
//! | F16 (32 values) | values (0, 64) | none |
//!
//! Quantized values keep their ggml nibble and bit order inside each 4-byte quad, so a
//! quad of Q4_0 holds values `4c..4c+4` in its low nibbles and `16+4c..16+4c+4` in its high
//! nibbles. A 4-byte per-row field (Q5_0's and Q5_1's `qh`, the fifth bit of each value)
//! is 64 bytes for the 16 rows, row `r` at dword `r`: one vector whose lane `r` holds row
//! `r`'s bits, as a quads chunk holds its bytes. F16 and BF16 weights are stored as VNNI pairs of their own bits, so a chunk
//! of BF16 is one row of a `tdpbf16ps` B tile, and F16 stays exact at its own size (the
//! kernels widen F16 with `vcvtph2ps`, or round it to BF16 for tiles as they stream a
//! panel, as they dequantize the block formats). Non-finite scales and values are bytes
//! like any others: they are carried as they are (a NaN scale in the source is packed and
//! checksummed with the rest; one written into a packed buffer afterwards fails the body
//! checksum).
//!
//! # Weights in other formats: f32 rows packed as BF16
//!
//! A weight in a format this crate cannot pack natively (an F32 matrix, a ggml type not
//! in [`Format`]) goes on the same paths as BF16: dequantize it to f32 once, at load, and
//! pack the f32 rows with [`pack_f32_as_bf16`] (or [`pack_f32_as_bf16_panels`], a range
//! of panels from just the rows it covers, [`source_rows`]: 16 rows at a time, or split
//! over threads). Each value is rounded to BF16 (nearest, ties to even, subnormals kept,
//! NaNs kept and made quiet) and the buffer is byte for byte the one [`pack`] gives for
//! those BF16 bytes, header and checksum included; no allocation.
//!
//! # One row back as f32 values
//!
//! [`dequantize_row`] serves a GET_ROWS (a token embedding's lookup) from the packed
//! bytes: it rebuilds the row's ggml blocks from its panel one at a time and dequantizes
//! them, bit for bit as [`crate::formats::dequantize`] does the original row, so one
//! packed copy of a tied embedding serves both the lookup and the logits' matmul.
//!
//! # Parallel packing
//!
//! [`pack_panels`] packs a range of panels into that range's bytes, so threads can each
//! take a disjoint range ([`PackedLayout::panel_offset`] gives where a range starts), and
//! returns the range's [`BodySum`]; the sums of the ranges add up ([`BodySum::combine`], in any
//! order) to the body's, which [`write_header`] records once all panels are packed. Where
//! the body is cut into ranges does not change the checksum. [`pack`] does all of it on
//! one thread, summing each panel right after writing it, while it is still in cache.

mod checksum;
mod error;
mod from_f32;
mod header;
mod layout;
mod rows;
mod transform;

use core::ops::Range;

pub use checksum::BodySum;
pub use error::PackError;
pub use from_f32::{pack_f32_as_bf16, pack_f32_as_bf16_panels, source_rows};
pub use header::{HEADER_BYTES, LAYOUT_VERSION, MAGIC, PackedRef};
pub use layout::{
    FLOAT_GROUP_VALUES, PANEL_ALIGN, PANEL_ROWS, PackedLayout, group_bytes, group_values,
    packed_size,
};
pub use rows::dequantize_row;

use crate::formats::Format;
use crate::formats::field::Kind;

/// From this many bytes of panels on, [`pack_panels`] (and [`pack`]) writes the quads of a
/// destination that starts at a multiple of 64 bytes with streaming stores on AVX-512:
/// such an output does not stay in a core's caches anyway, and plain stores would first
/// read every destination line (a third memory stream next to the source's read and the
/// write-back). amx-runtime's buffers are 64-byte aligned; an unaligned destination is
/// packed with plain stores, to the same bytes.
pub const STREAM_MIN_BYTES: usize = 4 << 20;

fn check_panel_range(layout: &PackedLayout, panels: &Range<usize>) -> Result<(), PackError> {
    if panels.start > panels.end || panels.end > layout.panels() {
        return Err(PackError::PanelRange {
            start: panels.start,
            end: panels.end,
            panels: layout.panels(),
        });
    }
    Ok(())
}

fn check_source(layout: &PackedLayout, src: &[u8]) -> Result<(), PackError> {
    if src.len() != layout.source_bytes() {
        return Err(PackError::SourceLength { expected: layout.source_bytes(), actual: src.len() });
    }
    Ok(())
}

/// Writes the header of `layout` into the first [`HEADER_BYTES`] of `dst`, recording
/// `body` as the body checksum: the sum of the [`BodySum`]s that [`pack_panels`] returned
/// for ranges covering every panel once (a wrong sum makes [`verify`] and [`unpack`]
/// refuse the buffer).
///
/// Errors: [`PackError::DestinationTooSmall`] when `dst` is shorter than the header.
pub fn write_header(
    layout: &PackedLayout,
    body: &BodySum,
    dst: &mut [u8],
) -> Result<(), PackError> {
    match dst.first_chunk_mut::<HEADER_BYTES>() {
        Some(h) => {
            header::write(layout, body, h);
            Ok(())
        }
        None => Err(PackError::DestinationTooSmall { needed: HEADER_BYTES, actual: dst.len() }),
    }
}

/// Packs panels `panels` (global indices over all matrices) of the weight described by
/// `layout`. `src` is the whole ggml source (`layout.source_bytes()` bytes); `dst` holds
/// exactly those panels: its first byte is the buffer's byte
/// `layout.panel_offset(panels.start)` and it is at least
/// `panels.len() * layout.panel_bytes()` long (bytes past that are left alone). Returns
/// the range's share of the body checksum, for [`write_header`]. Large ranges into
/// aligned memory are written with streaming stores ([`STREAM_MIN_BYTES`]), fenced before
/// this returns.
///
/// Errors: [`PackError::PanelRange`], [`PackError::SourceLength`],
/// [`PackError::DestinationTooSmall`].
pub fn pack_panels(
    layout: &PackedLayout,
    src: &[u8],
    panels: Range<usize>,
    dst: &mut [u8],
) -> Result<BodySum, PackError> {
    check_panel_range(layout, &panels)?;
    check_source(layout, src)?;
    let pb = layout.panel_bytes();
    let needed = panels.len() * pb;
    if dst.len() < needed {
        return Err(PackError::DestinationTooSmall { needed, actual: dst.len() });
    }
    // The range's first chunk in the body; no overflow: the body's size fits in usize.
    let first = (panels.start * (pb / checksum::CHUNK)) as u64;
    let mut run = checksum::Run::new();
    let stream = needed >= STREAM_MIN_BYTES;
    for (panel, out) in panels.zip(dst.chunks_exact_mut(pb)) {
        // Summed as it is written: quads from the registers they are stored from (on
        // AVX-512), the rest read back while the panel is still in L1/L2.
        transform::pack_panel(layout, src, panel, out, &mut run, stream);
    }
    Ok(run.at(first))
}

/// Packs `matrices` stacked weights of `n` rows by `k` values in `format` from their ggml
/// bytes `src` into `dst`, header included, and returns the layout. `dst` must hold at
/// least [`packed_size`] bytes; bytes past that are left alone.
///
/// Errors: the shape errors of [`PackedLayout::new`], [`PackError::SourceLength`] when
/// `src` is not exactly the shape's ggml size, [`PackError::DestinationTooSmall`].
pub fn pack(
    format: Format,
    n: usize,
    k: usize,
    matrices: usize,
    src: &[u8],
    dst: &mut [u8],
) -> Result<PackedLayout, PackError> {
    let layout = PackedLayout::new(format, n, k, matrices)?;
    check_source(&layout, src)?;
    if dst.len() < layout.total_bytes() {
        return Err(PackError::DestinationTooSmall {
            needed: layout.total_bytes(),
            actual: dst.len(),
        });
    }
    let (head, body) = dst.split_at_mut(HEADER_BYTES);
    let sum = pack_panels(&layout, src, 0..layout.panels(), body)?;
    write_header(&layout, &sum, head)?;
    Ok(layout)
}

/// Checks a whole packed buffer: its header as [`PackedRef::parse`] does, then its body
/// checksum against the panels' bytes (one read of the buffer, about the cost of a copy).
/// Call it when a packed buffer is loaded or received; the GEMM checks the header only.
///
/// Errors: those of [`PackedRef::parse`], and [`PackError::BodyChecksum`] when the body
/// was changed after packing.
pub fn verify(bytes: &[u8]) -> Result<PackedRef<'_>, PackError> {
    let packed = PackedRef::parse(bytes)?;
    packed.verify_body()?;
    Ok(packed)
}

/// The byte range of the ggml source that panels `panels` cover (for [`unpack_panels`]).
/// An empty or invalid range gives an empty range.
pub fn source_range(layout: &PackedLayout, panels: Range<usize>) -> Range<usize> {
    if check_panel_range(layout, &panels).is_err() {
        return 0..0;
    }
    let (first, end) = transform::source_rows(layout, panels.start, panels.end);
    let rb = layout.source_row_bytes();
    first * rb..end * rb
}

/// Unpacks panels `panels` of `packed` into `dst`, the ggml bytes of the rows they cover
/// (exactly [`source_range`]`(layout, panels).len()` bytes). Reads only those panels, so
/// it does not check the body checksum ([`unpack`] and [`verify`] do).
///
/// Errors: [`PackError::PanelRange`], [`PackError::SourceLength`] when `dst` has another
/// length than the covered rows.
pub fn unpack_panels(
    packed: &PackedRef<'_>,
    panels: Range<usize>,
    dst: &mut [u8],
) -> Result<(), PackError> {
    let layout = packed.layout();
    check_panel_range(layout, &panels)?;
    let range = source_range(layout, panels.clone());
    if dst.len() != range.len() {
        return Err(PackError::SourceLength { expected: range.len(), actual: dst.len() });
    }
    let rb = layout.source_row_bytes();
    let mut at = 0;
    for panel in panels {
        let (first, end) = transform::source_rows(layout, panel, panel + 1);
        let rows = (end - first) * rb;
        let Some(bytes) = packed.panel(panel) else {
            return Err(PackError::PanelRange {
                start: panel,
                end: panel + 1,
                panels: layout.panels(),
            });
        };
        transform::unpack_panel(layout, bytes, panel, &mut dst[at..at + rows]);
        at += rows;
    }
    Ok(())
}

/// Unpacks a whole packed buffer into `dst`, giving back the exact ggml bytes that were
/// packed (a buffer's `get_tensor`). `dst` must be exactly `layout().source_bytes()` long.
/// The body checksum is checked first ([`PackedRef::verify_body`]), so changed panels are
/// an error and `dst` is left untouched.
///
/// Errors: [`PackError::SourceLength`] when `dst` has another length,
/// [`PackError::BodyChecksum`].
pub fn unpack(packed: &PackedRef<'_>, dst: &mut [u8]) -> Result<(), PackError> {
    let layout = packed.layout();
    if dst.len() != layout.source_bytes() {
        return Err(PackError::SourceLength { expected: layout.source_bytes(), actual: dst.len() });
    }
    packed.verify_body()?;
    unpack_panels(packed, 0..layout.panels(), dst)
}

/// Rebuilds the ggml bytes of group `g` of row `r` of a panel (`panel` is the panel's
/// bytes) into `out`, returning how many bytes that is: the block for the quantized
/// formats, 64 bytes of 32 values for F16/BF16 (zero values past `k`). For the reference
/// kernel and tests, which read one row at a time; `None` when `g` or `r` is out of range
/// or `panel` is not a whole panel of `layout`.
pub fn read_block(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    r: usize,
    out: &mut [u8; 256],
) -> Option<usize> {
    if g >= layout.groups() || r >= PANEL_ROWS || panel.len() != layout.panel_bytes() {
        return None;
    }
    let table = layout.format().fields();
    let (qo, po) = (layout.quads_offset(g), layout.per_row_offset(g));
    let (mut qb, mut pb) = (0, 0);
    for f in table {
        let field = &mut out[f.offset..f.offset + f.len];
        match f.kind {
            Kind::Quads => {
                for (c, quad) in field.chunks_exact_mut(4).enumerate() {
                    let at = qo + qb + 64 * c + 4 * r;
                    quad.copy_from_slice(&panel[at..at + 4]);
                }
                qb += PANEL_ROWS * f.len;
            }
            Kind::PerRow => {
                let at = po + pb + r * f.len;
                field.copy_from_slice(&panel[at..at + f.len]);
                pb += PANEL_ROWS * f.len;
            }
        }
    }
    Some(layout::group_bytes(layout.format()))
}

#[cfg(test)]
mod tests;
