use std::cell::Cell;

use amx_core::formats::Format;

use super::*;
use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::error::BufferError;
use crate::graph::Graph;
use crate::op::Op;
use crate::tensor::DType;
use crate::test_util::{fixture, fixture_data};

thread_local! {
    /// Nodes visited while indexing consumers, on this thread (placement's cost guard).
    pub(super) static NODE_VISITS: Cell<usize> = const { Cell::new(0) };
}

/// Every kind of weight consumer, each weight preferring AMX then host.
#[test]
fn weights_go_where_their_consumer_is_accepted() {
    let mut g = Graph::new();
    let q = DType::Block(Format::Q4_0);
    let x = g.input("x", DType::F32, &[256, 32]).unwrap();
    let tok = g.input("tok", DType::I32, &[32]).unwrap();
    let wq = g.weight("attn_q.weight", q, &[256, 256]).unwrap();
    let wh = g.weight("attn_v.weight", DType::Block(Format::F16), &[256, 64]).unwrap();
    let norm = g.weight("attn_norm.weight", DType::F32, &[256]).unwrap();
    let emb = g.weight("token_embd.weight", q, &[256, 100]).unwrap();
    let router = g.weight("ffn_gate_inp.weight", DType::F32, &[256, 4]).unwrap();
    let exps = g.weight("ffn_up_exps.weight", q, &[256, 64, 4]).unwrap();
    g.weight("unused.weight", q, &[256, 8]).unwrap();
    g.mul_mat("q", wq, x).unwrap();
    g.mul_mat("v", wh, x).unwrap();
    g.mul("normed", x, norm).unwrap();
    g.get_rows("embd", emb, tok).unwrap();
    let logits = g.mul_mat("router", router, x).unwrap();
    let ids = g.unary("top", Op::TopK { k: 2 }, logits).unwrap();
    let x3 = g.unary("x3", Op::Reshape { ne: [256, 1, 32, 1] }, x).unwrap();
    g.mul_mat_id("up", exps, x3, ids).unwrap();

    let cpu = CpuBackend::new();
    let amx = cpu.extra_bufts()[0].clone();
    let p = place(&g, |_, _| vec![amx.clone(), host()]).unwrap();
    let on = |name: &str| p.buft(g.find(name).unwrap()).unwrap().id();
    for name in ["attn_q.weight", "attn_v.weight", "ffn_up_exps.weight"] {
        assert_eq!(on(name), amx.id(), "{name}");
    }
    for name in ["attn_norm.weight", "token_embd.weight", "ffn_gate_inp.weight", "unused.weight"] {
        assert_eq!(on(name), host().id(), "{name}");
    }
    let report = p.to_string();
    assert!(report.contains("ffn_up_exps.weight [256, 64, 4] Q4_0 -> AMX: accepts MUL_MAT_ID up(ffn_up_exps.weight [256, 64, 4] Q4_0 in AMX, "));
    assert!(
        report.contains("ffn_gate_inp.weight [256, 4] F32 -> host: AMX refuses MUL_MAT router;")
    );
    assert!(report.contains("attn_q.weight [256, 256] Q4_0 -> AMX: accepts MUL_MAT q("));
    assert!(report.contains("unused.weight [256, 8] Q4_0 -> host: no op reads it"));
    assert!(report.contains("AMX: 3 weights\nhost: 4 weights\n"), "{report}");
    // With no fallback, a weight nobody accepts is an error naming it and its consumer.
    let e = place(&g, |_, _| vec![amx.clone()]).unwrap_err();
    assert_eq!(
        e,
        PlaceError::NoBufferType { tensor: "attn_norm.weight".into(), op: "normed".into() }
    );
}

#[test]
fn load_uploads_packs_and_reports_missing_data() {
    let f = fixture();
    let data = fixture_data(&f);
    let cpu = CpuBackend::new();
    let amx = cpu.extra_bufts()[0].clone();
    let p = place(&f.graph, |_, _| vec![amx.clone(), host()]).unwrap();
    assert_eq!(p.decisions().len(), 3);
    let get = |id| data.iter().find(|d| d.0 == id).map(|d| &d.1[..]);
    let w = p.load(get).unwrap();
    let wbuf = w.get(f.w).unwrap();
    assert_eq!(wbuf.buft().id(), amx.id());
    assert_eq!(wbuf.download().unwrap(), get(f.w).unwrap());
    assert!(matches!(wbuf.host_bytes(), Err(BufferError::NotHost { .. })));
    assert_eq!(w.refused_reads(), 1);
    assert_eq!(w.get(f.norm).unwrap().host_bytes().unwrap(), get(f.norm).unwrap());
    assert_eq!(w.iter().count(), 3);
    let e = p.load(|id| if id == f.emb { None } else { get(id) }).unwrap_err();
    assert_eq!(e, PlaceError::MissingData { tensor: "emb".into() });
    assert!(cpu.supports_buft(&*amx));
}

/// Placement indexes consumers in one pass: each node is visited once, however many
/// weights the graph has (it used to scan every node for every weight: 40,000 weights
/// took 24 s). The decisions are those of the consumers: a weight read by two nodes has
/// both accepted, one read twice by the same node (`n * n`) has it once, in node order.
#[test]
fn placement_visits_each_node_once_and_finds_every_consumer() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[64, 4]).unwrap();
    let layers = 2000;
    let mut ws = Vec::new();
    for i in 0..layers {
        ws.push(g.weight(&format!("blk.{i}.w"), DType::Block(Format::Q8_0), &[64, 64]).unwrap());
    }
    let norm = g.weight("norm", DType::F32, &[64]).unwrap();
    let sq = g.mul("sq", norm, norm).unwrap();
    g.mul("normed", x, sq).unwrap();
    for (i, &w) in ws.iter().enumerate() {
        g.mul_mat(&format!("a{i}"), w, x).unwrap();
    }
    g.mul_mat("again", ws[7], x).unwrap();
    let cpu = CpuBackend::new();
    let amx = cpu.extra_bufts()[0].clone();
    NODE_VISITS.with(|v| v.set(0));
    let p = place(&g, |_, _| vec![amx.clone(), host()]).unwrap();
    assert_eq!(NODE_VISITS.with(Cell::get), g.nodes().len());
    assert_eq!(p.decisions().len(), layers + 1);
    for (i, &w) in ws.iter().enumerate() {
        let d = &p.decisions()[i];
        assert_eq!((d.tensor, p.buft(w).unwrap().id()), (w, amx.id()));
        let want = if i == 7 { 2 } else { 1 };
        assert_eq!(d.accepted.len(), want, "{}", d.desc);
        assert!(d.accepted[0].starts_with(&format!("MUL_MAT a{i}(")), "{:?}", d.accepted);
    }
    assert!(p.decisions()[7].accepted[1].starts_with("MUL_MAT again("));
    let n = p.decisions().last().unwrap();
    assert_eq!((n.tensor, n.buft.id(), n.accepted.len()), (norm, host().id(), 1));
    assert!(n.accepted[0].starts_with("MUL sq("), "{:?}", n.accepted);
    assert!(p.buft(x).is_none());
}
