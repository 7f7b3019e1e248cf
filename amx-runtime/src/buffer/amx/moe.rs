//! MUL_MAT_ID on a stack of packed experts: amx-core's grouped kernel ([`amx_core::moe`]).
//!
//! ggml's `dst[:, u, t] = src0[:, :, ids[u, t]] * src1[:, u % B, t]` (src0 `[K, N, E]`,
//! src1 `[K, B, T]`, ids `[U, T]`, dst `[N, U, T]`) maps onto the kernel without moving
//! data: with `B = 1` the T tokens are the kernel's rows, each routed to its U experts
//! (`top_k = U`); with `B = U` (the down projection, one activation per selected expert)
//! each (u, t) is a row of its own routed to one expert (`top_k = 1`). Either way the
//! kernel's output row `t * U + u` is `dst[:, u, t]`, the ggml layout row for row.
//!
//! Each expert takes the path [`Path::Auto`] picks for its own row count (AMX for busy
//! experts, VNNI for the rest); the path reported is the busiest expert's, the widest
//! one taken. With a [`Pool`] of several threads the (expert, panel range) items are
//! shared out dynamically; otherwise the calling thread runs them all.

use std::cell::RefCell;
use std::sync::OnceLock;

use amx_core::formats::Format;
use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path};
use amx_core::moe::{Grouped, MoeShape, grouped_workspace_bytes};

use crate::buffer::{Buffer, Kernel};
use crate::error::ExecError;
use crate::op::{CheckedOp, Op, OpDesc};
use crate::pool::Pool;
use crate::tensor::{DType, TensorDesc, f32_in_place_or_copied};
use crate::tile_state;

use super::{AmxBufferType, WORKSPACE, layout_of, packed_format};

thread_local! {
    /// The expert ids of the current call, as the grouped kernel takes them, reused call
    /// after call (no allocation per step).
    static EXPERT_IDS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// Scratch of the grouped kernel on a pool thread, reused call after call.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The kernel's view of a MUL_MAT_ID whose sources are `[w, x, ids]` (shapes as checked
/// by [`Op::infer`]): the stack's format and the grouped call's shape.
fn kernel_shape(op: &OpDesc) -> Option<(Format, MoeShape)> {
    let [w, x, ids] = &op.srcs[..] else { return None };
    let format = packed_format(w.desc.dtype)?;
    let [k, n, experts, _] = w.desc.ne;
    let [used, tokens, _, _] = ids.desc.ne;
    let (tokens, top_k) =
        if x.desc.ne[1] == 1 { (tokens, used) } else { (tokens.checked_mul(used)?, 1) };
    Some((format, MoeShape { experts, n, k, tokens, top_k }))
}

/// Whether buffer type `buft` runs `op` as MUL_MAT_ID on an expert stack it holds: the
/// op's shapes follow ggml's rules with the result it gives, src0 is a packable stack in
/// `buft` (a block format, or F32 where `buft` packs it as BF16), src1 is F32 and the ids
/// are in host memory, both contiguous, and the grouped call's workspace has a size.
pub(super) fn accepts(buft: &AmxBufferType, op: &OpDesc) -> bool {
    let [w, x, ids] = &op.srcs[..] else { return false };
    let descs: [&TensorDesc; 3] = [&w.desc, &x.desc, &ids.desc];
    op.op == Op::MulMatId
        && op.op.infer(op.name(), &descs).is_ok_and(|d| d == op.dst)
        && w.buft.id() == buft.id
        && w.contiguous
        && buft.holds(w.desc.dtype)
        && layout_of(&w.desc).is_some()
        && x.desc.dtype == DType::F32
        && x.buft.is_host()
        && x.contiguous
        && ids.buft.is_host()
        && ids.contiguous
        && kernel_shape(op).is_some_and(|(f, s)| grouped_workspace_bytes(f, &s, Path::Auto).is_ok())
}

/// Expert id `id` of `ids` as the kernel takes it, or the error naming the op and tensor.
fn expert_id(op: &OpDesc, ids: &TensorDesc, id: i32, experts: usize) -> Result<u32, ExecError> {
    match u32::try_from(id) {
        Ok(e) if (e as usize) < experts => Ok(e),
        _ => Err(ExecError::IndexOutOfRange {
            op: op.name().clone(),
            tensor: ids.name.clone(),
            index: i64::from(id),
            len: experts,
        }),
    }
}

/// Runs MUL_MAT_ID `op` (accepted by [`accepts`]) on `srcs` (`[w, x, ids]`, checked
/// against the op by the caller) into `dst` (`[N, U, T]` values) and returns the busiest
/// expert's path.
///
/// Errors: [`ExecError::IndexOutOfRange`] for an expert id outside the stack (before any
/// weight is read), refused buffer accesses, and the kernel's errors as
/// [`ExecError::Gemm`].
pub(super) fn run(
    buft: &AmxBufferType,
    op: &OpDesc,
    srcs: &[&Buffer],
    dst: &mut [f32],
) -> Result<Path, ExecError> {
    let name = op.name();
    let (Some((format, shape)), [w, x, ids]) = (kernel_shape(op), srcs) else {
        return Err(ExecError::Sources { op: name.clone(), what: "MUL_MAT_ID takes 3 sources" });
    };
    let mut expert_ids = EXPERT_IDS.take();
    expert_ids.clear();
    for c in ids.host_bytes()?.chunks_exact(4) {
        let id = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        expert_ids.push(expert_id(op, ids.desc(), id, shape.experts)?);
    }
    let result = run_with_ids(buft, op, w, x, &expert_ids, format, shape, dst);
    EXPERT_IDS.set(expert_ids);
    result
}

#[allow(clippy::too_many_arguments)] // the call's parts, spelled out
fn run_with_ids(
    buft: &AmxBufferType,
    op: &OpDesc,
    w: &Buffer,
    x: &Buffer,
    expert_ids: &[u32],
    format: Format,
    shape: MoeShape,
    dst: &mut [f32],
) -> Result<Path, ExecError> {
    let name = op.name();
    let packed = w.owned_bytes(buft)?;
    let xv = f32_in_place_or_copied(x.host_bytes()?);
    let gemm_err = |error| ExecError::Gemm { op: name.clone(), error };
    let rows = shape.tokens.checked_mul(shape.top_k).ok_or(gemm_err(GemmError::Overflow))?;
    let xm = MatRef::new(&xv, shape.tokens, shape.k, shape.k).map_err(gemm_err)?;
    let mut y = MatMut::new(dst, rows, shape.n, shape.n).map_err(gemm_err)?;
    let path = match buft.path {
        Path::Auto => tile_state::grouped_path(format),
        forced => tile_state::resolve_path(format, 0, forced),
    }
    .map_err(gemm_err)?;
    let need = grouped_workspace_bytes(format, &shape, path).map_err(gemm_err)?;
    WORKSPACE
        .with_borrow_mut(|ws| {
            if ws.len() < need {
                ws.resize(need, 0);
            }
            let (mut call, scratch) =
                Grouped::new(packed, format, &xm, expert_ids, shape.top_k, path, ws)?;
            let busiest = (0..shape.experts).map(|e| call.expert_rows(e)).max().unwrap_or(0);
            let taken = tile_state::resolve_path(format, busiest, path)?;
            match &buft.pool {
                Some(pool) if pool.threads() > 1 => {
                    run_shared(pool, &mut [&mut call], format, path, taken)?;
                }
                _ => {
                    if taken == Path::Amx {
                        tile_state::mark_used();
                    }
                    call.run_all(scratch)?;
                }
            }
            call.scatter(&mut y)?;
            Ok(taken)
        })
        .map_err(gemm_err)
}

/// Runs every item of `calls` (in `format`, on the same activations) as one job on
/// `pool`'s threads, each claiming the next item not yet claimed ([`Grouped::run_all`]
/// shares them out), the first call's items first; `path` is the calls' path, `taken`
/// the widest path their experts take. The first error stops the others after their
/// current item.
fn run_shared(
    pool: &Pool,
    calls: &mut [&mut Grouped<'_>],
    format: Format,
    path: Path,
    taken: Path,
) -> Result<(), GemmError> {
    let mut scratch_len = 0;
    for call in calls.iter_mut() {
        scratch_len = scratch_len.max(gemm::scratch_bytes(format, call.shape().k, path)?);
        let active = (0..call.shape().experts).filter(|&e| call.expert_rows(e) > 0).count();
        // About four items per thread, in pairs of panels (the AMX kernel runs two at
        // once).
        let per = (active * call.panels()).div_ceil(4 * pool.threads()).max(2).next_multiple_of(2);
        call.split(per)?;
    }
    let calls = &*calls;
    let first = OnceLock::new();
    // try_: a MUL_MAT_ID issued from inside one of this pool's own jobs is an error,
    // not a panic.
    pool.try_broadcast(|_| {
        if taken == Path::Amx {
            tile_state::mark_used();
        }
        SCRATCH.with_borrow_mut(|scratch| {
            if scratch.len() < scratch_len {
                scratch.resize(scratch_len, 0);
            }
            // A thread done with one call's items helps with the next call's.
            if let Some(error) = calls.iter().find_map(|call| call.run_all(scratch).err()) {
                let _ = first.set(error);
            }
        });
    })?;
    match first.into_inner() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// MUL_MAT_IDs `ops` (accepted by this type, checked against `srcs` by the caller) that
/// share activations and expert ids, `srcs[i] = [experts_i, x, ids]`: the gate and up
/// projections of a MoE layer, as one job on `pool` (two would each wake the pool's
/// threads). Each call's items are computed as [`run`] computes them, so the results
/// are its bits. `Ok(None)`, nothing written, unless there are two ops of one format on
/// a pool of several threads.
///
/// Errors: those of [`run`].
pub(super) fn run_group(
    buft: &AmxBufferType,
    pool: &Pool,
    ops: &[CheckedOp<'_>],
    srcs: &[&[&Buffer]],
    dsts: &mut [&mut [f32]],
) -> Result<Option<Kernel>, ExecError> {
    let ([a, b], [[wa, x, ids], [wb, ..]], [da, db]) = (ops, srcs, dsts) else {
        return Ok(None);
    };
    let (Some((format, sa)), Some((fb, sb))) = (kernel_shape(a.op()), kernel_shape(b.op())) else {
        return Ok(None);
    };
    if pool.threads() < 2
        || format != fb
        || (sa.k, sa.tokens, sa.top_k) != (sb.k, sb.tokens, sb.top_k)
    {
        return Ok(None);
    }
    let mut expert_ids = EXPERT_IDS.take();
    expert_ids.clear();
    let result = (|| {
        for c in ids.host_bytes()?.chunks_exact(4) {
            let id = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            expert_id(b.op(), ids.desc(), id, sb.experts)?;
            expert_ids.push(expert_id(a.op(), ids.desc(), id, sa.experts)?);
        }
        let calls = [(a.op(), *wa, sa, &mut **da), (b.op(), *wb, sb, &mut **db)];
        group_with_ids(buft, pool, calls, x, &expert_ids, format)
    })();
    EXPERT_IDS.set(expert_ids);
    Ok(Some(Kernel::Packed { buft: buft.kernel_name.clone(), path: result? }))
}

/// [`run_group`] once the ids are read: each of `calls` is (op, expert stack, shape,
/// output values).
fn group_with_ids(
    buft: &AmxBufferType,
    pool: &Pool,
    calls: [(&OpDesc, &Buffer, MoeShape, &mut [f32]); 2],
    x: &Buffer,
    expert_ids: &[u32],
    format: Format,
) -> Result<Path, ExecError> {
    let [(op_a, wa, sa, da), (op_b, wb, sb, db)] = calls;
    let gemm_err = |op: &OpDesc| {
        let name = op.name().clone();
        move |error| ExecError::Gemm { op: name, error }
    };
    let (packed_a, packed_b) = (wa.owned_bytes(buft)?, wb.owned_bytes(buft)?);
    let xv = f32_in_place_or_copied(x.host_bytes()?);
    let rows = sa.tokens.checked_mul(sa.top_k).ok_or(gemm_err(op_a)(GemmError::Overflow))?;
    let xm = MatRef::new(&xv, sa.tokens, sa.k, sa.k).map_err(gemm_err(op_a))?;
    let mut ya = MatMut::new(da, rows, sa.n, sa.n).map_err(gemm_err(op_a))?;
    let mut yb = MatMut::new(db, rows, sb.n, sb.n).map_err(gemm_err(op_b))?;
    let path = match buft.path {
        Path::Auto => tile_state::grouped_path(format),
        forced => tile_state::resolve_path(format, 0, forced),
    }
    .map_err(gemm_err(op_a))?;
    let need_a = grouped_workspace_bytes(format, &sa, path).map_err(gemm_err(op_a))?;
    let need_b = grouped_workspace_bytes(format, &sb, path).map_err(gemm_err(op_b))?;
    let need = need_a.checked_add(need_b).ok_or(gemm_err(op_b)(GemmError::Overflow))?;
    WORKSPACE
        .with_borrow_mut(|ws| {
            if ws.len() < need {
                ws.resize(need, 0);
            }
            let (ws_a, ws_b) = ws.split_at_mut(need_a);
            let (mut ca, _) =
                Grouped::new(packed_a, format, &xm, expert_ids, sa.top_k, path, ws_a)?;
            let (mut cb, _) =
                Grouped::new(packed_b, format, &xm, expert_ids, sb.top_k, path, ws_b)?;
            // The same ids: the same rows per expert in both calls.
            let busiest = (0..sa.experts).map(|e| ca.expert_rows(e)).max().unwrap_or(0);
            let taken = tile_state::resolve_path(format, busiest, path)?;
            run_shared(pool, &mut [&mut ca, &mut cb], format, path, taken)?;
            ca.scatter(&mut ya)?;
            cb.scatter(&mut yb)?;
            Ok(taken)
        })
        .map_err(gemm_err(op_a))
}

#[cfg(test)]
mod tests;
