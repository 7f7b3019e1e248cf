//! Q4_K: 256 values per 144-byte super-block, 8 sub-blocks of 32 values, each with a 6-bit
//! scale and a 6-bit min: `x = (d * sc) * q - (dmin * m)`.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, f16_le, put, take};

#[cfg(target_arch = "x86_64")]
pub(super) mod x86;

/// Unpacks the 12 bytes of 6-bit sub-block scales and mins shared by Q4_K and Q5_K
/// (ggml's `get_scale_min_k4` for `j = 0..8`), returning `(scales, mins)`, each 0..=63.
///
/// For `j < 4`: scale `j` is the low 6 bits of byte `j`, min `j` the low 6 bits of byte
/// `j + 4`. For `j >= 4`: the low 4 bits come from the low (scale) or high (min) nibble of
/// byte `j + 4`, the top 2 bits from the top 2 bits of byte `j - 4` (scale) or `j` (min).
pub const fn unpack_scales_mins_k4(scales: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    let mut j = 0;
    while j < 4 {
        sc[j] = scales[j] & 0x3f;
        m[j] = scales[j + 4] & 0x3f;
        sc[j + 4] = (scales[j + 8] & 0x0f) | ((scales[j] >> 6) << 4);
        m[j + 4] = (scales[j + 8] >> 4) | ((scales[j + 4] >> 6) << 4);
        j += 1;
    }
    (sc, m)
}

/// The dequantization shared by Q4_K and Q5_K: for value `i` of sub-block `j = i / 32`,
/// `out[i] = (d * sc[j]) * q[i] - (dmin * m[j])`, each operation rounded to f32.
pub(super) fn dequantize_k4(
    d: f32,
    dmin: f32,
    (sc, m): ([u8; 8], [u8; 8]),
    q: &[u8; QK_K],
    out: &mut [f32; QK_K],
) {
    for (j, (o, q)) in out.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
        let d1 = d * f32::from(sc[j]);
        let m1 = dmin * f32::from(m[j]);
        for (o, &q) in o.iter_mut().zip(q) {
            *o = d1 * f32::from(q) - m1;
        }
    }
}

/// The decoded form's affine maps shared by Q4_K and Q5_K: for each of the 8 sub-blocks,
/// scale `d * sc` and bias `-(dmin * m)`.
pub(super) fn affine_k4(d: f32, dmin: f32, (sc, m): ([u8; 8], [u8; 8]), out: &mut AffineBlock) {
    for s in 0..8 {
        out.scale[s] = d * f32::from(sc[s]);
        out.bias[s] = -(dmin * f32::from(m[s]));
    }
}

/// One Q4_K super-block as stored by ggml (`block_q4_K`): 144 bytes for 256 values.
///
/// Sub-block `2c` (values `64c .. 64c + 32`) is the low nibbles of `qs[32c .. 32c + 32]`,
/// sub-block `2c + 1` the high nibbles of the same bytes.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ4_K {
    /// Super-block scale for the sub-block scales, f16 little endian.
    pub d: [u8; 2],
    /// Super-block scale for the sub-block mins, f16 little endian.
    pub dmin: [u8; 2],
    /// 8 scales and 8 mins, 6 bits each (see [`unpack_scales_mins_k4`]).
    pub scales: [u8; 12],
    /// 256 unsigned 4-bit quants.
    pub qs: [u8; 128],
}

const _: () = assert!(size_of::<BlockQ4_K>() == BlockQ4_K::BYTES);
const _: () = assert!(align_of::<BlockQ4_K>() == 1);

impl BlockQ4_K {
    /// Bytes per super-block.
    pub const BYTES: usize = 144;
    /// Values per super-block.
    pub const VALUES: usize = QK_K;

    /// Parses one super-block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self {
            d: take(bytes, 0),
            dmin: take(bytes, 2),
            scales: take(bytes, 4),
            qs: take(bytes, 16),
        }
    }

    /// The super-block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.dmin);
        put(&mut out, 4, &self.scales);
        put(&mut out, 16, &self.qs);
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

    /// The 256 unsigned quants (0..=15), in value order.
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        let mut q = [0u8; Self::VALUES];
        let mut c = 0;
        while c < 4 {
            let mut l = 0;
            while l < 32 {
                let b = self.qs[32 * c + l];
                q[64 * c + l] = b & 0x0f;
                q[64 * c + 32 + l] = b >> 4;
                l += 1;
            }
            c += 1;
        }
        q
    }

    /// Dequantizes the super-block: for value `i` of sub-block `j = i / 32`,
    /// `out[i] = (d * sc[j]) * q[i] - (dmin * m[j])`, each operation rounded to f32.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        dequantize_k4(self.d(), self.dmin(), self.scales_mins(), &self.quants(), out);
    }
}

impl FormatSpec for BlockQ4_K {
    const FORMAT: Format = Format::Q4_K;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 128 bytes of nibbles as quads; `d`, `dmin` and the 12 bytes of 6-bit scales and
    /// mins per row.
    const FIELDS: &'static [Field] =
        &[quads(16, 128), per_row(0, 2), per_row(2, 2), per_row(4, 12)];
    const F16_SCALES: &'static [usize] = &[0, 2];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says), AMX / VNNI
    /// GOPS: 357/363 at M = 24, 380/347 at 26.
    const AMX_MIN_ROWS: usize = 25;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ4_K {
    const SUB_BLOCK: usize = 32;

    /// `u` = the nibble, scale `d * sc`, bias `-(dmin * m)` per sub-block of 32.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.u[..Self::VALUES].copy_from_slice(&b.quants());
        affine_k4(b.d(), b.dmin(), b.scales_mins(), out);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Packs 8 scales and 8 mins (each < 64) into the 12-byte K-quant layout, written from
    /// the bit diagram in ggml's `block_q4_K` comments, independently of the decoder.
    pub(in crate::formats) fn pack_scales_mins(sc: [u8; 8], m: [u8; 8]) -> [u8; 12] {
        let mut out = [0u8; 12];
        for i in 0..4 {
            // bytes 0..4: low 6 bits of scale i, top 2 bits: bits 4..6 of scale i + 4.
            out[i] = sc[i] | ((sc[i + 4] >> 4) << 6);
            // bytes 4..8: low 6 bits of min i, top 2 bits: bits 4..6 of min i + 4.
            out[i + 4] = m[i] | ((m[i + 4] >> 4) << 6);
            // bytes 8..12: low nibble of scale i + 4, high nibble: low nibble of min i + 4.
            out[i + 8] = (sc[i + 4] & 0x0f) | ((m[i + 4] & 0x0f) << 4);
        }
        out
    }

    #[test]
    fn scales_round_trip_through_the_encoder() {
        // Each scale/min position takes every 6-bit value while the others hold distinct
        // values, so a mixed-up bit or position shows.
        for pos in 0..16 {
            for v in 0..64u8 {
                let mut sc: [u8; 8] = core::array::from_fn(|i| (7 * i as u8 + 5) & 63);
                let mut m: [u8; 8] = core::array::from_fn(|i| (11 * i as u8 + 40) & 63);
                if pos < 8 {
                    sc[pos] = v;
                } else {
                    m[pos - 8] = v;
                }
                assert_eq!(unpack_scales_mins_k4(&pack_scales_mins(sc, m)), (sc, m));
            }
        }
    }

    #[test]
    fn decoding_uses_every_bit_of_all_12_bytes() {
        // Flipping any single bit of the 12 bytes changes exactly one decoded scale or min,
        // by exactly one power of two.
        let base = [0u8; 12];
        let (s0, m0) = unpack_scales_mins_k4(&base);
        assert_eq!((s0, m0), ([0; 8], [0; 8]));
        let mut seen = [[false; 6]; 16];
        for byte in 0..12 {
            for bit in 0..8 {
                let mut b = base;
                b[byte] |= 1 << bit;
                let (s, m) = unpack_scales_mins_k4(&b);
                let all: [u8; 16] = core::array::from_fn(|i| if i < 8 { s[i] } else { m[i - 8] });
                let changed: [usize; 16] = core::array::from_fn(|i| usize::from(all[i] != 0));
                assert_eq!(changed.iter().sum::<usize>(), 1, "byte {byte} bit {bit}");
                let pos = changed.iter().position(|&c| c == 1).unwrap();
                assert!(all[pos].is_power_of_two());
                let out_bit = all[pos].trailing_zeros() as usize;
                assert!(!seen[pos][out_bit], "two input bits map to one output bit");
                seen[pos][out_bit] = true;
            }
        }
        // 96 input bits cover all 16 x 6 output bits.
        assert!(seen.iter().all(|s| s.iter().all(|&b| b)));
    }

    #[test]
    fn dequantize_hand_built_block() {
        // d = 0.5 (0x3800), dmin = 0.25 (0x3400); sub-block j has scale j + 1 and min
        // 60 - j; q[i] = (i * 7) % 16.
        let sc: [u8; 8] = core::array::from_fn(|j| j as u8 + 1);
        let m: [u8; 8] = core::array::from_fn(|j| 60 - j as u8);
        let want_q: [u8; 256] = core::array::from_fn(|i| (i * 7 % 16) as u8);
        let mut qs = [0u8; 128];
        for c in 0..4 {
            for l in 0..32 {
                qs[32 * c + l] = want_q[64 * c + l] | (want_q[64 * c + 32 + l] << 4);
            }
        }
        let block = BlockQ4_K {
            d: 0x3800u16.to_le_bytes(),
            dmin: 0x3400u16.to_le_bytes(),
            scales: pack_scales_mins(sc, m),
            qs,
        };
        assert_eq!(BlockQ4_K::from_bytes(&block.to_bytes()), block);
        assert_eq!(block.quants(), want_q);
        let mut out = [0f32; 256];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let j = i / 32;
            let want = 0.5 * f64::from(sc[j]) * f64::from(want_q[i]) - 0.25 * f64::from(m[j]);
            assert_eq!(f64::from(x), want, "i = {i}");
        }
        assert_eq!(out[0], -15.0);
        assert_eq!(out[255], 4.0 * 9.0 - 13.25);
    }
}
