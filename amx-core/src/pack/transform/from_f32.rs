//! BF16 panels from f32 rows: each 32-value group of the panel's 16 rows is rounded to
//! BF16 into a 1 KiB stack scratch (round to nearest, ties to even, NaNs kept and made
//! quiet: [`f32_to_bf16`]), then moved exactly as a BF16 group of ggml bytes is
//! ([`pack_group`] with BF16's field table, the checksum accumulated the same way), so
//! the panel is byte for byte the one packing the rounded values' BF16 bytes gives.

use crate::formats::Format;
use crate::formats::bf16::BF16;
use crate::formats::half::f32_to_bf16;

use super::{Isa, PANEL_ROWS, PackedLayout, Run, ZERO, finish_panel, pack_group, panel_rows};

/// Values of one BF16 group (one 64-byte row of a B tile).
const GROUP: usize = crate::pack::FLOAT_GROUP_VALUES;

/// Rounds `values` (at most 32) to BF16 bits in `out`, little endian, zero past them
/// (the padding of a partial last group, as the BF16 move writes it).
#[inline(always)]
fn to_bf16(values: &[f32], out: &mut [u8; 2 * GROUP]) {
    for (i, pair) in out.chunks_exact_mut(2).enumerate() {
        let bits = values.get(i).map_or(0, |&x| f32_to_bf16(x));
        pair.copy_from_slice(&bits.to_le_bytes());
    }
}

/// Packs BF16 panel `panel` of `layout` (a BF16 layout) from `rows`, the f32 values of
/// the panel's rows (`valid * k` of them: the rows past `n` in a last panel are padding,
/// not given), into `dst` (exactly `layout.panel_bytes()`), adding its chunks to `run`.
///
/// # Safety
///
/// The CPU has `Q`'s instruction set.
#[inline(always)]
unsafe fn pack_f32_panel_with<Q: Isa>(
    layout: &PackedLayout,
    rows: &[f32],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
) {
    let k = layout.k();
    let (_, valid) = panel_rows(layout, panel);
    // What the caller (`pack::pack_f32_as_bf16_panels`) checked.
    assert!(layout.format() == Format::BF16);
    assert!(rows.len() == valid * k && dst.len() == layout.panel_bytes());
    // The alignment tail after the last group: zero, whatever the caller's buffer held.
    dst[layout.per_row_offset(layout.groups())..].fill(0);
    let mut scratch = [[0u8; 2 * GROUP]; PANEL_ROWS];
    let out = dst.as_mut_ptr();
    // SAFETY: `Q`'s instruction set is the caller's.
    let mut acc = unsafe { Q::acc_begin(run) };
    for g in 0..layout.groups() {
        let (qo, po) = (layout.quads_offset(g), layout.per_row_offset(g));
        let at = (GROUP * g).min(k)..(GROUP * g + GROUP).min(k);
        for (row, s) in rows.chunks_exact(k).zip(scratch.iter_mut()) {
            to_bf16(&row[at.clone()], s);
        }
        let group: [*const u8; PANEL_ROWS] = core::array::from_fn(|r| match r < valid {
            true => scratch[r].as_ptr(),
            false => ZERO.as_ptr(),
        });
        // SAFETY: every group pointer covers BF16's 64-byte group (a scratch row, or ZERO
        // for padding rows); the group's regions lie inside the panel (`quads_offset` /
        // `per_row_offset` follow the layout `panel_bytes` came from, checked above); the
        // scratch is on the stack and `dst` borrowed mutably, so they do not overlap;
        // `Q`'s instruction set is the caller's.
        unsafe { pack_group::<Q, BF16>(&group, out.add(qo), out.add(po), &mut acc) };
    }
    // SAFETY: `Q`'s instruction set is the caller's; every group went through
    // `pack_group` with `acc`.
    unsafe { finish_panel::<Q>(layout, dst, run, acc) };
}

/// [`pack_f32_panel_with`] on AVX-512.
///
/// # Safety
///
/// The CPU and the OS support AVX-512 F, BW and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn pack_f32_panel_avx512(
    layout: &PackedLayout,
    rows: &[f32],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
) {
    // SAFETY: AVX-512 F/BW/VL are the caller's contract.
    unsafe { pack_f32_panel_with::<super::x86::Avx512<false>>(layout, rows, panel, dst, run) };
}

/// Packs one BF16 panel from the f32 values of its rows on the fastest path this CPU
/// has, adding its chunks to `run` (see [`pack_f32_panel_with`] for the arguments).
pub(crate) fn pack_f32_panel(
    layout: &PackedLayout,
    rows: &[f32],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::detect::Features::cached().avx512_usable() {
        // SAFETY: the CPU and the OS support AVX-512 F/BW/VL (checked just above).
        unsafe { pack_f32_panel_avx512(layout, rows, panel, dst, run) };
        return;
    }
    // SAFETY: the portable transposer needs no particular instruction set.
    unsafe { pack_f32_panel_with::<super::scalar::Scalar>(layout, rows, panel, dst, run) };
}

/// The portable path, for tests that compare it with the fast one on this CPU.
#[cfg(test)]
pub(crate) mod portable {
    use super::{PackedLayout, Run, pack_f32_panel_with};

    pub(crate) fn pack_f32_panel(
        layout: &PackedLayout,
        rows: &[f32],
        panel: usize,
        dst: &mut [u8],
        run: &mut Run,
    ) {
        // SAFETY: the portable moves need no particular instruction set.
        unsafe {
            pack_f32_panel_with::<super::super::scalar::Scalar>(layout, rows, panel, dst, run)
        };
    }
}
