//! ggml block formats: byte layouts exactly as in a GGUF file, row sizes, and a scalar
//! reference dequantizer per format (the oracle the kernels are tested against), each
//! with everything else the crate knows about it.
//!
//! # One home per format
//!
//! Each format is one module, which holds everything about it: the block layout and its
//! reference dequantization, the packed field table, the sub-block size and the scalar
//! decoder, the AVX-512 decoder (`x86.rs` of the module) and the AMX dispatch threshold
//! with its measurements:
//!
//! | module | format |
//! |---|---|
//! | `q4_0`, `q4_1`, `q5_0`, `q5_1`, `q8_0` | Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (32-value blocks) |
//! | `iq4_nl` | IQ4_NL (32-value blocks, non-linear table) |
//! | `q2_k`, `q3_k`, `q4_k`, `q5_k`, `q6_k` | the K-quants (256-value super-blocks) |
//! | `iq3_xxs` | IQ3_XXS (256 values, grid indices per 4 values, 7-bit sign indices, 4-bit scales per 32) |
//! | `iq3_s` | IQ3_S (256 values, 9-bit grid indices per 4 values, sign bits, 4-bit scales per 32) |
//! | `iq1_s` | IQ1_S (256 values, 11-bit indices into a ternary grid per 8 values, scale and delta per 32) |
//! | `iq1_m` | IQ1_M (256 values, IQ1_S's grid, delta per 8 values, 3-bit scales per 16, d split over the scales) |
//! | `iq4_xs` | IQ4_XS (256 values, non-linear table) |
//! | `iq2_xxs` | IQ2_XXS (256 values, 8-value grid of {8, 25, 43} with signs, 4-bit scales per 32) |
//! | `iq2_xs` | IQ2_XS (256 values, 512-entry 8-value grid with sign indices, 4-bit scales per 16) |
//! | `iq2_s` | IQ2_S (256 values, 1024-entry 8-value grid, sign bytes, 4-bit scales per 16) |
//! | `tq1_0` | TQ1_0 (256 ternary values, five base-3 digits per byte, one f16 scale) |
//! | `tq2_0` | TQ2_0 (256 ternary values in 2 bits each, one f16 scale) |
//! | `mxfp4` | MXFP4 (32 values, E8M0 exponent, E2M1 table) |
//! | `nvfp4` | NVFP4 (64 values, UE4M3 scales per 16, E2M1 table) |
//! | `f16`, `bf16` | F16, BF16 (one value per 2 bytes) |
//!
//! They implement one internal trait, `FormatSpec` (`spec.rs`: sizes, field table,
//! dequantization, threshold), the quantized ones also `QuantizedSpec` (sub-block, scalar
//! decoder) and on x86_64 `Codec` (`codec.rs`: the AVX-512 decoder, and the helpers the
//! codecs share). The field description `Field` (`field.rs`) and these traits live here,
//! the lowest layer: `pack`, `kernels`, `gemm` and `moe` use them, and nothing in
//! `formats` uses those modules.
//!
//! One registry (`registry.rs`) lists the formats. It defines [`Format`] (variants,
//! [`Format::ALL`], names, GGML type ids) and the dispatch macros `with_format!` and
//! `with_quantized!`, exhaustive matches that call generic code with a format's spec type;
//! every format-dependent choice in the crate goes through them (dequantization, block,
//! group and row sizes, field tables, the pack moves, the scalar and AVX-512 decoders,
//! the VNNI kernels, the AMX thresholds). There is no wildcard arm over [`Format`]: a
//! format missing anywhere does not compile. The registry also checks every spec at
//! compile time (group sizes, field tables, sub-blocks).
//!
//! # Public surface
//!
//! ```text
//! #[non_exhaustive] #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
//! pub enum Format { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, F16, BF16, MXFP4, TQ2_0, NVFP4, TQ1_0, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M }
//! impl Format {
//!     pub const ALL: [Format; 25];                        // in GGML type id order
//!     pub const fn name(self) -> &'static str;            // "Q4_0", "Q4_K", "IQ4_XS", "F16", "BF16" (gguf-py names)
//!     pub fn from_name(name: &str) -> Option<Format>;     // case-insensitive, accepts "q4_k" and "Q4_K"
//!     pub const fn ggml_type(self) -> u32;                // GGML_TYPE_* id as stored in GGUF
//!     pub const fn from_ggml_type(id: u32) -> Result<Format, FormatError>;
//!     pub const fn block_values(self) -> usize;           // 32, 64, 256 or 1
//!     pub const fn block_bytes(self) -> usize;            // in ALL's order: 2, 18, 20, 22, 24, 34, 84, 110, 144, 176, 210, 66, 74, 98, 50, 18, 110, 82, 136, 56, 2, 54, 66, 17, 36
//!     pub const fn row_bytes(self, k: usize) -> Result<usize, FormatError>;
//! }
//! pub fn dequantize(format: Format, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError>;
//! pub fn ggml_type_name(id: u32) -> Option<&'static str>; // every ggml type, by id
//! pub mod half { pub const fn f16_to_f32(bits: u16) -> f32; pub const fn bf16_to_f32(bits: u16) -> f32;
//!                pub const fn f32_to_f16(x: f32) -> u16; pub const fn f32_to_bf16(x: f32) -> u16; }
//! ```
//!
//! Each block format has a block type ([`BlockQ4_0`], [`BlockQ4_1`], [`BlockQ5_0`],
//! [`BlockQ5_1`], [`BlockQ8_0`], [`BlockQ2_K`], [`BlockQ3_K`], [`BlockQ4_K`], [`BlockQ5_K`],
//! [`BlockQ6_K`], [`BlockIQ2_XXS`], [`BlockIQ2_XS`], [`BlockIQ2_S`], [`BlockIQ3_XXS`], [`BlockIQ3_S`], [`BlockIQ1_S`], [`BlockIQ1_M`], [`BlockIQ4_NL`], [`BlockIQ4_XS`], [`BlockMXFP4`], [`BlockTQ1_0`], [`BlockTQ2_0`], [`BlockNVFP4`])
//! made of byte arrays only
//! (alignment 1, size pinned to the ggml block size), parsed with `from_bytes` from exactly
//! one block's bytes. Its `dequantize` reproduces gguf-py's `gguf.quants` dequantization
//! bit for bit: the same f32 operations in the same order, never fused.
//! F16 and BF16 are one value per 2-byte little-endian "block".
//!
//! # Adding a format
//!
//! A quantized format `X` (module `x`, ggml type id `ID`) is one new module, one registry
//! line and its vectors:
//!
//! 1. `formats/x/mod.rs`: the block type `BlockX` (`#[repr(C)]`, byte arrays only, with
//!    `BYTES`, `VALUES`, `from_bytes`, `to_bytes`, accessors and `dequantize` equal to
//!    gguf-py's bit for bit, and unit tests of its bit layout), and for it:
//!    - `impl FormatSpec`: `FORMAT`, `BLOCK_VALUES`, `BLOCK_BYTES`, `FIELDS` (the quads
//!      fields, multiples of 16 bytes, in the order the decoder reads them, then the
//!      per-row fields), `F16_SCALES` (and `E8M0_SCALES` where the scales are E8M0
//!      bytes), `AMX_MIN_ROWS` (see step 5), `dequantize_blocks` (whole blocks through
//!      `for_each_block`);
//!    - `impl QuantizedSpec`: `SUB_BLOCK` (16 or 32) and `decode`, the scalar decoder:
//!      unsigned values `u` and per sub-block `scale`, `bias` with `w = scale * u + bias`
//!      equal to the dequantized value (within one f32 rounding of the multiply-add).
//! 2. `formats/x/x86.rs` (`#[cfg(target_arch = "x86_64")] mod x86;`): `impl Codec`:
//!    `QUADS` and `PER_ROW` (16 rows' bytes of the group's quads and per-row regions),
//!    `sub_block` (the decoded chunks of one sub-block from the packed quads, and from
//!    the per-row data where values take bits from a per-row field) and `affine`
//!    (scales and biases from the packed per-row data), equal to `decode` bit for bit.
//!    The shared AVX-512 helpers are in `codec.rs`. A format whose values come from a
//!    small table (a grid) may also set `VBMI` and give `sub_block_vbmi`, the same bytes
//!    by VBMI byte permutes; the kernels then get a VBMI copy for it. A format with
//!    16-value sub-blocks whose scales are small integers under one f16 scale (Q2_K,
//!    Q3_K) may set `SCALES` to `Scales::Int` and give `int_affine` (and
//!    `QuantizedSpec::int_scales`, its scalar definition for the tests): the VNNI kernel
//!    then scales in int32 per activation block (`int_scales`' module docs).
//! 3. In `formats/mod.rs`: `pub(crate) mod x;` and `pub use x::BlockX;`. In
//!    `registry.rs`: one line `X = ID => x::BlockX,` in `quantized`, with the variant's
//!    docs. The compiler then asks for every trait item and checks the spec's sizes; every
//!    dispatch (dequantize, sizes, pack moves, decoders, VNNI and AMX kernels, thresholds)
//!    picks the format up.
//! 4. Vectors: copy the four `x_m*_n*_k*_*.gguf` files of the format from
//!    `../shared/vectors/` into `tests/vectors/`. These tests then cover it with no
//!    change: `tests/tests/vectors.rs` (dequantization equals `w_deq` bit for bit),
//!    `gemm_vectors.rs` (every path within `nmse_max`), `pack_vectors.rs` (round trips;
//!    its `packed_bytes_are_where_the_docs_say` keeps an independent field table that gets
//!    the format's line), `pack_properties.rs`, `size_functions.rs`, `gemm_shapes.rs`; and
//!    in amx-core every test that walks `Format::ALL`: the scalar decoder against
//!    `dequantize`, the AVX-512 decoders against the scalar one bit for bit, the VNNI and
//!    AMX kernels against the reference, pack/unpack, MoE. `format.rs`'s
//!    `ggml_ids_names_and_sizes` table gets the format's line (and `unknown_ids_and_names`
//!    loses its id).
//! 5. The threshold: `cargo run --release -p amx-bench -- bench --formats x --paths
//!    amx,vnni --m 16,20,22,24,26,28,32` (K = N = 4096, one thread): `AMX_MIN_ROWS` is the
//!    first M where AMX is ahead; write the numbers next to the constant.
//!
//! 6. Docs: the format's row in the field table of `pack`'s module docs (the packed layout
//!    byte by byte, public), the supported list in the README, a CHANGELOG entry.
//!
//! Outside amx-core, match arms over `Format` that name formats (the fuzz targets' scale
//! bounds, amx-testdata's test weights, amx-candle's dtype map) get the format where it applies.

pub(crate) mod bf16;
#[cfg(target_arch = "x86_64")]
pub(crate) mod codec;
mod error;
pub(crate) mod f16;
pub(crate) mod field;
mod format;
mod ggml_type;
pub mod half;
pub(crate) mod int_scales;
pub(crate) mod iq1_m;
pub(crate) mod iq1_s;
pub(crate) mod iq2_s;
pub(crate) mod iq2_xs;
pub(crate) mod iq2_xxs;
pub(crate) mod iq3_s;
pub(crate) mod iq3_xxs;
pub(crate) mod iq4_nl;
pub(crate) mod iq4_xs;
pub(crate) mod mxfp4;
pub(crate) mod nvfp4;
pub(crate) mod q2_k;
pub(crate) mod q3_k;
pub(crate) mod q4_0;
pub(crate) mod q4_1;
pub(crate) mod q4_k;
pub(crate) mod q5_0;
pub(crate) mod q5_1;
pub(crate) mod q5_k;
pub(crate) mod q6_k;
pub(crate) mod q8_0;
mod registry;
pub(crate) mod spec;
pub(crate) mod tq1_0;
pub(crate) mod tq2_0;

pub use error::FormatError;
pub use format::Format;
pub use ggml_type::ggml_type_name;
pub use iq1_m::BlockIQ1_M;
pub use iq1_s::BlockIQ1_S;
pub use iq2_s::BlockIQ2_S;
pub use iq2_xs::BlockIQ2_XS;
pub use iq2_xxs::BlockIQ2_XXS;
pub use iq3_s::BlockIQ3_S;
pub use iq3_xxs::BlockIQ3_XXS;
pub use iq4_nl::BlockIQ4_NL;
pub use iq4_xs::{BlockIQ4_XS, KVALUES_IQ4NL};
pub use mxfp4::{BlockMXFP4, KVALUES_MXFP4, e8m0_to_f32_half};
pub use nvfp4::{BlockNVFP4, ue4m3_to_f32_half};
pub use q2_k::BlockQ2_K;
pub use q3_k::{BlockQ3_K, unpack_scales_k3};
pub use q4_0::BlockQ4_0;
pub use q4_1::BlockQ4_1;
pub use q4_k::{BlockQ4_K, unpack_scales_mins_k4};
pub use q5_0::BlockQ5_0;
pub use q5_1::BlockQ5_1;
pub use q5_k::BlockQ5_K;
pub use q6_k::BlockQ6_K;
pub use q8_0::BlockQ8_0;
pub(crate) use registry::{
    define_format, format_match, quantized_match, registry, with_format, with_quantized,
};
pub(crate) use spec::{FormatSpec, QuantizedSpec};
pub use tq1_0::BlockTQ1_0;
pub use tq2_0::BlockTQ2_0;

/// Values per super-block of the K-quants (Q2_K .. Q6_K) and IQ4_XS.
pub const QK_K: usize = 256;

/// Dequantizes `src` (whole blocks of `format`, bytes as in a GGUF file) into `dst`, exactly
/// as gguf-py's `gguf.quants.dequantize` does.
///
/// Errors: [`FormatError::NotBlockMultiple`] when `dst.len()` is not a multiple of
/// [`Format::block_values`]; [`FormatError::LengthMismatch`] when `src.len()` is not
/// `dst.len() / block_values * block_bytes`. Empty `src` and `dst` is `Ok`.
pub fn dequantize(format: Format, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError> {
    let expected = format.row_bytes(dst.len())?;
    if src.len() != expected {
        return Err(FormatError::LengthMismatch { format, expected, actual: src.len() });
    }
    with_format!(format, F => F::dequantize_blocks(src, dst));
    Ok(())
}

/// Calls `f` on each pair of a `B`-byte source block and its `V`-value destination block.
/// The caller has checked that `src` holds exactly `dst.len() / V` blocks.
fn for_each_block<const B: usize, const V: usize>(
    src: &[u8],
    dst: &mut [f32],
    mut f: impl FnMut(&[u8; B], &mut [f32; V]),
) {
    for (s, d) in src.chunks_exact(B).zip(dst.chunks_exact_mut(V)) {
        // chunks_exact yields exactly B and V elements, so both conversions succeed.
        if let (Ok(s), Ok(d)) = (<&[u8; B]>::try_from(s), <&mut [f32; V]>::try_from(d)) {
            f(s, d);
        }
    }
}

/// Copies `N` bytes of `src` starting at `at`. Used with constant offsets inside a
/// fixed-size block, where the range is always in bounds.
const fn take<const N: usize>(src: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = src[at + i];
        i += 1;
    }
    out
}

/// Copies `part` into `dst` at `at` (the inverse of [`take`]), same bounds argument.
const fn put<const N: usize>(dst: &mut [u8], at: usize, part: &[u8; N]) {
    let mut i = 0;
    while i < N {
        dst[at + i] = part[i];
        i += 1;
    }
}

/// The 32 nibbles of a 32-value block's 16 bytes, in value order: value `j < 16` is the
/// low nibble of byte `j`, value `j + 16` its high nibble (Q4_0, Q4_1, IQ4_NL, MXFP4).
const fn nibbles32(qs: &[u8; 16]) -> [u8; 32] {
    let mut q = [0u8; 32];
    let mut j = 0;
    while j < 16 {
        q[j] = qs[j] & 0x0f;
        q[j + 16] = qs[j] >> 4;
        j += 1;
    }
    q
}

/// Reads a little-endian `f16` stored as two bytes and widens it to `f32`.
const fn f16_le(bytes: [u8; 2]) -> f32 {
    half::f16_to_f32(u16::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantize_length_errors() {
        let src = [0u8; 36];
        let mut dst = [0f32; 64];
        assert_eq!(dequantize(Format::Q4_0, &src, &mut dst), Ok(()));
        assert_eq!(
            dequantize(Format::Q4_0, &src[..35], &mut dst),
            Err(FormatError::LengthMismatch { format: Format::Q4_0, expected: 36, actual: 35 })
        );
        assert_eq!(
            dequantize(Format::Q4_0, &src, &mut dst[..32]),
            Err(FormatError::LengthMismatch { format: Format::Q4_0, expected: 18, actual: 36 })
        );
        assert_eq!(
            dequantize(Format::Q4_0, &src, &mut dst[..40]),
            Err(FormatError::NotBlockMultiple { format: Format::Q4_0, values: 40, block: 32 })
        );
        assert_eq!(
            dequantize(Format::F16, &src[..3], &mut dst[..1]),
            Err(FormatError::LengthMismatch { format: Format::F16, expected: 2, actual: 3 })
        );
        for format in Format::ALL {
            assert_eq!(dequantize(format, &[], &mut []), Ok(()));
            assert_eq!(
                dequantize(format, &[0], &mut []),
                Err(FormatError::LengthMismatch { format, expected: 0, actual: 1 })
            );
        }
    }

    #[test]
    fn dequantize_zero_blocks_gives_zeros_for_every_format() {
        // All-zero bytes: every scale is 0.0 (or for F16/BF16 every value is +0.0).
        let src = [0u8; 2 * 210];
        for format in Format::ALL {
            let values = 2 * format.block_values();
            let bytes = 2 * format.block_bytes();
            let mut dst = [f32::NAN; 512];
            dequantize(format, &src[..bytes], &mut dst[..values]).unwrap();
            assert!(dst[..values].iter().all(|&x| x == 0.0), "{format}");
            assert!(dst[values..].iter().all(|x| x.is_nan()), "{format}");
        }
    }
}
