//! The error type of the GGUF reader.

use core::fmt;
use std::path::PathBuf;

use crate::value::ValueType;

/// Everything that can go wrong while reading a GGUF file or looking something up in it.
///
/// Offsets are byte offsets from the start of the file. Variants that name a key or a
/// tensor carry the name as an owned `String` (this is a std crate: an error that says
/// which tensor is missing is worth the allocation), so the type is `Clone` but not `Copy`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GgufError {
    /// Reading the file failed.
    Io {
        /// The kind of the underlying I/O error.
        kind: std::io::ErrorKind,
        /// The underlying error's message.
        message: String,
    },
    /// The path names a directory, device, FIFO or socket, not a regular file (nothing
    /// is read from it).
    NotARegularFile {
        /// The path as given.
        path: PathBuf,
        /// What it is instead: `"a directory"`, `"a character device"`, ...
        kind: &'static str,
    },
    /// The file does not start with the bytes `GGUF`.
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// The version is not 2 or 3 (version 1 used 32-bit counts and is not read).
    UnsupportedVersion {
        /// The version field as read (little-endian).
        version: u32,
    },
    /// The version field reads as 2 or 3 only when byte-swapped: a big-endian GGUF file,
    /// which this reader does not support.
    BigEndian {
        /// The version field as read (little-endian).
        version: u32,
    },
    /// The file ends before a field it must contain.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// How many bytes it needs.
        needed: u64,
        /// The file length.
        file_len: u64,
    },
    /// A string (key, value or tensor name) is not valid UTF-8.
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: u64,
    },
    /// A count (tensors, keys, array elements) is larger than the rest of the file could
    /// hold, even at the smallest encoding of each item; nothing is allocated for it.
    AbsurdCount {
        /// What is being counted.
        what: &'static str,
        /// Where the count field starts.
        offset: u64,
        /// The count as read.
        count: u64,
        /// The bytes left in the file after the count field.
        remaining: u64,
    },
    /// A metadata value type id that is not one of the 13 GGUF value types.
    UnknownValueType {
        /// Where the type id field starts.
        offset: u64,
        /// The type id as read.
        type_id: u32,
    },
    /// A bool value that is neither 0 nor 1.
    InvalidBool {
        /// Where the byte is.
        offset: u64,
        /// The byte as read.
        value: u8,
    },
    /// Arrays nested deeper than [`MAX_ARRAY_DEPTH`](crate::MAX_ARRAY_DEPTH).
    NestingTooDeep {
        /// Where the too-deep array's element type field starts.
        offset: u64,
    },
    /// The same metadata key appears twice.
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// The same tensor name appears twice.
    DuplicateTensor {
        /// The tensor name.
        name: String,
    },
    /// A tensor has more than 4 dimensions.
    TooManyDims {
        /// The tensor name.
        name: String,
        /// The number of dimensions as read.
        n_dims: u32,
    },
    /// `general.alignment` is zero or not a power of two.
    BadAlignment {
        /// The alignment as read.
        alignment: u32,
    },
    /// A tensor's offset is not a multiple of the file's alignment.
    MisalignedTensor {
        /// The tensor name.
        name: String,
        /// Its offset from the start of the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// The tensor's ggml type is not one whose byte size this reader knows.
    UnknownTensorType {
        /// The tensor name.
        name: String,
        /// The ggml type id.
        ggml_type: u32,
    },
    /// The tensor's first dimension is not a whole number of blocks of its type.
    RowNotWholeBlocks {
        /// The tensor name.
        name: String,
        /// The first dimension (`ne0`).
        ne0: u64,
        /// The values per block of the tensor's type.
        block_values: u64,
    },
    /// The tensor's byte size (the product of its dims and its type's block size) does
    /// not fit in 64 bits.
    TensorSizeOverflow {
        /// The tensor name.
        name: String,
        /// Its dims `ne0..ne3`.
        ne: [u64; 4],
        /// Its ggml type id.
        ggml_type: u32,
    },
    /// The tensor's offset lies past the end of the data section.
    TensorOffsetOutOfBounds {
        /// The tensor name.
        name: String,
        /// Its offset from the start of the data section.
        offset: u64,
        /// Where the data section starts in the file.
        data_offset: u64,
        /// The bytes from the start of the data section to the end of the file.
        data_len: u64,
    },
    /// The tensor's bytes are not all inside the file.
    TensorOutOfBounds {
        /// The tensor name.
        name: String,
        /// Where its bytes start in the file.
        start: u64,
        /// Its byte size.
        size: u64,
        /// The file length.
        file_len: u64,
    },
    /// No metadata key of that name.
    MissingKey {
        /// The key asked for.
        key: String,
    },
    /// The metadata value has another type than the one asked for.
    WrongValueType {
        /// The key.
        key: String,
        /// The type asked for.
        expected: ValueType,
        /// The type found.
        found: ValueType,
    },
    /// The metadata value is an array of other elements than the ones asked for.
    WrongArrayType {
        /// The key.
        key: String,
        /// The element type asked for.
        expected: ValueType,
        /// The element type found.
        found: ValueType,
    },
    /// No tensor of that name.
    MissingTensor {
        /// The name asked for.
        name: String,
    },
    /// The tensor has another ggml type than the one asked for.
    WrongTensorType {
        /// The tensor name.
        name: String,
        /// The ggml type id asked for.
        expected: u32,
        /// The ggml type id found.
        found: u32,
    },
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { kind, message } => write!(f, "GGUF read failed ({kind:?}): {message}"),
            Self::NotARegularFile { path, kind } => {
                write!(f, "{} is {kind}, not a regular file", path.display())
            }
            Self::BadMagic { found } => {
                write!(f, "not a GGUF file: magic is {found:02x?}, expected \"GGUF\"")
            }
            Self::UnsupportedVersion { version } => {
                write!(f, "GGUF version {version} is not supported (only 2 and 3)")
            }
            Self::BigEndian { version } => {
                write!(f, "big-endian GGUF file (version field {version:#010x}) is not supported")
            }
            Self::Truncated { what, offset, needed, file_len } => write!(
                f,
                "GGUF file truncated: {what} at offset {offset} needs {needed} bytes, \
                 file has {file_len}"
            ),
            Self::InvalidUtf8 { offset } => {
                write!(f, "GGUF string at offset {offset} is not valid UTF-8")
            }
            Self::AbsurdCount { what, offset, count, remaining } => write!(
                f,
                "GGUF {what} count {count} at offset {offset} cannot fit in the \
                 {remaining} bytes left in the file"
            ),
            Self::UnknownValueType { offset, type_id } => {
                write!(f, "unknown GGUF value type {type_id} at offset {offset}")
            }
            Self::InvalidBool { offset, value } => {
                write!(f, "GGUF bool at offset {offset} is {value}, not 0 or 1")
            }
            Self::NestingTooDeep { offset } => write!(
                f,
                "GGUF arrays nested deeper than {} at offset {offset}",
                crate::MAX_ARRAY_DEPTH
            ),
            Self::DuplicateKey { key } => write!(f, "GGUF metadata key {key:?} appears twice"),
            Self::DuplicateTensor { name } => write!(f, "GGUF tensor {name:?} appears twice"),
            Self::TooManyDims { name, n_dims } => {
                write!(f, "GGUF tensor {name:?} has {n_dims} dimensions, at most 4 allowed")
            }
            Self::BadAlignment { alignment } => {
                write!(f, "general.alignment is {alignment}, must be a non-zero power of two")
            }
            Self::MisalignedTensor { name, offset, alignment } => write!(
                f,
                "GGUF tensor {name:?} offset {offset} is not a multiple of the alignment \
                 {alignment}"
            ),
            Self::UnknownTensorType { name, ggml_type } => {
                match amx_core::formats::ggml_type_name(*ggml_type) {
                    Some(type_name) => write!(
                        f,
                        "GGUF tensor {name:?} is {type_name} (ggml type {ggml_type}), whose \
                         size is not known here"
                    ),
                    None => write!(
                        f,
                        "GGUF tensor {name:?} has ggml type id {ggml_type}, which is not a ggml \
                         type"
                    ),
                }
            }
            Self::RowNotWholeBlocks { name, ne0, block_values } => write!(
                f,
                "GGUF tensor {name:?} has ne0 = {ne0}, not a multiple of its block size \
                 {block_values}"
            ),
            Self::TensorSizeOverflow { name, ne, ggml_type } => write!(
                f,
                "GGUF tensor {name:?} ({}, ggml type {ggml_type}) with dims {ne:?} has more \
                 than 2^64 bytes",
                crate::types::type_name(*ggml_type).unwrap_or("?")
            ),
            Self::TensorOffsetOutOfBounds { name, offset, data_offset, data_len } => write!(
                f,
                "GGUF tensor {name:?} has offset {offset}, past the end of the data section \
                 ({data_len} bytes from file offset {data_offset} to the end of the file)"
            ),
            Self::TensorOutOfBounds { name, start, size, file_len } => write!(
                f,
                "GGUF tensor {name:?} ({size} bytes at offset {start}) extends past the end \
                 of the {file_len}-byte file"
            ),
            Self::MissingKey { key } => write!(f, "GGUF metadata key {key:?} not found"),
            Self::WrongValueType { key, expected, found } => write!(
                f,
                "GGUF metadata key {key:?} is {}, expected {}",
                found.name(),
                expected.name()
            ),
            Self::WrongArrayType { key, expected, found } => write!(
                f,
                "GGUF metadata key {key:?} is an array of {}, expected an array of {}",
                found.name(),
                expected.name()
            ),
            Self::MissingTensor { name } => write!(f, "GGUF tensor {name:?} not found"),
            Self::WrongTensorType { name, expected, found } => {
                write!(f, "GGUF tensor {name:?} has ggml type {found}, expected {expected}")
            }
        }
    }
}

impl std::error::Error for GgufError {}

impl From<std::io::Error> for GgufError {
    fn from(e: std::io::Error) -> Self {
        Self::Io { kind: e.kind(), message: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::GgufError;

    #[test]
    fn unknown_tensor_types_are_named_by_ggml() {
        let e = GgufError::UnknownTensorType { name: "w".into(), ggml_type: 15 };
        assert_eq!(
            e.to_string(),
            "GGUF tensor \"w\" is Q8_K (ggml type 15), whose size is not known here"
        );
        let e = GgufError::UnknownTensorType { name: "w".into(), ggml_type: 77 };
        assert_eq!(
            e.to_string(),
            "GGUF tensor \"w\" has ggml type id 77, which is not a ggml type"
        );
    }
}
