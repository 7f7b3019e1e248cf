//! The tile unit's peak on this machine, measured by a tight loop of independent
//! `tdpbssd` (int8) or `tdpbf16ps` (BF16) on tiles that never leave the registers, so
//! every GEMM figure can be shown as a fraction of what the hardware did in the same run.

use std::time::Instant;

use amx_core::tile::{self, TileConfig};
use amx_core::token::Amx;

/// Which tile instruction to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// `tdpbssd`: 16 x 16 x 64 int8 multiply-adds.
    Int8,
    /// `tdpbf16ps`: 16 x 16 x 32 BF16 multiply-adds.
    Bf16,
}

/// Operations per second (2 per multiply-add) of the tile unit in a tight loop of
/// `iters` x 4 independent instructions; `None` without AMX.
pub fn peak_ops(unit: Unit, iters: usize) -> Option<f64> {
    let amx = Amx::try_new().ok()?;
    let mut cfg = TileConfig::new();
    for t in 0..8 {
        cfg = cfg.with_tile(t, 16, 64).ok()?;
    }
    amx.load_config(&cfg);
    let data = [1u8; 1024];
    // SAFETY: the token proves AMX is usable and `cfg` (eight 16 x 64-byte tiles) is
    // loaded on this thread; loads read 16 rows of 64 bytes at stride 64 inside `data`.
    unsafe {
        tile::tileloadd::<4>(data.as_ptr(), 64);
        tile::tileloadd::<5>(data.as_ptr(), 64);
        tile::tileloadd::<6>(data.as_ptr(), 64);
        tile::tileloadd::<7>(data.as_ptr(), 64);
    }
    let run = |n: usize| {
        let t = Instant::now();
        for _ in 0..n {
            // SAFETY: the token proves AMX is usable and `cfg` is loaded on this thread;
            // dot products only read and write tile registers, touching no memory.
            unsafe {
                match unit {
                    Unit::Int8 => {
                        tile::tdpbssd::<0, 4, 6>();
                        tile::tdpbssd::<1, 4, 7>();
                        tile::tdpbssd::<2, 5, 6>();
                        tile::tdpbssd::<3, 5, 7>();
                    }
                    Unit::Bf16 => {
                        tile::tdpbf16ps::<0, 4, 6>();
                        tile::tdpbf16ps::<1, 4, 7>();
                        tile::tdpbf16ps::<2, 5, 6>();
                        tile::tdpbf16ps::<3, 5, 7>();
                    }
                }
            }
        }
        t.elapsed().as_secs_f64()
    };
    run(iters / 10 + 1);
    let secs = (0..3).map(|_| run(iters)).fold(f64::INFINITY, f64::min);
    amx.release();
    let macs_per_instr = match unit {
        Unit::Int8 => 16.0 * 16.0 * 64.0,
        Unit::Bf16 => 16.0 * 16.0 * 32.0,
    };
    Some(2.0 * macs_per_instr * 4.0 * iters as f64 / secs)
}

/// [`peak_ops`] on `threads` threads at once (each with its own tiles), summed: the
/// peak a job on that many threads is held to. `None` without AMX.
pub fn peak_ops_on(unit: Unit, iters: usize, threads: usize) -> Option<f64> {
    if threads <= 1 {
        return peak_ops(unit, iters);
    }
    let start = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    peak_ops(unit, iters)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok().flatten()).sum()
    })
}
