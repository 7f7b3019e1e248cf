//! TQ2_0 (ternary, 2 bits per value): 256 values per 66-byte block, one f16 scale `d` and
//! 256 2-bit values `q` in 0..=2 (3 decodes too): `x = d * (q - 1)`. BitNet b1.58 and
//! TriLMs are stored this way.

use super::field::{Field, per_row, quads};
use super::q2_k::crumbs;
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One TQ2_0 block as stored by ggml (`block_tq2_0`): 66 bytes for 256 values.
///
/// Value `128h + 32j + l` (`h` < 2, `j` < 4, `l` < 32) is bits `2j, 2j + 1` of
/// `qs[32h + l]`, Q2_K's layout.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockTQ2_0 {
    /// 256 unsigned 2-bit quants, four per byte.
    pub qs: [u8; 64],
    /// Scale, f16 little endian.
    pub d: [u8; 2],
}

const _: () = assert!(size_of::<BlockTQ2_0>() == BlockTQ2_0::BYTES);
const _: () = assert!(align_of::<BlockTQ2_0>() == 1);

impl BlockTQ2_0 {
    /// Bytes per block.
    pub const BYTES: usize = 66;
    /// Values per block.
    pub const VALUES: usize = QK_K;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { qs: take(bytes, 0), d: take(bytes, 64) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.qs);
        put(&mut out, 64, &self.d);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The 256 unsigned quants (0..=3), in value order (layout on [`BlockTQ2_0`]).
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        crumbs(&self.qs)
    }

    /// Dequantizes the block: `out[i] = d * (q[i] - 1)`, one f32 multiply (gguf-py:
    /// `d * (q.astype(np.int8) - 1).astype(np.float32)`).
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        for (o, q) in out.iter_mut().zip(self.quants()) {
            *o = d * f32::from(q as i8 - 1);
        }
    }
}

impl FormatSpec for BlockTQ2_0 {
    const FORMAT: Format = Format::TQ2_0;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` as quads (Q2_K's), the scale per row.
    const FIELDS: &'static [Field] = &[quads(0, 64), per_row(64, 2)];
    const F16_SCALES: &'static [usize] = &[64];
    /// Q2_K's threshold (19), taken from that format (2-bit values in quads, f16 scales),
    /// not measured: the development host had no AMX.
    const AMX_MIN_ROWS: usize = 19;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockTQ2_0 {
    const SUB_BLOCK: usize = 32;

    /// `u` = the 2-bit value, scale `d`, bias `-d` in each of the 8 sub-blocks of 32
    /// (`d * u - d` is `d * (u - 1)` exactly: `d * u` needs at most 13 significant bits).
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.u[..Self::VALUES].copy_from_slice(&b.quants());
        let d = b.d();
        for s in 0..Self::VALUES / Self::SUB_BLOCK {
            (out.scale[s], out.bias[s]) = (d, -d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::q2_k::tests::pack_crumbs;

    #[test]
    fn crumb_positions_scale_and_offset() {
        // d = -0.5 (0xb800); q[i] = i * 5 % 4 (3 included, which gguf-py decodes as 2).
        let q: [u8; 256] = core::array::from_fn(|i| (i * 5 % 4) as u8);
        let block = BlockTQ2_0 { qs: pack_crumbs(&q), d: 0xb800u16.to_le_bytes() };
        let bytes = block.to_bytes();
        assert_eq!(bytes[64..], [0x00, 0xb8]);
        assert_eq!(bytes[..64], pack_crumbs(&q));
        assert_eq!(BlockTQ2_0::from_bytes(&bytes), block);
        assert_eq!(block.quants(), q);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            assert_eq!(x, -0.5 * (f32::from(q[i]) - 1.0), "i = {i}");
        }
        // Value 33 is bits 2, 3 of qs[1]; value 128 bits 0, 1 of qs[32].
        let mut qs = [0u8; 64];
        qs[1] = 0b1000;
        qs[32] = 0b11;
        let block = BlockTQ2_0 { qs, d: 0x3c00u16.to_le_bytes() };
        block.dequantize(&mut out);
        assert_eq!((out[33], out[128], out[0]), (1.0, 2.0, -1.0));
    }

    #[test]
    fn decoded_form_is_exact() {
        // Every 2-bit value under scales of every magnitude: d * u - d is the value.
        for h in [0x0001u16, 0x03ff, 0x0400, 0x3555, 0x3c00, 0xc7ff, 0x7bff] {
            let q: [u8; 256] = core::array::from_fn(|i| (i % 4) as u8);
            let block = BlockTQ2_0 { qs: pack_crumbs(&q), d: h.to_le_bytes() };
            let mut a = AffineBlock::new();
            BlockTQ2_0::decode(&block.to_bytes(), &mut a);
            let mut want = [0f32; 256];
            block.dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                let s = i / 32;
                assert_eq!(a.scale[s] * f32::from(a.u[i]) + a.bias[s], *w, "d {h:#x} i {i}");
            }
        }
    }
}
