//! [`FormatSpec`], the one trait every format implements (in the spirit of candle's
//! `GgmlType`), [`QuantizedSpec`] for the formats the kernels decode, and the per-format
//! queries of [`Format`] that the rest of the crate reads, each generated from the
//! registry with an exhaustive match.

use super::field::Field;
use super::{Format, with_format, with_quantized};

/// The largest group one row contributes to a packed panel, in bytes (Q6_K's 210-byte
/// block is the largest today); every buffer that holds one group is this long.
pub(crate) const MAX_GROUP_BYTES: usize = 256;

/// The largest group, in values (the 256 of the K-quants and IQ4_XS).
pub(crate) const MAX_GROUP_VALUES: usize = 256;

/// The most sub-blocks (one scale and bias each) one group decodes into (Q6_K: 256 / 16).
pub(crate) const MAX_SUB_BLOCKS: usize = 16;

/// The most fields a packed group has (Q5_K: five).
pub(crate) const MAX_FIELDS: usize = 5;

/// Everything about one format that does not depend on how its values are encoded: the
/// ggml block, the packed group and its field table, the reference dequantizer, and the
/// dispatch threshold. Implemented by the block type of each quantized format
/// ([`super::BlockQ4_0`], ...) and by a marker type for F16 and BF16.
///
/// The registry checks at compile time what the pack and kernel code rely on (see
/// `registry.rs`): the group fits [`MAX_GROUP_BYTES`] and [`MAX_GROUP_VALUES`], the
/// fields tile the group, quads fields are multiples of 16 bytes.
pub(crate) trait FormatSpec {
    /// The format.
    const FORMAT: Format;
    /// Values per ggml block (1 for F16 and BF16).
    const BLOCK_VALUES: usize;
    /// Bytes per ggml block.
    const BLOCK_BYTES: usize;
    /// Values one packed group covers: the block, or 32 for F16/BF16 (one 64-byte row of
    /// a BF16 tile).
    const GROUP_VALUES: usize = Self::BLOCK_VALUES;
    /// Source bytes of one group: the block, or 64 for F16/BF16. Also the distance between
    /// group starts in a ggml row, and the bytes one row contributes to a packed group.
    const GROUP_BYTES: usize = Self::BLOCK_BYTES;
    /// Where each field of a group goes in a 16-row panel: offsets index the group's
    /// source bytes; quads fields in the order they take in the quads region.
    const FIELDS: &'static [Field];
    /// Byte offsets of the f16 scales in a block (empty for F16/BF16): test data gives
    /// them moderate values so that results compare numerically.
    const F16_SCALES: &'static [usize];
    /// Byte offsets of the E8M0 exponent scales in a block (MXFP4's `e`; none in the
    /// others): test data gives them moderate values too (a random byte is a power of two
    /// anywhere in `2^-128 ..= 2^127`).
    const E8M0_SCALES: &'static [usize] = &[];
    /// From how many rows `Path::Auto` takes the AMX path (the crossing point with VNNI,
    /// measured: the notes are on each format's constant).
    const AMX_MIN_ROWS: usize;

    /// Dequantizes whole blocks exactly as gguf-py does: `src` holds exactly
    /// `dst.len() / BLOCK_VALUES` blocks (checked by the caller).
    fn dequantize_blocks(src: &[u8], dst: &mut [f32]);
}

/// A format the kernels decode into unsigned bytes and an affine map per sub-block
/// (`w = scale * u + bias`, see `kernels::decode`); on x86_64 it also implements
/// [`super::codec::Codec`], the AVX-512 decoder that matches [`QuantizedSpec::decode`]
/// bit for bit.
pub(crate) trait QuantizedSpec: FormatSpec {
    /// Values per sub-block (one scale and bias): 32, or 16 for Q2_K, Q3_K, Q6_K. Divides
    /// `BLOCK_VALUES`.
    const SUB_BLOCK: usize;

    /// The scalar decoder, the oracle of the vector ones: decodes the block in the first
    /// `BLOCK_BYTES` of `block` into `out` (values `0..BLOCK_VALUES`, sub-blocks
    /// `0..BLOCK_VALUES / SUB_BLOCK`). Scales and biases are computed with the f32
    /// operations, in the order, that the vector decoders use. A shorter `block` leaves
    /// `out` as it is.
    fn decode(block: &[u8], out: &mut AffineBlock);

    /// For a format the fused VNNI kernel runs with integer sub-block scales
    /// ([`super::int_scales`]), the parameters of the block in the first `BLOCK_BYTES` of
    /// `block`: the scalar definition its `Codec::int_affine` matches. `None` for the
    /// others (and for a shorter `block`).
    #[cfg(test)]
    fn int_scales(block: &[u8]) -> Option<super::int_scales::IntScales> {
        let _ = block;
        None
    }
}

/// One block in the decoded form: unsigned values and, per sub-block, the scale and bias
/// that map them back to weights.
#[derive(Clone, Debug)]
pub(crate) struct AffineBlock {
    /// The unsigned value of each position.
    pub u: [u8; MAX_GROUP_VALUES],
    /// The scale of each sub-block.
    pub scale: [f32; MAX_SUB_BLOCKS],
    /// The bias of each sub-block.
    pub bias: [f32; MAX_SUB_BLOCKS],
}

impl AffineBlock {
    /// All zeros.
    pub(crate) const fn new() -> Self {
        Self { u: [0; MAX_GROUP_VALUES], scale: [0.0; MAX_SUB_BLOCKS], bias: [0.0; MAX_SUB_BLOCKS] }
    }

    /// The form of the signed-grid formats (IQ2_*, IQ3_*): `u = offset + v` for each
    /// signed value `v` of `values` (in position order, `-offset <= v <= 255 - offset`),
    /// and for each sub-block `s < subs` the scale `db(s)` with the bias `db(s) * -offset`.
    pub(crate) fn set_centered(
        &mut self,
        offset: u8,
        values: impl IntoIterator<Item = i8>,
        subs: usize,
        db: impl Fn(usize) -> f32,
    ) {
        for (u, v) in self.u.iter_mut().zip(values) {
            *u = offset.wrapping_add_signed(v);
        }
        for s in 0..subs {
            let d = db(s);
            (self.scale[s], self.bias[s]) = (d, d * -f32::from(offset));
        }
    }
}

/// How the kernels read a format's packed values ([`Format::values`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Values {
    /// Decoded into unsigned bytes and an affine map per `sub_block` values (the formats
    /// with a [`QuantizedSpec`]).
    Decoded {
        /// [`QuantizedSpec::SUB_BLOCK`].
        sub_block: usize,
    },
    /// VNNI pairs of F16, widened by the kernels.
    F16,
    /// VNNI pairs of BF16: AMX B tiles as they are.
    BF16,
}

/// The per-format facts the crate reads at run time, from the format's [`FormatSpec`].
impl Format {
    /// Values one packed group covers ([`FormatSpec::GROUP_VALUES`]).
    pub(crate) const fn group_values(self) -> usize {
        with_format!(self, F => F::GROUP_VALUES)
    }

    /// Source bytes of one packed group ([`FormatSpec::GROUP_BYTES`]).
    pub(crate) const fn group_bytes(self) -> usize {
        with_format!(self, F => F::GROUP_BYTES)
    }

    /// The packed field table ([`FormatSpec::FIELDS`]).
    pub(crate) const fn fields(self) -> &'static [Field] {
        with_format!(self, F => F::FIELDS)
    }

    /// How the kernels read this format's packed values.
    pub(crate) const fn values(self) -> Values {
        with_quantized!(
            self,
            F => Values::Decoded { sub_block: F::SUB_BLOCK },
            Format::F16 => Values::F16,
            Format::BF16 => Values::BF16,
        )
    }

    /// Values per sub-block of the decoded form ([`QuantizedSpec::SUB_BLOCK`]); `None` for
    /// F16 and BF16, which the kernels read as floats.
    pub(crate) const fn sub_block(self) -> Option<usize> {
        match self.values() {
            Values::Decoded { sub_block } => Some(sub_block),
            Values::F16 | Values::BF16 => None,
        }
    }

    /// [`FormatSpec::AMX_MIN_ROWS`].
    pub(crate) const fn amx_min_rows(self) -> usize {
        with_format!(self, F => F::AMX_MIN_ROWS)
    }

    /// [`QuantizedSpec::int_scales`] of the block at the start of `block` (`None` for F16
    /// and BF16 too).
    #[cfg(test)]
    pub(crate) fn int_scales(self, block: &[u8]) -> Option<super::int_scales::IntScales> {
        with_quantized!(self, F => F::int_scales(block), Format::F16 | Format::BF16 => None)
    }

    /// [`FormatSpec::F16_SCALES`].
    #[cfg(test)]
    pub(crate) const fn f16_scales(self) -> &'static [usize] {
        with_format!(self, F => F::F16_SCALES)
    }

    /// [`FormatSpec::E8M0_SCALES`].
    #[cfg(test)]
    pub(crate) const fn e8m0_scales(self) -> &'static [usize] {
        with_format!(self, F => F::E8M0_SCALES)
    }
}
