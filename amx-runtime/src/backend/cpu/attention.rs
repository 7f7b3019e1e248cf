//! ATTENTION of many queries (prefill) as two BF16 GEMMs per key/value head on the pool:
//! scores `S = Q K^T` (the keys packed as the weight), the causal softmax in f32, then
//! `O = P V` (the values, transposed, packed as the weight; keys padded to a multiple of
//! 32 with zero probabilities). Q, K, P and V are rounded to BF16, as the AMX path
//! rounds activations: the same accuracy class as a GEMM on the AMX path.
//!
//! Steps of few queries (decode) run `decode_attention` (or the reference op). This one keeps its operands'
//! memory per thread from call to call (fresh memory would be zeroed by the kernel on
//! every call: a quarter of a prefill step's time), growing it when a call needs more.

use std::cell::RefCell;
use std::ops::RangeInclusive;
use std::sync::Mutex;

use amx_core::formats::Format;
use amx_core::gemm::{GemmError, Path};
use amx_core::pack::{self, PackedLayout, PackedRef};

use crate::error::ExecError;
use crate::fast_math::{exp_f32, lanes};
use crate::hugepage::HugeBuffer;
use crate::op::{Op, OpDesc};
use crate::pool::Pool;
use crate::tensor::f32_view;

/// The operands of one call, kept for the next.
#[derive(Default)]
struct Scratch {
    rows: Vec<f32>,
    s: Vec<f32>,
    p: Vec<f32>,
    o: Vec<f32>,
    keys: Option<HugeBuffer>,
    values: Option<HugeBuffer>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `v` with at least `len` values (zeros when grown), as a slice of exactly `len`.
fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// Packs `rows` (n x k f32) as a BF16 weight into `buf`, grown when too small, and
/// returns the packed bytes.
fn pack_bf16<'b>(
    buf: &'b mut Option<HugeBuffer>,
    n: usize,
    k: usize,
    rows: &[f32],
) -> Result<&'b [u8], &'static str> {
    let layout = PackedLayout::new(Format::BF16, n, k, 1).map_err(|_| "bad key or value shape")?;
    let need = layout.total_bytes();
    if buf.as_ref().is_none_or(|b| b.len() < need) {
        *buf =
            Some(HugeBuffer::try_zeroed(need).map_err(|_| "cannot allocate the packed operands")?);
    }
    let Some(b) = buf.as_mut() else { return Err("cannot allocate the packed operands") };
    pack::pack_f32_as_bf16(n, k, 1, rows, &mut b[..need])
        .map_err(|_| "cannot pack the keys or values")?;
    Ok(&b[..need])
}

/// Queries per step from which the GEMM form pays (below, the reference op runs).
pub(crate) const MIN_QUERIES: usize = 16;

/// Whether `op` is an ATTENTION this module runs.
pub(crate) fn applies(op: &OpDesc) -> bool {
    matches!(op.op, Op::Attention { .. })
        && op.srcs.first().is_some_and(|q| q.desc.ne[2] >= MIN_QUERIES)
}

/// The checked operands of one ATTENTION: the f32 views of its sources, its sizes and
/// parameters.
pub(crate) struct Operands<'a> {
    pub(crate) q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    kc: &'a [f32],
    vc: &'a [f32],
    /// Key (and query) and value head sizes.
    pub(crate) dk: usize,
    pub(crate) dv: usize,
    /// Query heads, key/value heads, queries (steps).
    pub(crate) h: usize,
    pub(crate) hkv: usize,
    pub(crate) t: usize,
    /// The first query's position (the keys before it are in the caches).
    pub(crate) p0: usize,
    pub(crate) scale: f32,
    /// Keys each query sees (0: all).
    pub(crate) window: usize,
}

impl<'a> Operands<'a> {
    /// Views `srcs`, the plain bytes of ATTENTION `op` (checked by the caller).
    ///
    /// Errors: [`ExecError::Sources`] for another op or unaligned sources, and positions
    /// that are not consecutive from at most the cache's length
    /// ([`ExecError::IndexOutOfRange`]).
    pub(crate) fn parse(op: &OpDesc, srcs: &[&'a [u8]]) -> Result<Self, ExecError> {
        let name = op.name();
        let bad = |what| ExecError::Sources { op: name.clone(), what };
        let Op::Attention { scale, window } = op.op else {
            return Err(bad("not an ATTENTION"));
        };
        let [q, k, v, kc, vc, pos] = srcs else { return Err(bad("ATTENTION takes 6 sources")) };
        let view = |b: &'a [u8]| f32_view(b).ok_or_else(|| bad("a source is not 4-byte aligned"));
        let (q, k, v, kc, vc) = (view(q)?, view(k)?, view(v)?, view(kc)?, view(vc)?);
        let [dk, h, t, _] = op.srcs[0].desc.ne;
        let [dv, hkv, _, _] = op.srcs[2].desc.ne;
        let cap = op.srcs[3].desc.ne[2];
        let mut pos =
            pos.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        let first = pos.next().unwrap_or(0);
        let p0 = usize::try_from(first).ok().filter(|&p| p <= cap).ok_or_else(|| {
            ExecError::IndexOutOfRange {
                op: name.clone(),
                tensor: op.srcs[5].desc.name.clone(),
                index: first,
                len: cap + 1,
            }
        })?;
        if pos.enumerate().any(|(i, p)| p != (p0 + i + 1) as i64) {
            return Err(bad("positions must be consecutive"));
        }
        Ok(Operands { q, k, v, kc, vc, dk, dv, h, hkv, t, p0, scale, window })
    }

    /// The key of position `j` for key/value head `g` (from the step's keys from `p0` on).
    pub(crate) fn key(&self, j: usize, g: usize) -> &'a [f32] {
        self.row(self.k, self.kc, self.dk, j, g)
    }

    /// The value of position `j` for key/value head `g`.
    pub(crate) fn val(&self, j: usize, g: usize) -> &'a [f32] {
        self.row(self.v, self.vc, self.dv, j, g)
    }

    /// Row `j` of head `g` (`d` values) in the step's rows from `p0` on, or in the cache.
    fn row(&self, step: &'a [f32], cache: &'a [f32], d: usize, j: usize, g: usize) -> &'a [f32] {
        let (hkv, p0) = (self.hkv, self.p0);
        if j >= p0 {
            &step[((j - p0) * hkv + g) * d..][..d]
        } else {
            &cache[(j * hkv + g) * d..][..d]
        }
    }
}

/// Runs ATTENTION `op` (checked by the caller) on `srcs`' plain bytes into `out`.
///
/// Errors: those of [`Operands::parse`], and the GEMM's and packing's errors.
pub(crate) fn run(
    pool: &Pool,
    path: Path,
    op: &OpDesc,
    srcs: &[&[u8]],
    out: &mut [f32],
) -> Result<Path, ExecError> {
    let name = op.name();
    let bad = |what| ExecError::Sources { op: name.clone(), what };
    let a = Operands::parse(op, srcs)?;
    let (dk, dv, h, hkv, t, p0) = (a.dk, a.dv, a.h, a.hkv, a.t, a.p0);
    let (scale, window, q) = (a.scale, a.window, a.q);
    let gemm = |error| ExecError::Gemm { op: name.clone(), error };
    let (n, group) = (p0 + t, h / hkv);
    let (m, np) = (group * t, n.next_multiple_of(32));
    let key = |j: usize, g: usize| a.key(j, g);
    let val = |j: usize, g: usize| a.val(j, g);
    SCRATCH.with_borrow_mut(|sc| {
        let Scratch { rows, s, p, o, keys, values } = sc;
        let rows = sized(rows, ((n + m) * dk).max(dv * np));
        let (s, p, o) = (sized(s, m * n), sized(p, m * np), sized(o, m * dv));
        let mut taken = path;
        for g in 0..hkv {
            // The keys as an n x dk weight, then the group's queries as m x dk activations
            // (row t * group + i: token t, head g * group + i), copied over the pool.
            let (kq, _) = rows.split_at_mut((n + m) * dk);
            fill_rows(pool, kq, dk, |first, chunk| {
                for (r, dst) in (first..).zip(chunk.chunks_exact_mut(dk)) {
                    let src = match r.checked_sub(n) {
                        None => key(r, g),
                        Some(r) => &q[((r / group) * h + g * group + r % group) * dk..][..dk],
                    };
                    dst.copy_from_slice(src);
                }
            })
            .map_err(gemm)?;
            let kb = pack_bf16(keys, n, dk, &rows[..n * dk]).map_err(bad)?;
            let kp = PackedRef::parse(kb).map_err(|e| gemm(e.into()))?;
            let qs = &rows[n * dk..][..m * dk];
            taken = pool.linear_many_on(qs, &mut [(&kp, &mut *s)], path).map_err(gemm)?;
            let rows_of = |r: usize| {
                let pt = p0 + r / group;
                let lo = if window > 0 { (pt + 1).saturating_sub(window) } else { 0 };
                lo..=pt
            };
            softmax_rows(pool, s, p, (n, np), scale, rows_of).map_err(gemm)?;
            // The values transposed: dv rows of np keys (zeros past n), a range of rows
            // per share.
            fill_rows(pool, &mut rows[..dv * np], np, |d0, chunk| {
                chunk.fill(0.0);
                let d1 = d0 + chunk.len() / np;
                for j in 0..n {
                    for (row, &x) in chunk.chunks_exact_mut(np).zip(&val(j, g)[d0..d1]) {
                        row[j] = x;
                    }
                }
            })
            .map_err(gemm)?;
            let vb = pack_bf16(values, dv, np, &rows[..dv * np]).map_err(bad)?;
            let vp = PackedRef::parse(vb).map_err(|e| gemm(e.into()))?;
            pool.linear_many_on(p, &mut [(&vp, &mut *o)], path).map_err(gemm)?;
            // The group's heads of each token, back in place (a range of tokens per share).
            let o = &*o;
            fill_rows(pool, &mut out[..t * h * dv], h * dv, |t0, chunk| {
                for (ti, dst) in (t0..).zip(chunk.chunks_exact_mut(h * dv)) {
                    let src = &o[ti * group * dv..][..group * dv];
                    dst[g * group * dv..][..group * dv].copy_from_slice(src);
                }
            })
            .map_err(gemm)?;
        }
        Ok(taken)
    })
}

/// Runs `fill(first, chunk)` over the pool's threads on one contiguous range of the
/// `width`-value rows of `dst` per share (`chunk` holds rows `first..`): the copies
/// around the GEMMs and the softmax, each share writing its own rows.
fn fill_rows(
    pool: &Pool,
    dst: &mut [f32],
    width: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) -> Result<(), GemmError> {
    let rows = dst.len() / width.max(1);
    let per = rows.div_ceil(pool.threads().max(1)).max(1);
    // One part per share, each locked by its share alone (never contended).
    let parts: Vec<Mutex<(usize, &mut [f32])>> =
        dst.chunks_mut(per * width).enumerate().map(|(i, c)| Mutex::new((i * per, c))).collect();
    pool.try_broadcast(|share| {
        let Some(part) = parts.get(share) else { return };
        let mut part = part.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (first, chunk) = &mut *part;
        fill(*first, chunk);
    })
}

/// The causal softmax of every score row of `s` (`dims.0` scores each) into the rows of
/// `p` (`dims.1` values each, zero outside `live(r)`), over the pool's threads.
fn softmax_rows(
    pool: &Pool,
    s: &[f32],
    p: &mut [f32],
    (n, np): (usize, usize),
    scale: f32,
    live: impl Fn(usize) -> RangeInclusive<usize> + Sync,
) -> Result<(), GemmError> {
    let rows = s.len() / n;
    fill_rows(pool, &mut p[..rows * np], np, |r0, chunk| {
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        for (r, prow) in (r0..).zip(chunk.chunks_exact_mut(np)) {
            let (srow, range) = (&s[r * n..][..n], live(r));
            #[cfg(target_arch = "x86_64")]
            if avx512 {
                // SAFETY: AVX-512 F was detected on this CPU above.
                unsafe { softmax_row_avx512(srow, prow, scale, range) };
                continue;
            }
            softmax_row(srow, prow, scale, range);
        }
    })
}

/// [`softmax_row`] compiled for AVX-512: the same operations in the same order (the same
/// bits), sixteen lanes to a register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn softmax_row_avx512(srow: &[f32], prow: &mut [f32], scale: f32, range: RangeInclusive<usize>) {
    softmax_row(srow, prow, scale, range);
}

/// The softmax of `scale * srow[range]` into `prow[range]`, zeros elsewhere in `prow`.
#[inline(always)]
fn softmax_row(srow: &[f32], prow: &mut [f32], scale: f32, range: RangeInclusive<usize>) {
    let live = &srow[range.clone()];
    let max = lanes(live, f32::NEG_INFINITY, |a, x| a.max(scale * x), f32::max);
    prow.fill(0.0);
    let out = &mut prow[range];
    // A plain map (vectorized), then the sum in lanes: one running sum is a chain of
    // dependent adds, slower than the exponentials themselves.
    for (pv, &x) in out.iter_mut().zip(live) {
        *pv = exp_f32(scale * x - max);
    }
    let inv = 1.0 / lanes(out, 0.0, |a, x| a + x, |a, b| a + b);
    for pv in out {
        *pv *= inv;
    }
}
