//! IQ4_XS: 256 values per 136-byte super-block, 8 sub-blocks of 32 values; each value is a
//! 4-bit index into the non-linear table [`KVALUES_IQ4NL`], each sub-block has a 6-bit
//! scale: `x = (d * (ls - 32)) * KVALUES_IQ4NL[q]`.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// The IQ4_NL / IQ4_XS value table (ggml's `kvalues_iq4nl`).
pub const KVALUES_IQ4NL: [i8; 16] =
    [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// One IQ4_XS super-block as stored by ggml (`block_iq4_xs`): 136 bytes for 256 values.
///
/// Sub-block `j` (values `32j .. 32j + 32`): scale `ls = lo | hi << 4`, `lo` the nibble
/// `j % 2` of `scales_l[j / 2]` (low nibble first), `hi` bits `2j, 2j + 1` of `scales_h`
/// (a little-endian `u16`). Its values `l < 16` are the low nibbles of
/// `qs[16j .. 16j + 16]`, values `l + 16` the high nibbles.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIQ4_XS {
    /// Super-block scale, f16 little endian.
    pub d: [u8; 2],
    /// High 2 bits of the 8 sub-block scales, `u16` little endian.
    pub scales_h: [u8; 2],
    /// Low 4 bits of the 8 sub-block scales.
    pub scales_l: [u8; 4],
    /// 256 4-bit table indices.
    pub qs: [u8; 128],
}

const _: () = assert!(size_of::<BlockIQ4_XS>() == BlockIQ4_XS::BYTES);
const _: () = assert!(align_of::<BlockIQ4_XS>() == 1);

impl BlockIQ4_XS {
    /// Bytes per super-block.
    pub const BYTES: usize = 136;
    /// Values per super-block.
    pub const VALUES: usize = QK_K;

    /// Parses one super-block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self {
            d: take(bytes, 0),
            scales_h: take(bytes, 2),
            scales_l: take(bytes, 4),
            qs: take(bytes, 8),
        }
    }

    /// The super-block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.scales_h);
        put(&mut out, 4, &self.scales_l);
        put(&mut out, 8, &self.qs);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The 8 sub-block scales with the offset removed (`ls - 32`, -32..=31).
    pub const fn sub_scales(&self) -> [i8; 8] {
        let h = u16::from_le_bytes(self.scales_h);
        let mut s = [0i8; 8];
        let mut j = 0;
        while j < 8 {
            let lo = (self.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
            let hi = ((h >> (2 * j)) & 3) as u8;
            s[j] = (lo | (hi << 4)) as i8 - 32;
            j += 1;
        }
        s
    }

    /// The 256 table indices (0..=15), in value order.
    pub const fn indices(&self) -> [u8; Self::VALUES] {
        let mut q = [0u8; Self::VALUES];
        let mut j = 0;
        while j < 8 {
            let mut l = 0;
            while l < 16 {
                let b = self.qs[16 * j + l];
                q[32 * j + l] = b & 0x0f;
                q[32 * j + 16 + l] = b >> 4;
                l += 1;
            }
            j += 1;
        }
        q
    }

    /// The 256 table values `KVALUES_IQ4NL[index]`, in value order.
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

    /// Dequantizes the super-block: for value `i` of sub-block `j = i / 32`,
    /// `out[i] = (d * (ls[j] - 32)) * KVALUES_IQ4NL[q[i]]`, each operation rounded to f32.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        let sc = self.sub_scales();
        let q = self.quants();
        for (j, (o, q)) in out.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
            let dl = d * f32::from(sc[j]);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = dl * f32::from(q);
            }
        }
    }
}

impl FormatSpec for BlockIQ4_XS {
    const FORMAT: Format = Format::IQ4_XS;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 128 bytes of indices as quads; `d`, `scales_h` and `scales_l` per row.
    const FIELDS: &'static [Field] = &[quads(8, 128), per_row(0, 2), per_row(2, 2), per_row(4, 4)];
    const F16_SCALES: &'static [usize] = &[0];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says), AMX / VNNI
    /// GOPS: 364/366 at M = 24, 393/352 at 26.
    const AMX_MIN_ROWS: usize = 25;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockIQ4_XS {
    const SUB_BLOCK: usize = 32;

    /// `u = KVALUES_IQ4NL[q] ^ 0x80`, scale `d * (ls - 32)`, bias `-128 * scale` per
    /// sub-block of 32.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        for (u, q) in out.u.iter_mut().zip(b.quants()) {
            *u = (q as u8) ^ 0x80;
        }
        let d = b.d();
        for (s, ls) in b.sub_scales().into_iter().enumerate() {
            let sc = d * f32::from(ls);
            (out.scale[s], out.bias[s]) = (sc, -128.0 * sc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_ggml_kvalues() {
        // Strictly increasing, 16 entries, the documented ends.
        assert!(KVALUES_IQ4NL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(KVALUES_IQ4NL[0], -127);
        assert_eq!(KVALUES_IQ4NL[8], 1);
        assert_eq!(KVALUES_IQ4NL[15], 113);
    }

    #[test]
    fn scale_bits() {
        // Scale j gets every 6-bit value while the others are fixed.
        for j in 0..8 {
            for ls in 0..64u16 {
                let mut want: [u16; 8] = core::array::from_fn(|k| (9 * k as u16 + 3) & 63);
                want[j] = ls;
                let mut block = BlockIQ4_XS::from_bytes(&[0; 136]);
                let mut h = 0u16;
                for (k, &v) in want.iter().enumerate() {
                    block.scales_l[k / 2] |= ((v & 0x0f) as u8) << (4 * (k % 2));
                    h |= (v >> 4) << (2 * k);
                }
                block.scales_h = h.to_le_bytes();
                let got = block.sub_scales();
                for k in 0..8 {
                    assert_eq!(i16::from(got[k]), want[k] as i16 - 32);
                }
            }
        }
    }

    #[test]
    fn dequantize_hand_built_block() {
        // d = 0.5; sub-block j has ls = 33 + j (scale 1 + j); value l < 16 of sub-block j is
        // index l, value l + 16 index 15 - l.
        let mut bytes = [0u8; 136];
        bytes[..2].copy_from_slice(&0x3800u16.to_le_bytes());
        let mut h = 0u16;
        for j in 0..8 {
            let ls = 33 + j as u16;
            bytes[4 + j / 2] |= ((ls & 0x0f) as u8) << (4 * (j % 2));
            h |= (ls >> 4) << (2 * j);
            for l in 0..16 {
                bytes[8 + 16 * j + l] = l as u8 | ((15 - l as u8) << 4);
            }
        }
        bytes[2..4].copy_from_slice(&h.to_le_bytes());
        let block = BlockIQ4_XS::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for j in 0..8 {
            let scale = 0.5 * (1.0 + j as f32);
            for l in 0..16 {
                assert_eq!(out[32 * j + l], scale * f32::from(KVALUES_IQ4NL[l]));
                assert_eq!(out[32 * j + 16 + l], scale * f32::from(KVALUES_IQ4NL[15 - l]));
            }
        }
        assert_eq!(out[0], -63.5);
        assert_eq!(out[255], 4.0 * -127.0);
    }
}
