//! The AVX-512 decoding interface every quantized format implements ([`Codec`], in its
//! module's `x86.rs`), the [`Affine`] maps it produces, and the vector helpers the codecs
//! share. The kernels (`kernels::decode::x86`, the fused VNNI kernel) call the codecs.
//!
//! A packed quads chunk is already 16 rows by one 4-byte quad, the shape of a decoded
//! chunk, and the packer keeps ggml's byte order inside each quad. So every decoded chunk
//! comes from one or two packed chunks by bit operations within each byte (no byte moves
//! between lanes); each format's `x86.rs` says which packed chunks make which decoded
//! ones. The per-row fields of 16 rows are contiguous: 16 f16 scales are one `vcvtph2ps`
//! ([`f16x16`]). Scales and biases are computed with the same f32 operations, in the same
//! order, as the scalar decoder ([`QuantizedSpec::decode`]), so they are bit-equal.
//!
//! Grids (the IQ formats): the kernels are compiled twice ([`Grids`]), once for AVX-512
//! F/BW/VL/VNNI, where the codecs look grid entries up with `vpgatherdd`, and once with
//! VBMI as well, where a codec with [`Codec::VBMI`] set looks them up in registers
//! ([`Codec::sub_block_vbmi`]): a grid of up to 512 entries whose entry compresses to 16
//! bits is two byte [`Plane`]s, 64 lookups per [`lookup256`] (IQ2_XXS, IQ3_XXS, IQ3_S).
//! IQ2_XS keeps the gathers: its 32 indices per sub-block fill half of two [`lookup512`]s
//! (eight `vpermi2b` for two gathers), which ran 10-12 % slower than the gathers on an
//! Emerald Rapids host. IQ2_S (1024 entries, 16 bits each) and IQ1_S / IQ1_M (2048) keep
//! them too: their planes would be 16 and 32 registers a byte, the lookups more
//! instructions than the gathers they replace.

use core::arch::x86_64::{
    __m256i, __m512, __m512i, __mmask64, _mm256_loadu_si256, _mm512_add_epi32, _mm512_and_si512,
    _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmpeq_epi32_mask, _mm512_cvtepu16_epi32,
    _mm512_cvtph_ps, _mm512_loadu_si512, _mm512_mask_add_epi8, _mm512_mask_and_epi32,
    _mm512_mask_blend_epi8, _mm512_movepi8_mask, _mm512_permutex2var_epi8, _mm512_set1_epi8,
    _mm512_set1_epi32, _mm512_setr4_epi32, _mm512_setzero_ps, _mm512_setzero_si512,
    _mm512_shuffle_epi8, _mm512_srai_epi32, _mm512_srli_epi16, _mm512_test_epi8_mask,
    _mm512_test_epi32_mask, _mm512_xor_si512,
};

use super::KVALUES_IQ4NL;
use super::int_scales::{IntAffine, Scales};
use super::spec::{MAX_SUB_BLOCKS, QuantizedSpec};

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

/// How the codecs look up grid entries (the IQ formats), chosen once from the detected
/// features; the kernels match on it to run the body compiled for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grids {
    /// `vpgatherdd` from the tables in memory: AVX-512 F/BW/VL, as on Cascade Lake,
    /// which has VNNI but no VBMI.
    Gather,
    /// Byte permutes (`vpermi2b`, 64 lookups each) of the tables' byte planes: AVX-512
    /// VBMI as well ([`Codec::sub_block_vbmi`]). Only held where the CPU has VBMI.
    Vbmi,
}

impl Grids {
    /// The lookups this CPU runs: [`Grids::Vbmi`] where AVX-512 VBMI is usable.
    pub(crate) fn detected() -> Self {
        #[cfg(test)]
        if tests::GATHER_ONLY.with(core::cell::Cell::get) {
            return Grids::Gather;
        }
        if crate::detect::Features::cached().avx512_vbmi_usable() {
            Grids::Vbmi
        } else {
            Grids::Gather
        }
    }

    /// The lookups this CPU runs, each once: [`Grids::Gather`], then [`Grids::Vbmi`]
    /// where VBMI is usable (for the tests of both bodies).
    #[cfg(test)]
    pub(crate) fn usable() -> impl Iterator<Item = Grids> + Clone {
        let vbmi = crate::detect::Features::cached().avx512_vbmi_usable();
        [Grids::Gather].into_iter().chain(vbmi.then_some(Grids::Vbmi))
    }
}

/// One quantized format's group, decoded from its packed bytes into registers.
///
/// Implementations compute exactly what the scalar decoder ([`QuantizedSpec::decode`])
/// does: the same bytes, and scales and biases by the same f32 operations.
pub(crate) trait Codec: QuantizedSpec {
    /// Bytes of one group's quads in a panel (all 16 rows).
    const QUADS: usize;
    /// Bytes of one group's per-row data in a panel (all 16 rows).
    const PER_ROW: usize;
    /// Sub-blocks per group.
    const SUB_BLOCKS: usize = Self::BLOCK_VALUES / Self::SUB_BLOCK;

    /// The decoded chunks of sub-block `s`: chunk `j` (`j < SUB_BLOCK / 4`) holds values
    /// `4j..4j + 4` of the sub-block, row `r` at bytes `4r..4r + 4` (chunk
    /// `s * SUB_BLOCK / 4 + j` of the group's decoded chunks); the remaining entries are
    /// zero.
    ///
    /// The values come from the group's quads `q`, and for a format whose values also
    /// take bits from a per-row field, from its per-row data `p` as well (Q5_0 and Q5_1:
    /// the fifth bit of each value is in the 4-byte `qh`, a per-row field because quads
    /// fields are whole 16-byte units; TQ1_0: the last 16 values' digits, in its 4-byte
    /// `qh`; IQ2_S: the high two bits of each grid index, in its 8-byte `qh`).
    /// IQ3_XXS: the sign indices, in its per-row `scales`.
    /// IQ3_S: the ninth bit of each grid index, in its per-row `qh`.
    /// IQ1_S: the high 3 bits of each grid index, in its per-row `qh`.
    /// The other formats do not read `p`.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 F/BW/VL; `q` is readable for [`Self::QUADS`] bytes (one
    /// group's quads) and `p` for [`Self::PER_ROW`] bytes (the same group's per-row
    /// data); `s < SUB_BLOCKS`.
    unsafe fn sub_block(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8];

    /// Whether [`Self::sub_block_vbmi`] is a body of its own (grids looked up by byte
    /// permutes), worth a second copy of the kernels.
    const VBMI: bool = false;

    /// [`Self::sub_block`], the same bytes, with AVX-512 VBMI's byte permutes available:
    /// by default [`Self::sub_block`] itself.
    ///
    /// # Safety
    ///
    /// As [`Self::sub_block`], and the CPU has AVX-512 VBMI.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    unsafe fn sub_block_vbmi(q: *const u8, p: *const u8, s: usize) -> [__m512i; 8] {
        // SAFETY: the caller's contract is `sub_block`'s and more.
        unsafe { Self::sub_block(q, p, s) }
    }

    /// Writes the scale and bias of each sub-block `s < SUB_BLOCKS` to `out.scale[s]`,
    /// `out.bias[s]` (the rest of `out` is left as it is).
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 F/BW/VL; `p` is readable for [`Self::PER_ROW`] bytes (one
    /// group's per-row data).
    unsafe fn affine(p: *const u8, out: &mut Affine);

    /// What the kernels call for the scales and biases: [`Self::affine`] by default, or for
    /// a format whose sub-block scales lie in its quads (IQ2_XXS: the top bits of a word
    /// that also holds signs), its own reading of `q` and `p`.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 F/BW/VL; `q` is readable for [`Self::QUADS`] bytes and `p` for
    /// [`Self::PER_ROW`] bytes (the same group's quads and per-row data).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn affine_with(q: *const u8, p: *const u8, out: &mut Affine) {
        let _ = q;
        // SAFETY: the caller's contract covers `p`'s.
        unsafe { Self::affine(p, out) }
    }

    /// How the fused VNNI kernel applies this format's sub-block scales: as floats (the
    /// default), or as integers ([`super::int_scales`], 16-value sub-blocks only), in
    /// which case [`Self::int_affine`] is this format's own.
    const SCALES: Scales = Scales::Float;

    /// For [`Scales::Int`]: writes the group's integer-scale parameters to `out`, equal
    /// to `QuantizedSpec::int_scales` of each row's block. The default, for
    /// [`Scales::Float`], writes nothing.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 F/BW/VL; `p` is readable for [`Self::PER_ROW`] bytes (one
    /// group's per-row data).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn int_affine(p: *const u8, out: &mut IntAffine) {
        let _ = (p, out);
    }

    /// For [`Scales::Int`] with `fold`: [`Self::sub_block`]'s chunks with each byte `u`
    /// replaced by `a * u`, `a` the byte of `a` (from [`Self::int_affine`]) in each row's
    /// dword, the rest zero. The default, for the others, gives [`Self::sub_block`]'s.
    ///
    /// # Safety
    ///
    /// As [`Self::sub_block`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn sub_block_folded(q: *const u8, p: *const u8, s: usize, a: __m512i) -> [__m512i; 8] {
        let _ = a;
        // SAFETY: the caller's contract is `sub_block`'s.
        unsafe { Self::sub_block(q, p, s) }
    }
}

/// The 64 bytes at `p + at`.
///
/// # Safety
///
/// `p + at .. p + at + 64` is readable.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn ld(p: *const u8, at: usize) -> __m512i {
    // SAFETY: the caller's contract; the load is unaligned.
    unsafe { _mm512_loadu_si512(p.add(at).cast()) }
}

/// The 16 little-endian f16 at `p + at .. p + at + 32`, widened exactly as
/// [`crate::formats::half::f16_to_f32`] does, NaN payloads included.
///
/// # Safety
///
/// Those 32 bytes are readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn f16x16(p: *const u8, at: usize) -> __m512 {
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
pub(crate) fn neg(x: __m512) -> __m512 {
    let sign = _mm512_set1_epi32(i32::MIN);
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), sign))
}

/// Byte `j` (0..4) of every dword, zero extended (`j` must be below 4).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn byte_u(x: __m512i, j: i32) -> __m512i {
    // vpshufb indexes the bytes of each 16-byte lane: byte j of dword i is byte 4i + j.
    // Control bytes with bit 7 set give zero.
    let ctrl = _mm512_setr4_epi32(0, 4, 8, 12);
    _mm512_shuffle_epi8(x, _mm512_add_epi32(ctrl, _mm512_set1_epi32(0x8080_8000_u32 as i32 | j)))
}

/// Byte `j` (0..4) of every dword, sign extended.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn byte_i(x: __m512i, j: i32) -> __m512i {
    let ctrl = _mm512_setr4_epi32(0, 4 << 24, 8 << 24, 12 << 24);
    let top =
        _mm512_shuffle_epi8(x, _mm512_add_epi32(ctrl, _mm512_set1_epi32((j << 24) | 0x0080_8080)));
    _mm512_srai_epi32::<24>(top)
}

/// The low (`high == false`) or high nibble of every byte.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn nibble(v: __m512i, high: bool) -> __m512i {
    let v = if high { _mm512_srli_epi16::<4>(v) } else { v };
    _mm512_and_si512(v, _mm512_set1_epi8(0x0f))
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

/// Maps each byte `q` (0..16, a 4-bit index) of each vector to
/// `KVALUES_IQ4NL[q] as u8 ^ 0x80`, the unsigned form of the IQ4_NL / IQ4_XS table value
/// (their codecs' `u`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn iq4nl_u(mut w: [__m512i; 8]) -> [__m512i; 8] {
    // SAFETY: the table is 64 bytes.
    let table = unsafe { ld(IQ4NL_U.as_ptr(), 0) };
    for v in &mut w {
        // vpshufb looks up each byte's low 4 bits in its 16-byte lane; every lane holds
        // the whole table, and the indices are below 16 (bit 7 clear: no zeroing).
        *v = _mm512_shuffle_epi8(table, *v);
    }
    w
}

/// Adds the fifth bit of each value of a 32-value block (Q5_0, Q5_1) to its decoded low
/// nibbles: `w[j]` holds values `4j..4j + 4` of the 16 rows (the low nibbles of qs chunks
/// 0..4, then their high nibbles), `qh` the rows' 32-bit `qh`, row `r` at dword `r`; bit
/// `i` of `qh` is bit 4 of value `i`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn with_fifth_bits(mut w: [__m512i; 8], qh: __m512i) -> [__m512i; 8] {
    let sixteen = _mm512_set1_epi8(0x10);
    for (j, v) in w.iter_mut().enumerate() {
        // Values 4j..4j + 4 take qh bits 4j..4j + 4: byte j / 2 of the row's dword, bits
        // 4(j % 2)..4(j % 2) + 4. Copy that byte to all four bytes of its dword, then
        // test bit b + 4(j % 2) in byte b: a set bit adds 16 to the nibble (whose bit 4
        // is clear).
        let byte = (j / 2) as i32 * 0x0101_0101;
        let ctrl = _mm512_add_epi32(
            _mm512_setr4_epi32(0, 0x0404_0404, 0x0808_0808, 0x0c0c_0c0c),
            _mm512_set1_epi32(byte),
        );
        let spread = _mm512_shuffle_epi8(qh, ctrl);
        let bits = _mm512_set1_epi32((0x0804_0201_u32 << (4 * (j % 2))) as i32);
        let set = _mm512_test_epi8_mask(spread, bits);
        *v = _mm512_mask_add_epi8(*v, set, *v, sixteen);
    }
    w
}

/// The low nibbles of quads chunks `c0..c0 + 4`, then their high nibbles.
///
/// # Safety
///
/// The chunks lie in readable memory at `q`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) unsafe fn nibbles_4x2(q: *const u8, c0: usize) -> [__m512i; 8] {
    let mut w = [_mm512_setzero_si512(); 8];
    for (j, wj) in w.iter_mut().enumerate() {
        // SAFETY: chunk c0 + j % 4 is one of the caller's.
        let v = unsafe { ld(q, 64 * (c0 + j % 4)) };
        *wj = nibble(v, j >= 4);
    }
    w
}

/// A byte table of `N` entries (`N` a multiple of 64), aligned so that each 64 entries
/// are one cache line and one register load.
#[repr(C, align(64))]
pub(crate) struct Plane<const N: usize>(pub [u8; N]);

/// The low (`HIGH == false`) or high byte of each entry of a table of 16-bit entries.
pub(crate) const fn plane<const N: usize, const HIGH: bool>(t: &[u16; N]) -> Plane<N> {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (t[i] >> if HIGH { 8 } else { 0 }) as u8;
        i += 1;
    }
    Plane(out)
}

/// `t[x]` for each byte `x` of `idx`, `t` the 256 entries at `t`: two `vpermi2b` of 128
/// entries each, picked by bit 7 of `x`.
///
/// # Safety
///
/// `t` is readable for 256 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn lookup256(t: *const u8, idx: __m512i) -> __m512i {
    // SAFETY: the caller's contract: 4 x 64 bytes.
    let (a, b, c, d) = unsafe { (ld(t, 0), ld(t, 64), ld(t, 128), ld(t, 192)) };
    let low = _mm512_permutex2var_epi8(a, idx, b);
    let high = _mm512_permutex2var_epi8(c, idx, d);
    _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), low, high)
}

/// `t[x + 256 * n]` for each byte `x` of `idx`, `n` its bit in `ninth`, `t` the 512
/// entries at `t`: two [`lookup256`].
///
/// # Safety
///
/// `t` is readable for 512 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn lookup512(t: *const u8, idx: __m512i, ninth: __mmask64) -> __m512i {
    // SAFETY: the caller's contract: two 256-byte halves.
    let (low, high) = unsafe { (lookup256(t, idx), lookup256(t.add(256), idx)) };
    _mm512_mask_blend_epi8(ninth, low, high)
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;

    use super::Grids;
    use core::cell::Cell;

    std::thread_local! {
        /// Set while [`gather_only`] runs: [`Grids::detected`] answers
        /// [`Grids::Gather`] on this thread, so a test reaches the gather bodies on a CPU
        /// with VBMI.
        pub(super) static GATHER_ONLY: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f` with the gather bodies only (on this thread).
    pub(crate) fn gather_only<T>(f: impl FnOnce() -> T) -> T {
        GATHER_ONLY.with(|g| g.set(true));
        let out = f();
        GATHER_ONLY.with(|g| g.set(false));
        out
    }

    /// Runs `f` with `grids` as the detected lookups (`Vbmi` only where usable).
    pub(crate) fn with_grids<T>(grids: Grids, f: impl FnOnce() -> T) -> T {
        match grids {
            Grids::Gather => gather_only(f),
            Grids::Vbmi => f(),
        }
    }
}
