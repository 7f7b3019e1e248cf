//! The [`Codec`] of each quantized format (see the table of the parent module).

use core::arch::x86_64::{
    __m512i, _mm256_loadu_si256, _mm512_add_epi32, _mm512_and_si512, _mm512_cmpge_epu32_mask,
    _mm512_cvtepi32_ps, _mm512_cvtepu16_epi32, _mm512_mask_blend_epi32,
    _mm512_mask_permutexvar_epi32, _mm512_mul_ps, _mm512_or_si512, _mm512_permutex2var_epi32,
    _mm512_rolv_epi32, _mm512_set1_epi8, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32,
    _mm512_setzero_si512, _mm512_shuffle_epi8, _mm512_slli_epi16, _mm512_srli_epi16,
    _mm512_srli_epi32, _mm512_srlv_epi32, _mm512_sub_epi32, _mm512_ternarylogic_epi32,
    _mm512_xor_si512,
};

use crate::formats::{Format, KVALUES_IQ4NL};

use super::{Affine, Codec, byte_i, byte_u, f16x16, ld, neg, nibble};

/// `a | (b & c)` for `vpternlogd`.
const A_OR_B_AND_C: i32 = 0xf8;

/// `c ? a : b`, bit by bit, for `vpternlogd`.
const C_SELECTS_A_ELSE_B: i32 = 0xe4;

/// The low nibbles of quads chunks `c0..c0 + 4`, then their high nibbles.
///
/// # Safety
///
/// The chunks lie in readable memory at `q`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn nibbles_4x2(q: *const u8, c0: usize) -> [__m512i; 8] {
    let mut w = [_mm512_setzero_si512(); 8];
    for (j, wj) in w.iter_mut().enumerate() {
        // SAFETY: chunk c0 + j % 4 is one of the caller's.
        let v = unsafe { ld(q, 64 * (c0 + j % 4)) };
        *wj = nibble(v, j >= 4);
    }
    w
}

/// Q4_0: `u` = the nibble, scale `d`, bias `-8 d`.
pub(crate) struct Q40;

impl Codec for Q40 {
    const FORMAT: Format = Format::Q4_0;
    const QUADS: usize = 256;
    const PER_ROW: usize = 32;
    const SUB_BLOCK: usize = 32;
    const SUB_BLOCKS: usize = 1;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _s: usize) -> [__m512i; 8] {
        // SAFETY: chunks 0..4 are the group's 256 bytes (the caller's contract).
        unsafe { nibbles_4x2(q, 0) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 32 bytes of the 16 `d` (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        out.scale[0] = d;
        out.bias[0] = _mm512_mul_ps(_mm512_set1_ps(-8.0), d);
    }
}

/// Q4_1: `u` = the nibble, scale `d`, bias `m`.
pub(crate) struct Q41;

impl Codec for Q41 {
    const FORMAT: Format = Format::Q4_1;
    const QUADS: usize = 256;
    const PER_ROW: usize = 64;
    const SUB_BLOCK: usize = 32;
    const SUB_BLOCKS: usize = 1;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _s: usize) -> [__m512i; 8] {
        // SAFETY: chunks 0..4 are the group's 256 bytes (the caller's contract).
        unsafe { nibbles_4x2(q, 0) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: 16 `d` then 16 `m`, the group's 64 bytes (the caller's contract).
        unsafe {
            out.scale[0] = f16x16(p, 0);
            out.bias[0] = f16x16(p, 32);
        }
    }
}

/// Q8_0: `u = q ^ 0x80`, scale `d`, bias `-128 d`.
pub(crate) struct Q80;

impl Codec for Q80 {
    const FORMAT: Format = Format::Q8_0;
    const QUADS: usize = 512;
    const PER_ROW: usize = 32;
    const SUB_BLOCK: usize = 32;
    const SUB_BLOCKS: usize = 1;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, _s: usize) -> [__m512i; 8] {
        let flip = _mm512_set1_epi8(i8::MIN);
        let mut w = [_mm512_setzero_si512(); 8];
        for (c, wc) in w.iter_mut().enumerate() {
            // SAFETY: chunks 0..8 are the group's 512 bytes (the caller's contract).
            let v = unsafe { ld(q, 64 * c) };
            *wc = _mm512_xor_si512(v, flip);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the 32 bytes of the 16 `d` (the caller's contract).
        let d = unsafe { f16x16(p, 0) };
        out.scale[0] = d;
        out.bias[0] = _mm512_mul_ps(_mm512_set1_ps(-128.0), d);
    }
}

/// The Q4_K/Q5_K affine maps from the per-row data `p` (16 `d`, 16 `dmin`, 16 x 12 bytes
/// of 6-bit scales and mins): scale `d * sc`, bias `-(dmin * m)` per sub-block.
///
/// # Safety
///
/// `p` is readable for 256 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn k4_affine(p: *const u8, out: &mut Affine) {
    // SAFETY: all reads are inside the 256 bytes (the caller's contract).
    let (d, dmin, z) =
        unsafe { (f16x16(p, 0), f16x16(p, 32), [ld(p, 64), ld(p, 128), ld(p, 192)]) };
    // Dword `q` (bytes 4q..4q + 4) of each row's 12 bytes: dword 3r + q of the 48.
    let rows3 = _mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45);
    let mut w = [_mm512_setzero_si512(); 3];
    for (q, wq) in w.iter_mut().enumerate() {
        let idx = _mm512_add_epi32(rows3, _mm512_set1_epi32(q as i32));
        let low = _mm512_permutex2var_epi32(z[0], idx, z[1]);
        let from_z2 = _mm512_cmpge_epu32_mask(idx, _mm512_set1_epi32(32));
        *wq = _mm512_mask_permutexvar_epi32(low, from_z2, idx, z[2]);
    }
    // unpack_scales_mins_k4, four sub-blocks per dword byte lane.
    let (m3f, m0f, m30) = (_mm512_set1_epi8(0x3f), _mm512_set1_epi8(0x0f), _mm512_set1_epi8(0x30));
    let sc_lo = _mm512_and_si512(w[0], m3f);
    let m_lo = _mm512_and_si512(w[1], m3f);
    let sc_hi = _mm512_or_si512(
        _mm512_and_si512(w[2], m0f),
        _mm512_and_si512(_mm512_srli_epi32::<2>(w[0]), m30),
    );
    let m_hi = _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi32::<4>(w[2]), m0f),
        _mm512_and_si512(_mm512_srli_epi32::<2>(w[1]), m30),
    );
    for j in 0..4 {
        let sc = |x| _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_u(x, j as i32)));
        let bi = |x| neg(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(byte_u(x, j as i32))));
        (out.scale[j], out.bias[j]) = (sc(sc_lo), bi(m_lo));
        (out.scale[j + 4], out.bias[j + 4]) = (sc(sc_hi), bi(m_hi));
    }
}

/// Q4_K: `u` = the nibble, affine maps of [`k4_affine`].
pub(crate) struct Q4K;

impl Codec for Q4K {
    const FORMAT: Format = Format::Q4_K;
    const QUADS: usize = 2048;
    const PER_ROW: usize = 256;
    const SUB_BLOCK: usize = 32;
    const SUB_BLOCKS: usize = 8;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, s: usize) -> [__m512i; 8] {
        let mut w = [_mm512_setzero_si512(); 8];
        for (i, wi) in w.iter_mut().enumerate() {
            // SAFETY: chunk 8(s/2) + i < 32 for s < 8 (the caller's contract).
            let v = unsafe { ld(q, 64 * (8 * (s / 2) + i)) };
            *wi = nibble(v, s % 2 == 1);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the caller's contract is k4_affine's.
        unsafe { k4_affine(p, out) }
    }
}

/// Q5_K: `u` = the nibble plus the qh bit as bit 4, affine maps of [`k4_affine`].
pub(crate) struct Q5K;

impl Codec for Q5K {
    const FORMAT: Format = Format::Q5_K;
    const QUADS: usize = 2560;
    const PER_ROW: usize = 256;
    const SUB_BLOCK: usize = 32;
    const SUB_BLOCKS: usize = 8;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, s: usize) -> [__m512i; 8] {
        // Bit t = s of each qh byte moves to bit 4: rotate the dwords left by 4 - t
        // (mod 32); the bit stays in its byte.
        let rot = _mm512_set1_epi32((4 - s as i32) & 31);
        let mut w = [_mm512_setzero_si512(); 8];
        for (i, wi) in w.iter_mut().enumerate() {
            // SAFETY: qs chunk 8(s/2) + i < 32 and qh chunk i < 8 for s < 8 (the caller's
            // contract).
            let (v, h) = unsafe { (ld(q, 64 * (8 * (s / 2) + i)), ld(q, 2048 + 64 * i)) };
            let high = _mm512_rolv_epi32(h, rot);
            *wi = _mm512_ternarylogic_epi32::<A_OR_B_AND_C>(
                nibble(v, s % 2 == 1),
                high,
                _mm512_set1_epi8(0x10),
            );
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: the caller's contract is k4_affine's.
        unsafe { k4_affine(p, out) }
    }
}

/// Q6_K: `u` = the 6-bit value, scale `d * sc`, bias `-32 * scale` per 16 values.
pub(crate) struct Q6K;

impl Codec for Q6K {
    const FORMAT: Format = Format::Q6_K;
    const QUADS: usize = 3072;
    const PER_ROW: usize = 288;
    const SUB_BLOCK: usize = 16;
    const SUB_BLOCKS: usize = 16;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, s: usize) -> [__m512i; 8] {
        // Sub-block s is decoded chunks 4s..4s + 4 = 32h + 8t + i (see the table): the
        // low (t < 2) or high nibbles of ql chunk 16h + 8(t%2) + i as bits 0..4, and bits
        // 2t, 2t + 1 of qh chunk 8h + i as bits 4, 5. With `lo` the qh bits 0, 1, 4, 5
        // (t = 0, 2) or 2, 3, 6, 7 shifted down by 2 (t = 1, 3), the high bits are `lo`
        // shifted up by 4 (t < 2) or `lo` itself (t >= 2), each byte's bits 6, 7 clear;
        // a bit select then takes bits 0..4 from the nibbles and 4..8 from them (the
        // shifts move bits across bytes only into places the select drops). These are
        // the same four pure expressions of a chunk for all t, so the compiler shares
        // them across the sub-blocks of one unrolled group.
        let (h, t, i0) = (s / 8, s % 8 / 2, 4 * (s % 2));
        let m33 = _mm512_set1_epi8(0x33);
        let mut w = [_mm512_setzero_si512(); 8];
        for (j, wj) in w.iter_mut().take(4).enumerate() {
            let i = i0 + j;
            // SAFETY: ql chunk 16h + 8(t%2) + i < 32 and qh chunk 8h + i < 16 for s < 16
            // (the caller's contract).
            let (v, qh) =
                unsafe { (ld(q, 64 * (16 * h + 8 * (t % 2) + i)), ld(q, 2048 + 64 * (8 * h + i))) };
            let lo = if t % 2 == 0 {
                _mm512_and_si512(qh, m33)
            } else {
                _mm512_and_si512(_mm512_srli_epi16::<2>(qh), m33)
            };
            let (nib, high) = if t < 2 {
                (v, _mm512_slli_epi16::<4>(lo))
            } else {
                (_mm512_srli_epi16::<4>(v), lo)
            };
            *wj =
                _mm512_ternarylogic_epi32::<C_SELECTS_A_ELSE_B>(nib, high, _mm512_set1_epi8(0x0f));
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // Per row 16 i8 scales (dword q holds sub-blocks 4q..4q + 4): dword 4r + q of the
        // 64.
        // SAFETY: all reads are inside the 288 bytes (the caller's contract).
        let (z, d) = unsafe { ([ld(p, 0), ld(p, 64), ld(p, 128), ld(p, 192)], f16x16(p, 256)) };
        let rows4 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
        for qd in 0..4 {
            let idx = _mm512_add_epi32(rows4, _mm512_set1_epi32(qd as i32));
            let first = _mm512_permutex2var_epi32(z[0], idx, z[1]);
            let last = _mm512_permutex2var_epi32(z[2], idx, z[3]);
            let w = _mm512_mask_blend_epi32(0xff00, first, last);
            for b in 0..4 {
                let sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_i(w, b as i32)));
                out.scale[4 * qd + b] = sc;
                out.bias[4 * qd + b] = _mm512_mul_ps(_mm512_set1_ps(-32.0), sc);
            }
        }
    }
}

/// `KVALUES_IQ4NL[q] as u8 ^ 0x80` for `q` in 0..16, in each 16-byte lane.
static IQ4NL_U: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = (KVALUES_IQ4NL[i % 16] as u8) ^ 0x80;
        i += 1;
    }
    t
};

/// IQ4_XS: `u = KVALUES_IQ4NL[q] ^ 0x80`, scale `d * (ls - 32)`, bias `-128 * scale`.
pub(crate) struct Iq4Xs;

impl Codec for Iq4Xs {
    const FORMAT: Format = Format::IQ4_XS;
    const QUADS: usize = 2048;
    const PER_ROW: usize = 128;
    const SUB_BLOCK: usize = 32;
    const SUB_BLOCKS: usize = 8;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block(q: *const u8, s: usize) -> [__m512i; 8] {
        // SAFETY: the table is 64 bytes.
        let table = unsafe { ld(IQ4NL_U.as_ptr(), 0) };
        // SAFETY: chunks 4s..4s + 4 < 32 for s < 8 (the caller's contract).
        let n = unsafe { nibbles_4x2(q, 4 * s) };
        let mut w = n;
        for v in &mut w {
            *v = _mm512_shuffle_epi8(table, *v);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine(p: *const u8, out: &mut Affine) {
        // SAFETY: `d` at 0..32, scales_h at 32..64, scales_l at 64..128 (the caller's
        // contract: 128 bytes).
        let (d, high, low) = unsafe {
            (f16x16(p, 0), _mm512_cvtepu16_epi32(_mm256_loadu_si256(p.add(32).cast())), ld(p, 64))
        };
        for s in 0..8 {
            let l = _mm512_and_si512(
                _mm512_srlv_epi32(low, _mm512_set1_epi32(4 * s)),
                _mm512_set1_epi32(0xf),
            );
            // Bits 2s, 2s + 1 to bits 4, 5: rotate left by 4 - 2s (mod 32).
            let h = _mm512_and_si512(
                _mm512_rolv_epi32(high, _mm512_set1_epi32((4 - 2 * s) & 31)),
                _mm512_set1_epi32(0x30),
            );
            let ls = _mm512_sub_epi32(_mm512_or_si512(l, h), _mm512_set1_epi32(32));
            let sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(ls));
            out.scale[s as usize] = sc;
            out.bias[s as usize] = _mm512_mul_ps(_mm512_set1_ps(-128.0), sc);
        }
    }
}
