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

use core::arch::x86_64::{
    __m256i, __m512, __m512i, _mm256_loadu_si256, _mm512_add_epi32, _mm512_and_si512,
    _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmpeq_epi32_mask, _mm512_cmpge_epu32_mask,
    _mm512_cvtepi32_ps, _mm512_cvtepu16_epi32, _mm512_cvtph_ps, _mm512_loadu_si512,
    _mm512_mask_and_epi32, _mm512_mask_blend_epi32, _mm512_mask_permutexvar_epi32, _mm512_mul_ps,
    _mm512_or_si512, _mm512_permutex2var_epi32, _mm512_rolv_epi32, _mm512_set1_epi8,
    _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32, _mm512_setr4_epi32, _mm512_shuffle_epi8,
    _mm512_srai_epi32, _mm512_srli_epi16, _mm512_srli_epi32, _mm512_srlv_epi32, _mm512_storeu_ps,
    _mm512_storeu_si512, _mm512_sub_epi32, _mm512_ternarylogic_epi32, _mm512_test_epi32_mask,
    _mm512_xor_si512,
};

use crate::formats::{Format, KVALUES_IQ4NL};
use crate::pack::PackedLayout;

use super::Decoded;

/// `a | (b & c)` for `vpternlogd`.
const A_OR_B_AND_C: i32 = 0xf8;

/// The quads (`Q` bytes) and per-row data (`P` bytes) of group `g` of `panel`, when
/// `panel` is a whole panel of `layout`, `g` one of its groups and the sizes those of the
/// layout's format (what [`crate::pack::read_block`] accepts).
fn regions<'p, const Q: usize, const P: usize>(
    layout: &PackedLayout,
    panel: &'p [u8],
    g: usize,
) -> Option<(&'p [u8; Q], &'p [u8; P])> {
    if panel.len() != layout.panel_bytes() || g >= layout.groups() {
        return None;
    }
    let qo = layout.quads_offset(g);
    let po = layout.per_row_offset(g);
    // The region sizes are fixed by the format; check that `Q`/`P` are this group's.
    if layout.quads_offset(g + 1) - qo != Q || layout.per_row_offset(g + 1) - po != P {
        return None;
    }
    Some((panel.get(qo..)?.first_chunk::<Q>()?, panel.get(po..)?.first_chunk::<P>()?))
}

/// Bytes `at..at + 64` of `b` (in range for every constant offset used here).
#[inline]
#[target_feature(enable = "avx512f")]
fn ld<const N: usize>(b: &[u8; N], at: usize) -> __m512i {
    let s = &b[at..at + 64];
    // SAFETY: `s` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
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

/// The 16 little-endian f16 at bytes `at..at + 32` of `b`, widened exactly as
/// [`crate::formats::half::f16_to_f32`] does, NaN payloads included.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn f16x16<const N: usize>(b: &[u8; N], at: usize) -> __m512 {
    let s = &b[at..at + 32];
    // SAFETY: `s` is 32 readable bytes; the load is unaligned.
    let h: __m256i = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
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

/// Low and high nibbles of every byte.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn nibbles(v: __m512i) -> (__m512i, __m512i) {
    let m = _mm512_set1_epi8(0x0f);
    (_mm512_and_si512(v, m), _mm512_and_si512(_mm512_srli_epi16::<4>(v), m))
}

/// Q4_0: `u` = the nibble, scale `d`, bias `-8 d`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn q4_0(layout: &PackedLayout, panel: &[u8], g: usize, slot: usize, out: &mut Decoded) {
    let Some((q, p)) = regions::<256, 32>(layout, panel, g) else { return };
    for c in 0..4 {
        let (lo, hi) = nibbles(ld(q, 64 * c));
        st(out, 8 * slot + c, lo);
        st(out, 8 * slot + 4 + c, hi);
    }
    let d = f16x16(p, 0);
    st_affine(out, slot, d, _mm512_mul_ps(_mm512_set1_ps(-8.0), d));
}

/// Q4_1: `u` = the nibble, scale `d`, bias `m`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn q4_1(layout: &PackedLayout, panel: &[u8], g: usize, slot: usize, out: &mut Decoded) {
    let Some((q, p)) = regions::<256, 64>(layout, panel, g) else { return };
    for c in 0..4 {
        let (lo, hi) = nibbles(ld(q, 64 * c));
        st(out, 8 * slot + c, lo);
        st(out, 8 * slot + 4 + c, hi);
    }
    st_affine(out, slot, f16x16(p, 0), f16x16(p, 32));
}

/// Q8_0: `u = q ^ 0x80`, scale `d`, bias `-128 d`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn q8_0(layout: &PackedLayout, panel: &[u8], g: usize, slot: usize, out: &mut Decoded) {
    let Some((q, p)) = regions::<512, 32>(layout, panel, g) else { return };
    let flip = _mm512_set1_epi8(i8::MIN);
    for c in 0..8 {
        st(out, 8 * slot + c, _mm512_xor_si512(ld(q, 64 * c), flip));
    }
    let d = f16x16(p, 0);
    st_affine(out, slot, d, _mm512_mul_ps(_mm512_set1_ps(-128.0), d));
}

/// The Q4_K/Q5_K affine maps from the per-row data `p` (16 `d`, 16 `dmin`, 16 x 12 bytes
/// of 6-bit scales and mins): scale `d * sc`, bias `-(dmin * m)` per sub-block.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn k4_affine(p: &[u8; 256], out: &mut Decoded) {
    let (d, dmin) = (f16x16(p, 0), f16x16(p, 32));
    let z = [ld(p, 64), ld(p, 128), ld(p, 192)];
    // Dword `q` (bytes 4q..4q + 4) of each row's 12 bytes: dword 3r + q of the 48.
    let rows3 = _mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45);
    let w: [__m512i; 3] = core::array::from_fn(|q| {
        let idx = add_i32(rows3, q as i32);
        let low = _mm512_permutex2var_epi32(z[0], idx, z[1]);
        let from_z2 = _mm512_cmpge_epu32_mask(idx, _mm512_set1_epi32(32));
        _mm512_mask_permutexvar_epi32(low, from_z2, idx, z[2])
    });
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
        st_affine(out, j, sc(sc_lo), bi(m_lo));
        st_affine(out, j + 4, sc(sc_hi), bi(m_hi));
    }
}

/// `a + b` in every dword.
#[inline]
#[target_feature(enable = "avx512f")]
fn add_i32(a: __m512i, b: i32) -> __m512i {
    _mm512_add_epi32(a, _mm512_set1_epi32(b))
}

/// Q4_K: `u` = the nibble, affine maps of [`k4_affine`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn q4_k(layout: &PackedLayout, panel: &[u8], g: usize, out: &mut Decoded) {
    let Some((q, p)) = regions::<2048, 256>(layout, panel, g) else { return };
    for c in 0..32 {
        let (lo, hi) = nibbles(ld(q, 64 * c));
        let j = 16 * (c / 8) + c % 8;
        st(out, j, lo);
        st(out, j + 8, hi);
    }
    k4_affine(p, out);
}

/// Q5_K: `u` = the nibble plus the qh bit as bit 4, affine maps of [`k4_affine`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn q5_k(layout: &PackedLayout, panel: &[u8], g: usize, out: &mut Decoded) {
    let Some((q, p)) = regions::<2560, 256>(layout, panel, g) else { return };
    let bit4 = _mm512_set1_epi8(0x10);
    for a in 0..4 {
        // Bits t = 2a and 2a + 1 of each qh byte move to bit 4: rotate the dwords left by
        // 4 - t (mod 32); the bit stays in its byte.
        let (rot_lo, rot_hi) = (
            _mm512_set1_epi32((4 - 2 * a as i32) & 31),
            _mm512_set1_epi32((3 - 2 * a as i32) & 31),
        );
        for i in 0..8 {
            let (lo, hi) = nibbles(ld(q, 64 * (8 * a + i)));
            let h = ld(q, 2048 + 64 * i);
            let j = 16 * a + i;
            st(
                out,
                j,
                _mm512_ternarylogic_epi32::<A_OR_B_AND_C>(lo, _mm512_rolv_epi32(h, rot_lo), bit4),
            );
            st(
                out,
                j + 8,
                _mm512_ternarylogic_epi32::<A_OR_B_AND_C>(hi, _mm512_rolv_epi32(h, rot_hi), bit4),
            );
        }
    }
    k4_affine(p, out);
}

/// Q6_K: `u` = the 6-bit value, scale `d * sc`, bias `-32 * scale` per 16 values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn q6_k(layout: &PackedLayout, panel: &[u8], g: usize, out: &mut Decoded) {
    let Some((q, p)) = regions::<3072, 288>(layout, panel, g) else { return };
    let bits45 = _mm512_set1_epi8(0x30);
    let rot = |t: i32| _mm512_set1_epi32((4 - 2 * t) & 31);
    for h in 0..2 {
        for i in 0..8 {
            let (a_lo, a_hi) = nibbles(ld(q, 64 * (16 * h + i)));
            let (b_lo, b_hi) = nibbles(ld(q, 64 * (16 * h + 8 + i)));
            let qh = ld(q, 2048 + 64 * (8 * h + i));
            let j = 32 * h + i;
            for (t, v) in [a_lo, b_lo, a_hi, b_hi].into_iter().enumerate() {
                let high = _mm512_rolv_epi32(qh, rot(t as i32));
                st(out, j + 8 * t, _mm512_ternarylogic_epi32::<A_OR_B_AND_C>(v, high, bits45));
            }
        }
    }
    // Per row 16 i8 scales (dword q holds sub-blocks 4q..4q + 4): dword 4r + q of the 64.
    let z = [ld(p, 0), ld(p, 64), ld(p, 128), ld(p, 192)];
    let d = f16x16(p, 256);
    let rows4 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    for qd in 0..4 {
        let idx = add_i32(rows4, qd as i32);
        let first = _mm512_permutex2var_epi32(z[0], idx, z[1]);
        let last = _mm512_permutex2var_epi32(z[2], idx, z[3]);
        let w = _mm512_mask_blend_epi32(0xff00, first, last);
        for b in 0..4 {
            let sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_i(w, b as i32)));
            st_affine(out, 4 * qd + b, sc, _mm512_mul_ps(_mm512_set1_ps(-32.0), sc));
        }
    }
}

/// `KVALUES_IQ4NL[q] as u8 ^ 0x80` for `q` in 0..16, in each 16-byte lane.
const IQ4NL_U: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = (KVALUES_IQ4NL[i % 16] as u8) ^ 0x80;
        i += 1;
    }
    t
};

/// IQ4_XS: `u = KVALUES_IQ4NL[q] ^ 0x80`, scale `d * (ls - 32)`, bias `-128 * scale`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn iq4_xs(layout: &PackedLayout, panel: &[u8], g: usize, out: &mut Decoded) {
    let Some((q, p)) = regions::<2048, 128>(layout, panel, g) else { return };
    let table = ld(&IQ4NL_U, 0);
    for c in 0..32 {
        let (lo, hi) = nibbles(ld(q, 64 * c));
        let j = 8 * (c / 4) + c % 4;
        st(out, j, _mm512_shuffle_epi8(table, lo));
        st(out, j + 4, _mm512_shuffle_epi8(table, hi));
    }
    let d = f16x16(p, 0);
    let hs = &p[32..64];
    // SAFETY: `hs` is 32 readable bytes; the load is unaligned.
    let high = _mm512_cvtepu16_epi32(unsafe { _mm256_loadu_si256(hs.as_ptr().cast()) });
    let low = ld(p, 64);
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
        st_affine(out, s as usize, sc, _mm512_mul_ps(_mm512_set1_ps(-128.0), sc));
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
    let slots = 0..count.min(8);
    match layout.format() {
        Format::Q4_0 => slots.for_each(|i| q4_0(layout, panel, g + i, i, out)),
        Format::Q4_1 => slots.for_each(|i| q4_1(layout, panel, g + i, i, out)),
        Format::Q8_0 => slots.for_each(|i| q8_0(layout, panel, g + i, i, out)),
        Format::Q4K if count > 0 => q4_k(layout, panel, g, out),
        Format::Q5K if count > 0 => q5_k(layout, panel, g, out),
        Format::Q6K if count > 0 => q6_k(layout, panel, g, out),
        Format::IQ4XS if count > 0 => iq4_xs(layout, panel, g, out),
        _ => {}
    }
}
