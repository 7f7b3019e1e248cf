//! Where a GGUF file's bytes come from: a memory map of a regular file, a bounded read of
//! one, or bytes the caller already holds. Only a regular file is opened, and never more
//! bytes than the size it had when it was opened are mapped or read (a device such as
//! `/dev/zero`, a FIFO or a file that grows meanwhile cannot make the reader map or
//! allocate without bound). The crate's one `unsafe` block, the map call, is here.

use std::fs::{File, FileType};
use std::io::Read;
use std::ops::Deref;
use std::path::Path;

use memmap2::{Mmap, MmapOptions};

use crate::error::GgufError;

/// A GGUF file's bytes: owned, or a read-only memory map of the file.
#[derive(Debug)]
pub(crate) enum Bytes {
    /// Bytes read into memory or handed over by the caller.
    Owned(Vec<u8>),
    /// A shared read-only map of a regular file, its length fixed at open time.
    Mapped(Mmap),
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            Self::Mapped(m) => m,
        }
    }
}

/// What a non-regular file is, for [`GgufError::NotARegularFile`].
fn kind(ty: &FileType) -> &'static str {
    if ty.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_char_device() {
            return "a character device";
        }
        if ty.is_block_device() {
            return "a block device";
        }
        if ty.is_fifo() {
            return "a FIFO";
        }
        if ty.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

fn not_regular(path: &Path, ty: &FileType) -> GgufError {
    GgufError::NotARegularFile { path: path.to_path_buf(), kind: kind(ty) }
}

/// The regular file at `path` (symbolic links followed), opened for reading, and its
/// length at open time.
///
/// Errors: [`GgufError::NotARegularFile`] for directories, devices, FIFOs and sockets
/// (checked before opening, so that opening a FIFO cannot block, and again on the opened
/// handle); [`GgufError::Io`] when it cannot be opened or its metadata read.
fn open_regular_file(path: &Path) -> Result<(File, u64), GgufError> {
    let ty = std::fs::metadata(path)?.file_type();
    if !ty.is_file() {
        return Err(not_regular(path, &ty));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    Ok((file, meta.len()))
}

/// The error for a length that cannot be mapped or reserved in this address space.
fn too_large(path: &Path, len: u64, doing: &str) -> GgufError {
    GgufError::Io {
        kind: std::io::ErrorKind::OutOfMemory,
        message: format!("cannot {doing} {len} bytes of {}", path.display()),
    }
}

/// A read-only memory map of the regular file at `path` ([`open_regular_file`]), exactly
/// its length at open time (a file of 0 bytes gives no map, an empty buffer).
///
/// Errors: those of [`open_regular_file`]; [`GgufError::Io`] when the map fails.
pub(crate) fn map_regular_file(path: &Path) -> Result<Bytes, GgufError> {
    let (file, len) = open_regular_file(path)?;
    let len = usize::try_from(len).map_err(|_| too_large(path, len, "map"))?;
    if len == 0 {
        return Ok(Bytes::Owned(Vec::new()));
    }
    // SAFETY: `Mmap` hands out the mapped pages as a `&[u8]`, which is sound only while
    // nothing changes or truncates the file behind the map: a write would change bytes
    // under a shared reference, a truncation would turn a read of the lost pages into
    // SIGBUS. That cannot be checked here, so it is the contract of the only caller,
    // `GgufFile::open`, whose documentation tells its caller that the file must not be
    // modified while the `GgufFile` lives (and offers `GgufFile::read`, a copy, for files
    // that may change); a change made by another process is outside what Rust's safety
    // model covers (as with `/proc/self/mem`). Everything else that makes the map safe
    // to use holds here: `file` is a regular file opened for reading (checked on the
    // handle just above), the map is read-only and `len` long, the length the file had
    // when it was checked, so the reader's bounds checks against `len` keep every access
    // inside the map even if the file grows; the map outlives `file` (closing the
    // descriptor does not unmap), and the bytes are only ever read as `u8`, for which
    // every bit pattern is valid (strings are validated and copied out, never borrowed).
    let map = unsafe { MmapOptions::new().len(len).map(&file) };
    Ok(Bytes::Mapped(map?))
}

/// The bytes of the regular file at `path` ([`open_regular_file`]): at most its size at
/// open time, in a buffer reserved for exactly that size before reading.
///
/// Errors: those of [`open_regular_file`]; [`GgufError::Io`] when the file cannot be
/// read or its size cannot be reserved in memory.
pub(crate) fn read_regular_file(path: &Path) -> Result<Vec<u8>, GgufError> {
    let (file, len) = open_regular_file(path)?;
    let no_memory = || too_large(path, len, "reserve memory for");
    let cap = usize::try_from(len).map_err(|_| no_memory())?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(cap).map_err(|_| no_memory())?;
    // `take`: a file that grew since `metadata` is read up to its old size only.
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}
