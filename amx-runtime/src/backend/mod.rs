//! Backends: who runs ops, and on which buffer types.
//!
//! - [`cpu::CpuBackend`]: host buffers *and* the AMX buffer type (its `is_host`
//!   override), ops on packed weights delegated to their buffer type.
//! - [`gpu_like::GpuLikeBackend`]: a stand-in for a GPU in tests: its own device memory,
//!   weights copied up from host buffers only, packed buffers unreadable.

pub mod cpu;
pub mod gpu_like;

use std::fmt;

use bumpalo::Bump;

use crate::buffer::{Buffer, BufferType, Buft, Kernel};
use crate::error::ExecError;
use crate::op::{CheckedOp, OpDesc};

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
    /// `dst` that is not what the sources give), [`ExecError::BufferNotAccepted`],
    /// [`ExecError::Unsupported`], refused buffer accesses ([`ExecError::Buffer`]) and the
    /// kernels' errors.
    fn compute(&self, op: &OpDesc, srcs: &[&Buffer]) -> Result<Computed, ExecError>;

    /// [`Backend::compute`] into `dst`, a buffer of [`Backend::compute_buft`] for
    /// `op.dst` made once and reused ([`crate::exec::Prepared`]), with temporaries from
    /// `scratch` (an arena reset every step). The default computes and copies; the CPU
    /// backend writes in place and allocates nothing in steady state. Returns the kernel
    /// and the bytes copied up from host memory.
    ///
    /// Errors: those of [`Backend::compute`], and [`ExecError::Sources`] when `dst` is
    /// not a buffer of this backend for `op.dst`.
    fn compute_into(
        &self,
        op: &OpDesc,
        srcs: &[&Buffer],
        dst: &mut Buffer,
        scratch: &Bump,
    ) -> Result<(Kernel, usize), ExecError> {
        let _ = scratch;
        check_dst(self, op, dst)?;
        let done = self.compute(op, srcs)?;
        let bytes = done.output.download()?;
        let buft = dst.buft().clone();
        buft.set_tensor(dst, &bytes)?;
        Ok((done.kernel, done.uploaded_bytes))
    }

    /// [`Backend::compute_into`] of an op already checked ([`CheckedOp`]), which a
    /// backend need not check again ([`crate::exec::Prepared`] checks each op once, not
    /// every step). What can change from call to call is still checked: that `srcs` and
    /// `dst` are the buffers the op describes, buffer lengths and owners, packed
    /// headers, ids and positions. The default runs [`Backend::compute_into`].
    ///
    /// Errors: those of [`Backend::compute_into`].
    fn compute_checked_into(
        &self,
        op: CheckedOp<'_>,
        srcs: &[&Buffer],
        dst: &mut Buffer,
        scratch: &Bump,
    ) -> Result<(Kernel, usize), ExecError> {
        self.compute_into(op.op(), srcs, dst, scratch)
    }

    /// [`Backend::compute_checked_into`] for MUL_MATs `ops` sharing their activations
    /// (`srcs[i] = [weight_i, x]`, the same `x`; none reads another's result), or for
    /// MUL_MAT_IDs sharing activations and expert ids (`srcs[i] = [experts_i, x, ids]`,
    /// the MoE gate and up projections), as one job, where the backend can:
    /// `Ok(Some(kernel))` with every `dsts[i]` written, `Ok(None)` (nothing written: the
    /// caller runs them one by one) otherwise, as the default does.
    ///
    /// Errors: those of [`Backend::compute_into`] for any of the ops.
    fn compute_group_into(
        &self,
        ops: &[CheckedOp<'_>],
        srcs: &[&[&Buffer]],
        dsts: &mut [&mut Buffer],
    ) -> Result<Option<Kernel>, ExecError> {
        let _ = (ops, srcs, dsts);
        Ok(None)
    }
}

/// Checks that `dst` is a buffer of `backend`'s result buffer type for `op.dst`.
pub(crate) fn check_dst<B: Backend + ?Sized>(
    backend: &B,
    op: &OpDesc,
    dst: &Buffer,
) -> Result<(), ExecError> {
    if dst.desc() == &op.dst && dst.buft().id() == backend.compute_buft().id() {
        Ok(())
    } else {
        Err(ExecError::Sources { op: op.name().clone(), what: "the result buffer is not the op's" })
    }
}

/// Checks that `op` follows its rules ([`OpDesc::check`], `dst` included) and that
/// `srcs` are the buffers it describes.
pub(crate) fn check_sources(op: &OpDesc, srcs: &[&Buffer]) -> Result<(), ExecError> {
    op.check().map_err(ExecError::Op)?;
    check_buffers(op, srcs)
}

/// Checks that `srcs` are the buffers `op` describes (description and buffer type): the
/// part of [`check_sources`] that a [`CheckedOp`] still needs on every call.
pub(crate) fn check_buffers(op: &OpDesc, srcs: &[&Buffer]) -> Result<(), ExecError> {
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
