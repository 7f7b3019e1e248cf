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

/// Indices of the `k` largest values, largest first, ties to the lower index (NaN sorts
/// above every number, so it is never silently skipped).
fn top_k(row: &[f32], k: usize) -> Vec<i32> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&i, &j| row[j].total_cmp(&row[i]).then(i.cmp(&j)));
    idx.into_iter().take(k).map(|i| i as i32).collect()
}

#[cfg(test)]
mod tests;
