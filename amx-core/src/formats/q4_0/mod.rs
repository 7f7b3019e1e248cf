//! Q4_0: 32 values per 18-byte block, `x = d * (q - 8)` with `q` an unsigned nibble.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block, nibbles32};
use super::{f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One Q4_0 block as stored by ggml (`block_q4_0`): 18 bytes for 32 values.
///
/// Value `i < 16` is the low nibble of `qs[i]`, value `i + 16` its high nibble.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ4_0 {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// 32 unsigned 4-bit quants, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(size_of::<BlockQ4_0>() == BlockQ4_0::BYTES);
const _: () = assert!(align_of::<BlockQ4_0>() == 1);

impl BlockQ4_0 {
    /// Bytes per block.
    pub const BYTES: usize = 18;
    /// Values per block.
    pub const VALUES: usize = 32;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { d: take(bytes, 0), qs: take(bytes, 2) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.qs);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The 32 unsigned quants (0..=15), in value order.
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        nibbles32(&self.qs)
    }

    /// Dequantizes the block: `out[i] = d * (q[i] - 8)`.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        for (o, q) in out.iter_mut().zip(self.quants()) {
            *o = d * f32::from(q as i8 - 8);
        }
    }
}

impl FormatSpec for BlockQ4_0 {
    const FORMAT: Format = Format::Q4_0;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 16 bytes of nibbles as quads, the scale per row.
    const FIELDS: &'static [Field] = &[quads(2, 16), per_row(0, 2)];
    const F16_SCALES: &'static [usize] = &[0];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says), AMX / VNNI
    /// GOPS: 345/366 at M = 24, 369/346 at 26.
    const AMX_MIN_ROWS: usize = 26;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ4_0 {
    const SUB_BLOCK: usize = 32;

    /// `u` = the nibble, scale `d`, bias `-8 d`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.u[..Self::VALUES].copy_from_slice(&b.quants());
        let d = b.d();
        (out.scale[0], out.bias[0]) = (d, -8.0 * d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibble_positions_and_offset() {
        // d = 1.0; qs[j] = j | (15 - j) << 4: values 0..16 are j - 8, values 16..32 are 7 - j.
        let mut bytes = [0u8; 18];
        bytes[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        for j in 0..16 {
            bytes[2 + j] = j as u8 | ((15 - j as u8) << 4);
        }
        let block = BlockQ4_0::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for j in 0..16 {
            assert_eq!(out[j], j as f32 - 8.0);
            assert_eq!(out[j + 16], 7.0 - j as f32);
        }
    }

    #[test]
    fn scale_applies() {
        // d = -0.5 (0xb800): q = 0 -> 4.0, q = 15 -> -3.5.
        let block = BlockQ4_0 { d: 0xb800u16.to_le_bytes(), qs: [0xf0; 16] };
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        assert!(out[..16].iter().all(|&x| x == 4.0));
        assert!(out[16..].iter().all(|&x| x == -3.5));
    }
}
