//! MUL_MAT and MUL_MAT_ID on f32 values: one dot product per result, in a fixed order.

use std::sync::Arc;

use crate::error::ExecError;
use crate::tensor::TensorDesc;

use super::{ids_of, index_in};

/// `sum a[i] * b[i]` in eight interleaved f32 partial sums (lane `i % 8`), added
/// pairwise at the end, then the tail: a fixed order (the same inputs give the same
/// bits) that the compiler turns into vector code, where a single running sum would
/// wait on each addition.
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (at, bt) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    let sum = ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7));
    at.iter().zip(bt).fold(sum, |s, (x, y)| s + x * y)
}

pub(super) fn mul_mat(a: &[f32], an: [usize; 4], b: &[f32], bn: [usize; 4], out: &mut [f32]) {
    let (k, n, m) = (an[0], an[1], bn[1]);
    let (r2, r3) = (bn[2] / an[2], bn[3] / an[3]);
    let mut o = out.iter_mut();
    for i3 in 0..bn[3] {
        for i2 in 0..bn[2] {
            let a_mat = &a[((i3 / r3) * an[2] + i2 / r2) * n * k..][..n * k];
            let b_mat = &b[(i3 * bn[2] + i2) * m * k..][..m * k];
            for x in b_mat.chunks_exact(k) {
                for (w, o) in a_mat.chunks_exact(k).zip(&mut o) {
                    *o = dot(w, x);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)] // the op's sources and shapes, spelled out
pub(super) fn mul_mat_id(
    op: &Arc<str>,
    a: &[f32],
    ad: &TensorDesc,
    b: &[f32],
    bn: [usize; 4],
    ids: &[u8],
    idd: &TensorDesc,
    out: &mut [f32],
) -> Result<(), ExecError> {
    let [k, n, experts, _] = ad.ne;
    let used = idd.ne[0];
    for (j, (id, o)) in ids_of(ids).zip(out.chunks_exact_mut(n)).enumerate() {
        let (t, u) = (j / used, j % used);
        let e = index_in(op, idd, id, experts)?;
        let x = &b[(t * bn[1] + u % bn[1]) * k..][..k];
        for (w, o) in a[e * n * k..][..n * k].chunks_exact(k).zip(o) {
            *o = dot(w, x);
        }
    }
    Ok(())
}
