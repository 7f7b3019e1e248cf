//! Errors of the GEMM layer: shapes, lengths, strides, workspace and paths.

use core::fmt;

use crate::formats::Format;
use crate::pack::PackError;

use super::Path;

/// What was wrong with a GEMM call. Every variant carries the numbers.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmError {
    /// The packed weights were refused (bad header, other format or shape).
    Weights(PackError),
    /// A matrix view does not fit its slice: `rows` rows of `cols` values `stride` apart
    /// need `needed` values, the slice has `actual`.
    MatrixTooShort {
        /// Rows of the view.
        rows: usize,
        /// Values per row.
        cols: usize,
        /// Distance between row starts, in values.
        stride: usize,
        /// Values the view needs.
        needed: usize,
        /// Values in the slice.
        actual: usize,
    },
    /// A row stride smaller than the row length.
    StrideTooSmall {
        /// Values per row.
        cols: usize,
        /// The stride given.
        stride: usize,
    },
    /// Activations, weights and output disagree on a dimension.
    ShapeMismatch {
        /// Which dimension (`"k"`, `"m"` or `"n"`).
        dim: &'static str,
        /// The weights' (or activations') value.
        expected: usize,
        /// The other operand's value.
        found: usize,
    },
    /// The weights are stacked (`matrices > 1`): use the grouped (MoE) entry points.
    StackedWeights {
        /// Matrices in the packed buffer.
        matrices: usize,
    },
    /// The workspace is smaller than [`super::workspace_bytes`] says.
    WorkspaceTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The prepared activations were made for another format family or path.
    PreparedMismatch {
        /// The weights' format.
        format: Format,
        /// The path the activations were prepared for.
        prepared_for: Path,
    },
    /// A row or panel range reaches past the end or is reversed.
    Range {
        /// `"rows"` or `"panels"`.
        what: &'static str,
        /// Start of the range.
        start: usize,
        /// End of the range.
        end: usize,
        /// The number of rows or panels there are.
        len: usize,
    },
    /// The forced path needs an instruction set or permission this machine lacks.
    PathUnavailable {
        /// The path asked for.
        path: Path,
    },
    /// An expert id (MoE routing) names an expert the stack does not have.
    ExpertOutOfRange {
        /// Position in the ids (`token * top_k + slot`).
        index: usize,
        /// The id found.
        id: u32,
        /// Experts in the stack.
        experts: usize,
    },
    /// A grouped (MoE) call was asked for its results before every work item had run
    /// (see [`crate::moe::Grouped::scatter`]).
    Unfinished {
        /// Work items finished.
        done: usize,
        /// Work items of the call.
        total: usize,
    },
    /// A size computation overflowed `usize`.
    Overflow,
    /// The activations have no values per row (K = 0): packed weights always have K >= 1,
    /// so there is nothing to prepare or multiply.
    ZeroK,
    /// The activations' rows are not as wide as the packed weights' rows.
    ActivationWidth {
        /// Values per activation row (`x.cols()`, or the prepared activations' K).
        x_cols: usize,
        /// Values per weight row (the packed weights' K).
        k: usize,
    },
    /// A row range splits a block of rows that must stay whole (BF16 tiles are prepared
    /// 16 rows at a time).
    Misaligned {
        /// `"rows"`.
        what: &'static str,
        /// Start of the range.
        start: usize,
        /// End of the range.
        end: usize,
        /// Starts must be a multiple of this, ends a multiple of it or `len`.
        align: usize,
        /// The number of rows there are (M).
        len: usize,
    },
    /// A thread pool built on the range API (amx-runtime's `Pool`) was called from a
    /// thread that is running one of that same pool's jobs (a matmul inside its
    /// `broadcast`): the pool runs one job at a time, so the call would wait for itself
    /// forever.
    NestedPoolCall {
        /// Threads of the pool.
        threads: usize,
    },
    /// A call that takes M from the lengths of flat slices (amx-runtime's `Pool::linear`,
    /// `Pool::linear_many`, `Pool::moe`) was given lengths that fit no M: `x_len` must be
    /// M x `k` and output `index`'s `y_len` M x `y_row` for one M.
    Lengths {
        /// Which output (0 for a call with one).
        index: usize,
        /// Values in `x`.
        x_len: usize,
        /// Values per activation row (the weights' K).
        k: usize,
        /// Values in the output.
        y_len: usize,
        /// Values per output row for one activation row (N; `top_k x N` for MoE).
        y_row: usize,
    },
    /// Weight `index` of a call that prepares one `x` for several weights (amx-runtime's
    /// `Pool::linear_many`) cannot use the activations prepared for weight 0: every
    /// weight must be one matrix with weight 0's K, in a format that takes the same
    /// prepared activations on the call's path (on the VNNI path quantized formats and
    /// F16/BF16 do not mix).
    SharedActivations {
        /// Which weight.
        index: usize,
        /// Its format.
        format: Format,
        /// Its values per row.
        k: usize,
        /// Matrices in its packed buffer.
        matrices: usize,
        /// Weight 0's format.
        first_format: Format,
        /// Weight 0's values per row.
        first_k: usize,
        /// The path the activations were prepared for.
        path: Path,
    },
}

impl From<PackError> for GemmError {
    fn from(e: PackError) -> Self {
        Self::Weights(e)
    }
}

impl fmt::Display for GemmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Weights(e) => write!(f, "packed weights refused: {e}"),
            Self::MatrixTooShort { rows, cols, stride, needed, actual } => write!(
                f,
                "{rows} rows of {cols} values with stride {stride} need {needed} values, the slice has {actual}"
            ),
            Self::StrideTooSmall { cols, stride } => {
                write!(f, "row stride {stride} is smaller than the row length {cols}")
            }
            Self::ShapeMismatch { dim, expected, found } => {
                write!(f, "{dim} mismatch: {expected} expected, {found} given")
            }
            Self::StackedWeights { matrices } => write!(
                f,
                "the packed buffer stacks {matrices} matrices; plain GEMM takes one (use the grouped entry points)"
            ),
            Self::WorkspaceTooSmall { needed, actual } => {
                write!(f, "workspace is {actual} bytes, {needed} needed")
            }
            Self::PreparedMismatch { format, prepared_for } => write!(
                f,
                "activations were prepared for the {prepared_for:?} path, which does not fit {format} weights"
            ),
            Self::Range { what, start, end, len } => {
                write!(f, "{what} range {start}..{end} is outside 0..{len}")
            }
            Self::PathUnavailable { path } => {
                write!(f, "the {path:?} path is not available on this machine")
            }
            Self::ExpertOutOfRange { index, id, experts } => {
                write!(f, "expert id {id} at position {index} is outside the {experts} experts")
            }
            Self::Unfinished { done, total } => write!(
                f,
                "the grouped call has finished {done} of its {total} work items; its results are not ready"
            ),
            Self::Overflow => f.write_str("size computation overflowed usize"),
            Self::ZeroK => f.write_str(
                "the activations have 0 values per row (k = 0); packed weights have k >= 1",
            ),
            Self::ActivationWidth { x_cols, k } => write!(
                f,
                "the activations have {x_cols} values per row, the packed weights have k = {k}"
            ),
            Self::Misaligned { what, start, end, align, len } => write!(
                f,
                "{what} range {start}..{end} is not aligned: it must start at a multiple of {align} and end at a multiple of {align} or at {len}"
            ),
            Self::NestedPoolCall { threads } => write!(
                f,
                "the {threads}-thread pool was called from inside one of its own jobs; it runs \
                 one job at a time, so the call would wait for itself forever"
            ),
            Self::Lengths { index, x_len, k, y_len, y_row } => write!(
                f,
                "x has {x_len} values and output {index} has {y_len}: they must be M x {k} and \
                 M x {y_row} for one M"
            ),
            Self::SharedActivations { index, format, k, matrices, first_format, first_k, path } => {
                write!(
                    f,
                    "weight {index} ({matrices} matrix(es) of {format}, k = {k}) cannot share \
                     the activations prepared for weight 0 ({first_format}, k = {first_k}) on \
                     the {path:?} path: each weight must be one matrix with k = {first_k} in a \
                     format those activations fit"
                )
            }
        }
    }
}

impl core::error::Error for GemmError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Weights(e) => Some(e),
            _ => None,
        }
    }
}
