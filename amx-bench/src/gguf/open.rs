//! Reading a GGUF file from disk: only a regular file, and never more bytes than the size
//! it had when it was opened (a device such as `/dev/zero`, a FIFO or a file that grows
//! while it is read cannot make the reader allocate without bound).

use std::fs::{File, FileType};
use std::io::Read;
use std::path::Path;

use super::error::GgufError;

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

/// The bytes of the regular file at `path` (symbolic links followed): at most its size
/// at open time, in a buffer reserved for exactly that size before reading.
///
/// Errors: [`GgufError::NotARegularFile`] for directories, devices, FIFOs and sockets
/// (checked before opening, so that opening a FIFO cannot block, and again on the opened
/// handle); [`GgufError::Io`] when the file cannot be opened or read, or its size cannot
/// be reserved in memory.
pub(super) fn read_regular_file(path: &Path) -> Result<Vec<u8>, GgufError> {
    let ty = std::fs::metadata(path)?.file_type();
    if !ty.is_file() {
        return Err(not_regular(path, &ty));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    let len = meta.len();
    let no_memory = || GgufError::Io {
        kind: std::io::ErrorKind::OutOfMemory,
        message: format!("cannot reserve {len} bytes to read {}", path.display()),
    };
    let cap = usize::try_from(len).map_err(|_| no_memory())?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(cap).map_err(|_| no_memory())?;
    // `take`: a file that grew since `metadata` is read up to its old size only.
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}
