use amx_core::formats::Format;

use super::*;
use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu_like::GpuLikeBackend;
use crate::placement::place;
use crate::tensor::DType;
use crate::test_util::{Fixture, fixture, fixture_data};

fn load(f: &Fixture, prefs: &[Buft]) -> Weights {
    let data = fixture_data(f);
    let p = place(&f.graph, |_, _| prefs.to_vec()).unwrap();
    p.load(|id| data.iter().find(|d| d.0 == id).map(|d| &d.1[..])).unwrap()
}

fn backend_of(f: &Fixture, s: &Schedule, name: &str) -> Arc<str> {
    let i = f.graph.nodes().iter().position(|n| &*f.graph.tensor(n.dst).name == name).unwrap();
    s.backends[s.plans[i].backend].clone()
}

#[test]
fn cpu_only_reads_everything_where_it_is() {
    let f = fixture();
    let cpu = CpuBackend::new();
    let w = load(&f, &[cpu.extra_bufts()[0].clone(), host()]);
    let s = schedule(&f.graph, &w, &[&cpu]).unwrap();
    assert_eq!(s.count_on("CPU"), f.graph.nodes().len());
    assert!(s.plans.iter().all(|p| p.access.iter().all(|&a| a == Access::Direct)));
}

#[test]
fn packed_ops_stay_on_the_cpu_and_the_rest_goes_to_the_gpu() {
    let f = fixture();
    let (gpu, cpu) = (GpuLikeBackend::new(), CpuBackend::new());
    let w = load(&f, &[cpu.extra_bufts()[0].clone(), host()]);
    let s = schedule(&f.graph, &w, &[&gpu, &cpu]).unwrap();
    assert_eq!(&*backend_of(&f, &s, "y"), "CPU");
    assert_eq!(s.plans[0].access, [Access::Direct, Access::Direct]);
    // z = y * norm: both in host memory, copied up.
    assert_eq!(&*backend_of(&f, &s, "z"), "GPU-like");
    assert_eq!(s.plans[1].access, [Access::Upload, Access::Upload]);
    assert_eq!(&*backend_of(&f, &s, "s"), "GPU-like");
    // The GPU has no top-k: its input comes down to the CPU.
    assert_eq!(&*backend_of(&f, &s, "top"), "CPU");
    assert_eq!(s.plans[3].access, [Access::Download]);
    assert_eq!(&*backend_of(&f, &s, "out"), "GPU-like");
}

#[test]
fn without_the_override_the_packed_weight_is_refused_by_name() {
    let f = fixture();
    let gpu = GpuLikeBackend::new();
    let cpu = CpuBackend::new();
    let bugged = CpuBackend::without_is_host_override(cpu.extra_bufts().to_vec());
    let w = load(&f, &[cpu.extra_bufts()[0].clone(), host()]);
    for backends in [&[&gpu as &dyn Backend, &bugged][..], &[&bugged]] {
        let e = schedule(&f.graph, &w, backends).unwrap_err();
        assert_eq!(
            e,
            SchedError::UnreadableSource {
                op: "y".into(),
                kind: "MUL_MAT",
                tensor: "w".into(),
                buft: "AMX".into()
            }
        );
    }
}

#[test]
fn other_refusals() {
    let f = fixture();
    let cpu = CpuBackend::new();
    let gpu = GpuLikeBackend::new();
    let w = load(&f, &[host()]);
    assert_eq!(schedule(&f.graph, &w, &[]).unwrap_err(), SchedError::NoBackends);
    // The GPU alone cannot run TOP_K.
    let e = schedule(&f.graph, &w, &[&gpu]).unwrap_err();
    assert_eq!(e, SchedError::NoBackend { op: "top".into(), kind: "TOP_K" });
    let e = schedule(&f.graph, &Weights::default(), &[&cpu]).unwrap_err();
    assert_eq!(e, SchedError::NotLoaded { tensor: "w".into() });
}

#[test]
fn without_offload_ops_on_host_weights_stay_on_the_cpu() {
    let f = fixture();
    let (gpu, cpu) = (GpuLikeBackend::new(), CpuBackend::new());
    let w = load(&f, &[host()]);
    let backends: [&dyn Backend; 2] = [&gpu, &cpu];
    let offload = schedule(&f.graph, &w, &backends).unwrap();
    assert_eq!(&*backend_of(&f, &offload, "y"), "GPU-like");
    assert_eq!(offload.plans[0].access, [Access::Upload, Access::Upload]);
    let options = SchedOptions { offload_host_weights: false };
    let s = schedule_with(&f.graph, &w, &backends, options).unwrap();
    assert_eq!(&*backend_of(&f, &s, "y"), "CPU");
    assert_eq!(&*backend_of(&f, &s, "z"), "CPU");
    // Ops without weights still go to the highest priority.
    assert_eq!(&*backend_of(&f, &s, "s"), "GPU-like");
    assert_eq!(s.plans[2].access, [Access::Upload]);
    // With no backend able to read a host weight in place, the op has no backend.
    let e = schedule_with(&f.graph, &w, &[&gpu], options).unwrap_err();
    assert_eq!(e, SchedError::NoBackend { op: "y".into(), kind: "MUL_MAT" });
}

/// Weights loaded for `graph` from the fixture's bytes (same ids and sizes).
fn load_for(graph: &Graph, f: &Fixture) -> Weights {
    let data = fixture_data(f);
    let p = place(graph, |_, _| vec![host()]).unwrap();
    p.load(|id| data.iter().find(|d| d.0 == id).map(|d| &d.1[..])).unwrap()
}

/// Weights placed for another graph whose tensor ids coincide used to be taken as they
/// were (same ids, same sizes: the schedule and the run went through with another
/// model's tensors); now they are refused, naming what each side has at that id.
#[test]
fn weights_of_another_graph_are_refused_naming_both() {
    let f = fixture();
    let cpu = CpuBackend::new();
    // Same ids, types and shapes, other names.
    let mut other = Graph::new();
    other.weight("w.other", DType::Block(Format::Q8_0), &[64, 32]).unwrap();
    other.weight("norm", DType::F32, &[32]).unwrap();
    other.weight("emb", DType::Block(Format::Q8_0), &[32, 32]).unwrap();
    let w = load_for(&other, &f);
    let e = schedule(&f.graph, &w, &[&cpu]).unwrap_err();
    let want = SchedError::ForeignWeights {
        id: 0,
        graph: "w [64, 32] Q8_0".into(),
        loaded: "w.other [64, 32] Q8_0".into(),
    };
    assert_eq!(e, want);
    assert!(e.to_string().contains("tensor #0 is w [64, 32] Q8_0 in this graph"), "{e}");
    // The fixture's weights plus one where the fixture has its input.
    let mut more = Graph::new();
    more.weight("w", DType::Block(Format::Q8_0), &[64, 32]).unwrap();
    more.weight("norm", DType::F32, &[32]).unwrap();
    more.weight("emb", DType::Block(Format::Q8_0), &[32, 32]).unwrap();
    more.weight("x", DType::F32, &[64, 20]).unwrap();
    let e = schedule(&f.graph, &load_for(&more, &f), &[&cpu]).unwrap_err();
    let want = SchedError::ForeignWeights {
        id: 3,
        graph: "the input x [64, 20] F32".into(),
        loaded: "x [64, 20] F32".into(),
    };
    assert_eq!(e, want);
    // Another instance of the same graph (a prefill and a decode graph of one model
    // share their weights) is the same weights.
    let same = fixture();
    let w = load(&same, &[cpu.extra_bufts()[0].clone(), host()]);
    assert!(schedule(&f.graph, &w, &[&cpu]).is_ok());
}
