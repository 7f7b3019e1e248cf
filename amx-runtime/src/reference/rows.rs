//! The reference ops that compute their result row by row: ADD, MUL, DIV, GET_ROWS,
//! SUM_ROWS, SOFT_MAX, RMS_NORM, SILU, GELU, SCALE, ROPE, TRANSPOSE and RESHAPE. Each is a
//! [`RowJob`]: its sources read (or dequantized) once, then any range of its result's
//! rows computed on its own ([`RowJob::run`]). The single-threaded reference runs all
//! rows at once; the CPU backend splits them over its pool. A row's arithmetic does not
//! depend on the split, so neither do the bits.

use std::sync::Arc;

use amx_core::formats::dequantize;
use bumpalo::Bump;

use crate::error::ExecError;
use crate::fast_math::exp_f32;
use crate::op::{Op, OpDesc};
use crate::tensor::{DType, TensorDesc};

use super::rope::{Rope, RopeTable};
use super::{index_in, values, words};

/// An op whose result's rows are computed independently, ready to run on any rows.
#[derive(Clone, Copy)]
pub(crate) struct RowJob<'a> {
    name: &'a Arc<str>,
    /// Rows of the result.
    rows: usize,
    /// Result values per row.
    width: usize,
    kernel: Kernel<'a>,
}

/// The elementwise operation of ADD, MUL, DIV.
#[derive(Clone, Copy)]
enum Binary {
    Add,
    Mul,
    Div,
}

/// The map of SILU, GELU, SCALE.
#[derive(Clone, Copy)]
enum Unary {
    Silu,
    Gelu,
    Scale(f32),
}

/// Each op's sources (checked) and parameters.
#[derive(Clone, Copy)]
enum Kernel<'a> {
    Binary {
        f: Binary,
        a: &'a [f32],
        an: [usize; 4],
        b: &'a [f32],
        bn: [usize; 4],
    },
    Map {
        f: Unary,
        x: &'a [f32],
    },
    SoftMax {
        x: &'a [f32],
    },
    RmsNorm {
        x: &'a [f32],
        eps: f32,
    },
    SumRows {
        x: &'a [f32],
        c: usize,
    },
    /// The same words in another shape (RESHAPE).
    Copy {
        x: &'a [f32],
    },
    Transpose {
        a: &'a [f32],
        ne: [usize; 4],
    },
    GetRows {
        table: &'a TensorDesc,
        bytes: &'a [u8],
        row_bytes: usize,
        ids: Ids<'a>,
    },
    Rope {
        rope: Rope,
        x: &'a [f32],
        d: usize,
        pos: Ids<'a>,
        table: Option<&'a [f32]>,
    },
}

/// An I32 source, read by index.
#[derive(Clone, Copy)]
struct Ids<'a> {
    desc: &'a TensorDesc,
    bytes: &'a [u8],
}

impl Ids<'_> {
    fn get(&self, i: usize) -> i32 {
        let c = &self.bytes[4 * i..][..4];
        i32::from_le_bytes([c[0], c[1], c[2], c[3]])
    }
}

impl<'a> RowJob<'a> {
    /// The row job of `op` on `srcs` (their plain bytes; the op and its sources already
    /// checked), with values read, copied or dequantized into `scratch`; `None` for the
    /// ops that are not computed by rows (MUL_MAT, MUL_MAT_ID, TOP_K, ATTENTION).
    ///
    /// Errors: [`ExecError::Sources`] for a block table of partial blocks (GET_ROWS),
    /// [`ExecError::Format`] if dequantization fails.
    pub(crate) fn new(
        op: &'a OpDesc,
        srcs: &[&'a [u8]],
        scratch: &'a Bump,
    ) -> Result<Option<RowJob<'a>>, ExecError> {
        let name = op.name();
        let d = |i: usize| &op.srcs[i].desc;
        let f = |i: usize| values(name, d(i), srcs[i], scratch);
        let binary = |f_: Binary| -> Result<Kernel<'a>, ExecError> {
            Ok(Kernel::Binary { f: f_, a: f(0)?, an: d(0).ne, b: f(1)?, bn: d(1).ne })
        };
        let kernel = match op.op {
            Op::MulMat | Op::MulMatId | Op::TopK { .. } | Op::Attention { .. } => return Ok(None),
            Op::Add => binary(Binary::Add)?,
            Op::Mul => binary(Binary::Mul)?,
            Op::Div => binary(Binary::Div)?,
            Op::Silu => Kernel::Map { f: Unary::Silu, x: f(0)? },
            Op::Gelu => Kernel::Map { f: Unary::Gelu, x: f(0)? },
            Op::Scale { s } => Kernel::Map { f: Unary::Scale(s), x: f(0)? },
            Op::SoftMax => Kernel::SoftMax { x: f(0)? },
            Op::RmsNorm { eps } => Kernel::RmsNorm { x: f(0)?, eps },
            Op::SumRows => Kernel::SumRows { x: f(0)?, c: d(0).ne[0] },
            Op::Reshape { .. } => Kernel::Copy { x: words(srcs[0], scratch) },
            Op::Transpose => Kernel::Transpose { a: f(0)?, ne: d(0).ne },
            Op::GetRows => {
                let table = d(0);
                let row_bytes = table.dtype.row_bytes(table.ne[0]).ok_or(ExecError::Sources {
                    op: name.clone(),
                    what: "table rows are not whole blocks",
                })?;
                let ids = Ids { desc: d(1), bytes: srcs[1] };
                Kernel::GetRows { table, bytes: srcs[0], row_bytes, ids }
            }
            Op::Rope { mode, n_dims, freq_base, freq_scale } => Kernel::Rope {
                rope: Rope { mode, n_dims, freq_base, freq_scale },
                x: f(0)?,
                d: d(0).ne[0],
                pos: Ids { desc: d(1), bytes: srcs[1] },
                table: None,
            },
        };
        // ROPE's rows are tokens (all heads); the others' the result's ne[0] values.
        let width = if matches!(kernel, Kernel::Rope { .. }) {
            op.dst.ne[0] * op.dst.ne[1]
        } else {
            op.dst.ne[0]
        };
        let rows = op.dst.elements() / width.max(1);
        Ok(Some(RowJob { name, rows, width, kernel }))
    }

    /// Rows of the result.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row of the result.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// ROPE's angles and the largest position of the step (`None` for other ops, or
    /// with a negative position, which [`RowJob::run`] reports): what a [`RopeTable`]
    /// must hold for [`RowJob::with_rope_table`].
    pub(crate) fn rope(&self) -> Option<(Rope, usize)> {
        let Kernel::Rope { rope, pos, .. } = self.kernel else { return None };
        let n = pos.bytes.len() / 4;
        let max = (0..n).map(|i| usize::try_from(pos.get(i)).ok()).try_fold(0, |m, p| {
            let p = p?;
            Some(m.max(p))
        })?;
        Some((rope, max))
    }

    /// This ROPE job reading its cosines and sines from `table` (which holds its angles
    /// up to at least its largest position, [`RowJob::rope`]) instead of computing them.
    /// Other jobs, and a table of other angles or too few positions, are left as they are.
    pub(crate) fn with_rope_table(mut self, t: &'a RopeTable) -> RowJob<'a> {
        let fits = self.rope().is_some_and(|(rope, max)| t.is_for(&rope) && max < t.positions());
        if let (true, Kernel::Rope { table, .. }) = (fits, &mut self.kernel) {
            *table = Some(t.rows());
        }
        self
    }

    /// Computes rows `first..first + out.len() / width` of the result into `out`.
    ///
    /// Errors: [`ExecError::IndexOutOfRange`] for a row id outside its table (GET_ROWS)
    /// or a negative position (ROPE), [`ExecError::Format`] if dequantization fails;
    /// the rows before the bad one are written.
    pub(crate) fn run(&self, first: usize, out: &mut [f32]) -> Result<(), ExecError> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512 F was detected on this CPU just above.
            return unsafe { self.run_avx512(first, out) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected on this CPU just above.
            return unsafe { self.run_avx2(first, out) };
        }
        self.run_plain(first, out)
    }

    /// [`RowJob::run_plain`] compiled for AVX-512: the same operations in the same order
    /// (the same bits; Rust never fuses a multiply and an add), sixteen lanes to a
    /// register.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn run_avx512(&self, first: usize, out: &mut [f32]) -> Result<(), ExecError> {
        self.run_plain(first, out)
    }

    /// [`RowJob::run_plain`] compiled for AVX2 (the same bits), eight lanes to a register.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, first: usize, out: &mut [f32]) -> Result<(), ExecError> {
        self.run_plain(first, out)
    }

    /// [`RowJob::run`] for any x86-64 (or other) CPU; inlined into the builds above.
    #[inline(always)]
    pub(super) fn run_plain(&self, first: usize, out: &mut [f32]) -> Result<(), ExecError> {
        let w = self.width;
        match self.kernel {
            Kernel::Binary { f, a, an, b, bn } => {
                let a = &a[first * w..][..out.len()];
                match f {
                    Binary::Add => binary(first, a, an, b, bn, out, |x, y| x + y),
                    Binary::Mul => binary(first, a, an, b, bn, out, |x, y| x * y),
                    Binary::Div => binary(first, a, an, b, bn, out, |x, y| x / y),
                }
            }
            Kernel::Map { f, x } => {
                let x = &x[first * w..][..out.len()];
                match f {
                    Unary::Silu => map(x, out, |v| v / (1.0 + exp_f32(-v))),
                    Unary::Gelu => map(x, out, gelu),
                    Unary::Scale(s) => map(x, out, |v| v * s),
                }
            }
            Kernel::SoftMax { x } => {
                for (o, r) in out.chunks_exact_mut(w).zip(x[first * w..].chunks_exact(w)) {
                    softmax_into(r, o);
                }
            }
            Kernel::RmsNorm { x, eps } => {
                for (o, r) in out.chunks_exact_mut(w).zip(x[first * w..].chunks_exact(w)) {
                    rms_norm_into(r, eps, o);
                }
            }
            Kernel::SumRows { x, c } => {
                for (o, r) in out.iter_mut().zip(x[first * c..].chunks_exact(c)) {
                    *o = r.iter().sum();
                }
            }
            Kernel::Copy { x } => out.copy_from_slice(&x[first * w..][..out.len()]),
            Kernel::Transpose { a, ne } => transpose(first, a, ne, out),
            Kernel::GetRows { table, bytes, row_bytes, ids } => {
                self.get_rows(first, table, bytes, row_bytes, ids, out)?;
            }
            Kernel::Rope { rope, x, d, pos, table } => {
                let rows = out.chunks_exact_mut(w).zip(x[first * w..].chunks_exact(w));
                for (t, (o, r)) in (first..).zip(rows) {
                    let p = index_in(self.name, pos.desc, pos.get(t), i32::MAX as usize)?;
                    o.copy_from_slice(r);
                    let n = rope.n_dims;
                    rope.token(o, d, p, table.map(|tab| &tab[p * n..][..n]));
                }
            }
        }
        Ok(())
    }

    /// GET_ROWS: result row `j` is row `ids[j]` of the table's matrix of `j`'s batch.
    fn get_rows(
        &self,
        first: usize,
        table: &TensorDesc,
        bytes: &[u8],
        row_bytes: usize,
        ids: Ids<'_>,
        out: &mut [f32],
    ) -> Result<(), ExecError> {
        let [c, r, _, _] = table.ne;
        for (j, dst) in (first..).zip(out.chunks_exact_mut(c)) {
            let b = j / ids.desc.ne[0];
            let row = b * r + index_in(self.name, ids.desc, ids.get(j), r)?;
            let src = &bytes[row * row_bytes..][..row_bytes];
            match table.dtype {
                DType::Block(format) => dequantize(format, src, dst)
                    .map_err(|error| ExecError::Format { op: self.name.clone(), error })?,
                DType::F32 | DType::I32 => {
                    for (o, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                }
            }
        }
        Ok(())
    }
}

#[inline(always)]
fn map(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// `f` elementwise on rows `first..` of `a` (given from row `first` on) with `b`
/// broadcast. Generic in `f` so that each op's loop is compiled with its arithmetic
/// inline (vector code for rows of the same length).
#[inline(always)]
fn binary(
    first: usize,
    a: &[f32],
    an: [usize; 4],
    b: &[f32],
    bn: [usize; 4],
    out: &mut [f32],
    f: impl Fn(f32, f32) -> f32,
) {
    // b's row for a's row i: the common cases without the six integer divisions of the
    // general one (as slow as the arithmetic of a row of a few hundred values).
    let b_rows = bn[1..] == [1, 1, 1];
    let same_rows = bn[1..] == an[1..];
    let rows = a.chunks_exact(an[0]).zip(out.chunks_exact_mut(an[0]));
    for (i, (row, orow)) in (first..).zip(rows) {
        let bi = if b_rows {
            0
        } else if same_rows {
            i
        } else {
            let (i1, i2, i3) = (i % an[1], (i / an[1]) % an[2], i / (an[1] * an[2]));
            ((i3 % bn[3]) * bn[2] + i2 % bn[2]) * bn[1] + i1 % bn[1]
        };
        let brow = &b[bi * bn[0]..][..bn[0]];
        if bn[0] == an[0] {
            for ((o, &x), &y) in orow.iter_mut().zip(row).zip(brow) {
                *o = f(x, y);
            }
        } else {
            for (i0, (o, &x)) in orow.iter_mut().zip(row).enumerate() {
                *o = f(x, brow[i0 % bn[0]]);
            }
        }
    }
}

#[inline(always)]
fn softmax_into(row: &[f32], out: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (o, &x) in out.iter_mut().zip(row) {
        *o = exp_f32(x - max);
    }
    let sum: f32 = out.iter().sum();
    for o in out.iter_mut() {
        *o /= sum;
    }
}

#[inline(always)]
fn rms_norm_into(row: &[f32], eps: f32, out: &mut [f32]) {
    let mean = row.iter().map(|x| x * x).sum::<f32>() / row.len() as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for (o, &x) in out.iter_mut().zip(row) {
        *o = x * scale;
    }
}

/// Rows `first..` of the transpose of each matrix of `a` (`ne`): result row `i` of matrix
/// `m` is column `i` of `a`'s matrix `m`.
#[inline(always)]
fn transpose(first: usize, a: &[f32], ne: [usize; 4], out: &mut [f32]) {
    let (c, r) = (ne[0], ne[1]);
    for (row, orow) in (first..).zip(out.chunks_exact_mut(r)) {
        let (mat, i) = (&a[(row / c) * c * r..][..c * r], row % c);
        for (j, o) in orow.iter_mut().enumerate() {
            *o = mat[j * c + i];
        }
    }
}

/// ggml's GELU (tanh form; ggml tabulates it in F16 on the CPU, computed here in f32).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}
