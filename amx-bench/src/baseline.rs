//! The dequantize-then-f32-GEMM baseline: what an engine without quantized kernels does on
//! every matmul. The weights stay in their ggml format (that is why they were quantized);
//! each call expands them to f32 with amx-core's reference dequantizer and runs bluss's
//! `matrixmultiply::sgemm`. Threads split the weight rows (the output columns): each
//! dequantizes its own rows into its own buffer and writes its own columns of `Y`.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use amx_core::formats::{self, Format};
use amx_core::gemm::GemmError;
use amx_runtime::pool::Pool;

use crate::gemm_bench::BenchError;

/// The baseline's name in tables and JSON.
pub const NAME: &str = "deq-sgemm";

/// One weight matrix (`n` rows of `k` values, ggml bytes) ready for the baseline, with an
/// f32 buffer per share of the pool it was made for.
pub struct DequantSgemm<'w> {
    format: Format,
    src: &'w [u8],
    n: usize,
    k: usize,
    row_bytes: usize,
    split: Vec<Range<usize>>,
    buffers: Vec<Mutex<Vec<f32>>>,
}

/// `Y`'s address, handed to the shares; each writes only its own columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the pointer is only dereferenced by `sgemm` on disjoint column ranges, while
// `run` holds the unique borrow of `Y`.
unsafe impl Sync for OutPtr {}
// SAFETY: moving the pointer to a share's thread is sound for the same reason: it is
// dereferenced only on that share's disjoint columns while `run` holds `&mut Y`.
unsafe impl Send for OutPtr {}

impl<'w> DequantSgemm<'w> {
    /// The baseline for `src` (`n` rows of `k` values of `format`) split over `shares`
    /// threads (at least one).
    ///
    /// Errors: [`BenchError::Format`] when `k` is not whole blocks,
    /// [`BenchError::Gemm`] ([`GemmError::ShapeMismatch`]) when `src` is not `n` rows.
    pub fn new(
        format: Format,
        src: &'w [u8],
        n: usize,
        k: usize,
        shares: usize,
    ) -> Result<Self, BenchError> {
        let row_bytes = format.row_bytes(k)?;
        if src.len() != n * row_bytes {
            return Err(GemmError::ShapeMismatch {
                dim: "n",
                expected: n,
                found: src.len() / row_bytes.max(1),
            }
            .into());
        }
        let shares = shares.clamp(1, n.max(1));
        let per = n.div_ceil(shares);
        let split: Vec<_> = (0..shares).map(|s| (s * per).min(n)..((s + 1) * per).min(n)).collect();
        let buffers = split.iter().map(|r| Mutex::new(vec![0f32; r.len() * k])).collect();
        Ok(DequantSgemm { format, src, n, k, row_bytes, split, buffers })
    }

    /// `Y (m x n) = X (m x k) * W^T`, both row-major and contiguous, on `pool` (whose
    /// thread count should be the number of shares this baseline was made for; extra
    /// shares run one after another).
    ///
    /// Errors: [`BenchError::Gemm`] ([`GemmError::MatrixTooShort`]) when `x` or `y` is
    /// shorter than `m` rows.
    pub fn run(&self, x: &[f32], m: usize, y: &mut [f32], pool: &Pool) -> Result<(), BenchError> {
        let (n, k) = (self.n, self.k);
        for (buf, rows, cols) in [(x.len(), m, k), (y.len(), m, n)] {
            if buf < rows * cols {
                return Err(GemmError::MatrixTooShort {
                    rows,
                    cols,
                    stride: cols,
                    needed: rows * cols,
                    actual: buf,
                }
                .into());
            }
        }
        let out = OutPtr(y.as_mut_ptr());
        let failure = Mutex::new(None);
        let threads = pool.threads();
        pool.broadcast(|share| {
            for s in (share..self.split.len()).step_by(threads) {
                if let Err(e) = self.run_share(s, x, m, out) {
                    *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                }
            }
        });
        match failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Share `s`: dequantize its rows, then its columns of `Y`.
    fn run_share(&self, s: usize, x: &[f32], m: usize, out: OutPtr) -> Result<(), BenchError> {
        let rows = self.split[s].clone();
        let mut w = self.buffers[s].lock().unwrap_or_else(PoisonError::into_inner);
        let src = &self.src[rows.start * self.row_bytes..rows.end * self.row_bytes];
        formats::dequantize(self.format, src, &mut w)?;
        let (n, k) = (self.n as isize, self.k as isize);
        // SAFETY: A = X is m x k row-major inside `x` (length checked in `run`); B = W^T
        // reads `w`, rows.len() x k row-major, as k x rows.len() (row stride 1, column
        // stride k); C is Y's columns rows.start..rows.end, m rows at stride n inside the
        // buffer behind `out` (length checked in `run`), written by this share only.
        unsafe {
            matrixmultiply::sgemm(
                m,
                self.k,
                rows.len(),
                1.0,
                x.as_ptr(),
                k,
                1,
                w.as_ptr(),
                1,
                k,
                0.0,
                out.0.add(rows.start),
                n,
                1,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amx_testdata::weights::bench_weights;

    #[test]
    fn matches_a_plain_f32_product_on_every_thread_count() {
        let (format, m, n, k) = (Format::Q4_0, 3, 37, 64);
        let src = bench_weights(format, 4, n, k).expect("weights");
        let mut w = vec![0f32; n * k];
        formats::dequantize(format, &src, &mut w).expect("dequantize");
        let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 / 8.0 - 0.7).collect();
        let want: Vec<f32> =
            (0..m * n).map(|i| (0..k).map(|l| x[i / n * k + l] * w[i % n * k + l]).sum()).collect();
        for threads in [1, 2, 3] {
            let pool = Pool::new(threads);
            let base = DequantSgemm::new(format, &src, n, k, threads).expect("baseline");
            let mut y = vec![f32::NAN; m * n];
            base.run(&x, m, &mut y, &pool).expect("run");
            for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{threads} threads, y[{i}]");
            }
        }
    }

    #[test]
    fn short_buffers_are_errors() {
        let src = bench_weights(Format::Q8_0, 1, 4, 32).expect("weights");
        assert!(DequantSgemm::new(Format::Q8_0, &src[1..], 4, 32, 1).is_err());
        assert!(DequantSgemm::new(Format::Q8_0, &src, 4, 33, 1).is_err());
        let base = DequantSgemm::new(Format::Q8_0, &src, 4, 32, 1).expect("baseline");
        let pool = Pool::new(1);
        let mut y = vec![0f32; 7];
        assert!(base.run(&[0.0; 64], 2, &mut y, &pool).is_err());
        let mut y = vec![0f32; 8];
        assert!(base.run(&[0.0; 63], 2, &mut y, &pool).is_err());
        assert!(base.run(&[0.0; 64], 2, &mut y, &pool).is_ok());
    }
}
