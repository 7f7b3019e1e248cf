//! Quantized GEMM: `Y[M x N] = X[M x K] * W^T`, with `W` packed by [`crate::pack`] and
//! `X`, `Y` f32 with any row stride.
//!
//! # One call
//!
//! ```no_run
//! # use amx_core::{formats::Format, gemm::{self, MatRef, MatMut, Path}, pack};
//! # fn demo(w: &[u8], x: &[f32], y: &mut [f32], n: usize, k: usize, m: usize) -> Result<(), gemm::GemmError> {
//! let mut packed = vec![0u8; pack::packed_size(Format::Q4_0, n, k, 1)?];
//! pack::pack(Format::Q4_0, n, k, 1, w, &mut packed)?;
//! let mut ws = vec![0u8; gemm::workspace_bytes(Format::Q4_0, m, k, Path::Auto)?];
//! let x = MatRef::new(x, m, k, k)?;
//! let mut y = MatMut::new(y, m, n, n)?;
//! gemm::gemm(&packed, Format::Q4_0, &x, &mut y, Path::Auto, &mut ws)?;
//! # Ok(()) }
//! ```
//!
//! # Splitting the work
//!
//! [`prepare`] quantizes (or converts) the activations once; the result serves every
//! matmul on the same path that shares `X` (the Q, K and V projections of a layer).
//! [`gemm_range`] then computes any block of output rows x 16-column panels, and
//! [`gemm_range_shared`] lets several threads do so at once on one output. Each output
//! value is computed the same way whatever the split, so the result is bit-identical for
//! every split. Each thread needs its own scratch of [`scratch_bytes`].
//!
//! # Edges
//!
//! M = 0 is a no-op once the shapes check out (`y` is still checked to be 0 x N).
//! K = 0 is refused with [`GemmError::ZeroK`] by every entry point that takes a K (packed
//! weights have K >= 1, so there is no product to compute). N need not be a multiple of
//! 16: padding columns are never written. Paths differ in rounding (int8 activations on
//! the VNNI path, BF16 on the AMX path), never in which outputs are written.
//!
//! # Extreme values
//!
//! NaN or infinity in `X` reach only the outputs of their row, in `W` only those of their
//! column, on every path. At the ends of the f32 range the paths differ:
//!
//! - [`Path::Scalar`], and [`Path::Vnni`] for F16/BF16 weights: plain f32 arithmetic on
//!   the dequantized weights (subnormals kept, overflow to infinity as in f32).
//! - [`Path::Vnni`], quantized weights: each 32-value block of a row becomes int8 with
//!   the scale `dx = max|x| / 127`. Tiny and subnormal blocks keep that precision (the
//!   quantizer divides by `dx` where `1 / dx` would overflow); once `dx` itself is
//!   subnormal its bits, and those of the products of scales, thin out, and a block with
//!   max|x| below about 8.9e-44 has `dx = 0` and counts as zeros. At the top, the block
//!   sums `dx * sum(q)` that the kernels multiply with the weights' offsets overflow to
//!   infinity once they exceed f32::MAX (values near f32::MAX filling a block), which can
//!   make a row infinite or NaN where its true result is still finite.
//! - [`Path::Amx`]: activations are rounded to BF16 (nearest even), whose exponent range
//!   is f32's: |x| >= 0x7f7f8000 (~3.3961776e38, f32::MAX among them) becomes infinite, so
//!   its row's outputs are +-infinity (NaN where the weight is 0). Subnormal activations
//!   stay subnormal in BF16, but the tile unit flushes subnormal results to zero: a
//!   product x * w below f32::MIN_POSITIVE (~1.18e-38) counts as zero (a row of subnormal
//!   activations against weights below 1 gives exactly zero), and so does an output that
//!   would be subnormal. Weights are widened to BF16 too (F16 and decoded quantized
//!   values).

mod error;
mod matrix;
mod path;

use core::ops::Range;

pub use error::GemmError;
pub use matrix::{MatMut, MatRef, SharedOut};
pub use path::{Path, amx_min_rows};

use crate::formats::Format;
use crate::kernels::{self, Job};
use crate::pack::{PANEL_ROWS, PackedRef};
use crate::quantize::{self, Q8Layout, TileLayout};

/// Workspace alignment: prepared data starts at a multiple of this many bytes.
const ALIGN: usize = 64;

/// What the prepared activations hold.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PreparedKind<'a> {
    /// The f32 rows as given (scalar path; VNNI path for F16/BF16 weights).
    F32(MatRef<'a>),
    /// Q8 row records (VNNI path, quantized weights).
    Q8 { bytes: &'a [u8], layout: Q8Layout },
    /// BF16 tiles (AMX path).
    Tiles { bytes: &'a [u8], layout: TileLayout },
}

/// Activations made ready for one path by [`prepare`]: reusable by every matmul on that
/// path whose weights have `k` values per row (and, for quantized-vs-float weights, the
/// same kind, see [`GemmError::PreparedMismatch`]).
#[derive(Clone, Copy, Debug)]
pub struct Prepared<'a> {
    pub(crate) path: Path,
    pub(crate) kind: PreparedKind<'a>,
    pub(crate) m: usize,
    pub(crate) k: usize,
}

impl Prepared<'_> {
    /// The concrete path these activations were prepared for.
    pub const fn path(&self) -> Path {
        self.path
    }
    /// Rows (M).
    pub const fn rows(&self) -> usize {
        self.m
    }
    /// Values per row (K).
    pub const fn cols(&self) -> usize {
        self.k
    }
}

/// Whether `format`'s values are floats (F16, BF16), which the VNNI path reads as they
/// are, not decoded.
fn is_float(format: Format) -> bool {
    format.sub_block().is_none()
}

/// The form prepared activations take on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    F32,
    Q8(Q8Layout),
    Tiles(TileLayout),
}

/// How `m` rows of `k` activations are prepared for `format` weights on one path: the
/// size, and the row blocks that can be prepared independently, so that several threads
/// can fill one workspace in parallel ([`Preparation::prepare_rows`] on disjoint row
/// ranges, then [`Preparation::finish`]). [`prepare`] does all of it on one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preparation {
    path: Path,
    form: Form,
    m: usize,
    k: usize,
}

impl Preparation {
    /// The preparation of `m x k` activations for `format` weights on `path` (`Auto`
    /// resolved by `m`).
    ///
    /// Errors: [`GemmError::ZeroK`] when `k` is 0 (on every path; M = 0 is fine);
    /// [`GemmError::PathUnavailable`]; [`GemmError::ShapeMismatch`] when K is not a
    /// multiple of 32 on the int8 path; [`GemmError::Overflow`] when the prepared size
    /// does not fit `usize`.
    pub fn new(format: Format, m: usize, k: usize, path: Path) -> Result<Self, GemmError> {
        if k == 0 {
            return Err(GemmError::ZeroK);
        }
        let path = path.resolve(format, m)?;
        let form = match path {
            Path::Scalar => Form::F32,
            Path::Vnni if is_float(format) => Form::F32,
            Path::Vnni if !k.is_multiple_of(32) => {
                return Err(match k.checked_next_multiple_of(32) {
                    Some(expected) => GemmError::ShapeMismatch { dim: "k", expected, found: k },
                    None => GemmError::Overflow,
                });
            }
            Path::Vnni => Form::Q8(Q8Layout { k }),
            // `resolve` never gives `Auto`.
            Path::Amx | Path::Auto => Form::Tiles(TileLayout::new(m, k)),
        };
        let p = Self { path, form, m, k };
        p.checked_bytes().ok_or(GemmError::Overflow)?;
        Ok(p)
    }

    fn checked_bytes(&self) -> Option<usize> {
        match self.form {
            Form::F32 => Some(0),
            // No rows take no bytes, however wide a record would be.
            Form::Q8(_) if self.m == 0 => Some(0),
            Form::Q8(l) => l.checked_row_bytes()?.checked_mul(self.m),
            Form::Tiles(l) => l.m_tiles.checked_mul(l.k_tiles)?.checked_mul(1024),
        }
    }

    /// The concrete path.
    pub const fn path(&self) -> Path {
        self.path
    }

    /// Bytes of the prepared activations (a workspace also needs up to 64 more, for
    /// alignment: see [`prepared_bytes`]).
    pub fn bytes(&self) -> usize {
        self.checked_bytes().unwrap_or(0)
    }

    /// Row ranges given to [`Preparation::prepare_rows`] start at a multiple of this and
    /// end at a multiple of it or at M (16 for BF16 tiles, else 1).
    pub const fn row_align(&self) -> usize {
        match self.form {
            Form::Tiles(_) => 16,
            Form::F32 | Form::Q8(_) => 1,
        }
    }

    /// The bytes of [`Preparation::body`] that rows `rows` fill.
    ///
    /// Errors: [`GemmError::Range`] when the range is reversed or past M,
    /// [`GemmError::Misaligned`] when it is not aligned to [`Preparation::row_align`].
    pub fn byte_range(&self, rows: Range<usize>) -> Result<Range<usize>, GemmError> {
        let (start, end, len) = (rows.start, rows.end, self.m);
        if start > end || end > len {
            return Err(GemmError::Range { what: "rows", start, end, len });
        }
        let align = self.row_align();
        if !start.is_multiple_of(align) || !(end.is_multiple_of(align) || end == len) {
            return Err(GemmError::Misaligned { what: "rows", start, end, align, len });
        }
        // `count` units of `unit` bytes. Within M the products fit (`new` checked the total),
        // but with M = 0 the unit alone may not (a huge K): 0 units are 0 bytes.
        let bytes = |count: usize, unit: Option<usize>| match count {
            0 => Ok(0),
            c => unit.and_then(|u| u.checked_mul(c)).ok_or(GemmError::Overflow),
        };
        Ok(match self.form {
            Form::F32 => 0..0,
            Form::Q8(l) => {
                let unit = l.checked_row_bytes();
                bytes(start, unit)?..bytes(end, unit)?
            }
            Form::Tiles(l) => {
                let end_tile = if end == len { l.m_tiles } else { end / 16 };
                let unit = l.k_tiles.checked_mul(1024);
                bytes(start / 16, unit)?..bytes(end_tile, unit)?
            }
        })
    }

    /// The aligned part of `workspace` the prepared activations live in, exactly
    /// [`Preparation::bytes`] long.
    ///
    /// Errors: [`GemmError::WorkspaceTooSmall`] (the workspace needs [`prepared_bytes`]).
    pub fn body<'a>(&self, workspace: &'a mut [u8]) -> Result<&'a mut [u8], GemmError> {
        let needed = self.bytes() + ALIGN;
        if workspace.len() < needed {
            return Err(GemmError::WorkspaceTooSmall { needed, actual: workspace.len() });
        }
        let body = aligned(workspace);
        Ok(&mut body[..self.bytes()])
    }

    /// Prepares rows `rows` of `x` into `part`, the bytes [`Preparation::byte_range`]
    /// gives for them (a slice of the body).
    ///
    /// Errors: [`GemmError::ShapeMismatch`] when `x` is not `m x k`; [`GemmError::Range`],
    /// [`GemmError::Misaligned`] (as [`Preparation::byte_range`]);
    /// [`GemmError::WorkspaceTooSmall`] when `part` has another length than the range.
    pub fn prepare_rows(
        &self,
        x: &MatRef<'_>,
        rows: Range<usize>,
        part: &mut [u8],
    ) -> Result<(), GemmError> {
        self.check_x(x)?;
        let range = self.byte_range(rows.clone())?;
        if part.len() != range.len() {
            return Err(GemmError::WorkspaceTooSmall { needed: range.len(), actual: part.len() });
        }
        if rows.is_empty() {
            // Nothing to write (and with M = 0 a huge K's record size need not fit).
            return Ok(());
        }
        match self.form {
            Form::F32 => {}
            Form::Q8(l) => {
                for (i, rec) in rows.zip(part.chunks_exact_mut(l.row_bytes())) {
                    quantize::q8_row(x.row_in(i), rec);
                }
            }
            Form::Tiles(l) => {
                part.fill(0);
                let first = rows.start;
                let sub =
                    TileLayout { m_tiles: range.len() / (l.k_tiles * 1024), k_tiles: l.k_tiles };
                quantize::bf16_tile_rows(&sub, rows.map(|i| (i - first, x.row_in(i))), part);
            }
        }
        Ok(())
    }

    /// Bytes [`Preparation::prepare_gathered`] writes: [`Preparation::bytes`], or for the
    /// f32 form the M rows themselves (which the other entry points borrow instead).
    pub(crate) fn gathered_bytes(&self) -> Result<usize, GemmError> {
        match self.form {
            Form::F32 => self.m.checked_mul(self.k).and_then(|v| v.checked_mul(4)),
            Form::Q8(_) | Form::Tiles(_) => self.checked_bytes(),
        }
        .ok_or(GemmError::Overflow)
    }

    /// Prepares the rows `rows` yields (exactly M of them, row 0 first) into `body`
    /// ([`Preparation::gathered_bytes`] long): the MoE path gathers each expert's tokens
    /// this way. The f32 form copies the rows (little-endian bit patterns).
    pub(crate) fn prepare_gathered<'r>(
        &self,
        rows: impl Iterator<Item = &'r [f32]>,
        body: &mut [u8],
    ) {
        if self.m == 0 {
            // No rows (and with M = 0 a huge K's record size need not fit).
            return;
        }
        match self.form {
            Form::F32 => {
                for (row, dst) in rows.zip(body.chunks_exact_mut(4 * self.k)) {
                    for (v, d) in row.iter().zip(dst.chunks_exact_mut(4)) {
                        d.copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
            Form::Q8(l) => {
                for (row, rec) in rows.zip(body.chunks_exact_mut(l.row_bytes())) {
                    quantize::q8_row(row, rec);
                }
            }
            Form::Tiles(l) => {
                body.fill(0);
                quantize::bf16_tile_rows(&l, rows.enumerate(), body);
            }
        }
    }

    /// The prepared activations [`Preparation::prepare_gathered`] wrote into `body`.
    ///
    /// Errors: [`GemmError::WorkspaceTooSmall`] when `body` is not
    /// [`Preparation::gathered_bytes`] long, or (f32 form) not 4-byte aligned.
    pub(crate) fn finish_gathered<'a>(&self, body: &'a [u8]) -> Result<Prepared<'a>, GemmError> {
        let needed = self.gathered_bytes()?;
        let too_small = GemmError::WorkspaceTooSmall { needed, actual: body.len() };
        if body.len() != needed {
            return Err(too_small);
        }
        let kind = match self.form {
            Form::F32 => {
                // SAFETY: every bit pattern is a valid f32; `align_to` returns only the
                // aligned middle, and a non-empty head is refused.
                let (head, f, _) = unsafe { body.align_to::<f32>() };
                if !head.is_empty() {
                    return Err(too_small);
                }
                PreparedKind::F32(MatRef::new(f, self.m, self.k, self.k)?)
            }
            Form::Q8(layout) => PreparedKind::Q8 { bytes: body, layout },
            Form::Tiles(layout) => PreparedKind::Tiles { bytes: body, layout },
        };
        Ok(Prepared { path: self.path, kind, m: self.m, k: self.k })
    }

    /// The prepared activations, once every row has been prepared into `body` (the whole
    /// body).
    ///
    /// Errors: [`GemmError::ShapeMismatch`] when `x` is not `m x k`,
    /// [`GemmError::WorkspaceTooSmall`] when `body` is not [`Preparation::bytes`] long.
    pub fn finish<'a>(&self, x: &MatRef<'a>, body: &'a [u8]) -> Result<Prepared<'a>, GemmError> {
        self.check_x(x)?;
        if body.len() != self.bytes() {
            return Err(GemmError::WorkspaceTooSmall { needed: self.bytes(), actual: body.len() });
        }
        let kind = match self.form {
            Form::F32 => PreparedKind::F32(*x),
            Form::Q8(layout) => PreparedKind::Q8 { bytes: body, layout },
            Form::Tiles(layout) => PreparedKind::Tiles { bytes: body, layout },
        };
        Ok(Prepared { path: self.path, kind, m: self.m, k: self.k })
    }

    fn check_x(&self, x: &MatRef<'_>) -> Result<(), GemmError> {
        for (dim, expected, found) in [("m", self.m, x.rows()), ("k", self.k, x.cols())] {
            if expected != found {
                return Err(GemmError::ShapeMismatch { dim, expected, found });
            }
        }
        Ok(())
    }
}

/// Bytes [`prepare`] needs for `m` rows of `k` values going to `format` weights on `path`
/// (`Auto` resolved as [`gemm`] would): the prepared data and 64 bytes of alignment slack.
///
/// Errors: as [`Preparation::new`].
pub fn prepared_bytes(format: Format, m: usize, k: usize, path: Path) -> Result<usize, GemmError> {
    Preparation::new(format, m, k, path)?.bytes().checked_add(ALIGN).ok_or(GemmError::Overflow)
}

/// Per-thread scratch bytes of [`gemm_range`] for `format` weights with `k` values per row
/// on `path` (the AMX path widens two weight panels at a time into it).
///
/// Errors: [`GemmError::ZeroK`], [`GemmError::PathUnavailable`], [`GemmError::Overflow`].
pub fn scratch_bytes(format: Format, k: usize, path: Path) -> Result<usize, GemmError> {
    if k == 0 {
        return Err(GemmError::ZeroK);
    }
    match path.resolve(format, amx_min_rows(format))? {
        Path::Amx => k.div_ceil(32).checked_mul(2 * 1024).and_then(|b| b.checked_add(ALIGN)),
        Path::Auto | Path::Vnni | Path::Scalar => Some(0),
    }
    .ok_or(GemmError::Overflow)
}

/// Workspace bytes of a whole [`gemm`] call: the prepared activations and one scratch.
///
/// Errors: as [`prepared_bytes`].
pub fn workspace_bytes(format: Format, m: usize, k: usize, path: Path) -> Result<usize, GemmError> {
    if k == 0 {
        return Err(GemmError::ZeroK);
    }
    let resolved = path.resolve(format, m)?;
    prepared_bytes(format, m, k, resolved)?
        .checked_add(scratch_bytes(format, k, resolved)?)
        .ok_or(GemmError::Overflow)
}

/// The part of `ws` from its first 64-byte aligned byte on. Sizes from
/// [`prepared_bytes`] and [`scratch_bytes`] include the `ALIGN` bytes this may skip.
fn aligned(ws: &mut [u8]) -> &mut [u8] {
    let skip = ws.as_ptr().align_offset(ALIGN).min(ws.len());
    &mut ws[skip..]
}

/// Prepares `x` (M rows of K values) for `format` weights on `path` (`Auto` resolved by
/// M) in `workspace` (at least [`prepared_bytes`]), on this thread.
///
/// Errors: those of [`Preparation::new`] and [`GemmError::WorkspaceTooSmall`].
pub fn prepare<'a>(
    format: Format,
    x: &MatRef<'a>,
    path: Path,
    workspace: &'a mut [u8],
) -> Result<Prepared<'a>, GemmError> {
    let p = Preparation::new(format, x.rows(), x.cols(), path)?;
    let body = p.body(workspace)?;
    p.prepare_rows(x, 0..x.rows(), body)?;
    p.finish(x, body)
}

/// Checks that `x` and `y` fit `weights` and the ranges, returning the weights' view.
fn check_job<'w>(
    weights: &PackedRef<'w>,
    x: &Prepared<'_>,
    y_rows: usize,
    y_cols: usize,
    panels: &Range<usize>,
    rows: &Range<usize>,
) -> Result<(), GemmError> {
    let l = weights.layout();
    if l.matrices() != 1 {
        return Err(GemmError::StackedWeights { matrices: l.matrices() });
    }
    if x.k != l.k() {
        return Err(GemmError::ActivationWidth { x_cols: x.k, k: l.k() });
    }
    for (dim, expected, found) in [("n", l.n(), y_cols), ("m", x.m, y_rows)] {
        if expected != found {
            return Err(GemmError::ShapeMismatch { dim, expected, found });
        }
    }
    let fits = match x.kind {
        PreparedKind::F32(_) => x.path == Path::Scalar || is_float(l.format()),
        PreparedKind::Q8 { .. } => !is_float(l.format()),
        PreparedKind::Tiles { .. } => true,
    };
    if !fits {
        return Err(GemmError::PreparedMismatch { format: l.format(), prepared_for: x.path });
    }
    for (what, r, len) in [("panels", panels, l.panels()), ("rows", rows, x.m)] {
        if r.start > r.end || r.end > len {
            return Err(GemmError::Range { what, start: r.start, end: r.end, len });
        }
    }
    Ok(())
}

/// Computes output rows `rows` of the 16-column panels `panels` (column `16p..16p + 16`
/// of panel `p`, clipped to N) into `y`, from prepared activations. `scratch` is at least
/// [`scratch_bytes`].
///
/// Errors: [`GemmError::StackedWeights`], [`GemmError::ActivationWidth`] (the prepared
/// activations' K is not the weights'), [`GemmError::ShapeMismatch`] (`y` is not M x N),
/// [`GemmError::PreparedMismatch`], [`GemmError::Range`], [`GemmError::WorkspaceTooSmall`].
pub fn gemm_range(
    weights: &PackedRef<'_>,
    x: &Prepared<'_>,
    y: &mut MatMut<'_>,
    panels: Range<usize>,
    rows: Range<usize>,
    scratch: &mut [u8],
) -> Result<(), GemmError> {
    let shared = y.share();
    // SAFETY: `shared` is the only handle to `y` while this call runs (it borrows `y`
    // mutably), so no other writer exists.
    unsafe { gemm_range_shared(weights, x, &shared, panels, rows, scratch) }
}

/// [`gemm_range`] on an output shared by several threads.
///
/// # Safety
///
/// Calls that run at the same time on the same output must write disjoint values: for
/// any two of them, their `rows` ranges or their `panels` ranges do not overlap.
pub unsafe fn gemm_range_shared(
    weights: &PackedRef<'_>,
    x: &Prepared<'_>,
    y: &SharedOut<'_>,
    panels: Range<usize>,
    rows: Range<usize>,
    scratch: &mut [u8],
) -> Result<(), GemmError> {
    check_job(weights, x, y.rows(), y.cols(), &panels, &rows)?;
    if panels.is_empty() || rows.is_empty() {
        return Ok(());
    }
    let needed = scratch_bytes(weights.layout().format(), x.k, x.path)?;
    if scratch.len() < needed {
        return Err(GemmError::WorkspaceTooSmall { needed, actual: scratch.len() });
    }
    let scratch = aligned(scratch);
    let job = Job { weights, x, y, panels, rows };
    // SAFETY: the job's shapes and ranges were checked above; disjointness from other
    // concurrent writers is this function's contract.
    unsafe { kernels::run(&job, scratch) };
    Ok(())
}

/// The whole matmul on one thread: checks `weights` (a packed buffer of one `N x K`
/// matrix of `format`), prepares `x` and computes every value of `y`, using `workspace`
/// (at least [`workspace_bytes`]). Returns the path taken.
///
/// Checks, in this order: the packed buffer (as [`GemmError::Weights`]: bad header,
/// another format, stacked matrices), `x`'s width against the weights' K
/// ([`GemmError::ActivationWidth`]), `y`'s shape, M x N ([`GemmError::ShapeMismatch`],
/// also when M = 0, which then returns without writing), and the workspace
/// ([`GemmError::WorkspaceTooSmall`] with `workspace.len()` and the whole
/// [`workspace_bytes`]).
///
/// Errors: those above, and those of [`prepare`] and [`gemm_range`].
pub fn gemm(
    weights: &[u8],
    format: Format,
    x: &MatRef<'_>,
    y: &mut MatMut<'_>,
    path: Path,
    workspace: &mut [u8],
) -> Result<Path, GemmError> {
    let packed = PackedRef::parse(weights)?;
    let (n, k) = (packed.layout().n(), packed.layout().k());
    packed.expect(format, n, k, 1)?;
    if x.cols() != k {
        return Err(GemmError::ActivationWidth { x_cols: x.cols(), k });
    }
    for (dim, expected, found) in [("n", n, y.cols()), ("m", x.rows(), y.rows())] {
        if expected != found {
            return Err(GemmError::ShapeMismatch { dim, expected, found });
        }
    }
    if x.rows() == 0 {
        return path.resolve(format, 0);
    }
    let needed = workspace_bytes(format, x.rows(), k, path)?;
    if workspace.len() < needed {
        return Err(GemmError::WorkspaceTooSmall { needed, actual: workspace.len() });
    }
    let prepared_len = prepared_bytes(format, x.rows(), k, path)?;
    let (head, tail) = workspace.split_at_mut(prepared_len);
    let prepared = prepare(format, x, path, head)?;
    let panels = packed.layout().panels();
    gemm_range(&packed, &prepared, y, 0..panels, 0..x.rows(), tail)?;
    Ok(prepared.path)
}

/// The 16-column panels that cover output columns `cols` (for callers that split by
/// columns).
pub const fn panels_for_columns(cols: Range<usize>) -> Range<usize> {
    cols.start / PANEL_ROWS..cols.end.div_ceil(PANEL_ROWS)
}

#[cfg(test)]
mod tests;
