//! ATTENTION on f32 values: every query against the cache and the step's keys, one head
//! at a time (the oracle of the CPU backend's pooled GEMM form).

use std::sync::Arc;

use bumpalo::Bump;

use crate::error::ExecError;
use crate::fast_math::exp_f32;
use crate::tensor::TensorDesc;

use super::matmul::dot;
use super::{ids_of, index_in};

/// The parameters of [`crate::op::Op::Attention`].
pub(super) struct Attention {
    pub(super) scale: f32,
    pub(super) window: usize,
}

impl Attention {
    /// `v` = q, k, v, k cache, v cache; `ne` = q's, v's and the k cache's shapes.
    #[allow(clippy::too_many_arguments)] // the op's sources and shapes, spelled out
    pub(super) fn apply(
        &self,
        op: &Arc<str>,
        [q, k, vv, kc, vc]: [&[f32]; 5],
        ne: [[usize; 4]; 3],
        pos: &[u8],
        pd: &TensorDesc,
        out: &mut [f32],
        scratch: &Bump,
    ) -> Result<(), ExecError> {
        let [[dk, h, t, _], [dv, hkv, _, _], [_, _, cap, _]] = ne;
        let mut it = ids_of(pos);
        let p0 = index_in(op, pd, it.next().unwrap_or(0), cap + 1)?;
        if ids_of(pos).enumerate().any(|(i, p)| i64::from(p) != (p0 + i) as i64) {
            return Err(ExecError::Sources {
                op: op.clone(),
                what: "positions must be consecutive",
            });
        }
        let scores = scratch.alloc_slice_fill_copy(p0 + t, 0f32);
        let job = AttentionJob { q, k, vv, kc, vc, dims: [dk, dv, h, hkv, t, p0], out, scores };
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected on this CPU just above.
            unsafe { self.heads_avx2(job) };
            return Ok(());
        }
        self.heads(job);
        Ok(())
    }

    /// [`Attention::heads`] compiled for AVX2: the same operations in the same order
    /// (the same bits), eight lanes to a register.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(super) fn heads_avx2(&self, job: AttentionJob<'_>) {
        self.heads(job);
    }

    /// Every query of every head: scores, softmax, the weighted values.
    #[inline(always)]
    pub(super) fn heads(&self, job: AttentionJob<'_>) {
        let AttentionJob { q, k, vv, kc, vc, dims: [dk, dv, h, hkv, t, p0], out, scores } = job;
        let group = h / hkv;
        out.fill(0.0);
        for ti in 0..t {
            let p = p0 + ti;
            let lo = if self.window > 0 { (p + 1).saturating_sub(self.window) } else { 0 };
            for hi in 0..h {
                let g = hi / group;
                let qv = &q[(ti * h + hi) * dk..][..dk];
                let key = |j: usize| {
                    if j >= p0 {
                        &k[((j - p0) * hkv + g) * dk..][..dk]
                    } else {
                        &kc[(j * hkv + g) * dk..][..dk]
                    }
                };
                let s = &mut scores[..p + 1 - lo];
                for (j, sc) in (lo..=p).zip(s.iter_mut()) {
                    *sc = self.scale * dot(qv, key(j));
                }
                let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for sc in s.iter_mut() {
                    *sc = exp_f32(*sc - max);
                }
                let sum: f32 = s.iter().sum();
                let o = &mut out[(ti * h + hi) * dv..][..dv];
                for (j, &w) in (lo..=p).zip(s.iter()) {
                    let w = w / sum;
                    let val = if j >= p0 {
                        &vv[((j - p0) * hkv + g) * dv..][..dv]
                    } else {
                        &vc[(j * hkv + g) * dv..][..dv]
                    };
                    for (o, &x) in o.iter_mut().zip(val) {
                        *o += w * x;
                    }
                }
            }
        }
    }
}

/// The operands of one [`crate::op::Op::Attention`] (checked), for [`Attention::heads`].
pub(super) struct AttentionJob<'a> {
    pub(super) q: &'a [f32],
    pub(super) k: &'a [f32],
    pub(super) vv: &'a [f32],
    pub(super) kc: &'a [f32],
    pub(super) vc: &'a [f32],
    /// Dk, Dv, H, Hkv, T, the first position.
    pub(super) dims: [usize; 6],
    pub(super) out: &'a mut [f32],
    pub(super) scores: &'a mut [f32],
}
