//! Two-thread scaling of `Pool::matmul`: `Pool::new(2)` against `Pool::new(1)` at
//! K = N = 4096, M = 128 and 512, for Q4_0, Q4_K and BF16; plus the cost of giving tiles
//! back after each job (`tilerelease`, then `ldtilecfg` on the next one).
//!
//! ```text
//! cargo run --release -p amx-runtime --example pool_scaling -- [rounds] [calls]
//! ```
//!
//! Each round times `calls` matmuls on one thread, then on two (alternating, so that load
//! from other processes hits both alike) and keeps each side's median. The machine may
//! be shared: a round is "clean" when `/proc/stat` shows no CPU time of other processes
//! during it (tick sampling, so a filter, not a proof). Columns: medians over all rounds
//! of each side, the ratio of those medians, the median per-round ratio over all rounds
//! and over clean rounds (with their count), and the per-round spread.

use std::hint::black_box;
use std::time::Instant;

use amx_core::formats::Format;
use amx_core::gemm::{MatMut, MatRef};
use amx_core::pack;
use amx_core::tile::TileConfig;
use amx_runtime::hugepage::HugeBuffer;
use amx_runtime::pool::Pool;
use amx_runtime::tile_state;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string()
}

/// (CPU ticks busy on the whole machine, CPU ticks of this process), from `/proc`.
fn ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy = cpu.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v);
    let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised name: utime and stime are the 12th and 13th.
    let after = own.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let own: u64 =
        after.split_whitespace().skip(11).take(2).map(|v| v.parse::<u64>().unwrap_or(0)).sum();
    (busy.sum(), own)
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
    let rounds = args.next().unwrap_or(21).max(1);
    let calls = args.next().unwrap_or(5).max(1);
    let (n, k) = (4096, 4096);
    println!("pool scaling, K = N = {k}, {rounds} rounds of {calls} calls; load: {}", loadavg());
    release_cost();
    let (one, two) = (Pool::new(1), Pool::new(2));
    println!(
        "format  m     1 thr ms  2 thr ms  GOPS(2)  ratio  per-round: all  clean (n)  min..max"
    );
    for format in [Format::Q4_0, Format::Q4_K, Format::BF16] {
        let raw = amx_testdata::weights::bench_weights(format, 7, n, k).expect("weights");
        // Where the runtime's buffers keep packed weights: on huge pages.
        let mut w = HugeBuffer::zeroed(pack::packed_size(format, n, k, 1).expect("size"));
        pack::pack(format, n, k, 1, &raw, &mut w).expect("pack");
        for m in [128, 512] {
            let xv: Vec<f32> = (0..m * k).map(|i| (i % 97) as f32 / 48.0 - 1.0).collect();
            let x = MatRef::new(&xv, m, k, k).expect("x");
            let mut y = vec![0f32; m * n];
            // Warm-up: workspaces, scratch, weights in cache as far as they fit.
            time(&one, &w, format, &x, &mut y, 1);
            time(&two, &w, format, &x, &mut y, 1);
            let (mut t1, mut t2, mut all, mut clean) = (vec![], vec![], vec![], vec![]);
            for _ in 0..rounds {
                let before = ticks();
                let a = time(&one, &w, format, &x, &mut y, calls);
                let b = time(&two, &w, format, &x, &mut y, calls);
                let after = ticks();
                let others = (after.0 - before.0).saturating_sub(after.1 - before.1);
                t1.push(a);
                t2.push(b);
                all.push(a / b);
                if others == 0 {
                    clean.push(a / b);
                }
            }
            let (a, b) = (median(&mut t1), median(&mut t2));
            let (r_all, n_clean, r_clean) = (median(&mut all), clean.len(), median(&mut clean));
            println!(
                "{:<7} {:<5} {:>8.2} {:>9.2} {:>8.1} {:>6.2}  {r_all:>14.2} {r_clean:>6.2} ({n_clean:>2})  {:.2}..{:.2}",
                format.name(),
                m,
                a * 1e3,
                b * 1e3,
                2.0 * (m * n * k) as f64 / b / 1e9,
                a / b,
                all[0],
                all[all.len() - 1]
            );
        }
    }
    println!("load after: {}", loadavg());
}
