//! IQ1_M (1.75 bits per value): 256 values per 56-byte block, 32 11-bit indices (8 bits in
//! `qs`, 3 in a `qh` nibble) into IQ1_S's grid of 2048 eight-value vectors of -1, 0, 1, a
//! `delta` sign per eight values (bit 3 of the `qh` nibble), a 3-bit scale `ls` per 16
//! values and an f16 scale `d` whose four nibbles are the top nibbles of the four `u16`
//! of `scales`: `x = d * (2 ls + 1) * (grid + delta)`, `delta` ±1/8.

use super::field::{Field, per_row, quads};
use super::iq1_s::grid1;
use super::spec::{AffineBlock, FormatSpec, QuantizedSpec};
use super::{Format, for_each_block};
use super::{QK_K, half, put, take};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One IQ1_M block as stored by ggml (`block_iq1_m`): 56 bytes for 256 values.
///
/// Value `8q + k` (`q` < 32, `k` < 8) is value `k` of IQ1_S's grid entry
/// `qs[q] | (n & 7) << 8`, `n` nibble `q % 2` of `qh[q / 2]` (the low one first), with
/// `delta = -1/8` where bit 3 of `n` is set, else `1/8`. With `sc[w]` the `u16` at
/// `scales[2w..]`, sub-block `b` (values `16b..16b + 16`) has `ls = (sc[b / 4] >> 3 (b % 4))
/// & 7` and `d`'s f16 bits are `sc[w] >> 12` at bits `4w..4w + 4`.
#[allow(non_camel_case_types)] // ggml's name.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIQ1_M {
    /// The low 8 bits of the 32 grid indices, one per eight values.
    pub qs: [u8; 32],
    /// Per eight values a nibble: three high index bits and the delta sign.
    pub qh: [u8; 16],
    /// Four little-endian `u16`: four 3-bit scales each, and one nibble of `d` on top.
    pub scales: [u8; 8],
}

const _: () = assert!(size_of::<BlockIQ1_M>() == BlockIQ1_M::BYTES);
const _: () = assert!(align_of::<BlockIQ1_M>() == 1);

impl BlockIQ1_M {
    /// Bytes per block.
    pub const BYTES: usize = 56;
    /// Values per block.
    pub const VALUES: usize = QK_K;

    /// Parses one block from its bytes.
    pub const fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self { qs: take(bytes, 0), qh: take(bytes, 32), scales: take(bytes, 48) }
    }

    /// The block's bytes, as in a GGUF file.
    pub const fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        put(&mut out, 0, &self.qs);
        put(&mut out, 32, &self.qh);
        put(&mut out, 48, &self.scales);
        out
    }

    /// `u16` `w` (0..4) of `scales`.
    const fn sc(&self, w: usize) -> u16 {
        let w = w % 4;
        u16::from_le_bytes([self.scales[2 * w], self.scales[2 * w + 1]])
    }

    /// The f16 bits of `d`: the top nibble of `sc[w]` at bits `4w..4w + 4`.
    pub const fn d_bits(&self) -> u16 {
        (self.sc(0) >> 12)
            | ((self.sc(1) >> 8) & 0x00f0)
            | ((self.sc(2) >> 4) & 0x0f00)
            | (self.sc(3) & 0xf000)
    }

    /// The scale `d` as `f32`.
    pub const fn d(&self) -> f32 {
        half::f16_to_f32(self.d_bits())
    }

    /// The 3-bit scale `ls` of sub-block `b` (0..16, 16 values each).
    pub const fn ls(&self, b: usize) -> u16 {
        (self.sc(b / 4) >> (3 * (b % 4))) & 7
    }

    /// The `qh` nibble of index `q` (0..32).
    const fn nib(&self, q: usize) -> u8 {
        (self.qh[(q % 32) / 2] >> (4 * (q % 2))) & 0x0f
    }

    /// The 256 grid values plus one (`g + 1`, 0..=2), in value order (layout on
    /// [`BlockIQ1_M`]).
    pub const fn grid_values(&self) -> [u8; Self::VALUES] {
        let mut v = [0u8; Self::VALUES];
        let mut i = 0;
        while i < Self::VALUES {
            let q = i / 8;
            v[i] = grid1(self.qs[q] as usize | ((self.nib(q) & 7) as usize) << 8, i % 8);
            i += 1;
        }
        v
    }

    /// The sub-block scale `dl = d * (2 ls + 1)` (gguf-py: the integer times the f32 `d`).
    fn dl(&self, b: usize) -> f32 {
        self.d() * f32::from(2 * self.ls(b) + 1)
    }

    /// Whether `delta` of index `q` is `-1/8` (else `1/8`).
    const fn delta_negative(&self, q: usize) -> bool {
        self.nib(q) & 8 != 0
    }

    /// Dequantizes the block: `out[i] = dl * (g + delta)` (gguf-py's f32 operations).
    pub fn dequantize(&self, out: &mut [f32; Self::VALUES]) {
        let v = self.grid_values();
        for (i, o) in out.iter_mut().enumerate() {
            let g = f32::from(v[i]) - 1.0;
            let delta = if self.delta_negative(i / 8) { -0.125 } else { 0.125 };
            *o = self.dl(i / 16) * (g + delta);
        }
    }
}

impl FormatSpec for BlockIQ1_M {
    const FORMAT: Format = Format::IQ1_M;
    const BLOCK_VALUES: usize = Self::VALUES;
    const BLOCK_BYTES: usize = Self::BYTES;
    /// `qs` and `qh` as quads (qs chunk `c`: the low index bits of values
    /// `32c..32c + 32`; qh chunk `c`: the nibbles of values `64c..64c + 64`); `scales`
    /// (with `d`) per row.
    const FIELDS: &'static [Field] = &[quads(0, 32), quads(32, 16), per_row(48, 8)];
    /// The four `u16` whose top nibbles make `d`: a moderate f16 in each gives a moderate
    /// `d` (and valid 3-bit scales below it).
    const F16_SCALES: &'static [usize] = &[48, 50, 52, 54];
    /// IQ1_S's threshold (19, itself TQ1_0's), taken from that format (the same grid),
    /// not measured: the development host had no AMX.
    const AMX_MIN_ROWS: usize = 19;

    fn dequantize_blocks(src: &[u8], dst: &mut [f32]) {
        for_each_block(src, dst, |s, d| Self::from_bytes(s).dequantize(d));
    }
}

impl QuantizedSpec for BlockIQ1_M {
    const SUB_BLOCK: usize = 16;

    /// `u = 8 (g + 1) + 1 + 8 delta` (0, 2, 8, 10, 16 or 18), scale `dl * 0.125`, bias
    /// `scale * -9` in each of the 16 sub-blocks of 16 (the delta changes every eight
    /// values, so it is in `u`): the scale has at most 15 significant bits and `u` 5, so
    /// `scale * u`, the bias and their sum are exact and equal `dl * (g + delta)`.
    fn decode(block: &[u8], out: &mut AffineBlock) {
        let Some(b) = block.first_chunk() else { return };
        let b = Self::from_bytes(b);
        for (i, (u, g1)) in out.u.iter_mut().zip(b.grid_values()).enumerate() {
            *u = 8 * g1 + if b.delta_negative(i / 8) { 0 } else { 2 };
        }
        for s in 0..Self::VALUES / Self::SUB_BLOCK {
            let scale = b.dl(s) * 0.125;
            (out.scale[s], out.bias[s]) = (scale, scale * -9.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(d: u16) -> BlockIQ1_M {
        let mut scales = [0u8; 8];
        for w in 0..4 {
            let low = (w as u16 * 0x0567 + 0x0a3c) & 0x0fff;
            let sc = low | ((d >> (4 * w)) & 0xf) << 12;
            scales[2 * w..2 * w + 2].copy_from_slice(&sc.to_le_bytes());
        }
        BlockIQ1_M {
            qs: core::array::from_fn(|i| (i * 37 + 11) as u8),
            qh: core::array::from_fn(|i| (i * 91 + 5) as u8),
            scales,
        }
    }

    #[test]
    fn value_positions_and_scales() {
        let b = block(0x3c00);
        let bytes = b.to_bytes();
        assert_eq!((&bytes[32..48], &bytes[48..]), (&b.qh[..], &b.scales[..]));
        assert_eq!(BlockIQ1_M::from_bytes(&bytes), b);
        assert_eq!((b.d_bits(), b.d()), (0x3c00, 1.0));
        // Sub-block 13: ls bits 3..6 of sc[3].
        let sc3 = u16::from_le_bytes([b.scales[6], b.scales[7]]);
        assert_eq!(b.ls(13), sc3 >> 3 & 7);
        // Value 8 * 21 + 6 = 174: entry qs[21] | (qh[10] >> 4 & 7) << 8, value 6, the
        // delta sign in bit 7 of qh[10]; sub-block 10.
        let idx = usize::from(b.qs[21]) | usize::from(b.qh[10] >> 4 & 7) << 8;
        assert_eq!(b.grid_values()[174], grid1(idx, 6));
        let delta = if b.qh[10] & 0x80 != 0 { -0.125 } else { 0.125 };
        let sc2 = u16::from_le_bytes([b.scales[4], b.scales[5]]);
        let dl = f32::from(2 * (sc2 >> 6 & 7) + 1);
        let mut out = [0f32; 256];
        b.dequantize(&mut out);
        assert_eq!(out[174], dl * (f32::from(grid1(idx, 6)) - 1.0 + delta));
    }

    #[test]
    fn decoded_form_is_exact() {
        for h in [0x0001u16, 0x03ff, 0x0400, 0x3555, 0x3c00, 0xc7ff, 0x7bff] {
            let b = block(h);
            let mut a = AffineBlock::new();
            BlockIQ1_M::decode(&b.to_bytes(), &mut a);
            let mut want = [0f32; 256];
            b.dequantize(&mut want);
            for (i, w) in want.iter().enumerate() {
                let s = i / 16;
                assert_eq!(a.scale[s] * f32::from(a.u[i]) + a.bias[s], *w, "d {h:#x} i {i}");
            }
        }
    }
}
