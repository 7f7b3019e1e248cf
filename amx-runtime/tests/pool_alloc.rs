//! Steady-state pool calls allocate nothing: a counting global allocator sees zero
//! allocations over many matmuls after one warm-up call of each kind. This file is a
//! single test, its binary's `main`, so that nothing else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use amx_core::formats::Format;
use amx_core::gemm::{MatMut, MatRef, Path};
use amx_core::pack::{self, PackedRef};
use amx_runtime::pool::{Matmul, Pool};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::SeqCst) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::SeqCst) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` (on any thread).
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
}

fn packed(format: Format, n: usize, k: usize) -> Vec<u8> {
    let raw = amx_testdata::weights::bench_weights(format, 1, n, k).expect("weights");
    let mut out = vec![0u8; pack::packed_size(format, n, k, 1).expect("size")];
    pack::pack(format, n, k, 1, &raw, &mut out).expect("pack");
    out
}

fn stacked(format: Format, n: usize, k: usize, matrices: usize) -> Vec<u8> {
    let raw = amx_testdata::weights::bench_weights(format, 2, n * matrices, k).expect("weights");
    let mut out = vec![0u8; pack::packed_size(format, n, k, matrices).expect("size")];
    pack::pack(format, n, k, matrices, &raw, &mut out).expect("pack");
    out
}

/// The test, without libtest's harness (`harness = false`): the harness's main thread
/// allocates for its own bookkeeping while a test runs, which the counter would see.
fn main() {
    // The counter itself works (so a zero below means something).
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);

    let pool = Pool::new(2);
    let k = 512;
    for (format, m, n) in [(Format::Q4_0, 64, 96), (Format::Q4_K, 1, 80), (Format::BF16, 20, 48)] {
        let w = packed(format, n, k);
        let xv: Vec<f32> = (0..m * k).map(|i| (i % 23) as f32 * 0.1 - 1.0).collect();
        let x = MatRef::new(&xv, m, k, k).expect("x");
        let mut yv = vec![0f32; m * n];
        let mut buf = Vec::new();
        // The one-line calls: `linear`, `linear_many` (three outputs, one job) and `moe`
        // on a stack of three experts, each token routed to two.
        let wr = PackedRef::parse(&w).expect("parse");
        let (mut y2, mut y3) = (vec![0f32; m * n], vec![0f32; 2 * m * n]);
        let stack = stacked(format, n, k, 3);
        let sr = PackedRef::parse(&stack).expect("stack");
        let ids: Vec<u32> = (0..2 * m as u32).map(|i| i % 3).collect();
        let mut ym = vec![0f32; 2 * m * n];
        let mut round = |buf: &mut Vec<u8>| {
            let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
            pool.matmul(&w, format, &x, &mut y).expect("matmul");
            let acts = pool.prepare_in(std::mem::take(buf), format, &x, Path::Auto).expect("prep");
            for _ in 0..3 {
                pool.matmul_prepared(&acts, &w, format, &mut y).expect("prepared");
            }
            let plan =
                Matmul::new(&w, format, acts.prepared().expect("p"), &mut y, 2).expect("plan");
            for part in plan.parts() {
                part.run_local().expect("part");
            }
            *buf = acts.into_buffer();
            pool.linear(&wr, &xv, &mut y2).expect("linear");
            let (a, b) = y3.split_at_mut(m * n);
            pool.linear_many(&xv, &mut [(&wr, &mut y2), (&wr, a), (&wr, b)]).expect("many");
            pool.moe(&sr, &xv, &ids, 2, &mut ym).expect("moe");
        };
        round(&mut buf); // warm-up: workspaces, scratch, thread-locals grow once
        let count = allocations(|| {
            for _ in 0..20 {
                round(&mut buf);
            }
        });
        assert_eq!(count, 0, "{format} m={m}: allocations in 20 steady-state rounds");
        println!("{format} m={m} n={n}: 0 allocations in 20 rounds of 8 calls");
    }
}
