//! The AVX-512 group decoder: each format's [`Codec`] (in the format's module, e.g.
//! `formats/q4_k/x86.rs`, where the table of packed chunk to decoded chunk is) decodes the
//! chunks of one sub-block and the affine maps of one group from the packed bytes into
//! registers; [`decode_span`] stores them into a [`Decoded`], bit-identical to
//! [`super::scalar::decode_span`]. The VNNI kernel's fused path hands them to `vpdpbusd`
//! as they come.

use core::arch::x86_64::{__m512, __m512i, _mm512_storeu_ps, _mm512_storeu_si512};

#[cfg(test)]
use crate::formats::codec::Grids;
use crate::formats::codec::{Affine, Codec};
use crate::formats::{Format, with_quantized};
use crate::pack::PackedLayout;

use super::{Decoded, MAX_SUB_BLOCKS};

/// Runs `$body` with `$s` bound to each of `0..$n` in turn, as straight-line code (`$n`
/// at most 16, a constant after monomorphisation, e.g. [`Codec::SUB_BLOCKS`]), so that
/// every sub-block index is a constant: the codecs' index arithmetic folds away and the
/// decoded chunks and affine maps stay in registers.
macro_rules! for_each_sub_block {
    ($n:expr, |$s:ident| $body:block) => {
        for_each_sub_block!(@ $n, $s, $body, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@ $n:expr, $s:ident, $body:block, $($i:literal)*) => {
        const { assert!($n <= 16) };
        $(
            if $i < $n {
                let $s: usize = $i;
                $body
            }
        )*
    };
}
pub(crate) use for_each_sub_block;

/// Whether `panel` is a whole panel of `layout` and `F` is the layout's format with its
/// region sizes: then for every group `g < layout.groups()`, the `F::QUADS` bytes at
/// `layout.quads_offset(g)` and the `F::PER_ROW` bytes at `layout.per_row_offset(g)`
/// lie inside `panel`.
pub(crate) fn fits<F: Codec>(layout: &PackedLayout, panel: &[u8]) -> bool {
    panel.len() == layout.panel_bytes()
        && layout.format() == F::FORMAT
        && layout.quads_offset(1) == F::QUADS
        && layout.per_row_offset(1) - layout.per_row_offset(0) == F::PER_ROW
        && F::SUB_BLOCK * F::SUB_BLOCKS == F::BLOCK_VALUES
}

/// Stores decoded chunk `j` (`j < 64`).
#[inline]
#[target_feature(enable = "avx512f")]
fn st(out: &mut Decoded, j: usize, v: __m512i) {
    let d = &mut out.u[64 * j..64 * j + 64];
    // SAFETY: `d` is 64 writable bytes; the store is unaligned.
    unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), v) }
}

/// Stores `scale` and `bias` of sub-block `s` (`s < MAX_SUB_BLOCKS`).
#[inline]
#[target_feature(enable = "avx512f")]
fn st_affine(out: &mut Decoded, s: usize, scale: __m512, bias: __m512) {
    let (sc, bi) = (&mut out.scale[s], &mut out.bias[s]);
    // SAFETY: each destination is 16 writable f32.
    unsafe {
        _mm512_storeu_ps(sc.as_mut_ptr(), scale);
        _mm512_storeu_ps(bi.as_mut_ptr(), bias);
    }
}

/// Defines `$name`, the group decoder compiled with `$features`, calling
/// `Codec::$sub_block` (two copies, one per [`Grids`](crate::formats::codec::Grids), as
/// for the fused kernel).
macro_rules! decode_groups {
    ($name:ident, $features:literal, $sub_block:ident) => {
        /// Decodes groups `g..g + count` of `panel` into consecutive slots of `out`
        /// (group `g + i` in chunks `i * group_values / 4..` and sub-blocks
        /// `i * SUB_BLOCKS..`). Groups past the panel's or past the room in `out` are not
        /// decoded, nor is anything when `panel` is not a whole panel of `layout` in `F`'s
        /// format.
        #[inline(never)]
        #[target_feature(enable = $features)]
        fn $name<F: Codec>(
            layout: &PackedLayout,
            panel: &[u8],
            g: usize,
            count: usize,
            out: &mut Decoded,
        ) {
            if !fits::<F>(layout, panel) {
                return;
            }
            let (chunks, subs) = (F::SUB_BLOCK / 4, F::SUB_BLOCKS);
            let room = (MAX_SUB_BLOCKS / subs).min(out.u.len() / 64 / (subs * chunks));
            let rows = layout.per_row_offset(0);
            for slot in 0..count.min(room).min(layout.groups().saturating_sub(g)) {
                // `fits`: group g + slot's regions are at these offsets, inside the panel.
                let (qo, po) = ((g + slot) * F::QUADS, rows + (g + slot) * F::PER_ROW);
                let (Some(q), Some(p)) =
                    (panel.get(qo..qo + F::QUADS), panel.get(po..po + F::PER_ROW))
                else {
                    return;
                };
                for_each_sub_block!(F::SUB_BLOCKS, |s| {
                    // SAFETY: `q` is the group's `QUADS` bytes, `p` its `PER_ROW` bytes and
                    // `s < SUB_BLOCKS`; AVX-512 F/BW/VL (and VBMI in the VBMI body) are
                    // enabled here.
                    let w = unsafe { F::$sub_block(q.as_ptr(), p.as_ptr(), s) };
                    for (j, v) in w.into_iter().take(chunks).enumerate() {
                        st(out, (slot * subs + s) * chunks + j, v);
                    }
                });
                let mut a = Affine::zero();
                // SAFETY: `q` is the group's `QUADS` bytes, `p` its `PER_ROW` bytes; AVX-512
                // F/BW/VL are enabled here.
                unsafe { F::affine_with(q.as_ptr(), p.as_ptr(), &mut a) };
                for s in 0..subs {
                    st_affine(out, slot * subs + s, a.scale[s], a.bias[s]);
                }
            }
        }
    };
}

decode_groups!(decode_groups, "avx512f,avx512bw,avx512vl", sub_block);
decode_groups!(decode_groups_vbmi, "avx512f,avx512bw,avx512vl,avx512vbmi", sub_block_vbmi);

#[cfg(test)]
/// Decodes group `g` of `panel` (one whole panel of `layout`, a quantized format) into
/// `out` with the lookups `grids`, exactly as [`super::scalar::decode_group`]: the first
/// `group_values / 4` chunks of `u` and the first `group_values / sub_block` scales and
/// biases; the rest of `out` is left as it is. Does nothing for F16/BF16, an
/// out-of-range group or a `panel` that is not a whole panel of `layout`.
///
/// # Safety
///
/// AVX-512 F/BW/VL are usable, and VBMI where `grids` is [`Grids::Vbmi`].
pub(crate) unsafe fn decode_group(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    out: &mut Decoded,
    grids: Grids,
) {
    match grids {
        // SAFETY: the caller's contract: AVX-512 F/BW/VL.
        Grids::Gather => unsafe { decode_span(layout, panel, g, 1, out) },
        // SAFETY: the caller's contract: AVX-512 F/BW/VL and VBMI.
        Grids::Vbmi => unsafe { decode_span_vbmi(layout, panel, g, 1, out) },
    }
}

/// Decodes groups `g..g + count` into consecutive places of `out`: for the 32-value
/// formats up to 8 groups (group `g + i` in chunks `8i..8i + 8` and sub-block `i`), for
/// NVFP4 up to 4 (group `g + i` in chunks `16i..16i + 16`, sub-blocks `4i..4i + 4`), for
/// the 256-value formats one. Extra groups (past the panel or the 256 values) are not
/// decoded. The IQ formats' grids by `vpgatherdd`
/// ([`Grids::Gather`](crate::formats::codec::Grids::Gather)).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn decode_span(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    count: usize,
    out: &mut Decoded,
) {
    // One group of the 256-value formats, up to 4 of NVFP4's, up to 8 of the 32-value
    // ones (as many as fit).
    with_quantized!(
        layout.format(),
        F => decode_groups::<F>(layout, panel, g, count, out),
        Format::F16 | Format::BF16 => {}
    );
}

/// [`decode_span`] with the grids by VBMI byte permutes
/// ([`Grids::Vbmi`](crate::formats::codec::Grids::Vbmi)) for the formats with such a body
/// ([`Codec::VBMI`]), the same bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
pub(crate) fn decode_span_vbmi(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    count: usize,
    out: &mut Decoded,
) {
    with_quantized!(
        layout.format(),
        F => if F::VBMI {
            decode_groups_vbmi::<F>(layout, panel, g, count, out)
        } else {
            // No second copy of the formats without a VBMI body.
            decode_groups::<F>(layout, panel, g, count, out)
        },
        Format::F16 | Format::BF16 => {}
    );
}
