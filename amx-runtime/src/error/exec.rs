//! [`ExecError`].

use std::fmt;
use std::sync::Arc;

use amx_core::formats::FormatError;
use amx_core::gemm::GemmError;

use super::{BufferError, GraphError};

/// Running an op failed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecError {
    /// A buffer access was refused (for example a plain read of packed bytes).
    Buffer(BufferError),
    /// The backend does not accept a source's buffer type.
    BufferNotAccepted {
        /// The node's name.
        op: Arc<str>,
        /// The backend.
        backend: Arc<str>,
        /// The source tensor.
        tensor: Arc<str>,
        /// Its buffer type.
        buft: Arc<str>,
    },
    /// The backend (or buffer type) has no kernel for the op as given.
    Unsupported {
        /// The node's name.
        op: Arc<str>,
        /// The op kind.
        kind: &'static str,
        /// Who was asked (a backend or a buffer type).
        by: Arc<str>,
    },
    /// The quantized GEMM refused the call.
    Gemm {
        /// The node's name.
        op: Arc<str>,
        /// What amx-core said.
        error: GemmError,
    },
    /// Dequantizing a source failed.
    Format {
        /// The node's name.
        op: Arc<str>,
        /// What amx-core said.
        error: FormatError,
    },
    /// An index (token id, expert id) outside its table.
    IndexOutOfRange {
        /// The node's name.
        op: Arc<str>,
        /// The index tensor.
        tensor: Arc<str>,
        /// The index found.
        index: i64,
        /// The table's length.
        len: usize,
    },
    /// The sources given do not match the op (count or shape).
    Sources {
        /// The node's name.
        op: Arc<str>,
        /// What did not match.
        what: &'static str,
    },
    /// A graph input was not given, or given with the wrong shape or type.
    Input {
        /// The input tensor.
        tensor: Arc<str>,
    },
    /// The op breaks its rules: its sources do not fit [`crate::op::Op::infer`], or its
    /// `dst` is not the result they give.
    Op(GraphError),
    /// The loaded weights were placed for another graph: weight (or tensor id) `id` is
    /// `graph` in this graph and `loaded` in the weights.
    ForeignWeights {
        /// The tensor id where they differ.
        id: usize,
        /// What the graph has there.
        graph: Arc<str>,
        /// What the weights hold there.
        loaded: Arc<str>,
    },
    /// The schedule was made for another graph.
    ScheduleMismatch {
        /// Nodes in the graph.
        nodes: usize,
        /// Nodes in the schedule.
        planned: usize,
    },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Buffer(e) => e.fmt(f),
            ExecError::BufferNotAccepted { op, backend, tensor, buft } => write!(
                f,
                "{op}: backend {backend} does not accept buffer type {buft} of source {tensor}"
            ),
            ExecError::Unsupported { op, kind, by } => {
                write!(f, "{kind} {op}: {by} has no kernel for it")
            }
            ExecError::Gemm { op, error } => write!(f, "{op}: GEMM refused: {error}"),
            ExecError::Format { op, error } => write!(f, "{op}: dequantization: {error}"),
            ExecError::IndexOutOfRange { op, tensor, index, len } => {
                write!(f, "{op}: index {index} in {tensor} is outside 0..{len}")
            }
            ExecError::Sources { op, what } => write!(f, "{op}: sources do not match: {what}"),
            ExecError::Input { tensor } => {
                write!(f, "graph input {tensor} is missing or has another shape or type")
            }
            ExecError::Op(e) => e.fmt(f),
            ExecError::ForeignWeights { id, graph, loaded } => write!(
                f,
                "the weights were loaded for another graph: tensor #{id} is {graph} in this \
                 graph, the weights hold {loaded} there"
            ),
            ExecError::ScheduleMismatch { nodes, planned } => {
                write!(f, "the schedule plans {planned} nodes, the graph has {nodes}")
            }
        }
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExecError::Buffer(e) => Some(e),
            ExecError::Op(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BufferError> for ExecError {
    fn from(e: BufferError) -> Self {
        ExecError::Buffer(e)
    }
}
