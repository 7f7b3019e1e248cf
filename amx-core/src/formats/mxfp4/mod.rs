//! MXFP4 (OCP microscaling FP4): 32 values per 17-byte block, one E8M0 exponent byte `e`
//! and 32 4-bit indices into the E2M1 table, doubled ([`KVALUES_MXFP4`]):
//! `x = e8m0_to_f32_half(e) * KVALUES_MXFP4[q]`. gpt-oss's experts are stored this way.
//!
//! The range of the kernels: every path decodes exactly (the scale is a power of two,
//! the values small integers), but the VNNI path forms `scale * sum(u * q)` per block in
//! f32 before it applies the activations' scale, and that sum reaches 2^17: from exponent
//! byte 239 on (scales of 2^111 and more, weights no model holds; gpt-oss's bytes lie
//! near 127) it can overflow to infinity where the exact product is finite.

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block, nibbles32};
use super::{put, take};

#[cfg(target_arch = "x86_64")]
pub(super) mod x86;

/// The E2M1 values, doubled so that they are integers (ggml's `kvalues_mxfp4`): index
/// `q` (0..16) is `2 * e2m1(q)`; bit 3 is the sign (index 8 is `-0`, stored as 0).
pub const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// What the decoded form adds to each table value to make it unsigned: the table's
/// smallest value is -12, so `u = KVALUES_MXFP4[q] + 12` lies in 0..=24 and the bias is
/// `-12 * scale`. The smallest offset that works keeps the VNNI path's two terms
/// (`scale * sum(u * x)` and `bias * sum(x)`) close to the result, so their f32 rounding
/// costs the least (IQ4_XS's 128 would make them ten times larger than MXFP4's values).
pub(crate) const U_OFFSET: i8 = 12;

/// Half the value of an E8M0 exponent byte, as ggml's `ggml_e8m0_to_fp32_half` and
/// gguf-py's `MXFP4.e8m0_to_fp32_half` compute it: `2^(x - 128)`, exactly, for every
/// byte (0 and 1 give the f32 subnormals `2^-128` and `2^-127`; 255 gives `2^127`, not a
/// NaN: ggml does not special-case it, and neither does this).
pub const fn e8m0_to_f32_half(x: u8) -> f32 {
    let bits = if x < 2 { 0x0020_0000u32 << x } else { ((x as u32) - 1) << 23 };
    f32::from_bits(bits)
}

/// One MXFP4 block as stored by ggml (`block_mxfp4`): 17 bytes for 32 values.
///
/// Value `i < 16` is the table value of the low nibble of `qs[i]`, value `i + 16` that of
/// its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockMXFP4 {
    /// The shared exponent, E8M0 (a biased power of two, no sign, no mantissa).
    pub e: [u8; 1],
    /// 32 4-bit indices into [`KVALUES_MXFP4`], two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(size_of::<BlockMXFP4>() == BlockMXFP4::BYTES);
const _: () = assert!(align_of::<BlockMXFP4>() == 1);

impl BlockMXFP4 {
    /// Bytes per block.
    pub const BYTES: usize = 17;
    /// Values per block.
    pub const VALUES: usize = 32;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { e: take(bytes, 0), qs: take(bytes, 1) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.e);
        put(&mut out, 1, &self.qs);
        out
    }

    /// The scale `d = e8m0_to_f32_half(e)`.
    pub const fn d(&self) -> f32 {
        e8m0_to_f32_half(self.e[0])
    }

    /// The 32 table indices (0..=15), in value order.
    pub const fn indices(&self) -> [u8; Self::VALUES] {
        nibbles32(&self.qs)
    }

    /// The 32 table values `KVALUES_MXFP4[index]`, in value order.
    pub const fn quants(&self) -> [i8; Self::VALUES] {
        let idx = self.indices();
        let mut q = [0i8; Self::VALUES];
        let mut i = 0;
        while i < Self::VALUES {
            q[i] = KVALUES_MXFP4[(idx[i] & 0x0f) as usize];
            i += 1;
        }
        q
    }

    /// Dequantizes the block: `out[i] = d * KVALUES_MXFP4[q[i]]`, one f32 multiply
    /// (gguf-py: `d * qs.astype(np.float32)`).
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        for (o, q) in out.iter_mut().zip(self.quants()) {
            *o = d * f32::from(q);
        }
    }
}

impl FormatSpec for BlockMXFP4 {
    const FORMAT: Format = Format::MXFP4;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 16 bytes of indices as quads, the exponent byte per row (16 rows: 16 bytes,
    /// row `r` at byte `r`).
    const FIELDS: &'static [Field] = &[quads(1, 16), per_row(0, 1)];
    const F16_SCALES: &'static [usize] = &[];
    const E8M0_SCALES: &'static [usize] = &[0];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says, two runs),
    /// AMX / VNNI GOPS: 310/325 and 307/304 at M = 25, 332/328 and 325/316 at 26.
    const AMX_MIN_ROWS: usize = 26;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockMXFP4 {
    const SUB_BLOCK: usize = 32;

    /// `u = KVALUES_MXFP4[q] + 12`, scale `d`, bias `-12 * d` (see [`U_OFFSET`]).
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        for (u, q) in out.u.iter_mut().zip(b.quants()) {
            *u = (q + U_OFFSET) as u8;
        }
        let d = b.d();
        (out.scale[0], out.bias[0]) = (d, -f32::from(U_OFFSET) * d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e8m0_is_two_to_the_x_minus_128() {
        for x in 0..=255u8 {
            let start = (0..128).fold(1f64, |v, _| v / 2.0);
            let want = (0..x).fold(start, |v, _| v * 2.0);
            assert_eq!(f64::from(e8m0_to_f32_half(x)), want, "x = {x}");
        }
        assert_eq!(e8m0_to_f32_half(0).to_bits(), 0x0020_0000);
        assert_eq!(e8m0_to_f32_half(1).to_bits(), 0x0040_0000);
        assert_eq!(e8m0_to_f32_half(127), 0.5);
        assert_eq!(e8m0_to_f32_half(128), 1.0);
        assert_eq!(e8m0_to_f32_half(255), f32::from_bits(254 << 23));
        assert_eq!(e8m0_to_f32_half(255), 1.701_411_8e38);
    }

    #[test]
    fn table_is_doubled_e2m1() {
        // E2M1: sign, 2 exponent bits (bias 1), 1 mantissa bit; doubled.
        for (q, &v) in KVALUES_MXFP4.iter().enumerate() {
            let (s, e, m) = (q >> 3, (q >> 1) & 3, q & 1);
            let m = m as f64 * 0.5;
            let mag = [m, 1.0 + m, 2.0 * (1.0 + m), 4.0 * (1.0 + m)][e];
            let want = if s == 1 { -mag } else { mag };
            assert_eq!(f64::from(v), 2.0 * want, "q = {q}");
        }
    }

    #[test]
    fn nibble_positions_and_scale() {
        // e = 129 (d = 2); qs[j] = j | (15 - j) << 4.
        let mut bytes = [0u8; 17];
        bytes[0] = 129;
        for j in 0..16 {
            bytes[1 + j] = j as u8 | ((15 - j as u8) << 4);
        }
        let block = BlockMXFP4::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for j in 0..16 {
            assert_eq!(out[j], 2.0 * f32::from(KVALUES_MXFP4[j]));
            assert_eq!(out[j + 16], 2.0 * f32::from(KVALUES_MXFP4[15 - j]));
        }
        assert_eq!(out[7], 24.0);
        assert_eq!(out[16], -24.0);
    }

    #[test]
    fn decoded_form_is_exact() {
        // Every index under the extreme exponents: scale * u + bias is the value exactly
        // (d a power of two, u and 12 small integers), for finite values.
        for e in [0u8, 1, 2, 100, 127, 128, 200, 240] {
            let mut bytes = [e; 17];
            for j in 0..16 {
                bytes[1 + j] = j as u8 | ((j as u8) << 4);
            }
            let mut a = AffineBlock::new();
            BlockMXFP4::decode(&bytes, &mut a);
            let mut want = [0f32; 32];
            BlockMXFP4::from_bytes(&bytes).dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                assert!(a.u[i] <= 24);
                assert_eq!(a.scale[0] * f32::from(a.u[i]) + a.bias[0], *w, "e {e} i {i}");
            }
        }
    }
}
