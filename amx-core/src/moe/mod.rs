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
//! work by (expert, panel range) items, each claimed by exactly one thread.

mod grouped;
mod routing;

use crate::formats::Format;
use crate::gemm::{self, GemmError, MatMut, MatRef, Path, Preparation};

pub use grouped::Grouped;
pub use routing::{Routing, routing_bytes};

const ALIGN: usize = 64;

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

/// `x` rounded up to a multiple of 64, or `None` when that overflows.
const fn round(x: usize) -> Option<usize> {
    x.checked_next_multiple_of(ALIGN)
}

/// Bytes one expert's prepared activations need for `rows` rows (rounded to 64).
fn expert_bytes(format: Format, rows: usize, k: usize, path: Path) -> Result<usize, GemmError> {
    if rows == 0 {
        return Ok(0);
    }
    round(Preparation::new(format, rows, k, path)?.gathered_bytes()?).ok_or(GemmError::Overflow)
}

/// An upper bound of the prepared bytes of all experts, whatever the routing: each
/// routed row in the largest form, each expert padded to 32 rows.
fn prepared_bound(format: Format, s: &MoeShape, path: Path) -> Result<usize, GemmError> {
    let rows = s.tokens.checked_mul(s.top_k).ok_or(GemmError::Overflow)?;
    let padding = s.experts.checked_mul(32).ok_or(GemmError::Overflow)?;
    let padded = rows.checked_add(padding).ok_or(GemmError::Overflow)?;
    // The f32 form (4 bytes a value) is the largest; a K whose f32 row does not fit has
    // no workspace, and the bound keeps every form's size computation in range.
    let f32_rows = s.k.checked_mul(4 * 32).and_then(round).ok_or(GemmError::Overflow)?;
    let mut largest = None;
    for p in [Path::Scalar, Path::Vnni, Path::Amx] {
        if path != Path::Auto && path != p {
            continue;
        }
        match expert_bytes(format, 32, s.k, p) {
            Ok(b) => largest = largest.max(Some(b)),
            Err(GemmError::Overflow) => return Err(GemmError::Overflow),
            // A path this machine or K cannot take: `Grouped::new` refuses it if asked.
            Err(_) => {}
        }
    }
    let per_row = largest.unwrap_or(f32_rows) / 32 + 64;
    padded.checked_mul(per_row).ok_or(GemmError::Overflow)
}

/// Bytes of the per-expert tables of a grouped call: E + 1 prepared offsets (u64) and the
/// list of experts with rows (u32).
fn tables_bytes(experts: usize) -> Option<(usize, usize)> {
    Some((experts.checked_add(1)?.checked_mul(8)?, experts.checked_mul(4)?))
}

/// Workspace bytes of a grouped call ([`grouped_gemm`], [`Grouped::new`]): routing, the
/// per-expert tables, every expert's prepared rows, the gathered output and one scratch.
///
/// Errors: [`GemmError::PathUnavailable`]; [`GemmError::Overflow`] when the size (or
/// any of its parts) does not fit `usize`, never a smaller, wrong size (a K whose 32 rows
/// of f32 do not fit `usize` is `Overflow` whatever the other sizes).
pub fn grouped_workspace_bytes(
    format: Format,
    s: &MoeShape,
    path: Path,
) -> Result<usize, GemmError> {
    let overflow = GemmError::Overflow;
    let out = s
        .tokens
        .checked_mul(s.top_k)
        .and_then(|r| r.checked_mul(s.n))
        .and_then(|v| v.checked_mul(4))
        .ok_or(overflow)?;
    let (offsets, active) = tables_bytes(s.experts).ok_or(overflow)?;
    let parts = [
        routing_bytes(s.tokens, s.top_k, s.experts)?,
        offsets,
        active,
        prepared_bound(format, s, path)?,
        out,
        gemm::scratch_bytes(format, s.k, path)?,
    ];
    // Each part may start up to 63 bytes into the rest, to be 64-byte aligned.
    parts
        .iter()
        .try_fold(parts.len() * ALIGN, |acc: usize, p| acc.checked_add(round(*p)?))
        .ok_or(overflow)
}

/// The next `len` bytes of `ws` from its first 64-byte aligned byte on; `ws` keeps the rest.
fn take<'a>(ws: &mut &'a mut [u8], len: usize) -> Result<&'a mut [u8], GemmError> {
    let skip = ws.as_ptr().align_offset(ALIGN);
    let needed = skip.checked_add(len).ok_or(GemmError::Overflow)?;
    if ws.len() < needed {
        return Err(GemmError::WorkspaceTooSmall { needed, actual: ws.len() });
    }
    let rest = core::mem::take(ws);
    let (head, tail) = rest[skip..].split_at_mut(len);
    *ws = tail;
    Ok(head)
}

/// The whole grouped matmul on one thread: routes, prepares, computes and scatters into
/// `y` (T x top_k rows of N). `ids` holds top_k expert ids per token. `workspace` is at
/// least [`grouped_workspace_bytes`].
///
/// Errors: those of [`Grouped::new`], [`Grouped::run_all`] and [`Grouped::scatter`].
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
