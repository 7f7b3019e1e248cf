//! Q5_0: 32 values per 22-byte block, `x = d * (q - 16)` with `q` an unsigned 5-bit value
//! (a nibble of `qs` and one bit of `qh`).

use super::field::{Field, per_row, quads};
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{f16_le, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One Q5_0 block as stored by ggml (`block_q5_0`): 22 bytes for 32 values.
///
/// Value `i < 16` is the low nibble of `qs[i]`, value `i + 16` its high nibble; bit `i`
/// of `qh` (a little-endian `u32`) is bit 4 of value `i`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ5_0 {
    /// Scale, f16 little endian.
    pub d: [u8; 2],
    /// Bit 4 of the 32 values, `u32` little endian (bit `i` for value `i`).
    pub qh: [u8; 4],
    /// The low 4 bits of the 32 values, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(size_of::<BlockQ5_0>() == BlockQ5_0::BYTES);
const _: () = assert!(align_of::<BlockQ5_0>() == 1);

impl BlockQ5_0 {
    /// Bytes per block.
    pub const BYTES: usize = 22;
    /// Values per block.
    pub const VALUES: usize = 32;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { d: take(bytes, 0), qh: take(bytes, 2), qs: take(bytes, 6) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.d);
        put(&mut out, 2, &self.qh);
        put(&mut out, 6, &self.qs);
        out
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        f16_le(self.d)
    }

    /// The 32 unsigned quants (0..=31), in value order.
    pub const fn quants(&self) -> [u8; Self::VALUES] {
        quants5(&self.qs, self.qh)
    }

    /// Dequantizes the block: `out[i] = d * (q[i] - 16)`.
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let d = self.d();
        for (o, q) in out.iter_mut().zip(self.quants()) {
            *o = d * f32::from(q as i8 - 16);
        }
    }
}

/// The 32 5-bit values of a Q5_0 or Q5_1 block: value `i` is nibble `i / 16` (low
/// first) of `qs[i % 16]`, plus bit `i` of `qh` (little endian) as bit 4.
pub(crate) const fn quants5(qs: &[u8; 16], qh: [u8; 4]) -> [u8; 32] {
    let h = u32::from_le_bytes(qh);
    let mut q = [0u8; 32];
    let mut j = 0;
    while j < 16 {
        q[j] = (qs[j] & 0x0f) | ((((h >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((h >> (j + 16)) & 1) as u8) << 4);
        j += 1;
    }
    q
}

impl FormatSpec for BlockQ5_0 {
    const FORMAT: Format = Format::Q5_0;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// The 16 bytes of nibbles as quads; the scale and the 4 bytes of fifth bits per row
    /// (a 4-byte field cannot be quads; 16 rows' `qh` are one 64-byte vector, row `r` at
    /// dword `r`).
    const FIELDS: &'static [Field] = &[quads(6, 16), per_row(0, 2), per_row(2, 4)];
    const F16_SCALES: &'static [usize] = &[0];
    /// The crossing point with VNNI (measured as `gemm::amx_min_rows` says, two runs),
    /// AMX / VNNI GOPS: 307/311 and 273/278 at M = 24, 279/267 and 296/270 at 25.
    const AMX_MIN_ROWS: usize = 25;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockQ5_0 {
    const SUB_BLOCK: usize = 32;

    /// `u` = the 5-bit value, scale `d`, bias `-16 d`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        out.u[..Self::VALUES].copy_from_slice(&b.quants());
        let d = b.d();
        (out.scale[0], out.bias[0]) = (d, -16.0 * d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_positions_and_offset() {
        // d = 1.0; qs[j] = j | (15 - j) << 4; qh = 0xa5c3_0f01: value i gets 16 when bit i
        // of qh is set.
        let qh = 0xa5c3_0f01u32;
        let mut bytes = [0u8; 22];
        bytes[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        bytes[2..6].copy_from_slice(&qh.to_le_bytes());
        for j in 0..16 {
            bytes[6 + j] = j as u8 | ((15 - j as u8) << 4);
        }
        let block = BlockQ5_0::from_bytes(&bytes);
        assert_eq!(block.to_bytes(), bytes);
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        for (i, &x) in out.iter().enumerate() {
            let low = if i < 16 { i } else { 31 - i } as f32;
            let high = if qh >> i & 1 == 1 { 16.0 } else { 0.0 };
            assert_eq!(x, low + high - 16.0, "i = {i}");
        }
    }

    #[test]
    fn scale_applies_at_both_ends() {
        // d = -0.5 (0xb800): q = 0 -> 8.0, q = 31 -> -7.5.
        let block =
            BlockQ5_0 { d: 0xb800u16.to_le_bytes(), qh: [0, 0, 0xff, 0xff], qs: [0xf0; 16] };
        let mut out = [0f32; 32];
        block.dequantize(&mut out);
        assert!(out[..16].iter().all(|&x| x == 8.0));
        assert!(out[16..].iter().all(|&x| x == -7.5));
    }
}
