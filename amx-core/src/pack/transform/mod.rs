//! The byte moves between ggml rows and 16-row panels.
//!
//! The panel walk is shared; the 16-row transpose of quads fields, where the time goes, has
//! a portable path (which valgrind can run) and an AVX-512 path chosen at run time.

mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::formats::Format;

use super::f16;
use super::layout::{Field, Kind, PANEL_ROWS, PackedLayout, fields, group_bytes};

/// The largest group, in bytes (Q6_K's 210-byte block); also the longest field.
const MAX_GROUP: usize = 256;

/// Zero bytes that padding rows are packed from.
static ZERO: [u8; MAX_GROUP] = [0; MAX_GROUP];

/// The 16-row transpose of one quads field, per instruction set.
pub(crate) trait Quads {
    /// Packs one quads field: for `c < len / 4` and `r < 16`, bytes `64c + 4r .. +4` of
    /// `out` get bytes `4c .. 4c + 4` of `rows[r]`.
    ///
    /// # Safety
    ///
    /// `len` is a multiple of 16; every `rows[r]` is valid for reads of `len` bytes; `out`
    /// is valid for writes of `16 * len` bytes and overlaps none of the rows; the CPU has
    /// the implementation's instruction set.
    unsafe fn pack(rows: &[*const u8; PANEL_ROWS], len: usize, out: *mut u8);
    /// The inverse of [`Quads::pack`]: writes `len` bytes at every `rows[r]`.
    ///
    /// # Safety
    ///
    /// `len` is a multiple of 16; `input` is valid for reads of `16 * len` bytes; every
    /// `rows[r]` is valid for writes of `len` bytes (rows may alias each other, not
    /// `input`); the CPU has the implementation's instruction set.
    unsafe fn unpack(input: *const u8, len: usize, rows: &[*mut u8; PANEL_ROWS]);
}

/// Source rows `first..first + valid` of panel `panel`, in rows of the whole stacked source.
fn panel_rows(layout: &PackedLayout, panel: usize) -> (usize, usize) {
    let ppm = layout.panels_per_matrix();
    let (matrix, p) = (panel / ppm, panel % ppm);
    let first_in_matrix = p * PANEL_ROWS;
    let valid = (layout.n() - first_in_matrix).min(PANEL_ROWS);
    (matrix * layout.n() + first_in_matrix, valid)
}

/// Row indices (into the stacked source) covered by panels `start..end` (`start < end`).
pub(crate) fn source_rows(layout: &PackedLayout, start: usize, end: usize) -> (usize, usize) {
    if start >= end {
        return (0, 0);
    }
    let (first, _) = panel_rows(layout, start);
    let (last_first, last_valid) = panel_rows(layout, end - 1);
    (first, last_first + last_valid)
}

/// Offsets of each field inside its region (quads or per-row) of one group of a panel.
fn field_bases(fields: &[Field]) -> [usize; 8] {
    let mut bases = [0usize; 8];
    let (mut q, mut p) = (0, 0);
    for (i, f) in fields.iter().enumerate() {
        let region = if f.kind == Kind::Quads { &mut q } else { &mut p };
        bases[i] = *region;
        *region += PANEL_ROWS * f.len;
    }
    bases
}

/// Copies a short per-row field with fixed-size moves (no `memcpy` call per field).
///
/// # Safety
///
/// `src` is valid for reads and `dst` for writes of `len` bytes; they do not overlap.
#[inline(always)]
unsafe fn copy_field(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's contract, for the `len` bytes of every arm.
    unsafe {
        match len {
            2 => dst.cast::<[u8; 2]>().write_unaligned(src.cast::<[u8; 2]>().read_unaligned()),
            4 => dst.cast::<[u8; 4]>().write_unaligned(src.cast::<[u8; 4]>().read_unaligned()),
            12 => dst.cast::<[u8; 12]>().write_unaligned(src.cast::<[u8; 12]>().read_unaligned()),
            16 => dst.cast::<[u8; 16]>().write_unaligned(src.cast::<[u8; 16]>().read_unaligned()),
            _ => core::ptr::copy_nonoverlapping(src, dst, len),
        }
    }
}

/// Builds the packed form of group `g` of one F16 or BF16 row in `group` (80 or 64 bytes):
/// a partial last group is padded with zero values.
fn float_group(format: Format, row: &[u8], g: usize, group: &mut [u8]) {
    let src = row.get(64 * g..).unwrap_or(&[]);
    let src = &src[..src.len().min(64)];
    if format == Format::BF16 {
        group[..src.len()].copy_from_slice(src);
        group[src.len()..].fill(0);
        return;
    }
    let (pairs, residues) = group.split_at_mut(64);
    residues.fill(0);
    for v in 0..32 {
        let h = src.get(2 * v..2 * v + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        let (b, nibble) = f16::encode(h);
        pairs[2 * v..2 * v + 2].copy_from_slice(&b.to_le_bytes());
        residues[v / 2] |= nibble << (4 * (v % 2));
    }
}

/// Writes the values of F16 or BF16 group `g` of one row from its packed form, dropping
/// the padding past the row's end.
fn float_ungroup(format: Format, group: &[u8], g: usize, row: &mut [u8]) {
    let dst = row.get_mut(64 * g..).unwrap_or(&mut []);
    let take = dst.len().min(64);
    let dst = &mut dst[..take];
    if format == Format::BF16 {
        dst.copy_from_slice(&group[..take]);
        return;
    }
    for (v, out) in dst.chunks_exact_mut(2).enumerate() {
        let b = u16::from_le_bytes([group[2 * v], group[2 * v + 1]]);
        let nibble = (group[64 + v / 2] >> (4 * (v % 2))) & 0xf;
        out.copy_from_slice(&f16::decode(b, nibble).to_le_bytes());
    }
}

/// Whether group `g` of a row is stored as plain bytes at `g * stride` of the ggml row
/// (quantized formats, whole BF16 groups), so it can be moved without a scratch copy.
#[inline(always)]
fn direct(format: Format, g: usize, rb: usize) -> bool {
    match format {
        Format::F16 => false,
        Format::BF16 => 64 * (g + 1) <= rb,
        _ => true,
    }
}

/// Bytes between group starts in a ggml row.
#[inline(always)]
const fn stride(format: Format) -> usize {
    match format {
        Format::F16 | Format::BF16 => 64,
        _ => format.block_bytes(),
    }
}

/// Calls `$body::<Q>` with the format as a literal, so that each format gets its own copy
/// of the panel walk with the field table, offsets and lengths folded to constants.
macro_rules! per_format {
    ($body:ident::<$q:ty>($format:expr, $($arg:expr),*)) => {
        match $format {
            Format::Q4_0 => $body::<$q>(Format::Q4_0, $($arg),*),
            Format::Q4_1 => $body::<$q>(Format::Q4_1, $($arg),*),
            Format::Q8_0 => $body::<$q>(Format::Q8_0, $($arg),*),
            Format::Q4K => $body::<$q>(Format::Q4K, $($arg),*),
            Format::Q5K => $body::<$q>(Format::Q5K, $($arg),*),
            Format::Q6K => $body::<$q>(Format::Q6K, $($arg),*),
            Format::IQ4XS => $body::<$q>(Format::IQ4XS, $($arg),*),
            Format::F16 => $body::<$q>(Format::F16, $($arg),*),
            Format::BF16 => $body::<$q>(Format::BF16, $($arg),*),
        }
    };
}

/// Packs one panel with transposer `Q`: `src` is the whole stacked ggml source
/// (`layout.source_bytes()` bytes), `dst` exactly the panel's `layout.panel_bytes()`.
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn pack_panel_with<Q: Quads>(
    layout: &PackedLayout,
    src: &[u8],
    panel: usize,
    dst: &mut [u8],
) {
    // SAFETY: forwarded contract.
    unsafe { per_format!(pack_panel_as::<Q>(layout.format(), layout, src, panel, dst)) }
}

/// [`pack_panel_with`] for `format == layout.format()`, given as a constant.
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn pack_panel_as<Q: Quads>(
    format: Format,
    layout: &PackedLayout,
    src: &[u8],
    panel: usize,
    dst: &mut [u8],
) {
    let fields = fields(format);
    let bases = field_bases(fields);
    let (gb, rb, stride) = (group_bytes(format), layout.source_row_bytes(), stride(format));
    let (first, valid) = panel_rows(layout, panel);
    assert!(src.len() >= (first + valid) * rb && dst.len() == layout.panel_bytes());
    let rows: [&[u8]; PANEL_ROWS] = core::array::from_fn(|r| match r < valid {
        true => &src[(first + r) * rb..(first + r + 1) * rb],
        false => &ZERO[..gb],
    });
    // The alignment tail after the last group: zero, whatever the caller's buffer held.
    dst[layout.per_row_offset(layout.groups())..].fill(0);
    let mut scratch = [[0u8; 80]; PANEL_ROWS];
    let out = dst.as_mut_ptr();
    for g in 0..layout.groups() {
        let group: [*const u8; PANEL_ROWS] = if direct(format, g, rb) {
            // In bounds: g * stride + gb <= rb for a direct group; padding rows stay on
            // ZERO, which is as long as any group.
            core::array::from_fn(|r| match r < valid {
                true => rows[r].as_ptr().wrapping_add(g * stride),
                false => ZERO.as_ptr(),
            })
        } else {
            for (row, s) in rows.iter().zip(scratch.iter_mut()).take(valid) {
                float_group(format, row, g, &mut s[..gb]);
            }
            core::array::from_fn(|r| match r < valid {
                true => scratch[r].as_ptr(),
                false => ZERO.as_ptr(),
            })
        };
        let (qo, po) = (layout.quads_offset(g), layout.per_row_offset(g));
        for (f, &base) in fields.iter().zip(&bases) {
            let at: [*const u8; PANEL_ROWS] =
                core::array::from_fn(|r| group[r].wrapping_add(f.offset));
            // SAFETY: every group pointer covers the group's `gb` bytes (see above) and
            // the field lies inside the group; the field's region of group g lies inside
            // the panel (`quads_offset`/`per_row_offset` and `field_bases` follow the
            // layout that `panel_bytes` was computed from); source and panel do not
            // overlap (one is borrowed shared, the other mutably); `Q`'s instruction set
            // is the caller's.
            unsafe {
                match f.kind {
                    Kind::Quads => Q::pack(&at, f.len, out.add(qo + base)),
                    Kind::PerRow => {
                        for (r, a) in at.iter().enumerate() {
                            copy_field(*a, out.add(po + base + r * f.len), f.len);
                        }
                    }
                }
            }
        }
    }
}

/// Unpacks one panel with transposer `Q`: `input` is the panel, `dst` the ggml rows it
/// covers (`valid * layout.source_row_bytes()` bytes).
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn unpack_panel_with<Q: Quads>(
    layout: &PackedLayout,
    input: &[u8],
    panel: usize,
    dst: &mut [u8],
) {
    // SAFETY: forwarded contract.
    unsafe { per_format!(unpack_panel_as::<Q>(layout.format(), layout, input, panel, dst)) }
}

/// [`unpack_panel_with`] for `format == layout.format()`, given as a constant.
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn unpack_panel_as<Q: Quads>(
    format: Format,
    layout: &PackedLayout,
    input: &[u8],
    panel: usize,
    dst: &mut [u8],
) {
    let fields = fields(format);
    let bases = field_bases(fields);
    let (gb, rb, stride) = (group_bytes(format), layout.source_row_bytes(), stride(format));
    let (_, valid) = panel_rows(layout, panel);
    assert!(input.len() == layout.panel_bytes() && dst.len() == valid * rb);
    let mut scratch = [[0u8; MAX_GROUP]; PANEL_ROWS];
    for g in 0..layout.groups() {
        let direct = direct(format, g, rb);
        let base_ptr = dst.as_mut_ptr();
        let sinks: [*mut u8; PANEL_ROWS] = core::array::from_fn(|r| scratch[r].as_mut_ptr());
        // Real rows are written in place when the group is whole ggml bytes; padding rows
        // and F16/partial BF16 groups go to the per-row scratch first.
        let group: [*mut u8; PANEL_ROWS] = core::array::from_fn(|r| match r < valid && direct {
            true => base_ptr.wrapping_add(r * rb + g * stride),
            false => sinks[r],
        });
        let (qo, po) = (layout.quads_offset(g), layout.per_row_offset(g));
        for (f, &base) in fields.iter().zip(&bases) {
            let at: [*mut u8; PANEL_ROWS] =
                core::array::from_fn(|r| group[r].wrapping_add(f.offset));
            // SAFETY: in-place group pointers cover `gb` bytes inside row r of `dst`
            // (g * stride + gb <= rb when `direct`), scratch rows hold MAX_GROUP >= gb
            // bytes, and the field lies inside the group; the field's region of group g
            // lies inside the panel, which does not overlap `dst`; `Q`'s instruction set
            // is the caller's.
            unsafe {
                match f.kind {
                    Kind::Quads => Q::unpack(input.as_ptr().add(qo + base), f.len, &at),
                    Kind::PerRow => {
                        for (r, a) in at.iter().enumerate() {
                            copy_field(input.as_ptr().add(po + base + r * f.len), *a, f.len);
                        }
                    }
                }
            }
        }
        if !direct {
            for (r, row) in dst.chunks_exact_mut(rb).enumerate().take(valid) {
                float_ungroup(format, &scratch[r][..gb], g, row);
            }
        }
    }
}

/// Packs one panel on the fastest path this CPU has.
pub(crate) fn pack_panel(layout: &PackedLayout, src: &[u8], panel: usize, dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if crate::detect::Features::cached().avx512_usable() {
        // SAFETY: the CPU and the OS support AVX-512 F/BW/VL (checked just above).
        unsafe { x86::pack_panel(layout, src, panel, dst) };
        return;
    }
    // SAFETY: the portable transposer needs no particular instruction set.
    unsafe { pack_panel_with::<scalar::Scalar>(layout, src, panel, dst) };
}

/// Unpacks one panel on the fastest path this CPU has.
pub(crate) fn unpack_panel(layout: &PackedLayout, input: &[u8], panel: usize, dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if crate::detect::Features::cached().avx512_usable() {
        // SAFETY: the CPU and the OS support AVX-512 F/BW/VL (checked just above).
        unsafe { x86::unpack_panel(layout, input, panel, dst) };
        return;
    }
    // SAFETY: the portable transposer needs no particular instruction set.
    unsafe { unpack_panel_with::<scalar::Scalar>(layout, input, panel, dst) };
}
