//! ggml block formats: byte layouts exactly as in a GGUF file, row sizes, and a scalar
//! reference dequantizer per format (the oracle the kernels are tested against).
//!
//! CONTRACT (shared with the other modules; keep these names and signatures):
//!
//! ```text
//! #[non_exhaustive] #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
//! pub enum Format { Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, IQ4_XS, F16, BF16 }
//! impl Format {
//!     pub const ALL: [Format; 9];
//!     pub const fn name(self) -> &'static str;            // "Q4_0", "Q4_K", "IQ4_XS", "F16", "BF16" (gguf-py names)
//!     pub fn from_name(name: &str) -> Option<Format>;     // case-insensitive, accepts "q4_k" and "Q4_K"
//!     pub const fn ggml_type(self) -> u32;                // GGML_TYPE_* id as stored in GGUF
//!     pub const fn from_ggml_type(id: u32) -> Result<Format, FormatError>;
//!     pub const fn block_values(self) -> usize;           // 32, 256 or 1
//!     pub const fn block_bytes(self) -> usize;            // 18, 20, 34, 144, 176, 210, 136, 2, 2
//!     pub const fn row_bytes(self, k: usize) -> Result<usize, FormatError>;
//! }
//! pub fn dequantize(format: Format, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError>;
//! pub mod half { pub const fn f16_to_f32(bits: u16) -> f32; pub const fn bf16_to_f32(bits: u16) -> f32;
//!                pub fn f32_to_f16(x: f32) -> u16; pub fn f32_to_bf16(x: f32) -> u16; }
//! ```
//!
//! (`f32_to_f16` and `f32_to_bf16` are `const fn` too.)
//!
//! Each block format has a block type ([`BlockQ4_0`], [`BlockQ4_1`], [`BlockQ8_0`],
//! [`BlockQ4_K`], [`BlockQ5_K`], [`BlockQ6_K`], [`BlockIQ4_XS`]) made of byte arrays only
//! (alignment 1, size pinned to the ggml block size), parsed with `from_bytes` from exactly
//! one block's bytes. Its `dequantize` reproduces gguf-py's `gguf.quants` dequantization
//! bit for bit: the same f32 operations in the same order, never fused.
//! F16 and BF16 are one value per 2-byte little-endian "block".

mod error;
mod float;
mod format;
mod ggml_type;
pub mod half;
mod iq4_xs;
mod q4_0;
mod q4_1;
mod q4_k;
mod q5_k;
mod q6_k;
mod q8_0;

pub use error::FormatError;
pub use format::Format;
pub use ggml_type::ggml_type_name;
pub use iq4_xs::{BlockIQ4_XS, KVALUES_IQ4NL};
pub use q4_0::BlockQ4_0;
pub use q4_1::BlockQ4_1;
pub use q4_k::{BlockQ4_K, unpack_scales_mins_k4};
pub use q5_k::BlockQ5_K;
pub use q6_k::BlockQ6_K;
pub use q8_0::BlockQ8_0;

/// Values per super-block of the K-quants (Q4_K, Q5_K, Q6_K) and IQ4_XS.
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
    match format {
        Format::Q4_0 => for_each_block(src, dst, |s, d| BlockQ4_0::from_bytes(s).dequantize(d)),
        Format::Q4_1 => for_each_block(src, dst, |s, d| BlockQ4_1::from_bytes(s).dequantize(d)),
        Format::Q8_0 => for_each_block(src, dst, |s, d| BlockQ8_0::from_bytes(s).dequantize(d)),
        Format::Q4_K => for_each_block(src, dst, |s, d| BlockQ4_K::from_bytes(s).dequantize(d)),
        Format::Q5_K => for_each_block(src, dst, |s, d| BlockQ5_K::from_bytes(s).dequantize(d)),
        Format::Q6_K => for_each_block(src, dst, |s, d| BlockQ6_K::from_bytes(s).dequantize(d)),
        Format::IQ4_XS => {
            for_each_block(src, dst, |s, d| BlockIQ4_XS::from_bytes(s).dequantize(d));
        }
        Format::F16 => float::dequantize_f16(src, dst),
        Format::BF16 => float::dequantize_bf16(src, dst),
    }
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
