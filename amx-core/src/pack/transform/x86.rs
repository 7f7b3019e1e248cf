//! The AVX-512 16-row quads transpose: four rows per zmm, a 4x4 dword transpose inside
//! each 128-bit lane, and 64-byte stores (one chunk per store).

use core::arch::x86_64::{
    __m512i, _mm_loadu_si128, _mm_storeu_si128, _mm512_castsi128_si512, _mm512_extracti32x4_epi32,
    _mm512_inserti32x4, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_unpackhi_epi32,
    _mm512_unpackhi_epi64, _mm512_unpacklo_epi32, _mm512_unpacklo_epi64,
};

use super::{PANEL_ROWS, PackedLayout, Quads, pack_panel_with, unpack_panel_with};

/// The AVX-512 transposer. Only reachable through the `target_feature` entry points below.
pub(crate) struct Avx512;

/// `u[c]` lane `l` dword `j` = `z[j]` lane `l` dword `c`: a 4x4 dword transpose inside
/// each 128-bit lane. It is its own inverse.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose(z: [__m512i; 4]) -> [__m512i; 4] {
    let t0 = _mm512_unpacklo_epi32(z[0], z[1]);
    let t1 = _mm512_unpackhi_epi32(z[0], z[1]);
    let t2 = _mm512_unpacklo_epi32(z[2], z[3]);
    let t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    [
        _mm512_unpacklo_epi64(t0, t2),
        _mm512_unpackhi_epi64(t0, t2),
        _mm512_unpacklo_epi64(t1, t3),
        _mm512_unpackhi_epi64(t1, t3),
    ]
}

impl Quads for Avx512 {
    #[inline(always)]
    unsafe fn pack(rows: &[*const u8; PANEL_ROWS], len: usize, out: *mut u8) {
        for s in (0..len).step_by(16) {
            // SAFETY: the trait's contract: AVX-512F is available, every row is readable
            // for `len` bytes (`s + 16 <= len`), and `out` writable for `16 * len` bytes
            // (chunk `s / 4 + c` ends at `64 * (s / 4 + 4) <= 16 * len`).
            unsafe {
                // z[j] lane l = row 4l + j, so that after the transpose u[c] lane l dword
                // j = row 4l + j's dword c: u[c] holds dword c of rows 0..16 in order.
                let z: [__m512i; 4] = core::array::from_fn(|j| {
                    let load = |r: usize| _mm_loadu_si128(rows[r].add(s).cast());
                    let mut v = _mm512_castsi128_si512(load(j));
                    v = _mm512_inserti32x4::<1>(v, load(4 + j));
                    v = _mm512_inserti32x4::<2>(v, load(8 + j));
                    _mm512_inserti32x4::<3>(v, load(12 + j))
                });
                let u = transpose(z);
                for (c, v) in u.iter().enumerate() {
                    _mm512_storeu_si512(out.add(64 * (s / 4 + c)).cast(), *v);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn unpack(input: *const u8, len: usize, rows: &[*mut u8; PANEL_ROWS]) {
        for s in (0..len).step_by(16) {
            // SAFETY: the trait's contract, as in `pack` with reads and writes swapped.
            unsafe {
                let u: [__m512i; 4] = core::array::from_fn(|c| {
                    _mm512_loadu_si512(input.add(64 * (s / 4 + c)).cast())
                });
                let z = transpose(u);
                for (j, v) in z.iter().enumerate() {
                    _mm_storeu_si128(rows[j].add(s).cast(), _mm512_extracti32x4_epi32::<0>(*v));
                    _mm_storeu_si128(rows[4 + j].add(s).cast(), _mm512_extracti32x4_epi32::<1>(*v));
                    _mm_storeu_si128(rows[8 + j].add(s).cast(), _mm512_extracti32x4_epi32::<2>(*v));
                    _mm_storeu_si128(
                        rows[12 + j].add(s).cast(),
                        _mm512_extracti32x4_epi32::<3>(*v),
                    );
                }
            }
        }
    }
}

/// [`super::pack_panel`] on AVX-512.
///
/// # Safety
///
/// The CPU and the OS must support AVX-512 F, BW and VL
/// ([`crate::detect::Features::avx512_usable`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn pack_panel(layout: &PackedLayout, src: &[u8], panel: usize, dst: &mut [u8]) {
    // SAFETY: AVX-512 F/BW/VL are the caller's contract.
    unsafe { pack_panel_with::<Avx512>(layout, src, panel, dst) };
}

/// [`super::unpack_panel`] on AVX-512.
///
/// # Safety
///
/// As [`pack_panel`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn unpack_panel(
    layout: &PackedLayout,
    input: &[u8],
    panel: usize,
    dst: &mut [u8],
) {
    // SAFETY: AVX-512 F/BW/VL are the caller's contract.
    unsafe { unpack_panel_with::<Avx512>(layout, input, panel, dst) };
}
