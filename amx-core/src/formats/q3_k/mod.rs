//! Q3_K: 256 values per 110-byte super-block, 16 sub-blocks of 16 values with a 6-bit
//! signed scale each: `x = (d * (sc - 32)) * (q - 4)`, `q` in 0..=7 the two bits of `qs`
//! and the bit of `hmask` as bit 2.

use super::field::{Field, per_row, quads};
use super::q2_k::crumbs;
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// Unpacks Q3_K's 12 bytes of 6-bit sub-block scales (ggml's `kmask` shuffle in
/// `dequantize_row_q3_K`), each 0..=63 (the offset 32 not removed).
///
/// Scale `i` has its low 4 bits in byte `i % 8` (low nibble for `i < 8`, high nibble
/// for `i >= 8`) and its top 2 bits in bits `2(i / 4), 2(i / 4) + 1` of byte
/// `8 + i % 4`.
pub const fn unpack_scales_k3(scales: &[u8; 12]) -> [u8; 16] {
    let mut sc = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        let lo = (scales[i % 8] >> (4 * (i / 8))) & 0x0f;
        let hi = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = lo | (hi << 4);
        i += 1;
    }
    sc
}

/// One Q3_K super-block as stored by ggml (`block_q3_K`): 110 bytes for 256 values.
///
/// Value `128h + 32j + l` (`h` < 2, `j` < 4, `l` < 32) has its low 2 bits in bits
/// `2j, 2j + 1` of `qs[32h + l]` (as in Q2_K) and its bit 2 in bit `4h + j` of
/// `hmask[l]`; value `i` uses scale `i / 16` ([`unpack_scales_k3`]).
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ3_K {
    /// Bit 2 of every value (set: `q - 4 >= 0`).
    pub hmask: [u8; 32],
    /// The low 2 bits of every value.
    pub qs: [u8; 64],
    /// 16 sub-block scales, 6 bits each (see [`unpack_scales_k3`]).
    pub scales: [u8; 12],
    /// Super-block scale, f16 little endian.
    pub d: [u8; 2],
}

const _: () = assert!(size_of::<BlockQ3_K>() == BlockQ3_K::BYTES);
const _: () = assert!(align_of::<BlockQ3_K>() == 1);

impl BlockQ3_K {
    /// Bytes per super-block.
    pub const BYTES: usize = 110;
    /// Values per super-block.
    pub const VALUES: usize = QK_K;

    /// Parses one super-block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self {
            hmask: take(bytes, 0),
            qs: take(bytes, 32),
            scales: take(bytes, 96),
            d: take(bytes, 108),
        }
    }

    /// The super-block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.hmask);
        put(&mut out, 32, &self.qs);
        put(&mut out, 96, &self.scales);
        put(&mut out, 108, &self.d);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The 16 sub-block scales with the offset removed (`sc - 32`, -32..=31).
    pub const fn sub_scales(&self) -> [i8; 16] {
        let sc = unpack_scales_k3(&self.scales);
        let mut s = [0i8; 16];
        let mut i = 0;
        while i < 16 {
            s[i] = sc[i] as i8 - 32;
            i += 1;
        }
        s
    }

    /// The 256 unsigned 3-bit values `q` (0..=7), in value order (layout on
    /// [`BlockQ3_K`]).
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        let mut q = crumbs(&self.qs);
        let mut i = 0;
        while i < Self::VALUES {
            let high = (self.hmask[i % 32] >> (i / 32)) & 1;
            q[i] |= high << 2;
            i += 1;
        }
        q
    }

    /// Dequantizes the super-block: `out[i] = (d * (sc[i / 16] - 32)) * (q[i] - 4)`, each
    /// operation rounded to f32.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        let sc = self.sub_scales();
        let q = self.quants();
        for (s, (o, q)) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let dl = d * f32::from(sc[s]);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = dl * f32::from(q as i8 - 4);
            }
        }
    }
}

impl FormatSpec for BlockQ3_K {
    const FORMAT: Format = Format::Q3_K;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` then `hmask` as quads; `d` and the 12 bytes of scales per row.
    const FIELDS: &'static [Field] =
        &[quads(32, 64), quads(0, 32), per_row(108, 2), per_row(96, 12)];
    const F16_SCALES: &'static [usize] = &[108];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says, two runs),
    /// AMX / VNNI GOPS: 219/219 and 214/212 at M = 17, 226/222 and 223/217 at 18.
    /// Measured before the VNNI kernel took integer sub-block scales (6-18 % faster at
    /// M = 8 to 16 on a host without AMX), so the true crossing point is likely higher;
    /// not re-measured (no AMX host since).
    const AMX_MIN_ROWS: usize = 18;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ3_K {
    const SUB_BLOCK: usize = 16;

    /// `u` = the 3-bit value, scale `d * (sc - 32)`, bias `-4 * scale` per sub-block of 16.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.u[..Self::VALUES].copy_from_slice(&b.quants());
        let d = b.d();
        for (s, sc) in b.sub_scales().into_iter().enumerate() {
            let sc = d * f32::from(sc);
            (out.scale[s], out.bias[s]) = (sc, -4.0 * sc);
        }
    }

    /// `alpha = d / 64`, `a = 64 (sc - 32)`, `c = -256 (sc - 32)`: `T = 64 * sum (sc - 32)
    /// (S - 4 I)`, so `f = d * sum (sc - 32) * sum (q - 4) x`.
    #[cfg(test)]
    fn int_scales(block: &[u8]) -> Option<super::int_scales::IntScales> {
        let b = Self::from_bytes(block.first_chunk()?);
        let sc = b.sub_scales().map(i16::from);
        Some(super::int_scales::IntScales {
            alpha: b.d() * (1.0 / 64.0),
            a: sc.map(|s| 64 * s),
            c: sc.map(|s| -256 * s),
            bias: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::q2_k::tests::pack_crumbs;

    /// Packs 16 six-bit scales into the 12-byte layout, written from the bit diagram in
    /// gguf-py's `Q3_K.dequantize_blocks` comments, independently of the decoder.
    fn pack_scales(sc: [u8; 16]) -> [u8; 12] {
        let mut out = [0u8; 12];
        for (i, &v) in sc.iter().enumerate() {
            out[i % 8] |= (v & 0x0f) << (4 * (i / 8));
            out[8 + i % 4] |= (v >> 4) << (2 * (i / 4));
        }
        out
    }

    #[test]
    fn scales_use_every_bit_once() {
        let mut seen = [0u8; 16];
        for byte in 0..12 {
            for bit in 0..8 {
                let mut b = [0u8; 12];
                b[byte] = 1 << bit;
                let sc = unpack_scales_k3(&b);
                let hits: [usize; 16] = core::array::from_fn(|i| usize::from(sc[i] != 0));
                assert_eq!(hits.iter().sum::<usize>(), 1, "byte {byte} bit {bit}");
                let i = hits.iter().position(|&h| h == 1).unwrap();
                assert!(sc[i].is_power_of_two());
                assert_eq!(seen[i] & sc[i], 0);
                seen[i] |= sc[i];
            }
        }
        assert!(seen.iter().all(|&s| s == 0x3f));
        let sc: [u8; 16] = core::array::from_fn(|i| ((i * 23 + 5) & 63) as u8);
        assert_eq!(unpack_scales_k3(&pack_scales(sc)), sc);
    }

    #[test]
    #[cfg_attr(miri, ignore = "a minute under Miri: safe bit arithmetic over every bit of a block")]
    fn hmask_bits_land_on_one_value_each() {
        let mut seen = [false; 256];
        for byte in 0..32 {
            for bit in 0..8 {
                let mut block = BlockQ3_K::from_bytes(&[0; 110]);
                block.hmask[byte] = 1 << bit;
                let q = block.quants();
                let hits: [usize; 256] = core::array::from_fn(|i| usize::from(q[i] != 0));
                assert_eq!(hits.iter().sum::<usize>(), 1);
                let i = hits.iter().position(|&h| h == 1).unwrap();
                assert_eq!(q[i], 4);
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn dequantize_hand_built_block() {
        // d = 0.5 (0x3800); scale s is 4s + 2 (so sc - 32 runs from -30 to 30);
        // q[i] = i * 5 % 8.
        let sc: [u8; 16] = core::array::from_fn(|s| 4 * s as u8 + 2);
        let q: [u8; 256] = core::array::from_fn(|i| (i * 5 % 8) as u8);
        let mut hmask = [0u8; 32];
        for (i, &v) in q.iter().enumerate() {
            hmask[i % 32] |= (v >> 2) << (i / 32);
        }
        let low = q.map(|v| v & 3);
        let block = BlockQ3_K {
            hmask,
            qs: pack_crumbs(&low),
            scales: pack_scales(sc),
            d: 0x3800u16.to_le_bytes(),
        };
        let bytes = block.to_bytes();
        assert_eq!(bytes[108..], [0x00, 0x38]);
        assert_eq!(BlockQ3_K::from_bytes(&bytes), block);
        assert_eq!(block.quants(), q);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let want = 0.5 * (f64::from(sc[i / 16]) - 32.0) * (f64::from(q[i]) - 4.0);
            assert_eq!(f64::from(x), want, "i = {i}");
        }
        // Value 0: scale 2 - 32, q = 0 -> 0.5 * -30 * -4.
        assert_eq!(out[0], 60.0);
    }
}
