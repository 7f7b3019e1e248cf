//! Backends: who runs ops, and on which buffer types.
//!
//! - [`cpu::CpuBackend`]: host buffers *and* the AMX buffer type (its `is_host`
//!   override), ops on packed weights delegated to their buffer type.
//! - [`gpu_like::GpuLikeBackend`]: a stand-in for a GPU in tests: its own device memory,
//!   weights copied up from host buffers only, packed buffers unreadable.

pub mod cpu;
pub mod gpu_like;

use std::fmt;

use crate::buffer::{Buffer, BufferType, Buft, Kernel};
use crate::error::ExecError;
use crate::op::OpDesc;

/// The result of one op on a backend.
#[derive(Debug)]
pub struct Computed {
    /// The result, in the backend's [`Backend::compute_buft`].
    pub output: Buffer,
    /// The kernel that computed it.
    pub kernel: Kernel,
    /// Bytes the backend copied up from host buffers to run the op.
    pub uploaded_bytes: usize,
}

/// A backend: the buffer types it reads, the ops it runs, and where its results go.
pub trait Backend: fmt::Debug + Send + Sync {
    /// A name for reports and errors (never used to make decisions).
    fn name(&self) -> &str;

    /// Whether this backend reads tensors of `buft` where they are (no copy).
    fn supports_buft(&self, buft: &dyn BufferType) -> bool;

    /// Whether this backend runs `op` with its sources where `op` says they are.
    fn supports_op(&self, op: &OpDesc) -> bool;

    /// Where this backend's results live.
    fn compute_buft(&self) -> Buft;

    /// Runs `op` on `srcs` (the source buffers, in order, described by `op.srcs`). On the
    /// CPU backend, an op reading packed weights may request the AMX permission (once per
    /// process, [`crate::tile_state`]) when it takes the AMX path.
    ///
    /// Errors: [`ExecError::Op`] when the op breaks its rules ([`OpDesc::check`]: a
    /// `dst` that is not what the sources give), [`ExecError::BufferNotAccepted`], [`ExecError::Unsupported`], refused
    /// buffer accesses ([`ExecError::Buffer`]) and the kernels' errors.
    fn compute(&self, op: &OpDesc, srcs: &[&Buffer]) -> Result<Computed, ExecError>;
}

/// Checks that `op` follows its rules ([`OpDesc::check`], `dst` included) and that
/// `srcs` are the buffers it describes.
pub(crate) fn check_sources(op: &OpDesc, srcs: &[&Buffer]) -> Result<(), ExecError> {
    op.check().map_err(ExecError::Op)?;
    let matches = srcs.len() == op.srcs.len()
        && op
            .srcs
            .iter()
            .zip(srcs)
            .all(|(s, b)| &s.desc == b.desc() && s.buft.id() == b.buft().id());
    if matches {
        Ok(())
    } else {
        Err(ExecError::Sources { op: op.name().clone(), what: "buffers differ from the op" })
    }
}
