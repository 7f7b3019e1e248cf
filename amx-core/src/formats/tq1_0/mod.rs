//! TQ1_0 (ternary, 1.6875 bits per value): 256 values per 54-byte block, one f16 scale
//! `d` and 256 ternary digits `t` in 0..=2 packed five (or four) to a byte in base 3:
//! `x = d * (t - 1)`. BitNet b1.58 and TriLMs are stored this way.
//!
//! A byte `b` holds its digits as the fixed-point fraction `b / 256` (rounded up from
//! `sum t_k 3^(4-k) / 243`): digit `k` is the integer part of three times the fraction
//! after `k` digits were shifted out, `t_k = ((b * 3^k mod 256) * 3) >> 8`.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// Digit `k` (0..5) of a base-3 packed byte: `((b * 3^k mod 256) * 3) >> 8`, as ggml's
/// `dequantize_row_tq1_0` and gguf-py's `TQ1_0.dequantize_blocks` compute it (u8
/// multiplies that wrap, then a u16 one).
pub(crate) const fn trit(b: u8, k: usize) -> u8 {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let y = b.wrapping_mul(POW3[k % 5]);
    ((y as u16 * 3) >> 8) as u8
}

/// One TQ1_0 block as stored by ggml (`block_tq1_0`): 54 bytes for 256 values.
///
/// Value `32k + l` (`k` < 5, `l` < 32) is digit `k` of `qs[l]`; value `160 + 16k + l`
/// (`k` < 5, `l` < 16) digit `k` of `qs[32 + l]`; value `240 + 4k + l` (`k` < 4, `l` < 4)
/// digit `k` of `qh[l]`, where digit `k` of a byte `b` is `((b * 3^k mod 256) * 3) >> 8`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockTQ1_0 {
    /// 240 digits, five per byte.
    pub qs: [u8; 48],
    /// 16 digits, four per byte.
    pub qh: [u8; 4],
    /// Scale, f16 little endian.
    pub d: [u8; 2],
}

const _: () = assert!(size_of::<BlockTQ1_0>() == BlockTQ1_0::BYTES);
const _: () = assert!(align_of::<BlockTQ1_0>() == 1);

impl BlockTQ1_0 {
    /// Bytes per block.
    pub const BYTES: usize = 54;
    /// Values per block.
    pub const VALUES: usize = QK_K;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { qs: take(bytes, 0), qh: take(bytes, 48), d: take(bytes, 52) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.qs);
        put(&mut out, 48, &self.qh);
        put(&mut out, 52, &self.d);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The 256 digits (0..=2), in value order (layout on [`BlockTQ1_0`]).
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        let mut q = [0u8; Self::VALUES];
        let mut i = 0;
        while i < Self::VALUES {
            q[i] = if i < 160 {
                trit(self.qs[i % 32], i / 32)
            } else if i < 240 {
                trit(self.qs[32 + (i - 160) % 16], (i - 160) / 16)
            } else {
                trit(self.qh[(i - 240) % 4], (i - 240) / 4)
            };
            i += 1;
        }
        q
    }

    /// Dequantizes the block: `out[i] = d * (t[i] - 1)`, one f32 multiply (gguf-py:
    /// `d * (t.astype(np.int8) - 1).astype(np.float32)`).
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        for (o, t) in out.iter_mut().zip(self.quants()) {
            *o = d * f32::from(t as i8 - 1);
        }
    }
}

impl FormatSpec for BlockTQ1_0 {
    const FORMAT: Format = Format::TQ1_0;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` as quads; `qh` per row (4 bytes: 16 rows are one vector, row `r` at dword
    /// `r`, the shape of a decoded chunk) and the scale per row.
    const FIELDS: &'static [Field] = &[quads(0, 48), per_row(48, 4), per_row(52, 2)];
    const F16_SCALES: &'static [usize] = &[52];
    /// TQ2_0's threshold (19, itself Q2_K's), taken from that format (ternary values, one
    /// f16 scale), not measured: the development host had no AMX.
    const AMX_MIN_ROWS: usize = 19;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockTQ1_0 {
    const SUB_BLOCK: usize = 32;

    /// `u` = the digit, scale `d`, bias `-d` in each of the 8 sub-blocks of 32 (`d * u - d`
    /// is `d * (u - 1)` exactly).
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

    /// gguf-py's `TQ1_0.quantize_blocks` packing of five (or four) digits into one byte:
    /// `ceil(sum t_k 3^(4-k) * 256 / 243)`.
    fn pack5(t: &[u8]) -> u8 {
        let mut v = 0u16;
        for k in 0..5 {
            v = 3 * v + u16::from(t.get(k).copied().unwrap_or(0));
        }
        (v * 256).div_ceil(243) as u8
    }

    /// Packs 256 digits into `qs` and `qh` following the layout on [`BlockTQ1_0`],
    /// independently of the decoder.
    fn pack(t: &[u8; 256]) -> ([u8; 48], [u8; 4]) {
        let (mut qs, mut qh) = ([0u8; 48], [0u8; 4]);
        for l in 0..32 {
            qs[l] = pack5(&core::array::from_fn::<u8, 5, _>(|k| t[32 * k + l]));
        }
        for l in 0..16 {
            qs[32 + l] = pack5(&core::array::from_fn::<u8, 5, _>(|k| t[160 + 16 * k + l]));
        }
        for l in 0..4 {
            qh[l] = pack5(&core::array::from_fn::<u8, 4, _>(|k| t[240 + 4 * k + l]));
        }
        (qs, qh)
    }

    #[test]
    fn every_digit_string_round_trips() {
        // Every five digits (243 strings): the packed byte gives them back.
        for v in 0..243u16 {
            let t: [u8; 5] = core::array::from_fn(|k| (v / [81, 27, 9, 3, 1][k] % 3) as u8);
            let b = pack5(&t);
            for (k, &tk) in t.iter().enumerate() {
                assert_eq!(trit(b, k), tk, "v {v} k {k}");
            }
        }
    }

    #[test]
    fn digit_positions_and_scale() {
        // d = -0.5 (0xb800); t[i] = (i * 7 + i / 3) % 3.
        let t: [u8; 256] = core::array::from_fn(|i| ((i * 7 + i / 3) % 3) as u8);
        let (qs, qh) = pack(&t);
        let block = BlockTQ1_0 { qs, qh, d: 0xb800u16.to_le_bytes() };
        let bytes = block.to_bytes();
        assert_eq!((&bytes[48..52], &bytes[52..]), (&qh[..], &[0x00, 0xb8][..]));
        assert_eq!(BlockTQ1_0::from_bytes(&bytes), block);
        assert_eq!(block.quants(), t);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            assert_eq!(x, -0.5 * (f32::from(t[i]) - 1.0), "i = {i}");
        }
    }

    #[test]
    fn decoded_form_is_exact() {
        for h in [0x0001u16, 0x03ff, 0x0400, 0x3555, 0x3c00, 0xc7ff, 0x7bff] {
            let t: [u8; 256] = core::array::from_fn(|i| (i % 3) as u8);
            let (qs, qh) = pack(&t);
            let block = BlockTQ1_0 { qs, qh, d: h.to_le_bytes() };
            let mut a = AffineBlock::new();
            BlockTQ1_0::decode(&block.to_bytes(), &mut a);
            let mut want = [0f32; 256];
            block.dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                let s = i / 32;
                assert_eq!(a.scale[s] * f32::from(a.u[i]) + a.bias[s], *w, "d {h:#x} i {i}");
            }
        }
    }
}
