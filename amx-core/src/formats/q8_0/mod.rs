//! Q8_0: 32 values per 34-byte block, `x = q * d` with `q` an `i8`.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One Q8_0 block as stored by ggml (`block_q8_0`): 34 bytes for 32 values.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ8_0 {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// 32 signed 8-bit quants (`i8` bit patterns), in value order.
    pub qs: [u8; 32],
}

const _: () = assert!(size_of::<BlockQ8_0>() == BlockQ8_0::BYTES);
const _: () = assert!(align_of::<BlockQ8_0>() == 1);

impl BlockQ8_0 {
    /// Bytes per block.
    pub const BYTES: usize = 34;
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

    /// The 32 signed quants, in value order.
    pub const fn quants(&self) -> [i8; Self::VALUES] {
        let mut q = [0i8; Self::VALUES];
        let mut j = 0;
        while j < Self::VALUES {
            q[j] = self.qs[j] as i8;
            j += 1;
        }
        q
    }

    /// Dequantizes the block: `out[i] = q[i] * d`.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        for (o, q) in out.iter_mut().zip(self.quants()) {
            *o = f32::from(q) * d;
        }
    }
}

impl FormatSpec for BlockQ8_0 {
    const FORMAT: Format = Format::Q8_0;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 32 quants as quads, the scale per row.
    const FIELDS: &'static [Field] = &[quads(2, 32), per_row(0, 2)];
    const F16_SCALES: &'static [usize] = &[0];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says), AMX / VNNI
    /// GOPS: 331/330 at M = 26, 334/328 and 356/339 at 28.
    const AMX_MIN_ROWS: usize = 28;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ8_0 {
    const SUB_BLOCK: usize = 32;

    /// `u = q ^ 0x80` (`q + 128`), scale `d`, bias `-128 d`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        for (u, q) in out.u.iter_mut().zip(b.quants()) {
            *u = (q as u8) ^ 0x80;
        }
        let d = b.d();
        (out.scale[0], out.bias[0]) = (d, -128.0 * d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_values_in_order() {
        // d = 0.25 (0x3400); q = -128, -127, ..., -97 then the sign flipped half.
        let mut bytes = [0u8; 34];
        bytes[..2].copy_from_slice(&0x3400u16.to_le_bytes());
        let want: [i8; 32] =
            core::array::from_fn(|i| if i < 16 { -128 + i as i8 } else { 127 - i as i8 });
        for (b, q) in bytes[2..].iter_mut().zip(want) {
            *b = q as u8;
        }
        let block = BlockQ8_0::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        assert_eq!(block.quants(), want);
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for (o, q) in out.iter().zip(want) {
            assert_eq!(*o, f32::from(q) / 4.0);
        }
        assert_eq!(out[0], -32.0);
        assert_eq!(out[31], 24.0);
    }
}
