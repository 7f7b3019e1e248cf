//! AVX-512 moves: quads fields through in-register transposes (a 16x16 dword transpose
//! for each 64 bytes of a field, a 4x4 one inside 128-bit lanes for a 16-byte rest).

use core::arch::x86_64::{
    __m128i, __m512i, _MM_HINT_T1, _mm_loadl_epi64, _mm_loadu_si128, _mm_prefetch, _mm_sfence,
    _mm_storeu_si128, _mm_unpacklo_epi64, _mm512_castsi128_si512, _mm512_extracti32x4_epi32,
    _mm512_inserti32x4, _mm512_loadu_si512, _mm512_mask_storeu_epi8, _mm512_permutex2var_epi8,
    _mm512_setzero_si512, _mm512_shuffle_i32x4, _mm512_storeu_si512, _mm512_stream_si512,
    _mm512_unpackhi_epi32, _mm512_unpackhi_epi64, _mm512_unpacklo_epi32, _mm512_unpacklo_epi64,
};

use super::{Head, Isa, PANEL_ROWS, PackedLayout, Run, pack_panel_with, unpack_panel_with};
use crate::pack::checksum::Acc512;

/// The AVX-512 moves; with `VBMI`, per-row fields through [`Isa::pack_head`]'s byte
/// permutes; with `STREAM`, quads chunks written by streaming stores (the panel must
/// start at a multiple of 64 bytes). Only reachable through the `target_feature` entry
/// points below.
pub(crate) struct Avx512<const VBMI: bool, const STREAM: bool = false>;

/// Stores one 64-byte chunk of quads at `out`: a streaming store with `STREAM`.
///
/// # Safety
///
/// `out` is writable for 64 bytes, and with `STREAM` a multiple of 64; AVX-512 F.
#[inline(always)]
unsafe fn store_chunk<const STREAM: bool>(out: *mut u8, x: __m512i) {
    // SAFETY: the caller's contract; `vmovntdq` needs the 64-byte alignment it gives.
    unsafe {
        if STREAM {
            _mm512_stream_si512(out.cast(), x);
        } else {
            _mm512_storeu_si512(out.cast(), x);
        }
    }
}

/// `u[c]` lane `l` dword `j` = `z[j]` lane `l` dword `c`: a 4x4 dword transpose inside
/// each 128-bit lane. It is its own inverse.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose4(z: [__m512i; 4]) -> [__m512i; 4] {
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

/// A 16x16 dword transpose: `out[c]` dword `r` = `rows[r]` dword `c`. Its own inverse.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(rows: [__m512i; 16]) -> [__m512i; 16] {
    // After the in-lane 4x4 transposes, u[4j + k] lane L holds rows 4j..4j+4 of column
    // 4L + k; then each column gathers lane L of u[k], u[4 + k], u[8 + k], u[12 + k].
    let mut u = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let t = transpose4([rows[4 * j], rows[4 * j + 1], rows[4 * j + 2], rows[4 * j + 3]]);
        u[4 * j..4 * j + 4].copy_from_slice(&t);
    }
    let mut out = [_mm512_setzero_si512(); 16];
    for k in 0..4 {
        let (a, b, c, d) = (u[k], u[4 + k], u[8 + k], u[12 + k]);
        let v0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(a, b);
        let v1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(a, b);
        let v2 = _mm512_shuffle_i32x4::<0b01_00_01_00>(c, d);
        let v3 = _mm512_shuffle_i32x4::<0b11_10_11_10>(c, d);
        out[k] = _mm512_shuffle_i32x4::<0b10_00_10_00>(v0, v2);
        out[4 + k] = _mm512_shuffle_i32x4::<0b11_01_11_01>(v0, v2);
        out[8 + k] = _mm512_shuffle_i32x4::<0b10_00_10_00>(v1, v3);
        out[12 + k] = _mm512_shuffle_i32x4::<0b11_01_11_01>(v1, v3);
    }
    out
}

/// The first two steps of [`transpose16`]: `v[k]` holds its `(v0, v1, v2, v3)` of column
/// group `k`. [`Avx512::pack`] forms the outputs from them one at a time, in address
/// order, which keeps about 20 vectors live: with the pack's two checksum accumulators,
/// collecting all 16 outputs first made the compiler spill (pack fell from about 96 to
/// 90 % of copy on Q5_K).
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16_halves(rows: [__m512i; 16]) -> [[__m512i; 4]; 4] {
    let mut u = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let t = transpose4([rows[4 * j], rows[4 * j + 1], rows[4 * j + 2], rows[4 * j + 3]]);
        u[4 * j..4 * j + 4].copy_from_slice(&t);
    }
    core::array::from_fn(|k| {
        let (a, b, c, d) = (u[k], u[4 + k], u[8 + k], u[12 + k]);
        [
            _mm512_shuffle_i32x4::<0b01_00_01_00>(a, b),
            _mm512_shuffle_i32x4::<0b11_10_11_10>(a, b),
            _mm512_shuffle_i32x4::<0b01_00_01_00>(c, d),
            _mm512_shuffle_i32x4::<0b11_10_11_10>(c, d),
        ]
    })
}

impl<const VBMI: bool, const STREAM: bool> Isa for Avx512<VBMI, STREAM> {
    // Every chunk is added from the register it is stored from: no read back.
    const FUSED_SUM: bool = true;
    const STREAM: bool = STREAM;
    const HEAD: bool = VBMI;

    #[inline(always)]
    unsafe fn pack_head(group: &[*const u8; PANEL_ROWS], head: &Head, per_row: *mut u8) {
        if !VBMI {
            return;
        }
        // SAFETY: the trait's contract: AVX-512 F/BW and (with `VBMI`, checked by the
        // entry point that instantiates it) VBMI are available; every row pointer is
        // readable for 8 bytes; `per_row` is writable for `head.len <= 128` bytes, which
        // the masked stores do not pass; the index table is 128 bytes long.
        unsafe {
            // Rows 8h..8h + 8's heads, row 8h + i at bytes 8i.. (plain loads: a gather,
            // with its index vector built from the pointers, was slower on Zen 4).
            let heads = |h: usize| {
                let pair = |i: usize| {
                    let a = _mm_loadl_epi64(group[8 * h + 2 * i].cast());
                    _mm_unpacklo_epi64(a, _mm_loadl_epi64(group[8 * h + 2 * i + 1].cast()))
                };
                let mut v = _mm512_castsi128_si512(pair(0));
                v = _mm512_inserti32x4::<1>(v, pair(1));
                v = _mm512_inserti32x4::<2>(v, pair(2));
                _mm512_inserti32x4::<3>(v, pair(3))
            };
            let (lo, hi) = (heads(0), heads(1));
            for j in (0..head.len).step_by(64) {
                let idx = _mm512_loadu_si512(head.idx.as_ptr().add(j).cast());
                let n = (head.len - j).min(64);
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                let v = _mm512_permutex2var_epi8(lo, idx, hi);
                _mm512_mask_storeu_epi8(per_row.add(j).cast(), mask, v);
            }
        }
    }
    type Acc = Acc512;

    #[inline(always)]
    unsafe fn acc_begin(run: &Run) -> Acc512 {
        // SAFETY: AVX-512 F is the caller's contract.
        unsafe { run.avx512_acc() }
    }

    #[inline(always)]
    unsafe fn acc_end(run: &mut Run, acc: Acc512, chunks: usize) {
        // SAFETY: AVX-512 F is the caller's contract.
        unsafe { run.set_avx512_acc(acc, chunks) };
    }

    #[inline(always)]
    unsafe fn sum(run: &mut Run, bytes: &[u8]) {
        // SAFETY: AVX-512 F is the caller's contract.
        unsafe { run.update_avx512(bytes) };
    }

    #[inline(always)]
    fn prefetch(p: *const u8) {
        // Into L2: a panel's bytes (16 rows) fit there, not in L1.
        // SAFETY: SSE is part of the x86_64 baseline; a prefetch never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(p.cast()) };
    }

    #[inline(always)]
    unsafe fn pack(rows: &[*const u8; PANEL_ROWS], len: usize, out: *mut u8, acc: &mut Acc512) {
        let whole = len / 64 * 64;
        for s in (0..whole).step_by(64) {
            // SAFETY: the trait's contract: AVX-512F is available (for the loads, stores
            // and the checksum adds), every row is readable for `len >= s + 64` bytes, and
            // `out` writable for `16 * len` bytes (chunk `s / 4 + c`, c < 16, ends at
            // `64 * (s / 4 + 16) <= 16 * len`); with `STREAM` the entry point checked
            // that the panel, so every chunk, starts at a multiple of 64.
            unsafe {
                let r: [__m512i; 16] =
                    core::array::from_fn(|r| _mm512_loadu_si512(rows[r].add(s).cast()));
                let v = transpose16_halves(r);
                let mut emit = |c: usize, x: __m512i| {
                    store_chunk::<STREAM>(out.add(64 * (s / 4 + c)), x);
                    acc.add(x);
                };
                // Output c = 4q + k, as in `transpose16`, for q = 0, 1, 2, 3 in turn.
                for (k, w) in v.iter().enumerate() {
                    emit(k, _mm512_shuffle_i32x4::<0b10_00_10_00>(w[0], w[2]));
                }
                for (k, w) in v.iter().enumerate() {
                    emit(4 + k, _mm512_shuffle_i32x4::<0b11_01_11_01>(w[0], w[2]));
                }
                for (k, w) in v.iter().enumerate() {
                    emit(8 + k, _mm512_shuffle_i32x4::<0b10_00_10_00>(w[1], w[3]));
                }
                for (k, w) in v.iter().enumerate() {
                    emit(12 + k, _mm512_shuffle_i32x4::<0b11_01_11_01>(w[1], w[3]));
                }
            }
        }
        for s in (whole..len).step_by(16) {
            // SAFETY: the trait's contract: AVX-512F is available (for the loads, inserts,
            // stores and checksum adds), every row is readable for `len >= s + 16` bytes,
            // and `out` writable for `16 * len` bytes (chunk `s / 4 + c`, c < 4, ends at
            // `64 * (s / 4 + 4) = 16 * (s + 16) <= 16 * len`); chunks are 64-aligned with
            // `STREAM`, as above.
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
                for (c, v) in transpose4(z).iter().enumerate() {
                    store_chunk::<STREAM>(out.add(64 * (s / 4 + c)), *v);
                    acc.add(*v);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn unpack(input: *const u8, len: usize, rows: &[*mut u8; PANEL_ROWS]) {
        let whole = len / 64 * 64;
        for s in (0..whole).step_by(64) {
            // SAFETY: the trait's contract, as in `pack` with reads and writes swapped.
            unsafe {
                let c: [__m512i; 16] = core::array::from_fn(|c| {
                    _mm512_loadu_si512(input.add(64 * (s / 4 + c)).cast())
                });
                for (r, v) in transpose16(c).iter().enumerate() {
                    _mm512_storeu_si512(rows[r].add(s).cast(), *v);
                }
            }
        }
        for s in (whole..len).step_by(16) {
            // SAFETY: the trait's contract, as in `pack` with reads and writes swapped.
            unsafe {
                let u: [__m512i; 4] = core::array::from_fn(|c| {
                    _mm512_loadu_si512(input.add(64 * (s / 4 + c)).cast())
                });
                let z = transpose4(u);
                for (j, v) in z.iter().enumerate() {
                    let store = |r: usize, x: __m128i| _mm_storeu_si128(rows[r].add(s).cast(), x);
                    store(j, _mm512_extracti32x4_epi32::<0>(*v));
                    store(4 + j, _mm512_extracti32x4_epi32::<1>(*v));
                    store(8 + j, _mm512_extracti32x4_epi32::<2>(*v));
                    store(12 + j, _mm512_extracti32x4_epi32::<3>(*v));
                }
            }
        }
    }
}

/// [`super::pack_panel`] on AVX-512; with `stream` and a panel starting at a multiple of
/// 64 bytes, its quads through streaming stores, fenced before returning.
///
/// # Safety
///
/// The CPU and the OS must support AVX-512 F, BW and VL
/// ([`crate::detect::Features::avx512_usable`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn pack_panel(
    layout: &PackedLayout,
    src: &[u8],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
    stream: bool,
) {
    // SAFETY: AVX-512 F/BW/VL are the caller's contract.
    unsafe { pack_panel_stores::<false>(layout, src, panel, dst, run, stream) };
}

/// [`pack_panel`] with the per-row fields of small-block formats moved by byte permutes.
///
/// # Safety
///
/// The CPU and the OS must support AVX-512 F, BW, VL and VBMI
/// ([`crate::detect::Features::avx512_vbmi_usable`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
pub(crate) unsafe fn pack_panel_vbmi(
    layout: &PackedLayout,
    src: &[u8],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
    stream: bool,
) {
    // SAFETY: AVX-512 F/BW/VL/VBMI are the caller's contract.
    unsafe { pack_panel_stores::<true>(layout, src, panel, dst, run, stream) };
}

/// The body of both entry points: streaming stores with `stream` where the panel starts
/// at a multiple of 64 bytes (then so does every chunk), fenced; plain stores otherwise.
///
/// # Safety
///
/// The CPU has AVX-512 F/BW/VL, and VBMI with `VBMI`.
#[inline(always)]
unsafe fn pack_panel_stores<const VBMI: bool>(
    layout: &PackedLayout,
    src: &[u8],
    panel: usize,
    dst: &mut [u8],
    run: &mut Run,
    stream: bool,
) {
    // SAFETY: the instruction sets are the caller's contract; `Avx512<_, true>` only
    // where the panel is 64-byte aligned, as its streaming stores need.
    unsafe {
        if stream && (dst.as_ptr() as usize).is_multiple_of(64) {
            pack_panel_with::<Avx512<VBMI, true>>(layout, src, panel, dst, run);
            // Streaming stores are weakly ordered: fence them, so that the panel is
            // visible to whoever this thread later hands the buffer to, as plain stores
            // would be.
            _mm_sfence();
        } else {
            pack_panel_with::<Avx512<VBMI>>(layout, src, panel, dst, run);
        }
    }
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
    unsafe { unpack_panel_with::<Avx512<false>>(layout, input, panel, dst) };
}
