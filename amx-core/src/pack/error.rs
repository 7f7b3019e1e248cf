//! Errors of the packing layer: bad shapes, bad lengths and bad headers.

use core::fmt;

use crate::formats::{Format, ggml_type_name};

/// What was wrong with a pack, unpack or header check. Every variant carries the numbers.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackError {
    /// N, K or the number of matrices was zero.
    EmptyShape {
        /// Rows per matrix.
        n: usize,
        /// Values per row.
        k: usize,
        /// Number of stacked matrices.
        matrices: usize,
    },
    /// K is not a multiple of the format's block size.
    NotBlockMultiple {
        /// The weight format.
        format: Format,
        /// Values per row.
        k: usize,
        /// The format's values per block.
        block: usize,
    },
    /// The source is not exactly `matrices * n` rows of the format.
    SourceLength {
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The destination is smaller than the shape needs.
    DestinationTooSmall {
        /// Bytes the shape needs.
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A size computation overflowed `usize`.
    Overflow,
    /// The header names a ggml type this crate cannot pack.
    UnknownFormat {
        /// The ggml type id found.
        ggml_type: u32,
    },
    /// The buffer does not start with the packed-weights magic.
    BadMagic,
    /// The header's layout version is not the one this build reads.
    UnsupportedVersion {
        /// Version in the header.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The header's rows-per-panel field or recorded size is wrong although its checksum
    /// holds (a buffer written by something else than this crate's `pack`).
    BadHeader,
    /// The header checksum (bytes 48..56) does not match the other header bytes: the
    /// header was changed after packing. Checked right after the magic, before any other
    /// field is believed.
    HeaderChecksum {
        /// The checksum stored in the header.
        stored: u64,
        /// The checksum of the header's bytes as they are.
        computed: u64,
    },
    /// The body checksum recorded in the header (bytes 56..64) does not match the panels'
    /// bytes: the body was changed after packing (a flipped bit, a rewritten scale,
    /// reordered or overwritten chunks).
    BodyChecksum {
        /// The checksum the header records.
        stored: u64,
        /// The checksum of the body's bytes as they are.
        computed: u64,
    },
    /// The buffer is shorter than its header says.
    Truncated {
        /// Bytes the header's shape needs.
        needed: usize,
        /// Bytes present.
        actual: usize,
    },
    /// The buffer holds another format than the caller expects.
    FormatMismatch {
        /// Format the caller expects.
        expected: Format,
        /// Format in the header.
        found: Format,
    },
    /// The buffer holds another shape than the caller expects.
    ShapeMismatch {
        /// (matrices, n, k) the caller expects.
        expected: (usize, usize, usize),
        /// (matrices, n, k) in the header.
        found: (usize, usize, usize),
    },
    /// A panel range reaches past the last panel or is reversed.
    PanelRange {
        /// First panel asked for.
        start: usize,
        /// One past the last panel asked for.
        end: usize,
        /// Panels in the buffer.
        panels: usize,
    },
    /// A row asked for ([`super::dequantize_row`]) is past the buffer's shape.
    RowOutOfRange {
        /// Matrix asked for.
        matrix: usize,
        /// Row asked for.
        row: usize,
        /// Matrices in the buffer.
        matrices: usize,
        /// Rows per matrix in the buffer.
        n: usize,
    },
    /// The output of a row ([`super::dequantize_row`]) is not `k` values long.
    RowLength {
        /// Values per row (`k`).
        expected: usize,
        /// Values given.
        actual: usize,
    },
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::EmptyShape { n, k, matrices } => write!(
                f,
                "empty weight shape: n = {n}, k = {k}, matrices = {matrices} (all must be >= 1)"
            ),
            Self::NotBlockMultiple { format, k, block } => {
                write!(f, "k = {k} is not a multiple of the {format} block size {block}")
            }
            Self::SourceLength { expected, actual } => {
                write!(f, "source is {actual} bytes, the shape needs exactly {expected}")
            }
            Self::DestinationTooSmall { needed, actual } => {
                write!(f, "destination is {actual} bytes, the shape needs {needed}")
            }
            Self::Overflow => f.write_str("size computation overflowed usize"),
            Self::UnknownFormat { ggml_type } => match ggml_type_name(ggml_type) {
                Some(name) => write!(
                    f,
                    "packed header names {name} (ggml type {ggml_type}), which is not a packed \
                     format"
                ),
                None => write!(
                    f,
                    "packed header names ggml type id {ggml_type}, which is not a ggml type"
                ),
            },
            Self::BadMagic => f.write_str("not a packed amx-rs weight buffer (bad magic)"),
            Self::UnsupportedVersion { found, supported } => {
                write!(f, "packed layout version {found}, this build reads version {supported}")
            }
            Self::BadHeader => f.write_str(
                "packed header has a valid checksum but wrong panel rows or total size \
                 (not written by this crate's pack)",
            ),
            Self::HeaderChecksum { stored, computed } => write!(
                f,
                "packed header checksum failed: stored {stored:#018x}, header bytes give \
                 {computed:#018x} (the header is corrupt; none of its fields was used)"
            ),
            Self::BodyChecksum { stored, computed } => write!(
                f,
                "packed body checksum failed: the header records {stored:#018x}, the panels \
                 give {computed:#018x} (the packed weights were changed after packing)"
            ),
            Self::Truncated { needed, actual } => {
                write!(f, "packed buffer is {actual} bytes, its header needs {needed}")
            }
            Self::FormatMismatch { expected, found } => {
                write!(f, "packed buffer holds {found} weights, {expected} expected")
            }
            Self::ShapeMismatch { expected, found } => write!(
                f,
                "packed buffer holds {} x {} x {} (matrices x n x k), {} x {} x {} expected",
                found.0, found.1, found.2, expected.0, expected.1, expected.2
            ),
            Self::PanelRange { start, end, panels } => {
                write!(f, "panel range {start}..{end} is outside the buffer's {panels} panels")
            }
            Self::RowOutOfRange { matrix, row, matrices, n } => write!(
                f,
                "row {row} of matrix {matrix} is outside the buffer's {matrices} matrices of \
                 {n} rows"
            ),
            Self::RowLength { expected, actual } => {
                write!(f, "row output is {actual} values, the buffer's rows are {expected} (k)")
            }
        }
    }
}

impl core::error::Error for PackError {}
