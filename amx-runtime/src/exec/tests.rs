use amx_core::formats::Format;

use super::*;
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu_like::GpuLikeBackend;
use crate::buffer::Buft;
use crate::placement::place;
use crate::sched::schedule;
use crate::test_util::{Fixture, fixture, fixture_data, nmse};

fn load(f: &Fixture, data: &[(TensorId, Vec<u8>)], prefs: &[Buft]) -> Weights {
    let p = place(&f.graph, |_, _| prefs.to_vec()).unwrap();
    p.load(|id| data.iter().find(|d| d.0 == id).map(|d| &d.1[..])).unwrap()
}

#[test]
fn hybrid_run_matches_the_plain_cpu_run() {
    let f = fixture();
    let data = fixture_data(&f);
    let x = data.iter().find(|d| d.0 == f.x).unwrap();
    let inputs = [(f.x, &x.1[..])];
    let (gpu, cpu) = (GpuLikeBackend::new(), CpuBackend::new());

    let plain_w = load(&f, &data, &[host()]);
    let plain_s = schedule(&f.graph, &plain_w, &[&cpu]).unwrap();
    let plain = run(&f.graph, &plain_s, &[&cpu], &plain_w, &inputs).unwrap();
    assert!(plain.records.iter().all(|r| r.kernel == Kernel::Reference));

    let w = load(&f, &data, &[cpu.extra_bufts()[0].clone(), host()]);
    let backends: [&dyn Backend; 2] = [&gpu, &cpu];
    let s = schedule(&f.graph, &w, &backends).unwrap();
    let hybrid = run(&f.graph, &s, &backends, &w, &inputs).unwrap();
    let y = &hybrid.records[0];
    assert_eq!((&*y.node, &*y.backend), ("y", "CPU"));
    assert!(matches!(y.kernel, Kernel::Packed { .. }), "{:?}", y.kernel);
    assert_eq!(&*y.sources[0].1, "AMX");
    assert_eq!(&*hybrid.records[1].backend, "GPU-like");
    assert!(hybrid.records[1].uploaded_bytes > 0);
    assert_eq!(hybrid.refused_reads() + w.refused_reads(), 0);

    let e = nmse(&hybrid.f32(f.y).unwrap(), &plain.f32(f.y).unwrap());
    assert!(e <= 5e-4, "NMSE {e}");
    assert!(hybrid.value(f.out).is_some_and(|b| !b.buft().is_host()));
    for id in [f.y, f.top, f.out] {
        assert!(hybrid.f32(id).unwrap().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn mismatched_schedules_and_missing_inputs_are_errors() {
    let f = fixture();
    let data = fixture_data(&f);
    let cpu = CpuBackend::new();
    let w = load(&f, &data, &[host()]);
    let s = schedule(&f.graph, &w, &[&cpu]).unwrap();
    let e = run(&f.graph, &s, &[&cpu], &w, &[]).unwrap_err();
    assert_eq!(e, ExecError::Input { tensor: "x".into() });
    let short = [(f.x, &[0u8; 4][..])];
    assert_eq!(
        run(&f.graph, &s, &[&cpu], &w, &short).unwrap_err(),
        ExecError::Input { tensor: "x".into() }
    );
    let mut cut = s.clone();
    cut.plans.pop();
    let x = data.iter().find(|d| d.0 == f.x).unwrap();
    let e = run(&f.graph, &cut, &[&cpu], &w, &[(f.x, &x.1[..])]).unwrap_err();
    assert!(matches!(e, ExecError::ScheduleMismatch { .. }), "{e}");
}

/// A run with weights loaded for another graph (same ids and sizes, other names) is
/// refused before any op runs, naming both tensors.
#[test]
fn weights_of_another_graph_are_refused() {
    let f = fixture();
    let data = fixture_data(&f);
    let cpu = CpuBackend::new();
    let w = load(&f, &data, &[host()]);
    let s = schedule(&f.graph, &w, &[&cpu]).unwrap();
    let mut other = Graph::new();
    other.weight("w", DType::Block(Format::Q8_0), &[64, 32]).unwrap();
    other.weight("norm.other", DType::F32, &[32]).unwrap();
    other.weight("emb", DType::Block(Format::Q8_0), &[32, 32]).unwrap();
    let p = place(&other, |_, _| vec![host()]).unwrap();
    let foreign = p.load(|id| data.iter().find(|d| d.0 == id).map(|d| &d.1[..])).unwrap();
    let x = data.iter().find(|d| d.0 == f.x).unwrap();
    let e = run(&f.graph, &s, &[&cpu], &foreign, &[(f.x, &x.1[..])]).unwrap_err();
    let want = ExecError::ForeignWeights {
        id: 1,
        graph: "norm [32] F32".into(),
        loaded: "norm.other [32] F32".into(),
    };
    assert_eq!(e, want);
    assert!(run(&f.graph, &s, &[&cpu], &w, &[(f.x, &x.1[..])]).is_ok());
}

/// A prepared graph gives what `run` gives, step after step, on the hybrid schedule
/// (AMX weights on the CPU, ops on the GPU-like backend, results downloaded).
#[test]
fn prepared_runs_match_run() {
    let f = fixture();
    let data = fixture_data(&f);
    let x = data.iter().find(|d| d.0 == f.x).unwrap();
    let inputs = [(f.x, &x.1[..])];
    let (gpu, cpu) = (GpuLikeBackend::new(), CpuBackend::new());
    let w = load(&f, &data, &[cpu.extra_bufts()[0].clone(), host()]);
    let backends: [&dyn Backend; 2] = [&gpu, &cpu];
    let s = schedule(&f.graph, &w, &backends).unwrap();
    let want = run(&f.graph, &s, &backends, &w, &inputs).unwrap();
    let mut p = Prepared::new(&f.graph, &s, &backends, 1024, &[f.y, f.top, f.out]).unwrap();
    for _ in 0..2 {
        p.run(&f.graph, &backends, &w, &inputs, &[]).unwrap();
        for id in [f.y, f.top, f.out] {
            assert_eq!(p.value(id).unwrap().download().unwrap(), want.bytes(id).unwrap());
        }
    }
    let kernels: Vec<Kernel> = p.kernels().map(|k| k.unwrap().clone()).collect();
    let recorded: Vec<Kernel> = want.records.iter().map(|r| r.kernel.clone()).collect();
    assert_eq!(kernels, recorded);
    assert!(matches!(p.run(&f.graph, &backends, &w, &[], &[]), Err(ExecError::Input { .. })));
}

/// A prepared step checks the weights once per set, and each op once per set of buffer
/// types: weights of another graph are still refused at a later step, weights moved to
/// another buffer type are checked again and give `run`'s bytes, and going back works.
#[test]
fn prepared_steps_catch_weights_that_differ_from_the_checked_ones() {
    let f = fixture();
    let data = fixture_data(&f);
    let x = data.iter().find(|d| d.0 == f.x).unwrap();
    let inputs = [(f.x, &x.1[..])];
    let cpu = CpuBackend::new();
    let backends: [&dyn Backend; 1] = [&cpu];
    let plain = load(&f, &data, &[host()]);
    let packed = load(&f, &data, &[cpu.extra_bufts()[0].clone(), host()]);
    assert!(packed.get(f.w).is_some_and(|b| !b.buft().is_host()));
    let mut other = Graph::new();
    other.weight("w", DType::Block(Format::Q8_0), &[64, 32]).unwrap();
    other.weight("norm.other", DType::F32, &[32]).unwrap();
    other.weight("emb", DType::Block(Format::Q8_0), &[32, 32]).unwrap();
    let p = place(&other, |_, _| vec![host()]).unwrap();
    let foreign = p.load(|id| data.iter().find(|d| d.0 == id).map(|d| &d.1[..])).unwrap();
    let s = schedule(&f.graph, &plain, &backends).unwrap();
    let outs = [f.y, f.top, f.out];
    let mut prep = Prepared::new(&f.graph, &s, &backends, 0, &outs).unwrap();
    let step = |prep: &mut Prepared, w: &Weights| {
        prep.run(&f.graph, &backends, w, &inputs, &[])?;
        Ok::<_, ExecError>(outs.map(|o| prep.value(o).unwrap().download().unwrap()))
    };
    let want = |w: &Weights| {
        let r = run(&f.graph, &schedule(&f.graph, w, &backends).unwrap(), &backends, w, &inputs);
        let r = r.unwrap();
        outs.map(|o| r.bytes(o).unwrap())
    };
    assert_eq!(step(&mut prep, &plain).unwrap(), want(&plain));
    let e = step(&mut prep, &foreign).unwrap_err();
    assert!(matches!(e, ExecError::ForeignWeights { id: 1, .. }), "{e}");
    assert_eq!(step(&mut prep, &packed).unwrap(), want(&packed));
    assert!(prep.kernels().next().unwrap().is_some_and(|k| matches!(k, Kernel::Packed { .. })));
    assert_ne!(want(&packed), want(&plain));
    let e = step(&mut prep, &foreign).unwrap_err();
    assert!(matches!(e, ExecError::ForeignWeights { id: 1, .. }), "{e}");
    assert_eq!(step(&mut prep, &plain).unwrap(), want(&plain));
}

/// A chain of ops needs the storage of two results, not of all of them; kept results
/// keep theirs; the values are those of `run`.
#[test]
fn prepared_results_share_storage() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1024]).unwrap();
    let mut y = x;
    let mut kept = None;
    for i in 0..10 {
        y = g.unary(&format!("s{i}"), Op::Scale { s: 2.0 }, y).unwrap();
        if i == 3 {
            kept = Some(y);
        }
    }
    let kept = kept.unwrap();
    let cpu = CpuBackend::new();
    let backends: [&dyn Backend; 1] = [&cpu];
    let w = Weights::default();
    let s = schedule(&g, &w, &backends).unwrap();
    let bytes = crate::tensor::f32_to_bytes(&[1.0; 1024]);
    let want = run(&g, &s, &backends, &w, &[(x, &bytes)]).unwrap();
    let mut p = Prepared::new(&g, &s, &backends, 0, &[kept, y]).unwrap();
    // The input, the kept result, and two results in turn.
    assert_eq!(p.storage_bytes(), 4 * 4096);
    for _ in 0..2 {
        p.run(&g, &backends, &w, &[(x, &bytes)], &[]).unwrap();
        for id in [kept, y] {
            assert_eq!(p.value(id).unwrap().download().unwrap(), want.bytes(id).unwrap());
        }
    }
    // A result whose storage went to a later one is no longer there.
    assert!(p.value(g.find("s1").unwrap()).is_none());
}

/// Consecutive MUL_MATs on the same activations (Q, K and V of a layer) run as one pool
/// job where the weights' buffer type runs on a pool, with the bits of one-by-one runs;
/// an op between them, or another input, ends the group.
#[test]
fn matmuls_on_one_input_run_as_one_job_with_the_same_bits() {
    use crate::pool::Pool;
    use crate::test_util::{q8_0, values};
    let (k, m) = (64, 3);
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[k, m]).unwrap();
    let x2 = g.input("x2", DType::F32, &[k, m]).unwrap();
    let ns = [48, 16, 16, 32];
    let ws: Vec<TensorId> = ns
        .iter()
        .enumerate()
        .map(|(i, &n)| g.weight(&format!("w{i}"), DType::Block(Format::Q8_0), &[k, n]).unwrap())
        .collect();
    let y0 = g.mul_mat("y0", ws[0], x).unwrap();
    let y1 = g.mul_mat("y1", ws[1], x).unwrap();
    let y2 = g.mul_mat("y2", ws[2], x).unwrap();
    let y3 = g.mul_mat("y3", ws[3], x2).unwrap();
    let s = g.unary("s", Op::Scale { s: 2.0 }, y3).unwrap();
    let y4 = g.mul_mat("y4", ws[0], x2).unwrap();
    let outs = [y0, y1, y2, y3, s, y4];
    let data: Vec<(TensorId, Vec<u8>)> =
        ws.iter().zip(ns).enumerate().map(|(i, (&w, n))| (w, q8_0(n, k, 40 + i as u64))).collect();
    let bytes_of = |v: Vec<f32>| crate::tensor::f32_to_bytes(&v);
    let (xb, x2b) = (bytes_of(values(k * m, 7)), bytes_of(values(k * m, 8)));
    let inputs = [(x, &xb[..]), (x2, &x2b[..])];
    let results = |cpu: &CpuBackend| {
        let step = packed_step(&g, &data, &inputs, &outs, cpu);
        (step.bytes, step.groups)
    };
    let pool = std::sync::Arc::new(Pool::new(2).with_min_share_macs(1));
    let (one_by_one, _) = results(&CpuBackend::new());
    let (grouped, groups) = results(&CpuBackend::with_pool(pool.clone()));
    assert_eq!(grouped, one_by_one);
    // y0, y1, y2 together; y3 alone (its input differs, then an op); y4 alone.
    assert_eq!(groups, vec![3, 1, 1, 1, 1, 1]);
    let jobs = pool.counters().jobs;
    let (again, _) = results(&CpuBackend::with_pool(pool.clone()));
    assert_eq!(again, one_by_one);
    // One job for the group, one each for y3 and y4.
    assert_eq!(pool.counters().jobs - jobs, 3);
}

/// What [`packed_step`] gives: the outputs' bytes, the prepared groups' lengths, and
/// whether every node ran a packed kernel.
struct Step {
    bytes: Vec<Vec<u8>>,
    groups: Vec<usize>,
    all_packed: bool,
}

/// One prepared step of `g` on `cpu`, its weights (`data`) packed into the CPU's AMX
/// buffer type.
fn packed_step(
    g: &Graph,
    data: &[(TensorId, Vec<u8>)],
    inputs: &[(TensorId, &[u8])],
    outs: &[TensorId],
    cpu: &CpuBackend,
) -> Step {
    let backends: [&dyn Backend; 1] = [cpu];
    let p = place(g, |_, _| vec![cpu.extra_bufts()[0].clone(), host()]).unwrap();
    let w = p.load(|id| data.iter().find(|d| d.0 == id).map(|d| &d.1[..])).unwrap();
    let sched = schedule(g, &w, &backends).unwrap();
    let mut prep = Prepared::new(g, &sched, &backends, 0, outs).unwrap();
    prep.run(g, &backends, &w, inputs, &[]).unwrap();
    let all_packed = prep.kernels().all(|k| matches!(k, Some(Kernel::Packed { .. })));
    let bytes = outs.iter().map(|&o| prep.value(o).unwrap().download().unwrap()).collect();
    Step { bytes, groups: prep.group_lengths().to_vec(), all_packed }
}

/// The gate and up MUL_MAT_IDs of a MoE layer (same activations, same expert ids) run
/// as one pool job with the bits of one-by-one runs; other ids end the group.
#[test]
fn expert_matmuls_on_one_input_run_as_one_job_with_the_same_bits() {
    use crate::pool::Pool;
    use crate::test_util::{q8_0, values};
    let (k, n, experts, top_k, t) = (64, 32, 4, 2, 3);
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[k, 1, t]).unwrap();
    let ids = g.input("ids", DType::I32, &[top_k, t]).unwrap();
    let ids2 = g.input("ids2", DType::I32, &[top_k, t]).unwrap();
    let ws: Vec<TensorId> = (0..3)
        .map(|i| {
            let name = format!("experts{i}");
            g.weight(&name, DType::Block(Format::Q8_0), &[k, n, experts]).unwrap()
        })
        .collect();
    let up = g.mul_mat_id("up", ws[0], x, ids).unwrap();
    let gate = g.mul_mat_id("gate", ws[1], x, ids).unwrap();
    let other = g.mul_mat_id("other", ws[2], x, ids2).unwrap();
    let outs = [up, gate, other];
    let data: Vec<(TensorId, Vec<u8>)> =
        ws.iter().enumerate().map(|(i, &w)| (w, q8_0(n * experts, k, 60 + i as u64))).collect();
    let ids_of = |v: &[i32]| v.iter().flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>();
    let (idb, id2b) = (ids_of(&[0, 2, 3, 0, 2, 1]), ids_of(&[1, 1, 3, 2, 0, 3]));
    let xb = crate::tensor::f32_to_bytes(&values(k * t, 9));
    let inputs = [(x, &xb[..]), (ids, &idb[..]), (ids2, &id2b[..])];
    let results = |cpu: &CpuBackend| {
        let step = packed_step(&g, &data, &inputs, &outs, cpu);
        assert!(step.all_packed);
        (step.bytes, step.groups)
    };
    let pool = std::sync::Arc::new(Pool::new(2).with_min_share_macs(1));
    let (one_by_one, _) = results(&CpuBackend::new());
    let jobs = pool.counters().jobs;
    let (grouped, groups) = results(&CpuBackend::with_pool(pool.clone()));
    assert_eq!(grouped, one_by_one);
    // up and gate together; other alone (other ids).
    assert_eq!(groups, vec![2, 1, 1]);
    // One job for up and gate, one for other.
    assert_eq!(pool.counters().jobs - jobs, 2);
}
