//! IQ3_XXS (3.0625 bits per value): 256 values per 98-byte block, an f16 scale `d`, 64
//! indices into a grid of 256 four-value vectors (`IQ3XXS_GRID`, magnitudes 4..=62) and
//! per 32 values one `u32` holding four 7-bit sign indices (into ggml's `ksigns`, whose
//! eighth bit is the parity of the seven) and a 4-bit scale `ls`:
//! `x = d * (0.5 + ls) * 0.5 * grid * sign`.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// ggml's `iq3xxs_grid` (gguf-py's `IQ3_XXS.grid`): entry `i` holds four magnitudes, value
/// `k` in byte `k` (little endian).
pub(crate) static IQ3XXS_GRID: [u32; 256] = [
    0x04040404, 0x04040414, 0x04040424, 0x04040c0c, 0x04040c1c, 0x04040c3e, 0x04041404, 0x04041414,
    0x04041c0c, 0x04042414, 0x04043e1c, 0x04043e2c, 0x040c040c, 0x040c041c, 0x040c0c04, 0x040c0c14,
    0x040c140c, 0x040c142c, 0x040c1c04, 0x040c1c14, 0x040c240c, 0x040c2c24, 0x040c3e04, 0x04140404,
    0x04140414, 0x04140424, 0x04140c0c, 0x04141404, 0x04141414, 0x04141c0c, 0x04141c1c, 0x04141c3e,
    0x04142c0c, 0x04142c3e, 0x04143e2c, 0x041c040c, 0x041c043e, 0x041c0c04, 0x041c0c14, 0x041c142c,
    0x041c3e04, 0x04240c1c, 0x04241c3e, 0x04242424, 0x04242c3e, 0x04243e1c, 0x04243e2c, 0x042c040c,
    0x042c043e, 0x042c1c14, 0x042c2c14, 0x04341c2c, 0x04343424, 0x043e0c04, 0x043e0c24, 0x043e0c34,
    0x043e241c, 0x043e340c, 0x0c04040c, 0x0c04041c, 0x0c040c04, 0x0c040c14, 0x0c04140c, 0x0c04141c,
    0x0c041c04, 0x0c041c14, 0x0c041c24, 0x0c04243e, 0x0c042c04, 0x0c0c0404, 0x0c0c0414, 0x0c0c0c0c,
    0x0c0c1404, 0x0c0c1414, 0x0c14040c, 0x0c14041c, 0x0c140c04, 0x0c140c14, 0x0c14140c, 0x0c141c04,
    0x0c143e14, 0x0c1c0404, 0x0c1c0414, 0x0c1c1404, 0x0c1c1c0c, 0x0c1c2434, 0x0c1c3434, 0x0c24040c,
    0x0c24042c, 0x0c242c04, 0x0c2c1404, 0x0c2c1424, 0x0c2c2434, 0x0c2c3e0c, 0x0c34042c, 0x0c3e1414,
    0x0c3e2404, 0x14040404, 0x14040414, 0x14040c0c, 0x14040c1c, 0x14041404, 0x14041414, 0x14041434,
    0x14041c0c, 0x14042414, 0x140c040c, 0x140c041c, 0x140c042c, 0x140c0c04, 0x140c0c14, 0x140c140c,
    0x140c1c04, 0x140c341c, 0x140c343e, 0x140c3e04, 0x14140404, 0x14140414, 0x14140c0c, 0x14140c3e,
    0x14141404, 0x14141414, 0x14141c3e, 0x14142404, 0x14142c2c, 0x141c040c, 0x141c0c04, 0x141c0c24,
    0x141c3e04, 0x141c3e24, 0x14241c2c, 0x14242c1c, 0x142c041c, 0x142c143e, 0x142c240c, 0x142c3e24,
    0x143e040c, 0x143e041c, 0x143e0c34, 0x143e242c, 0x1c04040c, 0x1c040c04, 0x1c040c14, 0x1c04140c,
    0x1c04141c, 0x1c042c04, 0x1c04342c, 0x1c043e14, 0x1c0c0404, 0x1c0c0414, 0x1c0c1404, 0x1c0c1c0c,
    0x1c0c2424, 0x1c0c2434, 0x1c14040c, 0x1c14041c, 0x1c140c04, 0x1c14142c, 0x1c142c14, 0x1c143e14,
    0x1c1c0c0c, 0x1c1c1c1c, 0x1c241c04, 0x1c24243e, 0x1c243e14, 0x1c2c0404, 0x1c2c0434, 0x1c2c1414,
    0x1c2c2c2c, 0x1c340c24, 0x1c341c34, 0x1c34341c, 0x1c3e1c1c, 0x1c3e3404, 0x24040424, 0x24040c3e,
    0x24041c2c, 0x24041c3e, 0x24042c1c, 0x24042c3e, 0x240c3e24, 0x24141404, 0x24141c3e, 0x24142404,
    0x24143404, 0x24143434, 0x241c043e, 0x241c242c, 0x24240424, 0x24242c0c, 0x24243424, 0x242c142c,
    0x242c241c, 0x242c3e04, 0x243e042c, 0x243e0c04, 0x243e0c14, 0x243e1c04, 0x2c040c14, 0x2c04240c,
    0x2c043e04, 0x2c0c0404, 0x2c0c0434, 0x2c0c1434, 0x2c0c2c2c, 0x2c140c24, 0x2c141c14, 0x2c143e14,
    0x2c1c0414, 0x2c1c2c1c, 0x2c240c04, 0x2c24141c, 0x2c24143e, 0x2c243e14, 0x2c2c0414, 0x2c2c1c0c,
    0x2c342c04, 0x2c3e1424, 0x2c3e2414, 0x34041424, 0x34042424, 0x34042434, 0x34043424, 0x340c140c,
    0x340c340c, 0x34140c3e, 0x34143424, 0x341c1c04, 0x341c1c34, 0x34242424, 0x342c042c, 0x342c2c14,
    0x34341c1c, 0x343e041c, 0x343e140c, 0x3e04041c, 0x3e04042c, 0x3e04043e, 0x3e040c04, 0x3e041c14,
    0x3e042c14, 0x3e0c1434, 0x3e0c2404, 0x3e140c14, 0x3e14242c, 0x3e142c14, 0x3e1c0404, 0x3e1c0c2c,
    0x3e1c1c1c, 0x3e1c3404, 0x3e24140c, 0x3e24240c, 0x3e2c0404, 0x3e2c0414, 0x3e2c1424, 0x3e341c04,
];

/// ggml's `ksigns_iq2xs[i]`: the seven sign bits `i` (0..128) and their parity as bit 7,
/// so that every byte has an even number of set bits.
pub(crate) const fn ksigns(i: u32) -> u8 {
    let i = i & 127;
    (i | ((i.count_ones() & 1) << 7)) as u8
}

/// One IQ3_XXS block as stored by ggml (`block_iq3_xxs`): 98 bytes for 256 values.
///
/// Value `32s + 4j + k` (`s` < 8, `j` < 8, `k` < 4) is byte `k` of
/// `IQ3XXS_GRID[qs[8s + j]]`, negative where bit `4 (j % 2) + k` of
/// `ksigns(aux >> 7 (j / 2))` is set, where `aux` is the `u32` at `scales[4s..]`; the
/// sub-block's scale is `aux >> 28`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIQ3_XXS {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// 64 grid indices, one per four values.
    pub qs: [u8; 64],
    /// Per 32 values one little-endian `u32`: four 7-bit sign indices, then a 4-bit scale.
    pub scales: [u8; 32],
}

const _: () = assert!(size_of::<BlockIQ3_XXS>() == BlockIQ3_XXS::BYTES);
const _: () = assert!(align_of::<BlockIQ3_XXS>() == 1);

impl BlockIQ3_XXS {
    /// Bytes per block.
    pub const BYTES: usize = 98;
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

    /// The `u32` of sub-block `s` (0..8): sign indices and scale.
    const fn aux(&self, s: usize) -> u32 {
        let s = s % 8;
        u32::from_le_bytes([
            self.scales[4 * s],
            self.scales[4 * s + 1],
            self.scales[4 * s + 2],
            self.scales[4 * s + 3],
        ])
    }

    /// The 4-bit scale `ls` of sub-block `s` (0..8).
    pub const fn ls(&self, s: usize) -> u8 {
        (self.aux(s) >> 28) as u8
    }

    /// The 256 signed grid values (`grid * sign`, -62..=62), in value order (layout on
    /// [`BlockIQ3_XXS`]).
    pub const fn values(&self) -> [i8; Self::VALUES] {
        let mut v = [0i8; Self::VALUES];
        let mut i = 0;
        while i < Self::VALUES {
            let (s, j, k) = (i / 32, i % 32 / 4, i % 4);
            let g = (IQ3XXS_GRID[self.qs[8 * s + j] as usize] >> (8 * k)) as u8 as i8;
            let signs = ksigns(self.aux(s) >> (7 * (j / 2)));
            v[i] = if signs >> (4 * (j % 2) + k) & 1 == 1 { -g } else { g };
            i += 1;
        }
        v
    }

    /// The sub-block scale `db = d * (0.5 + ls) * 0.5`, gguf-py's f32 operations in order.
    fn db(&self, s: usize) -> f32 {
        self.d() * (0.5 + f32::from(self.ls(s))) * 0.5
    }

    /// Dequantizes the block: `out[i] = db * grid * sign` (gguf-py: `db * grid * signs`,
    /// the sign a multiply by `±1.0`).
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let v = self.values();
        for (i, o) in out.iter_mut().enumerate() {
            let db = self.db(i / 32);
            let sign = if v[i] < 0 { -1.0f32 } else { 1.0 };
            *o = db * f32::from(v[i].unsigned_abs()) * sign;
        }
    }
}

impl FormatSpec for BlockIQ3_XXS {
    const FORMAT: Format = Format::IQ3_XXS;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` as quads (chunk `c` holds the grid indices of values `16c..16c + 16`); the
    /// scale and the 32 bytes of signs and scales per row.
    const FIELDS: &'static [Field] = &[quads(2, 64), per_row(0, 2), per_row(66, 32)];
    const F16_SCALES: &'static [usize] = &[0];
    /// Q3_K's threshold (18), taken from that format (3-bit values, 256-value blocks), not
    /// measured: the development host had no AMX.
    const AMX_MIN_ROWS: usize = 18;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockIQ3_XXS {
    const SUB_BLOCK: usize = 32;

    /// `u = 62 + grid * sign` (0..=124), scale `db`, bias `db * -62` in each of the 8
    /// sub-blocks of 32: `db` has at most 16 significant bits and `u` 7, so `db * u`,
    /// `db * -62` and their sum are exact and equal `db * grid * sign`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.set_centered(62, b.values(), Self::VALUES / Self::SUB_BLOCK, |s| b.db(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_signs_are_gguf_pys() {
        // Entries printed by gguf-py 0.19 (`IQ3_XXS.grid`), and `IQ2_XXS.ksigns` bytes.
        assert_eq!(IQ3XXS_GRID[0], u32::from_le_bytes([4, 4, 4, 4]));
        assert_eq!(IQ3XXS_GRID[1], u32::from_le_bytes([20, 4, 4, 4]));
        assert_eq!(IQ3XXS_GRID[77], u32::from_le_bytes([20, 12, 20, 12]));
        assert_eq!(IQ3XXS_GRID[255], u32::from_le_bytes([4, 28, 52, 62]));
        let want = [(0, 0x00), (1, 0x81), (3, 0x03), (0x31, 0xb1), (0x7e, 0x7e), (0x7f, 0xff)];
        for (i, k) in want {
            assert_eq!(ksigns(i), k, "ksigns[{i:#x}]");
        }
    }

    fn block(h: u16) -> BlockIQ3_XXS {
        let qs = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let mut scales = [0u8; 32];
        for s in 0..8 {
            let aux = (s as u32 * 0x0123_4567 + 0x89ab_cdef).rotate_left(s as u32);
            scales[4 * s..4 * s + 4].copy_from_slice(&aux.to_le_bytes());
        }
        BlockIQ3_XXS { d: h.to_le_bytes(), qs, scales }
    }

    #[test]
    fn value_positions_and_scale() {
        let b = block(0x3c00);
        let bytes = b.to_bytes();
        assert_eq!(
            (&bytes[..2], &bytes[2..66], &bytes[66..]),
            (&b.d[..], &b.qs[..], &b.scales[..])
        );
        assert_eq!(BlockIQ3_XXS::from_bytes(&bytes), b);
        let v = b.values();
        // Value 32 * 3 + 4 * 5 + 2: grid qs[29], sign bit 4 + 2 of ksigns(aux3 >> 14).
        let aux3 = u32::from_le_bytes([b.scales[12], b.scales[13], b.scales[14], b.scales[15]]);
        let g = IQ3XXS_GRID[b.qs[29] as usize].to_le_bytes()[2] as i8;
        let neg = ksigns(aux3 >> 14) >> 6 & 1 == 1;
        assert_eq!(v[118], if neg { -g } else { g });
        let mut out = [0f32; 256];
        b.dequantize(&mut out);
        let db = (0.5 + (aux3 >> 28) as f32) * 0.5;
        assert_eq!(out[118], db * f32::from(v[118]));
    }

    #[test]
    fn decoded_form_is_exact() {
        for h in [0x0001u16, 0x03ff, 0x0400, 0x3555, 0x3c00, 0xc7ff, 0x7bff] {
            let b = block(h);
            let mut a = AffineBlock::new();
            BlockIQ3_XXS::decode(&b.to_bytes(), &mut a);
            let mut want = [0f32; 256];
            b.dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                let s = i / 32;
                assert_eq!(a.scale[s] * f32::from(a.u[i]) + a.bias[s], *w, "d {h:#x} i {i}");
            }
        }
    }
}
