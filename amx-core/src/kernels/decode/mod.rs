//! Group decoding: one group (ggml block) of a 16-row panel turned into unsigned 8-bit
//! values and an affine map per row and sub-block, the one form every quantized kernel
//! reads:
//!
//! `w[row][k] = scale[s][row] * u[row][k] + bias[s][row]`, with `s = k / sub_block`.
//!
//! The unsigned values feed `vpdpbusd` directly (its unsigned operand), and since the bias
//! absorbs any offset (Q4_0's 8, Q8_0's and IQ4_XS's 128, Q6_K's 32, MXFP4's 12), a dot
//! product with int8 activations `x = dx * q` is `dx * (scale * sum(u * q) + bias *
//! sum(q))` per sub-block. The same values, widened to f32, give the BF16 tiles of the AMX path.
//!
//! Each format's decoders are in its module (`formats::q4_0`, ...): the scalar one
//! (`QuantizedSpec::decode`) and the AVX-512 one (`Codec`). This module places their
//! output in a [`Decoded`] and picks the decoder for the layout's format.

pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

use crate::formats::Format;
use crate::formats::spec::MAX_GROUP_VALUES;
pub(crate) use crate::formats::spec::MAX_SUB_BLOCKS;
use crate::pack::PackedLayout;

/// One decoded group of a 16-row panel.
#[derive(Clone)]
#[repr(C, align(64))]
pub(crate) struct Decoded {
    /// Values in VNNI quad order: chunk `j` (bytes `64j..64j + 64`) holds values
    /// `4j..4j + 4` of the group, row `r` at bytes `4r..4r + 4`. Only the first
    /// `group_values / 4` chunks are meaningful.
    pub u: [u8; 64 * MAX_GROUP_VALUES / 4],
    /// Scale of sub-block `s` for each of the 16 rows.
    pub scale: [[f32; 16]; MAX_SUB_BLOCKS],
    /// Bias of sub-block `s` for each of the 16 rows.
    pub bias: [[f32; 16]; MAX_SUB_BLOCKS],
}

impl Decoded {
    /// All zeros.
    pub(crate) const fn new() -> Self {
        Self {
            u: [0; 64 * MAX_GROUP_VALUES / 4],
            scale: [[0.0; 16]; MAX_SUB_BLOCKS],
            bias: [[0.0; 16]; MAX_SUB_BLOCKS],
        }
    }

    /// The weight value at row `r`, group position `k`, given the format's sub-block.
    #[cfg(test)]
    pub(crate) fn value(&self, sub_block: usize, r: usize, k: usize) -> f32 {
        let u = self.u[64 * (k / 4) + 4 * r + k % 4];
        let s = k / sub_block;
        self.scale[s][r] * f32::from(u) + self.bias[s][r]
    }
}

/// A span decoder: decodes groups `g..g + count` of a panel into a [`Decoded`] (up to
/// [`span_groups`] of them).
///
/// # Safety
///
/// The CPU has the instruction set of the decoder (see [`best`]).
pub(crate) type DecodeFn = unsafe fn(&PackedLayout, &[u8], usize, usize, &mut Decoded);

/// The fastest decoder this CPU runs: AVX-512 where usable (with the grid lookups of
/// [`Grids::detected`]), the portable one otherwise. Calling the returned function is
/// sound on this CPU.
///
/// [`Grids::detected`]: crate::formats::codec::Grids::detected
pub(crate) fn best() -> DecodeFn {
    #[cfg(target_arch = "x86_64")]
    if crate::detect::Features::cached().avx512_usable() {
        use crate::formats::codec::Grids;
        return match Grids::detected() {
            Grids::Gather => x86::decode_span,
            Grids::Vbmi => x86::decode_span_vbmi,
        };
    }
    scalar::decode_span
}

/// Groups one decoder call takes: 256 values' worth, 8 of the 32-value formats, 4 of
/// NVFP4's 64-value blocks, 1 of the others, so that the per-call work is the same for
/// every format.
pub(crate) const fn span_groups(format: Format) -> usize {
    MAX_GROUP_VALUES / format.group_values()
}

#[cfg(test)]
mod tests;
