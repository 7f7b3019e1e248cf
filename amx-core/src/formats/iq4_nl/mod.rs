//! IQ4_NL: 32 values per 18-byte block; each value is a 4-bit index into the non-linear
//! table [`KVALUES_IQ4NL`]: `x = d * KVALUES_IQ4NL[q]`.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, KVALUES_IQ4NL, for_each_block, nibbles32};
use super::{f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One IQ4_NL block as stored by ggml (`block_iq4_nl`): 18 bytes for 32 values, the
/// layout of Q4_0 with the nibbles indexing [`KVALUES_IQ4NL`].
///
/// Value `i < 16` is the low nibble of `qs[i]`, value `i + 16` its high nibble.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIQ4_NL {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// 32 4-bit table indices, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(size_of::<BlockIQ4_NL>() == BlockIQ4_NL::BYTES);
const _: () = assert!(align_of::<BlockIQ4_NL>() == 1);

impl BlockIQ4_NL {
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

    /// The 32 table indices (0..=15), in value order.
    pub const fn indices(&self) -> [u8; Self::VALUES] {
        nibbles32(&self.qs)
    }

    /// The 32 table values `KVALUES_IQ4NL[index]`, in value order.
    pub const fn quants(&self) -> [i8; Self::VALUES] {
        let idx = self.indices();
        let mut q = [0i8; Self::VALUES];
        let mut i = 0;
        while i < Self::VALUES {
            q[i] = KVALUES_IQ4NL[(idx[i] & 0x0f) as usize];
            i += 1;
        }
        q
    }

    /// Dequantizes the block: `out[i] = d * KVALUES_IQ4NL[q[i]]`.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        for (o, q) in out.iter_mut().zip(self.quants()) {
            *o = d * f32::from(q);
        }
    }
}

impl FormatSpec for BlockIQ4_NL {
    const FORMAT: Format = Format::IQ4_NL;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 16 bytes of indices as quads, the scale per row (Q4_0's table).
    const FIELDS: &'static [Field] = &[quads(2, 16), per_row(0, 2)];
    const F16_SCALES: &'static [usize] = &[0];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says, two runs),
    /// AMX / VNNI GOPS: 324/314 and 325/337 at M = 26, 342/323 and 315/293 at 27.
    const AMX_MIN_ROWS: usize = 27;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockIQ4_NL {
    const SUB_BLOCK: usize = 32;

    /// `u = KVALUES_IQ4NL[q] ^ 0x80`, scale `d`, bias `-128 d`.
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
    fn dequantize_hand_built_block() {
        // d = 0.5; value l < 16 is index l, value l + 16 index 15 - l.
        let mut bytes = [0u8; 18];
        bytes[..2].copy_from_slice(&0x3800u16.to_le_bytes());
        for l in 0..16 {
            bytes[2 + l] = l as u8 | ((15 - l as u8) << 4);
        }
        let block = BlockIQ4_NL::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for l in 0..16 {
            assert_eq!(out[l], 0.5 * f32::from(KVALUES_IQ4NL[l]));
            assert_eq!(out[l + 16], 0.5 * f32::from(KVALUES_IQ4NL[15 - l]));
        }
        assert_eq!(out[0], -63.5);
        assert_eq!(out[16], 56.5);
    }

    #[test]
    fn decode_maps_back_to_the_values() {
        // u * d - 128 d is the table value times d, exactly for d = 0.25.
        let block = BlockIQ4_NL {
            d: 0x3400u16.to_le_bytes(),
            qs: core::array::from_fn(|j| (j as u8).wrapping_mul(7) ^ 0x5a),
        };
        let (mut a, mut want) = (AffineBlock::new(), [0f32; 32]);
        BlockIQ4_NL::decode(&block.to_bytes(), &mut a);
        block.dequantize(&mut want);
        for (i, w) in want.iter().enumerate() {
            assert_eq!(a.scale[0] * f32::from(a.u[i]) + a.bias[0], *w, "i = {i}");
        }
    }
}
