extern crate std;

use std::vec;
use std::vec::Vec;

use super::scalar::decode_group;
use super::{Decoded, sub_block};
use crate::formats::{Format, dequantize};
use crate::pack::{PANEL_ROWS, PackedRef, pack, packed_size, read_block};

/// xorshift64* bytes; block scales are then made finite so values can be compared.
pub(crate) fn random_blocks(format: Format, seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect();
    // f16 scale fields: exponent 0x0c..0x13 (about 2^-3 .. 2^4), random mantissa.
    let scale_offsets: &[usize] = match format {
        Format::Q4_0 | Format::Q8_0 | Format::IQ4XS => &[0],
        Format::Q4_1 | Format::Q4K | Format::Q5K => &[0, 2],
        Format::Q6K => &[208],
        _ => &[],
    };
    for block in out.chunks_exact_mut(format.block_bytes()) {
        for &at in scale_offsets {
            block[at + 1] = 0x30 + (block[at + 1] & 0x0f);
        }
    }
    out
}

/// Every decoded value equals the reference dequantization, within the rounding of one
/// f32 multiply-add.
#[test]
fn scalar_decode_matches_reference_dequantization() {
    for (i, format) in Format::ALL.into_iter().enumerate() {
        let Some(sb) = sub_block(format) else { continue };
        let (n, k) = (21, 2 * format.block_values());
        let src = random_blocks(
            format,
            7 + i as u64,
            n * k / format.block_values() * format.block_bytes(),
        );
        let mut buf = vec![0u8; packed_size(format, n, k, 1).unwrap()];
        let layout = pack(format, n, k, 1, &src, &mut buf).unwrap();
        let packed = PackedRef::parse(&buf).unwrap();
        let bv = format.block_values();
        for p in 0..layout.panels() {
            let panel = packed.panel(p).unwrap();
            for g in 0..layout.groups() {
                let mut d = Decoded::new();
                decode_group(&layout, panel, g, &mut d);
                for r in 0..PANEL_ROWS {
                    let mut block = [0u8; 256];
                    read_block(&layout, panel, g, r, &mut block).unwrap();
                    let mut want = [0f32; 256];
                    dequantize(format, &block[..format.block_bytes()], &mut want[..bv]).unwrap();
                    for (kk, w) in want[..bv].iter().enumerate() {
                        let got = d.value(sb, r, kk);
                        let tol = 1e-6 * (w.abs() + d.bias[kk / sb][r].abs());
                        assert!(
                            (got - w).abs() <= tol,
                            "{format} p{p} g{g} r{r} k{kk}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
