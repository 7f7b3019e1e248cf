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
    let raw = amx_testdata::weights::bench_weights(format, 3, n, k).expect("weights");
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

/// K = 0 activations are refused with amx-core's `ZeroK` by every preparation entry point
/// (they used to panic: `chunks_exact_mut(0)` on the int8 path, a division by zero on the
/// AMX path), on every path and with one or several workers; a matmul names the width.
#[test]
fn zero_k_is_an_error_not_a_panic() {
    let w = packed(Format::Q4_0, 16, 32);
    for threads in [1, 3] {
        let pool = Pool::new(threads);
        for m in [0, 1, 5, 40] {
            let x = MatRef::new(&[], m, 0, 0).expect("x");
            for path in [Path::Auto, Path::Scalar, Path::Vnni, Path::Amx] {
                if !path.available() {
                    crate::test_support::skip_path(path);
                    continue;
                }
                let what = format!("m={m} {path:?} threads={threads}");
                let got = PreparedActivations::prepare(Format::Q4_0, &x, path).map(|_| ());
                assert_eq!(got, Err(GemmError::ZeroK), "{what}");
                let got = pool.prepare(Format::Q4_0, &x, path).map(|_| ());
                assert_eq!(got, Err(GemmError::ZeroK), "{what}");
                let got = pool.prepare_in(vec![7; 99], Format::Q4_K, &x, path).map(|_| ());
                assert_eq!(got, Err(GemmError::ZeroK), "{what}");
            }
            let mut yv = vec![0f32; m * 16];
            let mut y = MatMut::new(&mut yv, m, 16, 16).expect("y");
            let got = pool.matmul(&w, Format::Q4_0, &x, &mut y);
            assert_eq!(got, Err(GemmError::ActivationWidth { x_cols: 0, k: 32 }), "m={m}");
        }
    }
}

/// Activations of the wrong width get amx-core's error naming them and both widths.
#[test]
fn wrong_width_names_the_activations() {
    let pool = Pool::new(2);
    let (m, n, k) = (3, 16, 64);
    let w = packed(Format::Q8_0, n, k);
    let xv = vec![0.5f32; m * 32];
    let x = MatRef::new(&xv, m, 32, 32).expect("x");
    let mut yv = vec![0f32; m * n];
    let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
    let want = Err(GemmError::ActivationWidth { x_cols: 32, k });
    assert_eq!(pool.matmul(&w, Format::Q8_0, &x, &mut y), want);
    let mut ws = vec![0u8; 1 << 14];
    assert_eq!(
        gemm::gemm(&w, Format::Q8_0, &x, &mut y, Path::Auto, &mut ws).map(|_| Path::Auto),
        want
    );
    let acts = pool.prepare(Format::Q8_0, &x, Path::Auto).expect("prepare");
    assert_eq!(pool.matmul_prepared(&acts, &w, Format::Q8_0, &mut y).map(|_| Path::Auto), want);
}

#[test]
fn every_path_matches_the_single_threaded_gemm() {
    let pool = Pool::new(3);
    let (m, n, k) = (33, 40, 256);
    for format in [Format::Q4_K, Format::BF16] {
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

/// Runs `f` on a thread of its own and returns its result, failing the test (instead of
/// hanging it) when `f` does not finish in a minute: a deadlock is a failure here.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(v) => v,
        Err(e) => {
            panic!("no answer within a minute ({e}): deadlocked, or the test thread panicked")
        }
    }
}

/// A matmul on a pool from inside that pool's `broadcast` used to deadlock (the pool
/// runs one job at a time and the job waited for it): on every share, the calling
/// thread's and the workers', it is now `NestedPoolCall`; the pool works afterwards, and
/// another pool may be called from a job.
#[test]
fn a_call_from_inside_a_job_of_the_same_pool_is_an_error() {
    for threads in [1, 3] {
        let outcomes = within_a_minute(move || {
            let pool = Pool::new(threads);
            let other = Pool::new(2);
            let (m, n, k) = (4, 32, 64);
            let w = packed(Format::Q8_0, n, k);
            let xv = vec![0.5f32; m * k];
            let x = MatRef::new(&xv, m, k, k).expect("x");
            let got = Mutex::new(Vec::new());
            pool.broadcast(|share| {
                let mut yv = vec![0f32; m * n];
                let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
                let same = pool.matmul(&w, Format::Q8_0, &x, &mut y).map(|_| ());
                let acts = PreparedActivations::prepare(Format::Q8_0, &x, Path::Auto);
                let prepared = pool.matmul_prepared(&acts.expect("acts"), &w, Format::Q8_0, &mut y);
                let nested = pool.try_broadcast(|_| {});
                let another = other.matmul(&w, Format::Q8_0, &x, &mut y).map(|_| ());
                let mut all = got.lock().expect("lock");
                all.push((share, same, prepared.map(|_| ()), nested, another));
            });
            // The nested broadcast that cannot return an error panics, naming the cause.
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.broadcast(|_| pool.broadcast(|_| {}));
            }));
            let payload = caught.expect_err("a nested broadcast panics");
            let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
            // Afterwards the pool takes calls again.
            let mut yv = vec![0f32; m * n];
            let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
            let after = pool.matmul(&w, Format::Q8_0, &x, &mut y).map(|_| ());
            (got.into_inner().expect("lock"), message, after)
        });
        let (mut got, message, after) = outcomes;
        got.sort_by_key(|g| g.0);
        assert_eq!(got.len(), threads);
        let refused = Err(GemmError::NestedPoolCall { threads });
        for (share, same, prepared, nested, another) in got {
            assert_eq!((same, prepared, nested), (refused, refused, refused), "share {share}");
            assert_eq!(another, Ok(()), "share {share}");
        }
        assert!(message.contains("called from inside one of its own jobs"), "{message}");
        assert_eq!(after, Ok(()));
        let text = GemmError::NestedPoolCall { threads }.to_string();
        assert!(text.contains(&format!("the {threads}-thread pool")), "{text}");
    }
}

/// `try_new(usize::MAX)` used to panic (capacity overflow) and `try_new(1 << 40)` to
/// abort (allocation failure) although it returns `io::Result`: an absurd count is now
/// an `InvalidInput` error naming it, before anything is allocated.
#[test]
fn absurd_thread_counts_are_errors() {
    for threads in [usize::MAX, 1 << 40, Pool::MAX_THREADS + 1] {
        let e = Pool::try_new(threads).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{threads}: {e}");
        assert!(e.to_string().contains(&format!("a pool of {threads} threads")), "{e}");
        assert!(e.to_string().contains("at most 1024"), "{e}");
    }
    let caught = panic::catch_unwind(|| Pool::new(usize::MAX));
    let payload = caught.expect_err("Pool::new panics");
    let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains(&format!("a pool of {} threads", usize::MAX)), "{message}");
    assert_eq!(Pool::try_new(0).expect("one thread").threads(), 1);
}

trait Bits {
    fn map_bits(&self) -> Vec<u32>;
}

impl Bits for Vec<f32> {
    fn map_bits(&self) -> Vec<u32> {
        self.iter().map(|v| v.to_bits()).collect()
    }
}
