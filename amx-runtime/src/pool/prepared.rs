//! Activations prepared once and kept for several matmuls ([`PreparedActivations`]), and
//! the parallel preparation the pool runs (each worker fills a disjoint block of rows).

use std::marker::PhantomData;
use std::ops::Range;

use amx_core::formats::Format;
use amx_core::gemm::{self, GemmError, MatRef, Path, Preparation, Prepared};

use super::plan::even;
use crate::tile_state;

/// Activations made ready for one kernel path, owning their buffer: prepare `X` once and
/// use it for every weight with the same K on that path and format family (the Q, K and
/// V projections of a layer): [`crate::pool::Pool::matmul_prepared`], [`crate::pool::Matmul`].
///
/// On the scalar path, and on the VNNI path for F16/BF16 weights, the kernels read `X`
/// itself, hence the borrow of `X` (`'x`). [`PreparedActivations::into_buffer`] gives the
/// buffer back for the next preparation, so a loop allocates nothing in steady state.
#[derive(Debug)]
pub struct PreparedActivations<'x> {
    buf: Vec<u8>,
    prep: Preparation,
    x: MatRef<'x>,
    offset: usize,
}

impl<'x> PreparedActivations<'x> {
    /// Prepares `x` for `format` weights on `path` (`Auto` resolved by M) on this thread,
    /// in a new buffer. [`crate::pool::Pool::prepare`] does it with every worker.
    ///
    /// Errors: those of [`Preparation::new`].
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn prepare(format: Format, x: &MatRef<'x>, path: Path) -> Result<Self, GemmError> {
        Self::prepare_in(Vec::new(), format, x, path)
    }

    /// [`PreparedActivations::prepare`] in `buffer` (grown if too small, never shrunk).
    ///
    /// Errors: those of [`Preparation::new`].
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn prepare_in(
        buffer: Vec<u8>,
        format: Format,
        x: &MatRef<'x>,
        path: Path,
    ) -> Result<Self, GemmError> {
        let mut acts = Self::layout(buffer, format, x, path)?;
        let (prep, x) = (acts.prep, acts.x);
        let body = acts.body_mut();
        prep.prepare_rows(&x, 0..x.rows(), body)?;
        Ok(acts)
    }

    /// The buffer sized and aligned for `x`, not yet filled.
    pub(crate) fn layout(
        mut buf: Vec<u8>,
        format: Format,
        x: &MatRef<'x>,
        path: Path,
    ) -> Result<Self, GemmError> {
        let path = tile_state::resolve_path(format, x.rows(), path)?;
        let prep = Preparation::new(format, x.rows(), x.cols(), path)?;
        let need = gemm::prepared_bytes(format, x.rows(), x.cols(), path)?;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        let base = buf.as_ptr() as usize;
        let offset = prep.body(&mut buf)?.as_ptr() as usize - base;
        Ok(Self { buf, prep, x: *x, offset })
    }

    /// The prepared bytes, writable.
    pub(crate) fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.offset..self.offset + self.prep.bytes()]
    }

    /// How these activations were prepared.
    pub(crate) fn preparation(&self) -> &Preparation {
        &self.prep
    }

    /// The activations as amx-core's [`Prepared`], for [`gemm::gemm_range`] or
    /// [`crate::pool::Matmul::new`].
    ///
    /// Errors: none in practice (the shapes were checked when preparing); amx-core's
    /// [`Preparation::finish`] checks them again.
    pub fn prepared(&self) -> Result<Prepared<'_>, GemmError> {
        let body = &self.buf[self.offset..self.offset + self.prep.bytes()];
        self.prep.finish(&self.x, body)
    }

    /// The concrete path.
    pub fn path(&self) -> Path {
        self.prep.path()
    }

    /// Rows (M).
    pub fn rows(&self) -> usize {
        self.x.rows()
    }

    /// Values per row (K).
    pub fn cols(&self) -> usize {
        self.x.cols()
    }

    /// The buffer, for the next [`PreparedActivations::prepare_in`] or
    /// [`crate::pool::Pool::prepare_in`].
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

/// A byte buffer several workers write at once, each a disjoint range.
pub(crate) struct SharedBytes<'a> {
    ptr: *mut u8,
    len: usize,
    _borrow: PhantomData<&'a mut [u8]>,
}

// SAFETY: a pointer to an exclusively borrowed buffer; concurrent access goes through
// `unsafe` methods whose contract keeps writers disjoint from each other and from readers.
unsafe impl Send for SharedBytes<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for SharedBytes<'_> {}

impl<'a> SharedBytes<'a> {
    pub(crate) fn new(bytes: &'a mut [u8]) -> Self {
        Self { ptr: bytes.as_mut_ptr(), len: bytes.len(), _borrow: PhantomData }
    }

    /// Bytes `range`, writable; `None` when the range is outside the buffer.
    ///
    /// # Safety
    ///
    /// While the returned slice lives, no other slice of this buffer overlapping `range`
    /// is used (from this or another thread).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, range: Range<usize>) -> Option<&mut [u8]> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        // SAFETY: the range is inside the borrowed buffer; exclusivity is the caller's
        // contract.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) })
    }

    /// The whole buffer, read-only.
    ///
    /// # Safety
    ///
    /// No slice from [`SharedBytes::slice_mut`] is used while the returned slice lives.
    pub(crate) unsafe fn all(&self) -> &[u8] {
        // SAFETY: the whole borrowed buffer; no writer meanwhile (caller's contract).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The rows worker `w` of `workers` prepares: nearly equal blocks aligned to
/// [`Preparation::row_align`].
pub(crate) fn worker_rows(prep: &Preparation, m: usize, workers: usize, w: usize) -> Range<usize> {
    let align = prep.row_align();
    let units = m.div_ceil(align);
    if w >= workers {
        return m..m;
    }
    even(units, workers.min(units).max(1), w, align, m)
}

/// Worker `w`'s share of preparing `x` into `body` (the whole prepared body).
///
/// # Safety
///
/// Concurrent calls on the same `body` have distinct `w` (their row blocks, hence byte
/// ranges, are disjoint) and nothing reads `body` meanwhile.
pub(crate) unsafe fn prepare_share(
    prep: &Preparation,
    x: &MatRef<'_>,
    body: &SharedBytes<'_>,
    workers: usize,
    w: usize,
) -> Result<(), GemmError> {
    let rows = worker_rows(prep, x.rows(), workers, w);
    if rows.is_empty() {
        return Ok(());
    }
    let range = prep.byte_range(rows.clone())?;
    // SAFETY: disjoint row blocks give disjoint byte ranges (the caller's contract for the
    // rest); an out-of-buffer range is reported, not used.
    let part = unsafe { body.slice_mut(range.clone()) }.ok_or(GemmError::Range {
        what: "bytes",
        start: range.start,
        end: range.end,
        len: prep.bytes(),
    })?;
    prep.prepare_rows(x, rows, part)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amx_core::gemm::MatMut;

    #[test]
    fn worker_rows_are_aligned_disjoint_and_cover() {
        for path in [Path::Scalar, Path::Vnni, Path::Amx] {
            if !path.available() {
                continue;
            }
            for m in [1, 15, 16, 17, 33, 100] {
                let prep = Preparation::new(Format::Q4_0, m, 64, path).expect("prep");
                for workers in 1..5 {
                    let mut next = 0;
                    for w in 0..workers {
                        let r = worker_rows(&prep, m, workers, w);
                        if r.is_empty() {
                            continue;
                        }
                        assert_eq!(r.start, next, "m={m} workers={workers} w={w}");
                        assert!(prep.byte_range(r.clone()).is_ok());
                        next = r.end;
                    }
                    assert_eq!(next, m);
                    assert!(worker_rows(&prep, m, workers, workers).is_empty());
                }
            }
        }
    }

    #[test]
    fn prepared_in_a_reused_buffer_gives_amx_core_results() {
        let (m, n, k) = (17, 16, 64);
        let format = Format::Q8_0;
        let xv: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.25 - 1.5).collect();
        let x = MatRef::new(&xv, m, k, k).expect("x");
        let raw = amx_testdata::weights::bench_weights(format, 5, n, k).expect("weights");
        let mut w = vec![0u8; amx_core::pack::packed_size(format, n, k, 1).expect("size")];
        amx_core::pack::pack(format, n, k, 1, &raw, &mut w).expect("pack");
        let weights = amx_core::pack::PackedRef::parse(&w).expect("parse");
        // A dirty buffer: whatever a previous preparation left must not matter.
        let mut buf = vec![0xa5u8; 1 << 16];
        for path in [Path::Auto, Path::Vnni, Path::Amx, Path::Scalar, Path::Vnni] {
            if !path.available() {
                continue;
            }
            let acts = PreparedActivations::prepare_in(buf, format, &x, path).expect("prep");
            let mut got = vec![f32::NAN; m * n];
            let mut y = MatMut::new(&mut got, m, n, n).expect("y");
            let mut scratch = vec![0u8; gemm::scratch_bytes(format, k, acts.path()).expect("s")];
            let prepared = acts.prepared().expect("prepared");
            gemm::gemm_range(&weights, &prepared, &mut y, 0..1, 0..m, &mut scratch).expect("gemm");
            let mut want = vec![f32::NAN; m * n];
            let mut y = MatMut::new(&mut want, m, n, n).expect("y");
            let mut ws = vec![0u8; gemm::workspace_bytes(format, m, k, path).expect("ws")];
            let taken = gemm::gemm(&w, format, &x, &mut y, path, &mut ws).expect("gemm");
            assert_eq!(taken, acts.path());
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{path:?}");
            buf = acts.into_buffer();
            buf.fill(0x5a);
        }
    }
}
