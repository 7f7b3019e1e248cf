//! Unit tests of the pool: errors agree with amx-core's, empty shapes, one small matmul per
//! path against the single-threaded GEMM. The thorough comparisons (every format, many
//! shapes, 1 to 3 threads) are in `tests/pool_matmul.rs`.

use super::*;
use amx_core::pack;
use std::panic::{self, AssertUnwindSafe};

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

/// Weights of `format` packed as a stack of `matrices` `n x k` matrices.
fn stacked(format: Format, n: usize, k: usize, matrices: usize) -> Vec<u8> {
    let raw = amx_testdata::weights::bench_weights(format, 5, n * matrices, k).expect("weights");
    let mut out = vec![0u8; pack::packed_size(format, n, k, matrices).expect("size")];
    pack::pack(format, n, k, matrices, &raw, &mut out).expect("pack");
    out
}

fn activations(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7 + seed * 13) % 23) as f32 / 8.0 - 1.4).collect()
}

/// Pools of 1, 2 and 3 threads that split every job (threshold 0) and a 2-thread pool
/// with the default threshold: every call must give the same bits on each.
fn pools() -> Vec<Pool> {
    let mut all: Vec<Pool> = (1..=3).map(|t| Pool::new(t).with_min_share_macs(0)).collect();
    all.push(Pool::new(2));
    all
}

fn paths() -> Vec<Path> {
    let all = [Path::Amx, Path::Vnni, Path::Scalar];
    let (on, off): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.available());
    off.into_iter().for_each(crate::test_support::skip_path);
    on
}

/// `linear` takes M from the lengths and gives `gemm::gemm`'s bits on the path it
/// reports, on every thread count and threshold.
#[test]
fn linear_matches_the_single_threaded_gemm() {
    let pools = pools();
    let k = 256;
    for (format, n) in [(Format::Q4_1, 48), (Format::Q8_0, 40), (Format::BF16, 24)] {
        let w = packed(format, n, k);
        let wr = pack::PackedRef::parse(&w).expect("parse");
        for m in [1, 5, 33] {
            let xv = activations(m * k, n);
            let x = MatRef::new(&xv, m, k, k).expect("x");
            for pool in &pools {
                let mut got = vec![f32::NAN; m * n];
                let path = pool.linear(&wr, &xv, &mut got).expect("linear");
                let want = single(&w, format, &x, n, path);
                let what = format!("{format} m={m} t={}", pool.threads());
                assert_eq!(got.map_bits(), want.map_bits(), "{what}");
            }
        }
    }
}

/// `linear_many` prepares X once and gives each output `gemm::gemm`'s bits on its path,
/// for weights of different N and formats of one family, on every path and pool; more
/// outputs than one job holds take one more job.
#[test]
fn linear_many_matches_separate_matmuls() {
    let pools = pools();
    let k = 256;
    let specs = [(Format::Q4_K, 32), (Format::Q6_K, 80), (Format::Q4_1, 16)];
    let ws: Vec<Vec<u8>> = specs.iter().map(|&(f, n)| packed(f, n, k)).collect();
    let refs: Vec<pack::PackedRef<'_>> =
        ws.iter().map(|w| pack::PackedRef::parse(w).expect("parse")).collect();
    for m in [1, 7, 40] {
        let xv = activations(m * k, m);
        let x = MatRef::new(&xv, m, k, k).expect("x");
        for path in paths() {
            for pool in &pools {
                let mut ys: Vec<Vec<f32>> =
                    specs.iter().map(|&(_, n)| vec![f32::NAN; m * n]).collect();
                let mut outs: Vec<(&pack::PackedRef<'_>, &mut [f32])> =
                    refs.iter().zip(ys.iter_mut()).map(|(w, y)| (w, &mut y[..])).collect();
                assert_eq!(pool.linear_many_on(&xv, &mut outs, path), Ok(path));
                for (i, (&(f, n), got)) in specs.iter().zip(&ys).enumerate() {
                    let want = single(&ws[i], f, &x, n, path);
                    let what = format!("{f} m={m} {path:?} t={}", pool.threads());
                    assert_eq!(got.map_bits(), want.map_bits(), "{what}");
                }
            }
        }
    }
    // 18 outputs: two jobs, the second on the activations the first prepared.
    let pool = Pool::new(2).with_min_share_macs(0);
    let (m, n) = (3, 16);
    let xv = activations(m * k, 1);
    let x = MatRef::new(&xv, m, k, k).expect("x");
    let w = packed(Format::Q8_0, n, k);
    let wr = pack::PackedRef::parse(&w).expect("parse");
    let mut ys = vec![vec![f32::NAN; m * n]; LINEAR_MANY_PER_JOB + 2];
    let mut outs: Vec<_> = ys.iter_mut().map(|y| (&wr, &mut y[..])).collect();
    let before = pool.counters().jobs;
    let path = pool.linear_many(&xv, &mut outs).expect("many");
    assert_eq!(pool.counters().jobs - before, 2);
    let want = single(&w, Format::Q8_0, &x, n, path);
    for y in &ys {
        assert_eq!(y.map_bits(), want.map_bits());
    }
    assert_eq!(pool.linear_many(&xv, &mut []), Ok(Path::Auto), "no output: nothing to do");
}

/// Lengths that fit no M, stacks, weights that cannot share X: errors naming the numbers,
/// before anything is written.
#[test]
fn linear_errors_name_the_lengths_and_the_weight() {
    let pool = Pool::new(2);
    let k = 64;
    let (w16, w32) = (packed(Format::Q8_0, 16, k), packed(Format::Q8_0, 32, k));
    let (a, b) =
        (pack::PackedRef::parse(&w16).expect("a"), pack::PackedRef::parse(&w32).expect("b"));
    let x = vec![0.5f32; 3 * k];
    let mut y = vec![0f32; 3 * 16];
    let got = pool.linear(&a, &x[..100], &mut y);
    let want = GemmError::Lengths { index: 0, x_len: 100, k, y_len: 48, y_row: 16 };
    assert_eq!(got, Err(want));
    assert!(want.to_string().contains("x has 100 values and output 0 has 48"), "{want}");
    let got = pool.linear(&a, &x, &mut y[..47]);
    assert_eq!(got, Err(GemmError::Lengths { index: 0, x_len: 192, k, y_len: 47, y_row: 16 }));
    // Output 1 is 3 x 16 although weight 1 has N = 32.
    let (mut y0, mut y1) = (vec![0f32; 48], vec![7f32; 48]);
    let got = pool.linear_many(&x, &mut [(&a, &mut y0), (&b, &mut y1)]);
    assert_eq!(got, Err(GemmError::Lengths { index: 1, x_len: 192, k, y_len: 48, y_row: 32 }));
    assert!(y1.iter().all(|&v| v == 7.0), "nothing written");
    // Weight 1 has another K.
    let w128 = packed(Format::Q8_0, 16, 128);
    let c = pack::PackedRef::parse(&w128).expect("c");
    let got = pool.linear_many(&x, &mut [(&a, &mut y0), (&c, &mut y1)]);
    let Err(e @ GemmError::SharedActivations { index: 1, k: 128, first_k: 64, matrices: 1, .. }) =
        got
    else {
        panic!("{got:?}");
    };
    assert!(e.to_string().contains("weight 1 (1 matrix(es) of Q8_0, k = 128)"), "{e}");
    // A stack: as weight 0 (also through `linear`), and as weight 1.
    let stack = stacked(Format::Q8_0, 16, k, 3);
    let s = pack::PackedRef::parse(&stack).expect("stack");
    assert_eq!(pool.linear(&s, &x, &mut y), Err(GemmError::StackedWeights { matrices: 3 }));
    let got = pool.linear_many(&x, &mut [(&a, &mut y0), (&s, &mut y1)]);
    assert!(matches!(got, Err(GemmError::SharedActivations { index: 1, matrices: 3, .. })));
    // On the VNNI path quantized and float weights take different activations.
    if Path::Vnni.available() {
        let wf = packed(Format::BF16, 16, k);
        let f = pack::PackedRef::parse(&wf).expect("f");
        let got = pool.linear_many_on(&x, &mut [(&a, &mut y0), (&f, &mut y1)], Path::Vnni);
        let want = GemmError::SharedActivations {
            index: 1,
            format: Format::BF16,
            k,
            matrices: 1,
            first_format: Format::Q8_0,
            first_k: k,
            path: Path::Vnni,
        };
        assert_eq!(got, Err(want));
    }
}

/// The reference of `Pool::moe`: amx-core's one-thread grouped call on the same path.
fn grouped_reference(
    w: &[u8],
    format: Format,
    x: &MatRef<'_>,
    ids: &[u32],
    top_k: usize,
    n: usize,
) -> Vec<f32> {
    let path = if tile_state::amx().is_some() {
        Path::Auto
    } else {
        tile_state::resolve_path(format, 0, Path::Auto).expect("path")
    };
    let rows = x.rows() * top_k;
    let l = *pack::PackedRef::parse(w).expect("parse").layout();
    let shape =
        amx_core::moe::MoeShape { experts: l.matrices(), n, k: x.cols(), tokens: x.rows(), top_k };
    let mut ws =
        vec![0u8; amx_core::moe::grouped_workspace_bytes(format, &shape, path).expect("ws")];
    let mut y = vec![f32::NAN; rows * n];
    let mut ym = MatMut::new(&mut y, rows, n, n).expect("y");
    amx_core::moe::grouped_gemm(w, format, x, (ids, top_k), &mut ym, path, &mut ws)
        .expect("grouped");
    y
}

/// `moe` gives the one-thread grouped call's bits on every pool, for a decode step (one
/// token), a few tokens and enough tokens for busy experts to take the AMX path.
#[test]
fn moe_matches_the_single_threaded_grouped_call() {
    let pools = pools();
    let (experts, n, k, top_k) = (6, 48, 128, 2);
    for format in [Format::Q4_1, Format::Q4_K, Format::BF16] {
        let k = if format == Format::Q4_K { 256 } else { k };
        let w = stacked(format, n, k, experts);
        let wr = pack::PackedRef::parse(&w).expect("parse");
        for tokens in [1, 5, 70] {
            let xv = activations(tokens * k, tokens);
            let x = MatRef::new(&xv, tokens, k, k).expect("x");
            // Expert 0 busy, the others spread; every id below E.
            let ids: Vec<u32> = (0..tokens * top_k)
                .map(|i| if i % 2 == 0 { 0 } else { (i % experts) as u32 })
                .collect();
            let want = grouped_reference(&w, format, &x, &ids, top_k, n);
            for pool in &pools {
                let mut got = vec![f32::NAN; tokens * top_k * n];
                pool.moe(&wr, &xv, &ids, top_k, &mut got).expect("moe");
                let what = format!("{format} T={tokens} t={}", pool.threads());
                assert_eq!(got.map_bits(), want.map_bits(), "{what}");
            }
        }
    }
}

#[test]
fn moe_errors_name_the_numbers() {
    let pool = Pool::new(2);
    let (experts, n, k, top_k) = (3, 16, 64, 2);
    let w = stacked(Format::Q8_0, n, k, experts);
    let wr = pack::PackedRef::parse(&w).expect("parse");
    let x = vec![0.5f32; 2 * k];
    let mut y = vec![0f32; 2 * top_k * n];
    let got = pool.moe(&wr, &x[..k + 1], &[0, 1], top_k, &mut y);
    let lengths = |x_len, y_len| GemmError::Lengths { index: 0, x_len, k, y_len, y_row: 32 };
    assert_eq!(got, Err(lengths(k + 1, 64)));
    let got = pool.moe(&wr, &x, &[0, 1, 2], top_k, &mut y);
    assert_eq!(got, Err(GemmError::ShapeMismatch { dim: "ids", expected: 4, found: 3 }));
    let got = pool.moe(&wr, &x, &[0, 1, 2, 0], top_k, &mut y[..60]);
    assert_eq!(got, Err(lengths(128, 60)));
    let got = pool.moe(&wr, &x, &[0, 1, 3, 0], top_k, &mut y);
    assert_eq!(got, Err(GemmError::ExpertOutOfRange { index: 2, id: 3, experts }));
    assert!(pool.moe(&wr, &[], &[], top_k, &mut []).is_ok(), "no token: nothing to do");
    // The pool takes calls after every error.
    assert!(pool.moe(&wr, &x, &[0, 1, 2, 0], top_k, &mut y).is_ok());
}

/// A job split in two: published to the worker, which took its part unless it started
/// too late (then the calling thread did all of it).
fn split_job((jobs, on_workers, worker_shares): (u64, u64, u64)) {
    assert_eq!((jobs, on_workers), (1, 1));
    assert!(worker_shares <= 1, "{worker_shares} worker shares");
}

/// A job below the threshold runs on the calling thread only: no worker is woken, no
/// share runs on a worker; above it (or with threshold 0) the job is published to the
/// workers. The output is the same bits either way.
#[test]
fn jobs_below_the_threshold_wake_no_worker() {
    let pool = Pool::new(2);
    assert_eq!(pool.min_share_macs(), DEFAULT_MIN_SHARE_MACS);
    let k = 576;
    let small = packed(Format::Q4_1, 192, k);
    let big = packed(Format::Q4_1, 1536, k);
    let (s, b) =
        (pack::PackedRef::parse(&small).expect("s"), pack::PackedRef::parse(&big).expect("b"));
    let x = activations(k, 3);
    let (mut ys, mut yb) = (vec![0f32; 192], vec![0f32; 1536]);
    let delta = |f: &mut dyn FnMut()| {
        let before = pool.counters();
        f();
        let after = pool.counters();
        (
            after.jobs - before.jobs,
            after.jobs_on_workers - before.jobs_on_workers,
            after.worker_shares - before.worker_shares,
        )
    };
    // SmolLM2's 192 x 576 at M = 1: the calling thread alone.
    assert_eq!(
        delta(&mut || {
            pool.linear(&s, &x, &mut ys).expect("small");
        }),
        (1, 0, 0)
    );
    let want_small = ys.clone();
    let xm = MatRef::new(&x, 1, k, k).expect("x");
    let mut y = MatMut::new(&mut ys, 1, 192, 192).expect("y");
    let call = &mut || {
        pool.matmul(&small, Format::Q4_1, &xm, &mut y).expect("matmul");
    };
    assert_eq!(delta(call), (1, 0, 0));
    // 1536 x 576: both threads.
    split_job(delta(&mut || {
        pool.linear(&b, &x, &mut yb).expect("big");
    }));
    let want_big = yb.clone();
    // A grouped call of one token on three 192 x 576 experts: below the threshold.
    let stack = stacked(Format::Q4_1, 64, k, 3);
    let st = pack::PackedRef::parse(&stack).expect("stack");
    let mut ym = vec![0f32; 2 * 64];
    assert_eq!(
        delta(&mut || {
            pool.moe(&st, &x, &[0, 2], 2, &mut ym).expect("moe");
        }),
        (1, 0, 0)
    );
    // The threshold moves both ways; the bits stay.
    pool.set_min_share_macs(0);
    split_job(delta(&mut || {
        pool.linear(&s, &x, &mut ys).expect("small");
    }));
    assert_eq!(ys.map_bits(), want_small.map_bits());
    pool.set_min_share_macs(u64::MAX);
    assert_eq!(
        delta(&mut || {
            pool.linear(&b, &x, &mut yb).expect("big");
        }),
        (1, 0, 0)
    );
    assert_eq!(yb.map_bits(), want_big.map_bits());
    // A broadcast always reaches every thread.
    assert_eq!(delta(&mut || pool.broadcast(|_| {})), (1, 1, 1));
}

trait Bits {
    fn map_bits(&self) -> Vec<u32>;
}

impl Bits for Vec<f32> {
    fn map_bits(&self) -> Vec<u32> {
        self.iter().map(|v| v.to_bits()).collect()
    }
}
