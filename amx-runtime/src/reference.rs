//! The f32 reference ops: every [`Op`] on plain bytes (F32, I32, or ggml block formats
//! dequantized with amx-core's reference dequantizers). Both test backends run these on
//! data they may read plainly, and tests use them as the oracle.
//!
//! Sums accumulate in f32 in index order, so the same inputs give the same bits.

use std::sync::Arc;

use amx_core::formats::dequantize;

use crate::error::ExecError;
use crate::op::{Op, OpDesc};
use crate::tensor::{
    DType, TensorDesc, f32_from_bytes, f32_to_bytes, i32_from_bytes, i32_to_bytes,
};

/// Whether the reference ops run `op` as described (its sources fit the op's rules and
/// its result is what they give).
pub fn supports(op: &OpDesc) -> bool {
    let descs: Vec<&TensorDesc> = op.srcs.iter().map(|s| &s.desc).collect();
    op.op.infer(op.name(), &descs).is_ok_and(|d| d == op.dst)
}

/// Runs `op` on `srcs`, the plain bytes of its sources (ggml layout, in order), and
/// returns the plain bytes of the result.
///
/// Errors: [`ExecError::Sources`] when the op is not [`supports`]ed or a source has
/// another length than its description; [`ExecError::IndexOutOfRange`] for a row or
/// expert id outside its table; [`ExecError::Format`] if dequantization fails.
pub fn compute(op: &OpDesc, srcs: &[&[u8]]) -> Result<Vec<u8>, ExecError> {
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
    let d = |i: usize| &op.srcs[i].desc;
    let f = |i: usize| values(name, d(i), srcs[i]);
    let out = match op.op {
        Op::MulMat => mul_mat(&f(0)?, d(0).ne, &f(1)?, d(1).ne),
        Op::MulMatId => {
            let ids = i32_from_bytes(srcs[2]);
            mul_mat_id(name, &f(0)?, d(0), &f(1)?, d(1).ne, &ids, d(2))?
        }
        Op::Add => binary(&f(0)?, d(0).ne, &f(1)?, d(1).ne, |a, b| a + b),
        Op::Mul => binary(&f(0)?, d(0).ne, &f(1)?, d(1).ne, |a, b| a * b),
        Op::Div => binary(&f(0)?, d(0).ne, &f(1)?, d(1).ne, |a, b| a / b),
        Op::GetRows => get_rows(name, d(0), srcs[0], &i32_from_bytes(srcs[1]), d(1))?,
        Op::SumRows => rows(&f(0)?, d(0).ne[0]).map(|r| r.iter().sum()).collect(),
        Op::SoftMax => rows(&f(0)?, d(0).ne[0]).flat_map(softmax).collect(),
        Op::RmsNorm { eps } => rows(&f(0)?, d(0).ne[0]).flat_map(|r| rms_norm(r, eps)).collect(),
        Op::Silu => f(0)?.iter().map(|&x| x / (1.0 + (-x).exp())).collect(),
        Op::Gelu => f(0)?.iter().map(|&x| gelu(x)).collect(),
        Op::Scale { s } => f(0)?.iter().map(|&x| x * s).collect(),
        Op::Rope { mode, n_dims, freq_base, freq_scale } => {
            let pos = i32_from_bytes(srcs[1]);
            let rope = Rope { mode, n_dims, freq_base, freq_scale };
            rope.apply(name, &f(0)?, d(0).ne, &pos, d(1))?
        }
        Op::Attention { scale, window } => {
            let pos = i32_from_bytes(srcs[5]);
            let att = Attention { scale, window };
            let v = [f(0)?, f(1)?, f(2)?, f(3)?, f(4)?];
            att.apply(name, &v, [d(0).ne, d(2).ne, d(3).ne], &pos, d(5))?
        }
        Op::Transpose => transpose(&f(0)?, d(0).ne),
        Op::Reshape { .. } => return Ok(srcs[0].to_vec()),
        Op::TopK { k } => {
            let ids: Vec<i32> = rows(&f(0)?, d(0).ne[0]).flat_map(|r| top_k(r, k)).collect();
            return Ok(i32_to_bytes(&ids));
        }
    };
    Ok(f32_to_bytes(&out))
}

/// The values of an F32 or block-format tensor (dequantized).
fn values(op: &Arc<str>, desc: &TensorDesc, bytes: &[u8]) -> Result<Vec<f32>, ExecError> {
    match desc.dtype {
        DType::F32 => Ok(f32_from_bytes(bytes)),
        DType::Block(format) => {
            let mut out = vec![0.0; desc.elements()];
            dequantize(format, bytes, &mut out)
                .map_err(|error| ExecError::Format { op: op.clone(), error })?;
            Ok(out)
        }
        DType::I32 => Err(ExecError::Sources { op: op.clone(), what: "I32 where values were due" }),
    }
}

fn rows(v: &[f32], len: usize) -> std::slice::ChunksExact<'_, f32> {
    v.chunks_exact(len)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |s, (x, y)| s + x * y)
}

fn mul_mat(a: &[f32], an: [usize; 4], b: &[f32], bn: [usize; 4]) -> Vec<f32> {
    let (k, n, m) = (an[0], an[1], bn[1]);
    let (r2, r3) = (bn[2] / an[2], bn[3] / an[3]);
    let mut out = Vec::with_capacity(n * m * bn[2] * bn[3]);
    for i3 in 0..bn[3] {
        for i2 in 0..bn[2] {
            let a_mat = &a[((i3 / r3) * an[2] + i2 / r2) * n * k..][..n * k];
            let b_mat = &b[(i3 * bn[2] + i2) * m * k..][..m * k];
            for x in b_mat.chunks_exact(k) {
                out.extend(a_mat.chunks_exact(k).map(|w| dot(w, x)));
            }
        }
    }
    out
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

fn mul_mat_id(
    op: &Arc<str>,
    a: &[f32],
    ad: &TensorDesc,
    b: &[f32],
    bn: [usize; 4],
    ids: &[i32],
    idd: &TensorDesc,
) -> Result<Vec<f32>, ExecError> {
    let [k, n, experts, _] = ad.ne;
    let (used, tokens) = (idd.ne[0], idd.ne[1]);
    let mut out = Vec::with_capacity(n * used * tokens);
    for t in 0..tokens {
        for u in 0..used {
            let e = index_in(op, idd, ids[t * used + u], experts)?;
            let x = &b[(t * bn[1] + u % bn[1]) * k..][..k];
            out.extend(a[e * n * k..][..n * k].chunks_exact(k).map(|w| dot(w, x)));
        }
    }
    Ok(out)
}

fn binary(
    a: &[f32],
    an: [usize; 4],
    b: &[f32],
    bn: [usize; 4],
    f: fn(f32, f32) -> f32,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(a.len());
    for i3 in 0..an[3] {
        for i2 in 0..an[2] {
            for i1 in 0..an[1] {
                let row = &a[((i3 * an[2] + i2) * an[1] + i1) * an[0]..][..an[0]];
                let bi = ((i3 % bn[3]) * bn[2] + i2 % bn[2]) * bn[1] + i1 % bn[1];
                let brow = &b[bi * bn[0]..][..bn[0]];
                out.extend(row.iter().enumerate().map(|(i0, &x)| f(x, brow[i0 % bn[0]])));
            }
        }
    }
    out
}

fn get_rows(
    op: &Arc<str>,
    table: &TensorDesc,
    bytes: &[u8],
    ids: &[i32],
    idd: &TensorDesc,
) -> Result<Vec<f32>, ExecError> {
    let [c, r, _, _] = table.ne;
    let row_bytes = table
        .dtype
        .row_bytes(c)
        .ok_or(ExecError::Sources { op: op.clone(), what: "table rows are not whole blocks" })?;
    let mut out = vec![0.0; c * ids.len()];
    for (j, (&id, dst)) in ids.iter().zip(out.chunks_exact_mut(c)).enumerate() {
        let b = j / idd.ne[0];
        let row = b * r + index_in(op, idd, id, r)?;
        let src = &bytes[row * row_bytes..][..row_bytes];
        match table.dtype {
            DType::Block(format) => dequantize(format, src, dst)
                .map_err(|error| ExecError::Format { op: op.clone(), error })?,
            _ => dst.copy_from_slice(&f32_from_bytes(src)),
        }
    }
    Ok(out)
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}

fn rms_norm(row: &[f32], eps: f32) -> Vec<f32> {
    let mean = row.iter().map(|x| x * x).sum::<f32>() / row.len() as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    row.iter().map(|x| x * scale).collect()
}

fn transpose(a: &[f32], ne: [usize; 4]) -> Vec<f32> {
    let (c, r) = (ne[0], ne[1]);
    let mut out = Vec::with_capacity(a.len());
    for mat in a.chunks_exact(c * r) {
        for i in 0..c {
            out.extend((0..r).map(|j| mat[j * c + i]));
        }
    }
    out
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
    fn apply(
        &self,
        op: &Arc<str>,
        x: &[f32],
        ne: [usize; 4],
        pos: &[i32],
        pd: &TensorDesc,
    ) -> Result<Vec<f32>, ExecError> {
        let (d, h) = (ne[0], ne[1]);
        let half = self.n_dims / 2;
        let mut out = x.to_vec();
        for (t, &p) in pos.iter().enumerate() {
            if p < 0 {
                return Err(ExecError::IndexOutOfRange {
                    op: op.clone(),
                    tensor: pd.name.clone(),
                    index: i64::from(p),
                    len: usize::MAX,
                });
            }
            // Angles in f64 then rounded: positions up to millions keep their precision.
            let p = f64::from(p) * f64::from(self.freq_scale);
            let base = f64::from(self.freq_base);
            let trig: Vec<(f32, f32)> = (0..half)
                .map(|i| {
                    let theta = p * base.powf(-2.0 * i as f64 / self.n_dims as f64);
                    (theta.cos() as f32, theta.sin() as f32)
                })
                .collect();
            for head in out[t * d * h..][..d * h].chunks_exact_mut(d) {
                for (i, &(c, s)) in trig.iter().enumerate() {
                    let (a, b) = match self.mode {
                        crate::op::RopeMode::Normal => (2 * i, 2 * i + 1),
                        crate::op::RopeMode::Neox => (i, i + half),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * c - x1 * s;
                    head[b] = x0 * s + x1 * c;
                }
            }
        }
        Ok(out)
    }
}

/// The parameters of [`Op::Attention`].
struct Attention {
    scale: f32,
    window: usize,
}

impl Attention {
    /// `v` = q, k, v, k cache, v cache; `ne` = q's, v's and the k cache's shapes.
    fn apply(
        &self,
        op: &Arc<str>,
        v: &[Vec<f32>; 5],
        ne: [[usize; 4]; 3],
        pos: &[i32],
        pd: &TensorDesc,
    ) -> Result<Vec<f32>, ExecError> {
        let [q, k, vv, kc, vc] = v;
        let [[dk, h, t, _], [dv, hkv, _, _], [_, _, cap, _]] = ne;
        let p0 = index_in(op, pd, pos[0], cap + 1)?;
        if pos.iter().enumerate().any(|(i, &p)| i64::from(p) != (p0 + i) as i64) {
            return Err(ExecError::Sources {
                op: op.clone(),
                what: "positions must be consecutive",
            });
        }
        let group = h / hkv;
        let mut out = vec![0.0; dv * h * t];
        let mut scores = Vec::with_capacity(p0 + t);
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
                scores.clear();
                scores.extend((lo..=p).map(|j| self.scale * dot(qv, key(j))));
                let probs = softmax(&scores);
                let o = &mut out[(ti * h + hi) * dv..][..dv];
                for (j, &w) in (lo..=p).zip(&probs) {
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
        Ok(out)
    }
}

/// Indices of the `k` largest values, largest first, ties to the lower index (NaN sorts
/// above every number, so it is never silently skipped).
fn top_k(row: &[f32], k: usize) -> Vec<i32> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&i, &j| row[j].total_cmp(&row[i]).then(i.cmp(&j)));
    idx.into_iter().take(k).map(|i| i as i32).collect()
}

#[cfg(test)]
mod tests;
