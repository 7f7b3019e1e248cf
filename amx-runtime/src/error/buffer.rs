//! [`BufferError`].

use std::fmt;
use std::sync::Arc;

use amx_core::pack::PackError;

use super::AllocError;
use crate::tensor::DType;

/// What went wrong reading, writing or allocating a buffer.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BufferError {
    /// A plain read (or write) of a tensor whose buffer type is not host memory: the bytes
    /// may be packed, so they are never handed out as plain data.
    NotHost {
        /// The tensor.
        tensor: Arc<str>,
        /// Its buffer type.
        buft: Arc<str>,
    },
    /// A buffer type asked for the raw bytes of a buffer that another buffer type owns.
    NotOwner {
        /// The tensor.
        tensor: Arc<str>,
        /// The buffer type that owns it.
        buft: Arc<str>,
        /// The buffer type that asked.
        reader: Arc<str>,
    },
    /// The buffer type cannot hold this tensor (for example I32 in the AMX buffer type, or
    /// F32 in one not made to pack F32 weights as BF16).
    Unsupported {
        /// The tensor.
        tensor: Arc<str>,
        /// The buffer type.
        buft: Arc<str>,
        /// The tensor's element type.
        dtype: DType,
    },
    /// Data of the wrong length for the tensor.
    Length {
        /// The tensor.
        tensor: Arc<str>,
        /// Bytes the tensor has.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The tensor's size overflows or its row is not a whole number of blocks.
    BadShape {
        /// The tensor.
        tensor: Arc<str>,
    },
    /// A buffer type asks for an alignment this crate's storage cannot give.
    Alignment {
        /// The buffer type.
        buft: Arc<str>,
        /// The alignment it asked for.
        align: usize,
    },
    /// Packing or unpacking failed.
    Pack {
        /// The tensor.
        tensor: Arc<str>,
        /// What amx-core said.
        error: PackError,
    },
    /// The caller's dequantization of a weight's rows failed
    /// ([`crate::buffer::amx::AmxBufferType::set_tensor_from_rows`]).
    Dequantize {
        /// The tensor.
        tensor: Arc<str>,
        /// The rows asked for (of the stacked rows, matrix after matrix).
        rows: std::ops::Range<usize>,
        /// What the caller's dequantization said.
        message: String,
    },
    /// The buffer's memory could not be allocated.
    Alloc {
        /// The tensor.
        tensor: Arc<str>,
        /// The size asked for, and why it failed.
        error: AllocError,
    },
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BufferError::NotHost { tensor, buft } => write!(
                f,
                "tensor {tensor} is in buffer type {buft}, which is not host memory: its bytes \
                 cannot be read or written as plain data"
            ),
            BufferError::NotOwner { tensor, buft, reader } => write!(
                f,
                "buffer type {reader} asked for the raw bytes of tensor {tensor}, which \
                 belongs to buffer type {buft}"
            ),
            BufferError::Unsupported { tensor, buft, dtype } => {
                write!(f, "buffer type {buft} cannot hold tensor {tensor} of type {dtype}")
            }
            BufferError::Length { tensor, expected, actual } => {
                write!(f, "tensor {tensor} has {expected} bytes, {actual} were given")
            }
            BufferError::BadShape { tensor } => write!(
                f,
                "tensor {tensor}: size overflows or rows are not a whole number of blocks"
            ),
            BufferError::Alignment { buft, align } => write!(
                f,
                "buffer type {buft} asks for alignment {align}; storage gives powers of two \
                 up to 64"
            ),
            BufferError::Pack { tensor, error } => write!(f, "tensor {tensor}: {error}"),
            BufferError::Dequantize { tensor, rows, message } => write!(
                f,
                "tensor {tensor}: dequantizing rows {}..{} failed: {message}",
                rows.start, rows.end
            ),
            BufferError::Alloc { tensor, error } => write!(f, "tensor {tensor}: {error}"),
        }
    }
}

impl std::error::Error for BufferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BufferError::Pack { error, .. } => Some(error),
            BufferError::Alloc { error, .. } => Some(error),
            _ => None,
        }
    }
}
