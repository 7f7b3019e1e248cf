//! MoE layer throughput (`amx-bench moe`): an expert stack shaped like Qwen3-30B-A3B's
//! (128 experts, top-8, K = 2048, N = 768), tokens per second of the grouped kernel and of
//! a loop of per-expert dense calls (one M = 1 call per routed row, what an engine without
//! a grouped kernel does), in the same run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use amx_core::formats::Format;
use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path};
use amx_core::moe::{Grouped, MoeShape, grouped_workspace_bytes};
use amx_core::pack::{self, PackedRef};

use amx_testdata::random::pseudo_random_bytes;
use amx_testdata::weights::bench_weights;

/// The MoE layer of the benchmark.
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    /// Experts in the stack.
    pub experts: usize,
    /// Experts per token.
    pub top_k: usize,
    /// Values per row.
    pub k: usize,
    /// Outputs per expert.
    pub n: usize,
}

/// Qwen3-30B-A3B's expert FFN (one of its projections).
pub const QWEN3_30B_A3B: Layer = Layer { experts: 128, top_k: 8, k: 2048, n: 768 };

/// Deterministic routing: each token's top-k distinct experts, spread over the stack.
pub fn routing(tokens: usize, layer: &Layer) -> Vec<u32> {
    let r = pseudo_random_bytes(17, tokens * layer.top_k * 2);
    let mut ids = Vec::with_capacity(tokens * layer.top_k);
    for t in 0..tokens {
        let mut chosen: Vec<u32> = Vec::new();
        let mut i = 0;
        while chosen.len() < layer.top_k {
            let e = (u32::from(r[(t * layer.top_k * 2 + i) % r.len()]) * 7 + i as u32 + t as u32)
                % layer.experts as u32;
            if !chosen.contains(&e) {
                chosen.push(e);
            }
            i += 1;
        }
        ids.extend(chosen);
    }
    ids
}

/// Tokens per second of the grouped kernel (`grouped`) or the per-row loop (`loop`).
pub fn tokens_per_s(
    format: Format,
    layer: &Layer,
    tokens: usize,
    grouped: bool,
    threads: usize,
) -> Result<f64, GemmError> {
    let src = bench_weights(format, 3, layer.experts * layer.n, layer.k)?;
    let mut packed = vec![0u8; pack::packed_size(format, layer.n, layer.k, layer.experts)?];
    pack::pack(format, layer.n, layer.k, layer.experts, &src, &mut packed)?;
    let x: Vec<f32> = pseudo_random_bytes(5, tokens * layer.k)
        .iter()
        .map(|&b| f32::from(b) / 128.0 - 1.0)
        .collect();
    let ids = routing(tokens, layer);
    let rows = tokens * layer.top_k;
    let mut y = vec![0f32; rows * layer.n];
    let shape =
        MoeShape { experts: layer.experts, n: layer.n, k: layer.k, tokens, top_k: layer.top_k };
    let mut ws = vec![0u8; grouped_workspace_bytes(format, &shape, Path::Auto)?];
    let scratch_len = gemm::scratch_bytes(format, layer.k, Path::Auto)?;
    let mut scratches: Vec<Vec<u8>> = (0..threads.max(1)).map(|_| vec![0u8; scratch_len]).collect();
    let stack = PackedRef::parse(&packed)?;
    let mut dense_ws = vec![0u8; gemm::prepared_bytes(format, 1, layer.k, Path::Auto)?];
    let xr = MatRef::new(&x, tokens, layer.k, layer.k)?;
    let mut once = |y: &mut Vec<f32>| -> Result<(), GemmError> {
        if grouped {
            let (mut call, _) =
                Grouped::new(&packed, format, &xr, &ids, layer.top_k, Path::Auto, &mut ws)?;
            if threads <= 1 {
                call.run_all(&mut scratches[0])?;
                let mut ym = MatMut::new(y, rows, layer.n, layer.n)?;
                return call.scatter(&mut ym);
            }
            // Items of four panels, claimed by the threads as they go.
            call.split(4)?;
            std::thread::scope(|s| {
                let call = &call;
                let handles: Vec<_> = scratches
                    .iter_mut()
                    .map(|scratch| s.spawn(move || call.run_all(scratch)))
                    .collect();
                handles.into_iter().try_for_each(|h| h.join().expect("moe thread"))
            })?;
            let mut ym = MatMut::new(y, rows, layer.n, layer.n)?;
            return call.scatter(&mut ym);
        }
        for (row, &e) in ids.iter().enumerate() {
            let t = row / layer.top_k;
            let w = stack.matrix(e as usize).ok_or(GemmError::Overflow)?;
            let xt = MatRef::new(&x[t * layer.k..(t + 1) * layer.k], 1, layer.k, layer.k)?;
            let prepared = gemm::prepare(format, &xt, Path::Auto, &mut dense_ws)?;
            let out = &mut y[row * layer.n..(row + 1) * layer.n];
            let mut ym = MatMut::new(out, 1, layer.n, layer.n)?;
            let panels = w.layout().panels();
            gemm::gemm_range(&w, &prepared, &mut ym, 0..panels, 0..1, &mut scratches[0])?;
        }
        Ok(())
    };
    once(&mut y)?;
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(400) || times.len() < 3 {
        let t = Instant::now();
        once(&mut y)?;
        times.push(t.elapsed());
        black_box(&y);
    }
    times.sort();
    Ok(tokens as f64 / times[times.len() / 2].as_secs_f64())
}

/// Tokens per second the read bandwidth allows at T = 1: each token reads its `top_k`
/// experts' packed weights once, read here by the bandwidth loop from a buffer of that
/// size (reused, as the benchmark's single token reuses its experts).
pub fn bound_tokens_per_s(format: Format, layer: &Layer) -> Result<f64, GemmError> {
    let per_expert = pack::packed_size(format, layer.n, layer.k, 1)?;
    let bytes = per_expert * layer.top_k;
    let pool = amx_runtime::pool::Pool::new(1);
    let bw = crate::gemm_bench::read_bandwidth(bytes, bytes, &pool, Duration::from_millis(300));
    Ok(bw / bytes as f64)
}
