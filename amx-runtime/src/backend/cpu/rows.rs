//! The reference ops computed by rows ([`RowJob`]: norms, elementwise ops, activations,
//! ROPE, softmax, GET_ROWS, the copies of RESHAPE and TRANSPOSE) over the pool's threads
//! in long steps (prefill): the result's rows split into one contiguous range per share.
//! Every row is computed as the single-threaded reference computes it, so the bits do
//! not depend on the number of threads.
//!
//! Short steps (decode: one row) stay on the calling thread, allocating nothing: waking
//! the workers would cost more than the op.
//!
//! Long ROPE steps read their cosines and sines from a table kept from call to call (the
//! layers of a model share their angles), instead of computing them for every op.

use std::sync::{Mutex, PoisonError};

use bumpalo::Bump;

use crate::error::ExecError;
use crate::op::{CheckedOp, OpDesc};
use crate::pool::Pool;
use crate::reference::{self, Rope, RopeTable, RowJob};

/// Rows from which a step's row ops run over the pool.
pub(crate) const MIN_ROWS: usize = 16;

/// Result values from which a step's row ops run over the pool (below, the op takes
/// about as long as waking the workers).
pub(crate) const MIN_VALUES: usize = 8 * 1024;

/// Largest ROPE table kept, in values (16 MiB): past it (positions in the hundreds of
/// thousands), the angles are computed per call.
const MAX_TABLE_VALUES: usize = 1 << 22;

/// ROPE tables kept (a model has one or two sets of angles: global and sliding-window
/// layers).
const MAX_TABLES: usize = 4;

/// The pool the row ops run on, and the ROPE tables.
#[derive(Debug)]
pub(crate) struct RowPool {
    pool: std::sync::Arc<Pool>,
    tables: Mutex<Vec<RopeTable>>,
}

impl RowPool {
    pub(crate) fn new(pool: std::sync::Arc<Pool>) -> RowPool {
        RowPool { pool, tables: Mutex::new(Vec::new()) }
    }

    /// Computes `op` (a row op, already checked) on `srcs`' plain bytes into `out`, the
    /// result's plain bytes, as [`reference::compute_into`] does; `Ok(false)`, with
    /// nothing written, for an op that is not computed by rows.
    ///
    /// Errors: those of [`reference::compute_into`], and [`ExecError::Gemm`] with
    /// [`amx_core::gemm::GemmError::NestedPoolCall`] when called from a job of the pool.
    pub(crate) fn run_sized(
        &self,
        op: CheckedOp<'_>,
        srcs: &[&[u8]],
        out: &mut [u8],
        scratch: &Bump,
    ) -> Result<bool, ExecError> {
        let op = op.op();
        let out = reference::sized_output(op, srcs, out)?;
        self.run_checked(op, srcs, out, scratch)
    }

    fn run_checked(
        &self,
        op: &OpDesc,
        srcs: &[&[u8]],
        out: &mut [f32],
        scratch: &Bump,
    ) -> Result<bool, ExecError> {
        let Some(job) = RowJob::new(op, srcs, scratch)? else { return Ok(false) };
        if job.rows() < MIN_ROWS || out.len() < MIN_VALUES {
            job.run(0, out)?;
            return Ok(true);
        }
        // Held while the job runs: the job reads the table.
        let mut tables = None;
        let job = match job.rope() {
            Some((rope, max)) if (max + 1).saturating_mul(rope.n_dims) <= MAX_TABLE_VALUES => {
                let t = tables.insert(self.tables.lock().unwrap_or_else(PoisonError::into_inner));
                job.with_rope_table(table_for(t, &rope, max + 1))
            }
            _ => job,
        };
        split(&self.pool, op, &job, out)?;
        Ok(true)
    }
}

/// The table of `rope`'s angles in `tables` (made, or grown, to hold `positions`).
fn table_for<'t>(tables: &'t mut Vec<RopeTable>, rope: &Rope, positions: usize) -> &'t RopeTable {
    let i = match tables.iter().position(|t| t.is_for(rope)) {
        Some(i) => i,
        None => {
            if tables.len() == MAX_TABLES {
                tables.remove(0);
            }
            tables.push(RopeTable::new(rope));
            tables.len() - 1
        }
    };
    tables[i].grow_to(rope, positions);
    &tables[i]
}

/// Runs `job` (of `op`) into `out` (its whole result) with the rows split into one
/// contiguous range per share of `pool`. Errors: the first in row order (as one thread
/// would have met it), or the pool's refusal.
fn split(pool: &Pool, op: &OpDesc, job: &RowJob<'_>, out: &mut [f32]) -> Result<(), ExecError> {
    let per = job.rows().div_ceil(pool.threads().max(1)).max(1);
    // One part per share, each locked by its share alone (never contended): the first
    // row, the rows' values, the outcome.
    type Part<'o> = (usize, &'o mut [f32], Result<(), ExecError>);
    let parts: Vec<Mutex<Part<'_>>> = out
        .chunks_mut(per * job.width())
        .enumerate()
        .map(|(i, c)| Mutex::new((i * per, c, Ok(()))))
        .collect();
    pool.try_broadcast(|share| {
        let Some(part) = parts.get(share) else { return };
        let mut part = part.lock().unwrap_or_else(PoisonError::into_inner);
        let (first, rows, outcome) = &mut *part;
        *outcome = job.run(*first, rows);
    })
    .map_err(|error| ExecError::Gemm { op: op.name().clone(), error })?;
    parts.into_iter().try_for_each(|p| p.into_inner().unwrap_or_else(PoisonError::into_inner).2)
}

#[cfg(test)]
mod tests;
