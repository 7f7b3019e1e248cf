//! Helpers shared by the workspace-level integration tests in `tests/tests/`.

use std::path::PathBuf;

/// The directory holding the GGUF test vectors (copied from gguf-py generated files).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}
