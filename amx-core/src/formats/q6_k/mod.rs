//! Q6_K: 256 values per 210-byte super-block, 16 sub-blocks of 16 values with an `i8`
//! scale each: `x = (d * sc) * (q - 32)` with `q` in 0..=63.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
pub(super) mod x86;

/// One Q6_K super-block as stored by ggml (`block_q6_K`): 210 bytes for 256 values.
///
/// The values come in two halves of 128 (`h = 0, 1`), each four groups of 32
/// (`g = 0..4`); value `128h + 32g + l` has its low 4 bits in `ql[64h + l]` (g = 0: low
/// nibble, g = 2: high nibble) or `ql[64h + 32 + l]` (g = 1: low, g = 3: high), and its top
/// 2 bits in bits `2g, 2g + 1` of `qh[32h + l]`. Value `i` uses scale `scales[i / 16]`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ6_K {
    /// The low 4 bits of every value.
    pub ql: [u8; 128],
    /// The high 2 bits of every value.
    pub qh: [u8; 64],
    /// 16 sub-block scales (`i8` bit patterns).
    pub scales: [u8; 16],
    /// Super-block scale, f16 little endian.
    pub d: [u8; 2],
}

const _: () = assert!(size_of::<BlockQ6_K>() == BlockQ6_K::BYTES);
const _: () = assert!(align_of::<BlockQ6_K>() == 1);

impl BlockQ6_K {
    /// Bytes per super-block.
    pub const BYTES: usize = 210;
    /// Values per super-block.
    pub const VALUES: usize = QK_K;

    /// Parses one super-block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self {
            ql: take(bytes, 0),
            qh: take(bytes, 128),
            scales: take(bytes, 192),
            d: take(bytes, 208),
        }
    }

    /// The super-block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.ql);
        put(&mut out, 128, &self.qh);
        put(&mut out, 192, &self.scales);
        put(&mut out, 208, &self.d);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The 16 signed sub-block scales.
    pub const fn sub_scales(&self) -> [i8; 16] {
        let mut s = [0i8; 16];
        let mut i = 0;
        while i < 16 {
            s[i] = self.scales[i] as i8;
            i += 1;
        }
        s
    }

    /// The 256 signed quants with the offset removed (`q - 32`, -32..=31), in value order.
    pub const fn quants(&self) -> [i8; Self::VALUES] {
        let mut q = [0i8; Self::VALUES];
        let mut h = 0;
        while h < 2 {
            let mut l = 0;
            while l < 32 {
                let a = self.ql[64 * h + l];
                let b = self.ql[64 * h + 32 + l];
                let hi = self.qh[32 * h + l];
                let low = [a & 0x0f, b & 0x0f, a >> 4, b >> 4];
                let mut g = 0;
                while g < 4 {
                    let v = low[g] | (((hi >> (2 * g)) & 3) << 4);
                    q[128 * h + 32 * g + l] = v as i8 - 32;
                    g += 1;
                }
                l += 1;
            }
            h += 1;
        }
        q
    }

    /// Dequantizes the super-block: `out[i] = (d * sc[i / 16]) * (q[i] - 32)`, each
    /// operation rounded to f32.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        let sc = self.sub_scales();
        let q = self.quants();
        for (s, (o, q)) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let d1 = d * f32::from(sc[s]);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = d1 * f32::from(q);
            }
        }
    }
}

impl FormatSpec for BlockQ6_K {
    const FORMAT: Format = Format::Q6_K;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `ql` then `qh` as quads; the 16 sub-block scales and `d` per row.
    const FIELDS: &'static [Field] =
        &[quads(0, 128), quads(128, 64), per_row(192, 16), per_row(208, 2)];
    const F16_SCALES: &'static [usize] = &[208];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says), AMX / VNNI
    /// GOPS: 277/275 at M = 20 (223/279 at 16).
    const AMX_MIN_ROWS: usize = 20;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ6_K {
    const SUB_BLOCK: usize = 16;

    /// `u` = the 6-bit value, scale `d * sc`, bias `-32 * scale` per sub-block of 16.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        for (u, q) in out.u.iter_mut().zip(b.quants()) {
            *u = (q + 32) as u8;
        }
        let d = b.d();
        for (s, sc) in b.sub_scales().into_iter().enumerate() {
            let sc = d * f32::from(sc);
            (out.scale[s], out.bias[s]) = (sc, -32.0 * sc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs 256 six-bit values into (ql, qh) following the layout described on
    /// [`BlockQ6_K`].
    fn pack_quants(q: &[u8; 256]) -> ([u8; 128], [u8; 64]) {
        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        for (i, &v) in q.iter().enumerate() {
            let (h, g, l) = (i / 128, i % 128 / 32, i % 32);
            let byte = 64 * h + 32 * (g % 2) + l;
            ql[byte] |= (v & 0x0f) << (4 * (g / 2));
            qh[32 * h + l] |= (v >> 4) << (2 * g);
        }
        (ql, qh)
    }

    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri: safe bit arithmetic, 1280 whole-block decodes")]
    fn each_bit_lands_on_one_value() {
        let mut seen = [0u8; 256];
        let zero = BlockQ6_K::from_bytes(&[0; 210]);
        for byte in 0..192 {
            for bit in 0..8 {
                let mut block = zero;
                if byte < 128 {
                    block.ql[byte] = 1 << bit;
                } else {
                    block.qh[byte - 128] = 1 << bit;
                }
                let q = block.quants();
                // All-zero bits decode to -32; one set bit adds a power of two to one value.
                let hits: [usize; 256] = core::array::from_fn(|i| usize::from(q[i] != -32));
                assert_eq!(hits.iter().sum::<usize>(), 1);
                let i = hits.iter().position(|&h| h == 1).unwrap();
                let raw = (q[i] + 32) as u8;
                assert!(raw.is_power_of_two());
                assert_eq!(seen[i] & raw, 0);
                seen[i] |= raw;
            }
        }
        assert!(seen.iter().all(|&s| s == 0x3f));
    }

    #[test]
    fn dequantize_hand_built_block() {
        // d = 0.125 (0x3000); scale s = 8s - 64 (negative and positive); q[i] = i * 5 % 64.
        let sc: [i8; 16] = core::array::from_fn(|s| 8 * s as i8 - 64);
        let raw: [u8; 256] = core::array::from_fn(|i| (i * 5 % 64) as u8);
        let (ql, qh) = pack_quants(&raw);
        let block = BlockQ6_K { ql, qh, scales: sc.map(|s| s as u8), d: 0x3000u16.to_le_bytes() };
        let bytes = block.to_bytes();
        assert_eq!(bytes[208..], 0x3000u16.to_le_bytes());
        assert_eq!(BlockQ6_K::from_bytes(&bytes), block);
        assert_eq!(block.sub_scales(), sc);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let want = 0.125 * f64::from(sc[i / 16]) * (f64::from(raw[i]) - 32.0);
            assert_eq!(f64::from(x), want, "i = {i}");
        }
        // Value 0: scale -64, q = 0 -> 0.125 * -64 * -32.
        assert_eq!(out[0], 256.0);
    }

    #[test]
    fn odd_scale_and_extreme_quants() {
        // d = 0x3555 (0.333251953125, 11 significant bits), sc = -127, q - 32 = 31 or -1:
        // the products have at most 23 significant bits, so they are exact in f32 and equal
        // the f64 products.
        let mut block = BlockQ6_K::from_bytes(&[0; 210]);
        block.d = 0x3555u16.to_le_bytes();
        block.scales = [(-127i8) as u8; 16];
        block.ql = [0xff; 128];
        block.qh = [0x55; 64]; // top bits 01 everywhere: q = 31, q - 32 = -1
        block.qh[0] = 0xff; // values 0, 32, 64, 96: q = 63
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        let d = 0.333_251_953_125f64;
        assert_eq!(out[0], (d * -127.0 * 31.0) as f32);
        assert_eq!(out[1], (d * 127.0) as f32);
        assert_eq!(out[32], out[0]);
    }
}
