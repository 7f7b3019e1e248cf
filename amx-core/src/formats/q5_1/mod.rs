//! Q5_1: 32 values per 24-byte block, `x = d * q + m` with `q` an unsigned 5-bit value (a
//! nibble of `qs` and one bit of `qh`).

use super::field::{Field, per_row, quads};
use super::q5_0::quants5;
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One Q5_1 block as stored by ggml (`block_q5_1`): 24 bytes for 32 values.
///
/// Value `i < 16` is the low nibble of `qs[i]`, value `i + 16` its high nibble; bit `i`
/// of `qh` (a little-endian `u32`) is bit 4 of value `i`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ5_1 {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// Offset (the block minimum), f16 little endian.
    pub m: [u8; 2],
    /// Bit 4 of the 32 values, `u32` little endian (bit `i` for value `i`).
    pub qh: [u8; 4],
    /// The low 4 bits of the 32 values, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(size_of::<BlockQ5_1>() == BlockQ5_1::BYTES);
const _: () = assert!(align_of::<BlockQ5_1>() == 1);

impl BlockQ5_1 {
    /// Bytes per block.
    pub const BYTES: usize = 24;
    /// Values per block.
    pub const VALUES: usize = 32;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { d: take(bytes, 0), m: take(bytes, 2), qh: take(bytes, 4), qs: take(bytes, 8) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.m);
        put(&mut out, 4, &self.qh);
        put(&mut out, 8, &self.qs);
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

    /// The 32 unsigned quants (0..=31), in value order.
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        quants5(&self.qs, self.qh)
    }

    /// Dequantizes the block: `out[i] = (d * q[i]) + m`, two f32 roundings (no FMA).
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let (d, m) = (self.d(), self.m());
        for (o, q) in out.iter_mut().zip(self.quants()) {
            *o = d * f32::from(q) + m;
        }
    }
}

impl FormatSpec for BlockQ5_1 {
    const FORMAT: Format = Format::Q5_1;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 16 bytes of nibbles as quads; `d`, `m` and the 4 bytes of fifth bits per row
    /// (a 4-byte field cannot be quads; 16 rows' `qh` are one 64-byte vector, row `r` at
    /// dword `r`).
    const FIELDS: &'static [Field] = &[quads(8, 16), per_row(0, 2), per_row(2, 2), per_row(4, 4)];
    const F16_SCALES: &'static [usize] = &[0, 2];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says, two runs),
    /// AMX / VNNI GOPS: 300/272 and 286/288 at M = 24, 291/255 and 300/259 at 25.
    const AMX_MIN_ROWS: usize = 25;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ5_1 {
    const SUB_BLOCK: usize = 32;

    /// `u` = the 5-bit value, scale `d`, bias `m`.
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
    fn bit_positions_scale_and_offset() {
        // d = 2.0 (0x4000), m = -1.0 (0xbc00); qs[j] = j | (15 - j) << 4; qh = 0x5a3c_f002.
        let qh = 0x5a3c_f002u32;
        let mut bytes = [0u8; 24];
        bytes[..2].copy_from_slice(&0x4000u16.to_le_bytes());
        bytes[2..4].copy_from_slice(&0xbc00u16.to_le_bytes());
        bytes[4..8].copy_from_slice(&qh.to_le_bytes());
        for j in 0..16 {
            bytes[8 + j] = j as u8 | ((15 - j as u8) << 4);
        }
        let block = BlockQ5_1::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let low = if i < 16 { i } else { 31 - i } as f32;
            let high = if qh >> i & 1 == 1 { 16.0 } else { 0.0 };
            assert_eq!(x, 2.0 * (low + high) - 1.0, "i = {i}");
        }
    }

    #[test]
    fn inexact_scale_and_offset() {
        // d = 0x2e66 = 0.0999755859375, m = 0xb99a = -0.7001953125. d * q is exact in f32
        // (at most 16 significant bits), so the result is the sum rounded once; f64 computes
        // the sum exactly here.
        let (d, m) = (0.099_975_585_937_5f64, -0.700_195_312_5f64);
        let block = BlockQ5_1 {
            d: 0x2e66u16.to_le_bytes(),
            m: 0xb99au16.to_le_bytes(),
            qh: 0x9b71_d3e4u32.to_le_bytes(),
            qs: core::array::from_fn(|j| j as u8 | (((j as u8) ^ 0x0a) << 4)),
        };
        let q = block.quants();
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for (i, (&o, &q)) in out.iter().zip(&q).enumerate() {
            assert!(q < 32);
            assert_eq!(o, (d * f64::from(q) + m) as f32, "i = {i}");
        }
    }
}
