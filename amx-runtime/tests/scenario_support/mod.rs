//! The scenario harness: place, schedule and run the model of [`model`] on a CPU backend
//! (and a GPU-like backend holding the first layers), then check what the user's notes
//! ask: every op on a packed weight ran on the CPU through the AMX kernel (the GEMM for
//! MUL_MAT, the grouped expert kernel for MUL_MAT_ID), no plain read
//! of packed bytes happened, every op's output equals the reference op on the same
//! inputs with the original (unpacked) weights, the logits match a run without packing,
//! and nothing is NaN.

pub mod model;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use amx_core::gemm::Path;
use amx_runtime::backend::Backend;
use amx_runtime::backend::cpu::CpuBackend;
use amx_runtime::backend::gpu_like::GpuLikeBackend;
use amx_runtime::buffer::amx::AmxBufferType;
use amx_runtime::buffer::host::host;
use amx_runtime::buffer::{Buft, Kernel};
use amx_runtime::error::{ExecError, PlaceError, SchedError};
use amx_runtime::exec::{self, Run};
use amx_runtime::graph::{Graph, Node, TensorKind};
use amx_runtime::op::{Op, OpDesc, Operand};
use amx_runtime::placement::{self, Placement, Weights};
use amx_runtime::pool::Pool;
use amx_runtime::reference;
use amx_runtime::sched::{self, Access, SchedOptions, Schedule};
use amx_runtime::tensor::{DType, TensorId, f32_from_bytes, i32_from_bytes};

use model::{Model, layer_of, role_of};

/// The packed GEMM against the reference op on the same inputs (AMX BF16 or VNNI int8
/// activations): the bound of the test vectors.
pub const NMSE_MAX: f64 = 5e-4;

/// Which weights the engine offers to the AMX buffer type (the buffer type still decides).
#[derive(Clone, Copy, Debug)]
pub enum Pack {
    /// Every weight outside the GPU layers.
    All,
    /// Weights with these roles (`attn_q`, `attn_k`, ...).
    Only(&'static [&'static str]),
}

/// One scenario of the user's notes.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Layers held by the GPU-like backend (0: no GPU-like backend at all).
    pub gpu_layers: usize,
    /// What is offered to the AMX buffer type.
    pub pack: Pack,
    /// Whether the CPU backend has its `is_host` override (false only for the regression).
    pub is_host_override: bool,
    /// Whether ops on host weights may be offloaded to the GPU-like backend
    /// ([`SchedOptions::offload_host_weights`]).
    pub offload_host_weights: bool,
}

impl Scenario {
    /// The first `gpu_layers` layers on the GPU-like backend, `pack` offered to AMX, the
    /// `is_host` override on, host weights offloaded.
    pub const fn new(gpu_layers: usize, pack: Pack) -> Scenario {
        Scenario { gpu_layers, pack, is_host_override: true, offload_host_weights: true }
    }

    /// The same, with the CPU backend as it was before the fix.
    pub const fn without_is_host_override(self) -> Scenario {
        Scenario { is_host_override: false, ..self }
    }

    /// The same, with ops on host weights kept where the weights are (the CPU).
    pub const fn without_offload(self) -> Scenario {
        Scenario { offload_host_weights: false, ..self }
    }
}

/// Why a scenario failed.
#[derive(Debug)]
pub enum Failure {
    /// Placement refused.
    Place(PlaceError),
    /// The scheduler refused the graph.
    Sched(SchedError),
    /// The run failed.
    Exec(ExecError),
    /// A check failed.
    Check(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Place(e) => write!(f, "placement: {e}"),
            Failure::Sched(e) => write!(f, "schedule: {e}"),
            Failure::Exec(e) => write!(f, "run: {e}"),
            Failure::Check(s) => write!(f, "check: {s}"),
        }
    }
}

fn fail(msg: String) -> Failure {
    Failure::Check(msg)
}

/// What a passing scenario saw.
#[derive(Debug)]
pub struct Summary {
    /// Ops that ran on packed weights (each through the AMX buffer type's GEMM or grouped
    /// expert kernel).
    pub packed_ops: usize,
    /// Of those, the MUL_MAT_IDs on packed expert stacks (the grouped kernel).
    pub grouped_ops: usize,
    /// Weights placed in the AMX buffer type.
    pub amx_weights: usize,
    /// Nodes run by each backend.
    pub on_gpu: usize,
    /// Nodes run by the CPU backend.
    pub on_cpu: usize,
    /// Sources downloaded from the GPU-like memory for the CPU.
    pub downloads: usize,
    /// Worst NMSE of a packed op against the reference op on the same inputs.
    pub worst_packed_nmse: f64,
    /// NMSE of the logits against the run without packing.
    pub logits_nmse: f64,
}

/// Everything a scenario built, for checks beyond the common ones.
pub struct Outcome {
    /// The placement (print it for the report).
    pub placement: Placement,
    /// The loaded weights.
    pub weights: Weights,
    /// The schedule.
    pub schedule: Schedule,
    /// The run.
    pub run: Run,
    /// The AMX buffer type used.
    pub amx: Buft,
    /// The GPU-like device memory.
    pub device: Buft,
    /// The GPU-like backend (first in the list when `gpu_layers > 0`).
    pub gpu: GpuLikeBackend,
    /// The CPU backend.
    pub cpu: CpuBackend,
    /// The common checks' summary.
    pub summary: Summary,
}

/// The model, built once per test binary.
pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(model::build)
}

fn pool() -> Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(Pool::new(2))).clone()
}

/// The graph inputs' bytes, for [`exec::run`].
pub fn inputs(m: &Model) -> Vec<(TensorId, &[u8])> {
    m.inputs.iter().map(|id| (*id, &m.data[id][..])).collect()
}

fn data<'m>(m: &'m Model) -> impl Fn(TensorId) -> Option<&'m [u8]> + 'm {
    |id| m.data.get(&id).map(Vec::as_slice)
}

/// The run without packing: every weight in host memory, CPU only.
pub fn unpacked_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let m = model();
        let cpu = CpuBackend::new();
        let p = placement::place(&m.graph, |_, _| vec![host()]).expect("place");
        let w = p.load(data(m)).expect("load");
        let s = sched::schedule(&m.graph, &w, &[&cpu]).expect("schedule");
        exec::run(&m.graph, &s, &[&cpu], &w, &inputs(m)).expect("run")
    })
}

/// The roles whose weight is consumed by a MUL_MAT on a block-format weight, or by a
/// MUL_MAT_ID on a block-format expert stack: the only ones the AMX buffer type can
/// accept (the expectation, stated independently).
const MATMUL_ROLES: [&str; 7] =
    ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_gate", "ffn_down"];
/// The expert stacks among them (MUL_MAT_ID).
const EXPERT_ROLES: [&str; 3] = ["ffn_up_exps", "ffn_gate_exps", "ffn_down_exps"];

fn is_expert_stack(name: &str) -> bool {
    role_of(name).is_some_and(|r| EXPERT_ROLES.contains(&r))
}

fn offered(pack: Pack, name: &str) -> bool {
    match (pack, role_of(name)) {
        (Pack::All, _) => true,
        (Pack::Only(roles), Some(role)) => roles.contains(&role),
        (Pack::Only(_), None) => false,
    }
}

/// The layer of a node (`Qcur-3` is in layer 3), if it has one.
pub fn node_layer(name: &str) -> Option<usize> {
    name.rsplit_once('-')?.1.parse().ok()
}

/// Places, schedules, runs and checks scenario `s`.
pub fn check(s: &Scenario) -> Result<Outcome, Failure> {
    let m = model();
    let amx: Buft = Arc::new(AmxBufferType::with_pool(pool()));
    let cpu = if s.is_host_override {
        CpuBackend::with_extra(vec![amx.clone()])
    } else {
        CpuBackend::without_is_host_override(vec![amx.clone()])
    };
    let gpu = GpuLikeBackend::new();
    let device = gpu.device_buft();
    let backends: Vec<&dyn Backend> = if s.gpu_layers > 0 { vec![&gpu, &cpu] } else { vec![&cpu] };
    // The engine's preference lists: GPU layers in device memory, the rest offered to
    // AMX as the scenario says, host memory last.
    let prefs = |_: TensorId, d: &amx_runtime::tensor::TensorDesc| match layer_of(&d.name) {
        Some(l) if l < s.gpu_layers => vec![device.clone(), host()],
        _ if offered(s.pack, &d.name) => vec![amx.clone(), host()],
        _ => vec![host()],
    };
    let placement = placement::place(&m.graph, prefs).map_err(Failure::Place)?;
    let weights = placement.load(data(m)).map_err(Failure::Place)?;
    let options = SchedOptions { offload_host_weights: s.offload_host_weights };
    let schedule =
        sched::schedule_with(&m.graph, &weights, &backends, options).map_err(Failure::Sched)?;
    let run =
        exec::run(&m.graph, &schedule, &backends, &weights, &inputs(m)).map_err(Failure::Exec)?;
    let summary = verify(s, m, &placement, &weights, &run, &amx, &device)?;
    Ok(Outcome { placement, weights, schedule, run, amx, device, gpu, cpu, summary })
}

fn verify(
    s: &Scenario,
    m: &Model,
    placement: &Placement,
    weights: &Weights,
    run: &Run,
    amx: &Buft,
    device: &Buft,
) -> Result<Summary, Failure> {
    let g = &m.graph;
    // Placement: AMX exactly for offered MUL_MAT weights and expert stacks outside the
    // GPU layers (and the output head), device memory for the GPU layers, host for the
    // rest.
    let (mut amx_weights, mut amx_stacks) = (0, 0);
    for d in placement.decisions() {
        let name = &d.desc.name;
        let gpu_layer = layer_of(name).is_some_and(|l| l < s.gpu_layers);
        let matmul = role_of(name).is_some_and(|r| MATMUL_ROLES.contains(&r))
            || is_expert_stack(name)
            || &**name == "output.weight";
        let want = if gpu_layer {
            device.id()
        } else if matmul && offered(s.pack, name) {
            amx_weights += 1;
            amx_stacks += usize::from(is_expert_stack(name));
            amx.id()
        } else {
            host().id()
        };
        if d.buft.id() != want {
            return Err(fail(format!(
                "{name} placed in {}, expected another buffer type",
                d.buft.name()
            )));
        }
    }
    // Every op on a packed weight: CPU, the AMX buffer type's kernel, the AMX path (for
    // MUL_MAT_ID, the path of its busiest expert).
    let (mut packed_ops, mut grouped_ops) = (0, 0);
    let (mut on_gpu, mut on_cpu, mut downloads) = (0, 0, 0);
    for (node, rec) in g.nodes().iter().zip(&run.records) {
        let packed_src = node.srcs.iter().any(|&t| {
            g.kind(t) == TensorKind::Weight
                && weights.get(t).is_some_and(|b| b.buft().id() == amx.id())
        });
        match (&*rec.backend, &rec.kernel, packed_src) {
            ("CPU", Kernel::Packed { buft, path }, true) if &**buft == amx.name() => {
                let want = match node.op {
                    Op::MulMatId => busiest_expert_path(g, node, run)?,
                    _ => Path::Amx,
                };
                if Path::Amx.available() && *path != want {
                    return Err(fail(format!(
                        "{} took the {} path, not {}",
                        rec.node,
                        path.name(),
                        want.name()
                    )));
                }
                packed_ops += 1;
                grouped_ops += usize::from(node.op == Op::MulMatId);
            }
            (_, Kernel::Reference, false) => {}
            (backend, kernel, _) => {
                return Err(fail(format!("{} ran on {backend} with {kernel:?}", rec.node)));
            }
        }
        match &*rec.backend {
            "CPU" => on_cpu += 1,
            _ => on_gpu += 1,
        }
        downloads += rec.sources.iter().filter(|s| s.2 == Access::Download).count();
        // Ops of the GPU layers run there, except TOP_K, which the GPU-like lacks.
        let gpu_layer = node_layer(&rec.node).is_some_and(|l| l < s.gpu_layers);
        let want_gpu = gpu_layer && !matches!(node.op, Op::TopK { .. });
        if want_gpu && &*rec.backend != "GPU-like" {
            return Err(fail(format!("{} of a GPU layer ran on {}", rec.node, rec.backend)));
        }
    }
    if packed_ops != amx_weights || grouped_ops != amx_stacks {
        return Err(fail(format!(
            "{packed_ops} ops ran on packed weights ({grouped_ops} grouped), {amx_weights} are \
             packed ({amx_stacks} expert stacks)"
        )));
    }
    let refused = run.refused_reads() + weights.refused_reads();
    if refused != 0 {
        return Err(fail(format!("{refused} plain reads of non-host buffers were refused")));
    }
    let worst_packed_nmse = per_op_against_reference(g, m, run)?;
    let want = unpacked_run();
    for node in g.nodes().iter().filter(|n| matches!(n.op, Op::TopK { .. })) {
        let got = run.bytes(node.dst).map_err(Failure::Exec)?;
        let same = want.bytes(node.dst).map_err(Failure::Exec)?;
        if got == same {
            continue;
        }
        // A different choice is allowed only at a near-tie: where, in the run without
        // packing, the gap between the last chosen and the first passed-over score is
        // within the difference the packed weights made to that token's scores.
        let Op::TopK { k } = node.op else { continue };
        let scores = node.srcs[0];
        let (a, b) =
            (run.f32(scores).map_err(Failure::Exec)?, want.f32(scores).map_err(Failure::Exec)?);
        let e = g.tensor(scores).ne[0];
        let (ids_got, ids_want) = (got.chunks_exact(4 * k), same.chunks_exact(4 * k));
        for (t, (ig, iw)) in ids_got.zip(ids_want).enumerate() {
            if ig == iw {
                continue;
            }
            let (ra, rb) = (&a[t * e..][..e], &b[t * e..][..e]);
            let mut sorted = rb.to_vec();
            sorted.sort_by(|x, y| y.total_cmp(x));
            let gap = sorted[k - 1] - sorted[k];
            let moved = ra.iter().zip(rb).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            // A NaN gap or shift is never a near-tie.
            let near_tie = gap.partial_cmp(&(2.0 * moved)).is_some_and(|o| o.is_le());
            if !near_tie {
                return Err(fail(format!(
                    "{}: expert selection of token {t} differs from the run without packing \
                     (score gap {gap}, packing moved the scores by at most {moved})",
                    g.tensor(node.dst).name
                )));
            }
        }
    }
    let got = run.f32(m.output).map_err(Failure::Exec)?;
    if !got.iter().all(|v| v.is_finite()) {
        return Err(fail("the logits are not all finite".into()));
    }
    let logits_nmse = nmse(&got, &want.f32(m.output).map_err(Failure::Exec)?);
    if logits_nmse.is_nan() || logits_nmse > NMSE_MAX {
        return Err(fail(format!("logits NMSE {logits_nmse} against the run without packing")));
    }
    Ok(Summary {
        packed_ops,
        grouped_ops,
        amx_weights,
        on_gpu,
        on_cpu,
        downloads,
        worst_packed_nmse,
        logits_nmse,
    })
}

/// The path [`Path::Auto`] picks for the busiest expert of MUL_MAT_ID `node` (most rows
/// routed to it by the run's expert ids): the path the grouped kernel reports.
fn busiest_expert_path(g: &Graph, node: &Node, run: &Run) -> Result<Path, Failure> {
    let stack = g.tensor(node.srcs[0]);
    let DType::Block(format) = stack.dtype else {
        return Err(fail(format!("{}: a packed stack of {}", stack.name, stack.dtype)));
    };
    let rows = expert_rows(g, node, run).map_err(Failure::Exec)?;
    let busiest = rows.into_iter().max().unwrap_or(0);
    Path::Auto.resolve(format, busiest).map_err(|e| fail(format!("{format}: {e}")))
}

/// Rows routed to each expert of MUL_MAT_ID `node` by the run's expert ids.
///
/// Errors: the ids cannot be read back.
pub fn expert_rows(g: &Graph, node: &Node, run: &Run) -> Result<Vec<usize>, ExecError> {
    let ids = i32_from_bytes(&run.bytes(node.srcs[2])?);
    let count = |e: usize| ids.iter().filter(|&&i| usize::try_from(i) == Ok(e)).count();
    Ok((0..g.tensor(node.srcs[0]).ne[2]).map(count).collect())
}

/// Normalised mean squared error (NaN when either side has a NaN).
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    amx_testdata::vectors::nmse(got, want)
}

/// Every node's output against the reference op on the same inputs, with the weights'
/// original bytes: identical for ops that ran the reference (on either backend),
/// within [`NMSE_MAX`] for the packed GEMM; no NaN (the masked scores hold -inf, as in
/// llama.cpp). Returns the worst packed NMSE.
fn per_op_against_reference(g: &Graph, m: &Model, run: &Run) -> Result<f64, Failure> {
    let mut worst = 0.0f64;
    let mut results: HashMap<TensorId, Vec<u8>> = HashMap::new();
    for (node, rec) in g.nodes().iter().zip(&run.records) {
        let srcs: Vec<&[u8]> = node
            .srcs
            .iter()
            .map(|s| match g.kind(*s) {
                TensorKind::Result(_) => &results[s][..],
                _ => &m.data[s][..],
            })
            .collect();
        let op = OpDesc {
            op: node.op,
            srcs: node
                .srcs
                .iter()
                .map(|&s| Operand { desc: g.tensor(s).clone(), buft: host(), contiguous: true })
                .collect(),
            dst: g.tensor(node.dst).clone(),
        };
        let want = reference::compute(&op, &srcs).map_err(Failure::Exec)?;
        let got = run.bytes(node.dst).map_err(Failure::Exec)?;
        let name = &rec.node;
        let floats = run.f32(node.dst).map_err(Failure::Exec)?;
        if let Some(i) = floats.iter().position(|v| v.is_nan()) {
            return Err(fail(format!("{name}: value {i} is NaN")));
        }
        if let Kernel::Packed { .. } = rec.kernel {
            let e = nmse(&f32_from_bytes(&got), &f32_from_bytes(&want));
            if e.is_nan() || e > NMSE_MAX {
                return Err(fail(format!("{name}: NMSE {e} against the reference op")));
            }
            worst = worst.max(e);
        } else if got != want {
            return Err(fail(format!("{name}: differs from the reference op on the same inputs")));
        }
        results.insert(node.dst, got);
    }
    Ok(worst)
}
