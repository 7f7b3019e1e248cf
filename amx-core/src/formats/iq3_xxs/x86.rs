//! IQ3_XXS's AVX-512 decoder. Decoded chunk `j` of sub-block `s` (values `32s + 4j ..
//! 32s + 4j + 4`) is one grid entry per row: its index is byte `j % 4` of qs chunk
//! `2s + j / 4`, and the four magnitudes come from `IQ3XXS_GRID` by one `vpgatherdd`
//! (the 1 KiB table does not fit a register form). The signs are the row's `aux` of the
//! sub-block (a per-row field: one `vpgatherdd` over the 16 rows' 32-byte scales), whose
//! 7-bit sign index plus its parity (shifts and xors in registers) gives 8 sign bits; the
//! four of the chunk are spread to its bytes by a multiply and tested into a mask:
//! `u = 62 + g`, or `62 - g` under the mask.
//!
//! With VBMI ([`Codec::sub_block_vbmi`]) each entry's four magnitudes (eight levels) are
//! compressed to 3-bit codes, 12 bits, in two 256-byte planes (low and high byte): one
//! [`lookup256`] per plane takes the 64 indices of a qs chunk at once (eight `vpermi2b`
//! per sub-block, for eight gathers); [`magnitudes`] then brings one entry per row
//! together (`vpermt2b`), splits the codes (`vpmultishiftqb`) and maps them to their
//! levels (`vpermb`).

use core::arch::x86_64::{
    __m512i, _mm512_add_epi8, _mm512_add_epi32, _mm512_add_ps, _mm512_and_si512,
    _mm512_cvtepi32_ps, _mm512_i32gather_epi32, _mm512_mask_blend_epi32, _mm512_mask_sub_epi8,
    _mm512_mul_ps, _mm512_mullo_epi32, _mm512_multishift_epi64_epi8, _mm512_or_si512,
    _mm512_permutex2var_epi8, _mm512_permutex2var_epi32, _mm512_permutexvar_epi8, _mm512_set1_epi8,
    _mm512_set1_epi32, _mm512_set1_epi64, _mm512_set1_ps, _mm512_setr_epi32, _mm512_setr4_epi32,
    _mm512_setzero_si512, _mm512_shuffle_epi8, _mm512_slli_epi32, _mm512_srli_epi32,
    _mm512_srlv_epi32, _mm512_ternarylogic_epi32, _mm512_test_epi8_mask, _mm512_xor_si512,
};

use super::{BlockIQ3_XXS, IQ3XXS_GRID};
use crate::formats::codec::{Affine, Codec, Plane, byte_u, f16x16, ld, lookup256, plane};
use crate::formats::iq2_xxs::x86::{AUX_SIGNS, sign_bytes};

/// Offset of the 16 rows' 32-byte `scales` in the per-row data (after the 16 `d`).
const SCALES: usize = 32;

/// The `aux` `u32` of sub-block `s` of each of the 16 rows (row `r` at dword `r`): a
/// column of the 16 x 8 dwords of the rows' scales, by four two-source permutes of the
/// eight 64-byte loads (two rows each) and three blends. (A `vpgatherdd` of the column
/// costs 16 loads, and the kernels read each column twice per group.)
///
/// # Safety
///
/// `p` is readable for the format's `PER_ROW` bytes; `s < 8`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn aux(p: *const u8, s: usize) -> __m512i {
    let s = _mm512_set1_epi32((s % 8) as i32);
    // SAFETY: rows 2i, 2i + 1's scales are the 64 bytes at SCALES + 64i, i < 8: inside the
    // 544 per-row bytes.
    let l = unsafe {
        [
            ld(p, SCALES),
            ld(p, SCALES + 64),
            ld(p, SCALES + 128),
            ld(p, SCALES + 192),
            ld(p, SCALES + 256),
            ld(p, SCALES + 320),
            ld(p, SCALES + 384),
            ld(p, SCALES + 448),
        ]
    };
    // Rows 4k..4k + 4 are dwords s, 8 + s of l[2k] and l[2k + 1] (s + 16, s + 24 of the
    // pair). One index puts them at lanes 4k..4k + 4 for every k (each permute's other
    // lanes are not used).
    let idx = _mm512_add_epi32(_mm512_setr4_epi32(0, 8, 16, 24), s);
    let col = |k: usize| _mm512_permutex2var_epi32(l[2 * k], idx, l[2 * k + 1]);
    let q = [col(0), col(1), col(2), col(3)];
    let r = _mm512_mask_blend_epi32(0x00f0, q[0], q[1]);
    let r = _mm512_mask_blend_epi32(0x0f00, r, q[2]);
    _mm512_mask_blend_epi32(0xf000, r, q[3])
}

/// The 8 sign bits `ksigns(x)` of the low 7 bits of each dword: the seven bits and their
/// parity as bit 7.
#[inline]
#[target_feature(enable = "avx512f")]
fn ksigns(x: __m512i) -> __m512i {
    let i = _mm512_and_si512(x, _mm512_set1_epi32(127));
    let t = _mm512_xor_si512(i, _mm512_srli_epi32::<4>(i));
    let t = _mm512_xor_si512(t, _mm512_srli_epi32::<2>(t));
    let t = _mm512_xor_si512(t, _mm512_srli_epi32::<1>(t));
    let parity = _mm512_slli_epi32::<7>(_mm512_and_si512(t, _mm512_set1_epi32(1)));
    _mm512_or_si512(i, parity)
}

/// Grid entries of four byte magnitudes, each one of `levels`, as 3-bit codes (the level
/// of magnitude `k` at bits `3k..3k + 3`). A magnitude outside `levels` fails the build
/// (the tables are statics).
pub(in crate::formats) const fn codes3<const N: usize>(
    grid: &[u32; N],
    levels: &[u8; 8],
) -> [u16; N] {
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        let mut k = 0;
        while k < 4 {
            let m = (grid[i] >> (8 * k)) as u8;
            let mut c = 0;
            while c < 8 && levels[c] != m {
                c += 1;
            }
            assert!(c < 8, "a grid magnitude outside the levels");
            out[i] |= (c as u16) << (3 * k);
            k += 1;
        }
        i += 1;
    }
    out
}

/// The `vpermb` table of [`signed_magnitudes`]: entry `i < 64` is `base + levels[i % 8]`,
/// or `base - levels[i % 8]` where bit 3 of `i` (the sign) is set, whatever bits 4, 5
/// hold (wrapping, as the byte arithmetic of [`signed_bytes`]).
pub(in crate::formats) const fn signed_levels64(levels: &[u8; 8], base: u8) -> Plane<64> {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        let m = levels[i % 8];
        t[i] = if i & 8 != 0 { base.wrapping_sub(m) } else { base.wrapping_add(m) };
        i += 1;
    }
    Plane(t)
}

/// The magnitude levels of [`IQ3XXS_GRID`].
const LEVELS: [u8; 8] = [4, 12, 20, 28, 36, 44, 52, 62];
/// [`IQ3XXS_GRID`] as 3-bit codes.
const CODES: [u16; 256] = codes3(&IQ3XXS_GRID, &LEVELS);
/// The low bytes of [`CODES`], for [`lookup256`].
static LOW: Plane<256> = plane::<256, false>(&CODES);
/// The high bytes of [`CODES`].
static HIGH: Plane<256> = plane::<256, true>(&CODES);
/// `62 ± LEVELS` for [`signed_magnitudes`].
static LEVELS64: Plane<64> = signed_levels64(&LEVELS, 62);

/// The four values of the entry whose 12-bit code is byte `k` (< 4) of each dword of
/// `lo` (its low byte) and `hi` (its high byte), byte `i` of the dword value `i`, signed
/// as decoded chunk `j` of a sub-block whose 32 sign bits are each row's dword of `signs`
/// (bits `4j..4j + 4`, as [`signed_bytes`] reads them): `base ± level` by `table` (a
/// [`signed_levels64`] table), the sign bit joined to the 3-bit level code as the index's
/// bit 3. The same bytes as [`signed_bytes`] of the magnitudes, in five instructions
/// instead of seven.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(in crate::formats) fn signed_magnitudes(
    (lo, hi): (__m512i, __m512i),
    k: i32,
    (signs, j): (__m512i, usize),
    table: __m512i,
) -> __m512i {
    // Row r's code to bytes 0, 1 of its dword (and again to bytes 2, 3): byte 4r + k of
    // `lo` (index 4r + k) and of `hi` (index 64 + 4r + k).
    let rows = _mm512_setr_epi32(
        0,
        0x0404_0404,
        0x0808_0808,
        0x0c0c_0c0c,
        0x1010_1010,
        0x1414_1414,
        0x1818_1818,
        0x1c1c_1c1c,
        0x2020_2020,
        0x2424_2424,
        0x2828_2828,
        0x2c2c_2c2c,
        0x3030_3030,
        0x3434_3434,
        0x3838_3838,
        0x3c3c_3c3c,
    );
    let ctrl = _mm512_add_epi32(rows, _mm512_set1_epi32(0x4000_4000 + 0x0101_0101 * k));
    let e = _mm512_permutex2var_epi8(lo, ctrl, hi);
    // Byte i of each dword: bits 3i.. of the code (qword bit offsets 0, 3, 6, 9 for the
    // low dword, 32 more for the high one).
    let codes = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(0x2926_2320_0906_0300), e);
    // Byte i of row r's dword: sign bit 4j + i of the row at bit 3, from the qword bit
    // offset 32 (r % 2) + 4j + i - 3 (mod 64).
    let at = |byte: i64| (32 * (byte / 4) + 4 * j as i64 + byte % 4 + 61) % 64;
    let sctrl = (0..8).fold(0i64, |c, byte| c | (at(byte) << (8 * byte)));
    let sign = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(sctrl), signs);
    // Bits 0..3 from the codes, the rest from the signs (vpermb reads bits 0..6; the
    // table ignores bits 4, 5).
    let idx = _mm512_ternarylogic_epi32::<0xe4>(codes, sign, _mm512_set1_epi8(7));
    _mm512_permutexvar_epi8(idx, table)
}

/// `62 + g`, or `62 - g` where the sign of the value is set, for decoded chunk `j` of the
/// sub-block whose rows' `aux` words are `aux`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn signed(g: __m512i, aux: __m512i, j: usize) -> __m512i {
    let base = _mm512_set1_epi8(62);
    let signs = ksigns(_mm512_srlv_epi32(aux, _mm512_set1_epi32(7 * (j / 2) as i32)));
    let nib = _mm512_and_si512(
        _mm512_srlv_epi32(signs, _mm512_set1_epi32(4 * (j % 2) as i32)),
        _mm512_set1_epi32(0xf),
    );
    // Sign bit k of the nibble into byte k, tested against bit k.
    let spread = _mm512_mullo_epi32(nib, _mm512_set1_epi32(0x0101_0101));
    let neg = _mm512_test_epi8_mask(spread, _mm512_set1_epi32(0x0804_0201));
    _mm512_mask_sub_epi8(_mm512_add_epi8(base, g), neg, base, g)
}

/// `base + g`, or `base - g` where the value's sign bit is set, for decoded chunk `j` of
/// a sub-block whose 32 sign bits are each row's dword of `signs` (bits `4j..4j + 4` for
/// chunk `j`, as [`sign_bytes`] of IQ3_XXS's `aux` and IQ3_S's signs chunk hold them): a
/// byte shuffle and a test (no multiply to spread the bits).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(in crate::formats) fn signed_bytes(g: __m512i, signs: __m512i, j: usize, base: i8) -> __m512i {
    let base = _mm512_set1_epi8(base);
    let lanes = _mm512_setr4_epi32(0, 0x0404_0404, 0x0808_0808, 0x0c0c_0c0c);
    let at = _mm512_add_epi32(lanes, _mm512_set1_epi32(0x0101_0101 * (j / 2) as i32));
    // Sign byte j / 2 to the four bytes, then bit k (or 4 + k) of byte k.
    let spread = _mm512_shuffle_epi8(signs, at);
    let bits = if j.is_multiple_of(2) { 0x0804_0201 } else { 0x8040_2010_u32 as i32 };
    let neg = _mm512_test_epi8_mask(spread, _mm512_set1_epi32(bits));
    _mm512_mask_sub_epi8(_mm512_add_epi8(base, g), neg, base, g)
}

/// IQ3_XXS: `u = 62 + grid * sign`, scale `db`, bias `db * -62`.
impl Codec for BlockIQ3_XXS {
    const QUADS: usize = 1024;
    const PER_ROW: usize = 544;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        let s = s % 8;
        // SAFETY: the caller's contract (`p` readable for PER_ROW bytes), s < 8.
        let aux = unsafe { aux(p, s) };
        let mut w = [_mm512_setzero_si512(); 8];
        for (j, wj) in w.iter_mut().enumerate() {
            // SAFETY: chunk 2s + j / 4 < 16 lies in the group's 1024 quads bytes.
            let chunk = unsafe { ld(q, 64 * (2 * s + j / 4)) };
            let idx = byte_u(chunk, (j % 4) as i32);
            // SAFETY: every index is a byte (< 256), an entry of the 256-entry table.
            let g = unsafe { _mm512_i32gather_epi32::<4>(idx, IQ3XXS_GRID.as_ptr().cast()) };
            *wj = signed(g, aux, j);
        }
        w
    }

    const VBMI: bool = true;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    unsafe fn sub_block_vbmi(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        let s = s % 8;
        // SAFETY: the caller's contract (`p` readable for PER_ROW bytes), s < 8.
        let aux = unsafe { aux(p, s) };
        // SAFETY: the CPU has VBMI (the caller's contract).
        let signs = unsafe { sign_bytes(aux, AUX_SIGNS) };
        // SAFETY: the table is 64 bytes.
        let levels = unsafe { ld(LEVELS64.0.as_ptr(), 0) };
        let mut w = [_mm512_setzero_si512(); 8];
        for c in 0..2 {
            // SAFETY: chunk 2s + c < 16 lies in the group's 1024 quads bytes.
            let chunk = unsafe { ld(q, 64 * (2 * s + c)) };
            // SAFETY: each plane is 256 bytes; every byte of `chunk` is an index.
            let (lo, hi) =
                unsafe { (lookup256(LOW.0.as_ptr(), chunk), lookup256(HIGH.0.as_ptr(), chunk)) };
            for k in 0..4 {
                let j = 4 * c + k;
                w[j] = signed_magnitudes((lo, hi), k as i32, (signs, j), levels);
            }
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 16 f16 `d` are the first 32 per-row bytes (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        for s in 0..Self::SUB_BLOCKS {
            // SAFETY: the caller's contract; s < 8.
            let ls = _mm512_srli_epi32::<28>(unsafe { aux(p, s) });
            let ls = _mm512_cvtepi32_ps(ls);
            let db = _mm512_mul_ps(
                _mm512_mul_ps(d, _mm512_add_ps(_mm512_set1_ps(0.5), ls)),
                _mm512_set1_ps(0.5),
            );
            out.scale[s] = db;
            out.bias[s] = _mm512_mul_ps(db, _mm512_set1_ps(-62.0));
        }
    }
}
