//! The f32 reference ops: every [`Op`] on plain bytes (F32, I32, or ggml block formats
//! dequantized with amx-core's reference dequantizers). Both test backends run these on
//! data they may read plainly, and tests use them as the oracle.
//!
//! Sums accumulate in f32 in a fixed order (dot products in eight interleaved lanes),
//! so the same inputs give the same bits.

use std::sync::Arc;

use amx_core::formats::dequantize;

use crate::error::ExecError;
use crate::fast_math::exp_f32;
use crate::op::{Op, OpDesc};
use bumpalo::Bump;

use crate::tensor::{DType, TensorDesc, f32_from_bytes, f32_to_bytes, f32_view, f32_view_mut};

/// Whether the reference ops run `op` as described (its sources fit the op's rules and
/// its result is what they give).
pub fn supports(op: &OpDesc) -> bool {
    op.check().is_ok()
}

/// Runs `op` on `srcs`, the plain bytes of its sources (ggml layout, in order), and
/// returns the plain bytes of the result.
///
/// Errors: [`ExecError::Sources`] when the op is not [`supports`]ed or a source has
/// another length than its description; [`ExecError::IndexOutOfRange`] for a row or
/// expert id outside its table; [`ExecError::Format`] if dequantization fails.
pub fn compute(op: &OpDesc, srcs: &[&[u8]]) -> Result<Vec<u8>, ExecError> {
    let mut out = vec![0f32; op.dst.elements()];
    compute_values(op, srcs, &mut out, &Bump::new())?;
    // I32 results (TOP_K) were written as their bit patterns.
    Ok(f32_to_bytes(&out))
}

/// [`compute`] into `out`, the result's plain bytes (as long as [`TensorDesc::nbytes`]
/// of `op.dst`, 4-byte aligned, as every buffer of this crate is), with temporaries
/// from `scratch`: no allocation of its own when the F32 sources are 4-byte aligned
/// and `scratch` has room (the engine's per-step arena, reset every step).
///
/// Errors: those of [`compute`], and [`ExecError::Sources`] for an `out` of another
/// length or not aligned.
pub fn compute_into(
    op: &OpDesc,
    srcs: &[&[u8]],
    out: &mut [u8],
    scratch: &Bump,
) -> Result<(), ExecError> {
    let bad = |what| ExecError::Sources { op: op.name().clone(), what };
    if op.dst.nbytes() != Some(out.len()) {
        return Err(bad("the output has another length than the result"));
    }
    let out = f32_view_mut(out).ok_or_else(|| bad("the output is not 4-byte aligned"))?;
    compute_values(op, srcs, out, scratch)
}

/// The values of an F32 or block-format source: F32 bytes in place when aligned, else
/// copied or dequantized into `scratch`.
fn values<'a>(
    op: &Arc<str>,
    desc: &TensorDesc,
    bytes: &'a [u8],
    scratch: &'a Bump,
) -> Result<&'a [f32], ExecError> {
    match desc.dtype {
        DType::F32 => Ok(match f32_view(bytes) {
            Some(v) => v,
            None => scratch.alloc_slice_fill_iter(f32_from_bytes(bytes)),
        }),
        DType::Block(format) => {
            let out = scratch.alloc_slice_fill_copy(desc.elements(), 0f32);
            dequantize(format, bytes, out)
                .map_err(|error| ExecError::Format { op: op.clone(), error })?;
            Ok(out)
        }
        DType::I32 => Err(ExecError::Sources { op: op.clone(), what: "I32 where values were due" }),
    }
}

/// The raw 4-byte words of a source (F32 or I32), in place when aligned.
fn words<'a>(bytes: &'a [u8], scratch: &'a Bump) -> &'a [f32] {
    match f32_view(bytes) {
        Some(v) => v,
        None => scratch.alloc_slice_fill_iter(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        ),
    }
}

/// I32 ids of a source.
fn ids_of<'a>(bytes: &'a [u8]) -> impl Iterator<Item = i32> + 'a {
    bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

fn compute_values(
    op: &OpDesc,
    srcs: &[&[u8]],
    out: &mut [f32],
    scratch: &Bump,
) -> Result<(), ExecError> {
    let name = op.name();
    let bad = |what| ExecError::Sources { op: name.clone(), what };
    if !supports(op) {
        return Err(bad("the sources do not fit the op"));
    }
    if srcs.len() != op.srcs.len() {
        return Err(bad("wrong number of source buffers"));
    }
    for (s, bytes) in op.srcs.iter().zip(srcs) {
        if s.desc.nbytes() != Some(bytes.len()) {
            return Err(bad("a source buffer has another length than its tensor"));
        }
    }
    if out.len() != op.dst.elements() {
        return Err(bad("the output has another length than the result"));
    }
    let d = |i: usize| &op.srcs[i].desc;
    let f = |i: usize| values(name, d(i), srcs[i], scratch);
    match op.op {
        Op::MulMat => mul_mat(f(0)?, d(0).ne, f(1)?, d(1).ne, out),
        Op::MulMatId => mul_mat_id(name, f(0)?, d(0), f(1)?, d(1).ne, srcs[2], d(2), out)?,
        Op::Add => binary(f(0)?, d(0).ne, f(1)?, d(1).ne, out, |a, b| a + b),
        Op::Mul => binary(f(0)?, d(0).ne, f(1)?, d(1).ne, out, |a, b| a * b),
        Op::Div => binary(f(0)?, d(0).ne, f(1)?, d(1).ne, out, |a, b| a / b),
        Op::GetRows => get_rows(name, d(0), srcs[0], srcs[1], d(1), out)?,
        Op::SumRows => {
            for (o, r) in out.iter_mut().zip(f(0)?.chunks_exact(d(0).ne[0])) {
                *o = r.iter().sum();
            }
        }
        Op::SoftMax => {
            let c = d(0).ne[0];
            for (o, r) in out.chunks_exact_mut(c).zip(f(0)?.chunks_exact(c)) {
                softmax_into(r, o);
            }
        }
        Op::RmsNorm { eps } => {
            let c = d(0).ne[0];
            for (o, r) in out.chunks_exact_mut(c).zip(f(0)?.chunks_exact(c)) {
                rms_norm_into(r, eps, o);
            }
        }
        Op::Silu => map(f(0)?, out, |x| x / (1.0 + exp_f32(-x))),
        Op::Gelu => map(f(0)?, out, gelu),
        Op::Scale { s } => {
            for (o, &x) in out.iter_mut().zip(f(0)?) {
                *o = x * s;
            }
        }
        Op::Rope { mode, n_dims, freq_base, freq_scale } => {
            out.copy_from_slice(f(0)?);
            let rope = Rope { mode, n_dims, freq_base, freq_scale };
            rope.apply(name, out, d(0).ne, srcs[1], d(1))?;
        }
        Op::Attention { scale, window } => {
            let att = Attention { scale, window };
            let v = [f(0)?, f(1)?, f(2)?, f(3)?, f(4)?];
            att.apply(name, v, [d(0).ne, d(2).ne, d(3).ne], srcs[5], d(5), out, scratch)?;
        }
        Op::Transpose => transpose(f(0)?, d(0).ne, out),
        // The same words (F32 or I32 bit patterns) in another shape.
        Op::Reshape { .. } => out.copy_from_slice(words(srcs[0], scratch)),
        Op::TopK { k } => {
            let c = d(0).ne[0];
            let idx = scratch.alloc_slice_fill_copy(c, 0usize);
            for (o, r) in out.chunks_exact_mut(k).zip(f(0)?.chunks_exact(c)) {
                top_k_into(r, idx, o);
            }
        }
    }
    Ok(())
}

fn map(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// `sum a[i] * b[i]` in eight interleaved f32 partial sums (lane `i % 8`), added
/// pairwise at the end, then the tail: a fixed order (the same inputs give the same
/// bits) that the compiler turns into vector code, where a single running sum would
/// wait on each addition.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (at, bt) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    let sum = ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7));
    at.iter().zip(bt).fold(sum, |s, (x, y)| s + x * y)
}

fn mul_mat(a: &[f32], an: [usize; 4], b: &[f32], bn: [usize; 4], out: &mut [f32]) {
    let (k, n, m) = (an[0], an[1], bn[1]);
    let (r2, r3) = (bn[2] / an[2], bn[3] / an[3]);
    let mut o = out.iter_mut();
    for i3 in 0..bn[3] {
        for i2 in 0..bn[2] {
            let a_mat = &a[((i3 / r3) * an[2] + i2 / r2) * n * k..][..n * k];
            let b_mat = &b[(i3 * bn[2] + i2) * m * k..][..m * k];
            for x in b_mat.chunks_exact(k) {
                for (w, o) in a_mat.chunks_exact(k).zip(&mut o) {
                    *o = dot(w, x);
                }
            }
        }
    }
}

fn index_in(op: &Arc<str>, t: &TensorDesc, id: i32, len: usize) -> Result<usize, ExecError> {
    match usize::try_from(id) {
        Ok(i) if i < len => Ok(i),
        _ => Err(ExecError::IndexOutOfRange {
            op: op.clone(),
            tensor: t.name.clone(),
            index: i64::from(id),
            len,
        }),
    }
}

#[allow(clippy::too_many_arguments)] // the op's sources and shapes, spelled out
fn mul_mat_id(
    op: &Arc<str>,
    a: &[f32],
    ad: &TensorDesc,
    b: &[f32],
    bn: [usize; 4],
    ids: &[u8],
    idd: &TensorDesc,
    out: &mut [f32],
) -> Result<(), ExecError> {
    let [k, n, experts, _] = ad.ne;
    let used = idd.ne[0];
    for (j, (id, o)) in ids_of(ids).zip(out.chunks_exact_mut(n)).enumerate() {
        let (t, u) = (j / used, j % used);
        let e = index_in(op, idd, id, experts)?;
        let x = &b[(t * bn[1] + u % bn[1]) * k..][..k];
        for (w, o) in a[e * n * k..][..n * k].chunks_exact(k).zip(o) {
            *o = dot(w, x);
        }
    }
    Ok(())
}

/// `f` elementwise with `b` broadcast. Generic in `f` so that each op's loop is compiled
/// with its arithmetic inline (vector code for rows of the same length).
fn binary(
    a: &[f32],
    an: [usize; 4],
    b: &[f32],
    bn: [usize; 4],
    out: &mut [f32],
    f: impl Fn(f32, f32) -> f32,
) {
    for ((i, row), orow) in a.chunks_exact(an[0]).enumerate().zip(out.chunks_exact_mut(an[0])) {
        let (i1, i2, i3) = (i % an[1], (i / an[1]) % an[2], i / (an[1] * an[2]));
        let bi = ((i3 % bn[3]) * bn[2] + i2 % bn[2]) * bn[1] + i1 % bn[1];
        let brow = &b[bi * bn[0]..][..bn[0]];
        if bn[0] == an[0] {
            for ((o, &x), &y) in orow.iter_mut().zip(row).zip(brow) {
                *o = f(x, y);
            }
        } else {
            for (i0, (o, &x)) in orow.iter_mut().zip(row).enumerate() {
                *o = f(x, brow[i0 % bn[0]]);
            }
        }
    }
}

fn get_rows(
    op: &Arc<str>,
    table: &TensorDesc,
    bytes: &[u8],
    ids: &[u8],
    idd: &TensorDesc,
    out: &mut [f32],
) -> Result<(), ExecError> {
    let [c, r, _, _] = table.ne;
    let row_bytes = table
        .dtype
        .row_bytes(c)
        .ok_or(ExecError::Sources { op: op.clone(), what: "table rows are not whole blocks" })?;
    for (j, (id, dst)) in ids_of(ids).zip(out.chunks_exact_mut(c)).enumerate() {
        let b = j / idd.ne[0];
        let row = b * r + index_in(op, idd, id, r)?;
        let src = &bytes[row * row_bytes..][..row_bytes];
        match table.dtype {
            DType::Block(format) => dequantize(format, src, dst)
                .map_err(|error| ExecError::Format { op: op.clone(), error })?,
            DType::F32 | DType::I32 => {
                for (o, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
        }
    }
    Ok(())
}

fn softmax_into(row: &[f32], out: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (o, &x) in out.iter_mut().zip(row) {
        *o = exp_f32(x - max);
    }
    let sum: f32 = out.iter().sum();
    for o in out.iter_mut() {
        *o /= sum;
    }
}

fn rms_norm_into(row: &[f32], eps: f32, out: &mut [f32]) {
    let mean = row.iter().map(|x| x * x).sum::<f32>() / row.len() as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for (o, &x) in out.iter_mut().zip(row) {
        *o = x * scale;
    }
}

fn transpose(a: &[f32], ne: [usize; 4], out: &mut [f32]) {
    let (c, r) = (ne[0], ne[1]);
    for (mat, omat) in a.chunks_exact(c * r).zip(out.chunks_exact_mut(c * r)) {
        for i in 0..c {
            for j in 0..r {
                omat[i * r + j] = mat[j * c + i];
            }
        }
    }
}

/// ggml's GELU (tanh form; ggml tabulates it in F16 on the CPU, computed here in f32).
fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

/// The parameters of [`Op::Rope`].
struct Rope {
    mode: crate::op::RopeMode,
    n_dims: usize,
    freq_base: f32,
    freq_scale: f32,
}

impl Rope {
    /// Rotates `x` (`[D, H, T]`) in place.
    fn apply(
        &self,
        op: &Arc<str>,
        x: &mut [f32],
        ne: [usize; 4],
        pos: &[u8],
        pd: &TensorDesc,
    ) -> Result<(), ExecError> {
        let (d, h) = (ne[0], ne[1]);
        let half = self.n_dims / 2;
        let base = f64::from(self.freq_base);
        for (t, p) in ids_of(pos).enumerate() {
            let p = index_in(op, pd, p, i32::MAX as usize)?;
            // Angles in f64 then rounded: positions up to millions keep their precision.
            let p = p as f64 * f64::from(self.freq_scale);
            // The frequencies base^(-2i / n_dims), one multiplication apart.
            let step = base.powf(-2.0 / self.n_dims as f64);
            let mut freq = 1.0f64;
            for i in 0..half {
                let theta = p * freq;
                freq *= step;
                let (c, s) = (theta.cos() as f32, theta.sin() as f32);
                let (a, b) = match self.mode {
                    crate::op::RopeMode::Normal => (2 * i, 2 * i + 1),
                    crate::op::RopeMode::Neox => (i, i + half),
                };
                for head in x[t * d * h..][..d * h].chunks_exact_mut(d) {
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * c - x1 * s;
                    head[b] = x0 * s + x1 * c;
                }
            }
        }
        Ok(())
    }
}

/// The parameters of [`Op::Attention`].
struct Attention {
    scale: f32,
    window: usize,
}

impl Attention {
    /// `v` = q, k, v, k cache, v cache; `ne` = q's, v's and the k cache's shapes.
    #[allow(clippy::too_many_arguments)] // the op's sources and shapes, spelled out
    fn apply(
        &self,
        op: &Arc<str>,
        [q, k, vv, kc, vc]: [&[f32]; 5],
        ne: [[usize; 4]; 3],
        pos: &[u8],
        pd: &TensorDesc,
        out: &mut [f32],
        scratch: &Bump,
    ) -> Result<(), ExecError> {
        let [[dk, h, t, _], [dv, hkv, _, _], [_, _, cap, _]] = ne;
        let mut it = ids_of(pos);
        let p0 = index_in(op, pd, it.next().unwrap_or(0), cap + 1)?;
        if ids_of(pos).enumerate().any(|(i, p)| i64::from(p) != (p0 + i) as i64) {
            return Err(ExecError::Sources {
                op: op.clone(),
                what: "positions must be consecutive",
            });
        }
        let scores = scratch.alloc_slice_fill_copy(p0 + t, 0f32);
        let job = AttentionJob { q, k, vv, kc, vc, dims: [dk, dv, h, hkv, t, p0], out, scores };
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected on this CPU just above.
            unsafe { self.heads_avx2(job) };
            return Ok(());
        }
        self.heads(job);
        Ok(())
    }

    /// [`Attention::heads`] compiled for AVX2: the same operations in the same order
    /// (the same bits), eight lanes to a register.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn heads_avx2(&self, job: AttentionJob<'_>) {
        self.heads(job);
    }

    /// Every query of every head: scores, softmax, the weighted values.
    #[inline(always)]
    fn heads(&self, job: AttentionJob<'_>) {
        let AttentionJob { q, k, vv, kc, vc, dims: [dk, dv, h, hkv, t, p0], out, scores } = job;
        let group = h / hkv;
        out.fill(0.0);
        for ti in 0..t {
            let p = p0 + ti;
            let lo = if self.window > 0 { (p + 1).saturating_sub(self.window) } else { 0 };
            for hi in 0..h {
                let g = hi / group;
                let qv = &q[(ti * h + hi) * dk..][..dk];
                let key = |j: usize| {
                    if j >= p0 {
                        &k[((j - p0) * hkv + g) * dk..][..dk]
                    } else {
                        &kc[(j * hkv + g) * dk..][..dk]
                    }
                };
                let s = &mut scores[..p + 1 - lo];
                for (j, sc) in (lo..=p).zip(s.iter_mut()) {
                    *sc = self.scale * dot(qv, key(j));
                }
                let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for sc in s.iter_mut() {
                    *sc = exp_f32(*sc - max);
                }
                let sum: f32 = s.iter().sum();
                let o = &mut out[(ti * h + hi) * dv..][..dv];
                for (j, &w) in (lo..=p).zip(s.iter()) {
                    let w = w / sum;
                    let val = if j >= p0 {
                        &vv[((j - p0) * hkv + g) * dv..][..dv]
                    } else {
                        &vc[(j * hkv + g) * dv..][..dv]
                    };
                    for (o, &x) in o.iter_mut().zip(val) {
                        *o += w * x;
                    }
                }
            }
        }
    }
}

/// The operands of one [`Op::Attention`] (checked), for [`Attention::heads`].
struct AttentionJob<'a> {
    q: &'a [f32],
    k: &'a [f32],
    vv: &'a [f32],
    kc: &'a [f32],
    vc: &'a [f32],
    /// Dk, Dv, H, Hkv, T, the first position.
    dims: [usize; 6],
    out: &'a mut [f32],
    scores: &'a mut [f32],
}

/// Indices of the `k` largest values of `row`, largest first, ties to the lower index
/// (NaN sorts above every number, so it is never silently skipped), written as I32 bit
/// patterns into `out`; `idx` is scratch of `row.len()`.
fn top_k_into(row: &[f32], idx: &mut [usize], out: &mut [f32]) {
    for (i, x) in idx.iter_mut().enumerate() {
        *x = i;
    }
    // A total order (value, then index), so the unstable sort is deterministic and
    // needs no buffer.
    idx.sort_unstable_by(|&i, &j| row[j].total_cmp(&row[i]).then(i.cmp(&j)));
    for (o, &i) in out.iter_mut().zip(idx.iter()) {
        *o = f32::from_bits(i as u32);
    }
}

#[cfg(test)]
mod tests;
