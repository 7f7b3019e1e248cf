//! NVFP4 (NVIDIA's FP4): 64 values per 36-byte block, four sub-blocks of 16 values, each
//! with an unsigned E4M3 scale byte, and 64 4-bit indices into the doubled E2M1 table
//! ([`KVALUES_MXFP4`], MXFP4's): `x = ue4m3_to_f32_half(d[s]) * KVALUES_MXFP4[q]`.
//!
//! Every path decodes exactly: a scale has at most 4 significant bits and the table
//! values at most 2, so `scale * u` and `12 * scale` (the decoded form's offset) are exact
//! in f32.

use super::field::{Field, per_row, quads};
use super::mxfp4::{KVALUES_MXFP4, U_OFFSET};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// Half the value of an unsigned E4M3 scale byte (bias 7, bit 7 ignored), as gguf-py's
/// `NVFP4.ue4m3_to_fp32` computes it (ggml's `ggml_ue4m3_to_fp32` halved, for the doubled
/// table): exponent field `e = (x >> 3) & 15` and mantissa `m = x & 7` give
/// `(1 + m / 8) * 2^(e - 7) / 2`, or `m * 2^-9 / 2` for `e = 0`; bytes `0x00` and `0x7f`
/// (E4M3's NaN) give 0. `0xff` is not special-cased (gguf-py compares the whole byte):
/// it gives 240, the largest scale (`0x7e` and `0xfe` give 224).
///
/// Exact for every byte; the result is `+0.0` or a positive normal f32.
pub const fn ue4m3_to_f32_half(x: u8) -> f32 {
    let (e, m) = ((x >> 3) & 0x0f, x & 0x07);
    let raw = if e == 0 {
        m as f32 * f32::from_bits((127 - 9) << 23)
    } else {
        // (1.0 + m / 8.0) * 2.0 ** (e - 7), in f32 as gguf-py does (both factors exact).
        (1.0 + m as f32 / 8.0) * f32::from_bits((e as u32 + 127 - 7) << 23)
    };
    if x == 0 || x == 0x7f { 0.0 } else { raw * 0.5 }
}

/// [`ue4m3_to_f32_half`] by bit operations, as the AVX-512 decoder computes it (equal for
/// every byte): for `e >= 1` the f32 whose exponent field is `e + 119` and whose top three
/// mantissa bits are `m` (`(x & 0x7f) << 20` plus the bias); for `e = 0`, `m * 2^-10`;
/// 0 for `0x7f`.
pub(crate) const fn ue4m3_half_bits(x: u8) -> f32 {
    if x == 0x7f {
        0.0
    } else if x & 0x78 == 0 {
        (x & 0x07) as f32 * f32::from_bits((127 - 10) << 23)
    } else {
        f32::from_bits((((x & 0x7f) as u32) << 20) + (119 << 23))
    }
}

/// One NVFP4 block as stored by ggml (`block_nvfp4`): 36 bytes for 64 values.
///
/// Sub-block `s` (values `16s..16s + 16`) has scale byte `d[s]`; its value `16s + j` is
/// the table value of the low nibble of `qs[8s + j]` for `j < 8`, of the high nibble of
/// `qs[8s + j - 8]` for `j >= 8`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockNVFP4 {
    /// The four sub-block scales, unsigned E4M3 ([`ue4m3_to_f32_half`]).
    pub d: [u8; 4],
    /// 64 4-bit indices into [`KVALUES_MXFP4`], two per byte.
    pub qs: [u8; 32],
}

const _: () = assert!(size_of::<BlockNVFP4>() == BlockNVFP4::BYTES);
const _: () = assert!(align_of::<BlockNVFP4>() == 1);

impl BlockNVFP4 {
    /// Bytes per block.
    pub const BYTES: usize = 36;
    /// Values per block.
    pub const VALUES: usize = 64;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { d: take(bytes, 0), qs: take(bytes, 4) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 4, &self.qs);
        out
    }

    /// The scale of sub-block `s` (0..4), `ue4m3_to_f32_half(d[s])`.
    pub const fn scale(&self, s: usize) -> f32 {
        ue4m3_to_f32_half(self.d[s % 4])
    }

    /// The 64 table indices (0..=15), in value order (layout on [`BlockNVFP4`]).
    pub const fn indices(&self) -> [u8; Self::VALUES] {
        let mut q = [0u8; Self::VALUES];
        let mut i = 0;
        while i < Self::VALUES {
            let (s, j) = (i / 16, i % 16);
            let byte = self.qs[8 * s + j % 8];
            q[i] = if j < 8 { byte & 0x0f } else { byte >> 4 };
            i += 1;
        }
        q
    }

    /// The 64 table values `KVALUES_MXFP4[index]`, in value order.
    pub const fn quants(&self) -> [i8; Self::VALUES] {
        let idx = self.indices();
        let mut q = [0i8; Self::VALUES];
        let mut i = 0;
        while i < Self::VALUES {
            q[i] = KVALUES_MXFP4[(idx[i] & 0x0f) as usize];
            i += 1;
        }
        q
    }

    /// Dequantizes the block: `out[i] = scale(i / 16) * KVALUES_MXFP4[q[i]]`, one f32
    /// multiply (gguf-py: `d * vals.astype(np.float32)`).
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let q = self.quants();
        for (s, (o, q)) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let d = self.scale(s);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = d * f32::from(q);
            }
        }
    }
}

impl FormatSpec for BlockNVFP4 {
    const FORMAT: Format = Format::NVFP4;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 32 bytes of indices as quads (two chunks per sub-block), the four scale bytes
    /// per row (16 rows: 64 bytes, row `r` at dword `r`, sub-block `s` its byte `s`).
    const FIELDS: &'static [Field] = &[quads(4, 32), per_row(0, 4)];
    const F16_SCALES: &'static [usize] = &[];
    /// MXFP4's threshold (26), taken from that format (E2M1 nibbles through the same
    /// table, a byte scale), not measured: the development host had no AMX.
    const AMX_MIN_ROWS: usize = 26;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockNVFP4 {
    const SUB_BLOCK: usize = 16;

    /// `u = KVALUES_MXFP4[q] + 12`, scale `ue4m3_to_f32_half(d[s])` (by
    /// [`ue4m3_half_bits`], the vector decoder's bit operations), bias `-12 * scale`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        for (u, q) in out.u.iter_mut().zip(b.quants()) {
            *u = (q + U_OFFSET) as u8;
        }
        for (s, &x) in b.d.iter().enumerate() {
            let d = ue4m3_half_bits(x);
            (out.scale[s], out.bias[s]) = (d, -f32::from(U_OFFSET) * d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ue4m3_half_every_byte() {
        // 2^n for small n, in f64 (no `powi` in core).
        let p2 = |n: i32| (0..n.abs()).fold(1f64, |v, _| if n > 0 { v * 2.0 } else { v / 2.0 });
        for x in 0..=255u8 {
            let (e, m) = (i32::from((x >> 3) & 15), f64::from(x & 7));
            let v = if e == 0 { m / 512.0 } else { (1.0 + m / 8.0) * p2(e - 7) };
            let want = if x == 0 || x == 0x7f { 0.0 } else { v / 2.0 };
            assert_eq!(f64::from(ue4m3_to_f32_half(x)), want, "x = {x:#04x}");
            assert_eq!(ue4m3_half_bits(x).to_bits(), ue4m3_to_f32_half(x).to_bits(), "{x:#04x}");
        }
        assert_eq!(ue4m3_to_f32_half(0x38), 0.5); // e = 7, m = 0: 1.0, halved
        assert_eq!(ue4m3_to_f32_half(0x01), 1.0 / 1024.0);
        assert_eq!(ue4m3_to_f32_half(0x7e), 224.0);
        assert_eq!(ue4m3_to_f32_half(0xff), 240.0);
        assert_eq!(ue4m3_to_f32_half(0x80).to_bits(), 0);
    }

    #[test]
    fn nibble_positions_and_scales() {
        // Scales 1, 2, 0.5 and 0 (bytes 0x40: e = 8, 0x48: e = 9, 0x38: e = 7, 0x7f);
        // qs[j] = j % 16 | (15 - j % 16) << 4.
        let mut bytes = [0u8; 36];
        bytes[..4].copy_from_slice(&[0x40, 0x48, 0x38, 0x7f]);
        for j in 0..32 {
            bytes[4 + j] = (j % 16) as u8 | ((15 - (j % 16) as u8) << 4);
        }
        let block = BlockNVFP4::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        let mut out = [0f32; 64];
        block.dequantize(&mut out);
        let scales = [1.0, 2.0, 0.5, 0.0];
        for s in 0..4 {
            for j in 0..8 {
                let lo = (8 * s + j) % 16;
                assert_eq!(out[16 * s + j], scales[s] * f32::from(KVALUES_MXFP4[lo]));
                assert_eq!(out[16 * s + 8 + j], scales[s] * f32::from(KVALUES_MXFP4[15 - lo]));
            }
        }
        // Value 16 (sub-block 1, j = 0) is the low nibble of qs[8] (index 8, -0); value 8
        // the high nibble of qs[0] (index 15, -12), at scale 1.
        assert_eq!((out[8], out[16], out[7]), (-12.0, 0.0, 12.0));
    }

    #[test]
    fn decoded_form_is_exact() {
        // Every index under every scale byte.
        for x in 0..=255u8 {
            let mut bytes = [x; 36];
            for j in 0..32 {
                bytes[4 + j] = (j % 16) as u8 | (((j + 5) % 16) as u8) << 4;
            }
            let mut a = AffineBlock::new();
            BlockNVFP4::decode(&bytes, &mut a);
            let mut want = [0f32; 64];
            BlockNVFP4::from_bytes(&bytes).dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                let s = i / 16;
                assert!(a.u[i] <= 24);
                assert_eq!(a.scale[s] * f32::from(a.u[i]) + a.bias[s], *w, "x {x} i {i}");
            }
        }
    }
}
