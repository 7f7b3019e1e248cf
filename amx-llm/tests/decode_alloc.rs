//! A decode step allocates nothing in steady state: the step graph, its schedule and
//! buffers are made once per step shape, temporaries come from a bump arena reset every
//! step, the kernels' workspaces are kept. Counted with a counting global allocator
//! (every thread: the pool's workers too), on tiny dense and MoE models. The test is
//! the binary's `main`.

mod tiny;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use amx_core::gemm::Path;
use amx_gguf::GgufFile;
use amx_llm::engine::{Engine, Options};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is
// the only addition.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with `layout` (above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn decode_steps_allocate_nothing(spec: tiny::Spec, threads: usize, path: Path) {
    let m = tiny::build(spec, 3);
    let o = Options { threads, path, gpu_layers: 0, context: 64 };
    let mut engine = Engine::from_file(GgufFile::parse(m.file).unwrap(), o).unwrap();
    engine.step_view(&[1, 2, 3, 4, 5, 6, 7, 8], 1).unwrap();
    // Warm-up: the decode shape's graph and buffers, the kernels' workspaces.
    let mut next = 3u32;
    for _ in 0..4 {
        let l = engine.step_view(&[next], 1).unwrap();
        next = (0..l.len()).fold(0, |b, i| if l[i] > l[b] { i } else { b }) as u32;
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..16 {
        let l = engine.step_view(&[next], 1).unwrap();
        next = (0..l.len()).fold(0, |b, i| if l[i] > l[b] { i } else { b }) as u32;
    }
    let n = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(
        n, 0,
        "{} {threads} threads {path:?}: {n} allocations in 16 decode steps",
        spec.arch
    );
}

/// One test, without libtest's harness (`harness = false`), so that no other test's
/// allocations, and none of the harness's own bookkeeping on its main thread while the
/// test runs, are counted.
fn main() {
    for (threads, path) in [(1, Path::Auto), (2, Path::Auto), (1, Path::Scalar)] {
        decode_steps_allocate_nothing(tiny::BASE, threads, path);
        let moe = tiny::Spec { experts: 4, used: 2, ..tiny::BASE };
        decode_steps_allocate_nothing(moe, threads, path);
        let gemma = tiny::Spec {
            arch: "gemma3",
            n_kv: 1,
            head: 32,
            rope_dims: 32,
            layers: 6,
            window: 5,
            ..tiny::BASE
        };
        decode_steps_allocate_nothing(gemma, threads, path);
    }
    println!("decode_alloc: no allocation in 16 decode steps of each tiny model");
}
