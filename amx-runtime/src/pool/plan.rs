//! How one matmul is cut into disjoint blocks of output (rows x 16-column panels), and the
//! safe API for engines that run those blocks on their own threads: [`Matmul`] and
//! [`Part`].

use std::cell::RefCell;
use std::ops::Range;

use amx_core::formats::Format;
use amx_core::gemm::{self, GemmError, MatMut, Path, Prepared, SharedOut};
use amx_core::pack::PackedRef;

use crate::tile_state;

/// Block `j` of `blocks` nearly equal blocks of `units` units of `unit` items, clipped to
/// `len` items. Blocks of distinct `j` never overlap and together cover `0..len`.
pub(crate) fn even(units: usize, blocks: usize, j: usize, unit: usize, len: usize) -> Range<usize> {
    let at = |j: usize| {
        let u = (units as u128 * j as u128 / blocks.max(1) as u128) as usize;
        u.saturating_mul(unit).min(len)
    };
    at(j)..at(j + 1)
}

/// A cut of `panels x rows` into `panel_blocks x row_blocks` blocks. Panels go in units of
/// two on the AMX path (its kernel runs panel pairs), rows in units of the kernel's row
/// block (32 on AMX, 8 on VNNI). Panels are split first: every worker splitting rows
/// would decode the same weights, so rows are split only when there are fewer panel
/// units than parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    panels: usize,
    rows: usize,
    panel_unit: usize,
    row_unit: usize,
    panel_blocks: usize,
    row_blocks: usize,
}

impl Split {
    /// At most `parts` blocks (at least one when there is any output).
    pub(crate) fn new(path: Path, panels: usize, rows: usize, parts: usize) -> Self {
        let (panel_unit, row_unit) = match path {
            Path::Amx => (2, 32),
            Path::Vnni => (1, 8),
            _ => (1, 1),
        };
        let parts = parts.max(1);
        let (p_units, r_units) = (panels.div_ceil(panel_unit), rows.div_ceil(row_unit));
        let (panel_blocks, row_blocks) = if p_units == 0 || r_units == 0 {
            (0, 0)
        } else if p_units >= parts {
            (parts, 1)
        } else {
            (p_units, (parts / p_units).min(r_units))
        };
        Self { panels, rows, panel_unit, row_unit, panel_blocks, row_blocks }
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        self.panel_blocks * self.row_blocks
    }

    /// Block `i` (`i < len`): its panels and rows. Two distinct blocks differ in their
    /// panel block or their row block, so their panel ranges or their row ranges are
    /// disjoint ([`even`]).
    pub(crate) fn block(&self, i: usize) -> (Range<usize>, Range<usize>) {
        let (pb, rb) = (i % self.panel_blocks.max(1), i / self.panel_blocks.max(1));
        let p_units = self.panels.div_ceil(self.panel_unit);
        let r_units = self.rows.div_ceil(self.row_unit);
        (
            even(p_units, self.panel_blocks, pb, self.panel_unit, self.panels),
            even(r_units, self.row_blocks, rb, self.row_unit, self.rows),
        )
    }
}

/// Runs block `i` of `split` into `y`, growing nothing: `scratch` must hold the path's
/// scratch. Records AMX use on this thread for [`tile_state::release_thread`].
///
/// # Safety
///
/// No other call writing block `i` of the same `split` into the same output runs at the
/// same time (blocks of one split are disjoint, see [`Split::block`]).
pub(crate) unsafe fn run_block(
    weights: &PackedRef<'_>,
    x: &Prepared<'_>,
    y: &SharedOut<'_>,
    split: &Split,
    i: usize,
    scratch: &mut [u8],
) -> Result<(), GemmError> {
    let (panels, rows) = split.block(i);
    if x.path() == Path::Amx {
        tile_state::mark_used();
    }
    // SAFETY: distinct blocks of one split write disjoint values, and block `i` has no
    // concurrent writer (the caller's contract).
    unsafe { gemm::gemm_range_shared(weights, x, y, panels, rows, scratch) }
}

/// Checks that `packed` holds one matrix of `format` with `k` values per row and that
/// `y` is `m x n` for it; returns the weights' view.
pub(crate) fn check_operands<'w>(
    packed: &'w [u8],
    format: Format,
    m: usize,
    k: usize,
    y_rows: usize,
    y_cols: usize,
) -> Result<PackedRef<'w>, GemmError> {
    let weights = PackedRef::parse(packed)?;
    let (n, wk) = (weights.layout().n(), weights.layout().k());
    weights.expect(format, n, wk, 1)?;
    // The same checks, in the same order, as amx-core's `gemm`.
    if k != wk {
        return Err(GemmError::ActivationWidth { x_cols: k, k: wk });
    }
    for (dim, expected, found) in [("n", n, y_cols), ("m", m, y_rows)] {
        if expected != found {
            return Err(GemmError::ShapeMismatch { dim, expected, found });
        }
    }
    Ok(weights)
}

/// One matmul cut into disjoint parts, for an engine that runs them on its own threads
/// (rayon, `std::thread::scope`, a job system): no `unsafe` needed.
///
/// ```no_run
/// # use amx_runtime::pool::{Matmul, PreparedActivations};
/// # use amx_runtime::amx_core::{formats::Format, gemm::{MatRef, MatMut, Path, GemmError}};
/// # fn demo(w: &[u8], x: MatRef<'_>, y: &mut MatMut<'_>) -> Result<(), GemmError> {
/// let acts = PreparedActivations::prepare(Format::Q4_0, &x, Path::Auto)?;
/// let plan = Matmul::new(w, Format::Q4_0, acts.prepared()?, y, 2)?;
/// std::thread::scope(|s| {
///     let handles: Vec<_> = plan.parts().map(|part| s.spawn(move || part.run_local())).collect();
///     handles.into_iter().try_for_each(|h| h.join().expect("part"))
/// })?;
/// # Ok(()) }
/// ```
///
/// Why the parts never write the same value: `Matmul::new` borrows the output mutably
/// for the plan's whole life, so nothing else writes it; the plan is neither `Clone` nor
/// `Copy`, and [`Matmul::parts`] consumes it and yields each block of the cut exactly once;
/// blocks of one cut are pairwise disjoint (distinct panel ranges or distinct row ranges);
/// a [`Part`] is neither `Clone` nor `Copy` and [`Part::run`] consumes it. So the parts
/// alive at any time own disjoint blocks, and running them concurrently is sound.
#[derive(Debug)]
pub struct Matmul<'a> {
    weights: PackedRef<'a>,
    x: Prepared<'a>,
    y: SharedOut<'a>,
    split: Split,
    scratch: usize,
}

impl<'a> Matmul<'a> {
    /// Plans `y = x * W^T` for `packed` weights (one `N x K` matrix of `format`) and
    /// activations prepared for them, cut into at most `parts` parts (fewer when the
    /// output is small; none when it is empty).
    ///
    /// Errors: [`GemmError::Weights`] (bad packed buffer, other format),
    /// [`GemmError::ActivationWidth`] (activations not K wide),
    /// [`GemmError::ShapeMismatch`] (`y` is not `M x N`), [`GemmError::PreparedMismatch`]
    /// (activations prepared for another path or format family).
    pub fn new(
        packed: &'a [u8],
        format: Format,
        x: Prepared<'a>,
        y: &'a mut MatMut<'_>,
        parts: usize,
    ) -> Result<Self, GemmError> {
        let weights = check_operands(packed, format, x.rows(), x.cols(), y.rows(), y.cols())?;
        let y = y.share();
        // Empty ranges check every operand and write nothing.
        // SAFETY: a call with empty ranges writes no value.
        unsafe { gemm::gemm_range_shared(&weights, &x, &y, 0..0, 0..0, &mut [])? };
        let split = Split::new(x.path(), weights.layout().panels(), x.rows(), parts);
        let scratch = gemm::scratch_bytes(format, x.cols(), x.path())?;
        Ok(Self { weights, x, y, split, scratch })
    }

    /// Number of parts.
    pub fn len(&self) -> usize {
        self.split.len()
    }

    /// Whether there is nothing to compute (M = 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Scratch bytes each thread running a part needs ([`Part::run`]).
    pub fn scratch_bytes(&self) -> usize {
        self.scratch
    }

    /// The kernel path the activations were prepared for.
    pub fn path(&self) -> Path {
        self.x.path()
    }

    /// The plan's operands and cut, for the pool's workers.
    pub(crate) fn raw(&self) -> (&PackedRef<'a>, &Prepared<'a>, &SharedOut<'a>, &Split) {
        (&self.weights, &self.x, &self.y, &self.split)
    }

    /// The parts, each block once.
    pub fn parts(self) -> Parts<'a> {
        Parts { plan: self, next: 0 }
    }
}

/// The parts of a [`Matmul`], each yielded once.
#[derive(Debug)]
pub struct Parts<'a> {
    plan: Matmul<'a>,
    next: usize,
}

impl<'a> Iterator for Parts<'a> {
    type Item = Part<'a>;

    fn next(&mut self) -> Option<Part<'a>> {
        if self.next >= self.plan.split.len() {
            return None;
        }
        let (panels, rows) = self.plan.split.block(self.next);
        self.next += 1;
        let p = &self.plan;
        Some(Part { weights: p.weights, x: p.x, y: p.y, panels, rows, scratch: p.scratch })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.plan.split.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Parts<'_> {}

/// One block of a [`Matmul`]: output rows [`Part::rows`] of panels [`Part::panels`].
/// `Send`, so it can run on any thread; not `Clone`: each block exists once.
#[derive(Debug)]
pub struct Part<'a> {
    weights: PackedRef<'a>,
    x: Prepared<'a>,
    y: SharedOut<'a>,
    panels: Range<usize>,
    rows: Range<usize>,
    scratch: usize,
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Part<'_> {
    /// The 16-column panels this part computes.
    pub fn panels(&self) -> Range<usize> {
        self.panels.clone()
    }

    /// The output rows this part computes.
    pub fn rows(&self) -> Range<usize> {
        self.rows.clone()
    }

    /// Scratch bytes [`Part::run`] needs.
    pub fn scratch_bytes(&self) -> usize {
        self.scratch
    }

    /// Computes this part with `scratch` (at least [`Part::scratch_bytes`]). On the AMX
    /// path the thread keeps its tile configuration afterwards (the next part on it
    /// skips `ldtilecfg`); call [`tile_state::release_thread`] when the thread goes idle,
    /// or let thread exit release it.
    ///
    /// Errors: [`GemmError::WorkspaceTooSmall`].
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn run(self, scratch: &mut [u8]) -> Result<(), GemmError> {
        if self.x.path() == Path::Amx {
            tile_state::mark_used();
        }
        // SAFETY: this part's block is disjoint from every other part's and no other
        // handle to it exists (see `Matmul`), so no concurrent call writes its values.
        unsafe {
            gemm::gemm_range_shared(
                &self.weights,
                &self.x,
                &self.y,
                self.panels,
                self.rows,
                scratch,
            )
        }
    }

    /// [`Part::run`] with a scratch buffer kept per thread by this crate (grown on demand,
    /// so steady-state calls allocate nothing).
    ///
    /// Errors: as [`Part::run`].
    pub fn run_local(self) -> Result<(), GemmError> {
        let need = self.scratch;
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                if buf.len() < need {
                    buf.resize(need, 0);
                }
                self.run(&mut buf)
            }
            // Not reachable (nothing runs a part while holding the buffer); stay correct.
            Err(_) => self.run(&mut vec![0; need]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(s: &Split) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        for i in 0..s.len() {
            let (p, r) = s.block(i);
            assert!(!p.is_empty() && !r.is_empty(), "empty block {i} of {s:?}");
            for pi in p {
                for ri in r.clone() {
                    all.push((pi, ri));
                }
            }
        }
        all.sort_unstable();
        all
    }

    #[test]
    fn blocks_cover_every_cell_once() {
        for path in [Path::Amx, Path::Vnni, Path::Scalar] {
            for panels in [1, 2, 3, 5, 16, 17] {
                for rows in [1, 8, 16, 17, 32, 33, 100] {
                    for parts in [1, 2, 3, 4, 7, 64] {
                        let s = Split::new(path, panels, rows, parts);
                        assert!(s.len() >= 1 && s.len() <= parts, "{s:?}");
                        let want: Vec<_> =
                            (0..panels).flat_map(|p| (0..rows).map(move |r| (p, r))).collect();
                        assert_eq!(cells(&s), want, "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn panels_first_rows_when_panels_are_few() {
        let s = Split::new(Path::Amx, 256, 512, 2);
        assert_eq!((s.block(0), s.block(1)), ((0..128, 0..512), (128..256, 0..512)));
        // One panel pair, 64 rows: rows split on 32-row boundaries.
        let s = Split::new(Path::Amx, 2, 64, 2);
        assert_eq!((s.block(0), s.block(1)), ((0..2, 0..32), (0..2, 32..64)));
        // Odd panel counts keep pairs together on AMX.
        let s = Split::new(Path::Amx, 5, 16, 2);
        assert_eq!((s.block(0).0, s.block(1).0), (0..2, 2..5));
        assert_eq!(Split::new(Path::Vnni, 0, 16, 2).len(), 0);
        assert_eq!(Split::new(Path::Vnni, 4, 0, 2).len(), 0);
    }
}
