//! A worker pool that splits each matmul over threads through amx-core's range API, and
//! the same split for engines that bring their own threads ([`Matmul`], [`Part`]).
//!
//! # Threads
//!
//! `Pool::new(t)` runs each job in up to `t` shares (fewer for small jobs, see below):
//! share 0 on the calling thread (which would otherwise sit blocked), shares `1..` on
//! `t - 1` persistent worker threads.
//! Waiting threads spin for up to 100 us before blocking: waking a blocked thread took
//! about 75 us per round trip on the development VM, several percent of a 2 ms matmul,
//! while back-to-back matmuls arrive within the spin window.
//!
//! # One matmul on the pool
//!
//! [`Pool::matmul`] checks the packed weights and shapes, then runs one job, cut into one
//! block of activation rows (aligned to [`Preparation::row_align`]) and one block of
//! output per share: every thread of the job claims row blocks and prepares (quantizes
//! or converts) them into the pool's workspace, waits until all are prepared, then claims
//! output blocks and computes them with [`gemm::gemm_range_shared`]. Each block is
//! claimed once (an atomic counter), and the calling thread computes whatever the workers
//! have not claimed, so a worker that is slow to start (its core busy with another
//! process) delays nothing: the caller withdraws the job and waits only for workers that
//! started it. The cut gives panels first (pairs on AMX, where the kernel runs two panels
//! at a time) and rows only when there are fewer panel units than shares, because every
//! share that computes a panel decodes it. Blocks are pairwise disjoint, so the shared
//! writes are sound; amx-core computes each value the same way whatever the cut and
//! whichever thread computes it, so the output is bit-identical for any number of
//! threads.
//!
//! # Sharing X
//!
//! [`Pool::linear_many`] prepares `X` once and computes every weight's output in one job
//! (Q, K and V; gate and up). [`Pool::prepare`] prepares `X` once (all shares) into a
//! [`PreparedActivations`] that owns its buffer; [`Pool::matmul_prepared`] then runs any
//! number of weights with the same K and format family against it.
//! [`PreparedActivations::into_buffer`] and [`Pool::prepare_in`] recycle the buffer.
//!
//! # One-line calls
//!
//! [`Pool::linear`] (`y = x * W^T`), [`Pool::linear_many`] and [`Pool::moe`] (the grouped
//! expert matmul of a mixture-of-experts layer) take flat `f32` slices and a parsed
//! [`PackedRef`]: M comes from the lengths, the format from the packed header.
//!
//! # Small jobs stay on the calling thread
//!
//! A job is cut into at most one share per [`Pool::min_share_macs`] multiply-accumulates
//! of work (default [`DEFAULT_MIN_SHARE_MACS`], environment variable
//! [`MIN_SHARE_MACS_VAR`], [`Pool::set_min_share_macs`]): handing a share to a worker
//! costs time, which a decode-sized matmul (M = 1, N x K = 192 x 576, about 2 us here)
//! does not win back (the measurements are on [`DEFAULT_MIN_SHARE_MACS`]). Only the
//! workers a job uses are woken; a job of one share runs on the calling thread and wakes
//! none ([`Pool::counters`] shows it). The cut never changes the values: outputs are
//! bit-identical whatever the threshold and the thread count.
//!
//! # No allocation per call in steady state
//!
//! The job is a borrowed closure (no box); its counters and error slot live on the
//! caller's stack; the workspace for prepared activations is one `Vec<u8>` per pool,
//! grown when a call needs more and reused as is; each thread keeps its own scratch
//! `Vec<u8>`, grown the same way. A plain vector rather than a bumpalo arena: a call
//! needs exactly one block of workspace, and an arena hands out memory that safe code
//! must initialise (zero) on every call, while the vector keeps its bytes between calls
//! (amx-core's preparation writes every byte the kernels read). The `pool_alloc` test
//! counts allocations with a global allocator.
//!
//! # Tile state
//!
//! Each thread records AMX use before running an AMX kernel and runs `tilerelease` as
//! soon as its share of a job is done ([`tile_state::release_thread`]), the calling
//! thread included. Calls on a pool are serialised, so the end of a share is exactly when
//! the pool goes idle for that thread: no waiting worker carries 8 KiB of tile data
//! through context switches, and the caller leaves `matmul` without tile state. The
//! price: amx-core's kernel skips `ldtilecfg` when its configuration is still loaded,
//! but a share is one kernel call and ends released, so in the pool every matmul costs
//! each thread one `ldtilecfg`. Measured by `examples/pool_scaling.rs`: the cycle of
//! `sttilecfg` check, `ldtilecfg` and `tilerelease` takes 65-85 ns against 60 ns for the
//! check alone, nothing next to a matmul worth splitting (milliseconds). The skip pays on
//! threads that run many kernels in a row without releasing: engine threads running
//! [`Part`]s, or a one-thread GEMM loop.
//!
//! # Calls from inside a job
//!
//! A pool runs one job at a time, so a job that calls its own pool again (a matmul inside
//! [`Pool::broadcast`], on the calling thread or on a worker) would wait for itself
//! forever. Each pool records which thread holds it and each worker knows its pool, so
//! such a call returns [`GemmError::NestedPoolCall`] instead ([`Pool::broadcast`] itself,
//! which returns nothing, panics; [`Pool::try_broadcast`] returns the error). Calling
//! *another* pool from a job is fine.
//!
//! # Own threads
//!
//! [`Matmul::new`] cuts a matmul into [`Part`]s that an engine runs on its own threads
//! with [`Part::run`] (safe; see [`Matmul`] for why the parts are disjoint). Activations
//! for it come from [`PreparedActivations::prepare`] (one thread) or from amx-core's
//! [`Preparation`] (`byte_range`, `prepare_rows`, `finish`: already safe to split over
//! threads, each taking a disjoint `&mut` part of the body).

mod linear;
mod moe;
mod plan;
mod prepared;
mod threshold;
mod workers;

use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use amx_core::formats::Format;
use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path, Preparation};
use amx_core::pack::PackedRef;

pub use linear::LINEAR_MANY_PER_JOB;
pub use plan::{Matmul, Part, Parts};
pub use prepared::PreparedActivations;
pub use threshold::{DEFAULT_MIN_SHARE_MACS, MIN_SHARE_MACS_VAR};

use linear::Output;
use plan::{Split, check_operands, run_block};
use prepared::{SharedBytes, prepare_share, worker_rows};
use workers::{Counters, Workers};

use crate::tile_state;

/// The calling thread plus a fixed set of worker threads that run matmuls, one call at a
/// time (concurrent calls from several threads wait for each other).
pub struct Pool {
    inner: Mutex<Inner>,
    threads: usize,
    /// The workers' identity ([`workers::is_worker_of`]).
    id: u64,
    /// [`workers::thread_tag`] of the thread holding `inner` (0: none), so that a call
    /// from the thread that holds the pool is refused rather than waiting for itself.
    holder: AtomicU64,
    /// Minimum multiply-accumulates per share ([`Pool::min_share_macs`]).
    min_share_macs: AtomicU64,
    /// The workers' counters, readable while a job runs.
    counters: Arc<Counters>,
}

/// What a pool did since it was made ([`Pool::counters`]): to check that small jobs stay
/// on the calling thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolCounters {
    /// Jobs run (each matmul, preparation, grouped call, broadcast: one job; a
    /// [`Pool::linear_many`] of more than [`LINEAR_MANY_PER_JOB`] outputs: more).
    pub jobs: u64,
    /// Jobs that woke workers (the others ran on the calling thread alone).
    pub jobs_on_workers: u64,
    /// Shares run by worker threads, over all jobs.
    pub worker_shares: u64,
}

/// The pool's state, held by one thread; the holder is recorded while it lives.
struct Held<'a> {
    pool: &'a Pool,
    inner: MutexGuard<'a, Inner>,
}

impl Deref for Held<'_> {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Runs before the guard (a field) unlocks: no other thread can hold the pool yet.
        self.pool.holder.store(0, Ordering::Relaxed);
    }
}

struct Inner {
    workers: Workers,
    /// Prepared activations of [`Pool::matmul`], reused call after call.
    workspace: Vec<u8>,
}

/// The first error of a job's shares, and whether the job should stop.
#[derive(Default)]
struct Outcome {
    first: Mutex<Option<GemmError>>,
    abort: AtomicBool,
}

impl Outcome {
    fn record(&self, r: Result<(), GemmError>) {
        if let Err(e) = r {
            self.abort.store(true, Ordering::SeqCst);
            self.first.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
        }
    }

    /// The next unclaimed index below `len` from `next`, or `None` (also after an error):
    /// each index is handed out once.
    fn claim(&self, next: &AtomicUsize, len: usize) -> Option<usize> {
        if self.abort.load(Ordering::SeqCst) {
            return None;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        (i < len).then_some(i)
    }

    fn result(self) -> Result<(), GemmError> {
        match self.first.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Share `w` of `t`: blocks `w, w + t, ...` of `split` (each block runs on one share).
///
/// # Safety
///
/// Concurrent calls on the same output use the same `split` and `t` and distinct `w`.
unsafe fn run_share(
    weights: &amx_core::pack::PackedRef<'_>,
    x: &gemm::Prepared<'_>,
    y: &gemm::SharedOut<'_>,
    split: &Split,
    (t, w): (usize, usize),
    scratch: &mut Vec<u8>,
    scratch_len: usize,
) -> Result<(), GemmError> {
    if scratch.len() < scratch_len {
        scratch.resize(scratch_len, 0);
    }
    let mut b = w;
    while b < split.len() {
        // SAFETY: block `b` is run by share `b % t` only (the caller's contract gives
        // each share a distinct `w`), once.
        unsafe { run_block(weights, x, y, split, b, scratch)? };
        b += t;
    }
    Ok(())
}

impl Pool {
    /// The most threads a pool may have (the calling thread included).
    pub const MAX_THREADS: usize = 1024;

    /// A pool that runs each job in `threads` shares (at least one): one on the calling
    /// thread and one on each of `threads - 1` worker threads it starts.
    ///
    /// # Panics
    ///
    /// When `threads` is over [`Pool::MAX_THREADS`] or the OS refuses to start a thread,
    /// as [`std::thread::spawn`] does; see [`Pool::try_new`].
    pub fn new(threads: usize) -> Pool {
        match Pool::try_new(threads) {
            Ok(pool) => pool,
            Err(e) => {
                panic!("amx-runtime pool: cannot start {} worker threads: {e}", threads.max(1) - 1)
            }
        }
    }

    /// [`Pool::new`], returning an error instead of panicking.
    ///
    /// The minimum work per share is [`DEFAULT_MIN_SHARE_MACS`], or the value of the
    /// environment variable [`MIN_SHARE_MACS_VAR`] when it is set.
    ///
    /// Errors: [`io::ErrorKind::InvalidInput`] when `threads` is over
    /// [`Pool::MAX_THREADS`] or [`MIN_SHARE_MACS_VAR`] is set to something else than a
    /// number (both checked before anything is allocated or started);
    /// [`io::ErrorKind::OutOfMemory`] when the per-thread state cannot be allocated; the
    /// OS error when a thread cannot be started (the threads already started are
    /// stopped).
    pub fn try_new(threads: usize) -> io::Result<Pool> {
        if threads > Pool::MAX_THREADS {
            let what = format!(
                "a pool of {threads} threads was asked for; at most {} are allowed",
                Pool::MAX_THREADS
            );
            return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        }
        let min_share_macs = AtomicU64::new(threshold::from_env()?);
        let workers = Workers::start(threads)?;
        let (threads, id, counters) = (workers.len(), workers.id(), workers.counters());
        let inner = Mutex::new(Inner { workers, workspace: Vec::new() });
        Ok(Pool { inner, threads, id, holder: AtomicU64::new(0), min_share_macs, counters })
    }

    /// Number of threads a job runs on (the calling thread included).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The minimum work of a share, in multiply-accumulates: a job of `w` MACs runs on
    /// `clamp(w / min, 1, threads)` shares, so a job below it runs on the calling thread
    /// alone and wakes no worker. `M x N x K` for a matmul; the sum over the weights of a
    /// [`Pool::linear_many`]; `T x top_k x N x K` for [`Pool::moe`]; `M x K` for a
    /// preparation alone ([`Pool::prepare`]). [`Pool::broadcast`] always uses every thread.
    pub fn min_share_macs(&self) -> u64 {
        self.min_share_macs.load(Ordering::Relaxed)
    }

    /// Sets [`Pool::min_share_macs`] for the jobs that start afterwards; 0 uses every
    /// thread for every job. Outputs do not depend on it (bit-identical for any cut).
    pub fn set_min_share_macs(&self, macs: u64) {
        self.min_share_macs.store(macs, Ordering::Relaxed);
    }

    /// [`Pool::set_min_share_macs`] on a pool being built: `Pool::new(2).with_min_share_macs(0)`.
    pub fn with_min_share_macs(self, macs: u64) -> Pool {
        self.set_min_share_macs(macs);
        self
    }

    /// Shares for a job of `macs` multiply-accumulates.
    fn shares_for(&self, macs: u64) -> usize {
        threshold::shares(macs, self.min_share_macs(), self.threads)
    }

    /// What the pool did since it was made: jobs, jobs that woke workers, shares run by
    /// workers. Safe to call at any time, from any thread (a job's counts are complete
    /// once its call has returned).
    pub fn counters(&self) -> PoolCounters {
        let c = &*self.counters;
        PoolCounters {
            jobs: c.jobs.load(Ordering::Relaxed),
            jobs_on_workers: c.published.load(Ordering::Relaxed),
            worker_shares: c.worker_shares.load(Ordering::Relaxed),
        }
    }

    /// The pool's state for one job, or [`GemmError::NestedPoolCall`] when the calling
    /// thread is running one of this pool's jobs (it holds the pool, or is one of its
    /// workers): waiting for the pool there would never end.
    fn lock(&self) -> Result<Held<'_>, GemmError> {
        let me = workers::thread_tag();
        if self.holder.load(Ordering::Relaxed) == me || workers::is_worker_of(self.id) {
            return Err(GemmError::NestedPoolCall { threads: self.threads });
        }
        // A panic resumed from a worker poisons the lock; the state stays consistent.
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // Only this thread writes its own tag, and clears it before unlocking, so a
        // thread reads its tag here exactly while it holds the pool.
        self.holder.store(me, Ordering::Relaxed);
        Ok(Held { pool: self, inner })
    }

    /// Runs `f(share)` once per share (share 0 on the calling thread, the others on the
    /// workers) and returns when all are done: for per-thread set-up or inspection, e.g.
    /// [`tile_state::thread_stats`]. A call on this pool from `f` (a matmul, ...) returns
    /// [`GemmError::NestedPoolCall`].
    ///
    /// # Panics
    ///
    /// When called from inside a job of this pool (from the `f` of another `broadcast`):
    /// see [`Pool::try_broadcast`]. A panic of `f` is resumed here once every share is
    /// done.
    pub fn broadcast<F: Fn(usize) + Sync>(&self, f: F) {
        if let Err(e) = self.try_broadcast(f) {
            panic!("amx-runtime pool: {e}");
        }
    }

    /// [`Pool::broadcast`], returning an error where it panics.
    ///
    /// Errors: [`GemmError::NestedPoolCall`] when called from inside a job of this pool.
    pub fn try_broadcast<F: Fn(usize) + Sync>(&self, f: F) -> Result<(), GemmError> {
        self.lock()?.workers.run(&|w, _| f(w));
        Ok(())
    }

    /// `y = x * W^T` on the pool's threads, with `packed` one `N x K` matrix of `format`
    /// packed by amx-core; the path is chosen by M ([`Path::Auto`]). Returns the path
    /// taken. The output is bit-identical to [`gemm::gemm`] on the same path, whatever
    /// the number of threads.
    ///
    /// Errors: [`GemmError::Weights`] (bad buffer, other format),
    /// [`GemmError::ActivationWidth`] (`x` is not K wide),
    /// [`GemmError::ShapeMismatch`] (`y` is not `M x N`, or K is not a multiple of 32 on
    /// the int8 path), [`GemmError::Overflow`], [`GemmError::NestedPoolCall`] (called
    /// from inside a job of this pool, see [`Pool::broadcast`]).
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn matmul(
        &self,
        packed: &[u8],
        format: Format,
        x: &MatRef<'_>,
        y: &mut MatMut<'_>,
    ) -> Result<Path, GemmError> {
        self.matmul_on(packed, format, x, y, Path::Auto)
    }

    /// [`Pool::matmul`] on a given path (`Auto`, or forced).
    ///
    /// Errors: those of [`Pool::matmul`], and [`GemmError::PathUnavailable`].
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn matmul_on(
        &self,
        packed: &[u8],
        format: Format,
        x: &MatRef<'_>,
        y: &mut MatMut<'_>,
        path: Path,
    ) -> Result<Path, GemmError> {
        let (m, k) = (x.rows(), x.cols());
        let weights = check_operands(packed, format, m, k, y.rows(), y.cols())?;
        let path = tile_state::resolve_path(format, m, path)?;
        if m == 0 {
            return Ok(path);
        }
        let prep = Preparation::new(format, m, k, path)?;
        let out = Output::new(weights, y.share());
        self.lock()?.job(self, &prep, x, &[Some(out)], true)?;
        Ok(path)
    }

    /// Prepares `x` for `format` weights on `path` (`Auto` resolved by M) with every
    /// worker, into a new buffer; use the result with [`Pool::matmul_prepared`] for every
    /// weight that shares `x`.
    ///
    /// Errors: those of [`Preparation::new`].
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn prepare<'x>(
        &self,
        format: Format,
        x: &MatRef<'x>,
        path: Path,
    ) -> Result<PreparedActivations<'x>, GemmError> {
        self.prepare_in(Vec::new(), format, x, path)
    }

    /// [`Pool::prepare`] in `buffer` (from [`PreparedActivations::into_buffer`]; grown if
    /// too small), so that steady-state preparation allocates nothing.
    ///
    /// Errors: those of [`Preparation::new`].
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn prepare_in<'x>(
        &self,
        buffer: Vec<u8>,
        format: Format,
        x: &MatRef<'x>,
        path: Path,
    ) -> Result<PreparedActivations<'x>, GemmError> {
        let mut acts = PreparedActivations::layout(buffer, format, x, path)?;
        let prep = *acts.preparation();
        let body = acts.body_mut();
        let t = self.shares_for(threshold::macs(x.rows(), x.cols(), 1));
        if worker_rows(&prep, x.rows(), t, 1).is_empty() {
            // One block of rows: no need to wake the workers.
            prep.prepare_rows(x, 0..x.rows(), body)?;
            return Ok(acts);
        }
        let body = SharedBytes::new(body);
        let outcome = Outcome::default();
        let next = AtomicUsize::new(0);
        self.lock()?.workers.run_helped(t, &|_, _| {
            while let Some(w) = outcome.claim(&next, t) {
                // SAFETY: block `w` is claimed once, so its rows and bytes are this
                // thread's; nothing reads the body until `run_helped` returns.
                outcome.record(unsafe { prepare_share(&prep, x, &body, t, w) });
            }
        });
        outcome.result()?;
        Ok(acts)
    }

    /// `y = x * W^T` from activations prepared by [`Pool::prepare`] (or
    /// [`PreparedActivations::prepare`]), on the path they were prepared for.
    ///
    /// Errors: [`GemmError::Weights`] (bad buffer, other format),
    /// [`GemmError::ActivationWidth`] (`x` is not K wide),
    /// [`GemmError::ShapeMismatch`] (`y` is not `M x N`), [`GemmError::PreparedMismatch`]
    /// (prepared for another path or format family), [`GemmError::NestedPoolCall`].
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn matmul_prepared(
        &self,
        x: &PreparedActivations<'_>,
        packed: &[u8],
        format: Format,
        y: &mut MatMut<'_>,
    ) -> Result<Path, GemmError> {
        let path = x.path();
        // The header is checked again (and any error reported) by `Matmul::new`.
        let n = PackedRef::parse(packed).map_or(0, |w| w.layout().n());
        let shares = self.shares_for(threshold::macs(x.rows(), n, x.cols()));
        let plan = Matmul::new(packed, format, x.prepared()?, y, shares)?;
        if plan.is_empty() {
            return Ok(path);
        }
        let t = plan.len();
        let outcome = Outcome::default();
        let next = AtomicUsize::new(0);
        self.lock()?.workers.run_helped(t, &|_, scratch| {
            while let Some(w) = outcome.claim(&next, t) {
                // SAFETY: every call uses the same plan and `t`; `w` is claimed once, so
                // no two calls run with the same `w`.
                outcome.record(unsafe { plan.run_share((t, w), scratch) });
            }
        });
        outcome.result()?;
        Ok(path)
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("threads", &self.threads).finish_non_exhaustive()
    }
}

impl Matmul<'_> {
    /// Share `w` of `t`'s blocks of this plan (see [`run_share`]).
    ///
    /// # Safety
    ///
    /// Concurrent calls on this plan use the same `t` and distinct `w`.
    unsafe fn run_share(
        &self,
        (t, w): (usize, usize),
        scratch: &mut Vec<u8>,
    ) -> Result<(), GemmError> {
        let (weights, x, y, split) = self.raw();
        // SAFETY: `weights`, `x`, `y` and `split` all come from this one plan, so concurrent
        // callers share one output and one split; our caller guarantees the same `t` and
        // distinct `w` across them, which is `run_share`'s whole requirement.
        unsafe { run_share(weights, x, y, split, (t, w), scratch, self.scratch_bytes()) }
    }
}

#[cfg(test)]
mod tests;
