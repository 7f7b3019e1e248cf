//! Two-thread scaling of `Pool::matmul`: `Pool::new(2)` against `Pool::new(1)` at
//! K = N = 4096, M = 128 and 512, for Q4_0, Q4_K and BF16; plus the cost of giving tiles
//! back after each job (`tilerelease`, then `ldtilecfg` on the next one).
//!
//! ```text
//! cargo run --release -p amx-runtime --example pool_scaling -- [rounds] [calls]
//! ```
//!
//! Each round times `calls` matmuls on one thread, then on two (alternating, so that load
//! from other processes hits both alike) and keeps each side's median; the table gives
//! the median over rounds of each side, the ratio of those medians, the median of the
//! per-round ratios and their spread (a wide spread means another process took a core
//! during some rounds). The load average is
//! printed before and after: on a shared machine, compare runs with similar load.

use std::hint::black_box;
use std::time::Instant;

use amx_core::formats::Format;
use amx_core::gemm::{MatMut, MatRef};
use amx_core::pack;
use amx_core::tile::TileConfig;
use amx_runtime::pool::Pool;
use amx_runtime::tile_state;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string()
}

/// Median seconds of `calls` matmuls on `pool`.
fn time(pool: &Pool, w: &[u8], format: Format, x: &MatRef<'_>, y: &mut [f32], calls: usize) -> f64 {
    let (m, n) = (x.rows(), y.len() / x.rows());
    let mut t: Vec<f64> = (0..calls)
        .map(|_| {
            let mut ym = MatMut::new(y, m, n, n).expect("y");
            let start = Instant::now();
            pool.matmul(w, format, x, &mut ym).expect("matmul");
            black_box(&ym);
            start.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut t)
}

fn release_cost() {
    if tile_state::amx().is_none() {
        println!("tile release cost: skipped, AMX unavailable");
        return;
    }
    let cfg = TileConfig::new().with_tile(0, 16, 64).expect("shape");
    let reps = 100_000;
    let start = Instant::now();
    for _ in 0..reps {
        tile_state::ensure_config(&cfg).expect("amx");
        tile_state::release_thread();
    }
    let cycle = start.elapsed().as_secs_f64() / reps as f64;
    let start = Instant::now();
    for _ in 0..reps {
        tile_state::ensure_config(&cfg).expect("amx");
    }
    let skip = start.elapsed().as_secs_f64() / reps as f64;
    tile_state::release_thread();
    println!(
        "tile state: release + reload (sttilecfg, ldtilecfg, tilerelease) {:.0} ns; \
         check that skips ldtilecfg (sttilecfg) {:.0} ns",
        cycle * 1e9,
        skip * 1e9
    );
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let rounds = args.next().unwrap_or(15).max(1);
    let calls = args.next().unwrap_or(3).max(1);
    let (n, k) = (4096, 4096);
    println!("pool scaling, K = N = {k}, {rounds} rounds of {calls} calls; load: {}", loadavg());
    release_cost();
    let (one, two) = (Pool::new(1), Pool::new(2));
    println!(
        "format  m     1 thread ms  2 threads ms  GOPS(2)  ratio  per-round: median (min..max)"
    );
    for format in [Format::Q4_0, Format::Q4K, Format::BF16] {
        let raw = amx_bench::gemm_bench::bench_weights(format, 7, n, k).expect("weights");
        let mut w = vec![0u8; pack::packed_size(format, n, k, 1).expect("size")];
        pack::pack(format, n, k, 1, &raw, &mut w).expect("pack");
        for m in [128, 512] {
            let xv: Vec<f32> = (0..m * k).map(|i| (i % 97) as f32 / 48.0 - 1.0).collect();
            let x = MatRef::new(&xv, m, k, k).expect("x");
            let mut y = vec![0f32; m * n];
            // Warm-up: workspaces, scratch, weights in cache as far as they fit.
            time(&one, &w, format, &x, &mut y, 1);
            time(&two, &w, format, &x, &mut y, 1);
            let (mut t1, mut t2, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let a = time(&one, &w, format, &x, &mut y, calls);
                let b = time(&two, &w, format, &x, &mut y, calls);
                t1.push(a);
                t2.push(b);
                ratios.push(a / b);
            }
            let (a, b) = (median(&mut t1), median(&mut t2));
            let r = median(&mut ratios);
            println!(
                "{:<7} {:<5} {:>11.2} {:>13.2} {:>8.1} {:>6.2}  {r:>5.2} ({:.2}..{:.2})",
                format.name(),
                m,
                a * 1e3,
                b * 1e3,
                2.0 * (m * n * k) as f64 / b / 1e9,
                a / b,
                ratios[0],
                ratios[ratios.len() - 1]
            );
        }
    }
    println!("load after: {}", loadavg());
}
