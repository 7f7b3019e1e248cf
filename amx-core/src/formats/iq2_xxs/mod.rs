//! IQ2_XXS (2.06 bits per value): 256 values per 66-byte block, an f16 scale `d` and
//! eight sub-blocks of 32 values, each two 32-bit words: four indices into a 256-entry
//! grid of eight values in {8, 25, 43}, then four 7-bit sign indices and a 4-bit scale
//! `ls`: `x = d * (0.5 + ls) * 0.25 * grid * sign`.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// The grid of IQ2_XXS (gguf-py's `IQ2_XXS.grid_hex`, ggml's `iq2xxs_grid`): entry `e`
/// holds eight values, value `j` in bits `2j, 2j + 1` as an index into
/// [`IQ2_GRID_MAP`].
pub(crate) const IQ2XXS_GRID: [u16; 256] = [
    0x0000, 0x0002, 0x0005, 0x0008, 0x000a, 0x0011, 0x0014, 0x0020, 0x0022, 0x0028, 0x002a, 0x0041,
    0x0044, 0x0050, 0x0058, 0x0061, 0x0064, 0x0080, 0x0082, 0x008a, 0x00a2, 0x0101, 0x0104, 0x0110,
    0x0115, 0x0140, 0x0184, 0x0198, 0x0200, 0x0202, 0x0222, 0x0282, 0x0401, 0x0404, 0x0410, 0x0421,
    0x0424, 0x0440, 0x0442, 0x0448, 0x0460, 0x0481, 0x0484, 0x0490, 0x04a4, 0x0500, 0x0502, 0x0508,
    0x0520, 0x0546, 0x0569, 0x0580, 0x0591, 0x0609, 0x0610, 0x0640, 0x0684, 0x06a4, 0x0800, 0x0805,
    0x0808, 0x0814, 0x0828, 0x0841, 0x0844, 0x0850, 0x0852, 0x0888, 0x0904, 0x0940, 0x0a02, 0x0a14,
    0x1001, 0x1004, 0x1010, 0x1021, 0x1040, 0x1060, 0x1084, 0x1090, 0x1095, 0x1100, 0x1108, 0x1120,
    0x1150, 0x115a, 0x1180, 0x1224, 0x1245, 0x1400, 0x1408, 0x1420, 0x1425, 0x1449, 0x1480, 0x1518,
    0x1562, 0x1600, 0x1616, 0x1801, 0x1804, 0x1810, 0x1840, 0x1881, 0x1900, 0x1905, 0x19a0, 0x1a51,
    0x2000, 0x2002, 0x200a, 0x2044, 0x2061, 0x2080, 0x2082, 0x2129, 0x2148, 0x2200, 0x2202, 0x2401,
    0x2404, 0x2410, 0x2440, 0x2456, 0x2500, 0x2541, 0x2564, 0x2690, 0x2808, 0x2820, 0x2894, 0x2a44,
    0x4001, 0x4004, 0x4010, 0x4018, 0x4021, 0x4024, 0x4040, 0x4048, 0x4056, 0x4060, 0x4081, 0x4084,
    0x4090, 0x4100, 0x4120, 0x4161, 0x4180, 0x4185, 0x4201, 0x4210, 0x4248, 0x4256, 0x4268, 0x4400,
    0x4408, 0x4420, 0x4480, 0x4499, 0x4512, 0x4524, 0x4600, 0x4801, 0x4804, 0x4810, 0x4840, 0x4845,
    0x4900, 0x4958, 0x4961, 0x4982, 0x4a45, 0x4a90, 0x5000, 0x5008, 0x5011, 0x5019, 0x5020, 0x5080,
    0x5088, 0x5104, 0x5142, 0x51a4, 0x5291, 0x5490, 0x5492, 0x550a, 0x5601, 0x5654, 0x5800, 0x5811,
    0x5819, 0x5864, 0x5940, 0x5a08, 0x6004, 0x6010, 0x6040, 0x6068, 0x6100, 0x6155, 0x6218, 0x6260,
    0x6400, 0x6405, 0x6510, 0x6512, 0x6584, 0x6842, 0x8000, 0x8002, 0x800a, 0x8041, 0x8082, 0x8104,
    0x8118, 0x8140, 0x8211, 0x8401, 0x8404, 0x8410, 0x8415, 0x8440, 0x8460, 0x8500, 0x8546, 0x8594,
    0x8609, 0x8640, 0x8660, 0x8802, 0x8904, 0x8a11, 0x9004, 0x9010, 0x9024, 0x9040, 0x90a1, 0x9116,
    0x9180, 0x9245, 0x9400, 0x9422, 0x9444, 0x9551, 0x9881, 0x9920, 0xa002, 0xa050, 0xa085, 0xa109,
    0xa200, 0xa418, 0xa850, 0xa904,
];

/// The values the 2-bit grid indices of the IQ2 formats stand for (gguf-py's `grid_map`).
pub(crate) const IQ2_GRID_MAP: [u8; 3] = [0x08, 0x19, 0x2b];

/// Value `j` (< 8) of a compressed IQ2 grid entry: 8, 25 or 43 (index 3, absent from the
/// grids, reads as 43).
pub(crate) const fn iq2_grid_value(entry: u16, j: usize) -> u8 {
    let i = (entry >> (2 * (j % 8))) as usize & 3;
    IQ2_GRID_MAP[if i < 3 { i } else { 2 }]
}

/// A grid value with its sign, as [`BlockIQ2_XXS::value`] and its IQ2_XS / IQ2_S twins
/// give them: `-g` where `minus`, else `g` (the grid values are at most 43).
pub(crate) const fn signed((g, minus): (u8, bool)) -> i8 {
    if minus { -(g as i8) } else { g as i8 }
}

/// ggml's `ksigns_iq2xs[i]`: the seven bits of `i` and, as bit 7, their parity (so every
/// sign byte has an even number of minus signs).
pub(crate) const fn ksigns(i: u8) -> u8 {
    let i = i & 0x7f;
    i | (((i.count_ones() & 1) as u8) << 7)
}

/// One IQ2_XXS block as stored by ggml (`block_iq2_xxs`): 66 bytes for 256 values.
///
/// Sub-block `s` (< 8, values `32s..32s + 32`) is `qs[8s..8s + 8]`: bytes `8s + k`
/// (`k` < 4) index the grid for values `32s + 8k..32s + 8k + 8`; the little-endian u32
/// `aux` at `8s + 4` holds the sign index of those values in bits `7k..7k + 7` (the
/// signs are bit `j` of ggml's `ksigns_iq2xs` of it for value `j`) and `ls` in bits 28..32.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIQ2_XXS {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// Grid indices, sign indices and sub-block scales (layout above).
    pub qs: [u8; 64],
}

const _: () = assert!(size_of::<BlockIQ2_XXS>() == BlockIQ2_XXS::BYTES);
const _: () = assert!(align_of::<BlockIQ2_XXS>() == 1);

impl BlockIQ2_XXS {
    /// Bytes per block.
    pub const BYTES: usize = 66;
    /// Values per block.
    pub const VALUES: usize = QK_K;

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

    /// The `aux` word of sub-block `s` (< 8).
    const fn aux(&self, s: usize) -> u32 {
        let a = 8 * (s % 8) + 4;
        u32::from_le_bytes([self.qs[a], self.qs[a + 1], self.qs[a + 2], self.qs[a + 3]])
    }

    /// The scale of sub-block `s` (< 8) as gguf-py computes it in f32:
    /// `d * (0.5 + ls) * 0.25`.
    pub fn sub_scale(&self, s: usize) -> f32 {
        self.d() * (0.5 + (self.aux(s) >> 28) as f32) * 0.25
    }

    /// The grid value (8, 25 or 43) and whether its sign is minus, of value `i` (< 256).
    pub fn value(&self, i: usize) -> (u8, bool) {
        let (s, k, j) = ((i / 32) % 8, (i / 8) % 4, i % 8);
        let entry = IQ2XXS_GRID[self.qs[8 * s + k] as usize];
        let signs = ksigns((self.aux(s) >> (7 * k)) as u8);
        (iq2_grid_value(entry, j), signs >> j & 1 != 0)
    }

    /// Dequantizes the block as gguf-py does: `(db * grid) * sign`, `db` the sub-block's
    /// scale ([`Self::sub_scale`]), `sign` = ±1.0.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        for (i, o) in out.iter_mut().enumerate() {
            let db = self.sub_scale(i / 32);
            let (g, minus) = self.value(i);
            *o = db * f32::from(g) * if minus { -1.0 } else { 1.0 };
        }
    }
}

impl FormatSpec for BlockIQ2_XXS {
    const FORMAT: Format = Format::IQ2_XXS;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` as quads (chunk `2s` the grid indices, chunk `2s + 1` the `aux` word of
    /// sub-block `s`), the scale per row.
    const FIELDS: &'static [Field] = &[quads(2, 64), per_row(0, 2)];
    const F16_SCALES: &'static [usize] = &[0];
    /// Q2_K's threshold (19), taken from that format (2-bit class, 256-value blocks, one
    /// f16 scale with small sub-block scales), not measured: the development host had no
    /// AMX.
    const AMX_MIN_ROWS: usize = 19;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockIQ2_XXS {
    const SUB_BLOCK: usize = 32;

    /// `u = 43 + sign * grid` (0, 18, 35, 51, 68 or 86), scale `db` (the sub-block's
    /// scale), bias `db * -43`: `db` has at most 16 significant bits (an f16 times an odd
    /// number below 32, times a power of two), so `db * u`, `db * -43` and their sum are
    /// exact and equal `db * grid * sign`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        let values = (0..Self::VALUES).map(|i| signed(b.value(i)));
        out.set_centered(43, values, Self::VALUES / Self::SUB_BLOCK, |s| b.sub_scale(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_entries_match_gguf_py() {
        // Printed by gguf-py 0.19 (`IQ2_XXS.init_grid(); IQ2_XXS.grid[0, 0, e]`).
        let want: [(usize, [u8; 8]); 5] = [
            (0, [8, 8, 8, 8, 8, 8, 8, 8]),
            (1, [43, 8, 8, 8, 8, 8, 8, 8]),
            (37, [8, 8, 8, 25, 8, 25, 8, 8]),
            (100, [8, 25, 8, 8, 8, 43, 25, 8]),
            (255, [8, 25, 8, 8, 25, 43, 43, 43]),
        ];
        for (e, values) in want {
            let got: [u8; 8] = core::array::from_fn(|j| iq2_grid_value(IQ2XXS_GRID[e], j));
            assert_eq!(got, values, "entry {e}");
        }
        // No entry uses index 3.
        for e in IQ2XXS_GRID {
            assert!((0..8).all(|j| (e >> (2 * j)) & 3 != 3), "{e:#06x}");
        }
    }

    #[test]
    fn ksigns_match_gguf_py() {
        // gguf-py's `IQ2_XXS.ksigns[0..8]` and `[120..128]`.
        let head = [0, 129, 130, 3, 132, 5, 6, 135];
        let tail = [120, 249, 250, 123, 252, 125, 126, 255];
        for i in 0..8 {
            assert_eq!(ksigns(i as u8), head[i]);
            assert_eq!(ksigns(120 + i as u8), tail[i]);
        }
    }

    #[test]
    fn layout_and_scales() {
        // d = 0.5 (0x3800); sub-block s: grid indices 37 * s + k, sign index k + 5 s,
        // ls = 2 s + 1.
        let mut qs = [0u8; 64];
        for s in 0..8 {
            let mut aux = (2 * s as u32 + 1) << 28;
            for k in 0..4 {
                qs[8 * s + k] = (37 * s + k) as u8;
                aux |= ((k + 5 * s) as u32 & 0x7f) << (7 * k);
            }
            qs[8 * s + 4..8 * s + 8].copy_from_slice(&aux.to_le_bytes());
        }
        let block = BlockIQ2_XXS { d: 0x3800u16.to_le_bytes(), qs };
        let bytes = block.to_bytes();
        assert_eq!((&bytes[..2], &bytes[2..]), (&[0x00, 0x38][..], &qs[..]));
        assert_eq!(BlockIQ2_XXS::from_bytes(&bytes), block);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let (s, k, j) = (i / 32, i / 8 % 4, i % 8);
            let g = iq2_grid_value(IQ2XXS_GRID[(37 * s + k) % 256], j);
            let minus = ksigns((k + 5 * s) as u8) >> j & 1 != 0;
            let db = 0.5 * (0.5 + (2 * s + 1) as f32) * 0.25;
            assert_eq!(x, db * f32::from(g) * if minus { -1.0 } else { 1.0 }, "i = {i}");
        }
    }

    #[test]
    fn decoded_form_is_exact() {
        for h in [0x0001u16, 0x03ff, 0x0400, 0x3555, 0x3c00, 0xc7ff, 0x7bff] {
            let qs: [u8; 64] = core::array::from_fn(|i| (i * 73 + 11) as u8);
            let block = BlockIQ2_XXS { d: h.to_le_bytes(), qs };
            let mut a = AffineBlock::new();
            BlockIQ2_XXS::decode(&block.to_bytes(), &mut a);
            let mut want = [0f32; 256];
            block.dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                let s = i / 32;
                assert_eq!(a.scale[s] * f32::from(a.u[i]) + a.bias[s], *w, "d {h:#x} i {i}");
            }
        }
    }
}
