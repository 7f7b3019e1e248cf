//! A toy engine loop on amx-runtime: one pre-norm transformer-ish block (RMS norm, Q, K
//! and V projections, an MLP) with Q4_0 weights. Part 1 goes through the graph layer:
//! placement asks the AMX buffer type about each weight's real consumer, the scheduler
//! routes every packed matmul to the CPU backend, whose GEMM runs on the pool. Part 2 is
//! an engine's own hot loop on the pool: X prepared once for Q, K and V, then the MLP.
//! Run: `cargo run --release -p amx-runtime --example toy_engine`
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use amx_core::formats::Format;
use amx_core::gemm::{MatMut as Out, MatRef as In, Path};
use amx_runtime::backend::{Backend, cpu::CpuBackend};
use amx_runtime::buffer::{Kernel, host::host};
use amx_runtime::graph::Graph;
use amx_runtime::op::Op;
use amx_runtime::pool::Pool;
use amx_runtime::tensor::{DType, f32_to_bytes};
use amx_runtime::{exec, placement, sched, tile_state};

const D: usize = 1024; // model width
const F: usize = 2048; // MLP width
const M: usize = 64; // tokens per step (prefill-sized: the AMX path)
const FMT: Format = Format::Q4_0;

/// One row of `x / sqrt(mean(x^2) + eps)`, as the graph's RMS_NORM.
fn rms_norm(r: &[f32]) -> impl Iterator<Item = f32> + '_ {
    let s = (r.iter().map(|v| v * v).sum::<f32>() / D as f32 + 1e-6).sqrt().recip();
    r.iter().map(move |v| v * s)
}

fn main() -> Result<(), Box<dyn Error>> {
    let pool = Arc::new(Pool::new(2));
    println!("AMX: {:?}, pool of {} threads", tile_state::amx_status().is_ok(), pool.threads());
    let (mut g, mut data) = (Graph::new(), Vec::new());
    let x = g.input("x", DType::F32, &[D, M])?;
    let norm_w = g.weight("norm.weight", DType::F32, &[D])?;
    data.push((norm_w, f32_to_bytes(&vec![1.0; D])));
    let mut w = |g: &mut Graph, name: &str, k: usize, n: usize| -> Result<_, Box<dyn Error>> {
        let id = g.weight(name, DType::Block(FMT), &[k, n])?;
        data.push((id, amx_testdata::weights::bench_weights(FMT, id.0 as u64, n, k)?));
        Ok(id)
    };
    let (wq, wk, wv) = (w(&mut g, "wq", D, D)?, w(&mut g, "wk", D, D)?, w(&mut g, "wv", D, D)?);
    let (up, down) = (w(&mut g, "up", D, F)?, w(&mut g, "down", F, D)?);
    let h = g.unary("norm", Op::RmsNorm { eps: 1e-6 }, x)?;
    let h = g.mul("norm_scaled", h, norm_w)?;
    let (q, k, v) = (g.mul_mat("q", wq, h)?, g.mul_mat("k", wk, h)?, g.mul_mat("v", wv, h)?);
    let (qk, attn_in) = (g.add("q+k", q, k)?, v); // q + k + v stands in for attention
    let attn = g.add("attn", qk, attn_in)?;
    let ff = g.mul_mat("ff_up", up, attn)?;
    let ff = g.unary("ff_act", Op::Silu, ff)?;
    let out = g.mul_mat("ff_down", down, ff)?;

    // Load: each weight goes to the first buffer type that accepts its real consumer.
    let cpu = CpuBackend::with_pool(pool.clone());
    let prefs = [cpu.extra_bufts(), &[host()][..]].concat(); // AMX first, host as fallback
    let placement = placement::place(&g, |_, _| prefs.clone())?;
    let weights = placement.load(|id| data.iter().find(|(t, _)| *t == id).map(|(_, b)| &b[..]))?;
    let backends: [&dyn Backend; 1] = [&cpu];
    let schedule = sched::schedule(&g, &weights, &backends)?;
    print!("{placement}");

    // Part 1: the engine loop through the graph executor.
    let xs: Vec<f32> = (0..D * M).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    for step in 0..3 {
        let t = Instant::now();
        let run = exec::run(&g, &schedule, &backends, &weights, &[(x, &f32_to_bytes(&xs))])?;
        let y = run.f32(out)?;
        let packed = run.records.iter().filter(|r| r.kernel != Kernel::Reference);
        let (dt, n) = (t.elapsed(), packed.count());
        println!("graph step {step}: {dt:?}, {n} packed matmuls, y[0] = {}", y[0]);
    }

    // Part 2: the engine's own hot loop on the pool, on the packed weights loaded above
    // (read as their owner, the AMX buffer type): X prepared once for Q, K and V.
    let amx = &*cpu.extra_bufts()[0];
    let packed = |id| -> Result<&[u8], Box<dyn Error>> {
        Ok(weights.get(id).ok_or("not loaded")?.owned_bytes(amx)?)
    };
    let (mut qkv, mut f, mut y) = (vec![0f32; 3 * M * D], vec![0f32; M * F], vec![0f32; M * D]);
    let mut buf = Vec::new(); // the prepared-X buffer, recycled step after step
    for step in 0..3 {
        let t = Instant::now();
        let xn: Vec<f32> = xs.chunks(D).flat_map(rms_norm).collect();
        let acts = pool.prepare_in(buf, FMT, &In::new(&xn, M, D, D)?, Path::Auto)?;
        for (wt, out) in [wq, wk, wv].into_iter().zip(qkv.chunks_mut(M * D)) {
            pool.matmul_prepared(&acts, packed(wt)?, FMT, &mut Out::new(out, M, D, D)?)?;
        }
        let path = acts.path();
        buf = acts.into_buffer();
        let a: Vec<f32> = (0..M * D).map(|i| (0..3).map(|j| qkv[j * M * D + i]).sum()).collect();
        pool.matmul(packed(up)?, FMT, &In::new(&a, M, D, D)?, &mut Out::new(&mut f, M, F, F)?)?;
        f.iter_mut().for_each(|v| *v /= 1.0 + (-*v).exp());
        pool.matmul(packed(down)?, FMT, &In::new(&f, M, F, F)?, &mut Out::new(&mut y, M, D, D)?)?;
        println!("pool step {step}: {:?} on {path:?}, y[0] = {}", t.elapsed(), y[0]);
    }
    Ok(())
}
