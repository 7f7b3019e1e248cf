//! Wall-clock throughput of the GEMM paths, one thread, per format: every path this CPU
//! runs (AMX, VNNI, scalar) and the automatic choice, at M = 1 and M = 128, K = N = 1024
//! (small enough that the scalar reference finishes), reported in operations (2 M N K)
//! per second. The `amx-bench bench` subcommand measures the 4096 x 4096 shapes.
//!
//! Run with `cargo bench -p amx-bench --bench gemm_criterion`.

use std::hint::black_box;
use std::time::Duration;

use amx_core::formats::Format;
use amx_core::gemm::{self, MatMut, MatRef, Path};
use amx_core::pack::{pack, packed_size};
use amx_testdata::weights::bench_weights;
use criterion::{Criterion, Throughput, criterion_main};

/// Output columns and values per row of the benchmarked weight.
const N: usize = 1024;
const K: usize = 1024;

/// One group per format and M: every available path side by side.
fn gemm_paths(c: &mut Criterion) {
    for format in Format::ALL {
        let w = bench_weights(format, 3, N, K).expect("shape fits");
        let mut packed = vec![0u8; packed_size(format, N, K, 1).expect("shape fits")];
        pack(format, N, K, 1, &w, &mut packed).expect("pack");
        for m in [1usize, 128] {
            let x: Vec<f32> =
                (0..m * K).map(|i| ((i * 7919 % 1000) as f32) / 500.0 - 1.0).collect();
            let mut y = vec![0f32; m * N];
            let mut group = c.benchmark_group(format!("gemm_{N}x{K}/{}/m{m}", format.name()));
            group.throughput(Throughput::Elements((2 * m * N * K) as u64));
            for path in [Path::Auto, Path::Amx, Path::Vnni, Path::Scalar] {
                if !path.available() {
                    println!("skipped: the {} path is not available on this machine", path.name());
                    continue;
                }
                let mut ws = vec![0u8; gemm::workspace_bytes(format, m, K, path).expect("sizes")];
                group.bench_function(path.name(), |b| {
                    b.iter(|| {
                        let xr = MatRef::new(black_box(&x), m, K, K).expect("view");
                        let mut ym = MatMut::new(&mut y, m, N, N).expect("view");
                        gemm::gemm(black_box(&packed), format, &xr, &mut ym, path, &mut ws)
                            .expect("gemm")
                    })
                });
            }
            group.finish();
        }
    }
}

/// Short runs: 9 formats x 2 shapes x up to 4 paths.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
}

/// The group, in a private module: `criterion_group!` makes an undocumented `pub fn`.
mod group {
    criterion::criterion_group! {
        name = gemm;
        config = super::config();
        targets = super::gemm_paths
    }
}

criterion_main!(group::gemm);
