//! Buffer types and buffers.
//!
//! A [`BufferType`] says where a tensor's bytes live and how they are laid out: plain
//! host memory ([`host`]), the AMX packed layout ([`amx::AmxBufferType`], `is_host =
//! false`), or a device's memory (the GPU-like test backend's). It decides which ops can
//! run on a tensor it holds ([`BufferType::supports_op`]), packs on upload
//! ([`BufferType::set_tensor`]) and gives back the original bytes on download
//! ([`BufferType::get_tensor`]).
//!
//! A [`Buffer`] holds one tensor. Its bytes are handed out two ways only:
//! [`Buffer::host_bytes`], for kernels that read plain values, which refuses (and
//! counts, [`Buffer::refused_reads`]) any buffer whose type is not host memory; and
//! [`Buffer::owned_bytes`], only to the buffer type that owns the buffer. So packed bytes
//! cannot be read as plain data by accident: the mistake is an error value and a count.

pub mod amx;
pub mod host;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use amx_core::gemm::Path;

use crate::error::{BufferError, ExecError};
use crate::hugepage::HugeBuffer;
use crate::op::{CheckedOp, OpDesc};
use crate::tensor::TensorDesc;

/// A shared handle to a buffer type.
pub type Buft = Arc<dyn BufferType>;

/// The identity of a buffer type instance (compare these, never names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BuftId(u64);

impl BuftId {
    /// A new identity, different from every other one in this process.
    pub fn fresh() -> BuftId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        BuftId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Which kernel computed an op.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The f32 reference ops ([`crate::reference`]), on plain data.
    Reference,
    /// An f32 op of the CPU backend on AVX-512 (ATTENTION of a decode step): the
    /// reference op's result up to the order of f32 roundings.
    Vector,
    /// A fused op of the CPU backend on amx-core's GEMM (ATTENTION of a prefill step,
    /// [`crate::backend::cpu::CpuBackend::with_attention_pool`]).
    Fused {
        /// The GEMM path amx-core took.
        path: Path,
    },
    /// A buffer type's own kernel on its packed weights (the AMX buffer type's GEMM).
    Packed {
        /// The buffer type whose kernel ran.
        buft: Arc<str>,
        /// The GEMM path amx-core took.
        path: Path,
    },
}

/// Where tensors live and what can be done with them there.
pub trait BufferType: fmt::Debug + Send + Sync {
    /// This instance's identity.
    fn id(&self) -> BuftId;

    /// A name for reports and errors (never used to make decisions).
    fn name(&self) -> &str;

    /// Whether the bytes are plain values in host memory that any CPU code may read.
    /// `false` for packed layouts and device memory.
    fn is_host(&self) -> bool;

    /// Alignment of the start of each buffer, in bytes (a power of two, at most 64).
    fn alignment(&self) -> usize;

    /// Bytes a buffer for `tensor` takes.
    ///
    /// Errors: [`BufferError::Unsupported`] when this type cannot hold the tensor,
    /// [`BufferError::BadShape`].
    fn alloc_size(&self, tensor: &TensorDesc) -> Result<usize, BufferError>;

    /// Whether `op` can run with its sources where `op` says they are, for the sources in
    /// this buffer type. For host memory this is always true (plain data); a packed type
    /// says yes only to the ops its kernels handle, with the operands they take.
    fn supports_op(&self, op: &OpDesc) -> bool;

    /// Writes `data`, the tensor's plain bytes (ggml layout, as in a GGUF file), into
    /// `buf` (which this type allocated), converting to this type's layout.
    ///
    /// Errors: [`BufferError::NotOwner`], [`BufferError::Length`], [`BufferError::Pack`].
    fn set_tensor(&self, buf: &mut Buffer, data: &[u8]) -> Result<(), BufferError>;

    /// Writes the tensor's plain bytes (exactly those given to `set_tensor`; for an F32
    /// weight the AMX buffer type packs as BF16, the values rounded to BF16) into `out`.
    ///
    /// Errors: [`BufferError::NotOwner`], [`BufferError::Length`], [`BufferError::Pack`].
    fn get_tensor(&self, buf: &Buffer, out: &mut [u8]) -> Result<(), BufferError>;

    /// Runs `op`, whose sources include tensors of this type, writing its F32 result into
    /// `dst`: the kernels of a buffer type whose layout only it can read (ggml's "extra
    /// buffer types"). The CPU backend calls it for ops with a source in a non-host
    /// buffer type it accepts. The default has no kernels; the AMX buffer type's may
    /// request the AMX permission (once per process, [`crate::tile_state`]) when they take
    /// the AMX path.
    ///
    /// Errors: [`ExecError::Unsupported`] for an op this type does not run, and whatever
    /// the kernel reports.
    fn compute_forward(
        &self,
        op: &OpDesc,
        srcs: &[&Buffer],
        dst: &mut [f32],
    ) -> Result<Kernel, ExecError> {
        let _ = (srcs, dst);
        Err(ExecError::Unsupported {
            op: op.name().clone(),
            kind: op.op.name(),
            by: self.name().into(),
        })
    }

    /// [`BufferType::compute_forward`] of an op already checked ([`CheckedOp`]: it
    /// follows its rules and this type accepts it), which a type need not ask again; the
    /// buffers, their lengths and packed headers are still checked. The default runs
    /// [`BufferType::compute_forward`].
    ///
    /// Errors: those of [`BufferType::compute_forward`].
    fn compute_forward_checked(
        &self,
        op: CheckedOp<'_>,
        srcs: &[&Buffer],
        dst: &mut [f32],
    ) -> Result<Kernel, ExecError> {
        self.compute_forward(op.op(), srcs, dst)
    }

    /// Runs MUL_MATs `ops` ([`CheckedOp`]s) that share their activations
    /// (`srcs[i] = [weight_i, x]`, the same `x` for all, each weight of this type), or
    /// MUL_MAT_IDs that share activations and expert ids (`srcs[i] = [experts_i, x,
    /// ids]`), as one job where this type can:
    /// `Ok(Some(kernel))` once every `dsts[i]` holds `ops[i]`'s result, `Ok(None)` with
    /// nothing written where it runs them only one by one ([`BufferType::compute_forward`];
    /// the default). A decode step's projections are small: one job for Q, K and V (or
    /// gate and up) shares them out over a pool where three would each run on one thread.
    ///
    /// Errors: those of [`BufferType::compute_forward`] for any of the ops.
    fn compute_forward_group(
        &self,
        ops: &[CheckedOp<'_>],
        srcs: &[&[&Buffer]],
        dsts: &mut [&mut [f32]],
    ) -> Result<Option<Kernel>, ExecError> {
        let _ = (ops, srcs, dsts);
        Ok(None)
    }
}

/// One tensor's bytes in one buffer type, with guarded access.
pub struct Buffer {
    buft: Buft,
    desc: TensorDesc,
    bytes: HugeBuffer,
    /// Bytes of the current tensor (`alloc_size` of `desc`; the storage may be larger
    /// after [`Buffer::retag`]).
    used: usize,
    refused: AtomicUsize,
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("buft", &self.buft.name())
            .field("tensor", &self.desc)
            .field("len", &self.used)
            .finish()
    }
}

impl Buffer {
    /// A zeroed buffer of `buft` for `desc`, of [`BufferType::alloc_size`] bytes.
    ///
    /// Errors: those of `alloc_size`, [`BufferError::Alignment`], and
    /// [`BufferError::Alloc`] (naming the size) when the memory cannot be had: the size
    /// comes from the caller's tensor, so running out is an error value, not an abort.
    pub fn alloc(buft: &Buft, desc: TensorDesc) -> Result<Buffer, BufferError> {
        let align = buft.alignment();
        if !align.is_power_of_two() || align > 64 {
            return Err(BufferError::Alignment { buft: buft.name().into(), align });
        }
        // Zeroed, 64-byte aligned; large buffers (weights) on transparent huge pages.
        let bytes = HugeBuffer::try_zeroed(buft.alloc_size(&desc)?)
            .map_err(|error| BufferError::Alloc { tensor: desc.name.clone(), error })?;
        let used = bytes.len();
        Ok(Buffer { buft: buft.clone(), desc, bytes, used, refused: AtomicUsize::new(0) })
    }

    /// [`Buffer::alloc`], then [`BufferType::set_tensor`] with `data`.
    ///
    /// Errors: those of both.
    pub fn upload(buft: &Buft, desc: TensorDesc, data: &[u8]) -> Result<Buffer, BufferError> {
        let mut buf = Buffer::alloc(buft, desc)?;
        buft.set_tensor(&mut buf, data)?;
        Ok(buf)
    }

    /// The tensor's plain bytes, through its buffer type's [`BufferType::get_tensor`].
    ///
    /// Errors: those of `get_tensor`, [`BufferError::BadShape`].
    pub fn download(&self) -> Result<Vec<u8>, BufferError> {
        let n = self
            .desc
            .nbytes()
            .ok_or_else(|| BufferError::BadShape { tensor: self.desc.name.clone() })?;
        let mut out = vec![0; n];
        self.buft.get_tensor(self, &mut out)?;
        Ok(out)
    }

    /// The buffer type.
    pub fn buft(&self) -> &Buft {
        &self.buft
    }

    /// The tensor held.
    pub fn desc(&self) -> &TensorDesc {
        &self.desc
    }

    /// Bytes of storage.
    pub fn len(&self) -> usize {
        self.used
    }

    /// Bytes of storage, at least [`Buffer::len`].
    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// Makes this buffer hold `desc` from now on (its bytes are whatever they were): the
    /// storage of a result whose last reader has run, reused for a later result of the
    /// same buffer type ([`crate::exec::Prepared`]). Allocates nothing.
    ///
    /// Errors: those of [`BufferType::alloc_size`], and [`BufferError::Length`] when
    /// `desc` needs more bytes than the storage has.
    pub fn retag(&mut self, desc: TensorDesc) -> Result<(), BufferError> {
        let need = self.buft.alloc_size(&desc)?;
        if need > self.bytes.len() {
            return Err(BufferError::Length {
                tensor: desc.name,
                expected: need,
                actual: self.bytes.len(),
            });
        }
        self.used = need;
        self.desc = desc;
        Ok(())
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.used]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.used]
    }

    fn not_host(&self) -> BufferError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        BufferError::NotHost { tensor: self.desc.name.clone(), buft: self.buft.name().into() }
    }

    /// The plain bytes, for kernels that read values directly. Only buffers whose type
    /// is host memory give them.
    ///
    /// Errors: [`BufferError::NotHost`] (and the refusal is counted).
    pub fn host_bytes(&self) -> Result<&[u8], BufferError> {
        if self.buft.is_host() { Ok(self.bytes()) } else { Err(self.not_host()) }
    }

    /// [`Buffer::host_bytes`], writable.
    ///
    /// Errors: [`BufferError::NotHost`] (and the refusal is counted).
    pub fn host_bytes_mut(&mut self) -> Result<&mut [u8], BufferError> {
        if self.buft.is_host() { Ok(self.bytes_mut()) } else { Err(self.not_host()) }
    }

    fn check_owner(&self, owner: &dyn BufferType) -> Result<(), BufferError> {
        if owner.id() == self.buft.id() {
            return Ok(());
        }
        Err(BufferError::NotOwner {
            tensor: self.desc.name.clone(),
            buft: self.buft.name().into(),
            reader: owner.name().into(),
        })
    }

    /// The raw bytes in the buffer type's own layout, for that buffer type's code only.
    ///
    /// Errors: [`BufferError::NotOwner`] when `owner` is not this buffer's type.
    pub fn owned_bytes(&self, owner: &dyn BufferType) -> Result<&[u8], BufferError> {
        self.check_owner(owner)?;
        Ok(self.bytes())
    }

    /// [`Buffer::owned_bytes`], writable.
    ///
    /// Errors: [`BufferError::NotOwner`].
    pub fn owned_bytes_mut(&mut self, owner: &dyn BufferType) -> Result<&mut [u8], BufferError> {
        self.check_owner(owner)?;
        Ok(self.bytes_mut())
    }

    /// How many plain reads or writes of this buffer were refused because its type is not
    /// host memory (zero in a correct run).
    pub fn refused_reads(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether the storage starts at a multiple of `align` (at most 64).
    pub fn is_aligned(&self, align: usize) -> bool {
        (self.bytes.as_ptr() as usize).is_multiple_of(align)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{DType, f32_to_bytes};

    #[test]
    fn host_buffers_give_plain_bytes_and_are_aligned() {
        let h = host::host();
        let desc = TensorDesc::new("x", DType::F32, &[3]).unwrap();
        let data = f32_to_bytes(&[1.0, 2.0, 3.0]);
        let buf = Buffer::upload(&h, desc, &data).unwrap();
        assert_eq!(buf.host_bytes().unwrap(), &data[..]);
        assert_eq!(buf.download().unwrap(), data);
        assert!(buf.is_aligned(64));
        assert_eq!(buf.refused_reads(), 0);
        assert_eq!(buf.owned_bytes(&*h).unwrap(), &data[..]);
    }

    /// A tensor whose size fits `usize` but not in memory used to abort the process in
    /// `Buffer::alloc` (the allocation failure handler); it is an error naming the
    /// tensor and the size, in every buffer type.
    #[test]
    fn memory_that_cannot_be_had_is_an_error() {
        let desc = TensorDesc::new("huge", DType::F32, &[1 << 30, 1 << 30]).unwrap();
        let e = Buffer::alloc(&host::host(), desc).unwrap_err();
        let want = crate::error::AllocError::Refused { bytes: 1 << 62 };
        assert_eq!(e, BufferError::Alloc { tensor: "huge".into(), error: want });
        assert!(e.to_string().contains("tensor huge: cannot allocate 4611686018427387904"));
        let a: Buft = Arc::new(amx::AmxBufferType::new());
        let q = DType::Block(amx_core::formats::Format::Q8_0);
        let desc = TensorDesc::new("huge", q, &[1 << 30, 1 << 30]).unwrap();
        let e = Buffer::upload(&a, desc, &[]).unwrap_err();
        assert!(matches!(e, BufferError::Alloc { .. }), "{e}");
    }

    #[test]
    fn ownership_is_checked() {
        let h = host::host();
        let a: Buft = Arc::new(amx::AmxBufferType::new());
        let desc = TensorDesc::new("x", DType::F32, &[3]).unwrap();
        let mut buf = Buffer::alloc(&h, desc).unwrap();
        let e = buf.owned_bytes(&*a).unwrap_err();
        assert!(matches!(e, BufferError::NotOwner { .. }), "{e}");
        assert!(a.set_tensor(&mut buf, &[0; 12]).is_err());
        assert_ne!(BuftId::fresh(), BuftId::fresh());
    }
}
