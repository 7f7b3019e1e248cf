//! The AMX path, for large M: BF16 tiles.
//!
//! Each weight panel (16 output columns) is widened once per call into BF16 B tiles (16
//! pairs of K values by 16 columns, 1 KiB a tile): quantized groups through the group
//! decoder and `scale * u + bias` in f32, F16 through f32; BF16 panels already are B
//! tiles and are read in place. The activations come as BF16 A tiles from
//! [`crate::quantize`]. Two panels and two row tiles at a time: four f32 accumulator
//! tiles (`tmm0..tmm3`), two A tiles (`tmm4`, `tmm5`) and two B tiles (`tmm6`, `tmm7`).
//! Each output value sums its K in the same order whatever the split of the work.

use core::arch::x86_64::{
    __m512, __m512bh, __m512i, _mm_loadu_si128, _mm512_castsi512_ps, _mm512_cvtepi32_epi16,
    _mm512_cvtepi32_ps, _mm512_cvtepu8_epi32, _mm512_cvtne2ps_pbh, _mm512_cvtph_ps,
    _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_permutex2var_epi32,
    _mm512_permutexvar_epi16, _mm512_permutexvar_ps, _mm512_set_epi32, _mm512_set1_epi32,
    _mm512_srli_epi32, _mm512_storeu_si512,
};

use core::ops::Range;

use crate::formats::spec::Values;
use crate::gemm::PreparedKind;
use crate::pack::{PANEL_ROWS, PackedLayout, group_values};
use crate::tile::{self, TileConfig};
use crate::token::Amx;

use super::Job;
use super::decode::{DecodeFn, Decoded, span_groups};

/// Bytes of one tile (16 rows of 64 bytes).
const TILE: usize = 1024;

/// The one configuration of this path: eight 16 x 64-byte tiles.
const CONFIG: TileConfig = {
    let mut cfg = TileConfig::new();
    let mut t = 0;
    while t < 8 {
        cfg = match cfg.with_tile(t, 16, 64) {
            Ok(c) => c,
            Err(_) => panic!("16 x 64 is a valid tile shape"),
        };
        t += 1;
    }
    cfg
};

#[inline]
#[target_feature(enable = "avx512f")]
fn bits(v: __m512bh) -> __m512i {
    // SAFETY: both are 64-byte vectors and every bit pattern is a valid `__m512i`.
    unsafe { core::mem::transmute::<__m512bh, __m512i>(v) }
}

/// Widens decoded chunk `j` (values `4j..4j + 4` of the 16 rows, `u` its 64 bytes) with
/// the rows' `scale` and `bias` into the B-tile rows of pairs `(4j, 4j+1)` and
/// `(4j+2, 4j+3)`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn widen_chunk(u: &[u8], scale: __m512, bias: __m512) -> (__m512i, __m512i) {
    let mut f = [_mm512_castsi512_ps(_mm512_set1_epi32(0)); 4];
    for (q, out) in f.iter_mut().enumerate() {
        // Rows 4q..4q+4, four values each: each row's scale and bias four times.
        let r = 4 * q as i32;
        let idx = _mm512_set_epi32(
            r + 3,
            r + 3,
            r + 3,
            r + 3,
            r + 2,
            r + 2,
            r + 2,
            r + 2,
            r + 1,
            r + 1,
            r + 1,
            r + 1,
            r,
            r,
            r,
            r,
        );
        // SAFETY: `u` holds 64 bytes (asserted by the caller's slicing); bytes
        // 16q..16q+16 are read.
        let bytes = unsafe { _mm_loadu_si128(u[16 * q..16 * q + 16].as_ptr().cast()) };
        let v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
        *out =
            _mm512_fmadd_ps(v, _mm512_permutexvar_ps(idx, scale), _mm512_permutexvar_ps(idx, bias));
    }
    // Rows 0..8, then rows 8..16, as BF16: four values (two dwords) per row; pairs
    // (v0, v1) are the even dwords, (v2, v3) the odd ones.
    let lo = bits(_mm512_cvtne2ps_pbh(f[1], f[0]));
    let hi = bits(_mm512_cvtne2ps_pbh(f[3], f[2]));
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    (_mm512_permutex2var_epi32(lo, even, hi), _mm512_permutex2var_epi32(lo, odd, hi))
}

/// Widens the groups of a quantized panel that cover B tiles `tiles` into `out`, tile
/// `tiles.start` first. `tiles` starts and ends on group boundaries.
///
/// # Safety
///
/// `decode` runs on this CPU.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn widen_quantized(
    layout: &PackedLayout,
    panel: &[u8],
    tiles: Range<usize>,
    decode: DecodeFn,
    d: &mut Decoded,
    out: &mut [u8],
) {
    let format = layout.format();
    let Some(sb) = format.sub_block() else { return };
    let gv = group_values(format);
    let per_group = gv / 32;
    let span = span_groups(format);
    let (first, end) =
        (tiles.start / per_group, tiles.end.div_ceil(per_group).min(layout.groups()));
    let mut g = first;
    while g < end {
        let count = span.min(end - g);
        // SAFETY: `decode` runs on this CPU (the caller's contract).
        unsafe { decode(layout, panel, g, count, d) };
        for j in 0..count * gv / 4 {
            let s = 4 * j / sb;
            // SAFETY: each scale/bias row holds 16 f32.
            let (scale, bias) = unsafe {
                (_mm512_loadu_ps(d.scale[s].as_ptr()), _mm512_loadu_ps(d.bias[s].as_ptr()))
            };
            let (a, b) = widen_chunk(&d.u[64 * j..64 * j + 64], scale, bias);
            // Pair row of value k = g * gv + 4j: tile k / 32, row (k % 32) / 2.
            let k = g * gv + 4 * j;
            let at = (k / 32 - tiles.start) * TILE + ((k % 32) / 2) * 64;
            let dst = &mut out[at..at + 128];
            // SAFETY: `dst` is 128 writable bytes.
            unsafe {
                _mm512_storeu_si512(dst.as_mut_ptr().cast(), a);
                _mm512_storeu_si512(dst.as_mut_ptr().add(64).cast(), b);
            }
        }
        g += count;
    }
}

/// Widens B tiles `tiles` of an F16 panel (VNNI pairs of F16, one group per tile) into
/// `out`, tile `tiles.start` first.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
fn widen_f16(layout: &PackedLayout, panel: &[u8], tiles: Range<usize>, out: &mut [u8]) {
    // Word w of a B-tile row: value w / 2 of the even values (w even) or of the odd ones
    // (w odd), which `cvtne2ps` puts in words 0..16 and 16..32.
    let idx: [i16; 32] = core::array::from_fn(|w| (w / 2 + 16 * (w % 2)) as i16);
    // SAFETY: `idx` is 64 readable bytes.
    let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
    for g in tiles.clone() {
        let base = layout.quads_offset(g);
        for c in 0..16 {
            let src = &panel[base + 64 * c..base + 64 * c + 64];
            // SAFETY: `src` is 64 readable bytes.
            let v = unsafe { _mm512_loadu_si512(src.as_ptr().cast()) };
            let even = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
            let odd = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(v)));
            let both = bits(_mm512_cvtne2ps_pbh(odd, even));
            let pairs = _mm512_permutexvar_epi16(idx, both);
            let at = (g - tiles.start) * TILE + 64 * c;
            // SAFETY: `out[at..at + 64]` is inside the widened tiles.
            unsafe { _mm512_storeu_si512(out[at..at + 64].as_mut_ptr().cast(), pairs) };
        }
    }
}

/// Where B tiles `tiles` of panel `p` are, tile `tiles.start` first: in place for BF16,
/// else widened into `buf`.
///
/// # Safety
///
/// `decode` runs on this CPU.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn b_tiles<'a>(
    layout: &PackedLayout,
    panel: &'a [u8],
    tiles: Range<usize>,
    decode: DecodeFn,
    d: &mut Decoded,
    buf: &'a mut [u8],
) -> &'a [u8] {
    match layout.format().values() {
        // A BF16 panel with no per-row data is its quads region: tile g at g * 1 KiB.
        Values::BF16 => &panel[tiles.start * TILE..],
        Values::F16 => {
            widen_f16(layout, panel, tiles, buf);
            buf
        }
        Values::Decoded { .. } => {
            // SAFETY: forwarded contract.
            unsafe { widen_quantized(layout, panel, tiles, decode, d, buf) };
            buf
        }
    }
}

/// The output block of accumulator tile `(mt, p)` inside the job: its rows, and its valid
/// columns; `None` when it has no row in the job.
fn c_block(
    job: &Job<'_, '_, '_, '_>,
    n: usize,
    mt: usize,
    p: usize,
) -> Option<(Range<usize>, usize)> {
    let r0 = 16 * mt;
    let rows = r0.max(job.rows.start)..(r0 + 16).min(job.rows.end);
    (!rows.is_empty()).then(|| (rows, (n - p * PANEL_ROWS).min(PANEL_ROWS)))
}

/// Loads accumulator tile `T` with the partial sums of rows `16 mt..16 mt + 16`, panel
/// `p`, kept in the output by an earlier block of K.
///
/// # Safety
///
/// AMX is usable (a token exists) with [`CONFIG`] loaded; the job's block of the output
/// is not written by anyone else meanwhile.
#[inline]
unsafe fn load_c<const T: u8>(job: &Job<'_, '_, '_, '_>, n: usize, mt: usize, p: usize) {
    let Some((rows, cols)) = c_block(job, n, mt, p) else { return };
    let (r0, c0) = (16 * mt, p * PANEL_ROWS);
    if rows.len() == 16 && cols == 16 {
        // SAFETY: the 16 rows x 64 bytes at stride `stride * 4` are output values of
        // this job's block; the caller guarantees the tile state.
        unsafe { tile::tileloadd::<T>(job.y.at(r0, c0).cast_const().cast(), job.y.stride() * 4) };
        return;
    }
    let mut buf = [0f32; 256];
    for r in rows {
        for c in 0..cols {
            // SAFETY: (r, c0 + c) is inside the job's block.
            buf[16 * (r - r0) + c] = unsafe { job.y.at(r, c0 + c).read() };
        }
    }
    // SAFETY: `buf` is 16 rows of 64 readable bytes; the caller guarantees the tile state.
    unsafe { tile::tileloadd::<T>(buf.as_ptr().cast(), 64) };
}

/// Stores accumulator tile `T` for rows `16 mt..16 mt + 16` and panel `p`: straight into
/// the output when all 256 values are inside the job, through a buffer otherwise.
///
/// # Safety
///
/// As [`load_c`].
#[inline]
unsafe fn store_c<const T: u8>(job: &Job<'_, '_, '_, '_>, n: usize, mt: usize, p: usize) {
    let Some((rows, cols)) = c_block(job, n, mt, p) else { return };
    let (r0, c0) = (16 * mt, p * PANEL_ROWS);
    if rows.len() == 16 && cols == 16 {
        // SAFETY: as in `load_c`, writing.
        unsafe { tile::tilestored::<T>(job.y.at(r0, c0).cast(), job.y.stride() * 4) };
        return;
    }
    let mut buf = [0f32; 256];
    // SAFETY: `buf` is 16 rows of 64 writable bytes; the caller guarantees the tile state.
    unsafe { tile::tilestored::<T>(buf.as_mut_ptr().cast(), 64) };
    for r in rows {
        for c in 0..cols {
            // SAFETY: (r, c0 + c) is inside the job's block.
            unsafe { job.y.at(r, c0 + c).write(buf[16 * (r - r0) + c]) };
        }
    }
}

/// B tiles (K / 32) per block of K, for `m_tiles` row tiles: the A tiles of one block
/// (`m_tiles` KiB per B tile) stay within about 1 MiB of L2 while every panel pair passes
/// over them; a multiple of the tiles per group, at least one group.
fn k_block_tiles(m_tiles: usize, k_tiles: usize, per_group: usize) -> usize {
    let fit = (1024 / m_tiles.max(1)).max(per_group.max(8));
    (fit / per_group * per_group).min(k_tiles.next_multiple_of(per_group))
}

/// Runs `job` on AMX BF16 tiles.
///
/// # Safety
///
/// As [`super::run`]; the job's activations are BF16 tiles; `scratch` holds two widened
/// panels (`2 * k_tiles` KiB); the CPU has AVX-512 F/BW/VL/BF16 and `decode` is safe to
/// call on it.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub(crate) unsafe fn run(
    amx: Amx,
    job: &Job<'_, '_, '_, '_>,
    scratch: &mut [u8],
    decode: DecodeFn,
) {
    let PreparedKind::Tiles { bytes: a, layout: tl } = job.x.kind else { return };
    let layout = job.weights.layout();
    let n = layout.n();
    let k_tiles = tl.k_tiles;
    let (buf0, rest) = scratch.split_at_mut(k_tiles * TILE);
    let buf1 = &mut rest[..k_tiles * TILE];
    let mut d = Decoded::new();
    // `ldtilecfg` only when this thread holds another configuration (or none): the check
    // reads the live configuration, so it cannot be fooled by other code that changed it.
    if amx.store_config() != Ok(Some(CONFIG)) {
        amx.load_config(&CONFIG);
    }
    let (mt_start, mt_end) = (job.rows.start / 32 * 2, job.rows.end.div_ceil(32) * 2);
    let per_group = group_values(layout.format()) / 32;
    let kb = k_block_tiles(mt_end - mt_start, k_tiles, per_group.max(1));
    let mut k0 = 0;
    while k0 < k_tiles {
        let tiles = k0..(k0 + kb).min(k_tiles);
        let mut p = job.panels.start;
        while p < job.panels.end {
            let pair = p + 1 < job.panels.end;
            let (Some(w0), w1) = (job.weights.panel(p), job.weights.panel(p + 1)) else { return };
            // SAFETY: `decode` runs on this CPU (this function's contract).
            let b0 = unsafe { b_tiles(layout, w0, tiles.clone(), decode, &mut d, buf0) };
            let b1 = match (pair, w1) {
                // SAFETY: `decode` runs on this CPU (this function's contract); `w1` is
                // panel p + 1 of the checked weights.
                (true, Some(w1)) => unsafe {
                    b_tiles(layout, w1, tiles.clone(), decode, &mut d, buf1)
                },
                _ => b0,
            };
            let mut mt = mt_start;
            while mt < mt_end {
                // SAFETY: the token proves AMX is usable and CONFIG (eight 16 x 64-byte
                // tiles) is loaded on this thread; every tile load reads 16 rows of 64
                // bytes at stride 64 inside `a` (tiles (mt, kt) and (mt + 1, kt) exist:
                // m_tiles is even and mt < m_tiles) or inside the B tiles of this block
                // (kt - k0 < tiles.len()); the output accesses are the job's block.
                unsafe {
                    if k0 == 0 {
                        tile::tilezero::<0>();
                        tile::tilezero::<1>();
                        tile::tilezero::<2>();
                        tile::tilezero::<3>();
                    } else {
                        load_c::<0>(job, n, mt, p);
                        load_c::<2>(job, n, mt + 1, p);
                        if pair {
                            load_c::<1>(job, n, mt, p + 1);
                            load_c::<3>(job, n, mt + 1, p + 1);
                        }
                    }
                    for kt in tiles.clone() {
                        let bt = (kt - k0) * TILE;
                        tile::tileloadd::<4>(a[tl.tile(mt, kt)..].as_ptr(), 64);
                        tile::tileloadd::<5>(a[tl.tile(mt + 1, kt)..].as_ptr(), 64);
                        tile::tileloadd::<6>(b0[bt..].as_ptr(), 64);
                        tile::tileloadd::<7>(b1[bt..].as_ptr(), 64);
                        tile::tdpbf16ps::<0, 4, 6>();
                        tile::tdpbf16ps::<1, 4, 7>();
                        tile::tdpbf16ps::<2, 5, 6>();
                        tile::tdpbf16ps::<3, 5, 7>();
                    }
                    store_c::<0>(job, n, mt, p);
                    store_c::<2>(job, n, mt + 1, p);
                    if pair {
                        store_c::<1>(job, n, mt, p + 1);
                        store_c::<3>(job, n, mt + 1, p + 1);
                    }
                }
                mt += 2;
            }
            p += if pair { 2 } else { 1 };
        }
        k0 = tiles.end;
    }
}
