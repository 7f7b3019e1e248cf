extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::formats::dequantize;
use crate::pack::{pack, packed_size};

use crate::test_util::{bytes, weights};

fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut e, mut s) = (0f64, 0f64);
    for (g, w) in got.iter().zip(want) {
        e += (f64::from(*g) - f64::from(*w)).powi(2);
        s += f64::from(*w).powi(2);
    }
    e / s.max(1e-30)
}

/// Grouped result against per-expert dequantization and an f64 matmul.
fn check(
    format: Format,
    (experts, n, k): (usize, usize, usize),
    tokens: usize,
    ids: &[u32],
    top_k: usize,
    path: Path,
) {
    let src = weights(format, 5, experts * n, k);
    let mut packed = vec![0u8; packed_size(format, n, k, experts).unwrap()];
    pack(format, n, k, experts, &src, &mut packed).unwrap();
    let mut deq = vec![0f32; experts * n * k];
    dequantize(format, &src, &mut deq).unwrap();
    let x: Vec<f32> = bytes(9, tokens * k).iter().map(|&b| f32::from(b) / 128.0 - 1.0).collect();
    let shape = MoeShape { experts, n, k, tokens, top_k };
    let mut ws = vec![0u8; grouped_workspace_bytes(format, &shape, path).unwrap()];
    let mut y = vec![f32::NAN; tokens * top_k * n];
    let xr = MatRef::new(&x, tokens, k, k).unwrap();
    let mut ym = MatMut::new(&mut y, tokens * top_k, n, n).unwrap();
    grouped_gemm(&packed, format, &xr, (ids, top_k), &mut ym, path, &mut ws).unwrap();
    let mut want = vec![0f32; tokens * top_k * n];
    for t in 0..tokens {
        for s in 0..top_k {
            let e = ids[t * top_k + s] as usize;
            for c in 0..n {
                let w = &deq[(e * n + c) * k..(e * n + c + 1) * k];
                let dot: f64 = w
                    .iter()
                    .zip(&x[t * k..(t + 1) * k])
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                want[(t * top_k + s) * n + c] = dot as f32;
            }
        }
    }
    let e = nmse(&y, &want);
    assert!(e <= 5e-4, "{format} {path:?} E={experts} T={tokens} top_k={top_k}: nmse {e}");
}

fn paths() -> Vec<Path> {
    [Path::Auto, Path::Amx, Path::Vnni, Path::Scalar]
        .into_iter()
        .filter(|p| p.available())
        // Under Miri every path but the scalar one is unavailable, and `Auto` is scalar.
        .filter(|p| !(cfg!(miri) && *p == Path::Auto))
        .collect()
}

#[test]
fn skewed_routing_matches_the_reference() {
    let (experts, n, k) = (6, 40, 256);
    // Smaller under Miri (thousands of times slower): Q4_0 only, with a partial panel.
    let (n, k) = if cfg!(miri) { (17, 32) } else { (n, k) };
    for path in paths() {
        for format in [Format::Q4_0, Format::Q4_K, Format::Q6_K, Format::BF16] {
            if cfg!(miri) && format != Format::Q4_0 {
                continue;
            }
            // One hot expert (every token, top_k = 1), others empty.
            let tokens = if cfg!(miri) { 5 } else { 37 };
            check(format, (experts, n, k), tokens, &vec![3; tokens], 1, path);
            // top_k = 2 over a skewed mix, expert 5 never used.
            let ids: Vec<u32> =
                (0..tokens * 2).map(|i| if i % 2 == 0 { 0 } else { (i % 5) as u32 }).collect();
            check(format, (experts, n, k), tokens, &ids, 2, path);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "minutes under Miri (every format at k = 256); skewed_routing runs")]
fn top_k_eight_and_every_format() {
    let (experts, n, k) = (8, 17, 256);
    for path in paths() {
        for format in Format::ALL {
            let tokens = 5;
            let ids: Vec<u32> = (0..tokens * 8).map(|i| ((i * 3 + i / 8) % 8) as u32).collect();
            check(format, (experts, n, k), tokens, &ids, 8, path);
        }
    }
}

#[test]
fn out_of_range_ids_and_bad_shapes_are_errors() {
    let (format, experts, n, k) = (Format::Q8_0, 3, 16, 64);
    let src = weights(format, 1, experts * n, k);
    let mut packed = vec![0u8; packed_size(format, n, k, experts).unwrap()];
    pack(format, n, k, experts, &src, &mut packed).unwrap();
    let x = vec![0.5f32; 2 * k];
    let xr = MatRef::new(&x, 2, k, k).unwrap();
    let shape = MoeShape { experts, n, k, tokens: 2, top_k: 2 };
    let mut ws = vec![0u8; grouped_workspace_bytes(format, &shape, Path::Auto).unwrap()];
    let mut y = vec![0f32; 4 * n];
    let mut ym = MatMut::new(&mut y, 4, n, n).unwrap();
    assert_eq!(
        grouped_gemm(&packed, format, &xr, (&[0, 1, 3, 2], 2), &mut ym, Path::Auto, &mut ws),
        Err(GemmError::ExpertOutOfRange { index: 2, id: 3, experts: 3 })
    );
    assert_eq!(
        grouped_gemm(&packed, format, &xr, (&[0, 1, 2], 2), &mut ym, Path::Auto, &mut ws),
        Err(GemmError::ShapeMismatch { dim: "ids", expected: 4, found: 3 })
    );
    let mut small = vec![0u8; 10];
    assert!(matches!(
        grouped_gemm(&packed, format, &xr, (&[0, 1, 2, 2], 2), &mut ym, Path::Auto, &mut small),
        Err(GemmError::WorkspaceTooSmall { .. })
    ));
    // One byte short: the error carries the caller's length and the documented total,
    // not the numbers of whichever piece of the workspace ran out.
    let needed = ws.len();
    let short = &mut ws[..needed - 1];
    assert_eq!(
        grouped_gemm(&packed, format, &xr, (&[0, 1, 2, 2], 2), &mut ym, Path::Auto, short),
        Err(GemmError::WorkspaceTooSmall { needed, actual: needed - 1 })
    );
}

#[test]
fn routing_sorts_each_expert_run_in_order() {
    let ids = [2u32, 0, 2, 1, 0, 2];
    let mut ws = vec![0u8; routing_bytes(3, 2, 4).unwrap()];
    let r = Routing::new(&ids, 4, &mut ws).unwrap();
    let runs: Vec<_> = (0..4).map(|e| r.run(e).unwrap()).collect();
    assert_eq!(runs, [0..2, 2..3, 3..6, 6..6]);
    let entries: Vec<usize> = (0..6).map(|i| r.entry(i).unwrap()).collect();
    assert_eq!(entries, [1, 4, 3, 0, 2, 5]);
}

/// A Q4_0 stack of `experts` experts of `n x k`, packed, and `tokens` tokens of `x`
/// (different for each `seed`), routed round-robin to `top_k` experts each.
struct Case {
    format: Format,
    shape: MoeShape,
    packed: Vec<u8>,
    ids: Vec<u32>,
}

impl Case {
    fn new(experts: usize, n: usize, k: usize, tokens: usize, top_k: usize) -> Self {
        let format = Format::Q4_0;
        let src = weights(format, 3, experts * n, k);
        let mut packed = vec![0u8; packed_size(format, n, k, experts).unwrap()];
        pack(format, n, k, experts, &src, &mut packed).unwrap();
        let ids = (0..tokens * top_k).map(|i| (i % experts) as u32).collect();
        Self { format, shape: MoeShape { experts, n, k, tokens, top_k }, packed, ids }
    }

    fn x(&self, seed: u64) -> Vec<f32> {
        let len = self.shape.tokens * self.shape.k;
        bytes(seed, len).iter().map(|&b| f32::from(b) / 128.0 - 1.0).collect()
    }

    fn rows(&self) -> usize {
        self.shape.tokens * self.shape.top_k
    }

    /// The one-thread result of `grouped_gemm` on `x`.
    fn want(&self, x: &[f32], path: Path) -> Vec<f32> {
        let (s, rows) = (self.shape, self.rows());
        let mut ws = vec![0u8; grouped_workspace_bytes(self.format, &s, path).unwrap()];
        let mut y = vec![0f32; rows * s.n];
        let xr = MatRef::new(x, s.tokens, s.k, s.k).unwrap();
        let mut ym = MatMut::new(&mut y, rows, s.n, s.n).unwrap();
        let ids = (&self.ids[..], s.top_k);
        grouped_gemm(&self.packed, self.format, &xr, ids, &mut ym, path, &mut ws).unwrap();
        y
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Two threads calling `run_all` on one shared call (whole experts, then one panel per
/// item): the items are shared out, none runs twice at once, and the result is
/// bit-identical to one thread's every time. The original `run_all` ran every item on
/// each thread, racing on the outputs (the scalar path accumulates into them).
#[test]
fn concurrent_run_all_on_one_call_is_race_free() {
    // Miri checks the claims for races; a small case keeps it quick there.
    let case = if cfg!(miri) { Case::new(2, 32, 64, 4, 2) } else { Case::new(4, 256, 512, 64, 2) };
    let (s, rows) = (case.shape, case.rows());
    let x = case.x(4);
    let xr = MatRef::new(&x, s.tokens, s.k, s.k).unwrap();
    for path in paths() {
        let want = case.want(&x, path);
        let mut ws = vec![0u8; grouped_workspace_bytes(case.format, &s, path).unwrap()];
        let scratch_len = gemm::scratch_bytes(case.format, s.k, path).unwrap();
        for round in 0..if cfg!(miri) { 2 } else { 20 } {
            let (mut call, _) =
                Grouped::new(&case.packed, case.format, &xr, &case.ids, s.top_k, path, &mut ws)
                    .unwrap();
            if round % 2 == 1 {
                let panels = s.n.div_ceil(16);
                assert_eq!(call.split(1), Ok(s.experts * panels));
            }
            let shared = &call;
            std::thread::scope(|sc| {
                let a = sc.spawn(move || shared.run_all(&mut vec![0u8; scratch_len]));
                let b = sc.spawn(move || shared.run_all(&mut vec![0u8; scratch_len]));
                a.join().unwrap().unwrap();
                b.join().unwrap().unwrap();
            });
            assert_eq!(call.finished(), call.items());
            let mut got = vec![0f32; rows * s.n];
            call.scatter(&mut MatMut::new(&mut got, rows, s.n, s.n).unwrap()).unwrap();
            assert!(bits(&got) == bits(&want), "{path:?} round {round}: a race changed the output");
        }
    }
}

/// A call on a reused workspace refuses to scatter until every item ran: before, the
/// gathered output still held the previous call's values and `scatter` returned them.
#[test]
fn scatter_before_every_item_ran_is_refused() {
    // Under Miri one panel per expert (a minute otherwise).
    let n = if cfg!(miri) { 16 } else { 48 };
    let case = Case::new(3, n, 64, 5, 2);
    let (s, rows) = (case.shape, case.rows());
    let path = Path::Scalar;
    let mut ws = vec![0u8; grouped_workspace_bytes(case.format, &s, path).unwrap()];
    let mut y = vec![0f32; rows * s.n];
    let (first, second) = (case.x(1), case.x(2));
    for x in [&first, &second] {
        let xr = MatRef::new(x, s.tokens, s.k, s.k).unwrap();
        let (mut call, scratch) =
            Grouped::new(&case.packed, case.format, &xr, &case.ids, s.top_k, path, &mut ws)
                .unwrap();
        let total = call.split(1).unwrap();
        assert_eq!(total, 3 * n / 16);
        let mut ym = MatMut::new(&mut y, rows, s.n, s.n).unwrap();
        assert_eq!(call.scatter(&mut ym), Err(GemmError::Unfinished { done: 0, total }));
        assert_eq!(call.run_next(scratch), Ok(true));
        assert_eq!(call.scatter(&mut ym), Err(GemmError::Unfinished { done: 1, total }));
        call.run_all(scratch).unwrap();
        assert_eq!(call.run_next(scratch), Ok(false));
        call.scatter(&mut ym).unwrap();
        assert!(bits(&y) == bits(&case.want(x, path)));
    }
}

/// An item that fails (a scratch too small for the AMX path) stops the call: no further
/// item is handed out and scatter refuses; `split` makes it runnable again.
#[test]
fn a_failed_item_leaves_the_call_unfinished_until_split() {
    if !Path::Amx.available() {
        crate::test_util::skip(crate::test_util::Need::Amx, "the AMX path is not available");
        return;
    }
    let case = Case::new(2, 64, 256, 40, 1);
    let (s, rows) = (case.shape, case.rows());
    let path = Path::Amx;
    let x = case.x(3);
    let xr = MatRef::new(&x, s.tokens, s.k, s.k).unwrap();
    let mut ws = vec![0u8; grouped_workspace_bytes(case.format, &s, path).unwrap()];
    let (mut call, scratch) =
        Grouped::new(&case.packed, case.format, &xr, &case.ids, s.top_k, path, &mut ws).unwrap();
    let total = call.split(1).unwrap();
    assert!(matches!(call.run_all(&mut [0u8; 8]), Err(GemmError::WorkspaceTooSmall { .. })));
    assert_eq!(call.run_next(scratch), Ok(false), "items handed out after an error");
    let mut y = vec![0f32; rows * s.n];
    let mut ym = MatMut::new(&mut y, rows, s.n, s.n).unwrap();
    assert_eq!(call.scatter(&mut ym), Err(GemmError::Unfinished { done: 0, total }));
    assert_eq!(call.split(2), Ok(2 * 2));
    call.run_all(scratch).unwrap();
    call.scatter(&mut ym).unwrap();
    assert!(bits(&y) == bits(&case.want(&x, path)));
}

/// Sizes where overflow lives: 0, 1, small, powers of two and the top of `usize`.
const EXTREMES: [usize; 9] =
    [0, 1, 2, 32, 1 << 20, 1 << 32, usize::MAX / 128, usize::MAX / 2, usize::MAX];

/// `routing_bytes` is the exact size when it fits `usize` and `Overflow` otherwise.
#[test]
fn routing_bytes_is_exact_or_overflow_at_extreme_sizes() {
    for t in EXTREMES {
        for top_k in EXTREMES {
            for e in EXTREMES {
                let exact = (t as u128)
                    .checked_mul(top_k as u128)
                    .and_then(|r| r.checked_mul(4))
                    .and_then(|r| r.checked_add(4 * (e as u128 + 1)))
                    .and_then(|b| usize::try_from(b).ok());
                let got = routing_bytes(t, top_k, e);
                assert_eq!(got, exact.ok_or(GemmError::Overflow), "T={t} top_k={top_k} E={e}");
            }
        }
    }
}

/// `grouped_workspace_bytes` never panics and never returns less than a lower bound of the
/// true size (routing, tables, output and one byte per prepared value); when that bound
/// does not fit `usize` it is `Overflow`.
#[test]
fn grouped_workspace_bytes_is_never_too_small_at_extreme_sizes() {
    for format in [Format::Q4_0, Format::Q6_K, Format::BF16] {
        for path in [Path::Auto, Path::Scalar] {
            for [experts, n, k, tokens, top_k] in extreme_shapes() {
                let s = MoeShape { experts, n, k, tokens, top_k };
                let bound = || -> Option<u128> {
                    let rows = (tokens as u128).checked_mul(top_k as u128)?;
                    let tables = 4 * (experts as u128 + 1) + 12 * experts as u128 + 8;
                    let out = rows.checked_mul(n as u128)?.checked_mul(4)?;
                    let prepared = rows.checked_mul(k as u128)?;
                    rows.checked_mul(4)?
                        .checked_add(tables)?
                        .checked_add(out)?
                        .checked_add(prepared)
                };
                let fits = bound().is_some_and(|b| b <= usize::MAX as u128);
                match grouped_workspace_bytes(format, &s, path) {
                    Ok(b) => assert!(fits && b as u128 >= bound().unwrap_or(0), "{s:?}: {b}"),
                    // K = 0 is refused as such before any size is computed.
                    Err(GemmError::ZeroK) => assert_eq!(k, 0, "{format} {path:?} {s:?}"),
                    Err(e) => assert!(
                        e == GemmError::Overflow || !fits,
                        "{format} {path:?} {s:?}: {e} for a size that fits"
                    ),
                }
                if !fits && k != 0 {
                    assert_eq!(grouped_workspace_bytes(format, &s, path), Err(GemmError::Overflow));
                }
            }
        }
    }
}

/// Every combination of extreme values over (E, N, K, T, top_k).
fn extreme_shapes() -> impl Iterator<Item = [usize; 5]> {
    let v = EXTREMES;
    // Under Miri a sample (about 600 shapes) keeps the run short.
    let step = if cfg!(miri) { 97 } else { 1 };
    (0..v.len().pow(5)).step_by(step).map(move |mut i| {
        core::array::from_fn(|_| {
            let x = v[i % v.len()];
            i /= v.len();
            x
        })
    })
}

/// Routing refuses sizes it cannot hold and answers out-of-range questions with `None`.
#[test]
fn routing_refuses_extreme_sizes_and_out_of_range_indices() {
    let mut ws = vec![0u8; 64];
    assert_eq!(Routing::new(&[0], usize::MAX, &mut ws).err(), Some(GemmError::Overflow));
    assert!(matches!(
        Routing::new(&[0], usize::MAX / 8, &mut ws),
        Err(GemmError::WorkspaceTooSmall { .. })
    ));
    let r = Routing::new(&[1, 0, 1], 2, &mut ws).unwrap();
    assert_eq!((r.len(), r.experts()), (3, 2));
    assert_eq!((r.run(1), r.run(2), r.run(usize::MAX)), (Some(1..3), None, None));
    assert_eq!((r.entry(2), r.entry(3), r.entry(usize::MAX)), (Some(2), None, None));
}
