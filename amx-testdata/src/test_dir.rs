//! Scratch directories for the tests (removed when dropped) and the repository's vector
//! files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh, empty directory under the system temp directory, unique per process and
/// call.
pub struct TestDir(PathBuf);

impl TestDir {
    /// A new directory named after `tag`, the process id and a per-process counter
    /// (panics if it cannot be created: this is test support).
    pub fn new(tag: &str) -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("amx-testdata-{tag}-{}-{n}", std::process::id()));
        // A leftover of an earlier process with the same id would make the test see
        // stale files.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        TestDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The repository's test vector `name` (in `tests/vectors/`).
pub fn repo_vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors").join(name)
}

/// A folder with one good vector (`good.gguf`, a copy of the repository's smallest
/// Q8_0 vector) and two that do not load: `broken.gguf` (a header cut short) and
/// `empty.gguf` (0 bytes).
pub fn mixed_vectors(tag: &str) -> TestDir {
    let dir = TestDir::new(tag);
    std::fs::copy(repo_vector("q8_0_m1_n64_k256_plain.gguf"), dir.path().join("good.gguf"))
        .expect("copy a vector");
    std::fs::write(dir.path().join("broken.gguf"), b"GGUF\x03\0\0\0\x01").expect("write");
    std::fs::write(dir.path().join("empty.gguf"), b"").expect("write");
    dir
}
