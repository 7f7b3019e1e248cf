//! Runs a scheduled graph and records, per op, which backend ran it, with which kernel,
//! and what was copied.

use std::sync::Arc;

use crate::backend::Backend;
use crate::buffer::host::host;
use crate::buffer::{Buffer, Kernel};
use crate::error::ExecError;
use crate::graph::{Graph, TensorKind};
use crate::op::{Op, OpDesc, Operand};
use crate::placement::Weights;
use crate::sched::{Access, Schedule};
use crate::tensor::{DType, TensorId, f32_from_bytes, i32_from_bytes};

/// What happened to one node.
#[derive(Clone, Debug, PartialEq)]
pub struct OpRecord {
    /// The node's name.
    pub node: Arc<str>,
    /// The op.
    pub op: Op,
    /// The backend that ran it.
    pub backend: Arc<str>,
    /// The kernel that computed it ([`Kernel::Packed`] when the AMX GEMM ran).
    pub kernel: Kernel,
    /// Each source: its name, buffer type where it lives, and how it was reached.
    pub sources: Vec<(Arc<str>, Arc<str>, Access)>,
    /// Bytes the backend copied up from host memory.
    pub uploaded_bytes: usize,
}

/// The outcome of a run: every op result, where it lives, and the records.
#[derive(Debug)]
pub struct Run {
    values: Vec<Option<Buffer>>,
    downloads: Vec<Buffer>,
    /// One record per node, in node order.
    pub records: Vec<OpRecord>,
}

impl Run {
    /// The buffer holding tensor `id`'s result, in the backend's memory.
    pub fn value(&self, id: TensorId) -> Option<&Buffer> {
        self.values.get(id.0).and_then(Option::as_ref)
    }

    /// The plain bytes of result `id`, downloaded by its buffer type.
    ///
    /// Errors: [`ExecError::Input`] when `id` is not a result of this run, and those of
    /// [`Buffer::download`].
    pub fn bytes(&self, id: TensorId) -> Result<Vec<u8>, ExecError> {
        let buf = self
            .value(id)
            .ok_or_else(|| ExecError::Input { tensor: format!("#{}", id.0).into() })?;
        Ok(buf.download()?)
    }

    /// Result `id` as f32 values (I32 results converted).
    ///
    /// Errors: as [`Run::bytes`].
    pub fn f32(&self, id: TensorId) -> Result<Vec<f32>, ExecError> {
        let bytes = self.bytes(id)?;
        Ok(match self.value(id).map(|b| b.desc().dtype) {
            Some(DType::I32) => i32_from_bytes(&bytes).into_iter().map(|v| v as f32).collect(),
            _ => f32_from_bytes(&bytes),
        })
    }

    /// Plain reads refused on this run's results and copies (zero in a correct run; add
    /// [`Weights::refused_reads`] for the weights).
    pub fn refused_reads(&self) -> usize {
        let values = self.values.iter().flatten().map(Buffer::refused_reads).sum::<usize>();
        values + self.downloads.iter().map(Buffer::refused_reads).sum::<usize>()
    }
}

/// Runs `graph` as `schedule` says on `backends` (the list given to the scheduler),
/// with `weights` loaded and `inputs` (each graph input's plain bytes) in host memory.
///
/// Errors: [`ExecError::ScheduleMismatch`]; [`ExecError::ForeignWeights`] when `weights`
/// are not exactly the graph's (as [`crate::sched::schedule`] checks); [`ExecError::Input`];
/// [`ExecError::Op`] for an op whose sources (as loaded) and result break its rules
/// ([`OpDesc::check`]); and the first error of a backend, which stops the run.
///
/// May request the AMX permission (once per process, [`crate::tile_state`]) when it
/// takes the AMX path.
pub fn run(
    graph: &Graph,
    schedule: &Schedule,
    backends: &[&dyn Backend],
    weights: &Weights,
    inputs: &[(TensorId, &[u8])],
) -> Result<Run, ExecError> {
    run_with_state(graph, schedule, backends, weights, inputs, &[])
}

/// [`run`] for a graph with state tensors ([`TensorKind::State`], a KV cache): `state`
/// gives each one's buffer, in host memory and described exactly as in the graph. They
/// are read in place; the run does not change them.
///
/// Errors: those of [`run`], and [`ExecError::Input`] for a state tensor without a
/// buffer, or with one in another buffer type or of another description.
///
/// May request the AMX permission (once per process, [`crate::tile_state`]) when it
/// takes the AMX path.
pub fn run_with_state(
    graph: &Graph,
    schedule: &Schedule,
    backends: &[&dyn Backend],
    weights: &Weights,
    inputs: &[(TensorId, &[u8])],
    state: &[(TensorId, &Buffer)],
) -> Result<Run, ExecError> {
    let nodes = graph.nodes();
    if schedule.plans.len() != nodes.len() || schedule.backends.len() != backends.len() {
        return Err(ExecError::ScheduleMismatch {
            nodes: nodes.len(),
            planned: schedule.plans.len(),
        });
    }
    if let Some(m) = weights.mismatch(graph) {
        let loaded = m.loaded.unwrap_or_else(|| "no buffer".into());
        return Err(ExecError::ForeignWeights { id: m.id.0, graph: m.graph, loaded });
    }
    let host = host();
    let mut values: Vec<Option<Buffer>> = (0..graph.len()).map(|_| None).collect();
    for id in graph.inputs() {
        let desc = graph.tensor(id);
        let missing = || ExecError::Input { tensor: desc.name.clone() };
        let (_, bytes) = inputs.iter().find(|(i, _)| *i == id).ok_or_else(missing)?;
        values[id.0] = Some(Buffer::upload(&host, desc.clone(), bytes).map_err(|_| missing())?);
    }
    let mut states: Vec<Option<&Buffer>> = vec![None; graph.len()];
    for id in graph.states() {
        let desc = graph.tensor(id);
        let bad = || ExecError::Input { tensor: desc.name.clone() };
        let (_, buf) = state.iter().find(|(i, _)| *i == id).ok_or_else(bad)?;
        if buf.desc() != desc || !buf.buft().is_host() {
            return Err(bad());
        }
        states[id.0] = Some(*buf);
    }
    let mut downloads = Vec::new();
    let mut records = Vec::with_capacity(nodes.len());
    for (node, plan) in nodes.iter().zip(&schedule.plans) {
        let backend = *backends.get(plan.backend).ok_or(ExecError::ScheduleMismatch {
            nodes: nodes.len(),
            planned: schedule.plans.len(),
        })?;
        let name = graph.tensor(node.dst).name.clone();
        let mismatch = || ExecError::Sources {
            op: name.clone(),
            what: "the schedule does not match the graph",
        };
        if plan.access.len() != node.srcs.len() {
            return Err(mismatch());
        }
        let home = |s: TensorId| match graph.kind(s) {
            TensorKind::Weight => weights.get(s),
            TensorKind::State => states[s.0],
            TensorKind::Input | TensorKind::Result(_) => values[s.0].as_ref(),
        };
        // Results in another backend's memory come down through their own buffer type.
        let mut copies = Vec::new();
        for (&s, access) in node.srcs.iter().zip(&plan.access) {
            if *access == Access::Download {
                let from = home(s).ok_or_else(mismatch)?;
                copies.push(Buffer::upload(&host, from.desc().clone(), &from.download()?)?);
            }
        }
        let mut copied = copies.iter();
        let mut srcs = Vec::with_capacity(node.srcs.len());
        for (&s, access) in node.srcs.iter().zip(&plan.access) {
            let buf = match access {
                Access::Download => copied.next(),
                _ => home(s),
            };
            srcs.push(buf.ok_or_else(mismatch)?);
        }
        let op = OpDesc {
            op: node.op,
            srcs: srcs
                .iter()
                .map(|b| Operand {
                    desc: b.desc().clone(),
                    buft: b.buft().clone(),
                    contiguous: true,
                })
                .collect(),
            dst: graph.tensor(node.dst).clone(),
        };
        let sources = node
            .srcs
            .iter()
            .zip(&plan.access)
            .map(|(&s, &a)| {
                let buft = home(s).map_or_else(|| Arc::from("?"), |b| Arc::from(b.buft().name()));
                (graph.tensor(s).name.clone(), buft, a)
            })
            .collect();
        op.check().map_err(ExecError::Op)?;
        let computed = backend.compute(&op, &srcs)?;
        records.push(OpRecord {
            node: name,
            op: node.op,
            backend: backend.name().into(),
            kernel: computed.kernel,
            sources,
            uploaded_bytes: computed.uploaded_bytes,
        });
        values[node.dst.0] = Some(computed.output);
        downloads.extend(copies);
    }
    Ok(Run { values, downloads, records })
}

mod prepared;

pub use prepared::Prepared;

#[cfg(test)]
mod tests;
