//! The f32 reference ops: every [`Op`] on plain bytes (F32, I32, or ggml block formats
//! dequantized with amx-core's reference dequantizers). Both test backends run these on
//! data they may read plainly, and tests use them as the oracle.
//!
//! Sums accumulate in f32 in a fixed order (dot products in eight interleaved lanes),
//! so the same inputs give the same bits. The ops computed row by row (`RowJob`) give
//! the same bits for any split of their rows, which lets the CPU backend run them over
//! its pool.
//!
//! One concern per module: `rows` (the row-wise and elementwise ops), `rope`, `matmul`,
//! `attention`, `top_k`.

use std::sync::Arc;

use amx_core::formats::dequantize;

use crate::error::ExecError;
use crate::op::{CheckedOp, Op, OpDesc};
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
    check(op, srcs, out.len())?;
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
    let out = checked_output(op, srcs, out)?;
    compute_values(op, srcs, out, scratch)
}

/// [`compute_into`] of an op already checked ([`CheckedOp`]: [`supports`] is not asked
/// again); the lengths of `srcs` and `out` are checked as there.
///
/// Errors: those of [`compute_into`].
pub(crate) fn compute_sized_into(
    op: CheckedOp<'_>,
    srcs: &[&[u8]],
    out: &mut [u8],
    scratch: &Bump,
) -> Result<(), ExecError> {
    let op = op.op();
    let out = sized_output(op, srcs, out)?;
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

/// The result's values in `out` (the result's plain bytes) after checking `op`, its
/// sources `srcs` and `out`: what [`compute_into`] checks before it computes.
///
/// Errors: as [`compute_into`]'s, but for the computing.
pub(crate) fn checked_output<'o>(
    op: &OpDesc,
    srcs: &[&[u8]],
    out: &'o mut [u8],
) -> Result<&'o mut [f32], ExecError> {
    if !supports(op) {
        return Err(ExecError::Sources { op: op.name().clone(), what: NOT_SUPPORTED });
    }
    sized_output(op, srcs, out)
}

/// [`checked_output`] but for [`supports`], which the caller has asked.
pub(crate) fn sized_output<'o>(
    op: &OpDesc,
    srcs: &[&[u8]],
    out: &'o mut [u8],
) -> Result<&'o mut [f32], ExecError> {
    let bad = |what| ExecError::Sources { op: op.name().clone(), what };
    if op.dst.nbytes() != Some(out.len()) {
        return Err(bad("the output has another length than the result"));
    }
    let out = f32_view_mut(out).ok_or_else(|| bad("the output is not 4-byte aligned"))?;
    check_lengths(op, srcs, out.len())?;
    Ok(out)
}

const NOT_SUPPORTED: &str = "the sources do not fit the op";

/// [`ExecError::Sources`] unless `op` is [`supports`]ed, `srcs` are its sources' bytes
/// and `out_len` is its result's length in values.
pub(crate) fn check(op: &OpDesc, srcs: &[&[u8]], out_len: usize) -> Result<(), ExecError> {
    if !supports(op) {
        return Err(ExecError::Sources { op: op.name().clone(), what: NOT_SUPPORTED });
    }
    check_lengths(op, srcs, out_len)
}

/// [`check`] but for [`supports`].
fn check_lengths(op: &OpDesc, srcs: &[&[u8]], out_len: usize) -> Result<(), ExecError> {
    let bad = |what| ExecError::Sources { op: op.name().clone(), what };
    if srcs.len() != op.srcs.len() {
        return Err(bad("wrong number of source buffers"));
    }
    for (s, bytes) in op.srcs.iter().zip(srcs) {
        if s.desc.nbytes() != Some(bytes.len()) {
            return Err(bad("a source buffer has another length than its tensor"));
        }
    }
    if out_len != op.dst.elements() {
        return Err(bad("the output has another length than the result"));
    }
    Ok(())
}

fn compute_values(
    op: &OpDesc,
    srcs: &[&[u8]],
    out: &mut [f32],
    scratch: &Bump,
) -> Result<(), ExecError> {
    // Checked by the caller (`check` or `check_lengths` of a checked op).
    if let Some(job) = RowJob::new(op, srcs, scratch)? {
        return job.run(0, out);
    }
    let name = op.name();
    let d = |i: usize| &op.srcs[i].desc;
    let f = |i: usize| values(name, d(i), srcs[i], scratch);
    match op.op {
        Op::MulMat => matmul::mul_mat(f(0)?, d(0).ne, f(1)?, d(1).ne, out),
        Op::MulMatId => {
            matmul::mul_mat_id(name, f(0)?, d(0), f(1)?, d(1).ne, srcs[2], d(2), out)?;
        }
        Op::TopK { k } => {
            let c = d(0).ne[0];
            let idx = scratch.alloc_slice_fill_copy(c, 0usize);
            for (o, r) in out.chunks_exact_mut(k).zip(f(0)?.chunks_exact(c)) {
                top_k::top_k_into(r, idx, o);
            }
        }
        Op::Attention { scale, window } => {
            let att = Attention { scale, window };
            let v = [f(0)?, f(1)?, f(2)?, f(3)?, f(4)?];
            att.apply(name, v, [d(0).ne, d(2).ne, d(3).ne], srcs[5], d(5), out, scratch)?;
        }
        // Computed by their row jobs, above.
        Op::Add
        | Op::Mul
        | Op::Div
        | Op::GetRows
        | Op::SumRows
        | Op::SoftMax
        | Op::RmsNorm { .. }
        | Op::Silu
        | Op::Gelu
        | Op::Scale { .. }
        | Op::Rope { .. }
        | Op::Transpose
        | Op::Reshape { .. } => {}
    }
    Ok(())
}

/// `id` as an index below `len`, or [`ExecError::IndexOutOfRange`] naming `t`.
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

mod attention;
mod matmul;
mod rope;
mod rows;
mod top_k;

use attention::Attention;
pub(crate) use rope::{Rope, RopeTable};
pub(crate) use rows::RowJob;

#[cfg(test)]
mod tests;
