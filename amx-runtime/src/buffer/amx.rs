//! The AMX buffer type: weights packed by amx-core for its GEMM kernels.
//!
//! `is_host = false`: the bytes are VNNI-packed panels behind a header, not the ggml
//! blocks, so no code that reads host memory directly may see them. Only this type's
//! [`BufferType::compute_forward`] reads them, through amx-core's checked
//! [`PackedRef`]; the CPU backend calls it because it accepts this buffer type
//! explicitly (see [`crate::backend::cpu`]).
//!
//! What it accepts is decided in one place, [`AmxBufferType`]'s `supports_op`: MUL_MAT
//! with src0 a packable weight held here and src1 F32, in host memory, contiguous and 2D;
//! MUL_MAT_ID with src0 a packable expert stack `[K, N, E]` held here, src1 F32 and the
//! expert ids in host memory, contiguous (run by amx-core's grouped kernel,
//! [`amx_core::moe`]). Every other op, and every other operand, is refused.
//!
//! # Weights in other formats: F32, packed as BF16
//!
//! An engine can put every matmul weight of a GGUF file here, whatever its type. A type
//! amx-core packs natively ([`DType::Block`]) is packed as it is. Anything else (an F32
//! matrix, a ggml type amx-core has no [`Format`] for) is dequantized once, at load, and
//! packed as BF16 ([`pack::pack_f32_as_bf16_panels`]: round to nearest, ties to even):
//!
//! - the buffer type must be made with [`AmxBufferType::with_f32_as_bf16`]; then it
//!   accepts [`DType::F32`] weights (MUL_MAT `[K, N]`, MUL_MAT_ID `[K, N, E]`), which
//!   run on the BF16 paths. Without it F32 weights stay in host memory (a router kept
//!   in F32 for its precision, as llama.cpp keeps it, is not rounded behind its back);
//! - an F32 weight is uploaded from its f32 bytes ([`BufferType::set_tensor`]), or from
//!   the caller's dequantization, 16 rows at a time, with
//!   [`AmxBufferType::set_tensor_from_rows`]: a weight in a ggml type amx-core cannot
//!   pack is declared as F32 of its shape and uploaded with the engine's own `to_float`
//!   of its bytes (no f32 copy of the whole weight is made);
//! - a download ([`BufferType::get_tensor`]) gives the f32 bytes of the packed BF16
//!   values, that is the uploaded values rounded to BF16 (the one place where this type
//!   does not give back the bytes it was given: the rounding is the point).
//!
//! Integrity: an upload ([`BufferType::set_tensor`]) packs, then verifies the packed
//! buffer end to end (header and body checksum, [`pack::verify`]); a download
//! ([`BufferType::get_tensor`]) unpacks, which verifies the body again; each GEMM or
//! grouped call checks the 64-byte header only.

use std::cell::RefCell;
use std::sync::Arc;

use amx_core::formats::Format;
use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path, Preparation};
use amx_core::pack::{self, PackedLayout, PackedRef};

use crate::error::{BufferError, ExecError};
use crate::op::{CheckedOp, Op, OpDesc};
use crate::pool::Pool;
use crate::tensor::{DType, TensorDesc, f32_in_place_or_copied};
use crate::tile_state;

use super::{Buffer, BufferType, BuftId, Kernel};

mod f32_weights;
mod moe;

/// The AMX buffer type. Its GEMM and its grouped expert kernel run on a [`Pool`] when
/// given one, else on the calling thread.
#[derive(Debug)]
pub struct AmxBufferType {
    id: BuftId,
    pool: Option<Arc<Pool>>,
    /// Whether F32 weights are accepted, packed as BF16 (see the module docs).
    f32_as_bf16: bool,
    /// The GEMM path of every call ([`Path::Auto`] unless forced).
    path: Path,
    /// The name in kernel records, made once (a record per op must not allocate).
    kernel_name: Arc<str>,
}

impl Default for AmxBufferType {
    fn default() -> Self {
        Self::new()
    }
}

/// The format a weight of `dtype` is packed in: its own for a block format, BF16 for F32
/// (see the module docs), none for I32.
fn packed_format(dtype: DType) -> Option<Format> {
    match dtype {
        DType::Block(format) => Some(format),
        DType::F32 => Some(Format::BF16),
        DType::I32 => None,
    }
}

/// The packed layout of `tensor` (stacked matrices along `ne[2] * ne[3]`), if amx-core
/// can pack it (F32 as BF16; whether this type accepts F32 is [`AmxBufferType::holds`]).
fn layout_of(tensor: &TensorDesc) -> Option<PackedLayout> {
    let format = packed_format(tensor.dtype)?;
    let [k, n, a, b] = tensor.ne;
    PackedLayout::new(format, n, k, a.checked_mul(b)?).ok()
}

/// Checks the packed bytes of `desc` end to end, as an upload leaves them: header, body
/// checksum (one read of the whole buffer, [`pack::verify`]), and that they hold
/// `layout`'s format and shape. Each GEMM call then checks the header only.
///
/// Errors: [`BufferError::Pack`] with amx-core's [`pack::PackError`] (`BodyChecksum` for
/// changed panels).
fn verify_packed(
    desc: &TensorDesc,
    layout: &PackedLayout,
    bytes: &[u8],
) -> Result<(), BufferError> {
    let pack_err = |error| BufferError::Pack { tensor: desc.name.clone(), error };
    let packed = pack::verify(bytes).map_err(pack_err)?;
    packed.expect(layout.format(), layout.n(), layout.k(), layout.matrices()).map_err(pack_err)
}

/// The format `tensor` is packed in (BF16 for F32), or [`BufferError::Unsupported`].
fn format_of(tensor: &TensorDesc) -> Result<Format, BufferError> {
    packed_format(tensor.dtype).ok_or_else(|| BufferError::Unsupported {
        tensor: tensor.name.clone(),
        buft: "AMX".into(),
        dtype: tensor.dtype,
    })
}

thread_local! {
    /// Workspace of the one-thread GEMM and of the grouped expert kernel, reused call
    /// after call.
    static WORKSPACE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl AmxBufferType {
    /// The AMX buffer type, running its GEMM on the calling thread (which then holds
    /// tile state until it exits or calls [`tile_state::release_thread`]).
    pub fn new() -> AmxBufferType {
        AmxBufferType {
            id: BuftId::fresh(),
            pool: None,
            f32_as_bf16: false,
            path: Path::Auto,
            kernel_name: Arc::from("AMX"),
        }
    }

    /// The AMX buffer type, running its GEMM and grouped expert kernel on `pool`'s
    /// threads.
    pub fn with_pool(pool: Arc<Pool>) -> AmxBufferType {
        AmxBufferType { pool: Some(pool), ..AmxBufferType::new() }
    }

    /// This buffer type, also accepting F32 weights, which it packs as BF16 (see the
    /// module docs): every matmul weight can then be put here, an F32 matrix as it is and
    /// a weight in any other ggml type through [`AmxBufferType::set_tensor_from_rows`].
    #[must_use]
    pub fn with_f32_as_bf16(mut self) -> AmxBufferType {
        self.f32_as_bf16 = true;
        self
    }

    /// This buffer type, running every MUL_MAT and MUL_MAT_ID on `path` (`Auto`: by
    /// each call's row count, the default; `Amx`, `Vnni` or `Scalar`: forced, for runs
    /// whose results must not depend on M, or to compare paths). A forced path the
    /// machine lacks makes each call fail with [`GemmError::PathUnavailable`].
    #[must_use]
    pub fn with_path(mut self, path: Path) -> AmxBufferType {
        self.path = path;
        self
    }

    /// The path this type's calls take ([`AmxBufferType::with_path`]).
    pub fn path(&self) -> Path {
        self.path
    }

    /// Whether this type holds weights of `dtype`: every block format, F32 when made
    /// [`AmxBufferType::with_f32_as_bf16`].
    fn holds(&self, dtype: DType) -> bool {
        match dtype {
            DType::Block(_) => true,
            DType::F32 => self.f32_as_bf16,
            DType::I32 => false,
        }
    }

    /// Whether this type accepts `op` as MUL_MAT on a weight it holds: `dst` included,
    /// which must be exactly the `[N, M]` F32 result the sources give ([`OpDesc::check`]),
    /// since the GEMM writes `M x N` values and nothing else.
    fn accepts_mul_mat(&self, op: &OpDesc) -> bool {
        let [w, x] = &op.srcs[..] else { return false };
        let (wd, xd) = (&w.desc, &x.desc);
        op.check().is_ok()
            && w.buft.id() == self.id
            && w.contiguous
            && wd.ne[2] == 1
            && wd.ne[3] == 1
            && self.holds(wd.dtype)
            && layout_of(wd).is_some()
            && xd.dtype == DType::F32
            && x.buft.is_host()
            && x.contiguous
            && xd.ne[0] == wd.ne[0]
            && xd.ne[2] == 1
            && xd.ne[3] == 1
            && op.dst.dtype == DType::F32
    }

    /// `y = x * W^T` on the packed weight, on the pool or this thread.
    fn matmul(
        &self,
        packed: &[u8],
        format: Format,
        x: &MatRef<'_>,
        y: &mut MatMut<'_>,
    ) -> Result<Path, GemmError> {
        if let Some(pool) = &self.pool {
            return pool.matmul_on(packed, format, x, y, self.path);
        }
        // The permission is asked once per process; a thread that runs the AMX path is
        // recorded so that its tiles are released when it exits.
        let path = tile_state::resolve_path(format, x.rows(), self.path)?;
        if path == Path::Amx {
            tile_state::mark_used();
        }
        let need = gemm::workspace_bytes(format, x.rows(), x.cols(), path)?;
        WORKSPACE.with_borrow_mut(|ws| {
            if ws.len() < need {
                ws.resize(need, 0);
            }
            gemm::gemm(packed, format, x, y, path, ws)
        })
    }

    /// MUL_MAT `op` (accepted by `accepts_mul_mat`) on `srcs`, checked against it.
    fn mul_mat(&self, op: &OpDesc, srcs: &[&Buffer], dst: &mut [f32]) -> Result<Path, ExecError> {
        let name = op.name();
        let [w, x] = srcs else {
            return Err(ExecError::Sources { op: name.clone(), what: "MUL_MAT takes 2 sources" });
        };
        let format = format_of(w.desc())?;
        let packed = w.owned_bytes(self)?;
        let xv = f32_in_place_or_copied(x.host_bytes()?);
        let (k, n, m) = (w.desc().ne[0], w.desc().ne[1], x.desc().ne[1]);
        let gemm_err = |error| ExecError::Gemm { op: name.clone(), error };
        let xm = MatRef::new(&xv, m, k, k).map_err(gemm_err)?;
        let mut y = MatMut::new(dst, m, n, n).map_err(gemm_err)?;
        self.matmul(packed, format, &xm, &mut y).map_err(gemm_err)
    }
}

impl BufferType for AmxBufferType {
    fn id(&self) -> BuftId {
        self.id
    }

    fn name(&self) -> &str {
        "AMX"
    }

    fn is_host(&self) -> bool {
        false
    }

    fn alignment(&self) -> usize {
        pack::PANEL_ALIGN
    }

    fn alloc_size(&self, tensor: &TensorDesc) -> Result<usize, BufferError> {
        format_of(tensor)?;
        if !self.holds(tensor.dtype) {
            return Err(BufferError::Unsupported {
                tensor: tensor.name.clone(),
                buft: self.name().into(),
                dtype: tensor.dtype,
            });
        }
        layout_of(tensor)
            .map(|l| l.total_bytes())
            .ok_or_else(|| BufferError::BadShape { tensor: tensor.name.clone() })
    }

    fn supports_op(&self, op: &OpDesc) -> bool {
        match op.op {
            Op::MulMat => self.accepts_mul_mat(op),
            Op::MulMatId => moe::accepts(self, op),
            _ => false,
        }
    }

    fn set_tensor(&self, buf: &mut Buffer, data: &[u8]) -> Result<(), BufferError> {
        if buf.desc().dtype == DType::F32 {
            return self.set_f32(buf, data);
        }
        let desc = buf.desc().clone();
        let format = format_of(&desc)?;
        let layout = layout_of(&desc).ok_or(BufferError::BadShape { tensor: desc.name.clone() })?;
        if data.len() != layout.source_bytes() {
            return Err(BufferError::Length {
                tensor: desc.name,
                expected: layout.source_bytes(),
                actual: data.len(),
            });
        }
        let dst = buf.owned_bytes_mut(self)?;
        pack::pack(format, layout.n(), layout.k(), layout.matrices(), data, dst)
            .map_err(|error| BufferError::Pack { tensor: desc.name.clone(), error })?;
        // The weights are verified where they will be read from, once, at upload.
        verify_packed(&desc, &layout, buf.owned_bytes(self)?)
    }

    fn get_tensor(&self, buf: &Buffer, out: &mut [u8]) -> Result<(), BufferError> {
        if buf.desc().dtype == DType::F32 {
            return self.get_f32(buf, out);
        }
        let desc = buf.desc();
        let layout = layout_of(desc).ok_or(BufferError::BadShape { tensor: desc.name.clone() })?;
        let pack_err = |error| BufferError::Pack { tensor: desc.name.clone(), error };
        let packed = PackedRef::parse_expecting(
            buf.owned_bytes(self)?,
            layout.format(),
            layout.n(),
            layout.k(),
            layout.matrices(),
        )
        .map_err(pack_err)?;
        if out.len() != layout.source_bytes() {
            return Err(BufferError::Length {
                tensor: desc.name.clone(),
                expected: layout.source_bytes(),
                actual: out.len(),
            });
        }
        pack::unpack(&packed, out).map_err(pack_err)
    }

    /// Runs MUL_MAT (amx-core's GEMM) or MUL_MAT_ID (its grouped expert kernel) on a
    /// weight of this type. The [`Kernel::Packed`] path is the GEMM's, or for MUL_MAT_ID
    /// the path of the expert with the most rows (each expert takes the path
    /// [`Path::Auto`] picks for its row count, so that is the widest one taken).
    fn compute_forward(
        &self,
        op: &OpDesc,
        srcs: &[&Buffer],
        dst: &mut [f32],
    ) -> Result<Kernel, ExecError> {
        if !self.supports_op(op) {
            return Err(ExecError::Unsupported {
                op: op.name().clone(),
                kind: op.op.name(),
                by: self.name().into(),
            });
        }
        self.compute_forward_checked(CheckedOp::trusted(op), srcs, dst)
    }

    /// [`BufferType::compute_forward`] without asking `supports_op` again (the
    /// [`CheckedOp`] says this type accepts the op; it is this type's when a source
    /// buffer of this type is the op's, which is checked here).
    fn compute_forward_checked(
        &self,
        op: CheckedOp<'_>,
        srcs: &[&Buffer],
        dst: &mut [f32],
    ) -> Result<Kernel, ExecError> {
        let op = op.op();
        let name = op.name();
        let same = srcs.len() == op.srcs.len()
            && srcs
                .iter()
                .zip(&op.srcs)
                .all(|(b, s)| b.desc() == &s.desc && b.buft().id() == s.buft.id())
            && op.srcs.iter().any(|s| s.buft.id() == self.id);
        if !same {
            return Err(ExecError::Sources {
                op: name.clone(),
                what: "buffers differ from the op",
            });
        }
        // The kernels write exactly `op.dst`'s values: a longer slice would keep a tail.
        if dst.len() != op.dst.elements() {
            return Err(ExecError::Sources {
                op: name.clone(),
                what: "the output slice has another length than the result",
            });
        }
        let path = match op.op {
            Op::MulMatId => moe::run(self, op, srcs, dst)?,
            _ => self.mul_mat(op, srcs, dst)?,
        };
        Ok(Kernel::Packed { buft: self.kernel_name.clone(), path })
    }

    /// One [`Pool::linear_many_on`] job for up to four MUL_MATs on the same activations,
    /// when this type runs on a pool and the weights take the same activation
    /// preparation (their formats' activation kinds agree); one pool job for the items
    /// of two MUL_MAT_IDs on the same activations and expert ids (a MoE layer's gate and
    /// up), stacks of one format, on a pool of several threads; otherwise `Ok(None)`.
    fn compute_forward_group(
        &self,
        ops: &[CheckedOp<'_>],
        srcs: &[&[&Buffer]],
        dsts: &mut [&mut [f32]],
    ) -> Result<Option<Kernel>, ExecError> {
        let (Some(pool), Some(first)) = (&self.pool, ops.first()) else { return Ok(None) };
        if ops.len() < 2 || ops.len() > 4 || srcs.len() != ops.len() || dsts.len() != ops.len() {
            return Ok(None);
        }
        let kind = first.op().op;
        for ((op, s), dst) in ops.iter().zip(srcs).zip(dsts.iter()) {
            let op = op.op();
            // The checked op is accepted by the weight's buffer type: this one when the
            // weight buffer is this type's and the op's.
            let same = s.len() == op.srcs.len()
                && s.iter()
                    .zip(&op.srcs)
                    .all(|(b, s)| b.desc() == &s.desc && b.buft().id() == s.buft.id());
            let ours = s.first().is_some_and(|w| w.buft().id() == self.id);
            if !matches!(op.op, Op::MulMat | Op::MulMatId) || op.op != kind || !ours || !same {
                return Ok(None);
            }
            if dst.len() != op.dst.elements() {
                return Err(ExecError::Sources {
                    op: op.name().clone(),
                    what: "the output slice has another length than the result",
                });
            }
        }
        if kind == Op::MulMatId {
            return moe::run_group(self, pool, ops, srcs, dsts);
        }
        let name = first.op().name();
        let gemm_err = |error| ExecError::Gemm { op: name.clone(), error };
        let x = srcs[0][1];
        let (k, m) = (x.desc().ne[0], x.desc().ne[1]);
        let path = tile_state::resolve_path(format_of(srcs[0][0].desc())?, m, self.path)
            .map_err(gemm_err)?;
        let prep = |f| Preparation::new(f, m, k, path).ok();
        let p0 = prep(format_of(srcs[0][0].desc())?);
        let mut refs: [Option<PackedRef<'_>>; 4] = [None, None, None, None];
        for (r, w) in refs.iter_mut().zip(srcs.iter().map(|s| s[0])) {
            if p0.is_none() || prep(format_of(w.desc())?) != p0 {
                return Ok(None);
            }
            let packed = w.owned_bytes(self)?;
            *r = Some(PackedRef::parse(packed).map_err(|e| gemm_err(e.into()))?);
        }
        let xv = f32_in_place_or_copied(x.host_bytes()?);
        let taken = match (dsts, &refs) {
            ([a, b], [Some(ra), Some(rb), ..]) => {
                pool.linear_many_on(&xv, &mut [(ra, &mut **a), (rb, &mut **b)], self.path)
            }
            ([a, b, c], [Some(ra), Some(rb), Some(rc), _]) => pool.linear_many_on(
                &xv,
                &mut [(ra, &mut **a), (rb, &mut **b), (rc, &mut **c)],
                self.path,
            ),
            ([a, b, c, d], [Some(ra), Some(rb), Some(rc), Some(rd)]) => pool.linear_many_on(
                &xv,
                &mut [(ra, &mut **a), (rb, &mut **b), (rc, &mut **c), (rd, &mut **d)],
                self.path,
            ),
            _ => return Ok(None),
        }
        .map_err(gemm_err)?;
        Ok(Some(Kernel::Packed { buft: self.kernel_name.clone(), path: taken }))
    }
}

#[cfg(test)]
mod tests;
