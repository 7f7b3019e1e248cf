//! AVX-512 group decoders, bit-identical to [`super::scalar::decode_group`].
//!
//! A packed quads chunk is already 16 rows by one 4-byte quad, the shape of a decoded
//! chunk, and the packer keeps ggml's byte order inside each quad. So every decoded chunk
//! comes from one or two packed chunks by bit operations within each byte (no byte moves
//! between lanes; IQ4_XS then maps nibbles through a `vpshufb` table):
//!
//! | format | packed chunk | decoded chunk (values `4j..4j + 4` of the group) |
//! |---|---|---|
//! | Q4_0, Q4_1 | qs `c` (0..4) | low nibbles `c`, high nibbles `4 + c` |
//! | Q8_0 | qs `c` (0..8) | `c`, each byte `^ 0x80` |
//! | Q4_K | qs `c` (0..32) | low `16(c/8) + c%8`, high `16(c/8) + 8 + c%8` |
//! | Q5_K | as Q4_K; qh `c` (0..8) | bit `t` of qh `c` is bit 4 of chunk `8t + c` |
//! | Q6_K | ql `c` (0..32) | low `32(c/16) + c%16`, high `32(c/16) + 16 + c%16` |
//! | Q6_K | qh `c` (0..16) | bits `2t, 2t+1` are bits 4, 5 of chunk `32(c/8) + 8t + c%8` |
//! | IQ4_XS | qs `c` (0..32) | low `8(c/4) + c%4`, high `8(c/4) + 4 + c%4`, then a `vpshufb` table |
//!
//! The per-row fields of 16 rows are contiguous: 16 f16 scales are one `vcvtph2ps`, and
//! the packed 6-bit (Q4_K/Q5_K) and 8-bit (Q6_K) sub-block scales are transposed to one
//! vector per sub-block with dword permutes. Scales and biases are computed with the same
//! f32 operations, in the same order, as the scalar decoder, so they are bit-equal.
//!
//! Each format is a [`Codec`] (in `codecs`): the decoded chunks of one sub-block and the
//! affine maps of one group, computed from the packed bytes into registers. Read by
//! sub-block, the table above says: Q4_0/Q4_1 and IQ4_XS sub-block `s` is the low then the
//! high nibbles of qs chunks `4s..4s + 4`; Q4_K/Q5_K sub-blocks `2t`, `2t + 1` are the low
//! and high nibbles of qs chunks `8t..8t + 8`; Q6_K's 16-value sub-block `s` takes chunks
//! `i = 4(s%2)..+4` of ql `16(s/8) + 8(t%2) + i` (high nibbles when `t >= 2`, with
//! `t = (s%8)/2`) and qh `8(s/8) + i`. [`decode_span`] stores them into a [`Decoded`];
//! the VNNI kernel's fused path hands them to `vpdpbusd` as they come.

mod codecs;

use core::arch::x86_64::{
    __m256i, __m512, __m512i, _mm256_loadu_si256, _mm512_add_epi32, _mm512_and_si512,
    _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmpeq_epi32_mask, _mm512_cvtepu16_epi32,
    _mm512_cvtph_ps, _mm512_loadu_si512, _mm512_mask_and_epi32, _mm512_set1_epi8,
    _mm512_set1_epi32, _mm512_setr4_epi32, _mm512_setzero_ps, _mm512_shuffle_epi8,
    _mm512_srai_epi32, _mm512_srli_epi16, _mm512_storeu_ps, _mm512_storeu_si512,
    _mm512_test_epi32_mask, _mm512_xor_si512,
};

pub(crate) use codecs::{Iq4Xs, Q4K, Q5K, Q6K, Q40, Q41, Q80};

use crate::formats::Format;
use crate::pack::PackedLayout;

use super::{Decoded, MAX_SUB_BLOCKS};

/// The affine maps of one group: scale and bias of each sub-block, for the 16 rows.
#[derive(Clone, Copy)]
pub(crate) struct Affine {
    /// Scale of sub-block `s` (entries past the format's sub-blocks are unused).
    pub scale: [__m512; MAX_SUB_BLOCKS],
    /// Bias of sub-block `s`.
    pub bias: [__m512; MAX_SUB_BLOCKS],
}

impl Affine {
    /// All zeros.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn zero() -> Self {
        Self {
            scale: [_mm512_setzero_ps(); MAX_SUB_BLOCKS],
            bias: [_mm512_setzero_ps(); MAX_SUB_BLOCKS],
        }
    }
}

/// One quantized format's group, decoded from its packed bytes into registers.
///
/// Implementations compute exactly what the scalar decoder does: the same bytes, and
/// scales and biases by the same f32 operations.
pub(crate) trait Codec {
    /// The format.
    const FORMAT: Format;
    /// Bytes of one group's quads in a panel (all 16 rows).
    const QUADS: usize;
    /// Bytes of one group's per-row data in a panel (all 16 rows).
    const PER_ROW: usize;
    /// Values per sub-block (one scale and bias each): 32, or 16 for Q6_K.
    const SUB_BLOCK: usize;
    /// Sub-blocks per group.
    const SUB_BLOCKS: usize;

    /// The decoded chunks of sub-block `s`: chunk `j` (`j < SUB_BLOCK / 4`) holds values
    /// `4j..4j + 4` of the sub-block, row `r` at bytes `4r..4r + 4` (chunk
    /// `s * SUB_BLOCK / 4 + j` of [`Decoded::u`]); the remaining entries are zero.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 F/BW/VL; `q` is readable for [`Self::QUADS`] bytes (one
    /// group's quads); `s < SUB_BLOCKS`.
    unsafe fn sub_block(q: *const u8, s: usize) -> [__m512i; 8];

    /// Writes the scale and bias of each sub-block `s < SUB_BLOCKS` to `out.scale[s]`,
    /// `out.bias[s]` (the rest of `out` is left as it is).
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 F/BW/VL; `p` is readable for [`Self::PER_ROW`] bytes (one
    /// group's per-row data).
    unsafe fn affine(p: *const u8, out: &mut Affine);
}

/// Runs `$body` with `$s` bound to each of `0..$n` in turn, as straight-line code (`$n`
/// at most 16, a constant after monomorphisation, e.g. [`Codec::SUB_BLOCKS`]), so that
/// every sub-block index is a constant: the codecs' index arithmetic folds away and the
/// decoded chunks and affine maps stay in registers.
macro_rules! for_each_sub_block {
    ($n:expr, |$s:ident| $body:block) => {
        for_each_sub_block!(@ $n, $s, $body, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@ $n:expr, $s:ident, $body:block, $($i:literal)*) => {
        const { assert!($n <= 16) };
        $(
            if $i < $n {
                let $s: usize = $i;
                $body
            }
        )*
    };
}
pub(crate) use for_each_sub_block;

/// Whether `panel` is a whole panel of `layout` and `F` is the layout's format with its
/// region sizes: then for every group `g < layout.groups()`, the `F::QUADS` bytes at
/// `layout.quads_offset(g)` and the `F::PER_ROW` bytes at `layout.per_row_offset(g)`
/// lie inside `panel`.
pub(crate) fn fits<F: Codec>(layout: &PackedLayout, panel: &[u8]) -> bool {
    panel.len() == layout.panel_bytes()
        && layout.format() == F::FORMAT
        && layout.quads_offset(1) == F::QUADS
        && layout.per_row_offset(1) - layout.per_row_offset(0) == F::PER_ROW
        && F::SUB_BLOCK * F::SUB_BLOCKS == F::FORMAT.block_values()
}

/// The 64 bytes at `p + at`.
///
/// # Safety
///
/// `p + at .. p + at + 64` is readable.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn ld(p: *const u8, at: usize) -> __m512i {
    // SAFETY: the caller's contract; the load is unaligned.
    unsafe { _mm512_loadu_si512(p.add(at).cast()) }
}

/// Stores decoded chunk `j` (`j < 64`).
#[inline]
#[target_feature(enable = "avx512f")]
fn st(out: &mut Decoded, j: usize, v: __m512i) {
    let d = &mut out.u[64 * j..64 * j + 64];
    // SAFETY: `d` is 64 writable bytes; the store is unaligned.
    unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), v) }
}

/// Stores `scale` and `bias` of sub-block `s` (`s < MAX_SUB_BLOCKS`).
#[inline]
#[target_feature(enable = "avx512f")]
fn st_affine(out: &mut Decoded, s: usize, scale: __m512, bias: __m512) {
    let (sc, bi) = (&mut out.scale[s], &mut out.bias[s]);
    // SAFETY: each destination is 16 writable f32.
    unsafe {
        _mm512_storeu_ps(sc.as_mut_ptr(), scale);
        _mm512_storeu_ps(bi.as_mut_ptr(), bias);
    }
}

/// The 16 little-endian f16 at `p + at .. p + at + 32`, widened exactly as
/// [`crate::formats::half::f16_to_f32`] does, NaN payloads included.
///
/// # Safety
///
/// Those 32 bytes are readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn f16x16(p: *const u8, at: usize) -> __m512 {
    // SAFETY: the caller's contract; the load is unaligned.
    let h: __m256i = unsafe { _mm256_loadu_si256(p.add(at).cast()) };
    let f = _mm512_castps_si512(_mm512_cvtph_ps(h));
    // `vcvtph2ps` sets the quiet bit of a signalling NaN; `f16_to_f32` keeps the payload
    // as it is. Clear f32 bit 22 again where the f16 is a NaN with bit 9 clear.
    let w = _mm512_cvtepu16_epi32(h);
    let payload = _mm512_test_epi32_mask(w, _mm512_set1_epi32(0x01ff));
    let quiet_clear = _mm512_and_si512(w, _mm512_set1_epi32(0x7e00));
    let snan = payload & _mm512_cmpeq_epi32_mask(quiet_clear, _mm512_set1_epi32(0x7c00));
    _mm512_castsi512_ps(_mm512_mask_and_epi32(f, snan, f, _mm512_set1_epi32(!0x0040_0000)))
}

/// `-x`, flipping the sign bit as the scalar `-` does (NaNs included).
#[inline]
#[target_feature(enable = "avx512f")]
fn neg(x: __m512) -> __m512 {
    let sign = _mm512_set1_epi32(i32::MIN);
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), sign))
}

/// Byte `j` (0..4) of every dword, zero extended (`j` must be below 4).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn byte_u(x: __m512i, j: i32) -> __m512i {
    // vpshufb indexes the bytes of each 16-byte lane: byte j of dword i is byte 4i + j.
    // Control bytes with bit 7 set give zero.
    let ctrl = _mm512_setr4_epi32(0, 4, 8, 12);
    _mm512_shuffle_epi8(x, _mm512_add_epi32(ctrl, _mm512_set1_epi32(0x8080_8000_u32 as i32 | j)))
}

/// Byte `j` (0..4) of every dword, sign extended.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn byte_i(x: __m512i, j: i32) -> __m512i {
    let ctrl = _mm512_setr4_epi32(0, 4 << 24, 8 << 24, 12 << 24);
    let top =
        _mm512_shuffle_epi8(x, _mm512_add_epi32(ctrl, _mm512_set1_epi32((j << 24) | 0x0080_8080)));
    _mm512_srai_epi32::<24>(top)
}

/// The low (`high == false`) or high nibble of every byte.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn nibble(v: __m512i, high: bool) -> __m512i {
    let v = if high { _mm512_srli_epi16::<4>(v) } else { v };
    _mm512_and_si512(v, _mm512_set1_epi8(0x0f))
}

/// Decodes groups `g..g + count` of `panel` into consecutive slots of `out` (group
/// `g + i` in chunks `i * group_values / 4..` and sub-blocks `i * SUB_BLOCKS..`). Groups
/// past the panel's or past the room in `out` are not decoded, nor is anything when
/// `panel` is not a whole panel of `layout` in `F`'s format.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn decode_groups<F: Codec>(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    count: usize,
    out: &mut Decoded,
) {
    if !fits::<F>(layout, panel) {
        return;
    }
    let (chunks, subs) = (F::SUB_BLOCK / 4, F::SUB_BLOCKS);
    let room = (MAX_SUB_BLOCKS / subs).min(out.u.len() / 64 / (subs * chunks));
    let rows = layout.per_row_offset(0);
    for slot in 0..count.min(room).min(layout.groups().saturating_sub(g)) {
        // `fits`: group g + slot's regions are at these offsets, inside the panel.
        let (qo, po) = ((g + slot) * F::QUADS, rows + (g + slot) * F::PER_ROW);
        let (Some(q), Some(p)) = (panel.get(qo..qo + F::QUADS), panel.get(po..po + F::PER_ROW))
        else {
            return;
        };
        for_each_sub_block!(F::SUB_BLOCKS, |s| {
            // SAFETY: `q` is the group's `QUADS` bytes and `s < SUB_BLOCKS`; AVX-512
            // F/BW/VL are enabled here.
            let w = unsafe { F::sub_block(q.as_ptr(), s) };
            for (j, v) in w.into_iter().take(chunks).enumerate() {
                st(out, (slot * subs + s) * chunks + j, v);
            }
        });
        let mut a = Affine::zero();
        // SAFETY: `p` is the group's `PER_ROW` bytes; AVX-512 F/BW/VL are enabled here.
        unsafe { F::affine(p.as_ptr(), &mut a) };
        for s in 0..subs {
            st_affine(out, slot * subs + s, a.scale[s], a.bias[s]);
        }
    }
}

#[cfg(test)]
/// Decodes group `g` of `panel` (one whole panel of `layout`, a quantized format) into
/// `out`, exactly as [`super::scalar::decode_group`]: the first `group_values / 4` chunks
/// of `u` and the first `group_values / sub_block` scales and biases; the rest of `out`
/// is left as it is. Does nothing for F16/BF16, an out-of-range group or a `panel` that
/// is not a whole panel of `layout`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn decode_group(layout: &PackedLayout, panel: &[u8], g: usize, out: &mut Decoded) {
    decode_span(layout, panel, g, 1, out);
}

/// Decodes groups `g..g + count` into consecutive places of `out`: for the 32-value
/// formats up to 8 groups (group `g + i` in chunks `8i..8i + 8` and sub-block `i`), for
/// the 256-value formats one. Extra groups (past the panel or the 256 values) are not
/// decoded.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn decode_span(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    count: usize,
    out: &mut Decoded,
) {
    // One group of the 256-value formats, up to 8 of the others (as many as fit).
    match layout.format() {
        Format::Q4_0 => decode_groups::<Q40>(layout, panel, g, count, out),
        Format::Q4_1 => decode_groups::<Q41>(layout, panel, g, count, out),
        Format::Q8_0 => decode_groups::<Q80>(layout, panel, g, count, out),
        Format::Q4_K => decode_groups::<Q4K>(layout, panel, g, count, out),
        Format::Q5_K => decode_groups::<Q5K>(layout, panel, g, count, out),
        Format::Q6_K => decode_groups::<Q6K>(layout, panel, g, count, out),
        Format::IQ4_XS => decode_groups::<Iq4Xs>(layout, panel, g, count, out),
        _ => {}
    }
}
