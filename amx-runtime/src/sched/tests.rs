use super::*;
use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu_like::GpuLikeBackend;
use crate::placement::place;
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
