//! Q5_K: 256 values per 176-byte super-block; Q4_K's layout plus a fifth bit per value:
//! `x = (d * sc) * q - (dmin * m)` with `q` in 0..=31.

use super::field::{Field, per_row, quads};
use super::q4_k::{affine_k4, dequantize_k4};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take, unpack_scales_mins_k4};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One Q5_K super-block as stored by ggml (`block_q5_K`): 176 bytes for 256 values.
///
/// Value `i` of sub-block `j` (`i = 32j + l`): low 4 bits from `qs` as in Q4_K (low nibbles
/// of `qs[32(j/2) + l]` for even `j`, high nibbles for odd `j`), bit 4 is bit `j` of `qh[l]`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ5_K {
    /// Super-block scale for the sub-block scales, f16 little endian.
    pub d: [u8; 2],
    /// Super-block scale for the sub-block mins, f16 little endian.
    pub dmin: [u8; 2],
    /// 8 scales and 8 mins, 6 bits each (see [`unpack_scales_mins_k4`]).
    pub scales: [u8; 12],
    /// The fifth (high) bit of every value: bit `j` of byte `l` for value `32j + l`.
    pub qh: [u8; 32],
    /// The low 4 bits of every value.
    pub qs: [u8; 128],
}

const _: () = assert!(size_of::<BlockQ5_K>() == BlockQ5_K::BYTES);
const _: () = assert!(align_of::<BlockQ5_K>() == 1);

impl BlockQ5_K {
    /// Bytes per super-block.
    pub const BYTES: usize = 176;
    /// Values per super-block.
    pub const VALUES: usize = QK_K;

    /// Parses one super-block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self {
            d: take(bytes, 0),
            dmin: take(bytes, 2),
            scales: take(bytes, 4),
            qh: take(bytes, 16),
            qs: take(bytes, 48),
        }
    }

    /// The super-block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.dmin);
        put(&mut out, 4, &self.scales);
        put(&mut out, 16, &self.qh);
        put(&mut out, 48, &self.qs);
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

    /// The 8 sub-block scales and mins, `(scales, mins)`, each 0..=63.
    pub const fn scales_mins(&self) -> ([u8; 8], [u8; 8]) {
        unpack_scales_mins_k4(&self.scales)
    }

    /// The 256 unsigned quants (0..=31), in value order.
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        let mut q = [0u8; Self::VALUES];
        let mut j = 0;
        while j < 8 {
            let mut l = 0;
            while l < 32 {
                let low = (self.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
                let high = (self.qh[l] >> j) & 1;
                q[32 * j + l] = low | (high << 4);
                l += 1;
            }
            j += 1;
        }
        q
    }

    /// Dequantizes the super-block: for value `i` of sub-block `j = i / 32`,
    /// `out[i] = (d * sc[j]) * q[i] - (dmin * m[j])`, each operation rounded to f32.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        dequantize_k4(self.d(), self.dmin(), self.scales_mins(), &self.quants(), out);
    }
}

impl FormatSpec for BlockQ5_K {
    const FORMAT: Format = Format::Q5_K;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The low nibbles (`qs`) then the fifth bits (`qh`) as quads; `d`, `dmin` and the 12
    /// bytes of 6-bit scales and mins per row.
    const FIELDS: &'static [Field] =
        &[quads(48, 128), quads(16, 32), per_row(0, 2), per_row(2, 2), per_row(4, 12)];
    const F16_SCALES: &'static [usize] = &[0, 2];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says), AMX / VNNI
    /// GOPS: 285/286 at M = 20, 315/293 at 22.
    const AMX_MIN_ROWS: usize = 21;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ5_K {
    const SUB_BLOCK: usize = 32;

    /// `u` = the 5-bit value, scale `d * sc`, bias `-(dmin * m)` per sub-block of 32.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.u[..Self::VALUES].copy_from_slice(&b.quants());
        affine_k4(b.d(), b.dmin(), b.scales_mins(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::q4_k::tests::pack_scales_mins;
    use super::*;

    /// Packs 256 five-bit values into (qh, qs) following the layout described on
    /// [`BlockQ5_K`].
    fn pack_quants(q: &[u8; 256]) -> ([u8; 32], [u8; 128]) {
        let mut qh = [0u8; 32];
        let mut qs = [0u8; 128];
        for (i, &v) in q.iter().enumerate() {
            let (j, l) = (i / 32, i % 32);
            qs[32 * (j / 2) + l] |= (v & 0x0f) << (4 * (j % 2));
            qh[l] |= (v >> 4) << j;
        }
        (qh, qs)
    }

    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri: safe bit arithmetic, 1280 whole-block decodes")]
    fn each_bit_lands_on_one_value() {
        // A single set bit anywhere in qh or qs gives exactly one non-zero quant, and every
        // value's 5 bits are reached this way exactly once.
        let mut seen = [0u8; 256];
        let zero = BlockQ5_K::from_bytes(&[0; 176]);
        for byte in 0..160 {
            for bit in 0..8 {
                let mut block = zero;
                if byte < 32 {
                    block.qh[byte] = 1 << bit;
                } else {
                    block.qs[byte - 32] = 1 << bit;
                }
                let q = block.quants();
                let hits: [usize; 256] = core::array::from_fn(|i| usize::from(q[i] != 0));
                assert_eq!(hits.iter().sum::<usize>(), 1);
                let i = hits.iter().position(|&h| h == 1).unwrap();
                assert!(q[i].is_power_of_two());
                assert_eq!(seen[i] & q[i], 0);
                seen[i] |= q[i];
            }
        }
        assert!(seen.iter().all(|&s| s == 0x1f));
    }

    #[test]
    fn dequantize_hand_built_block() {
        // d = 2.0 (0x4000), dmin = 0.5 (0x3800); scale j = 63 - j, min j = 2j; q[i] = i % 32.
        let sc: [u8; 8] = core::array::from_fn(|j| 63 - j as u8);
        let m: [u8; 8] = core::array::from_fn(|j| 2 * j as u8);
        let want_q: [u8; 256] = core::array::from_fn(|i| (i * 13 % 32) as u8);
        let (qh, qs) = pack_quants(&want_q);
        let block = BlockQ5_K {
            d: 0x4000u16.to_le_bytes(),
            dmin: 0x3800u16.to_le_bytes(),
            scales: pack_scales_mins(sc, m),
            qh,
            qs,
        };
        assert_eq!(BlockQ5_K::from_bytes(&block.to_bytes()), block);
        assert_eq!(block.quants(), want_q);
        assert_eq!(block.scales_mins(), (sc, m));
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let j = i / 32;
            let want = 2.0 * f64::from(sc[j]) * f64::from(want_q[i]) - 0.5 * f64::from(m[j]);
            assert_eq!(f64::from(x), want, "i = {i}");
        }
        // Value 31 of sub-block 0: q = 31 * 13 % 32 = 19 -> 2 * 63 * 19 - 0.
        assert_eq!(out[31], 2394.0);
    }
}
