//! Integer sub-block scales: how the fused VNNI kernel runs the formats whose 16-value
//! sub-blocks carry small integer scales under one f16 scale per block (Q2_K, Q3_K).
//!
//! With float scales (every other format) each sub-block costs each activation row a
//! conversion, a multiply and two FMAs; at 16 values per sub-block that is as many
//! instructions as the sub-block's `vpdpbusd`s, and the group's 16 float scales and
//! biases cost more than its decoding at M = 1. Here the kernel folds the integer scales
//! in int32 instead, per pair of sub-blocks (32 values, one activation block of scale
//! `dx`), with `S_s` the exact int32 sum of sub-block `s`'s products and `I_s` the sum of
//! its 16 int8 activations (the Q8 record's i16 sums):
//!
//! ```text
//! T = a[2p] * S[2p] + a[2p+1] * S[2p+1] + c[2p] * I[2p] + c[2p+1] * I[2p+1]   (int32)
//! acc = fma(alpha * f32(T), dx, acc)
//! acc = fma(bias[2p], dx * I[2p], acc);  acc = fma(bias[2p+1], dx * I[2p+1], acc)
//! ```
//!
//! with `a`, `c` i16 and `alpha` f32 per row and block, and for a format with a float bias
//! per sub-block (Q2_K's `-(dmin * m)`) the two bias steps, with the Q8 record's f32 `dx *
//! sum16` ([`IntScales`]). Every int32 above is exact (the formats' bounds keep `|S|`
//! below 2^15 and every sum below 2^31) and its conversion to f32 too (below 2^24, or a
//! multiple of a power of two that keeps it within 24 significant bits), so the sequence
//! is a fixed function of the weights and the activations' bytes, whatever the split of
//! the rows. The bias stays in floats because an integer `B = sum m * I` with its own
//! f32 factor costs two more multiplier-port instructions per row and block, which made
//! the kernel slower at 8 rows than the float scales it replaces.

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::{__m512, __m512i, _mm512_setzero_ps, _mm512_setzero_si512};

use super::spec::MAX_SUB_BLOCKS;

/// Which integer terms a format's sequence has (the kernel skips the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scales {
    /// Float scale and bias per sub-block (`kernels::vnni`'s sequence).
    Float,
    /// Integer scales per sub-block, the sequence of this module.
    Int {
        /// Whether `c` is used (activation sums into `T`).
        c: bool,
        /// Whether the float `bias` steps are taken.
        bias: bool,
        /// Whether `Codec::sub_block_folded` decodes `a * u` as bytes (every `a * u`
        /// below 256), so that one `vpdpbusd` chain gives `a[2p] * S[2p] + a[2p+1] *
        /// S[2p+1]` directly: the kernel does so for blocks of [`FOLD_MIN_ROWS`] rows or
        /// more, where the decoding is shared by enough rows to save on the rows' work.
        fold: bool,
    },
}

/// The fewest activation rows a block must have for the kernel to decode a folding
/// format's values with their scales ([`Scales::Int`]'s `fold`): below it the extra
/// decoding costs more than the two multiplies per row it saves. Either way gives the
/// same int32 `T`, so the same bits.
pub(crate) const FOLD_MIN_ROWS: usize = 4;

/// The integer-scale parameters of one row of one block, in scalar form: the definition
/// [`IntAffine`] matches bit for bit (a format's `QuantizedSpec::int_scales`).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct IntScales {
    /// The f32 factor of `T`.
    pub alpha: f32,
    /// Multiplier of each sub-block's product sum `S_s`.
    pub a: [i16; MAX_SUB_BLOCKS],
    /// Multiplier of each sub-block's activation sum `I_s` into `T`.
    pub c: [i16; MAX_SUB_BLOCKS],
    /// The float bias of each sub-block, if the format has the bias steps.
    pub bias: Option<[f32; MAX_SUB_BLOCKS]>,
}

#[cfg(test)]
impl IntScales {
    /// `acc` after pair `p` of sub-blocks, from the product sums `sa`, `sb`, the
    /// activation sums `ia`, `ib`, the block's `dx` and the record's `dx * sum16` pair
    /// `dxs` (the kernel's order).
    pub(crate) fn pair(
        &self,
        p: usize,
        acc: f32,
        sums: [(i32, i32); 2],
        dx: f32,
        dxs: [f32; 2],
    ) -> f32 {
        let [(sa, sb), (ia, ib)] = sums;
        let (s0, s1) = (2 * p, 2 * p + 1);
        let w = |m: &[i16; MAX_SUB_BLOCKS], s: usize| i32::from(m[s]);
        let t = (w(&self.a, s0) * sa + w(&self.a, s1) * sb)
            + (w(&self.c, s0) * ia + w(&self.c, s1) * ib);
        let mut acc = (self.alpha * t as f32).mul_add(dx, acc);
        if let Some(bias) = self.bias {
            acc = bias[s0].mul_add(dxs[0], acc);
            acc = bias[s1].mul_add(dxs[1], acc);
        }
        acc
    }
}

/// The integer-scale parameters of one group for the 16 rows of a panel, as the fused
/// kernel takes them: `a[s]` holds `a` of sub-block `s` in the low i16 of each row's dword
/// (the high i16 zero, so that `vpmaddwd` against an int32 `S` with `|S| < 2^15` is
/// `a * S`); `c[p]` holds the pair `(c[2p], c[2p+1])` as the two i16 of each row's
/// dword, against the activations' i16 pair `(I[2p], I[2p+1])`.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct IntAffine {
    /// `alpha` of each row.
    pub alpha: __m512,
    /// `a` per sub-block.
    pub a: [__m512i; MAX_SUB_BLOCKS],
    /// `c` per pair of sub-blocks.
    pub c: [__m512i; MAX_SUB_BLOCKS / 2],
    /// The float bias per sub-block.
    pub bias: [__m512; MAX_SUB_BLOCKS],
}

#[cfg(target_arch = "x86_64")]
impl IntAffine {
    /// All zeros.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn zero() -> Self {
        let z = _mm512_setzero_si512();
        Self {
            alpha: _mm512_setzero_ps(),
            a: [z; MAX_SUB_BLOCKS],
            c: [z; MAX_SUB_BLOCKS / 2],
            bias: [_mm512_setzero_ps(); MAX_SUB_BLOCKS],
        }
    }
}
