//! What can go wrong between candle and amx-rs, with the numbers.

use core::fmt;
use std::io::ErrorKind;

use amx_core::formats::{Format, FormatError};
use amx_core::gemm::GemmError;
use amx_core::pack::PackError;
use candle_core::DType;
use candle_core::quantized::GgmlDType;

/// An adapter error. It converts into a [`candle_core::Error`] (via
/// [`candle_core::Error::wrap`]) carrying this message, so `?` works in candle code.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterError {
    /// A candle dtype amx-rs has no kernel for (F32, Q8_1, Q8K).
    UnsupportedDType {
        /// The candle dtype.
        dtype: GgmlDType,
    },
    /// An amx-rs format candle-core 0.11 cannot hold (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_NL, IQ4_XS, MXFP4, TQ1_0, TQ2_0, NVFP4).
    NoCandleDType {
        /// The amx-rs format.
        format: Format,
    },
    /// A weight that is not a 2-D `N x K` tensor.
    WeightRank {
        /// The weight's rank.
        rank: usize,
    },
    /// `K` is not a whole number of blocks of the format.
    WeightShape(FormatError),
    /// The ggml bytes are not `N` rows of `K` values of the format.
    WeightBytes {
        /// Rows.
        n: usize,
        /// Values per row.
        k: usize,
        /// Bytes `N` rows of `K` values take.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// amx-rs refused to pack the weights.
    Pack(PackError),
    /// amx-rs refused the matmul.
    Gemm(GemmError),
    /// The input is not f32.
    InputDType {
        /// The input's dtype.
        dtype: DType,
    },
    /// The input is a scalar (rank 0): it has no row of `K` values.
    InputRank,
    /// The input's last dimension is not the weight's `K`.
    InputK {
        /// The weight's `K`.
        expected: usize,
        /// The input's last dimension.
        found: usize,
    },
    /// The input's last dimension is strided (e.g. a transposed tensor).
    LastDimStride {
        /// The stride of the last dimension, in values.
        stride: usize,
    },
    /// The input's rows are not evenly spaced (leading dimensions neither contiguous nor
    /// mergeable, e.g. a broadcast or a permuted batch).
    UnevenRows {
        /// The dimension whose stride breaks the spacing.
        dim: usize,
        /// Its stride, in values.
        stride: usize,
        /// The stride that would keep the rows evenly spaced.
        expected: usize,
    },
    /// The layout's start offset lies past the end of the storage.
    StorageOffset {
        /// The start offset, in values.
        offset: usize,
        /// The storage's length, in values.
        len: usize,
    },
    /// The worker pool could not start its threads.
    Threads {
        /// Threads asked for.
        threads: usize,
        /// What the OS said.
        kind: ErrorKind,
    },
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AdapterError::UnsupportedDType { dtype } => {
                let id = crate::dtype::ggml_type_of(dtype);
                let name = amx_core::formats::ggml_type_name(id).unwrap_or("?");
                write!(
                    f,
                    "amx-candle: candle dtype {dtype:?} ({name}, ggml type {id}) has no amx-rs \
                     kernel"
                )
            }
            AdapterError::NoCandleDType { format } => {
                write!(f, "amx-candle: amx-rs format {format} has no candle-core 0.11 dtype")
            }
            AdapterError::WeightRank { rank } => {
                write!(f, "amx-candle: weight has rank {rank}, expected a 2-D N x K tensor")
            }
            AdapterError::WeightShape(e) => write!(f, "amx-candle: weight shape: {e}"),
            AdapterError::WeightBytes { n, k, expected, actual } => write!(
                f,
                "amx-candle: {n} x {k} weight takes {expected} ggml bytes, {actual} given"
            ),
            AdapterError::Pack(e) => write!(f, "amx-rs pack: {e}"),
            AdapterError::Gemm(e) => write!(f, "amx-rs gemm: {e}"),
            AdapterError::InputDType { dtype } => {
                write!(f, "amx-candle: input dtype is {dtype:?}, expected F32")
            }
            AdapterError::InputRank => {
                write!(f, "amx-candle: input is a scalar, expected shape [..., K]")
            }
            AdapterError::InputK { expected, found } => write!(
                f,
                "amx-candle: input's last dimension is {found}, the weight's K is {expected}"
            ),
            AdapterError::LastDimStride { stride } => write!(
                f,
                "amx-candle: input's last dimension has stride {stride}, expected 1 \
                 (call .contiguous() first)"
            ),
            AdapterError::UnevenRows { dim, stride, expected } => write!(
                f,
                "amx-candle: input dimension {dim} has stride {stride}, expected {expected} \
                 for evenly spaced rows (call .contiguous() first)"
            ),
            AdapterError::StorageOffset { offset, len } => write!(
                f,
                "amx-candle: input starts at offset {offset} of a storage of {len} values"
            ),
            AdapterError::Threads { threads, kind } => {
                write!(f, "amx-candle: cannot start a pool of {threads} threads: {kind}")
            }
        }
    }
}

impl core::error::Error for AdapterError {}

impl From<PackError> for AdapterError {
    fn from(e: PackError) -> Self {
        AdapterError::Pack(e)
    }
}

impl From<GemmError> for AdapterError {
    fn from(e: GemmError) -> Self {
        AdapterError::Gemm(e)
    }
}

impl From<AdapterError> for candle_core::Error {
    fn from(e: AdapterError) -> Self {
        candle_core::Error::wrap(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_numbers_through_candle() {
        let e = AdapterError::InputK { expected: 4096, found: 4095 };
        let c: candle_core::Error = e.into();
        let text = c.to_string();
        assert!(text.contains("4096") && text.contains("4095"), "{text}");
        let e = AdapterError::Gemm(GemmError::ShapeMismatch { dim: "k", expected: 64, found: 32 });
        assert!(e.to_string().starts_with("amx-rs gemm: "), "{e}");
    }
}
