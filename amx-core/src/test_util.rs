//! Deterministic test data shared by the unit tests of several modules.

extern crate std;

use std::vec::Vec;

use crate::formats::Format;

/// Pseudo-random bytes (xorshift64*), the same for the same seed.
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// `rows` rows of `k` values in `format`: random bytes with moderate f16 scales (block
/// formats) or values near 1 (F16/BF16), so that results compare numerically.
pub(crate) fn weights(format: Format, seed: u64, rows: usize, k: usize) -> Vec<u8> {
    let mut w = bytes(seed, rows * format.row_bytes(k).expect("k fits the block"));
    match format {
        Format::F16 | Format::BF16 => {
            for v in w.chunks_exact_mut(2) {
                v[1] =
                    if format == Format::F16 { 0x38 | (v[1] & 0x83) } else { 0x3f | (v[1] & 0x80) };
            }
        }
        _ => {
            let at: &[usize] = match format {
                Format::Q4_0 | Format::Q8_0 | Format::IQ4XS => &[0],
                Format::Q4_1 | Format::Q4K | Format::Q5K => &[0, 2],
                _ => &[208],
            };
            for b in w.chunks_exact_mut(format.block_bytes()) {
                for &a in at {
                    b[a + 1] = 0x30 | (b[a + 1] & 0x87);
                }
            }
        }
    }
    w
}
