//! Steady-state pool calls allocate nothing: a counting global allocator sees zero
//! allocations over many matmuls after one warm-up call of each kind. This file holds a
//! single test so that no other test allocates in this binary meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use amx_core::formats::Format;
use amx_core::gemm::{MatMut, MatRef, Path};
use amx_core::pack;
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

#[test]
fn steady_state_calls_allocate_nothing() {
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
        };
        round(&mut buf); // warm-up: workspaces, scratch, thread-locals grow once
        let count = allocations(|| {
            for _ in 0..20 {
                round(&mut buf);
            }
        });
        assert_eq!(count, 0, "{format} m={m}: allocations in 20 steady-state rounds");
        println!("{format} m={m} n={n}: 0 allocations in 20 rounds of 5 matmuls");
    }
}
