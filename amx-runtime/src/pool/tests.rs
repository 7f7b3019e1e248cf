//! Unit tests of the pool: errors agree with amx-core's, empty shapes, one small matmul per
//! path against the single-threaded GEMM. The thorough comparisons (every format, many
//! shapes, 1 to 3 threads) are in `tests/pool_matmul.rs`.

use super::*;
use amx_core::pack;

const fn send_sync<T: Send + Sync>() {}
const fn send<T: Send>() {}
const _: () = send_sync::<Pool>();
const _: () = send_sync::<Matmul<'static>>();
const _: () = send::<Part<'static>>();
const _: () = send_sync::<PreparedActivations<'static>>();

fn packed(format: Format, n: usize, k: usize) -> Vec<u8> {
    let raw = amx_bench::gemm_bench::bench_weights(format, 3, n, k).expect("weights");
    let mut out = vec![0u8; pack::packed_size(format, n, k, 1).expect("size")];
    pack::pack(format, n, k, 1, &raw, &mut out).expect("pack");
    out
}

fn single(w: &[u8], format: Format, x: &MatRef<'_>, n: usize, path: Path) -> Vec<f32> {
    let mut y = vec![f32::NAN; x.rows() * n];
    let mut ws = vec![0u8; gemm::workspace_bytes(format, x.rows(), x.cols(), path).expect("ws")];
    let mut ym = MatMut::new(&mut y, x.rows(), n, n).expect("y");
    gemm::gemm(w, format, x, &mut ym, path, &mut ws).expect("gemm");
    y
}

#[test]
fn errors_are_amx_core_errors() {
    let pool = Pool::new(2);
    let (m, n, k) = (4, 32, 64);
    let w = packed(Format::Q8_0, n, k);
    let xv = vec![0.5f32; m * k];
    let x = MatRef::new(&xv, m, k, k).expect("x");
    let mut yv = vec![0f32; m * (n + 1)];
    let mut ws = vec![0u8; 1 << 16];
    for (rows, cols) in [(m, n + 1), (m - 1, n)] {
        let mut y1 = MatMut::new(&mut yv, rows, cols, cols).expect("y");
        let got = pool.matmul(&w, Format::Q8_0, &x, &mut y1);
        let mut y2 = MatMut::new(&mut yv, rows, cols, cols).expect("y");
        let want = gemm::gemm(&w, Format::Q8_0, &x, &mut y2, Path::Auto, &mut ws);
        assert!(got.is_err());
        assert_eq!(got, want.map(|_| Path::Auto), "{rows}x{cols}");
    }
    let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
    let got = pool.matmul(&w, Format::Q4_0, &x, &mut y);
    assert!(matches!(got, Err(GemmError::Weights(_))), "{got:?}");
    let got = pool.matmul(&w[..100], Format::Q8_0, &x, &mut y);
    assert!(matches!(got, Err(GemmError::Weights(_))), "{got:?}");
    // Prepared for the float family, used with quantized weights.
    if Path::Vnni.available() {
        let acts = pool.prepare(Format::BF16, &x, Path::Vnni).expect("prepare");
        let got = pool.matmul_prepared(&acts, &w, Format::Q8_0, &mut y);
        assert_eq!(
            got,
            Err(GemmError::PreparedMismatch { format: Format::Q8_0, prepared_for: Path::Vnni })
        );
    }
}

#[test]
fn zero_rows_is_a_no_op() {
    let pool = Pool::new(2);
    let w = packed(Format::Q4_0, 16, 32);
    let x = MatRef::new(&[], 0, 32, 32).expect("x");
    let mut y = MatMut::new(&mut [], 0, 16, 16).expect("y");
    assert!(pool.matmul(&w, Format::Q4_0, &x, &mut y).is_ok());
    let acts = pool.prepare(Format::Q4_0, &x, Path::Auto).expect("prepare");
    assert!(pool.matmul_prepared(&acts, &w, Format::Q4_0, &mut y).is_ok());
}

#[test]
fn every_path_matches_the_single_threaded_gemm() {
    let pool = Pool::new(3);
    let (m, n, k) = (33, 40, 256);
    for format in [Format::Q4K, Format::BF16] {
        let w = packed(format, n, k);
        let xv: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 19) as f32 / 9.0 - 1.0).collect();
        let x = MatRef::new(&xv, m, k, k).expect("x");
        for path in [Path::Scalar, Path::Vnni, Path::Amx] {
            if !path.available() {
                crate::test_support::skip_path(path);
                continue;
            }
            let want = single(&w, format, &x, n, path);
            let mut got = vec![f32::NAN; m * n];
            let mut y = MatMut::new(&mut got, m, n, n).expect("y");
            assert_eq!(pool.matmul_on(&w, format, &x, &mut y, path), Ok(path));
            assert_eq!(got.map_bits(), want.map_bits(), "{format} {path:?}");
        }
    }
}

#[test]
fn broadcast_reaches_every_worker() {
    let pool = Pool::new(3);
    let seen = Mutex::new(Vec::new());
    pool.broadcast(|w| seen.lock().expect("lock").push(w));
    let mut seen = seen.into_inner().expect("lock");
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2]);
    assert_eq!(pool.threads(), 3);
}

trait Bits {
    fn map_bits(&self) -> Vec<u32>;
}

impl Bits for Vec<f32> {
    fn map_bits(&self) -> Vec<u32> {
        self.iter().map(|v| v.to_bits()).collect()
    }
}
