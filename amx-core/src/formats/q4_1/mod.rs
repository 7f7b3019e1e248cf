//! Q4_1: 32 values per 20-byte block, `x = d * q + m` with `q` an unsigned nibble.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block, nibbles32};
use super::{f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One Q4_1 block as stored by ggml (`block_q4_1`): 20 bytes for 32 values.
///
/// Value `i < 16` is the low nibble of `qs[i]`, value `i + 16` its high nibble.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ4_1 {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// Offset (the block minimum), f16 little endian.
    pub m: [u8; 2],
    /// 32 unsigned 4-bit quants, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(size_of::<BlockQ4_1>() == BlockQ4_1::BYTES);
const _: () = assert!(align_of::<BlockQ4_1>() == 1);

impl BlockQ4_1 {
    /// Bytes per block.
    pub const BYTES: usize = 20;
    /// Values per block.
    pub const VALUES: usize = 32;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { d: take(bytes, 0), m: take(bytes, 2), qs: take(bytes, 4) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.m);
        put(&mut out, 4, &self.qs);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The offset `m` as `f32`.
    pub const fn m(&self) -> f32 {
        f16_le(self.m)
    }

    /// The 32 unsigned quants (0..=15), in value order.
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        nibbles32(&self.qs)
    }

    /// Dequantizes the block: `out[i] = (d * q[i]) + m`, two f32 roundings (no FMA).
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let (d, m) = (self.d(), self.m());
        for (o, q) in out.iter_mut().zip(self.quants()) {
            *o = d * f32::from(q) + m;
        }
    }
}

impl FormatSpec for BlockQ4_1 {
    const FORMAT: Format = Format::Q4_1;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 16 bytes of nibbles as quads; `d` and `m` per row.
    const FIELDS: &'static [Field] = &[quads(4, 16), per_row(0, 2), per_row(2, 2)];
    const F16_SCALES: &'static [usize] = &[0, 2];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says), AMX / VNNI
    /// GOPS: 310/356 at M = 24, 353/350 at 26.
    const AMX_MIN_ROWS: usize = 26;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ4_1 {
    const SUB_BLOCK: usize = 32;

    /// `u` = the nibble, scale `d`, bias `m`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.u[..Self::VALUES].copy_from_slice(&b.quants());
        (out.scale[0], out.bias[0]) = (b.d(), b.m());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibble_positions_scale_and_offset() {
        // d = 2.0 (0x4000), m = -1.0 (0xbc00); qs[j] = j | (15 - j) << 4.
        let mut bytes = [0u8; 20];
        bytes[..2].copy_from_slice(&0x4000u16.to_le_bytes());
        bytes[2..4].copy_from_slice(&0xbc00u16.to_le_bytes());
        for j in 0..16 {
            bytes[4 + j] = j as u8 | ((15 - j as u8) << 4);
        }
        let block = BlockQ4_1::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for j in 0..16 {
            assert_eq!(out[j], 2.0 * j as f32 - 1.0);
            assert_eq!(out[j + 16], 2.0 * (15 - j) as f32 - 1.0);
        }
    }

    #[test]
    fn inexact_scale_and_offset() {
        // d = 0x2e66 = 0.0999755859375, m = 0xb99a = -0.7001953125. d * q is exact in f32
        // (at most 15 significant bits), so the result is the sum rounded once; f64 computes
        // the sum exactly here.
        let (d, m) = (0.099_975_585_937_5f64, -0.700_195_312_5f64);
        let block = BlockQ4_1 {
            d: 0x2e66u16.to_le_bytes(),
            m: 0xb99au16.to_le_bytes(),
            qs: core::array::from_fn(|j| j as u8 | (((j as u8) ^ 0x0a) << 4)),
        };
        assert_eq!(f64::from(block.d()), d);
        assert_eq!(f64::from(block.m()), m);
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for j in 0..16 {
            let (lo, hi) = (j as f64, (j ^ 0x0a) as f64);
            assert_eq!(out[j], (d * lo + m) as f32, "j = {j}");
            assert_eq!(out[j + 16], (d * hi + m) as f32, "j = {j}");
        }
    }
}
