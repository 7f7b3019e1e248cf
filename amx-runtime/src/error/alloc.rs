//! [`AllocError`].

use std::fmt;

/// Memory for a buffer could not be had. Both variants carry the size asked for.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// No allocation can be that large: over `isize::MAX` bytes once rounded up to the
    /// buffer's alignment.
    TooLarge {
        /// Bytes asked for.
        bytes: usize,
    },
    /// The system refused the memory.
    Refused {
        /// Bytes asked for.
        bytes: usize,
    },
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AllocError::TooLarge { bytes } => write!(
                f,
                "cannot allocate {bytes} bytes: no allocation may be larger than {} bytes",
                isize::MAX
            ),
            AllocError::Refused { bytes } => {
                write!(f, "cannot allocate {bytes} bytes: the system refused the memory")
            }
        }
    }
}

impl std::error::Error for AllocError {}
