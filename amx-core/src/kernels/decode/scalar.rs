//! The portable group decoder: rebuilds each row's ggml block and decodes it with the
//! format's scalar decoder (`QuantizedSpec::decode`, in the format's module). It defines
//! what the vectorised decoders must produce, and runs where they cannot (valgrind, CPUs
//! without AVX-512).

use crate::formats::spec::{AffineBlock, MAX_GROUP_VALUES};
use crate::formats::{Format, QuantizedSpec, with_quantized};
use crate::pack::{PANEL_ROWS, PackedLayout, read_block};

use super::Decoded;

/// Decodes row `r`'s block `b` (its ggml bytes) with `F`'s scalar decoder into `out`:
/// the block's values start at value `slot * BLOCK_VALUES` and its sub-blocks at
/// `slot * BLOCK_VALUES / SUB_BLOCK` (slot 0 for the 256-value formats).
fn decode_row<F: QuantizedSpec>(b: &[u8], r: usize, slot: usize, out: &mut Decoded) {
    let mut block = AffineBlock::new();
    F::decode(b, &mut block);
    let subs = F::BLOCK_VALUES / F::SUB_BLOCK;
    for (k, &u) in block.u[..F::BLOCK_VALUES].iter().enumerate() {
        let k = k + slot * F::BLOCK_VALUES;
        out.u[64 * (k / 4) + 4 * r + k % 4] = u;
    }
    for s in 0..subs {
        out.scale[slot * subs + s][r] = block.scale[s];
        out.bias[slot * subs + s][r] = block.bias[s];
    }
}

#[cfg(test)]
/// Decodes group `g` of `panel` (one whole panel of `layout`, a quantized format) into
/// `out`. Rows of a partial panel are the packed zero rows, which decode to zero weights.
/// Does nothing for F16/BF16 or an out-of-range group.
pub(crate) fn decode_group(layout: &PackedLayout, panel: &[u8], g: usize, out: &mut Decoded) {
    decode_span(layout, panel, g, 1, out);
}

/// Decodes groups `g..g + count` into consecutive places of `out`, as the vectorised
/// `decode_span` does: up to 256 values' worth (8 groups of the 32-value formats, 4 of
/// NVFP4's 64, one of the others).
pub(crate) fn decode_span(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    count: usize,
    out: &mut Decoded,
) {
    with_quantized!(
        layout.format(),
        F => decode_span_as::<F>(layout, panel, g, count, out),
        Format::F16 | Format::BF16 => {}
    );
}

/// [`decode_span`] for `F`, the layout's format.
fn decode_span_as<F: QuantizedSpec>(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    count: usize,
    out: &mut Decoded,
) {
    let slots = count.min(MAX_GROUP_VALUES / F::BLOCK_VALUES);
    let mut block = [0u8; 256];
    for slot in 0..slots {
        for r in 0..PANEL_ROWS {
            if read_block(layout, panel, g + slot, r, &mut block).is_some() {
                decode_row::<F>(&block, r, slot, out);
            }
        }
    }
}
