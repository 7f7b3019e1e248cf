//! The error type of the vector loader.

use std::fmt;
use std::path::PathBuf;

use amx_gguf::GgufError;

/// Why a vector file could not be loaded.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum VectorError {
    /// The directory could not be listed (it does not exist, is not a directory, ...).
    Io {
        /// The directory.
        path: PathBuf,
        /// The kind of the underlying I/O error.
        kind: std::io::ErrorKind,
        /// The underlying error's message.
        message: String,
    },
    /// The directory holds no `*.gguf` file.
    NoVectors {
        /// The directory.
        path: PathBuf,
    },
    /// The file is not a valid GGUF file, or lacks a key or tensor, or one has the
    /// wrong type.
    Gguf {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        source: GgufError,
    },
    /// `amx.test.type` names no format of `amx_core::formats`.
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// The name found.
        name: String,
    },
    /// `amx.test.m`, `n` or `k` is zero.
    ZeroDimension {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// `amx.test.nmse_max` is negative, infinite or NaN.
    BadNmseMax {
        /// The file.
        path: PathBuf,
        /// The value found.
        value: f32,
    },
    /// A tensor's dims do not match the shape the metadata implies.
    BadShape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: &'static str,
        /// The dims `ne0..ne3` expected.
        expected: [u64; 4],
        /// The dims found.
        found: [u64; 4],
    },
}

impl fmt::Display for VectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, kind: std::io::ErrorKind::NotFound, .. } => {
                write!(f, "vector folder {} does not exist", path.display())
            }
            Self::Io { path, kind, message } => {
                write!(f, "cannot list vector folder {} ({kind:?}): {message}", path.display())
            }
            Self::NoVectors { path } => {
                write!(f, "no vector (*.gguf file) found in {}", path.display())
            }
            Self::Gguf { path, source } => write!(f, "{}: {source}", path.display()),
            Self::UnknownFormat { path, name } => {
                write!(f, "{}: amx.test.type {name:?} is not a known format", path.display())
            }
            Self::ZeroDimension { path, key } => write!(f, "{}: {key} is 0", path.display()),
            Self::BadNmseMax { path, value } => write!(
                f,
                "{}: amx.test.nmse_max is {value}, expected a finite value >= 0",
                path.display()
            ),
            Self::BadShape { path, tensor, expected, found } => write!(
                f,
                "{}: tensor {tensor:?} has dims {found:?}, expected {expected:?}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for VectorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Gguf { source, .. } => Some(source),
            _ => None,
        }
    }
}
