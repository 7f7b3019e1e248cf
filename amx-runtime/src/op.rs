//! The ops, their shape rules (ggml semantics), and [`OpDesc`]: an op with its sources
//! *where they are* (buffer type, contiguity), the question asked of buffer types and
//! backends by placement and the scheduler.

use std::fmt;
use std::sync::Arc;

use crate::buffer::Buft;
use crate::error::GraphError;
use crate::tensor::{DType, TensorDesc};

mod checked;

pub use checked::CheckedOp;

/// An op kind. Shapes are in ggml order (`ne[0]` fastest); see [`Op::infer`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// `dst[n, m] = sum_k src0[k, n] * src1[k, m]`: src0 `[K, N, B2, B3]` (weights, F32 or
    /// a block format), src1 `[K, M, b2, b3]` F32 with `b2`, `b3` multiples of `B2`, `B3`
    /// (src0 broadcast); dst `[N, M, b2, b3]` F32.
    MulMat,
    /// Expert matmul: src0 `[K, N, E]` (E stacked experts), src1 `[K, B, T]` F32 with
    /// `B` 1 or `U`, src2 `[U, T]` I32 expert ids; `dst[:, u, t] = src0[:, :, ids[u, t]]`
    /// applied to `src1[:, u % B, t]`; dst `[N, U, T]` F32.
    MulMatId,
    /// `src0 + src1`, src1 broadcast (each of its dimensions divides src0's). F32.
    Add,
    /// `src0 * src1`, broadcast as for [`Op::Add`].
    Mul,
    /// `src0 / src1`, broadcast as for [`Op::Add`].
    Div,
    /// Rows of a table: src0 `[C, R, B]` (F32 or a block format), src1 `[U, B]` I32 row
    /// ids; `dst[:, u, b] = src0[:, ids[u, b], b]`; dst `[C, U, B]` F32.
    GetRows,
    /// Sum of each row: `[C, R, ...]` to `[1, R, ...]`. F32.
    SumRows,
    /// Softmax of each row (over `ne[0]`). F32.
    SoftMax,
    /// Indices of the `k` largest values of each row, largest first (ties: lower index
    /// first): F32 `[C, R, ...]` to I32 `[k, R, ...]` (ggml's argsort, descending, then a
    /// view of the first `k`).
    TopK {
        /// How many indices per row.
        k: usize,
    },
    /// The same values (F32 or I32) with another shape of the same number of elements.
    Reshape {
        /// The new shape.
        ne: [usize; 4],
    },
    /// Swaps dimensions 0 and 1, written out contiguously (ggml `cont(transpose(x))`). F32.
    Transpose,
    /// `x / sqrt(mean(x^2) + eps)` over each row. F32.
    RmsNorm {
        /// Added to the mean square.
        eps: f32,
    },
    /// `x * sigmoid(x)`. F32.
    Silu,
    /// ggml's GELU, tanh form: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`. F32.
    Gelu,
    /// `x * s`. F32.
    Scale {
        /// The factor.
        s: f32,
    },
    /// Rotary position embedding (ggml's `rope_ext` without YaRN): src0 `[D, H, T]` F32,
    /// src1 `[T]` I32 positions; the first `n_dims` values of each head rotated by
    /// `pos * freq_scale * freq_base^(-2i / n_dims)` for pair `i`, the rest copied; dst
    /// as src0.
    Rope {
        /// Which values pair up.
        mode: RopeMode,
        /// Values rotated per head (even, at most `D`).
        n_dims: usize,
        /// The base of the frequencies (the file's `rope.freq_base`).
        freq_base: f32,
        /// Positions are multiplied by this (1 / the linear scaling factor).
        freq_scale: f32,
    },
    /// Causal attention over a KV cache, fused (see [`crate::graph::TensorKind::State`]):
    /// sources q `[Dk, H, T]`, the new keys k `[Dk, Hkv, T]` and values v `[Dv, Hkv, T]`
    /// (all F32), the caches kc `[Dk, Hkv, C]` and vc `[Dv, Hkv, C]` (F32 state tensors
    /// holding positions `0..pos[0]` of earlier steps), and pos `[T]` I32 (consecutive
    /// positions `pos[0]..pos[0] + T`, `pos[0] <= C`). Query `t` of head `h` attends to
    /// positions `j <= pos[t]` (and `j > pos[t] - window` when `window > 0`), keys of
    /// head `h / (H / Hkv)` (grouped-query attention), the new k/v for `j >= pos[0]` and
    /// the cache's below: `softmax(scale * q.k_j)` times v. dst `[Dv * H, T]` F32, heads
    /// one after the other as the output projection reads them. The op does not write
    /// the cache: the engine appends k and v to it after the step.
    Attention {
        /// Multiplies the scores (usually `1 / sqrt(Dk)`).
        scale: f32,
        /// Sliding window in positions (0: none, the whole past).
        window: usize,
    },
}

/// Which values of a head RoPE rotates together (ggml's rope modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// ggml's normal mode (0): adjacent pairs `(2i, 2i + 1)` (llama).
    Normal,
    /// GPT-NeoX mode (2): pairs `(i, i + n_dims / 2)` (gemma3, qwen2, qwen3).
    Neox,
}

impl Op {
    /// The ggml name: `MUL_MAT`, `MUL_MAT_ID`, `GET_ROWS`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Op::MulMat => "MUL_MAT",
            Op::MulMatId => "MUL_MAT_ID",
            Op::Add => "ADD",
            Op::Mul => "MUL",
            Op::Div => "DIV",
            Op::GetRows => "GET_ROWS",
            Op::SumRows => "SUM_ROWS",
            Op::SoftMax => "SOFT_MAX",
            Op::TopK { .. } => "TOP_K",
            Op::Reshape { .. } => "RESHAPE",
            Op::Transpose => "TRANSPOSE",
            Op::RmsNorm { .. } => "RMS_NORM",
            Op::Silu => "SILU",
            Op::Gelu => "GELU",
            Op::Scale { .. } => "SCALE",
            Op::Rope { .. } => "ROPE",
            Op::Attention { .. } => "ATTENTION",
        }
    }

    /// Number of sources.
    pub fn arity(&self) -> usize {
        match self {
            Op::Attention { .. } => 6,
            Op::MulMatId => 3,
            Op::MulMat | Op::Add | Op::Mul | Op::Div | Op::GetRows | Op::Rope { .. } => 2,
            Op::SumRows
            | Op::SoftMax
            | Op::TopK { .. }
            | Op::Reshape { .. }
            | Op::Transpose
            | Op::RmsNorm { .. }
            | Op::Silu
            | Op::Gelu
            | Op::Scale { .. } => 1,
        }
    }

    /// The result of this op on `srcs`, named `node`, or the rule the sources break.
    pub fn infer(&self, node: &Arc<str>, srcs: &[&TensorDesc]) -> Result<TensorDesc, GraphError> {
        if srcs.len() != self.arity() {
            return Err(GraphError::Arity {
                node: node.clone(),
                op: self.name(),
                expected: self.arity(),
                found: srcs.len(),
            });
        }
        let op = self.name();
        let dtype = |i: usize, ok: fn(DType) -> bool, expected: &'static str| {
            let t = srcs[i];
            if ok(t.dtype) {
                Ok(())
            } else {
                Err(GraphError::DType {
                    node: node.clone(),
                    op,
                    tensor: t.name.clone(),
                    expected,
                    found: t.dtype,
                })
            }
        };
        let shape = |i: usize, ok: bool, rule: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(GraphError::Shape {
                    node: node.clone(),
                    op,
                    tensor: srcs[i].name.clone(),
                    rule,
                    found: srcs[i].ne,
                })
            }
        };
        let f32_only = |t: DType| t == DType::F32;
        let weight = |t: DType| matches!(t, DType::F32 | DType::Block(_));
        let ids = |t: DType| t == DType::I32;
        let a = srcs[0].ne;
        let (out_dtype, ne) = match *self {
            Op::MulMat => {
                dtype(0, weight, "F32 or a block format")?;
                dtype(1, f32_only, "F32")?;
                let b = srcs[1].ne;
                shape(1, a[0] == b[0], "its ne[0] must equal src0's (K)")?;
                let bcast = b[2].is_multiple_of(a[2]) && b[3].is_multiple_of(a[3]);
                shape(1, bcast, "its ne[2], ne[3] must be multiples of src0's")?;
                (DType::F32, [a[1], b[1], b[2], b[3]])
            }
            Op::MulMatId => {
                dtype(0, weight, "F32 or a block format")?;
                dtype(1, f32_only, "F32")?;
                dtype(2, ids, "I32")?;
                let (b, e) = (srcs[1].ne, srcs[2].ne);
                shape(0, a[3] == 1, "expert stacks are 3D [K, N, E]")?;
                shape(1, b[0] == a[0], "its ne[0] must equal src0's (K)")?;
                shape(1, b[1] == 1 || b[1] == e[0], "its ne[1] must be 1 or the ids' ne[0]")?;
                shape(1, b[2] == e[1] && b[3] == 1, "its ne[2] must equal the ids' ne[1]")?;
                shape(2, e[2] == 1 && e[3] == 1, "ids are 2D [U, T]")?;
                (DType::F32, [a[1], e[0], e[1], 1])
            }
            Op::Add | Op::Mul | Op::Div => {
                dtype(0, f32_only, "F32")?;
                dtype(1, f32_only, "F32")?;
                let b = srcs[1].ne;
                let fits = (0..4).all(|i| a[i].is_multiple_of(b[i]));
                shape(1, fits, "each of its dimensions must divide src0's (broadcast)")?;
                (DType::F32, a)
            }
            Op::GetRows => {
                dtype(0, weight, "F32 or a block format")?;
                dtype(1, ids, "I32")?;
                let i = srcs[1].ne;
                shape(0, a[3] == 1, "tables are at most 3D")?;
                shape(1, i[1] == a[2] && i[2] == 1 && i[3] == 1, "ids are [U, src0 ne[2]]")?;
                (DType::F32, [a[0], i[0], a[2], 1])
            }
            Op::SumRows => {
                dtype(0, f32_only, "F32")?;
                (DType::F32, [1, a[1], a[2], a[3]])
            }
            Op::SoftMax | Op::RmsNorm { .. } | Op::Silu | Op::Gelu | Op::Scale { .. } => {
                dtype(0, f32_only, "F32")?;
                (DType::F32, a)
            }
            Op::TopK { k } => {
                dtype(0, f32_only, "F32")?;
                shape(0, k >= 1 && k <= a[0], "k must be in 1..=ne[0]")?;
                (DType::I32, [k, a[1], a[2], a[3]])
            }
            Op::Reshape { ne } => {
                dtype(0, |t| matches!(t, DType::F32 | DType::I32), "F32 or I32")?;
                let same = ne.iter().try_fold(1usize, |p, &d| p.checked_mul(d))
                    == Some(srcs[0].elements())
                    && !ne.contains(&0);
                shape(0, same, "the new shape must have as many elements")?;
                (srcs[0].dtype, ne)
            }
            Op::Transpose => {
                dtype(0, f32_only, "F32")?;
                (DType::F32, [a[1], a[0], a[2], a[3]])
            }
            Op::Rope { n_dims, .. } => {
                dtype(0, f32_only, "F32")?;
                dtype(1, ids, "I32")?;
                let ok = n_dims >= 2 && n_dims.is_multiple_of(2) && n_dims <= a[0];
                shape(0, ok && a[3] == 1, "[D, H, T] with n_dims even and at most D")?;
                shape(1, srcs[1].ne == [a[2], 1, 1, 1], "positions are [T]")?;
                (DType::F32, a)
            }
            Op::Attention { .. } => {
                for i in 0..5 {
                    dtype(i, f32_only, "F32")?;
                }
                dtype(5, ids, "I32")?;
                let [dk, h, t, _] = a;
                let [k, v, kc, vc] = [srcs[1].ne, srcs[2].ne, srcs[3].ne, srcs[4].ne];
                let hkv = k[1];
                shape(0, a[3] == 1, "q is [Dk, H, T]")?;
                let gqa = h.is_multiple_of(hkv);
                shape(1, k == [dk, hkv, t, 1] && gqa, "k is [Dk, Hkv, T] with H % Hkv == 0")?;
                shape(2, v[1..] == [hkv, t, 1], "v is [Dv, Hkv, T]")?;
                shape(3, kc[0] == dk && kc[1] == hkv && kc[3] == 1, "the k cache is [Dk, Hkv, C]")?;
                let vc_ok = vc == [v[0], hkv, kc[2], 1];
                shape(4, vc_ok, "the v cache is [Dv, Hkv, C], C as the k cache's")?;
                shape(5, srcs[5].ne == [t, 1, 1, 1], "positions are [T]")?;
                (DType::F32, [v[0] * h, t, 1, 1])
            }
        };
        Ok(TensorDesc { name: node.clone(), dtype: out_dtype, ne })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A source of an op as a kernel would see it: the tensor, the buffer type it is read
/// from, and whether its rows are back to back.
#[derive(Clone, Debug)]
pub struct Operand {
    /// The tensor.
    pub desc: TensorDesc,
    /// Where it is read from.
    pub buft: Buft,
    /// Whether it is stored contiguously (rows back to back, no gaps).
    pub contiguous: bool,
}

/// An op with its sources where they are: what [`crate::buffer::BufferType::supports_op`]
/// and [`crate::backend::Backend::supports_op`] are asked about, and what a backend runs.
#[derive(Clone, Debug)]
pub struct OpDesc {
    /// The op.
    pub op: Op,
    /// The sources, in the op's order (src0 is the weight of a matmul).
    pub srcs: Vec<Operand>,
    /// The result (its name is the node's name).
    pub dst: TensorDesc,
}

impl OpDesc {
    /// The node's name.
    pub fn name(&self) -> &Arc<str> {
        &self.dst.name
    }

    /// Checks the op against its rules: the sources fit [`Op::infer`], and `dst` is
    /// exactly the result they give (type and shape). Every buffer type, backend and the
    /// runner ask this before accepting or running an op, so a `dst` of the wrong shape
    /// is refused everywhere rather than left partly unwritten by one kernel.
    ///
    /// Errors: those of [`Op::infer`], and [`GraphError::Dst`] when `dst` differs.
    pub fn check(&self) -> Result<(), GraphError> {
        // The sources' descriptions without allocating (this runs for every op of
        // every step): the most any op takes, on the stack.
        const MOST: usize = 6;
        let mut descs = [&self.dst; MOST];
        for (d, s) in descs.iter_mut().zip(&self.srcs) {
            *d = &s.desc;
        }
        let want = if self.srcs.len() <= MOST {
            self.op.infer(self.name(), &descs[..self.srcs.len()])?
        } else {
            let all: Vec<&TensorDesc> = self.srcs.iter().map(|s| &s.desc).collect();
            self.op.infer(self.name(), &all)?
        };
        if (want.dtype, want.ne) == (self.dst.dtype, self.dst.ne) {
            return Ok(());
        }
        Err(GraphError::Dst {
            node: self.name().clone(),
            op: self.op.name(),
            expected: (want.dtype, want.ne),
            found: (self.dst.dtype, self.dst.ne),
        })
    }
}

impl fmt::Display for OpDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}(", self.op, self.dst.name)?;
        for (i, s) in self.srcs.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let gaps = if s.contiguous { "" } else { " strided" };
            write!(f, "{sep}{} in {}{gaps}", s.desc, s.buft.name())?;
        }
        write!(f, ") -> {:?}", self.dst.dims())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amx_core::formats::Format;

    fn t(name: &str, dtype: DType, dims: &[usize]) -> TensorDesc {
        TensorDesc::new(name, dtype, dims).unwrap()
    }

    fn infer(op: Op, srcs: &[&TensorDesc]) -> Result<TensorDesc, GraphError> {
        op.infer(&Arc::from("n"), srcs)
    }

    #[test]
    fn matmul_shapes_follow_ggml() {
        let w = t("w", DType::Block(Format::Q4_0), &[256, 64]);
        let x = t("x", DType::F32, &[256, 5]);
        let y = infer(Op::MulMat, &[&w, &x]).unwrap();
        assert_eq!((y.dtype, y.ne), (DType::F32, [64, 5, 1, 1]));
        let bad = t("x", DType::F32, &[128, 5]);
        let e = infer(Op::MulMat, &[&w, &bad]).unwrap_err();
        assert!(matches!(e, GraphError::Shape { ref tensor, .. } if &**tensor == "x"), "{e}");
        let e = infer(Op::MulMat, &[&x, &w]).unwrap_err();
        assert!(matches!(e, GraphError::DType { found: DType::Block(Format::Q4_0), .. }));
        assert!(matches!(infer(Op::MulMat, &[&w]), Err(GraphError::Arity { found: 1, .. })));
    }

    #[test]
    fn expert_and_routing_shapes() {
        let stack = t("exps", DType::Block(Format::Q8_0), &[64, 32, 4]);
        let x = t("x", DType::F32, &[64, 1, 6]);
        let ids = t("ids", DType::I32, &[2, 6]);
        let y = infer(Op::MulMatId, &[&stack, &x, &ids]).unwrap();
        assert_eq!(y.ne, [32, 2, 6, 1]);
        let x3 = t("x", DType::F32, &[64, 3, 6]);
        assert!(infer(Op::MulMatId, &[&stack, &x3, &ids]).is_err());
        let probs = t("p", DType::F32, &[4, 6]);
        let top = infer(Op::TopK { k: 2 }, &[&probs]).unwrap();
        assert_eq!((top.dtype, top.ne), (DType::I32, [2, 6, 1, 1]));
        assert!(infer(Op::TopK { k: 5 }, &[&probs]).is_err());
        let p3 = infer(Op::Reshape { ne: [1, 4, 6, 1] }, &[&probs]).unwrap();
        let w = infer(Op::GetRows, &[&p3, &top]).unwrap();
        assert_eq!(w.ne, [1, 2, 6, 1]);
        assert!(infer(Op::Reshape { ne: [5, 5, 1, 1] }, &[&probs]).is_err());
        assert_eq!(infer(Op::SumRows, &[&probs]).unwrap().ne, [1, 6, 1, 1]);
        assert_eq!(infer(Op::Transpose, &[&probs]).unwrap().ne, [6, 4, 1, 1]);
    }

    #[test]
    fn check_refuses_a_dst_the_sources_do_not_give() {
        let host = crate::buffer::host::host();
        let w = t("w", DType::Block(Format::Q8_0), &[64, 32]);
        let x = t("x", DType::F32, &[64, 5]);
        let srcs =
            [&w, &x].map(|d| Operand { desc: d.clone(), buft: host.clone(), contiguous: true });
        let good =
            OpDesc { op: Op::MulMat, srcs: srcs.to_vec(), dst: t("y", DType::F32, &[32, 5]) };
        assert_eq!(good.check(), Ok(()));
        for (dtype, dims) in
            [(DType::F32, &[32, 10][..]), (DType::F32, &[32]), (DType::I32, &[32, 5])]
        {
            let bad = OpDesc { dst: t("y", dtype, dims), ..good.clone() };
            let e = bad.check().unwrap_err();
            assert!(
                matches!(e, GraphError::Dst { expected: (DType::F32, [32, 5, 1, 1]), .. }),
                "{e}"
            );
            assert!(e.to_string().contains("MUL_MAT y: the result is described as"), "{e}");
        }
        let short = OpDesc { srcs: srcs[..1].to_vec(), ..good };
        assert!(matches!(short.check(), Err(GraphError::Arity { .. })));
    }

    #[test]
    fn broadcast_rules() {
        let a = t("a", DType::F32, &[8, 6]);
        assert!(infer(Op::Mul, &[&a, &t("b", DType::F32, &[8])]).is_ok());
        assert!(infer(Op::Add, &[&a, &t("b", DType::F32, &[1])]).is_ok());
        assert!(infer(Op::Div, &[&a, &t("b", DType::F32, &[1, 6])]).is_ok());
        assert!(infer(Op::Add, &[&a, &t("b", DType::F32, &[3])]).is_err());
        assert!(infer(Op::Add, &[&a, &t("b", DType::I32, &[8])]).is_err());
    }
}
