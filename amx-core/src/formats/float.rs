//! F16 and BF16: one value per 2 little-endian bytes, widened exactly to f32.

use super::half::{bf16_to_f32, f16_to_f32};

/// Widens little-endian f16 values. `src` holds exactly `2 * dst.len()` bytes (checked by
/// the caller).
pub(super) fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    for (s, d) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *d = f16_to_f32(u16::from_le_bytes([s[0], s[1]]));
    }
}

/// Widens little-endian bf16 values. `src` holds exactly `2 * dst.len()` bytes (checked by
/// the caller).
pub(super) fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (s, d) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *d = bf16_to_f32(u16::from_le_bytes([s[0], s[1]]));
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
