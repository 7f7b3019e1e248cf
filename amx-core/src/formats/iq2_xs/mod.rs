//! IQ2_XS (2.31 bits per value): 256 values per 74-byte block, an f16 scale `d`, 32
//! 16-bit words (a 9-bit index into a 512-entry grid of eight values in {8, 25, 43} and a
//! 7-bit sign index each) and a 4-bit scale `ls` per 16 values:
//! `x = d * (0.5 + ls) * 0.25 * grid * sign`.

use super::field::{Field, per_row, quads};
use super::iq2_xxs::{iq2_grid_value, ksigns, signed};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// The grid of IQ2_XS (gguf-py's `IQ2_XS.grid_hex`, ggml's `iq2xs_grid`): entry `e`
/// holds eight values, value `j` in bits `2j, 2j + 1` as an index into the grid map
/// (8, 25, 43).
pub(crate) const IQ2XS_GRID: [u16; 512] = [
    0x0000, 0x0002, 0x0005, 0x0008, 0x000a, 0x0011, 0x0014, 0x0016, 0x0019, 0x0020, 0x0022, 0x0025,
    0x0028, 0x0041, 0x0044, 0x0046, 0x0049, 0x0050, 0x0052, 0x0055, 0x0058, 0x0061, 0x0064, 0x0080,
    0x0082, 0x0085, 0x0088, 0x0091, 0x0094, 0x0099, 0x00a0, 0x0101, 0x0104, 0x0106, 0x0109, 0x0110,
    0x0112, 0x0115, 0x0118, 0x011a, 0x0121, 0x0124, 0x0140, 0x0142, 0x0145, 0x0148, 0x0151, 0x0154,
    0x0160, 0x0168, 0x0181, 0x0184, 0x0190, 0x0200, 0x0202, 0x0205, 0x0208, 0x0211, 0x0214, 0x0220,
    0x0241, 0x0244, 0x0250, 0x0255, 0x0280, 0x028a, 0x0401, 0x0404, 0x0406, 0x0409, 0x0410, 0x0412,
    0x0415, 0x0418, 0x0421, 0x0424, 0x0440, 0x0442, 0x0445, 0x0448, 0x0451, 0x0454, 0x0456, 0x0460,
    0x0481, 0x0484, 0x0490, 0x0500, 0x0502, 0x0505, 0x0508, 0x0511, 0x0514, 0x0520, 0x0541, 0x0544,
    0x0550, 0x0561, 0x0580, 0x0601, 0x0604, 0x0610, 0x0626, 0x0640, 0x0642, 0x0684, 0x0800, 0x0802,
    0x0805, 0x0808, 0x080a, 0x0811, 0x0814, 0x0820, 0x0825, 0x0841, 0x0844, 0x0850, 0x0858, 0x0880,
    0x08a0, 0x08aa, 0x0901, 0x0904, 0x0910, 0x0940, 0x0981, 0x0989, 0x0a00, 0x0a20, 0x0a28, 0x0a96,
    0x0aa0, 0x1001, 0x1004, 0x1006, 0x1009, 0x1010, 0x1012, 0x1015, 0x1018, 0x1021, 0x1024, 0x1040,
    0x1042, 0x1045, 0x1048, 0x1051, 0x1054, 0x1060, 0x106a, 0x1081, 0x1084, 0x1090, 0x1100, 0x1102,
    0x1105, 0x1108, 0x1111, 0x1114, 0x1120, 0x1141, 0x1144, 0x1150, 0x1180, 0x1194, 0x1196, 0x1201,
    0x1204, 0x1206, 0x1210, 0x1240, 0x1260, 0x1400, 0x1402, 0x1405, 0x1408, 0x1411, 0x1414, 0x1420,
    0x1441, 0x1444, 0x1449, 0x1450, 0x1464, 0x1480, 0x1501, 0x1504, 0x1510, 0x1540, 0x1600, 0x1614,
    0x1649, 0x1801, 0x1804, 0x1810, 0x1812, 0x1840, 0x1854, 0x1886, 0x1900, 0x1905, 0x1966, 0x1a51,
    0x1aa9, 0x2000, 0x2002, 0x2005, 0x2008, 0x200a, 0x2011, 0x2014, 0x2020, 0x2041, 0x2044, 0x2050,
    0x2080, 0x20a0, 0x2101, 0x2104, 0x2110, 0x2140, 0x2148, 0x2165, 0x2200, 0x2222, 0x2280, 0x22a8,
    0x2401, 0x2404, 0x2410, 0x2429, 0x2440, 0x2500, 0x2541, 0x2552, 0x2599, 0x2601, 0x261a, 0x26a6,
    0x2800, 0x2808, 0x280a, 0x2820, 0x2855, 0x2888, 0x28a2, 0x2968, 0x2990, 0x2a08, 0x2a20, 0x2a82,
    0x2a88, 0x2a8a, 0x4001, 0x4004, 0x4006, 0x4009, 0x4010, 0x4012, 0x4015, 0x4018, 0x4021, 0x4024,
    0x4040, 0x4042, 0x4045, 0x4048, 0x404a, 0x4051, 0x4054, 0x4060, 0x4065, 0x4081, 0x4084, 0x4090,
    0x4100, 0x4102, 0x4105, 0x4108, 0x4111, 0x4114, 0x4120, 0x4141, 0x4144, 0x4150, 0x4180, 0x4185,
    0x41a2, 0x4201, 0x4204, 0x4210, 0x4212, 0x4229, 0x4240, 0x4400, 0x4402, 0x4405, 0x4408, 0x4411,
    0x4414, 0x4419, 0x4420, 0x4441, 0x4444, 0x4450, 0x4480, 0x4494, 0x4501, 0x4504, 0x4510, 0x4524,
    0x4540, 0x459a, 0x4600, 0x460a, 0x4644, 0x4650, 0x4801, 0x4804, 0x4810, 0x4840, 0x4845, 0x4854,
    0x4862, 0x4900, 0x4911, 0x4944, 0x4950, 0x4969, 0x4a04, 0x5000, 0x5002, 0x5005, 0x5008, 0x5011,
    0x5014, 0x5020, 0x5028, 0x5041, 0x5044, 0x5050, 0x5080, 0x5101, 0x5104, 0x5110, 0x5115, 0x5140,
    0x5142, 0x5200, 0x5244, 0x52aa, 0x5401, 0x5404, 0x5410, 0x5421, 0x5440, 0x5460, 0x5481, 0x54a1,
    0x5500, 0x5508, 0x5580, 0x5588, 0x5621, 0x5668, 0x56a1, 0x5800, 0x5814, 0x5841, 0x5850, 0x5899,
    0x591a, 0x5940, 0x5942, 0x5a85, 0x6001, 0x6004, 0x6010, 0x6040, 0x6054, 0x6062, 0x6086, 0x60a9,
    0x6100, 0x6224, 0x624a, 0x6292, 0x6400, 0x6416, 0x6510, 0x6540, 0x6545, 0x65a4, 0x6801, 0x686a,
    0x6925, 0x6a06, 0x6a54, 0x6a62, 0x8000, 0x8002, 0x8005, 0x8008, 0x8011, 0x8014, 0x8020, 0x802a,
    0x8041, 0x8044, 0x8050, 0x8080, 0x8082, 0x80a8, 0x80aa, 0x8101, 0x8104, 0x8106, 0x8110, 0x8140,
    0x8151, 0x8159, 0x8200, 0x8220, 0x8280, 0x8282, 0x82a0, 0x82a8, 0x8401, 0x8404, 0x8410, 0x8412,
    0x8415, 0x8440, 0x8460, 0x8489, 0x8500, 0x8544, 0x85a5, 0x8618, 0x866a, 0x8800, 0x8808, 0x8825,
    0x885a, 0x8880, 0x8882, 0x88a8, 0x8906, 0x8a22, 0x8a80, 0x8a88, 0x8a96, 0x8aa8, 0x9001, 0x9004,
    0x9010, 0x9040, 0x9056, 0x9084, 0x9100, 0x9122, 0x9164, 0x9256, 0x9289, 0x9400, 0x9405, 0x9444,
    0x9450, 0x9458, 0x9529, 0x9590, 0x9592, 0x9641, 0x9851, 0x98a6, 0x9949, 0x9a15, 0x9a60, 0xa000,
    0xa002, 0xa008, 0xa00a, 0xa020, 0xa02a, 0xa0a0, 0xa151, 0xa159, 0xa1a6, 0xa200, 0xa202, 0xa208,
    0xa22a, 0xa280, 0xa2a0, 0xa440, 0xa495, 0xa665, 0xa698, 0xa80a, 0xa820, 0xa822, 0xa828, 0xa8a0,
    0xa8a8, 0xa904, 0xa984, 0xa986, 0xaa28, 0xaa2a, 0xaa91, 0xaaaa,
];

/// One IQ2_XS block as stored by ggml (`block_iq2_xs`): 74 bytes for 256 values.
///
/// Values `8m..8m + 8` (`m` < 32) are the little-endian u16 `qs[2m..2m + 2]`: grid entry
/// `qs & 511`, signs bit `j` of ggml's `ksigns_iq2xs[qs >> 9]` for value `j`. Values
/// `16s..16s + 16` have the scale `ls` in nibble `s % 2` (low first) of `scales[s / 2]`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIQ2_XS {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// Grid and sign indices, one u16 per 8 values.
    pub qs: [u8; 64],
    /// 4-bit scales per 16 values, two per byte.
    pub scales: [u8; 8],
}

const _: () = assert!(size_of::<BlockIQ2_XS>() == BlockIQ2_XS::BYTES);
const _: () = assert!(align_of::<BlockIQ2_XS>() == 1);

impl BlockIQ2_XS {
    /// Bytes per block.
    pub const BYTES: usize = 74;
    /// Values per block.
    pub const VALUES: usize = QK_K;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { d: take(bytes, 0), qs: take(bytes, 2), scales: take(bytes, 66) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.qs);
        put(&mut out, 66, &self.scales);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The scale of values `16s..16s + 16` (`s` < 16) as gguf-py computes it in f32:
    /// `d * (0.5 + ls) * 0.25`.
    pub fn sub_scale(&self, s: usize) -> f32 {
        let ls = (self.scales[(s / 2) % 8] >> (4 * (s % 2))) & 15;
        self.d() * (0.5 + f32::from(ls)) * 0.25
    }

    /// The grid value (8, 25 or 43) and whether its sign is minus, of value `i` (< 256).
    pub fn value(&self, i: usize) -> (u8, bool) {
        let m = (i / 8) % 32;
        let w = u16::from_le_bytes([self.qs[2 * m], self.qs[2 * m + 1]]);
        let signs = ksigns((w >> 9) as u8);
        (iq2_grid_value(IQ2XS_GRID[usize::from(w & 511)], i % 8), signs >> (i % 8) & 1 != 0)
    }

    /// Dequantizes the block as gguf-py does: `(db * grid) * sign`, `db` the scale of the
    /// value's 16 ([`Self::sub_scale`]), `sign` = ±1.0.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        for (i, o) in out.iter_mut().enumerate() {
            let db = self.sub_scale(i / 16);
            let (g, minus) = self.value(i);
            *o = db * f32::from(g) * if minus { -1.0 } else { 1.0 };
        }
    }
}

impl FormatSpec for BlockIQ2_XS {
    const FORMAT: Format = Format::IQ2_XS;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` as quads (chunk `s`: the two words of values `16s..16s + 16`), then the scale
    /// and the 4-bit scales per row.
    const FIELDS: &'static [Field] = &[quads(2, 64), per_row(0, 2), per_row(66, 8)];
    const F16_SCALES: &'static [usize] = &[0];
    /// Q2_K's threshold (19), taken from that format (2-bit class, 256-value blocks, 4-bit
    /// scales per 16 values, one f16 scale), not measured: the development host had no AMX.
    const AMX_MIN_ROWS: usize = 19;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockIQ2_XS {
    const SUB_BLOCK: usize = 16;

    /// IQ2_XXS's form per 16 values: `u = 43 ± grid`, scale `db`, bias `db * -43` (exact:
    /// `db` has at most 16 significant bits).
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
        // Printed by gguf-py 0.19 (`IQ2_XS.init_grid(); IQ2_XS.grid[0, 0, e]`).
        let want: [(usize, [u8; 8]); 5] = [
            (0, [8, 8, 8, 8, 8, 8, 8, 8]),
            (1, [43, 8, 8, 8, 8, 8, 8, 8]),
            (37, [25, 25, 25, 8, 25, 8, 8, 8]),
            (100, [8, 25, 8, 8, 43, 25, 8, 8]),
            (511, [43, 43, 43, 43, 43, 43, 43, 43]),
        ];
        for (e, values) in want {
            let got: [u8; 8] = core::array::from_fn(|j| iq2_grid_value(IQ2XS_GRID[e], j));
            assert_eq!(got, values, "entry {e}");
        }
        for e in IQ2XS_GRID {
            assert!((0..8).all(|j| (e >> (2 * j)) & 3 != 3), "{e:#06x}");
        }
    }

    #[test]
    fn layout_and_scales() {
        // d = 0.5 (0x3800); word m: entry 37 m + 5, sign index 3 m; ls of 16s: 15 - s.
        let mut qs = [0u8; 64];
        for m in 0..32 {
            let w = ((37 * m + 5) % 512) as u16 | (((3 * m as u16) & 0x7f) << 9);
            qs[2 * m..2 * m + 2].copy_from_slice(&w.to_le_bytes());
        }
        let scales: [u8; 8] =
            core::array::from_fn(|i| (15 - 2 * i as u8) | ((14 - 2 * i as u8) << 4));
        let block = BlockIQ2_XS { d: 0x3800u16.to_le_bytes(), qs, scales };
        let bytes = block.to_bytes();
        assert_eq!(
            (&bytes[..2], &bytes[2..66], &bytes[66..]),
            (&[0x00, 0x38][..], &qs[..], &scales[..])
        );
        assert_eq!(BlockIQ2_XS::from_bytes(&bytes), block);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let m = i / 8;
            let g = iq2_grid_value(IQ2XS_GRID[(37 * m + 5) % 512], i % 8);
            let minus = ksigns((3 * m) as u8) >> (i % 8) & 1 != 0;
            let db = 0.5 * (0.5 + (15 - i / 16) as f32) * 0.25;
            assert_eq!(x, db * f32::from(g) * if minus { -1.0 } else { 1.0 }, "i = {i}");
        }
    }

    #[test]
    fn decoded_form_is_exact() {
        for h in [0x0001u16, 0x03ff, 0x0400, 0x3555, 0x3c00, 0xc7ff, 0x7bff] {
            let qs: [u8; 64] = core::array::from_fn(|i| (i * 73 + 11) as u8);
            let scales: [u8; 8] = core::array::from_fn(|i| (i * 37 + 200) as u8);
            let block = BlockIQ2_XS { d: h.to_le_bytes(), qs, scales };
            let mut a = AffineBlock::new();
            BlockIQ2_XS::decode(&block.to_bytes(), &mut a);
            let mut want = [0f32; 256];
            block.dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                let s = i / 16;
                assert_eq!(a.scale[s] * f32::from(a.u[i]) + a.bias[s], *w, "d {h:#x} i {i}");
            }
        }
    }
}
