//! IQ3_S's AVX-512 decoder. Decoded chunk `j` of sub-block `s` (values `32s + 4j ..
//! 32s + 4j + 4`) is one grid entry per row: the low 8 bits of its index are byte `j % 4`
//! of qs chunk `2s + j / 4`, the ninth bit `j` of the row's `qh[s]` (a per-row field: one
//! `vpgatherdd` of the dword holding it per sub-block), and the four magnitudes come from
//! `IQ3S_GRID` by one `vpgatherdd` (the 2 KiB table does not fit a register form). Signs
//! chunk `s` (quads chunk `16 + s`) holds the sub-block's 32 sign bits per row; the four
//! of chunk `j` are spread to its bytes by a multiply and tested into a mask:
//! `u = 15 + g`, or `15 - g` under the mask.
//!
//! With VBMI ([`Codec::sub_block_vbmi`]) the grid is IQ3_XXS's form over 512 entries: 3-bit
//! codes of the eight levels, in two 512-byte planes; one [`lookup512`] per plane takes a
//! qs chunk's 64 indices at once, the ninth bits tested out of each row's `qh[s]` (read by
//! two loads and [`row_bits`] rather than a gather); [`magnitudes`] gives the levels.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_and_si512, _mm512_cvtepi32_ps, _mm512_i32gather_epi32,
    _mm512_mul_ps, _mm512_or_si512, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32,
    _mm512_setr4_epi32, _mm512_setzero_si512, _mm512_shuffle_epi8, _mm512_slli_epi32,
    _mm512_srlv_epi32, _mm512_test_epi8_mask,
};

use super::{BlockIQ3_S, IQ3S_GRID};
use crate::formats::codec::{Affine, Codec, Plane, byte_u, f16x16, ld, lookup512, plane};
use crate::formats::iq2_xs::x86::row_bits;
use crate::formats::iq3_xxs::x86::{codes3, signed_bytes, signed_levels64, signed_magnitudes};

/// Offset of the 16 rows' 8-byte `qh` in the per-row data (after the 16 `d`).
const QH: usize = 32;
/// Offset of the 16 rows' 4-byte `scales` (after `qh`).
const SCALES: usize = 160;

/// The magnitude levels of [`IQ3S_GRID`].
const LEVELS: [u8; 8] = [1, 3, 5, 7, 9, 11, 13, 15];
/// [`IQ3S_GRID`] as 3-bit codes.
const CODES: [u16; 512] = codes3(&IQ3S_GRID, &LEVELS);
/// The low bytes of [`CODES`], for [`lookup512`].
static LOW: Plane<512> = plane::<512, false>(&CODES);
/// The high bytes of [`CODES`].
static HIGH: Plane<512> = plane::<512, true>(&CODES);
/// `15 ± LEVELS` for [`signed_magnitudes`].
static LEVELS64: Plane<64> = signed_levels64(&LEVELS, 15);

/// IQ3_S: `u = 15 + grid * sign` (the signs chunk's bits `4j..4j + 4` for chunk `j`,
/// [`signed_bytes`]), scale `db`, bias `db * -15`.
impl Codec for BlockIQ3_S {
    const QUADS: usize = 1536;
    const PER_ROW: usize = 224;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        let s = s % 8;
        let rows =
            _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
        // SAFETY: row r's qh dword (s & 4) / 4 is at QH + 8r + (s & 4), inside the 128
        // bytes of qh in the per-row data (the caller's contract: PER_ROW bytes).
        let qh = unsafe { _mm512_i32gather_epi32::<1>(rows, p.add(QH + (s & 4)).cast()) };
        // SAFETY: signs chunk 16 + s < 24 lies in the group's 1536 quads bytes.
        let signs = unsafe { ld(q, 64 * (16 + s)) };
        let mut w = [_mm512_setzero_si512(); 8];
        for (j, wj) in w.iter_mut().enumerate() {
            // SAFETY: qs chunk 2s + j / 4 < 16 lies in the group's quads bytes.
            let chunk = unsafe { ld(q, 64 * (2 * s + j / 4)) };
            let high = _mm512_srlv_epi32(qh, _mm512_set1_epi32((8 * (s % 4) + j) as i32));
            let high = _mm512_slli_epi32::<8>(_mm512_and_si512(high, _mm512_set1_epi32(1)));
            let idx = _mm512_or_si512(byte_u(chunk, (j % 4) as i32), high);
            // SAFETY: every index is below 512, an entry of the 512-entry table.
            let g = unsafe { _mm512_i32gather_epi32::<4>(idx, IQ3S_GRID.as_ptr().cast()) };
            *wj = signed_bytes(g, signs, j, 15);
        }
        w
    }

    const VBMI: bool = true;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    unsafe fn sub_block_vbmi(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        let s = s % 8;
        // SAFETY: the 16 rows' 8-byte qh are the 128 bytes at QH (the caller's contract:
        // PER_ROW bytes).
        let (qh_lo, qh_hi) = unsafe { (ld(p, QH), ld(p, QH + 64)) };
        // Each row's qh[s] (byte s of its u64) copied to the four bytes of its dword.
        let lanes = _mm512_setr4_epi32(0, 0x0404_0404, 0x0808_0808, 0x0c0c_0c0c);
        let qh = _mm512_shuffle_epi8(row_bits(qh_lo, qh_hi, 8 * s), lanes);
        // SAFETY: signs chunk 16 + s < 24 lies in the group's 1536 quads bytes.
        let signs = unsafe { ld(q, 64 * (16 + s)) };
        // SAFETY: the table is 64 bytes.
        let levels = unsafe { ld(LEVELS64.0.as_ptr(), 0) };
        let mut w = [_mm512_setzero_si512(); 8];
        for c in 0..2 {
            // SAFETY: qs chunk 2s + c < 16 lies in the group's quads bytes.
            let chunk = unsafe { ld(q, 64 * (2 * s + c)) };
            // Entry k's ninth index bit, bit 4c + k of qh[s], at byte 4r + k.
            let bits = _mm512_set1_epi32((0x0804_0201_u32 << (4 * c)) as i32);
            let ninth = _mm512_test_epi8_mask(qh, bits);
            // SAFETY: each plane is 512 bytes; every byte of `chunk` is an index's low 8
            // bits.
            let (lo, hi) = unsafe {
                (lookup512(LOW.0.as_ptr(), chunk, ninth), lookup512(HIGH.0.as_ptr(), chunk, ninth))
            };
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
        // SAFETY: the 16 f16 `d` are the first 32 per-row bytes, the 16 rows' scales the
        // 64 at SCALES (the caller's contract: 224 bytes).
        let (d, sc) = unsafe { (f16x16(p, 0), ld(p, SCALES)) };
        for s in 0..Self::SUB_BLOCKS {
            let nib = _mm512_srlv_epi32(sc, _mm512_set1_epi32(4 * s as i32));
            let nib = _mm512_and_si512(nib, _mm512_set1_epi32(0xf));
            // 1 + 2 sc, an exact integer, then d times it as gguf-py's f32 multiply.
            let k = _mm512_add_epi32(_mm512_add_epi32(nib, nib), _mm512_set1_epi32(1));
            let db = _mm512_mul_ps(d, _mm512_cvtepi32_ps(k));
            out.scale[s] = db;
            out.bias[s] = _mm512_mul_ps(db, _mm512_set1_ps(-15.0));
        }
    }
}
