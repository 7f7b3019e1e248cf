//! The scenarios of the user's notes, on a 12-layer transformer-shaped graph with two
//! MoE layers (see `scenario_support::model`), weights cut from the GGUF test vectors.
//!
//! Each scenario checks (see `scenario_support::check`): placement put exactly the
//! offered MUL_MAT weights and quantized expert stacks outside the GPU layers in the AMX
//! buffer type; every op on a packed weight ran on the CPU backend through the AMX buffer
//! type's kernel (the GEMM on the AMX path; for MUL_MAT_ID the grouped expert kernel,
//! its busiest expert on the path `Auto` picks for its rows); no plain read of a non-host buffer happened (refusal counters are zero); every
//! op's output equals the reference op on the same inputs with the original weights
//! (bit for bit, or within NMSE 5e-4 for the packed GEMM); expert selection and logits
//! match a run without packing; no value is NaN or infinite.
//!
//! Run one by name: `cargo test -p amx-runtime --test scenarios scenario_moe`.

mod scenario_support;

use amx_runtime::backend::Backend;
use amx_runtime::buffer::Kernel;
use amx_runtime::error::{BufferError, ExecError, SchedError};
use amx_runtime::exec;
use amx_runtime::op::Op;
use amx_runtime::sched::Access;
use scenario_support::model::{LAYERS, M, MOE_LAYERS, TOP_K, layer_of};
use scenario_support::{
    Failure, NMSE_MAX, Outcome, Pack, Scenario, check, expert_rows, model, node_layer,
};

/// Packed ops when every offered weight outside the first `gpu` layers is packed: four
/// attention projections per layer, three FFN projections per dense layer (MUL_MAT),
/// three expert stacks per MoE layer (MUL_MAT_ID), the head.
fn all_packed(gpu: usize) -> usize {
    let cpu_layers = gpu..LAYERS;
    let moe = cpu_layers.clone().filter(|l| MOE_LAYERS.contains(l)).count();
    let dense = cpu_layers.len() - moe;
    4 * cpu_layers.len() + 3 * dense + 3 * moe + 1
}

/// Grouped (MUL_MAT_ID) ops when every offered weight outside the first `gpu` layers is
/// packed: three per MoE layer.
fn all_grouped(gpu: usize) -> usize {
    3 * MOE_LAYERS.iter().filter(|&&l| l >= gpu).count()
}

/// Asserts that the expert matmuls of MoE layer `l` ran on the CPU through the AMX buffer
/// type's grouped kernel, and prints each one's routed rows per expert and path.
fn assert_experts_grouped(o: &Outcome, l: usize) {
    let g = &model().graph;
    for node in ["up", "gate", "down"] {
        let name = format!("ffn_moe_{node}-{l}");
        let i = o.run.records.iter().position(|r| *r.node == *name).unwrap();
        let r = &o.run.records[i];
        assert_eq!((r.op, &*r.backend), (Op::MulMatId, "CPU"), "{name}");
        let Kernel::Packed { buft, path } = &r.kernel else {
            panic!("{name} ran {:?}, not the AMX grouped kernel", r.kernel)
        };
        assert_eq!(&**buft, "AMX", "{name}");
        assert_eq!((&*r.sources[0].1, r.sources[0].2), ("AMX", Access::Direct), "{name}");
        let rows = expert_rows(g, &g.nodes()[i], &o.run).unwrap();
        assert_eq!(rows.iter().sum::<usize>(), TOP_K * M, "{name}");
        println!("{name}: rows per expert {rows:?}, busiest on {}", path.name());
    }
}

fn pass(s: Scenario) -> Outcome {
    match check(&s) {
        Ok(o) => {
            println!("{s:?}\n{:#?}", o.summary);
            let sum = &o.summary;
            assert_eq!(sum.on_cpu + sum.on_gpu, model().graph.nodes().len());
            assert_eq!(sum.amx_weights, sum.packed_ops);
            assert!(sum.worst_packed_nmse <= NMSE_MAX && sum.logits_nmse <= NMSE_MAX);
            o
        }
        Err(f) => panic!("{s:?} failed: {f}"),
    }
}

#[test]
fn scenario_cpu_only() {
    let o = pass(Scenario::new(0, Pack::All));
    assert_eq!(o.summary.packed_ops, all_packed(0));
    assert_eq!(o.summary.grouped_ops, all_grouped(0));
    for l in MOE_LAYERS {
        assert_experts_grouped(&o, l);
    }
    assert_eq!((o.summary.on_gpu, o.summary.downloads), (0, 0));
    print!("{}", o.placement);
}

#[test]
fn scenario_gpu_first_layer() {
    let o = pass(Scenario::new(1, Pack::All));
    assert_eq!(o.summary.packed_ops, all_packed(1));
    assert_eq!(o.summary.grouped_ops, all_grouped(1));
    // Layer 1's MoE block is on the CPU side: its experts run the grouped kernel.
    assert_experts_grouped(&o, 1);
    // Layer 0's results come down from the GPU-like memory to the CPU's packed matmuls.
    assert!(o.summary.downloads > 0 && o.summary.on_gpu > 0);
    let m = model();
    for d in o.placement.decisions().iter().filter(|d| layer_of(&d.desc.name) == Some(0)) {
        assert_eq!(d.buft.id(), o.device.id(), "{}", d.desc.name);
    }
    assert_eq!(
        o.weights.get(m.graph.find("blk.1.attn_q.weight").unwrap()).unwrap().buft().id(),
        o.amx.id()
    );
}

#[test]
fn scenario_gpu_first_ten_layers() {
    let o = pass(Scenario::new(10, Pack::All));
    assert_eq!(o.summary.packed_ops, all_packed(10));
    assert_eq!(o.summary.grouped_ops, all_grouped(10));
    assert_experts_grouped(&o, LAYERS - 1);
    for r in o.run.records.iter().filter(|r| node_layer(&r.node).is_some_and(|l| l >= 10)) {
        if matches!(r.kernel, Kernel::Packed { .. }) {
            assert_eq!(&*r.backend, "CPU");
        }
    }
    assert!(o.schedule.count_on("GPU-like") > o.schedule.count_on("CPU"));
}

#[test]
fn scenario_qk_packed() {
    let pack = Pack::Only(&["attn_q", "attn_k"]);
    let o = pass(Scenario::new(1, pack));
    assert_eq!(o.summary.packed_ops, 2 * (LAYERS - 1));
    assert_eq!(o.summary.grouped_ops, 0);
}

#[test]
fn scenario_qkv_packed() {
    // The configuration of the user's NaN: Q, K and V packed, a GPU holding layers.
    let pack = Pack::Only(&["attn_q", "attn_k", "attn_v"]);
    let o = pass(Scenario::new(1, pack));
    assert_eq!(o.summary.packed_ops, 3 * (LAYERS - 1));
    assert_eq!(o.summary.grouped_ops, 0);
    for l in 1..LAYERS {
        for p in ["Qcur", "Kcur", "Vcur"] {
            let r = o.run.records.iter().find(|r| *r.node == *format!("{p}-{l}")).unwrap();
            assert_eq!(&*r.backend, "CPU", "{}", r.node);
            assert!(matches!(r.kernel, Kernel::Packed { .. }), "{}", r.node);
        }
    }
}

#[test]
fn scenario_moe() {
    // Layer 1's MoE block on the GPU-like backend, layer 11's on the CPU: weights stay
    // where they were placed (no offload). Everything else is offered to AMX, so it is
    // asked about the router and the expert stacks: it refuses the F32 router (the CPU
    // runs it on the host path) and accepts the quantized stacks, whose MUL_MAT_ID the
    // CPU runs through the AMX buffer type's grouped kernel.
    let o = pass(Scenario::new(2, Pack::All).without_offload());
    assert_eq!(o.summary.packed_ops, all_packed(2));
    assert_eq!(o.summary.grouped_ops, 3);
    let m = model();
    let g = &m.graph;
    let report = o.placement.to_string();
    print!("{report}");
    let last = LAYERS - 1;
    let line = |role: &str| {
        let name = format!("blk.{last}.{role}.weight");
        report.lines().find(|s| s.starts_with(&name)).unwrap().to_owned()
    };
    let router = line("ffn_gate_inp");
    assert!(router.contains(&format!("-> host: AMX refuses MUL_MAT ffn_moe_logits-{last};")));
    for (role, node) in
        [("ffn_up_exps", "up"), ("ffn_gate_exps", "gate"), ("ffn_down_exps", "down")]
    {
        let l = line(role);
        let accepted =
            format!("-> AMX: accepts MUL_MAT_ID ffn_moe_{node}-{last}(blk.{last}.{role}");
        assert!(l.contains(&accepted), "{l}");
    }
    for moe in MOE_LAYERS {
        let rec = |node: &str| {
            let name = format!("ffn_moe_{node}-{moe}");
            o.run.records.iter().find(|r| *r.node == *name).unwrap()
        };
        let side = if moe < 2 { "GPU-like" } else { "CPU" };
        assert_eq!(&*rec("logits").backend, side);
        assert_eq!(rec("logits").kernel, Kernel::Reference);
        if moe < 2 {
            for node in ["up", "gate", "down"] {
                assert_eq!(&*rec(node).backend, "GPU-like", "ffn_moe_{node}-{moe}");
                assert_eq!(rec(node).kernel, Kernel::Reference);
            }
        } else {
            assert_experts_grouped(&o, moe);
        }
        // The GPU-like has no top-k: the selection runs on the CPU, its input (the
        // probabilities, computed on the GPU-like) downloaded.
        assert_eq!(&*rec("topk").backend, "CPU");
        assert_eq!(rec("topk").sources[0].2, Access::Download);
        // The routing weights' sum (the tensor that held the NaN) is finite, and the
        // normalised weights of each token add up to one.
        let sum = o.run.f32(g.find(&format!("ffn_moe_weights_sum-{moe}")).unwrap()).unwrap();
        assert!(sum.iter().all(|s| s.is_finite() && *s > 0.0 && *s <= 1.0), "{sum:?}");
        let norm = o.run.f32(g.find(&format!("ffn_moe_weights_norm-{moe}")).unwrap()).unwrap();
        for w in norm.chunks_exact(TOP_K) {
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{w:?}");
        }
        // Tokens do not all pick the same experts.
        let mut used = o.run.f32(g.find(&format!("ffn_moe_topk-{moe}")).unwrap()).unwrap();
        used.sort_by(f32::total_cmp);
        used.dedup();
        assert!(used.len() > TOP_K, "layer {moe}: every token picked the same experts: {used:?}");
    }
    // The CPU-side MoE block's output against the run without packing (the per-op
    // checks compare each op on the same inputs; this compares the whole block).
    let unpacked = scenario_support::unpacked_run();
    let out = g.find(&format!("ffn_moe_out-{last}")).unwrap();
    let e = scenario_support::nmse(&o.run.f32(out).unwrap(), &unpacked.f32(out).unwrap());
    assert!(e <= NMSE_MAX, "ffn_moe_out-{last}: NMSE {e} against the run without packing");
    // The attention of the CPU-side MoE layer ran on packed weights.
    let q = o.run.records.iter().find(|r| *r.node == *format!("Qcur-{last}")).unwrap();
    assert!(matches!(q.kernel, Kernel::Packed { .. }));
}

#[test]
fn scenario_without_is_host_override_fails() {
    // The same checks, with the CPU backend as it was before the fix: it refuses its own
    // AMX buffer type, so no backend can read the first packed weight (the Q projection,
    // or with only the expert stacks offered, the CPU-side MoE layer's up stack) and the
    // graph is refused.
    const EXPERTS: Pack = Pack::Only(&["ffn_up_exps", "ffn_gate_exps", "ffn_down_exps"]);
    let last = LAYERS - 1;
    for (gpu_layers, pack, node, kind, weight) in [
        (0, Pack::All, "Qcur-0".to_owned(), "MUL_MAT", "blk.0.attn_q.weight".to_owned()),
        (
            1,
            Pack::Only(&["attn_q", "attn_k", "attn_v"]),
            "Qcur-1".to_owned(),
            "MUL_MAT",
            "blk.1.attn_q.weight".to_owned(),
        ),
        (10, Pack::All, "Qcur-10".to_owned(), "MUL_MAT", "blk.10.attn_q.weight".to_owned()),
        (
            2,
            EXPERTS,
            format!("ffn_moe_up-{last}"),
            "MUL_MAT_ID",
            format!("blk.{last}.ffn_up_exps.weight"),
        ),
    ] {
        let s = Scenario::new(gpu_layers, pack).without_is_host_override();
        match check(&s) {
            Err(Failure::Sched(e)) => {
                let want = SchedError::UnreadableSource {
                    op: node.clone().into(),
                    kind,
                    tensor: weight.into(),
                    buft: "AMX".into(),
                };
                assert_eq!(e, want);
                let msg = e.to_string();
                assert!(msg.contains(&format!("{kind} {node}")), "{msg}");
            }
            Err(f) => panic!("{s:?}: failed, but not with the scheduler's refusal: {f}"),
            Ok(_) => panic!("{s:?}: passed without the is_host override"),
        }
    }
    // And if an op on a packed weight were routed to the GPU-like backend anyway (as the
    // C++ scheduler did), its copy-up of the packed weight is refused and counted: never
    // read as data. Both kernels' weights: a Q projection and an expert stack.
    let o = pass(Scenario::new(1, Pack::All));
    let m = model();
    let g = &m.graph;
    let inputs = scenario_support::inputs(m);
    let backends: [&dyn Backend; 2] = [&o.gpu, &o.cpu];
    let gpu = o.schedule.backends.iter().position(|b| &**b == "GPU-like").unwrap();
    assert_eq!(o.weights.refused_reads(), 0);
    for (i, (node, weight)) in
        [("Qcur-1", "blk.1.attn_q.weight"), ("ffn_moe_up-1", "blk.1.ffn_up_exps.weight")]
            .into_iter()
            .enumerate()
    {
        let at = g.nodes().iter().position(|n| &*g.tensor(n.dst).name == node).unwrap();
        let mut forced = o.schedule.clone();
        forced.plans[at].backend = gpu;
        let e = exec::run(g, &forced, &backends, &o.weights, &inputs).unwrap_err();
        let want = BufferError::NotHost { tensor: weight.into(), buft: "AMX".into() };
        assert_eq!(e, ExecError::Buffer(want));
        assert_eq!(o.weights.refused_reads(), i + 1);
    }
}
