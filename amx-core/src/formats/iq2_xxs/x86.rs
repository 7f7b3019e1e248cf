//! IQ2_XXS's AVX-512 decoder. Packed qs chunk `2s` holds the four grid indices of
//! sub-block `s` (byte `k` of a row's dword for values `8k..8k + 8`), chunk `2s + 1` its
//! `aux` word. Decoded chunks `2k` and `2k + 1` of the sub-block are values `0..4` and
//! `4..8` of grid entry `k`: the 16 rows' compressed entries come from one `vpgatherdd`
//! (the 2-bit indices of eight values in 16 bits, [`IQ2XXS_GRID`]); the indices of four
//! values go to their bytes by a `vpshufb` and a `vpsrlvw`, a `vpshufb` table maps them to
//! `43 + grid` and a masked subtract from 86 applies the signs. Sign bit 7 (the parity of
//! the seven stored bits) is folded from the `aux` word in registers.
//!
//! With VBMI ([`Codec::sub_block_vbmi`]) the grid is two 256-byte planes, the low and
//! the high bytes of the compressed entries: one [`lookup256`] per plane takes the 64
//! indices of chunk `2s` at once (four `vpermi2b` in all, for four gathers), leaving
//! entry `k`'s bytes at byte `k` of each row's dword, where [`expand`] reads them.
//!
//! The sub-block scales are the top four bits of the `aux` words, in the quads: this
//! format implements [`Codec::affine_with`].

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_add_ps, _mm512_and_si512, _mm512_cvtepi32_ps,
    _mm512_i32gather_epi32, _mm512_mask_sub_epi8, _mm512_mul_ps, _mm512_multishift_epi64_epi8,
    _mm512_permutex2var_epi8, _mm512_set1_epi8, _mm512_set1_epi32, _mm512_set1_epi64,
    _mm512_set1_ps, _mm512_setr4_epi32, _mm512_setzero_si512, _mm512_shuffle_epi8,
    _mm512_slli_epi32, _mm512_srli_epi32, _mm512_srlv_epi16, _mm512_srlv_epi32,
    _mm512_ternarylogic_epi32, _mm512_test_epi8_mask, _mm512_xor_si512,
};

use super::{BlockIQ2_XXS, IQ2XXS_GRID, ksigns};
use crate::formats::codec::{Affine, Codec, Plane, byte_u, f16x16, ld, lookup256, plane};

/// A grid with one more entry after it, so that a 4-byte gather at the last entry reads
/// inside the table.
pub(in crate::formats) const fn padded<const N: usize, const M: usize>(g: &[u16; N]) -> [u16; M] {
    let mut t = [0u16; M];
    let mut i = 0;
    while i < N && i < M {
        t[i] = g[i];
        i += 1;
    }
    t
}

/// [`IQ2XXS_GRID`], padded for [`grid_entries`].
static GRID: [u16; 257] = padded(&IQ2XXS_GRID);

/// The compressed grid entries of the 16 dword indices `idx`, each in the low 16 bits of
/// its dword (the high 16 bits hold the next entry).
///
/// # Safety
///
/// `table` is readable for `2 * (i + 2)` bytes for every index `i` of `idx`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::formats) unsafe fn grid_entries(table: *const u16, idx: __m512i) -> __m512i {
    // SAFETY: the caller's contract: each 4-byte read at `table + 2 i` is inside.
    unsafe { _mm512_i32gather_epi32::<2>(idx, table.cast()) }
}

/// The low bytes of [`IQ2XXS_GRID`]'s entries (values 0..4), for [`lookup256`].
static LOW: Plane<256> = plane::<256, false>(&IQ2XXS_GRID);
/// The high bytes (values 4..8).
static HIGH: Plane<256> = plane::<256, true>(&IQ2XXS_GRID);

/// `43 + grid value` for the grid index in the low 4 bits of a byte, as [`expand`]
/// places them: 0, 1, 2 (3: 43 as the scalar decoder reads it), or 4 and 8 (12) for the
/// indices left in bits 2..4.
static LUT: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = match i % 16 {
            0 => 51,
            1 | 4 => 68,
            2 | 3 | 8 | 12 => 86,
            _ => 0,
        };
        i += 1;
    }
    t
};

/// The four values of the compressed grid entry byte `h` (< 4) of each dword of `e`
/// (the low byte of an entry: values 0..4, the high byte: values 4..8) in the decoded form
/// `43 ± grid`: byte `j` of a dword is the entry byte's value `j`, minus where bit `j` of
/// the dword's `signs` is set (the bits above 3 are not read).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(in crate::formats) fn expand(e: __m512i, h: i32, signs: __m512i) -> __m512i {
    expand_signs(e, h, signs, 0, false)
}

/// The eight signs of values `4..8` of a grid entry: `y`'s bits 4..7 and, as bit 3,
/// the parity of bits 0..7 (ggml's `ksigns`); `y` is the sign index in the low 7 bits
/// (the bits above are not read).
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::formats) fn high_signs(y: __m512i) -> __m512i {
    let t = _mm512_and_si512(y, _mm512_set1_epi32(0x7f));
    let t = _mm512_xor_si512(t, _mm512_srli_epi32::<4>(t));
    let t = _mm512_xor_si512(t, _mm512_srli_epi32::<2>(t));
    let t = _mm512_xor_si512(t, _mm512_srli_epi32::<1>(t));
    // (y >> 4) & 7 | (parity << 3) & 8 (select by the mask 7).
    _mm512_ternarylogic_epi32::<0xe4>(
        _mm512_srli_epi32::<4>(y),
        _mm512_slli_epi32::<3>(t),
        _mm512_set1_epi32(7),
    )
}

/// ggml's `ksigns_iq2xs` as a table for `vpermi2b`: [`ksigns`] of every 7-bit sign
/// index, the eight signs of a grid entry's values.
static KSIGNS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = ksigns(i as u8);
        i += 1;
    }
    t
};

/// IQ2_XXS's sign index positions for [`sign_bytes`]: entry `k`'s in bits `7k..7k + 7`
/// of each row's `aux` word (per qword, two rows: bits 0, 7, 14, 21, then 32, 39, 46, 53).
pub(in crate::formats) const AUX_SIGNS: i64 = 0x352e_2720_150e_0700;

/// The sign bytes of grid entries: the sign index of byte `j` of each qword of `a` starts
/// at bit `at >> 8j & 63` of the qword (two rows' dwords; [`AUX_SIGNS`] for IQ2_XXS),
/// and byte `j` of the result is its eight signs from ggml's `ksigns` table. One
/// `vpmultishiftqb` moves each index to its byte, one `vpermi2b` looks the 128-entry table
/// up (the index's bit 7 is not read).
///
/// # Safety
///
/// The CPU has AVX-512 VBMI.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(in crate::formats) unsafe fn sign_bytes(a: __m512i, at: i64) -> __m512i {
    let idx = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(at), a);
    // SAFETY: the table is 128 bytes.
    let (t0, t1) = unsafe { (ld(KSIGNS.as_ptr(), 0), ld(KSIGNS.as_ptr(), 64)) };
    _mm512_permutex2var_epi8(t0, idx, t1)
}

/// The four values of the compressed grid entry byte `h` (< 4) of each dword of `e` in
/// the decoded form `43 ± grid` (byte `j` of a dword is the entry byte's value `j`), minus
/// where the sign bit is set: byte `k` (< 4) of each dword of `signs` ([`sign_bytes`]),
/// its bits 0..4 for the low byte of an entry (`high` false), bits 4..8 for the high byte.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(in crate::formats) fn expand_signs(
    e: __m512i,
    h: i32,
    signs: __m512i,
    k: i32,
    high: bool,
) -> __m512i {
    let lanes = _mm512_setr4_epi32(0, 0x0404_0404, 0x0808_0808, 0x0c0c_0c0c);
    let at = _mm512_add_epi32(lanes, _mm512_set1_epi32(0x0101_0101 * h));
    let b = _mm512_shuffle_epi8(e, at);
    let b = _mm512_srlv_epi16(b, _mm512_set1_epi32(0x0004_0000));
    let idx = _mm512_and_si512(b, _mm512_set1_epi32(0x0c03_0c03));
    // SAFETY: the table is 64 bytes.
    let u = _mm512_shuffle_epi8(unsafe { ld(LUT.as_ptr(), 0) }, idx);
    // Sign byte k to the four bytes, then bit j (or 4 + j) of byte j.
    let sp =
        _mm512_shuffle_epi8(signs, _mm512_add_epi32(lanes, _mm512_set1_epi32(0x0101_0101 * k)));
    let bits = if high { 0x8040_2010_u32 as i32 } else { 0x0804_0201 };
    let minus = _mm512_test_epi8_mask(sp, _mm512_set1_epi32(bits));
    _mm512_mask_sub_epi8(u, minus, _mm512_set1_epi8(86), u)
}

/// IQ2_XXS: `u = 43 ± grid`, scale `db`, bias `db * -43`.
impl Codec for BlockIQ2_XXS {
    const QUADS: usize = 1024;
    const PER_ROW: usize = 32;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        let mut w = [_mm512_setzero_si512(); 8];
        // SAFETY: chunks 2s and 2s + 1 < 16 for s < 8 (the caller's contract: the group's
        // 1024 quads bytes).
        let (g, a) = unsafe { (ld(q, 128 * s), ld(q, 128 * s + 64)) };
        for k in 0..4 {
            // SAFETY: the indices are bytes (< 256) and GRID has 257 entries.
            let e = unsafe { grid_entries(GRID.as_ptr(), byte_u(g, k as i32)) };
            let y = _mm512_srlv_epi32(a, _mm512_set1_epi32(7 * k as i32));
            w[2 * k] = expand(e, 0, y);
            w[2 * k + 1] = expand(e, 1, high_signs(y));
        }
        w
    }

    const VBMI: bool = true;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    unsafe fn sub_block_vbmi(q: *const u8, _p: *const u8, s: usize) -> [__m512i; 8] {
        let mut w = [_mm512_setzero_si512(); 8];
        // SAFETY: chunks 2s and 2s + 1 < 16 for s < 8 (the caller's contract: the group's
        // 1024 quads bytes).
        let (g, a) = unsafe { (ld(q, 128 * s), ld(q, 128 * s + 64)) };
        // SAFETY: each plane is 256 bytes; every byte of `g` is an index.
        let (lo, hi) = unsafe { (lookup256(LOW.0.as_ptr(), g), lookup256(HIGH.0.as_ptr(), g)) };
        // SAFETY: the table is 128 bytes.
        let signs = unsafe { sign_bytes(a, AUX_SIGNS) };
        for k in 0..4 {
            w[2 * k] = expand_signs(lo, k as i32, signs, k as i32, false);
            w[2 * k + 1] = expand_signs(hi, k as i32, signs, k as i32, true);
        }
        w
    }

    /// Not called for this format (the scales are in the quads: [`Self::affine_with`]);
    /// leaves `out` as it is.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(_p: *const u8, _out: &mut Affine) {}

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine_with(q: *const u8, p: *const u8, out: &mut Affine) {
        // SAFETY: the 16 `d` are the group's 32 per-row bytes (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        for s in 0..Self::SUB_BLOCKS {
            // SAFETY: chunk 2s + 1 < 16 (the caller's contract: 1024 quads bytes).
            let a = unsafe { ld(q, 128 * s + 64) };
            let ls = _mm512_cvtepi32_ps(_mm512_srli_epi32::<28>(a));
            let db = _mm512_mul_ps(
                _mm512_mul_ps(d, _mm512_add_ps(_mm512_set1_ps(0.5), ls)),
                _mm512_set1_ps(0.25),
            );
            out.scale[s] = db;
            out.bias[s] = _mm512_mul_ps(db, _mm512_set1_ps(-43.0));
        }
    }
}
