//! IQ3_S (3.4375 bits per value): 256 values per 110-byte block, an f16 scale `d`, 64
//! 9-bit indices (8 bits in `qs`, the ninth in `qh`) into a grid of 512 four-value vectors
//! (`IQ3S_GRID`, odd magnitudes 1..=15), one sign bit per value and a 4-bit scale `sc`
//! per 32 values: `x = d * (1 + 2 sc) * grid * sign`.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// ggml's `iq3s_grid` (gguf-py's `IQ3_S.grid`): entry `i` holds four magnitudes, value `k`
/// in byte `k` (little endian).
pub(crate) static IQ3S_GRID: [u32; 512] = [
    0x01010101, 0x01010103, 0x01010105, 0x0101010b, 0x0101010f, 0x01010301, 0x01010303, 0x01010305,
    0x01010309, 0x0101030d, 0x01010501, 0x01010503, 0x0101050b, 0x01010707, 0x01010901, 0x01010905,
    0x0101090b, 0x0101090f, 0x01010b03, 0x01010b07, 0x01010d01, 0x01010d05, 0x01010f03, 0x01010f09,
    0x01010f0f, 0x01030101, 0x01030103, 0x01030105, 0x01030109, 0x01030301, 0x01030303, 0x0103030b,
    0x01030501, 0x01030507, 0x0103050f, 0x01030703, 0x0103070b, 0x01030909, 0x01030d03, 0x01030d0b,
    0x01030f05, 0x01050101, 0x01050103, 0x0105010b, 0x0105010f, 0x01050301, 0x01050307, 0x0105030d,
    0x01050503, 0x0105050b, 0x01050701, 0x01050709, 0x01050905, 0x0105090b, 0x0105090f, 0x01050b03,
    0x01050b07, 0x01050f01, 0x01050f07, 0x01070107, 0x01070303, 0x0107030b, 0x01070501, 0x01070505,
    0x01070703, 0x01070707, 0x0107070d, 0x01070909, 0x01070b01, 0x01070b05, 0x01070d0f, 0x01070f03,
    0x01070f0b, 0x01090101, 0x01090307, 0x0109030f, 0x01090503, 0x01090509, 0x01090705, 0x01090901,
    0x01090907, 0x01090b03, 0x01090f01, 0x010b0105, 0x010b0109, 0x010b0501, 0x010b0505, 0x010b050d,
    0x010b0707, 0x010b0903, 0x010b090b, 0x010b090f, 0x010b0d0d, 0x010b0f07, 0x010d010d, 0x010d0303,
    0x010d0307, 0x010d0703, 0x010d0b05, 0x010d0f03, 0x010f0101, 0x010f0105, 0x010f0109, 0x010f0501,
    0x010f0505, 0x010f050d, 0x010f0707, 0x010f0b01, 0x010f0b09, 0x03010101, 0x03010103, 0x03010105,
    0x03010109, 0x03010301, 0x03010303, 0x03010307, 0x0301030b, 0x0301030f, 0x03010501, 0x03010505,
    0x03010703, 0x03010709, 0x0301070d, 0x03010b09, 0x03010b0d, 0x03010d03, 0x03010f05, 0x03030101,
    0x03030103, 0x03030107, 0x0303010d, 0x03030301, 0x03030309, 0x03030503, 0x03030701, 0x03030707,
    0x03030903, 0x03030b01, 0x03030b05, 0x03030f01, 0x03030f0d, 0x03050101, 0x03050305, 0x0305030b,
    0x0305030f, 0x03050501, 0x03050509, 0x03050705, 0x03050901, 0x03050907, 0x03050b0b, 0x03050d01,
    0x03050f05, 0x03070103, 0x03070109, 0x0307010f, 0x03070301, 0x03070307, 0x03070503, 0x0307050f,
    0x03070701, 0x03070709, 0x03070903, 0x03070d05, 0x03070f01, 0x03090107, 0x0309010b, 0x03090305,
    0x03090309, 0x03090703, 0x03090707, 0x03090905, 0x0309090d, 0x03090b01, 0x03090b09, 0x030b0103,
    0x030b0301, 0x030b0307, 0x030b0503, 0x030b0701, 0x030b0705, 0x030b0b03, 0x030d0501, 0x030d0509,
    0x030d050f, 0x030d0909, 0x030d090d, 0x030f0103, 0x030f0107, 0x030f0301, 0x030f0305, 0x030f0503,
    0x030f070b, 0x030f0903, 0x030f0d05, 0x030f0f01, 0x05010101, 0x05010103, 0x05010107, 0x0501010b,
    0x0501010f, 0x05010301, 0x05010305, 0x05010309, 0x0501030d, 0x05010503, 0x05010507, 0x0501050f,
    0x05010701, 0x05010705, 0x05010903, 0x05010907, 0x0501090b, 0x05010b01, 0x05010b05, 0x05010d0f,
    0x05010f01, 0x05010f07, 0x05010f0b, 0x05030101, 0x05030105, 0x05030301, 0x05030307, 0x0503030f,
    0x05030505, 0x0503050b, 0x05030703, 0x05030709, 0x05030905, 0x05030b03, 0x05050103, 0x05050109,
    0x0505010f, 0x05050503, 0x05050507, 0x05050701, 0x0505070f, 0x05050903, 0x05050b07, 0x05050b0f,
    0x05050f03, 0x05050f09, 0x05070101, 0x05070105, 0x0507010b, 0x05070303, 0x05070505, 0x05070509,
    0x05070703, 0x05070707, 0x05070905, 0x05070b01, 0x05070d0d, 0x05090103, 0x0509010f, 0x05090501,
    0x05090507, 0x05090705, 0x0509070b, 0x05090903, 0x05090f05, 0x05090f0b, 0x050b0109, 0x050b0303,
    0x050b0505, 0x050b070f, 0x050b0901, 0x050b0b07, 0x050b0f01, 0x050d0101, 0x050d0105, 0x050d010f,
    0x050d0503, 0x050d0b0b, 0x050d0d03, 0x050f010b, 0x050f0303, 0x050f050d, 0x050f0701, 0x050f0907,
    0x050f0b01, 0x07010105, 0x07010303, 0x07010307, 0x0701030b, 0x0701030f, 0x07010505, 0x07010703,
    0x07010707, 0x0701070b, 0x07010905, 0x07010909, 0x0701090f, 0x07010b03, 0x07010d07, 0x07010f03,
    0x07030103, 0x07030107, 0x0703010b, 0x07030309, 0x07030503, 0x07030507, 0x07030901, 0x07030d01,
    0x07030f05, 0x07030f0d, 0x07050101, 0x07050305, 0x07050501, 0x07050705, 0x07050709, 0x07050b01,
    0x07070103, 0x07070301, 0x07070309, 0x07070503, 0x07070507, 0x0707050f, 0x07070701, 0x07070903,
    0x07070907, 0x0707090f, 0x07070b0b, 0x07070f07, 0x07090107, 0x07090303, 0x0709030d, 0x07090505,
    0x07090703, 0x07090b05, 0x07090d01, 0x07090d09, 0x070b0103, 0x070b0301, 0x070b0305, 0x070b050b,
    0x070b0705, 0x070b0909, 0x070b0b0d, 0x070b0f07, 0x070d030d, 0x070d0903, 0x070f0103, 0x070f0107,
    0x070f0501, 0x070f0505, 0x070f070b, 0x09010101, 0x09010109, 0x09010305, 0x09010501, 0x09010509,
    0x0901050f, 0x09010705, 0x09010903, 0x09010b01, 0x09010f01, 0x09030105, 0x0903010f, 0x09030303,
    0x09030307, 0x09030505, 0x09030701, 0x0903070b, 0x09030907, 0x09030b03, 0x09030b0b, 0x09050103,
    0x09050107, 0x09050301, 0x0905030b, 0x09050503, 0x09050707, 0x09050901, 0x09050b0f, 0x09050d05,
    0x09050f01, 0x09070109, 0x09070303, 0x09070307, 0x09070501, 0x09070505, 0x09070703, 0x0907070b,
    0x09090101, 0x09090105, 0x09090509, 0x0909070f, 0x09090901, 0x09090f03, 0x090b010b, 0x090b010f,
    0x090b0503, 0x090b0d05, 0x090d0307, 0x090d0709, 0x090d0d01, 0x090f0301, 0x090f030b, 0x090f0701,
    0x090f0907, 0x090f0b03, 0x0b010105, 0x0b010301, 0x0b010309, 0x0b010505, 0x0b010901, 0x0b010909,
    0x0b01090f, 0x0b010b05, 0x0b010d0d, 0x0b010f09, 0x0b030103, 0x0b030107, 0x0b03010b, 0x0b030305,
    0x0b030503, 0x0b030705, 0x0b030f05, 0x0b050101, 0x0b050303, 0x0b050507, 0x0b050701, 0x0b05070d,
    0x0b050b07, 0x0b070105, 0x0b07010f, 0x0b070301, 0x0b07050f, 0x0b070909, 0x0b070b03, 0x0b070d0b,
    0x0b070f07, 0x0b090103, 0x0b090109, 0x0b090501, 0x0b090705, 0x0b09090d, 0x0b0b0305, 0x0b0b050d,
    0x0b0b0b03, 0x0b0b0b07, 0x0b0d0905, 0x0b0f0105, 0x0b0f0109, 0x0b0f0505, 0x0d010303, 0x0d010307,
    0x0d01030b, 0x0d010703, 0x0d010707, 0x0d010d01, 0x0d030101, 0x0d030501, 0x0d03050f, 0x0d030d09,
    0x0d050305, 0x0d050709, 0x0d050905, 0x0d050b0b, 0x0d050d05, 0x0d050f01, 0x0d070101, 0x0d070309,
    0x0d070503, 0x0d070901, 0x0d09050b, 0x0d090907, 0x0d090d05, 0x0d0b0101, 0x0d0b0107, 0x0d0b0709,
    0x0d0b0d01, 0x0d0d010b, 0x0d0d0901, 0x0d0f0303, 0x0d0f0307, 0x0f010101, 0x0f010109, 0x0f01010f,
    0x0f010501, 0x0f010505, 0x0f01070d, 0x0f010901, 0x0f010b09, 0x0f010d05, 0x0f030105, 0x0f030303,
    0x0f030509, 0x0f030907, 0x0f03090b, 0x0f050103, 0x0f050109, 0x0f050301, 0x0f05030d, 0x0f050503,
    0x0f050701, 0x0f050b03, 0x0f070105, 0x0f070705, 0x0f07070b, 0x0f070b07, 0x0f090103, 0x0f09010b,
    0x0f090307, 0x0f090501, 0x0f090b01, 0x0f0b0505, 0x0f0b0905, 0x0f0d0105, 0x0f0d0703, 0x0f0f0101,
];

/// One IQ3_S block as stored by ggml (`block_iq3_s`): 110 bytes for 256 values.
///
/// Value `4q + k` (`q` < 64, `k` < 4) is byte `k` of `IQ3S_GRID[qs[q] | b << 8]`, `b` bit
/// `q % 8` of `qh[q / 8]`, negative where bit `(4q + k) % 8` of `signs[(4q + k) / 8]` is
/// set; sub-block `s` (values `32s..32s + 32`) has the scale nibble `s % 2` of
/// `scales[s / 2]` (the low one first).
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIQ3_S {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// The low 8 bits of the 64 grid indices, one per four values.
    pub qs: [u8; 64],
    /// The ninth bit of each grid index.
    pub qh: [u8; 8],
    /// One sign bit per value.
    pub signs: [u8; 32],
    /// A 4-bit scale per 32 values.
    pub scales: [u8; 4],
}

const _: () = assert!(size_of::<BlockIQ3_S>() == BlockIQ3_S::BYTES);
const _: () = assert!(align_of::<BlockIQ3_S>() == 1);

impl BlockIQ3_S {
    /// Bytes per block.
    pub const BYTES: usize = 110;
    /// Values per block.
    pub const VALUES: usize = QK_K;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self {
            d: take(bytes, 0),
            qs: take(bytes, 2),
            qh: take(bytes, 66),
            signs: take(bytes, 74),
            scales: take(bytes, 106),
        }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.qs);
        put(&mut out, 66, &self.qh);
        put(&mut out, 74, &self.signs);
        put(&mut out, 106, &self.scales);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The 4-bit scale `sc` of sub-block `s` (0..8).
    pub const fn sc(&self, s: usize) -> u8 {
        (self.scales[(s % 8) / 2] >> (4 * (s % 2))) & 0x0f
    }

    /// The 256 signed grid values (`grid * sign`, -15..=15), in value order (layout on
    /// [`BlockIQ3_S`]).
    pub const fn values(&self) -> [i8; Self::VALUES] {
        let mut v = [0i8; Self::VALUES];
        let mut i = 0;
        while i < Self::VALUES {
            let q = i / 4;
            let idx = self.qs[q] as usize | ((self.qh[q / 8] as usize >> (q % 8)) & 1) << 8;
            let g = (IQ3S_GRID[idx] >> (8 * (i % 4))) as u8 as i8;
            v[i] = if (self.signs[i / 8] >> (i % 8)) & 1 == 1 { -g } else { g };
            i += 1;
        }
        v
    }

    /// The sub-block scale `db = d * (1 + 2 sc)` (gguf-py: the integer `1 + 2 * scales`
    /// times the f32 `d`).
    fn db(&self, s: usize) -> f32 {
        self.d() * f32::from(1 + 2 * self.sc(s))
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

impl FormatSpec for BlockIQ3_S {
    const FORMAT: Format = Format::IQ3_S;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` and `signs` as quads (qs chunk `c`: the low index bits of values
    /// `16c..16c + 16`; signs chunk `s`: the sign bits of sub-block `s`); `d`, `qh` and
    /// `scales` per row.
    const FIELDS: &'static [Field] =
        &[quads(2, 64), quads(74, 32), per_row(0, 2), per_row(66, 8), per_row(106, 4)];
    const F16_SCALES: &'static [usize] = &[0];
    /// Q3_K's threshold (18), taken from that format (3-bit values, 256-value blocks), not
    /// measured: the development host had no AMX.
    const AMX_MIN_ROWS: usize = 18;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockIQ3_S {
    const SUB_BLOCK: usize = 32;

    /// `u = 15 + grid * sign` (0..=30), scale `db`, bias `db * -15` in each of the 8
    /// sub-blocks of 32: `db` has at most 16 significant bits and `u` 5, so `db * u`,
    /// `db * -15` and their sum are exact and equal `db * grid * sign`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.set_centered(15, b.values(), Self::VALUES / Self::SUB_BLOCK, |s| b.db(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_gguf_pys() {
        // Entries printed by gguf-py 0.19 (`IQ3_S.grid`).
        assert_eq!(IQ3S_GRID[0], u32::from_le_bytes([1, 1, 1, 1]));
        assert_eq!(IQ3S_GRID[1], u32::from_le_bytes([3, 1, 1, 1]));
        assert_eq!(IQ3S_GRID[300], u32::from_le_bytes([3, 5, 3, 7]));
        assert_eq!(IQ3S_GRID[511], u32::from_le_bytes([1, 1, 15, 15]));
    }

    fn block(h: u16) -> BlockIQ3_S {
        BlockIQ3_S {
            d: h.to_le_bytes(),
            qs: core::array::from_fn(|i| (i * 37 + 11) as u8),
            qh: core::array::from_fn(|i| (i * 91 + 5) as u8),
            signs: core::array::from_fn(|i| (i * 53 + 7) as u8),
            scales: [0x10, 0x32, 0xf4, 0x9e],
        }
    }

    #[test]
    fn value_positions_and_scale() {
        let b = block(0x3c00);
        let bytes = b.to_bytes();
        assert_eq!((&bytes[66..74], &bytes[106..]), (&b.qh[..], &b.scales[..]));
        assert_eq!(BlockIQ3_S::from_bytes(&bytes), b);
        assert_eq!([b.sc(0), b.sc(1), b.sc(4), b.sc(5), b.sc(7)], [0, 1, 4, 15, 9]);
        // Value 4 * 43 + 1 = 173: index qs[43] | bit 3 of qh[5] << 8, sign bit 5 of
        // signs[21], sub-block 5.
        let idx = usize::from(b.qs[43]) | usize::from(b.qh[5] >> 3 & 1) << 8;
        let g = IQ3S_GRID[idx].to_le_bytes()[1] as i8;
        let want = if b.signs[21] >> 5 & 1 == 1 { -g } else { g };
        assert_eq!(b.values()[173], want);
        let mut out = [0f32; 256];
        b.dequantize(&mut out);
        assert_eq!(out[173], 31.0 * f32::from(want));
    }

    #[test]
    fn decoded_form_is_exact() {
        for h in [0x0001u16, 0x03ff, 0x0400, 0x3555, 0x3c00, 0xc7ff, 0x7bff] {
            let b = block(h);
            let mut a = AffineBlock::new();
            BlockIQ3_S::decode(&b.to_bytes(), &mut a);
            let mut want = [0f32; 256];
            b.dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                let s = i / 32;
                assert_eq!(a.scale[s] * f32::from(a.u[i]) + a.bias[s], *w, "d {h:#x} i {i}");
            }
        }
    }
}
