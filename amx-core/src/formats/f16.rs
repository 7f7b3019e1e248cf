//! F16: IEEE binary16, one value per 2 little-endian bytes, widened exactly to f32.
//!
//! Packed in groups of 32 values (64 bytes, one row of a BF16 tile) as VNNI pairs of F16,
//! exactly as given: the kernels widen them with `vcvtph2ps` (VNNI path) or round them
//! to BF16 when they stream a panel to tiles (AMX path).

use super::field::{Field, quads};
use super::half::f16_to_f32;
use super::spec::FormatSpec;
use super::{Format, for_each_block};

/// The F16 format's [`FormatSpec`] (F16 has no block type: a block is one value).
pub(crate) struct F16;

impl FormatSpec for F16 {
    const FORMAT: Format = Format::F16;
    const BLOCK_VALUES: usize = 1;
    const BLOCK_BYTES: usize = 2;
    const GROUP_VALUES: usize = 32;
    const GROUP_BYTES: usize = 64;
    /// The 32 values of a group as 16 VNNI pairs.
    const FIELDS: &'static [Field] = &[quads(0, 64)];
    const F16_SCALES: &'static [usize] = &[];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says, with `--m
    /// 1,2,4,6,7,8,10,12`), AMX / VNNI GOPS: VNNI ahead at M = 8 (122/134), AMX at 10
    /// (154/124).
    const AMX_MIN_ROWS: usize = 9;

    /// Widens little-endian f16 values; `src` holds exactly `2 * dst.len()` bytes.
    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, [d]| *d = f16_to_f32(u16::from_le_bytes(*s)));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Format, dequantize};

    #[test]
    fn f16_values_little_endian() {
        // 1.0, -2.0, 65504, 2^-24, -0.0, inf
        let src = [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x80, 0x00, 0x7c];
        let mut dst = [0f32; 6];
        dequantize(Format::F16, &src, &mut dst).unwrap();
        assert_eq!(dst[..4], [1.0, -2.0, 65504.0, 5.960_464_5e-8]);
        assert_eq!(dst[4].to_bits(), 0x8000_0000);
        assert_eq!(dst[5], f32::INFINITY);
    }
}
