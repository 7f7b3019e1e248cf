//! [`AmxMatMul`]: a GGUF weight packed once by amx-rs, applied to candle tensors as a
//! `CustomOp1`.

use std::fmt;
use std::sync::{Arc, Mutex, TryLockError};

use amx_core::formats::Format;
use amx_core::gemm::{self, MatMut, MatRef, Path};
use amx_core::pack;
use amx_runtime::hugepage::HugeBuffer;
use amx_runtime::pool::Pool;
use amx_runtime::tile_state;
use candle_core::backend::BackendStorage;
use candle_core::quantized::QTensor;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::AdapterError;
use crate::dtype::{check_ggml_bytes, format_of};
use crate::rows::rows_of;

/// `y = x W^T` for one weight `W` of `N` rows by `K` values, packed once at load time
/// by amx-rs. Apply it to an f32 tensor of shape `[..., K]` with [`AmxMatMul::forward`]
/// (or `xs.apply_op1_no_bwd(&op)`); the result is f32 `[..., N]`.
///
/// Without a pool the matmul runs on the calling thread ([`gemm::gemm`], [`Path::Auto`]);
/// with one ([`AmxMatMul::with_pool`], [`AmxMatMul::with_threads`]) it is split over the
/// pool's threads by [`Pool::matmul`]. Either way the output is bit-identical.
///
/// On the calling thread, AMX tiles stay configured between calls (amx-rs skips
/// `ldtilecfg` when the configuration is still loaded); amx-runtime releases them when
/// the thread exits, or call [`tile_state::release_thread`] when the thread goes idle.
pub struct AmxMatMul {
    format: Format,
    n: usize,
    k: usize,
    packed: HugeBuffer,
    pool: Option<Arc<Pool>>,
    /// Workspace of the single-threaded path, reused call after call.
    workspace: Mutex<Vec<u8>>,
}

impl fmt::Debug for AmxMatMul {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmxMatMul")
            .field("format", &self.format)
            .field("n", &self.n)
            .field("k", &self.k)
            .field("packed_bytes", &self.packed.len())
            .field("threads", &self.threads())
            .finish()
    }
}

impl AmxMatMul {
    /// Packs `bytes`, a weight of `n` rows by `k` values of `format` in ggml layout (as
    /// stored in a GGUF file), for single-threaded use.
    ///
    /// Errors: [`AdapterError::WeightShape`], [`AdapterError::WeightBytes`],
    /// [`AdapterError::Pack`].
    pub fn from_ggml_bytes(
        format: Format,
        n: usize,
        k: usize,
        bytes: &[u8],
    ) -> Result<AmxMatMul, AdapterError> {
        check_ggml_bytes(format, n, k, bytes)?;
        // On transparent huge pages, as amx-runtime's buffers keep packed weights: the
        // decode-time weight stream runs closer to the memory's bandwidth.
        let mut packed = HugeBuffer::zeroed(pack::packed_size(format, n, k, 1)?);
        pack::pack(format, n, k, 1, bytes, &mut packed)?;
        Ok(AmxMatMul { format, n, k, packed, pool: None, workspace: Mutex::new(Vec::new()) })
    }

    /// Packs the bytes of a candle `QTensor` of shape `(n, k)` (from a GGUF file, or
    /// quantized by candle), for single-threaded use.
    ///
    /// Errors: [`AdapterError::WeightRank`], [`AdapterError::UnsupportedDType`], those
    /// of [`AmxMatMul::from_ggml_bytes`], and candle's when it cannot give the bytes.
    pub fn from_qtensor(weight: &QTensor) -> candle_core::Result<AmxMatMul> {
        let dims = weight.shape().dims();
        let &[n, k] = dims else {
            return Err(AdapterError::WeightRank { rank: dims.len() }.into());
        };
        let format = format_of(weight.dtype())?;
        let data = weight.data()?;
        Ok(AmxMatMul::from_ggml_bytes(format, n, k, &data)?)
    }

    /// Runs every call on `pool` (shared with other weights of the model).
    pub fn with_pool(mut self, pool: Arc<Pool>) -> AmxMatMul {
        self.pool = Some(pool);
        self
    }

    /// Runs every call on a new pool of `threads` threads (the calling thread included).
    ///
    /// Errors: [`AdapterError::Threads`] when the OS refuses a thread.
    pub fn with_threads(self, threads: usize) -> Result<AmxMatMul, AdapterError> {
        let pool = Pool::try_new(threads)
            .map_err(|e| AdapterError::Threads { threads, kind: e.kind() })?;
        Ok(self.with_pool(Arc::new(pool)))
    }

    /// The weight's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Output columns (the weight's rows).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Values per input row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Threads a call runs on: the pool's, or 1.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.threads())
    }

    /// The packed weight (amx-rs layout, header included).
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }

    /// The path a call with `m` input rows takes on this machine.
    ///
    /// Errors: [`AdapterError::Gemm`] (not for `Auto`, which always resolves).
    pub fn path(&self, m: usize) -> Result<Path, AdapterError> {
        Ok(tile_state::resolve_path(self.format, m, Path::Auto)?)
    }

    /// `y = x W^T` on amx-rs matrix views (for engines that hold plain slices); returns
    /// the path taken.
    ///
    /// Errors: [`AdapterError::Gemm`] (shapes, strides).
    pub fn matmul(&self, x: &MatRef<'_>, y: &mut MatMut<'_>) -> Result<Path, AdapterError> {
        if let Some(pool) = &self.pool {
            return Ok(pool.matmul(&self.packed, self.format, x, y)?);
        }
        let path = tile_state::resolve_path(self.format, x.rows(), Path::Auto)?;
        let need = gemm::workspace_bytes(self.format, x.rows(), x.cols(), path)?;
        // Concurrent callers each need a workspace: the first takes the shared one, the
        // others allocate theirs rather than wait.
        let mut guard = match self.workspace.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let mut local = Vec::new();
        let ws = guard.as_deref_mut().unwrap_or(&mut local);
        if ws.len() < need {
            ws.resize(need, 0);
        }
        if path == Path::Amx {
            tile_state::mark_used();
        }
        Ok(gemm::gemm(&self.packed, self.format, x, y, path, ws)?)
    }

    /// `xs.apply_op1_no_bwd(self)`: `xs` f32 `[..., K]` to f32 `[..., N]`.
    ///
    /// Errors: the input's dtype, shape or layout (see [`AdapterError`]), a non-CPU
    /// device (candle's error), and those of [`AmxMatMul::matmul`].
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.apply_op1_no_bwd(self)
    }

    fn cpu_forward(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> Result<(CpuStorage, Shape), AdapterError> {
        let CpuStorage::F32(values) = storage else {
            return Err(AdapterError::InputDType { dtype: storage.dtype() });
        };
        let rows = rows_of(layout, self.k)?;
        let mut dims = layout.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = self.n;
        }
        let out_len = rows.m.checked_mul(self.n).ok_or(gemm::GemmError::Overflow)?;
        let mut out = vec![0f32; out_len];
        if rows.m > 0 {
            let len = values.len();
            let src = values
                .get(rows.offset..)
                .ok_or(AdapterError::StorageOffset { offset: rows.offset, len })?;
            let x = MatRef::new(src, rows.m, self.k, rows.stride)?;
            let mut y = MatMut::new(&mut out, rows.m, self.n, self.n)?;
            self.matmul(&x, &mut y)?;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

impl CustomOp1 for AmxMatMul {
    fn name(&self) -> &'static str {
        "amx-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok(self.cpu_forward(storage, layout)?)
    }
}

#[cfg(test)]
mod tests;
