//! [`GraphError`].

use std::fmt;
use std::sync::Arc;

use crate::tensor::DType;

/// A graph that cannot be built: wrong arity, types or shapes.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// The op got another number of sources than it takes.
    Arity {
        /// The node's name.
        node: Arc<str>,
        /// The op kind.
        op: &'static str,
        /// Sources the op takes.
        expected: usize,
        /// Sources given.
        found: usize,
    },
    /// A source has an element type the op cannot take.
    DType {
        /// The node's name.
        node: Arc<str>,
        /// The op kind.
        op: &'static str,
        /// The source tensor.
        tensor: Arc<str>,
        /// What the op takes there.
        expected: &'static str,
        /// The source's type.
        found: DType,
    },
    /// A source's shape does not fit the op.
    Shape {
        /// The node's name.
        node: Arc<str>,
        /// The op kind.
        op: &'static str,
        /// The source tensor.
        tensor: Arc<str>,
        /// The rule that failed.
        rule: &'static str,
        /// The source's shape.
        found: [usize; 4],
    },
    /// A tensor id that is not in this graph.
    UnknownTensor {
        /// The id.
        id: usize,
    },
    /// A tensor with an empty, zero, too large or block-misaligned shape.
    BadTensor {
        /// The tensor.
        tensor: Arc<str>,
        /// Its dimensions.
        dims: Vec<usize>,
    },
    /// Two tensors with the same name.
    DuplicateName {
        /// The name.
        tensor: Arc<str>,
    },
    /// An op's result is described with another type or shape than its sources give
    /// ([`crate::op::Op::infer`]): a kernel would leave part of it unwritten, or write
    /// past it.
    Dst {
        /// The node's name.
        node: Arc<str>,
        /// The op kind.
        op: &'static str,
        /// The result's type and shape as the sources give them.
        expected: (DType, [usize; 4]),
        /// The result's type and shape as described.
        found: (DType, [usize; 4]),
    },
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::Arity { node, op, expected, found } => {
                write!(f, "{op} {node}: takes {expected} sources, {found} given")
            }
            GraphError::DType { node, op, tensor, expected, found } => {
                write!(f, "{op} {node}: source {tensor} is {found}, the op takes {expected}")
            }
            GraphError::Shape { node, op, tensor, rule, found } => {
                write!(f, "{op} {node}: source {tensor} has shape {found:?}, but {rule}")
            }
            GraphError::UnknownTensor { id } => write!(f, "tensor id {id} is not in the graph"),
            GraphError::BadTensor { tensor, dims } => write!(
                f,
                "tensor {tensor}: dimensions {dims:?} are empty, zero, too large or not whole \
                 blocks"
            ),
            GraphError::DuplicateName { tensor } => {
                write!(f, "two tensors are named {tensor}")
            }
            GraphError::Dst { node, op, expected, found } => write!(
                f,
                "{op} {node}: the result is described as {} {:?}, but the sources give {} {:?}",
                found.0, found.1, expected.0, expected.1
            ),
        }
    }
}

impl std::error::Error for GraphError {}
