//! [`WeightError`]: what was wrong with a weight to be packed, read or concatenated.

use std::fmt;

use amx_core::formats::{Format, ggml_type_name};
use amx_core::pack::PackError;

use crate::error::AllocError;

/// What was wrong with a [`super::PackedWeight`] call. Every variant carries the
/// caller's numbers.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightError {
    /// The ggml type has no packed format in amx-core (dequantize it and use
    /// [`super::PackedWeight::from_f32_as_bf16`]).
    UnsupportedType {
        /// The ggml type id given.
        ggml_type: u32,
    },
    /// ggml dims of a weight are `[ne0 = k, ne1 = n]` or `[k, n, ne2 = matrices]`.
    DimCount {
        /// How many dims were given.
        count: usize,
    },
    /// The shape, the bytes or the packed buffer were refused by amx-core's packing
    /// layer: an empty dimension, `k` not a multiple of the format's block, a byte count
    /// other than the shape's, a bad packed header or body, a row out of range or a row
    /// output of another length than `k`.
    Pack(PackError),
    /// The memory for the packed buffer could not be had.
    Alloc(AllocError),
    /// [`super::PackedWeight::from_gguf`]: the tensor is not in the file, or its
    /// description or bytes are malformed (the GGUF reader's error, naming the tensor).
    Gguf(amx_gguf::GgufError),
    /// [`super::PackedWeight::concat_rows`] was given no weights.
    NoParts,
    /// A weight to concatenate holds another format than the first one.
    PartFormat {
        /// Index of the weight in the list.
        part: usize,
        /// The first weight's format.
        expected: Format,
        /// This weight's format.
        found: Format,
    },
    /// A weight to concatenate has another `k` (values per row) than the first one.
    PartK {
        /// Index of the weight in the list.
        part: usize,
        /// The first weight's `k`.
        expected: usize,
        /// This weight's `k`.
        found: usize,
    },
    /// A weight to concatenate has another number of stacked matrices than the first.
    PartMatrices {
        /// Index of the weight in the list.
        part: usize,
        /// The first weight's matrices.
        expected: usize,
        /// This weight's matrices.
        found: usize,
    },
}

impl fmt::Display for WeightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnsupportedType { ggml_type } => match ggml_type_name(ggml_type) {
                Some(name) => write!(
                    f,
                    "ggml type {name} (id {ggml_type}) has no packed format; dequantize it to \
                     f32 and pack it as BF16 (PackedWeight::from_f32_as_bf16)"
                ),
                None => write!(f, "ggml type id {ggml_type} is not a ggml type"),
            },
            Self::DimCount { count } => write!(
                f,
                "a weight has 2 or 3 ggml dims ([ne0 = k, ne1 = n] or [k, n, ne2 = matrices]), \
                 {count} given"
            ),
            Self::Pack(e) => e.fmt(f),
            Self::Gguf(ref e) => e.fmt(f),
            Self::Alloc(e) => e.fmt(f),
            Self::NoParts => f.write_str("no weights to concatenate"),
            Self::PartFormat { part, expected, found } => write!(
                f,
                "weight {part} to concatenate is {found}, weight 0 is {expected} (one format \
                 only)"
            ),
            Self::PartK { part, expected, found } => write!(
                f,
                "weight {part} to concatenate has k = {found} values per row, weight 0 has k \
                 = {expected}"
            ),
            Self::PartMatrices { part, expected, found } => write!(
                f,
                "weight {part} to concatenate stacks {found} matrices, weight 0 stacks \
                 {expected}"
            ),
        }
    }
}

impl core::error::Error for WeightError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Pack(e) => Some(e),
            Self::Gguf(e) => Some(e),
            Self::Alloc(e) => Some(e),
            _ => None,
        }
    }
}

impl From<PackError> for WeightError {
    fn from(e: PackError) -> Self {
        Self::Pack(e)
    }
}

impl From<amx_gguf::GgufError> for WeightError {
    fn from(e: amx_gguf::GgufError) -> Self {
        Self::Gguf(e)
    }
}

impl From<AllocError> for WeightError {
    fn from(e: AllocError) -> Self {
        Self::Alloc(e)
    }
}
