//! Mixture-of-experts matmul (ggml's MUL_MAT_ID): tokens routed to their top-k experts,
//! each expert's weights streamed once per call.
//!
//! `weights` is a stack of E packed experts of `N x K` ([`crate::pack`] with
//! `matrices = E`); `x` is T tokens of K values; `ids` holds, per token, the ids of its
//! `top_k` experts (`ids[t * top_k + s]`); the result `y` has T x top_k rows of N: row
//! `t * top_k + s` is token t times expert `ids[t * top_k + s]`.
//!
//! The rows of each expert are gathered by a counting sort of the ids, prepared for the
//! path that suits that expert's row count (as [`Path::Auto`] decides for a dense call of
//! that many rows: AMX for busy experts, VNNI for the rest), multiplied into a gathered
//! output and scattered into `y`. Experts without rows cost nothing; each expert's weights
//! are read once per call. [`Grouped`] exposes the steps, so that threads can share the
//! work by (expert, panel range) items.

mod routing;

use core::ops::Range;

use crate::formats::Format;
use crate::gemm::{self, GemmError, MatMut, MatRef, Path, Preparation, SharedOut};
use crate::pack::PackedRef;

pub use routing::{Routing, routing_bytes};

const ALIGN: usize = 64;

const fn round(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

/// The shapes of a grouped call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeShape {
    /// Experts in the stack (E).
    pub experts: usize,
    /// Output values per row (N).
    pub n: usize,
    /// Values per row (K).
    pub k: usize,
    /// Tokens (T).
    pub tokens: usize,
    /// Experts per token.
    pub top_k: usize,
}

/// Bytes one expert's prepared activations need for `rows` rows (rounded to 64).
fn expert_bytes(format: Format, rows: usize, k: usize, path: Path) -> Result<usize, GemmError> {
    if rows == 0 {
        return Ok(0);
    }
    Ok(round(Preparation::new(format, rows, k, path)?.gathered_bytes()?))
}

/// An upper bound of the prepared bytes of all experts, whatever the routing: each
/// routed row in the largest form, each expert padded to 32 rows.
fn prepared_bound(format: Format, s: &MoeShape, path: Path) -> Result<usize, GemmError> {
    let rows = s.tokens.checked_mul(s.top_k).ok_or(GemmError::Overflow)?;
    let padded = rows.checked_add(32 * s.experts).ok_or(GemmError::Overflow)?;
    let per_row = [Path::Scalar, Path::Vnni, Path::Amx]
        .into_iter()
        .filter(|p| path == Path::Auto || path == *p)
        .filter_map(|p| expert_bytes(format, 32, s.k, p).ok())
        .max()
        .unwrap_or(round(128 * s.k))
        / 32
        + 64;
    padded.checked_mul(per_row).ok_or(GemmError::Overflow)
}

/// Workspace bytes of a grouped call ([`grouped_gemm`], [`Grouped::new`]): routing, every
/// expert's prepared rows, the gathered output and one scratch.
///
/// Errors: [`GemmError::PathUnavailable`], [`GemmError::Overflow`].
pub fn grouped_workspace_bytes(
    format: Format,
    s: &MoeShape,
    path: Path,
) -> Result<usize, GemmError> {
    let out = s
        .tokens
        .checked_mul(s.top_k)
        .and_then(|r| r.checked_mul(4 * s.n))
        .ok_or(GemmError::Overflow)?;
    let parts = [
        routing_bytes(s.tokens, s.top_k, s.experts),
        8 * (s.experts + 1),
        prepared_bound(format, s, path)?,
        out,
        gemm::scratch_bytes(format, s.k, path)?,
    ];
    parts
        .iter()
        .try_fold(5 * ALIGN, |acc: usize, p| acc.checked_add(round(*p)))
        .ok_or(GemmError::Overflow)
}

fn take<'a>(ws: &mut &'a mut [u8], len: usize) -> Result<&'a mut [u8], GemmError> {
    let skip = ws.as_ptr().align_offset(ALIGN);
    if ws.len() < skip + len {
        return Err(GemmError::WorkspaceTooSmall { needed: skip + len, actual: ws.len() });
    }
    let rest = core::mem::take(ws);
    let (head, tail) = rest[skip..].split_at_mut(len);
    *ws = tail;
    Ok(head)
}

/// A routed and prepared grouped call.
pub struct Grouped<'w> {
    weights: PackedRef<'w>,
    format: Format,
    shape: MoeShape,
    path: Path,
    routing: Routing<'w>,
    offsets: &'w [u8],
    prepared: &'w [u8],
    out: SharedOut<'w>,
}

impl<'w> Grouped<'w> {
    /// Checks the stack (`weights`, E experts of `n x K` in `format`), routes `ids` (T x
    /// `top_k`, each below E), and prepares every expert's rows of `x` (T x K) in
    /// `workspace` (at least [`grouped_workspace_bytes`]). Returns the call and the rest
    /// of the workspace (one scratch for [`Grouped::run_all`]).
    ///
    /// Errors: the packed-buffer errors as [`GemmError::Weights`];
    /// [`GemmError::ShapeMismatch`] when `x`, `ids` and the stack disagree;
    /// [`GemmError::ExpertOutOfRange`]; [`GemmError::WorkspaceTooSmall`];
    /// [`GemmError::PathUnavailable`].
    pub fn new(
        weights: &'w [u8],
        format: Format,
        x: &MatRef<'_>,
        ids: &[u32],
        top_k: usize,
        path: Path,
        workspace: &'w mut [u8],
    ) -> Result<(Self, &'w mut [u8]), GemmError> {
        let stack = PackedRef::parse(weights)?;
        let l = *stack.layout();
        stack.expect(format, l.n(), x.cols(), l.matrices())?;
        let tokens = x.rows();
        let rows = tokens.checked_mul(top_k).ok_or(GemmError::Overflow)?;
        if ids.len() != rows {
            return Err(GemmError::ShapeMismatch { dim: "ids", expected: rows, found: ids.len() });
        }
        let shape = MoeShape { experts: l.matrices(), n: l.n(), k: l.k(), tokens, top_k };
        let mut ws = workspace;
        let routing = Routing::new(
            ids,
            shape.experts,
            take(&mut ws, routing_bytes(tokens, top_k, shape.experts))?,
        )?;
        let offsets = take(&mut ws, 8 * (shape.experts + 1))?;
        let mut total = 0usize;
        for e in 0..shape.experts {
            offsets[8 * e..8 * e + 8].copy_from_slice(&(total as u64).to_le_bytes());
            total += expert_bytes(format, routing.run(e).len(), shape.k, path)?;
        }
        offsets[8 * shape.experts..].copy_from_slice(&(total as u64).to_le_bytes());
        let prepared = take(&mut ws, total)?;
        for e in 0..shape.experts {
            let run = routing.run(e);
            if run.is_empty() {
                continue;
            }
            let at = u64_at(offsets, e);
            let p = Preparation::new(format, run.len(), shape.k, path)?;
            let rows = run.clone().map(|i| x.row(routing.entry(i) / top_k));
            p.prepare_gathered(rows, &mut prepared[at..at + p.gathered_bytes()?]);
        }
        let out_bytes = take(&mut ws, rows * shape.n * 4)?;
        // SAFETY: `out_bytes` is 64-byte aligned (from `take`) and f32 has no invalid bit
        // patterns, so viewing it as f32 is sound; `align_to` returns the aligned middle.
        let (head, out_f32, _) = unsafe { out_bytes.align_to_mut::<f32>() };
        if !head.is_empty() || out_f32.len() < rows * shape.n {
            return Err(GemmError::WorkspaceTooSmall {
                needed: rows * shape.n * 4,
                actual: out_f32.len() * 4,
            });
        }
        let out_view = MatMut::new(out_f32, rows, shape.n, shape.n)?;
        let out = out_view.into_shared();
        let call = Self { weights: stack, format, shape, path, routing, offsets, prepared, out };
        Ok((call, ws))
    }

    /// The call's shapes.
    pub const fn shape(&self) -> MoeShape {
        self.shape
    }

    /// Rows routed to expert `e`.
    pub fn expert_rows(&self, e: usize) -> usize {
        if e < self.shape.experts { self.routing.run(e).len() } else { 0 }
    }

    /// Panels of one expert (16 output columns each).
    pub fn panels(&self) -> usize {
        self.weights.layout().panels_per_matrix()
    }

    /// Work items covering every expert with rows: (expert, panel range), each expert's
    /// panels cut into pieces of at most `panels_per_item`. Items are disjoint.
    pub fn items(
        &self,
        panels_per_item: usize,
    ) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
        let per = panels_per_item.max(1);
        let panels = self.panels();
        (0..self.shape.experts)
            .filter(move |e| self.expert_rows(*e) > 0)
            .flat_map(move |e| (0..panels).step_by(per).map(move |p| (e, p..(p + per).min(panels))))
    }

    /// Computes item `(expert, panels)` into the gathered output; `scratch` is at least
    /// [`gemm::scratch_bytes`] for this format, K and path.
    ///
    /// # Safety
    ///
    /// Calls running at the same time compute disjoint items (as [`Grouped::items`]
    /// yields them).
    pub unsafe fn run_item(
        &self,
        expert: usize,
        panels: Range<usize>,
        scratch: &mut [u8],
    ) -> Result<(), GemmError> {
        let rows = self.expert_rows(expert);
        if rows == 0 {
            return Ok(());
        }
        let Some(weights) = self.weights.matrix(expert) else {
            return Err(GemmError::Range {
                what: "experts",
                start: expert,
                end: expert + 1,
                len: self.shape.experts,
            });
        };
        let k = self.shape.k;
        let p = Preparation::new(self.format, rows, k, self.path)?;
        let at = u64_at(self.offsets, expert);
        let prepared = p.finish_gathered(&self.prepared[at..at + p.gathered_bytes()?])?;
        let out = self.out.rows_from(self.routing.run(expert).start, rows);
        // SAFETY: this item's output rows (the expert's run) and panels are disjoint from
        // every other concurrent item's (the caller's contract).
        unsafe { gemm::gemm_range_shared(&weights, &prepared, &out, panels, 0..rows, scratch) }
    }

    /// Computes every item on this thread.
    pub fn run_all(&self, scratch: &mut [u8]) -> Result<(), GemmError> {
        for (e, panels) in self.items(usize::MAX) {
            // SAFETY: items run one after another here, never at the same time.
            unsafe { self.run_item(e, panels, scratch)? };
        }
        Ok(())
    }

    /// Scatters the gathered output into `y` (T x top_k rows of N): row `t * top_k + s`
    /// gets token t's product with expert `ids[t * top_k + s]`.
    ///
    /// Errors: [`GemmError::ShapeMismatch`] when `y` is not T x top_k by N.
    pub fn scatter(&mut self, y: &mut MatMut<'_>) -> Result<(), GemmError> {
        let rows = self.shape.tokens * self.shape.top_k;
        for (dim, expected, found) in [("m", rows, y.rows()), ("n", self.shape.n, y.cols())] {
            if expected != found {
                return Err(GemmError::ShapeMismatch { dim, expected, found });
            }
        }
        let n = self.shape.n;
        for i in 0..rows {
            let dst = self.routing.entry(i);
            for c in 0..n {
                // SAFETY: `&mut self` excludes any running item, so reading the gathered
                // output is not racing a writer; (i, c) is inside it.
                let v = unsafe { self.out.at(i, c).read() };
                y.set(dst, c, v);
            }
        }
        Ok(())
    }
}

fn u64_at(b: &[u8], e: usize) -> usize {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[8 * e..8 * e + 8]);
    u64::from_le_bytes(v) as usize
}

/// The whole grouped matmul on one thread: routes, prepares, computes and scatters into
/// `y` (T x top_k rows of N). `ids` holds top_k expert ids per token. `workspace` is at
/// least [`grouped_workspace_bytes`].
///
/// Errors: those of [`Grouped::new`], [`Grouped::run_item`] and [`Grouped::scatter`].
pub fn grouped_gemm(
    weights: &[u8],
    format: Format,
    x: &MatRef<'_>,
    (ids, top_k): (&[u32], usize),
    y: &mut MatMut<'_>,
    path: Path,
    workspace: &mut [u8],
) -> Result<(), GemmError> {
    let (mut call, scratch) = Grouped::new(weights, format, x, ids, top_k, path, workspace)?;
    call.run_all(scratch)?;
    call.scatter(y)
}

#[cfg(test)]
mod tests;
