//! The byte moves between ggml rows and 16-row panels.
//!
//! The panel walk is shared; the 16-row transpose of quads fields, where the time goes, has
//! a portable path (which valgrind can run) and an AVX-512 path chosen at run time.

mod from_f32;
mod head;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use from_f32::pack_f32_panel;

use core::marker::PhantomData;

use crate::formats::spec::{MAX_FIELDS, MAX_GROUP_BYTES};
use crate::formats::{FormatSpec, with_format};

use super::checksum::{CHUNK, Run};
use super::layout::{
    PANEL_ROWS, PackedLayout, field_base, field_is_quads, field_len, field_offset, quad_bytes,
};
use head::{HEAD_BYTES, Head, head};

/// The largest group, in bytes; also the longest field.
const MAX_GROUP: usize = MAX_GROUP_BYTES;

/// Zero bytes that padding rows are packed from.
static ZERO: [u8; MAX_GROUP] = [0; MAX_GROUP];

/// The per-instruction-set piece: the 16-row transpose of a quads field, and the body
/// checksum of a panel.
pub(crate) trait Isa {
    /// Whether [`Isa::pack`] adds the chunks it stores to the checksum accumulator itself
    /// (from registers, in store order, which is memory order within a panel's quads
    /// region). Otherwise the panel's quads are summed after they are written.
    const FUSED_SUM: bool;
    /// The checksum accumulator [`Isa::pack`] adds to: registers for a whole panel, so
    /// that it is loaded and stored once per panel, not once per field (`()` without
    /// [`Isa::FUSED_SUM`]).
    type Acc: Copy;
    /// The accumulator holding `run`'s sums so far.
    ///
    /// # Safety
    ///
    /// The CPU has the implementation's instruction set.
    unsafe fn acc_begin(run: &Run) -> Self::Acc;
    /// Stores `acc` back into `run`, which `chunks` chunks were added to since
    /// [`Isa::acc_begin`].
    ///
    /// # Safety
    ///
    /// The CPU has the implementation's instruction set.
    unsafe fn acc_end(run: &mut Run, acc: Self::Acc, chunks: usize);
    /// Packs one quads field: for `c < len / 4` and `r < 16`, bytes `64c + 4r .. +4` of
    /// `out` get bytes `4c .. 4c + 4` of `rows[r]`. With [`Isa::FUSED_SUM`], the `16 * len
    /// / 64` chunks written are added to `acc` in address order.
    ///
    /// # Safety
    ///
    /// `len` is a multiple of 16; every `rows[r]` is valid for reads of `len` bytes; `out`
    /// is valid for writes of `16 * len` bytes and overlaps none of the rows; the CPU has
    /// the implementation's instruction set.
    unsafe fn pack(rows: &[*const u8; PANEL_ROWS], len: usize, out: *mut u8, acc: &mut Self::Acc);
    /// Adds the whole chunks of `bytes` to `run` ([`Run::update`] on this instruction set).
    ///
    /// # Safety
    ///
    /// The CPU has the implementation's instruction set.
    unsafe fn sum(run: &mut Run, bytes: &[u8]);
    /// The inverse of [`Isa::pack`]: writes `len` bytes at every `rows[r]`.
    ///
    /// # Safety
    ///
    /// `len` is a multiple of 16; `input` is valid for reads of `16 * len` bytes; every
    /// `rows[r]` is valid for writes of `len` bytes (rows may alias each other, not
    /// `input`); the CPU has the implementation's instruction set.
    unsafe fn unpack(input: *const u8, len: usize, rows: &[*mut u8; PANEL_ROWS]);
    /// Hints that the cache line at `p` will be used soon (nothing where the instruction
    /// set has no such hint). Any address: a prefetch never faults.
    #[inline(always)]
    fn prefetch(_p: *const u8) {}
    /// Whether [`Isa::pack`] writes its chunks with streaming (non-temporal) stores, which
    /// skip the read for ownership of the destination lines and leave them out of the
    /// caches; only the per-row region's destination lines are then prefetched
    /// ([`Ahead`]).
    const STREAM: bool = false;
    /// Whether [`Isa::pack_head`] moves per-row fields (otherwise they are copied one by
    /// one).
    const HEAD: bool = false;
    /// Writes a group's whole per-row region, `head.len` bytes at `per_row`: byte `j` is
    /// byte `idx[j] % 8` of row `idx[j] / 8`'s group ([`Head`]). Only called with
    /// [`Isa::HEAD`].
    ///
    /// # Safety
    ///
    /// Every `group[r]` is readable for [`HEAD_BYTES`] bytes; `per_row` is writable for
    /// `head.len` bytes and overlaps no row; `head.len <= 128`; the CPU has the
    /// implementation's instruction set.
    #[inline(always)]
    unsafe fn pack_head(_group: &[*const u8; PANEL_ROWS], _head: &Head, _per_row: *mut u8) {}
}

/// The next panel's bytes, fetched while this panel is packed: its source in one
/// sequential sweep (instead of the 16 row streams the transposes read) and its
/// destination lines (the stores' read for ownership then finds them close). Without
/// this, packing F16/BF16 at 4096 x 4096 (32 MiB) ran at 70-85 % of a plain copy; with
/// it 97-104 %. A share of `step` bytes of each per group.
struct Ahead {
    src: *const u8,
    dst: *const u8,
    len: usize,
    step: usize,
    /// The first destination offset prefetched: the per-row region's when the quads are
    /// streamed, 0 otherwise.
    dst_from: usize,
}

impl Ahead {
    /// For the panel whose source rows end at byte `end` of `src` and whose bytes are
    /// `dst`: the next panel's source starts at `end` (the next row, in this matrix or the
    /// next), its destination right after `dst` (panels are consecutive in the layout).
    fn new(src: &[u8], end: usize, dst: &[u8], rb: usize, groups: usize, dst_from: usize) -> Self {
        let len = src.len().saturating_sub(end).min(PANEL_ROWS * rb);
        Ahead {
            src: src.as_ptr().wrapping_add(end),
            dst: dst.as_ptr().wrapping_add(dst.len()),
            len,
            step: len.div_ceil(groups.max(1)).next_multiple_of(64),
            dst_from,
        }
    }

    /// The prefetches that go with group `g`.
    #[inline(always)]
    fn group<Q: Isa>(&self, g: usize) {
        let mut off = g * self.step;
        let end = ((g + 1) * self.step).min(self.len);
        while off < end {
            Q::prefetch(self.src.wrapping_add(off));
            if off >= self.dst_from {
                Q::prefetch(self.dst.wrapping_add(off));
            }
            off += 64;
        }
    }
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

/// The bytes of F16/BF16 group `g` (64 bytes of 32 values) in a row: fewer in a partial
/// last group, none past the row's end.
#[inline(always)]
fn float_part(row: &[u8], g: usize) -> core::ops::Range<usize> {
    let start = (64 * g).min(row.len());
    start..(start + 64).min(row.len())
}

/// Whether group `g` of a row is stored as plain bytes at `g * F::GROUP_BYTES` of the ggml
/// row, so it can be moved without a scratch copy: always where a group is one block (the
/// quantized formats), for F16/BF16 every group but a partial last one.
#[inline(always)]
fn direct<F: FormatSpec>(g: usize, rb: usize) -> bool {
    F::GROUP_VALUES == F::BLOCK_VALUES || F::GROUP_BYTES * (g + 1) <= rb
}

/// Field `N` of `F`'s table as constants: past the table's end an empty per-row field, so
/// that the code for a fixed number of fields skips the missing ones at compile time.
struct FieldAt<F, const N: usize>(PhantomData<F>);

impl<F: FormatSpec, const N: usize> FieldAt<F, N> {
    /// Whether the field is a quads field.
    const QUADS: bool = field_is_quads(F::FIELDS, N);
    /// Its offset in the group's source bytes.
    const OFFSET: usize = field_offset(F::FIELDS, N);
    /// Its length (0 past the table's end).
    const LEN: usize = field_len(F::FIELDS, N);
    /// Its offset inside its region (quads or per-row) of one group of a panel.
    const BASE: usize = field_base(F::FIELDS, N);
}

/// The bytes of one group's quads and per-row regions in a panel of `F`: the steps of
/// `layout.quads_offset` and `per_row_offset` as constants (those calls, made per group,
/// cost about 3 % of a small-block format's unpack).
struct GroupRegions<F>(PhantomData<F>);

impl<F: FormatSpec> GroupRegions<F> {
    const BYTES: (usize, usize) =
        (PANEL_ROWS * quad_bytes(F::FORMAT), PANEL_ROWS * (F::GROUP_BYTES - quad_bytes(F::FORMAT)));
}

/// `F`'s [`Head`], as a constant.
struct HeadOf<F>(PhantomData<F>);

impl<F: FormatSpec> HeadOf<F> {
    /// The plan; `len` 0 for formats without one.
    const PLAN: Head = head(F::FIELDS, F::GROUP_BYTES);
    /// Whether `Q` moves `F`'s per-row fields in one [`Isa::pack_head`]: a plan exists,
    /// and a group is one whole block, so that every group pointer is readable for
    /// [`HEAD_BYTES`] (padding rows read [`ZERO`]).
    const fn used<Q: Isa>() -> bool {
        Q::HEAD && Self::PLAN.len > 0 && F::GROUP_VALUES == F::BLOCK_VALUES
    }
}

const _: () = assert!(MAX_GROUP >= HEAD_BYTES);

/// Packs field `N` of `F`'s group: `LEN` bytes at `OFFSET` of each of the 16 rows, into
/// the field's place in the group's quads region `quads` (through [`Isa::pack`] with
/// `acc`) or per-row region `per_row`. An empty field is nothing, and so is a per-row
/// field when `Q` moved them all with [`Isa::pack_head`].
///
/// # Safety
///
/// Every `group[r]` is readable for `F::GROUP_BYTES` bytes; the two regions are writable
/// for the group's share of each and overlap no row; the CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn pack_field<Q: Isa, F: FormatSpec, const N: usize>(
    group: &[*const u8; PANEL_ROWS],
    quads: *mut u8,
    per_row: *mut u8,
    acc: &mut Q::Acc,
) {
    let len = FieldAt::<F, N>::LEN;
    if len == 0 || (!FieldAt::<F, N>::QUADS && HeadOf::<F>::used::<Q>()) {
        return;
    }
    let at = group.map(|p| p.wrapping_add(FieldAt::<F, N>::OFFSET));
    // SAFETY: the caller's contract: the field lies inside the group (`OFFSET + LEN <=
    // GROUP_BYTES`, checked by the registry), its place of `16 * len` bytes inside the
    // group's region (`BASE`, from the same table that sized the regions).
    unsafe {
        if FieldAt::<F, N>::QUADS {
            Q::pack(&at, len, quads.add(FieldAt::<F, N>::BASE), acc);
        } else {
            let out = per_row.add(FieldAt::<F, N>::BASE);
            for (r, a) in at.iter().enumerate() {
                core::ptr::copy_nonoverlapping(*a, out.add(r * len), len);
            }
        }
    }
}

/// The inverse of [`pack_field`].
///
/// # Safety
///
/// The two regions are readable for the group's share of each; every `group[r]` is
/// writable for `F::GROUP_BYTES` bytes (rows may alias each other, not the regions); the
/// CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn unpack_field<Q: Isa, F: FormatSpec, const N: usize>(
    quads: *const u8,
    per_row: *const u8,
    group: &[*mut u8; PANEL_ROWS],
) {
    let len = FieldAt::<F, N>::LEN;
    if len == 0 {
        return;
    }
    let at = group.map(|p| p.wrapping_add(FieldAt::<F, N>::OFFSET));
    // SAFETY: the caller's contract; the field and its place are where `pack_field` put
    // them; per-row copies read inside `16 * len` bytes of the region.
    unsafe {
        if FieldAt::<F, N>::QUADS {
            Q::unpack(quads.add(FieldAt::<F, N>::BASE), len, &at);
        } else {
            let input = per_row.add(FieldAt::<F, N>::BASE);
            for (r, a) in at.iter().enumerate() {
                core::ptr::copy_nonoverlapping(input.add(r * len), *a, len);
            }
        }
    }
}

/// Packs one group of `F` from the group pointers `group` into the group's quads region
/// `quads` and per-row region `per_row` of a panel: every field of `F`'s table, the quads
/// fields in table order (their order in the region), each through [`Isa::pack`] with
/// `acc`. Straight-line code with the table folded into constants.
///
/// # Safety
///
/// As [`pack_field`].
#[inline(always)]
unsafe fn pack_group<Q: Isa, F: FormatSpec>(
    group: &[*const u8; PANEL_ROWS],
    quads: *mut u8,
    per_row: *mut u8,
    acc: &mut Q::Acc,
) {
    const { assert!(F::FIELDS.len() <= MAX_FIELDS) };
    // SAFETY: the caller's contract, for each field; with a head plan, every group
    // pointer is readable for HEAD_BYTES <= GROUP_BYTES (`HeadOf::used`), and the plan's
    // region is the group's per-row region (the same table laid it out).
    unsafe {
        if HeadOf::<F>::used::<Q>() {
            Q::pack_head(group, &HeadOf::<F>::PLAN, per_row);
        }
        pack_field::<Q, F, 0>(group, quads, per_row, acc);
        pack_field::<Q, F, 1>(group, quads, per_row, acc);
        pack_field::<Q, F, 2>(group, quads, per_row, acc);
        pack_field::<Q, F, 3>(group, quads, per_row, acc);
        pack_field::<Q, F, 4>(group, quads, per_row, acc);
    }
}

/// The inverse of [`pack_group`].
///
/// # Safety
///
/// As [`unpack_field`].
#[inline(always)]
unsafe fn unpack_group<Q: Isa, F: FormatSpec>(
    quads: *const u8,
    per_row: *const u8,
    group: &[*mut u8; PANEL_ROWS],
) {
    const { assert!(F::FIELDS.len() <= MAX_FIELDS) };
    // SAFETY: the caller's contract, for each field.
    unsafe {
        unpack_field::<Q, F, 0>(quads, per_row, group);
        unpack_field::<Q, F, 1>(quads, per_row, group);
        unpack_field::<Q, F, 2>(quads, per_row, group);
        unpack_field::<Q, F, 3>(quads, per_row, group);
        unpack_field::<Q, F, 4>(quads, per_row, group);
    }
}

/// Packs one panel with transposer `Q`: `src` is the whole stacked ggml source
/// (`layout.source_bytes()` bytes), `dst` exactly the panel's `layout.panel_bytes()`.
/// Adds the panel's chunks, in address order, to `run`.
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn pack_panel_with<Q: Isa>(
    layout: &PackedLayout,
    src: &[u8],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
) {
    // SAFETY: forwarded contract.
    unsafe {
        with_format!(layout.format(), F => pack_panel_as::<Q, F>(layout, src, panel, dst, run))
    }
}

/// [`pack_panel_with`] for the format of `F`, which is `layout.format()`.
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn pack_panel_as<Q: Isa, F: FormatSpec>(
    layout: &PackedLayout,
    src: &[u8],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
) {
    const { assert!(F::GROUP_BYTES <= MAX_GROUP) };
    let (gb, rb, stride) = (F::GROUP_BYTES, layout.source_row_bytes(), F::GROUP_BYTES);
    let (first, valid) = panel_rows(layout, panel);
    assert!(F::FORMAT == layout.format());
    assert!(src.len() >= (first + valid) * rb && dst.len() == layout.panel_bytes());
    let rows: [&[u8]; PANEL_ROWS] = core::array::from_fn(|r| match r < valid {
        true => &src[(first + r) * rb..(first + r + 1) * rb],
        false => &ZERO[..gb],
    });
    // The alignment tail after the last group: zero, whatever the caller's buffer held.
    dst[layout.per_row_offset(layout.groups())..].fill(0);
    // Streamed quads need no lines in cache; the per-row region's plain stores do.
    let dst_from = if Q::STREAM { layout.per_row_offset(0) } else { 0 };
    let ahead = Ahead::new(src, (first + valid) * rb, dst, rb, layout.groups(), dst_from);
    let mut scratch = [[0u8; 64]; PANEL_ROWS];
    let out = dst.as_mut_ptr();
    // SAFETY: `Q`'s instruction set is the caller's.
    let mut acc = unsafe { Q::acc_begin(run) };
    let (quad_group, row_group) = GroupRegions::<F>::BYTES;
    let per_row_start = layout.groups() * quad_group;
    for g in 0..layout.groups() {
        ahead.group::<Q>(g);
        let (qo, po) = (g * quad_group, per_row_start + g * row_group);
        debug_assert_eq!((qo, po), (layout.quads_offset(g), layout.per_row_offset(g)));
        let group: [*const u8; PANEL_ROWS] = if direct::<F>(g, rb) {
            // In bounds: g * stride + gb <= rb for a direct group; padding rows stay on
            // ZERO, which is as long as any group.
            core::array::from_fn(|r| match r < valid {
                true => rows[r].as_ptr().wrapping_add(g * stride),
                false => ZERO.as_ptr(),
            })
        } else {
            // A partial last F16/BF16 group, padded with zero values.
            for (row, s) in rows.iter().zip(scratch.iter_mut()).take(valid) {
                let part = &row[float_part(row, g)];
                s[..part.len()].copy_from_slice(part);
                s[part.len()..].fill(0);
            }
            core::array::from_fn(|r| match r < valid {
                true => scratch[r].as_ptr(),
                false => ZERO.as_ptr(),
            })
        };
        // SAFETY: every group pointer covers the group's `gb` bytes (see above); the
        // group's two regions lie inside the panel (`quads_offset`/`per_row_offset`
        // follow the layout that `panel_bytes` was computed from); source and panel do
        // not overlap (one is borrowed shared, the other mutably); `Q`'s instruction set
        // is the caller's.
        unsafe { pack_group::<Q, F>(&group, out.add(qo), out.add(po), &mut acc) };
    }
    // SAFETY: `Q`'s instruction set is the caller's; every group went through
    // `pack_group` with `acc`.
    unsafe { finish_panel::<Q>(layout, dst, run, acc) };
}

/// Completes the checksum of a packed panel `dst` whose groups went through
/// [`pack_group`] with `acc` (begun on `run`): stores the accumulator, then sums what was
/// not summed as it was stored.
///
/// # Safety
///
/// The CPU has `Q`'s instruction set; with [`Isa::FUSED_SUM`], every chunk of the panel's
/// quads region was added to `acc`, in address order.
#[inline(always)]
unsafe fn finish_panel<Q: Isa>(layout: &PackedLayout, dst: &[u8], run: &mut Run, acc: Q::Acc) {
    let quads = layout.per_row_offset(0);
    // SAFETY: `Q`'s instruction set is the caller's; with `FUSED_SUM` the whole quads
    // region, `quads / CHUNK` chunks, went through `acc` (nothing without it).
    unsafe { Q::acc_end(run, acc, if Q::FUSED_SUM { quads / CHUNK } else { 0 }) };
    // The quads region (whole chunks: 16 rows of 4-byte quads) was summed as it was
    // stored, or is summed now; then the per-row region and the zero tail, read back
    // while they are still in cache.
    let summed = if Q::FUSED_SUM { quads } else { 0 };
    // SAFETY: `Q`'s instruction set is the caller's.
    unsafe { Q::sum(run, &dst[summed..]) };
}

/// Unpacks one panel with transposer `Q`: `input` is the panel, `dst` the ggml rows it
/// covers (`valid * layout.source_row_bytes()` bytes).
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn unpack_panel_with<Q: Isa>(
    layout: &PackedLayout,
    input: &[u8],
    panel: usize,
    dst: &mut [u8],
) {
    // SAFETY: forwarded contract.
    unsafe {
        with_format!(layout.format(), F => unpack_panel_as::<Q, F>(layout, input, panel, dst))
    }
}

/// [`unpack_panel_with`] for the format of `F`, which is `layout.format()`.
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn unpack_panel_as<Q: Isa, F: FormatSpec>(
    layout: &PackedLayout,
    input: &[u8],
    panel: usize,
    dst: &mut [u8],
) {
    const { assert!(F::GROUP_BYTES <= MAX_GROUP) };
    let (rb, stride) = (layout.source_row_bytes(), F::GROUP_BYTES);
    let (_, valid) = panel_rows(layout, panel);
    assert!(F::FORMAT == layout.format());
    assert!(input.len() == layout.panel_bytes() && dst.len() == valid * rb);
    let mut scratch = [[0u8; MAX_GROUP]; PANEL_ROWS];
    let (quad_group, row_group) = GroupRegions::<F>::BYTES;
    let per_row_start = layout.groups() * quad_group;
    for g in 0..layout.groups() {
        let (qo, po) = (g * quad_group, per_row_start + g * row_group);
        debug_assert_eq!((qo, po), (layout.quads_offset(g), layout.per_row_offset(g)));
        let direct = direct::<F>(g, rb);
        let base_ptr = dst.as_mut_ptr();
        let sinks: [*mut u8; PANEL_ROWS] = core::array::from_fn(|r| scratch[r].as_mut_ptr());
        // Real rows are written in place when the group is whole ggml bytes; padding rows
        // and partial F16/BF16 groups go to the per-row scratch first.
        let group: [*mut u8; PANEL_ROWS] = core::array::from_fn(|r| match r < valid && direct {
            true => base_ptr.wrapping_add(r * rb + g * stride),
            false => sinks[r],
        });
        // SAFETY: in-place group pointers cover `gb` bytes inside row r of `dst`
        // (g * stride + gb <= rb when `direct`), scratch rows hold MAX_GROUP >= gb bytes;
        // the group's regions lie inside the panel, which does not overlap `dst`; `Q`'s
        // instruction set is the caller's.
        unsafe { unpack_group::<Q, F>(input.as_ptr().add(qo), input.as_ptr().add(po), &group) };
        if !direct {
            // A partial last F16/BF16 group: keep the values, drop the padding.
            for (s, row) in scratch.iter().zip(dst.chunks_exact_mut(rb)).take(valid) {
                let range = float_part(row, g);
                let len = range.len();
                row[range].copy_from_slice(&s[..len]);
            }
        }
    }
}

/// Packs one panel on the fastest path this CPU has, adding its chunks to `run`. With
/// `stream`, a panel that starts at a multiple of 64 bytes gets its quads by streaming
/// stores on AVX-512 (for outputs too large to stay in cache: no read for ownership).
pub(crate) fn pack_panel(
    layout: &PackedLayout,
    src: &[u8],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
    stream: bool,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let features = crate::detect::Features::cached();
        if features.avx512_vbmi_usable() {
            // SAFETY: the CPU and the OS support AVX-512 F/BW/VL/VBMI (checked just above).
            unsafe { x86::pack_panel_vbmi(layout, src, panel, dst, run, stream) };
            return;
        }
        if features.avx512_usable() {
            // SAFETY: the CPU and the OS support AVX-512 F/BW/VL (checked just above).
            unsafe { x86::pack_panel(layout, src, panel, dst, run, stream) };
            return;
        }
    }
    let _ = stream;
    // SAFETY: the portable transposer needs no particular instruction set.
    unsafe { pack_panel_with::<scalar::Scalar>(layout, src, panel, dst, run) };
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

/// The portable paths, for tests that compare them with the fast ones on this CPU.
#[cfg(test)]
pub(crate) mod portable {
    use super::{PackedLayout, Run, pack_panel_with, scalar::Scalar, unpack_panel_with};

    pub(crate) use super::from_f32::portable::pack_f32_panel;

    pub(crate) fn pack_panel(
        layout: &PackedLayout,
        src: &[u8],
        panel: usize,
        dst: &mut [u8],
        run: &mut Run,
    ) {
        // SAFETY: the portable moves need no particular instruction set.
        unsafe { pack_panel_with::<Scalar>(layout, src, panel, dst, run) };
    }

    pub(crate) fn unpack_panel(layout: &PackedLayout, input: &[u8], panel: usize, dst: &mut [u8]) {
        // SAFETY: the portable moves need no particular instruction set.
        unsafe { unpack_panel_with::<Scalar>(layout, input, panel, dst) };
    }

    /// The AVX-512 packer without VBMI, which [`super::pack_panel`] does not choose on a
    /// CPU with VBMI; `false` (and nothing written) where AVX-512 is missing.
    pub(crate) fn pack_panel_avx512_without_vbmi(
        layout: &PackedLayout,
        src: &[u8],
        panel: usize,
        dst: &mut [u8],
        run: &mut Run,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if crate::detect::Features::cached().avx512_usable() {
            // SAFETY: the CPU and the OS support AVX-512 F/BW/VL (checked just above).
            unsafe { super::x86::pack_panel(layout, src, panel, dst, run, false) };
            return true;
        }
        let _ = (layout, src, panel, dst, run);
        false
    }
}
