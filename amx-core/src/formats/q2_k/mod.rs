//! Q2_K: 256 values per 84-byte super-block, 16 sub-blocks of 16 values, each with a
//! 4-bit scale and a 4-bit min: `x = (d * sc) * q - (dmin * m)` with `q` in 0..=3.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
pub(super) mod x86;

/// The 2-bit values of a Q2_K or Q3_K `qs` (64 bytes for 256 values), in value order:
/// value `128h + 32j + l` (`h` < 2, `j` < 4, `l` < 32) is bits `2j, 2j + 1` of
/// `qs[32h + l]`.
pub(super) const fn crumbs(qs: &[u8; 64]) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    let mut i = 0;
    while i < QK_K {
        let (h, j, l) = (i / 128, i % 128 / 32, i % 32);
        q[i] = (qs[32 * h + l] >> (2 * j)) & 3;
        i += 1;
    }
    q
}

/// One Q2_K super-block as stored by ggml (`block_q2_K`): 84 bytes for 256 values.
///
/// Value `i` is the 2-bit `q` of [`BlockQ2_K::quants`] (layout there); sub-block
/// `s = i / 16` has scale `scales[s] & 0xf` and min `scales[s] >> 4`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ2_K {
    /// 16 sub-block scales (low nibble) and mins (high nibble).
    pub scales: [u8; 16],
    /// 256 unsigned 2-bit quants.
    pub qs: [u8; 64],
    /// Super-block scale for the sub-block scales, f16 little endian.
    pub d: [u8; 2],
    /// Super-block scale for the sub-block mins, f16 little endian.
    pub dmin: [u8; 2],
}

const _: () = assert!(size_of::<BlockQ2_K>() == BlockQ2_K::BYTES);
const _: () = assert!(align_of::<BlockQ2_K>() == 1);

impl BlockQ2_K {
    /// Bytes per super-block.
    pub const BYTES: usize = 84;
    /// Values per super-block.
    pub const VALUES: usize = QK_K;

    /// Parses one super-block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self {
            scales: take(bytes, 0),
            qs: take(bytes, 16),
            d: take(bytes, 80),
            dmin: take(bytes, 82),
        }
    }

    /// The super-block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.scales);
        put(&mut out, 16, &self.qs);
        put(&mut out, 80, &self.d);
        put(&mut out, 82, &self.dmin);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The min scale `dmin` as `f32`.
    pub const fn dmin(&self) -> f32 {
        f16_le(self.dmin)
    }

    /// The 16 sub-block scales and mins, `(scales, mins)`, each 0..=15.
    pub const fn scales_mins(&self) -> ([u8; 16], [u8; 16]) {
        let (mut sc, mut m) = ([0u8; 16], [0u8; 16]);
        let mut s = 0;
        while s < 16 {
            sc[s] = self.scales[s] & 0x0f;
            m[s] = self.scales[s] >> 4;
            s += 1;
        }
        (sc, m)
    }

    /// The 256 unsigned quants (0..=3), in value order: value `128h + 32j + l` (`h` < 2,
    /// `j` < 4, `l` < 32) is bits `2j, 2j + 1` of `qs[32h + l]`.
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        crumbs(&self.qs)
    }

    /// Dequantizes the super-block: for value `i` of sub-block `s = i / 16`,
    /// `out[i] = (d * sc[s]) * q[i] - (dmin * m[s])`, each operation rounded to f32.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let (d, dmin) = (self.d(), self.dmin());
        let (sc, m) = self.scales_mins();
        let q = self.quants();
        for (s, (o, q)) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let dl = d * f32::from(sc[s]);
            let ml = dmin * f32::from(m[s]);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = dl * f32::from(q) - ml;
            }
        }
    }
}

impl FormatSpec for BlockQ2_K {
    const FORMAT: Format = Format::Q2_K;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` as quads; `d`, `dmin` and the 16 bytes of scales and mins per row.
    const FIELDS: &'static [Field] =
        &[quads(16, 64), per_row(80, 2), per_row(82, 2), per_row(0, 16)];
    const F16_SCALES: &'static [usize] = &[80, 82];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says, two runs),
    /// AMX / VNNI GOPS: 239/256 and 232/226 at M = 18, 259/258 and 243/233 at 19.
    /// Measured before the VNNI kernel took integer sub-block scales (6-18 % faster at
    /// M = 8 to 16 on a host without AMX), so the true crossing point is likely higher;
    /// not re-measured (no AMX host since).
    const AMX_MIN_ROWS: usize = 19;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ2_K {
    const SUB_BLOCK: usize = 16;

    /// `u` = the 2-bit value, scale `d * sc`, bias `-(dmin * m)` per sub-block of 16.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.u[..Self::VALUES].copy_from_slice(&b.quants());
        let (d, dmin) = (b.d(), b.dmin());
        let (sc, m) = b.scales_mins();
        for s in 0..16 {
            out.scale[s] = d * f32::from(sc[s]);
            out.bias[s] = -(dmin * f32::from(m[s]));
        }
    }

    /// `alpha = d`, `a = sc`, and the bias `-(dmin * m)` of `decode`.
    #[cfg(test)]
    fn int_scales(block: &[u8]) -> Option<super::int_scales::IntScales> {
        let b = Self::from_bytes(block.first_chunk()?);
        let mut affine = AffineBlock::new();
        Self::decode(block, &mut affine);
        Some(super::int_scales::IntScales {
            alpha: b.d(),
            a: b.scales_mins().0.map(i16::from),
            c: [0; 16],
            bias: Some(affine.bias),
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Packs 256 two-bit values into `qs` following the layout on [`BlockQ2_K::quants`],
    /// independently of the decoder.
    pub(in crate::formats) fn pack_crumbs(q: &[u8; 256]) -> [u8; 64] {
        let mut qs = [0u8; 64];
        for (i, &v) in q.iter().enumerate() {
            qs[32 * (i / 128) + i % 32] |= (v & 3) << (2 * (i % 128 / 32));
        }
        qs
    }

    #[test]
    #[cfg_attr(miri, ignore = "a minute under Miri: safe bit arithmetic over every bit of a block")]
    fn each_bit_lands_on_one_value() {
        let mut seen = [0u8; 256];
        for byte in 0..64 {
            for bit in 0..8 {
                let mut qs = [0u8; 64];
                qs[byte] = 1 << bit;
                let q = crumbs(&qs);
                let hits: [usize; 256] = core::array::from_fn(|i| usize::from(q[i] != 0));
                assert_eq!(hits.iter().sum::<usize>(), 1);
                let i = hits.iter().position(|&h| h == 1).unwrap();
                assert!(q[i].is_power_of_two());
                assert_eq!(seen[i] & q[i], 0);
                seen[i] |= q[i];
            }
        }
        assert!(seen.iter().all(|&s| s == 3));
        let q: [u8; 256] = core::array::from_fn(|i| (i * 7 % 4) as u8);
        assert_eq!(crumbs(&pack_crumbs(&q)), q);
    }

    #[test]
    fn dequantize_hand_built_block() {
        // d = 0.5 (0x3800), dmin = 0.25 (0x3400); sub-block s has scale 15 - s and min s;
        // q[i] = i * 5 % 4.
        let q: [u8; 256] = core::array::from_fn(|i| (i * 5 % 4) as u8);
        let block = BlockQ2_K {
            scales: core::array::from_fn(|s| (15 - s as u8) | ((s as u8) << 4)),
            qs: pack_crumbs(&q),
            d: 0x3800u16.to_le_bytes(),
            dmin: 0x3400u16.to_le_bytes(),
        };
        let bytes = block.to_bytes();
        assert_eq!(bytes[80..], [0x00, 0x38, 0x00, 0x34]);
        assert_eq!(BlockQ2_K::from_bytes(&bytes), block);
        assert_eq!(block.quants(), q);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let s = i / 16;
            let want = 0.5 * (15.0 - s as f64) * f64::from(q[i]) - 0.25 * s as f64;
            assert_eq!(f64::from(x), want, "i = {i}");
        }
        // Value 1: scale 15, q = 1, min 0; value 255: scale 0, min 15.
        assert_eq!((out[1], out[255]), (7.5, -3.75));
    }
}
