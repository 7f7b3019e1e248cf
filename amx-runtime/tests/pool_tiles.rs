//! Tile state around the pool: workers give their tiles back when they finish a job,
//! nothing is released where no tile was used, an engine thread that ran AMX parts is
//! released at exit, and `ensure_config` skips `ldtilecfg` for a loaded configuration.
//! Skips (with a notice) where AMX is unavailable.

use amx_core::formats::Format;
use amx_core::gemm::{MatMut, MatRef, Path};
use amx_core::pack;
use amx_core::tile::TileConfig;
use amx_runtime::pool::{Matmul, Pool, PreparedActivations};
use amx_runtime::tile_state::{self, ThreadStats};

fn packed(format: Format, n: usize, k: usize) -> Vec<u8> {
    let raw = amx_testdata::weights::bench_weights(format, 2, n, k).expect("weights");
    let mut out = vec![0u8; pack::packed_size(format, n, k, 1).expect("size")];
    pack::pack(format, n, k, 1, &raw, &mut out).expect("pack");
    out
}

fn amx_or_skip() -> Option<amx_core::token::Amx> {
    let amx = tile_state::amx();
    if amx.is_none() || !Path::Amx.available() {
        let why = format!("AMX unavailable ({:?})", tile_state::amx_status());
        amx_runtime::test_support::skip(amx_runtime::test_support::Need::Amx, &why);
        return None;
    }
    amx
}

/// Each share's counters and live configuration, read on its thread (share 0 is the
/// calling thread).
fn worker_states(pool: &Pool) -> Vec<(ThreadStats, bool)> {
    let amx = tile_state::amx().expect("amx");
    let out = std::sync::Mutex::new(vec![None; pool.threads()]);
    pool.broadcast(|w| {
        let loaded = amx.store_config() != Ok(None);
        out.lock().expect("lock")[w] = Some((tile_state::thread_stats(), loaded));
    });
    out.into_inner().expect("lock").into_iter().map(|s| s.expect("every worker")).collect()
}

#[test]
fn workers_release_tiles_after_each_amx_job_only() {
    let Some(_) = amx_or_skip() else { return };
    let (k, format) = (256, Format::Q4_0);
    let pool = Pool::new(2);
    let w = packed(format, 64, k);
    for (m, amx_path) in [(64, true), (1, false), (32, true), (4, false)] {
        let before = worker_states(&pool);
        let xv = vec![0.5f32; m * k];
        let x = MatRef::new(&xv, m, k, k).expect("x");
        let mut yv = vec![0f32; m * 64];
        let mut y = MatMut::new(&mut yv, m, 64, 64).expect("y");
        let path = pool.matmul(&w, format, &x, &mut y).expect("matmul");
        assert_eq!(path == Path::Amx, amx_path, "m={m} took {path:?}");
        let after = worker_states(&pool);
        let mut released = Vec::new();
        for (w, ((b, _), (a, loaded))) in before.iter().zip(&after).enumerate() {
            assert!(!a.holds_tiles && !loaded, "worker {w} idles with tile state after m={m}");
            released.push(a.releases - b.releases);
        }
        // Two blocks of four panels, each claimed by one thread: a thread that ran an AMX
        // block released once, the others not at all (a worker that started late, its
        // core busy, left both blocks to the calling thread).
        if amx_path {
            assert!(released.iter().all(|&r| r <= 1), "m={m}: {released:?}");
            assert!(released.iter().sum::<u64>() >= 1, "m={m}: {released:?}");
        } else {
            assert_eq!(released, [0, 0], "m={m}");
        }
    }
}

#[test]
fn ensure_config_skips_a_loaded_config_and_jobs_end_released() {
    let Some(amx) = amx_or_skip() else { return };
    let cfg = TileConfig::new().with_tile(0, 16, 64).expect("shape");
    let pool = Pool::new(2);
    let before = worker_states(&pool);
    for _ in 0..2 {
        let loads = std::sync::Mutex::new(Vec::new());
        pool.broadcast(|_| {
            // A fresh job starts released: the first ensure loads, the second skips.
            let first = tile_state::ensure_config(&cfg).expect("amx");
            let second = tile_state::ensure_config(&cfg).expect("amx");
            assert_eq!(amx.store_config(), Ok(Some(cfg)));
            loads.lock().expect("lock").push((first, second));
        });
        assert_eq!(loads.into_inner().expect("lock"), [(true, false); 2]);
    }
    for ((b, _), (a, loaded)) in before.iter().zip(worker_states(&pool)) {
        assert!(!loaded && !a.holds_tiles);
        let delta = |f: fn(&ThreadStats) -> u64| f(&a) - f(b);
        assert_eq!(
            (delta(|s| s.config_loads), delta(|s| s.config_skips), delta(|s| s.releases)),
            (2, 2, 2)
        );
    }
}

#[test]
fn an_engine_thread_that_ran_amx_parts_is_released_at_exit() {
    let Some(amx) = amx_or_skip() else { return };
    let (m, n, k, format) = (32, 48, 256, Format::Q4_K);
    let w = packed(format, n, k);
    let xv = vec![0.25f32; m * k];
    let x = MatRef::new(&xv, m, k, k).expect("x");
    let acts = PreparedActivations::prepare(format, &x, Path::Amx).expect("prepare");
    let mut yv = vec![0f32; m * n];
    let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
    let plan = Matmul::new(&w, format, acts.prepared().expect("p"), &mut y, 1).expect("plan");
    let before = tile_state::exit_releases();
    std::thread::scope(|s| {
        // Joined explicitly: `join` waits for thread-local destructors, the end of the
        // scope only for the closure.
        s.spawn(|| {
            for part in plan.parts() {
                part.run_local().expect("part");
            }
            // The part keeps the configuration (the next part would skip ldtilecfg).
            assert!(tile_state::thread_stats().holds_tiles);
            assert!(amx.store_config().is_ok_and(|c| c.is_some()));
            // Exits without release_thread(): the thread-local destructor releases.
        })
        .join()
        .expect("engine thread");
    });
    // No other test in this binary lets a thread exit holding tiles (pool workers release
    // after every job), so exactly one exit release happened.
    assert_eq!(tile_state::exit_releases(), before + 1);
}
