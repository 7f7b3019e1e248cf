//! BF16: bfloat16, one value per 2 little-endian bytes, widened exactly to f32.
//!
//! Packed in groups of 32 values (64 bytes) as VNNI pairs: a packed BF16 panel is a run of
//! AMX B tiles, which the AMX path reads in place.

use super::field::{Field, quads};
use super::half::bf16_to_f32;
use super::spec::FormatSpec;
use super::{Format, for_each_block};

/// The BF16 format's [`FormatSpec`] (BF16 has no block type: a block is one value).
pub(crate) struct BF16;

impl FormatSpec for BF16 {
    const FORMAT: Format = Format::BF16;
    const BLOCK_VALUES: usize = 1;
    const BLOCK_BYTES: usize = 2;
    const GROUP_VALUES: usize = 32;
    const GROUP_BYTES: usize = 64;
    /// The 32 values of a group (64 source bytes) as 16 VNNI pairs.
    const FIELDS: &'static [Field] = &[quads(0, 64)];
    const F16_SCALES: &'static [usize] = &[];
    /// Panels are B tiles as packed (no widening); from cache AMX ties at M = 1 (26/26
    /// GOPS AMX / VNNI) and leads from M = 2 (52/44); streaming from memory (`--dram`,
    /// weights on huge pages) VNNI leads at M = 1 (15.1/14.6, 15.4/14.5) and AMX at M = 2
    /// (29.5/27.8).
    const AMX_MIN_ROWS: usize = 2;

    /// Widens little-endian bf16 values; `src` holds exactly `2 * dst.len()` bytes.
    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, [d]| *d = bf16_to_f32(u16::from_le_bytes(*s)));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Format, dequantize};

    #[test]
    fn bf16_values_little_endian() {
        // 1.0, -2.0, pi (3.140625), smallest bf16 subnormal
        let src = [0x80, 0x3f, 0x00, 0xc0, 0x49, 0x40, 0x01, 0x00];
        let mut dst = [0f32; 4];
        dequantize(Format::BF16, &src, &mut dst).unwrap();
        assert_eq!(dst[..3], [1.0, -2.0, 3.140_625]);
        assert_eq!(dst[3].to_bits(), 0x0001_0000);
    }
}
