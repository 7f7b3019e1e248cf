//! The pool's matmul job (prepare `X` once, a block of rows at a time; once all are
//! prepared, compute every output's blocks; each block claimed by one thread) and the one-line calls built on it: [`Pool::linear`]
//! and [`Pool::linear_many`], which take M from the lengths of flat slices and the
//! format from the packed header.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path, Preparation, SharedOut};
use amx_core::pack::PackedRef;

use super::plan::{Split, run_block};
use super::prepared::{SharedBytes, prepare_share};
use super::threshold::macs;
use super::workers::wait_for;
use super::{Inner, Outcome, Pool};
use crate::tile_state;

/// Outputs one job of [`Pool::linear_many`] computes: their views live in an array on the
/// caller's stack (no allocation per call). A call with more outputs prepares `X` in its
/// first job and runs one more job per further `LINEAR_MANY_PER_JOB` outputs on the same
/// prepared activations.
pub const LINEAR_MANY_PER_JOB: usize = 16;

/// One weight and the output it writes, shared by the shares of a job.
#[derive(Clone, Copy)]
pub(super) struct Output<'a> {
    weights: PackedRef<'a>,
    y: SharedOut<'a>,
}

impl<'a> Output<'a> {
    /// `weights` (one matrix, checked against `y` and the activations by the caller)
    /// writing `y`.
    pub(super) fn new(weights: PackedRef<'a>, y: SharedOut<'a>) -> Self {
        Self { weights, y }
    }

    fn split(&self, path: Path, rows: usize, shares: usize) -> Split {
        Split::new(path, self.weights.layout().panels(), rows, shares)
    }
}

/// The block numbered `number` when the blocks of every output's split (cut for
/// `shares`) are numbered one after the other: its output and its index in that split.
fn numbered<'o, 'a>(
    outs: &'o [Option<Output<'a>>],
    path: Path,
    rows: usize,
    shares: usize,
    mut number: usize,
) -> Option<(&'o Output<'a>, Split, usize)> {
    for out in outs.iter().flatten() {
        let split = out.split(path, rows, shares);
        if number < split.len() {
            return Some((out, split, number));
        }
        number -= split.len();
    }
    None
}

/// What the threads of one job share: counters that hand out each preparation block and
/// each output block once ([`Outcome::claim`]), and the first error.
#[derive(Default)]
struct Claims {
    prep_next: AtomicUsize,
    prep_done: AtomicUsize,
    block_next: AtomicUsize,
    outcome: Outcome,
}

impl Inner {
    /// One job on `x`'s activations prepared by `prep`: prepares them into the workspace
    /// first when `prepare` (else they are there from the previous job), then computes
    /// every output of `outs` (weights checked against `x`, `prep` and their outputs).
    /// Every thread of the job claims preparation blocks (rows) until none is left, waits
    /// until all are prepared, then claims output blocks until none is left; up to as many
    /// threads as [`Pool::min_share_macs`] allows, and the calling thread does whatever
    /// the workers do not claim.
    pub(super) fn job(
        &mut self,
        pool: &Pool,
        prep: &Preparation,
        x: &MatRef<'_>,
        outs: &[Option<Output<'_>>],
        prepare: bool,
    ) -> Result<(), GemmError> {
        let (m, k, path) = (x.rows(), x.cols(), prep.path());
        let (mut scratch_len, mut work, mut blocks) = (0, 0u64, 0);
        for out in outs.iter().flatten() {
            let l = out.weights.layout();
            scratch_len = scratch_len.max(gemm::scratch_bytes(l.format(), k, path)?);
            work = work.saturating_add(macs(m, l.n(), k));
        }
        let shares = pool.shares_for(work);
        for out in outs.iter().flatten() {
            blocks += out.split(path, m, shares).len();
        }
        // Preparation blocks: the rows of `t` shares (at least one, to prepare even when
        // there is no block to compute).
        let t = shares.min(blocks).max(1);
        let prep_blocks = if prepare { t } else { 0 };
        let Inner { workers, workspace } = self;
        let need = prep.bytes().checked_add(64).ok_or(GemmError::Overflow)?;
        if workspace.len() < need {
            if !prepare {
                // Not reachable: the first job sized it.
                return Err(GemmError::WorkspaceTooSmall { needed: need, actual: workspace.len() });
            }
            workspace.resize(need, 0);
        }
        let body = SharedBytes::new(prep.body(workspace)?);
        let claims = Claims::default();
        workers.run_helped(t, &|_, scratch| {
            while let Some(b) = claims.outcome.claim(&claims.prep_next, prep_blocks) {
                let prepared = panic::catch_unwind(AssertUnwindSafe(|| {
                    // SAFETY: block `b` is claimed once (its rows, hence its bytes, are
                    // nobody else's); nothing reads the body until every block is done.
                    unsafe { prepare_share(prep, x, &body, prep_blocks, b) }
                }));
                match prepared {
                    Ok(r) => claims.outcome.record(r),
                    Err(payload) => {
                        claims.outcome.abort.store(true, Ordering::SeqCst);
                        // Counted, so that no thread waits for this block forever.
                        claims.prep_done.fetch_add(1, Ordering::Release);
                        panic::resume_unwind(payload);
                    }
                }
                claims.prep_done.fetch_add(1, Ordering::Release);
            }
            // Every block is claimed; the threads that claimed them are running them. An
            // error stops the claiming, so the blocks done may stay short of all of them.
            wait_for(|| {
                claims.outcome.abort.load(Ordering::SeqCst)
                    || claims.prep_done.load(Ordering::Acquire) >= prep_blocks
            });
            if claims.outcome.abort.load(Ordering::SeqCst) {
                return;
            }
            // SAFETY: every preparation block is done (the Acquire load above sees the
            // writes), so no thread writes the body any more.
            let body = unsafe { body.all() };
            let x = match prep.finish(x, body) {
                Ok(x) => x,
                Err(e) => return claims.outcome.record(Err(e)),
            };
            if scratch.len() < scratch_len {
                scratch.resize(scratch_len, 0);
            }
            while let Some(number) = claims.outcome.claim(&claims.block_next, blocks) {
                let Some((out, split, b)) = numbered(outs, path, m, shares, number) else {
                    break;
                };
                // SAFETY: block `number` is claimed once, so this is its only writer;
                // blocks of one split are disjoint and distinct outputs are distinct
                // `&mut` borrows.
                claims
                    .outcome
                    .record(unsafe { run_block(&out.weights, &x, &out.y, &split, b, scratch) });
            }
        });
        claims.outcome.result()
    }
}

impl Pool {
    /// `y = x * W^T` for one packed weight `w` (`N x K`, its format from its header),
    /// with M taken from the lengths: `x` is M rows of K values and `y` M rows of N,
    /// both packed (row stride K and N). The path is the one [`Path::Auto`] picks for M;
    /// returns it. Bit-identical to [`Pool::matmul`] (and to amx-core's `gemm`) on that
    /// path, whatever the number of threads. May request the AMX permission (once per
    /// process, [`tile_state::amx`]).
    ///
    /// ```
    /// # use amx_runtime::pool::Pool;
    /// # use amx_runtime::amx_core::{formats::Format, pack::{self, PackedRef}};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (n, k) = (16, 64);
    /// // Q8_0 rows of K values: per 32 values, an f16 scale (1.0) and 32 int8 (1).
    /// let block: Vec<u8> = [0x00, 0x3c].into_iter().chain([1u8; 32]).collect();
    /// let raw: Vec<u8> = block.iter().copied().cycle().take(n * 2 * 34).collect();
    /// let mut w = vec![0u8; pack::packed_size(Format::Q8_0, n, k, 1)?];
    /// pack::pack(Format::Q8_0, n, k, 1, &raw, &mut w)?;
    /// let w = PackedRef::parse(&w)?;
    /// let pool = Pool::new(2);
    /// let x = vec![0.5f32; 3 * k]; // M = 3
    /// let mut y = vec![0f32; 3 * n];
    /// pool.linear(&w, &x, &mut y)?;
    /// assert!(y.iter().all(|&v| (v - 32.0).abs() < 0.5)); // 64 x 0.5 x 1
    /// assert!(pool.linear(&w, &x[..100], &mut y).is_err()); // 100 is not M x 64
    /// # Ok(()) }
    /// ```
    ///
    /// Errors: [`GemmError::Lengths`] when `x.len()` is not M x K or `y.len()` not M x N
    /// for one M; [`GemmError::StackedWeights`] for an expert stack (see [`Pool::moe`]);
    /// those of [`Pool::matmul`].
    pub fn linear(&self, w: &PackedRef<'_>, x: &[f32], y: &mut [f32]) -> Result<Path, GemmError> {
        self.linear_many_on(x, &mut [(w, y)], Path::Auto)
    }

    /// `y_i = x * W_i^T` for every `(W_i, y_i)` of `outs`, preparing `x` once and
    /// computing every output in one job (Q, K and V of a layer; gate and up): M comes
    /// from the lengths as in [`Pool::linear`] (`x` is M x K, each `y_i` M x `N_i`). Every
    /// weight is one matrix with weight 0's K, in a format that takes the activations
    /// prepared for weight 0 (any two quantized formats, or F16 and BF16); the path is
    /// the one [`Path::Auto`] picks for weight 0's format and M, and is returned. Each
    /// output is bit-identical to a [`Pool::matmul_on`] of its weight on that path.
    /// More than [`LINEAR_MANY_PER_JOB`] outputs take one more job per further
    /// [`LINEAR_MANY_PER_JOB`]. No output: nothing is checked or computed. May request the
    /// AMX permission.
    ///
    /// Errors: [`GemmError::SharedActivations`] naming the first weight that does not fit
    /// weight 0 (its index, format, K, matrices); [`GemmError::StackedWeights`] when weight
    /// 0 is a stack; [`GemmError::Lengths`] naming the first output whose length fits no
    /// M (or `x`, reported with output 0); those of [`Pool::matmul`].
    pub fn linear_many(
        &self,
        x: &[f32],
        outs: &mut [(&PackedRef<'_>, &mut [f32])],
    ) -> Result<Path, GemmError> {
        self.linear_many_on(x, outs, Path::Auto)
    }

    /// [`Pool::linear_many`] on a given path (`Auto`, or forced).
    ///
    /// Errors: those of [`Pool::linear_many`], and [`GemmError::PathUnavailable`].
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn linear_many_on(
        &self,
        x: &[f32],
        outs: &mut [(&PackedRef<'_>, &mut [f32])],
        path: Path,
    ) -> Result<Path, GemmError> {
        let Some((first, y0)) = outs.first() else { return Ok(path) };
        let l0 = *first.layout();
        let (f0, k) = (l0.format(), l0.k());
        if l0.matrices() != 1 {
            return Err(GemmError::StackedWeights { matrices: l0.matrices() });
        }
        let lengths =
            |index, y_len, y_row| GemmError::Lengths { index, x_len: x.len(), k, y_len, y_row };
        if !x.len().is_multiple_of(k) {
            return Err(lengths(0, y0.len(), l0.n()));
        }
        let m = x.len() / k;
        let path = tile_state::resolve_path(f0, m, path)?;
        let prep = Preparation::new(f0, m, k, path)?;
        for (index, (w, y)) in outs.iter().enumerate() {
            let l = w.layout();
            let fits = l.matrices() == 1
                && l.k() == k
                && Preparation::new(l.format(), m, k, path).is_ok_and(|p| p == prep);
            if !fits {
                return Err(GemmError::SharedActivations {
                    index,
                    format: l.format(),
                    k: l.k(),
                    matrices: l.matrices(),
                    first_format: f0,
                    first_k: k,
                    path,
                });
            }
            if m.checked_mul(l.n()) != Some(y.len()) {
                return Err(lengths(index, y.len(), l.n()));
            }
        }
        if m == 0 {
            return Ok(path);
        }
        let x = MatRef::new(x, m, k, k)?;
        let mut held = self.lock()?;
        for (number, chunk) in outs.chunks_mut(LINEAR_MANY_PER_JOB).enumerate() {
            let mut mats: [Option<(PackedRef<'_>, MatMut<'_>)>; LINEAR_MANY_PER_JOB] =
                [const { None }; LINEAR_MANY_PER_JOB];
            for (slot, (w, y)) in mats.iter_mut().zip(chunk.iter_mut()) {
                let n = w.layout().n();
                *slot = Some((**w, MatMut::new(y, m, n, n)?));
            }
            let mut views = [None; LINEAR_MANY_PER_JOB];
            for (view, mat) in views.iter_mut().zip(mats.iter_mut()) {
                if let Some((w, y)) = mat {
                    *view = Some(Output::new(*w, y.share()));
                }
            }
            held.job(self, &prep, &x, &views, number == 0)?;
        }
        Ok(path)
    }
}
