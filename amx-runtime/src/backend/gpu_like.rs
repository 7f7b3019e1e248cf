//! A GPU-like backend for tests: it stands in for a real GPU.
//!
//! It owns its device memory (a buffer type of its own, `is_host = false`, plain bytes
//! that only it reads), runs the f32 reference ops there, and gets everything else by
//! copying it up from host buffers through [`Buffer::host_bytes`], which refuses any
//! buffer that is not host memory. So it cannot read the AMX buffer type: its
//! `supports_buft` says no, and a forced attempt is an error value and a counted refusal,
//! never packed bytes read as blocks.
//!
//! Like some real device backends it has no top-k kernel, so the MoE router's expert
//! selection falls back to the CPU: a hop between backends in the middle of the MoE
//! block, where the user's NaN appeared.

use std::sync::Arc;

use crate::buffer::host::{check_len, plain_len};
use crate::buffer::{Buffer, BufferType, Buft, BuftId, Kernel};
use crate::error::{BufferError, ExecError};
use crate::op::{Op, OpDesc, Operand};
use crate::reference;
use crate::tensor::TensorDesc;

use super::{Backend, Computed, check_sources};

/// Whether the device has a kernel for `op` (ignoring where its sources are).
fn device_runs(op: &OpDesc) -> bool {
    !matches!(op.op, Op::TopK { .. }) && reference::supports(op)
}

/// The device memory of a [`GpuLikeBackend`]: plain bytes, not host memory.
#[derive(Debug)]
pub struct DeviceBufferType {
    id: BuftId,
}

impl BufferType for DeviceBufferType {
    fn id(&self) -> BuftId {
        self.id
    }

    fn name(&self) -> &str {
        "GPU-like device"
    }

    fn is_host(&self) -> bool {
        false
    }

    fn alignment(&self) -> usize {
        64
    }

    fn alloc_size(&self, tensor: &TensorDesc) -> Result<usize, BufferError> {
        plain_len(tensor)
    }

    /// Whether the device has a kernel for the op that consumes a weight held here.
    fn supports_op(&self, op: &OpDesc) -> bool {
        device_runs(op)
    }

    /// A host-to-device copy of plain bytes.
    fn set_tensor(&self, buf: &mut Buffer, data: &[u8]) -> Result<(), BufferError> {
        check_len(buf.desc(), data.len())?;
        buf.owned_bytes_mut(self)?.copy_from_slice(data);
        Ok(())
    }

    /// A device-to-host copy of plain bytes.
    fn get_tensor(&self, buf: &Buffer, out: &mut [u8]) -> Result<(), BufferError> {
        check_len(buf.desc(), out.len())?;
        out.copy_from_slice(buf.owned_bytes(self)?);
        Ok(())
    }
}

/// The GPU-like test backend.
#[derive(Debug)]
pub struct GpuLikeBackend {
    device: Arc<DeviceBufferType>,
}

impl Default for GpuLikeBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl GpuLikeBackend {
    /// A backend with fresh device memory.
    pub fn new() -> GpuLikeBackend {
        GpuLikeBackend { device: Arc::new(DeviceBufferType { id: BuftId::fresh() }) }
    }

    /// Its device memory, for weights an engine puts on this backend.
    pub fn device_buft(&self) -> Buft {
        self.device.clone()
    }

    fn is_device(&self, b: &Buffer) -> bool {
        b.buft().id() == self.device.id
    }
}

impl Backend for GpuLikeBackend {
    fn name(&self) -> &str {
        "GPU-like"
    }

    fn supports_buft(&self, buft: &dyn BufferType) -> bool {
        buft.id() == self.device.id
    }

    /// Every source must be in device memory (the scheduler copies host tensors up).
    fn supports_op(&self, op: &OpDesc) -> bool {
        op.srcs.iter().all(|s| s.buft.id() == self.device.id) && device_runs(op)
    }

    fn compute_buft(&self) -> Buft {
        self.device.clone()
    }

    fn compute(&self, op: &OpDesc, srcs: &[&Buffer]) -> Result<Computed, ExecError> {
        check_sources(op, srcs)?;
        let device = self.device_buft();
        // Copy up what is not on the device yet: from host buffers only.
        let mut uploads = Vec::new();
        for b in srcs.iter().filter(|b| !self.is_device(b)) {
            uploads.push(Buffer::upload(&device, b.desc().clone(), b.host_bytes()?)?);
        }
        let uploaded_bytes = uploads.iter().map(Buffer::len).sum();
        let mut pending = uploads.iter();
        let mut on_device = Vec::with_capacity(srcs.len());
        for b in srcs {
            if self.is_device(b) {
                on_device.push(*b);
            } else {
                on_device.extend(pending.next());
            }
        }
        let view = OpDesc {
            op: op.op,
            srcs: on_device
                .iter()
                .map(|b| Operand { desc: b.desc().clone(), buft: device.clone(), contiguous: true })
                .collect(),
            dst: op.dst.clone(),
        };
        if !self.supports_op(&view) {
            return Err(ExecError::Unsupported {
                op: op.name().clone(),
                kind: op.op.name(),
                by: self.name().into(),
            });
        }
        let bytes = on_device
            .iter()
            .map(|b| b.owned_bytes(&*self.device))
            .collect::<Result<Vec<_>, _>>()?;
        let out = reference::compute(&view, &bytes)?;
        let output = Buffer::upload(&device, op.dst.clone(), &out)?;
        Ok(Computed { output, kernel: Kernel::Reference, uploaded_bytes })
    }
}

#[cfg(test)]
mod tests;
