//! The CPU backend.
//!
//! It reads host buffers and, although they are not host memory, the buffer types it
//! carries kernels for (the AMX buffer type): the `is_host` override of the user's
//! notes. Without it a scheduler asking "can the CPU read this AMX weight?" hears no,
//! and either refuses the graph or, in the C++ engine that had this bug, routed the
//! matmul to a backend that read packed bytes as plain blocks (NaN).
//!
//! Which ops it runs on a packed weight is the buffer type's decision: for an op with a
//! source in a non-host buffer type, [`Backend::supports_op`] returns exactly that
//! buffer type's [`BufferType::supports_op`], and [`Backend::compute`] runs that buffer
//! type's [`BufferType::compute_forward`]. Everything else runs the f32 reference ops
//! ([`crate::reference`]) on plain host bytes.

use std::sync::Arc;

use crate::buffer::amx::AmxBufferType;
use crate::buffer::host::host;
use crate::buffer::{Buffer, BufferType, Buft, Kernel};
use crate::error::ExecError;
use crate::op::{CheckedOp, Op, OpDesc};
use crate::pool::Pool;
use crate::reference;
use crate::tensor::f32_view_mut;
use amx_core::gemm::Path;

use bumpalo::Bump;

use super::{Backend, Computed, check_buffers, check_dst, check_sources};

/// The CPU backend.
#[derive(Debug)]
pub struct CpuBackend {
    /// Non-host buffer types whose kernels this backend runs (the AMX buffer type).
    extra: Vec<Buft>,
    /// Whether `supports_buft` accepts `extra` (always, except to prove a test).
    is_host_override: bool,
    /// The pool and path of the GEMM form of long ATTENTION steps, when enabled.
    attention_pool: Option<(Arc<Pool>, Path)>,
    /// The pool of the row-wise reference ops of long steps, when enabled.
    row_pool: Option<rows::RowPool>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// A CPU backend with its own AMX buffer type (GEMM on the calling thread).
    pub fn new() -> CpuBackend {
        Self::with_extra(vec![Arc::new(AmxBufferType::new())])
    }

    /// A CPU backend whose AMX buffer type runs its GEMM on `pool`.
    pub fn with_pool(pool: Arc<Pool>) -> CpuBackend {
        Self::with_extra(vec![Arc::new(AmxBufferType::with_pool(pool))])
    }

    /// A CPU backend that runs the kernels of the non-host buffer types `extra`.
    pub fn with_extra(extra: Vec<Buft>) -> CpuBackend {
        CpuBackend { extra, is_host_override: true, attention_pool: None, row_pool: None }
    }

    /// **Only for proving that the tests catch the user's bug; never use it in an
    /// engine.** A CPU backend whose `supports_buft` accepts host buffer types only, as
    /// in the C++ engine before the fix: it refuses its own AMX buffer type.
    pub fn without_is_host_override(extra: Vec<Buft>) -> CpuBackend {
        CpuBackend { extra, is_host_override: false, attention_pool: None, row_pool: None }
    }

    /// This backend, running ATTENTION of 16 or more queries (a prefill step) as BF16
    /// GEMMs on `pool`, on `path` ([`Kernel::Fused`]; Q, K, probabilities and V rounded
    /// to BF16) instead of the f32 reference op. Shorter steps (decode) run on AVX-512
    /// where the CPU has it ([`Kernel::Vector`]), with or without this pool.
    #[must_use]
    pub fn with_attention_pool(mut self, pool: Arc<Pool>, path: Path) -> CpuBackend {
        self.attention_pool = Some((pool, path));
        self
    }

    /// This backend, running the reference ops computed row by row (norms, elementwise
    /// ops, activations, ROPE, softmax, GET_ROWS, the copies of RESHAPE and TRANSPOSE) on
    /// `pool` in steps of 16 rows and 8192 values or more (prefill), the rows split
    /// between its threads; shorter steps (decode) stay on the calling thread. The
    /// results are the single-threaded reference's, bit for bit, for any number of
    /// threads. Long ROPE steps read their cosines and sines from a table this backend
    /// keeps (computed once per position, not once per op).
    #[must_use]
    pub fn with_op_pool(mut self, pool: Arc<Pool>) -> CpuBackend {
        self.row_pool = Some(rows::RowPool::new(pool));
        self
    }

    /// The non-host buffer types this backend carries kernels for, in the order given
    /// (for [`CpuBackend::new`], the AMX buffer type alone). An engine puts these first
    /// in a weight's preference list, before [`host`].
    pub fn extra_bufts(&self) -> &[Buft] {
        &self.extra
    }

    fn is_extra(&self, buft: &dyn BufferType) -> bool {
        self.extra.iter().any(|e| e.id() == buft.id())
    }

    /// [`ExecError::BufferNotAccepted`] for the first source in a buffer type this backend
    /// does not read.
    fn check_accepted(&self, op: &OpDesc, srcs: &[&Buffer]) -> Result<(), ExecError> {
        match srcs.iter().find(|b| !self.supports_buft(&**b.buft())) {
            Some(b) => Err(ExecError::BufferNotAccepted {
                op: op.name().clone(),
                backend: self.name().into(),
                tensor: b.desc().name.clone(),
                buft: b.buft().name().into(),
            }),
            None => Ok(()),
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "CPU"
    }

    fn supports_buft(&self, buft: &dyn BufferType) -> bool {
        buft.is_host() || (self.is_host_override && self.is_extra(buft))
    }

    /// No op that breaks its rules ([`OpDesc::check`], `dst` included), whatever its
    /// buffer types say; then the answer of each non-host source's buffer type, or the
    /// reference ops' for plain sources.
    fn supports_op(&self, op: &OpDesc) -> bool {
        if op.check().is_err() {
            return false;
        }
        let mut delegated = false;
        for s in op.srcs.iter().filter(|s| !s.buft.is_host()) {
            if !s.buft.supports_op(op) {
                return false;
            }
            delegated = true;
        }
        delegated || reference::supports(op)
    }

    fn compute_buft(&self) -> Buft {
        host()
    }

    /// [`Backend::compute_into`] into a new host buffer: one dispatch chain for both.
    fn compute(&self, op: &OpDesc, srcs: &[&Buffer]) -> Result<Computed, ExecError> {
        // The op's rules first, before the result buffer is made from its `dst`;
        // `compute_into` checks the rest.
        check_sources(op, srcs)?;
        let mut output = Buffer::alloc(&host(), op.dst.clone())?;
        let (kernel, _) = self.compute_into(op, srcs, &mut output, &Bump::new())?;
        Ok(Computed { output, kernel, uploaded_bytes: 0 })
    }

    /// In place: packed weights through their buffer type's kernel straight into `dst`,
    /// the rest by the reference ops on the sources' bytes where they are. Allocates
    /// nothing when `scratch` has room and the kernels' workspaces are warm.
    fn compute_into(
        &self,
        op: &OpDesc,
        srcs: &[&Buffer],
        dst: &mut Buffer,
        scratch: &Bump,
    ) -> Result<(Kernel, usize), ExecError> {
        // The errors in the order of the checked path's, the op's rules first.
        check_sources(op, srcs)?;
        check_dst(self, op, dst)?;
        self.check_accepted(op, srcs)?;
        self.compute_checked_into(CheckedOp::new(op)?, srcs, dst, scratch)
    }

    /// [`Backend::compute_into`] without checking the op's rules and its buffer types'
    /// acceptance again ([`CheckedOp`]); the buffers are checked as there.
    fn compute_checked_into(
        &self,
        op: CheckedOp<'_>,
        srcs: &[&Buffer],
        dst: &mut Buffer,
        scratch: &Bump,
    ) -> Result<(Kernel, usize), ExecError> {
        let checked = op;
        let op = checked.op();
        check_buffers(op, srcs)?;
        check_dst(self, op, dst)?;
        self.check_accepted(op, srcs)?;
        let not_aligned = || ExecError::Sources {
            op: op.name().clone(),
            what: "the result is not 4-byte aligned",
        };
        if let Some(packed) = srcs.iter().find(|b| !b.buft().is_host()) {
            let out = f32_view_mut(dst.host_bytes_mut()?).ok_or_else(not_aligned)?;
            let kernel = packed.buft().compute_forward_checked(checked, srcs, out)?;
            return Ok((kernel, 0));
        }
        // At most six sources (ATTENTION), on the stack.
        let mut bytes: [&[u8]; 6] = [&[]; 6];
        if srcs.len() > bytes.len() {
            return Err(ExecError::Sources { op: op.name().clone(), what: "too many sources" });
        }
        for (slot, b) in bytes.iter_mut().zip(srcs) {
            *slot = b.host_bytes()?;
        }
        if let Some((pool, path)) = self.attention_pool.as_ref().filter(|_| attention::applies(op))
        {
            let out = f32_view_mut(dst.host_bytes_mut()?).ok_or_else(not_aligned)?;
            let path = attention::run(pool, *path, op, &bytes[..srcs.len()], out)?;
            return Ok((Kernel::Fused { path }, 0));
        }
        #[cfg(target_arch = "x86_64")]
        if decode_attention::applies(op) {
            let out = f32_view_mut(dst.host_bytes_mut()?).ok_or_else(not_aligned)?;
            decode_attention::run(op, &bytes[..srcs.len()], out, scratch)?;
            return Ok((Kernel::Vector, 0));
        }
        let (bytes, out) = (&bytes[..srcs.len()], dst.host_bytes_mut()?);
        if let Some(rows) = &self.row_pool
            && rows.run_sized(checked, bytes, out, scratch)?
        {
            return Ok((Kernel::Reference, 0));
        }
        reference::compute_sized_into(checked, bytes, out, scratch)?;
        Ok((Kernel::Reference, 0))
    }

    /// Delegates to the weights' buffer type ([`BufferType::compute_forward_group`])
    /// when every op is a MUL_MAT (or every op a MUL_MAT_ID) on a weight of one non-host
    /// buffer type this backend accepts, with the same other sources (the same buffers:
    /// activations, and expert ids).
    fn compute_group_into(
        &self,
        ops: &[CheckedOp<'_>],
        srcs: &[&[&Buffer]],
        dsts: &mut [&mut Buffer],
    ) -> Result<Option<Kernel>, ExecError> {
        let (Some(first), Some(op0), true) =
            (srcs.first(), ops.first(), ops.len() == srcs.len() && ops.len() == dsts.len())
        else {
            return Ok(None);
        };
        let (kind, Some((w0, rest0))) = (op0.op().op, first.split_first()) else {
            return Ok(None);
        };
        let buft = w0.buft();
        let fits = |(op, s): (&CheckedOp<'_>, &&[&Buffer])| {
            let Some((w, rest)) = s.split_first() else { return false };
            matches!(kind, Op::MulMat | Op::MulMatId)
                && op.op().op == kind
                && !w.buft().is_host()
                && w.buft().id() == buft.id()
                && rest.len() == rest0.len()
                && rest.iter().zip(rest0).all(|(a, b)| core::ptr::eq(*a, *b))
        };
        if !ops.iter().zip(srcs).all(fits) || !self.is_extra(&**buft) {
            return Ok(None);
        }
        for ((op, s), dst) in ops.iter().map(CheckedOp::op).zip(srcs).zip(dsts.iter()) {
            check_buffers(op, s)?;
            check_dst(self, op, dst)?;
            self.check_accepted(op, s)?;
        }
        // At most four outputs, on the stack.
        let not_aligned = |op: &OpDesc| ExecError::Sources {
            op: op.name().clone(),
            what: "the result is not 4-byte aligned",
        };
        let mut outs: [&mut [f32]; 4] = [&mut [], &mut [], &mut [], &mut []];
        if dsts.len() > outs.len() {
            return Ok(None);
        }
        for ((slot, dst), op) in
            outs.iter_mut().zip(dsts.iter_mut()).zip(ops.iter().map(CheckedOp::op))
        {
            *slot = f32_view_mut(dst.host_bytes_mut()?).ok_or_else(|| not_aligned(op))?;
        }
        buft.compute_forward_group(ops, srcs, &mut outs[..ops.len()])
    }
}

mod attention;
#[cfg(target_arch = "x86_64")]
mod decode_attention;
mod rows;

#[cfg(test)]
mod tests;
