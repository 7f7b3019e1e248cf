//! [`Grouped`]: a routed and prepared grouped call whose work items any number of threads
//! claim, each item exactly once.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::{Routing, expert_bytes, routing_bytes, tables_bytes, take};
use crate::formats::Format;
use crate::gemm::{self, GemmError, MatMut, MatRef, Path, Preparation, SharedOut};
use crate::pack::PackedRef;

/// A routed and prepared grouped call, computed as work items: (expert, panel range)
/// pairs, by default one item per expert with rows ([`Grouped::split`] cuts finer).
///
/// # Threads
///
/// `Grouped` is `Sync`: any number of threads may call [`Grouped::run_all`] or
/// [`Grouped::run_next`] on one `&Grouped` at the same time. They cooperate: each item
/// is claimed by exactly one call (an atomic counter hands out item indices), so no
/// output value is ever written by two threads, and each thread computes a share of
/// the work. The results come out with [`Grouped::scatter`], which takes `&mut self`
/// (so no item is running) and refuses until every item has finished.
///
/// ```
/// # use amx_core::{formats::Format, gemm::{GemmError, MatMut, MatRef, Path}};
/// # use amx_core::moe::{Grouped, MoeShape, grouped_workspace_bytes};
/// # use amx_core::pack::{pack, packed_size};
/// # fn main() -> Result<(), GemmError> {
/// # let (format, experts, n, k, tokens, top_k) = (Format::Q8_0, 2, 32, 64, 3, 1);
/// # let src = vec![0u8; experts * n * format.row_bytes(k).unwrap()];
/// # let mut w = vec![0u8; packed_size(format, n, k, experts)?];
/// # pack(format, n, k, experts, &src, &mut w)?;
/// # let x = vec![0.5f32; tokens * k];
/// # let x = MatRef::new(&x, tokens, k, k)?;
/// # let ids = [0u32, 1, 1];
/// # let shape = MoeShape { experts, n, k, tokens, top_k };
/// # let mut ws = vec![0u8; grouped_workspace_bytes(format, &shape, Path::Scalar)?];
/// # let scratch = amx_core::gemm::scratch_bytes(format, k, Path::Scalar)?;
/// # let mut out = vec![0f32; tokens * top_k * n];
/// # let mut y = MatMut::new(&mut out, tokens * top_k, n, n)?;
/// let (mut call, _) = Grouped::new(&w, format, &x, &ids, top_k, Path::Scalar, &mut ws)?;
/// call.split(1)?; // one 16-column panel per item
/// let call_ref = &call;
/// std::thread::scope(|s| {
///     let a = s.spawn(move || call_ref.run_all(&mut vec![0; scratch]));
///     let b = s.spawn(move || call_ref.run_all(&mut vec![0; scratch]));
///     a.join().unwrap().and(b.join().unwrap())
/// })?;
/// call.scatter(&mut y)?;
/// # Ok(()) }
/// ```
pub struct Grouped<'w> {
    weights: PackedRef<'w>,
    format: Format,
    shape: super::MoeShape,
    path: Path,
    routing: Routing<'w>,
    /// E + 1 offsets (u64) of each expert's prepared rows in `prepared`.
    offsets: &'w [u8],
    /// The experts with rows (u32 each), in increasing order.
    active: &'w [u8],
    prepared: &'w [u8],
    out: SharedOut<'w>,
    /// Panels per item.
    per: usize,
    /// Items per active expert (`panels.div_ceil(per)`).
    chunks: usize,
    /// Items of the call (`active experts x chunks`).
    total: usize,
    /// The next item to hand out; never above `total`. An item whose index a call took
    /// from here is run by that call only.
    next: AtomicUsize,
    /// Items finished without error.
    done: AtomicUsize,
}

impl<'w> Grouped<'w> {
    /// Checks the stack (`weights`, E experts of `n x K` in `format`), routes `ids` (T x
    /// `top_k`, each below E), and prepares every expert's rows of `x` (T x K) in
    /// `workspace` (at least [`super::grouped_workspace_bytes`]). Returns the call (one
    /// item per expert with rows) and the rest of the workspace (one scratch for
    /// [`Grouped::run_all`]).
    ///
    /// Errors: the packed-buffer errors as [`GemmError::Weights`];
    /// [`GemmError::ShapeMismatch`] when `x`, `ids` and the stack disagree;
    /// [`GemmError::ExpertOutOfRange`]; [`GemmError::WorkspaceTooSmall`];
    /// [`GemmError::PathUnavailable`]; [`GemmError::Overflow`].
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
        let shape = super::MoeShape { experts: l.matrices(), n: l.n(), k: l.k(), tokens, top_k };
        let experts = shape.experts;
        // The documented size, checked up front so a short workspace is reported with the
        // caller's numbers rather than those of whichever piece ran out.
        let needed = super::grouped_workspace_bytes(format, &shape, path)?;
        if workspace.len() < needed {
            return Err(GemmError::WorkspaceTooSmall { needed, actual: workspace.len() });
        }
        let mut ws = workspace;
        let routing =
            Routing::new(ids, experts, take(&mut ws, routing_bytes(tokens, top_k, experts)?)?)?;
        let (offsets_len, active_len) = tables_bytes(experts).ok_or(GemmError::Overflow)?;
        let offsets = take(&mut ws, offsets_len)?;
        let active = take(&mut ws, active_len)?;
        let (mut total, mut count) = (0usize, 0usize);
        for e in 0..experts {
            offsets[8 * e..8 * e + 8].copy_from_slice(&(total as u64).to_le_bytes());
            let run = routing.run(e).unwrap_or_default();
            let bytes = expert_bytes(format, run.len(), shape.k, path)?;
            total = total.checked_add(bytes).ok_or(GemmError::Overflow)?;
            if !run.is_empty() {
                // An expert with rows is some id's value, so it fits a u32.
                active[4 * count..4 * count + 4].copy_from_slice(&(e as u32).to_le_bytes());
                count += 1;
            }
        }
        offsets[8 * experts..].copy_from_slice(&(total as u64).to_le_bytes());
        let prepared = take(&mut ws, total)?;
        for e in 0..experts {
            let run = routing.run(e).unwrap_or_default();
            if run.is_empty() {
                continue;
            }
            let at = u64_at(offsets, e);
            let p = Preparation::new(format, run.len(), shape.k, path)?;
            // Entries are positions below T x top_k (`Routing::new`), so each names a
            // token of `x`: no row is skipped.
            let rows = run
                .filter_map(|i| routing.entry(i))
                .filter_map(|pos| pos.checked_div(top_k))
                .filter_map(|t| x.row(t));
            p.prepare_gathered(rows, &mut prepared[at..at + p.gathered_bytes()?]);
        }
        let out_len = rows.checked_mul(shape.n).ok_or(GemmError::Overflow)?;
        let out_bytes = take(&mut ws, out_len.checked_mul(4).ok_or(GemmError::Overflow)?)?;
        // SAFETY: `out_bytes` is 64-byte aligned (from `take`) and f32 has no invalid bit
        // patterns, so viewing it as f32 is sound; `align_to` returns the aligned middle.
        let (head, out_f32, _) = unsafe { out_bytes.align_to_mut::<f32>() };
        if !head.is_empty() || out_f32.len() < out_len {
            return Err(GemmError::WorkspaceTooSmall {
                needed: out_len * 4,
                actual: out_f32.len() * 4,
            });
        }
        let out = MatMut::new(out_f32, rows, shape.n, shape.n)?.into_shared();
        let active = &active[..4 * count];
        let mut call = Self {
            weights: stack,
            format,
            shape,
            path,
            routing,
            offsets,
            active,
            prepared,
            out,
            per: 0,
            chunks: 0,
            total: 0,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        };
        call.split(usize::MAX)?;
        Ok((call, ws))
    }

    /// The call's shapes.
    pub const fn shape(&self) -> super::MoeShape {
        self.shape
    }

    /// Rows routed to expert `e` (0 when `e >= experts`).
    pub fn expert_rows(&self, e: usize) -> usize {
        self.routing.run(e).map_or(0, |r| r.len())
    }

    /// Panels of one expert (16 output columns each).
    pub fn panels(&self) -> usize {
        self.weights.layout().panels_per_matrix()
    }

    /// Cuts the work into items of at most `panels_per_item` panels (at least one) of one
    /// expert each, and returns the number of items. Every item counts as not yet run
    /// afterwards: items that ran before run again (same results), which also makes a
    /// call whose item failed runnable again.
    ///
    /// Errors: [`GemmError::Overflow`] (not with a stack [`Grouped::new`] accepted).
    pub fn split(&mut self, panels_per_item: usize) -> Result<usize, GemmError> {
        let per = panels_per_item.max(1);
        let chunks = self.panels().div_ceil(per);
        let total = (self.active.len() / 4).checked_mul(chunks).ok_or(GemmError::Overflow)?;
        (self.per, self.chunks, self.total) = (per, chunks, total);
        *self.next.get_mut() = 0;
        *self.done.get_mut() = 0;
        Ok(total)
    }

    /// Work items of the call ([`Grouped::split`]).
    pub const fn items(&self) -> usize {
        self.total
    }

    /// Work items finished so far (all of them once [`Grouped::scatter`] may run).
    pub fn finished(&self) -> usize {
        self.done.load(Ordering::Acquire)
    }

    /// Claims the next item not yet claimed and computes it into the gathered output,
    /// with `scratch` (at least [`gemm::scratch_bytes`] for this format, K and path).
    /// Returns `Ok(false)` when no item is left. Safe to call from several threads at
    /// once: each item is claimed by one call only.
    ///
    /// Errors: [`GemmError::WorkspaceTooSmall`] (a small `scratch`) and the kernel's
    /// errors. After an error no further item is handed out (calls on other threads stop
    /// after their current item), the failed item stays unfinished and
    /// [`Grouped::scatter`] refuses; [`Grouped::split`] makes the call runnable again.
    pub fn run_next(&self, scratch: &mut [u8]) -> Result<bool, GemmError> {
        let total = self.total;
        // Claim one item: a bounded increment (`fetch_update`, deprecated for `try_update`
        // on newer toolchains than the MSRV; spelled out so both build without warnings).
        let mut item = self.next.load(Ordering::Relaxed);
        loop {
            if item >= total {
                return Ok(false);
            }
            match self.next.compare_exchange_weak(
                item,
                item + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => item = now,
            }
        }
        match self.run_item(item, scratch) {
            Ok(()) => {
                self.done.fetch_add(1, Ordering::Release);
                Ok(true)
            }
            Err(error) => {
                self.next.store(total, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    /// Computes items until none is left ([`Grouped::run_next`]); several threads may
    /// call it at once on one call and share the items.
    ///
    /// Errors: as [`Grouped::run_next`].
    pub fn run_all(&self, scratch: &mut [u8]) -> Result<(), GemmError> {
        while self.run_next(scratch)? {}
        Ok(())
    }

    /// Computes item `item` (below `total`), which this call claimed.
    fn run_item(&self, item: usize, scratch: &mut [u8]) -> Result<(), GemmError> {
        // `chunks > 0` whenever an item exists (`total = active x chunks`).
        let (slot, chunk) = (item.checked_div(self.chunks), item.checked_rem(self.chunks));
        let id = slot.and_then(|slot| self.active.get(4 * slot..4 * slot + 4));
        let (Some(id), Some(chunk)) = (id, chunk) else {
            return Err(GemmError::Range {
                what: "items",
                start: item,
                end: item + 1,
                len: self.total,
            });
        };
        let expert = u32::from_le_bytes([id[0], id[1], id[2], id[3]]) as usize;
        let (run, weights) = match (self.routing.run(expert), self.weights.matrix(expert)) {
            (Some(run), Some(weights)) => (run, weights),
            _ => {
                return Err(GemmError::Range {
                    what: "experts",
                    start: expert,
                    end: expert + 1,
                    len: self.shape.experts,
                });
            }
        };
        let start = chunk * self.per;
        let panels = start..start.saturating_add(self.per).min(self.panels());
        let rows = run.len();
        let p = Preparation::new(self.format, rows, self.shape.k, self.path)?;
        let at = u64_at(self.offsets, expert);
        let prepared = p.finish_gathered(&self.prepared[at..at + p.gathered_bytes()?])?;
        let out = self.out.rows_from(run.start, rows);
        // SAFETY: the item index was handed out once (`run_next`'s atomic claim), and
        // distinct items write disjoint values: items of distinct experts write their
        // experts' runs of output rows (disjoint routing runs), items of one expert
        // distinct panel chunks. `scatter`, the only reader, takes `&mut self`.
        unsafe { gemm::gemm_range_shared(&weights, &prepared, &out, panels, 0..rows, scratch) }
    }

    /// Scatters the gathered output into `y` (T x top_k rows of N): row `t * top_k + s`
    /// gets token t's product with expert `ids[t * top_k + s]`.
    ///
    /// Errors: [`GemmError::Unfinished`] until every item has run (so that a reused
    /// workspace never yields the previous call's values); [`GemmError::ShapeMismatch`]
    /// when `y` is not T x top_k by N.
    pub fn scatter(&mut self, y: &mut MatMut<'_>) -> Result<(), GemmError> {
        let (done, total) = (*self.done.get_mut(), self.total);
        if done != total {
            return Err(GemmError::Unfinished { done, total });
        }
        let rows = self.routing.len();
        for (dim, expected, found) in [("m", rows, y.rows()), ("n", self.shape.n, y.cols())] {
            if expected != found {
                return Err(GemmError::ShapeMismatch { dim, expected, found });
            }
        }
        let n = self.shape.n;
        for i in 0..rows {
            let Some(dst) = self.routing.entry(i) else { continue };
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

/// The u64 at index `e` of `b` (an offsets table of E + 1 entries, `e <= E`).
fn u64_at(b: &[u8], e: usize) -> usize {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[8 * e..8 * e + 8]);
    u64::from_le_bytes(v) as usize
}
