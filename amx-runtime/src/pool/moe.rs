//! [`Pool::moe`]: the grouped expert matmul of a mixture-of-experts layer (ggml's
//! MUL_MAT_ID) over the pool's threads, safe, for engines that bring expert ids and
//! activations. amx-core's [`Grouped`] routes and prepares on the calling thread, the
//! shares claim its (expert, panel range) items, then the results are scattered.

use std::sync::OnceLock;

use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path};
use amx_core::moe::{Grouped, MoeShape, grouped_workspace_bytes};
use amx_core::pack::PackedRef;

use super::Pool;
use super::threshold::macs;
use crate::tile_state;

impl Pool {
    /// The grouped expert matmul: token `t` times each of its `top_k` experts.
    ///
    /// Shapes (flat, packed rows): `experts` is a stack of E matrices of `N x K` (packed
    /// with `matrices = E`; its format from its header); `x` is T tokens of K values
    /// (T = `x.len() / K`); `ids` holds `top_k` expert ids per token (`ids[t * top_k + s]`,
    /// each below E, T x `top_k` in all); `y` gets T x `top_k` rows of N: row
    /// `t * top_k + s` is `x[t] * W[ids[t * top_k + s]]^T`. For ggml's down projection
    /// (one activation row per selected expert) pass those rows as tokens with
    /// `top_k = 1`.
    ///
    /// Each expert takes the path [`Path::Auto`] picks for its own row count (AMX for
    /// busy experts, VNNI for the rest; never AMX when this process may not use it);
    /// returns the busiest expert's path. Each expert's weights are read once per call.
    /// The work items are shared out over [`Pool::min_share_macs`]-sized shares (a
    /// decode step's few rows may run on the calling thread alone); results are
    /// bit-identical for any number of threads. May request the AMX permission. No
    /// allocation in steady state (the pool's workspace and per-thread scratch).
    ///
    /// Errors: [`GemmError::Lengths`] when `x.len()` is not T x K or `y.len()` not
    /// T x `top_k` x N (reported with `y_row = top_k x N`); [`GemmError::ShapeMismatch`]
    /// (`"ids"`) when `ids.len()` is not T x `top_k`; [`GemmError::ExpertOutOfRange`]
    /// naming the first id past the stack; [`GemmError::Overflow`];
    /// [`GemmError::NestedPoolCall`].
    pub fn moe(
        &self,
        experts: &PackedRef<'_>,
        x: &[f32],
        ids: &[u32],
        top_k: usize,
        y: &mut [f32],
    ) -> Result<Path, GemmError> {
        let l = *experts.layout();
        let (format, n, k) = (l.format(), l.n(), l.k());
        let y_row = top_k.checked_mul(n).ok_or(GemmError::Overflow)?;
        let lengths = GemmError::Lengths { index: 0, x_len: x.len(), k, y_len: y.len(), y_row };
        if !x.len().is_multiple_of(k) {
            return Err(lengths);
        }
        let tokens = x.len() / k;
        let rows = tokens.checked_mul(top_k).ok_or(GemmError::Overflow)?;
        if ids.len() != rows {
            return Err(GemmError::ShapeMismatch { dim: "ids", expected: rows, found: ids.len() });
        }
        if rows.checked_mul(n) != Some(y.len()) {
            return Err(lengths);
        }
        let path = tile_state::grouped_path(format)?;
        if rows == 0 {
            return tile_state::resolve_path(format, 0, path);
        }
        let shape = MoeShape { experts: l.matrices(), n, k, tokens, top_k };
        let need = grouped_workspace_bytes(format, &shape, path)?;
        let scratch_len = gemm::scratch_bytes(format, k, path)?;
        let xm = MatRef::new(x, tokens, k, k)?;
        let mut ym = MatMut::new(y, rows, n, n)?;
        let shares = self.shares_for(macs(rows, n, k));
        let mut held = self.lock()?;
        let inner = &mut *held;
        if inner.workspace.len() < need {
            inner.workspace.resize(need, 0);
        }
        let (mut call, _) =
            Grouped::new(experts.bytes(), format, &xm, ids, top_k, path, &mut inner.workspace)?;
        let busiest = (0..shape.experts).map(|e| call.expert_rows(e)).max().unwrap_or(0);
        let taken = tile_state::resolve_path(format, busiest, path)?;
        let active = (0..shape.experts).filter(|&e| call.expert_rows(e) > 0).count();
        // About four items per share, in pairs of panels (the AMX kernel runs two at once).
        let per = (active * call.panels()).div_ceil(4 * shares).max(2).next_multiple_of(2);
        call.split(per)?;
        let first = OnceLock::new();
        let call_ref = &call;
        inner.workers.run_helped(shares, &|_, scratch| {
            if taken == Path::Amx {
                tile_state::mark_used();
            }
            if scratch.len() < scratch_len {
                scratch.resize(scratch_len, 0);
            }
            // Items are claimed one at a time by whichever thread is free (the calling
            // thread runs those no worker claims): each is computed the same way whoever
            // claims it.
            if let Err(error) = call_ref.run_all(scratch) {
                let _ = first.set(error);
            }
        });
        if let Some(error) = first.into_inner() {
            return Err(error);
        }
        call.scatter(&mut ym)?;
        Ok(taken)
    }
}
