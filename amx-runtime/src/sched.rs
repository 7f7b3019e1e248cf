//! The scheduler: each op goes to the highest-priority backend that supports it and can
//! read all of its sources.
//!
//! A backend reads a source where it is when it accepts the source's buffer type
//! ([`Backend::supports_buft`]). Otherwise the source must come to it through host
//! memory: a tensor already in host memory is copied up by the backend
//! ([`Access::Upload`]; for weights only with [`SchedOptions::offload_host_weights`],
//! ggml's "op offload"); an op result in a device's memory is first downloaded into host
//! memory by its own buffer type ([`Access::Download`]). A weight outside host memory is
//! never copied: packed bytes stay with the backend that accepts their buffer type, and
//! if no backend that can run the op does, the graph is refused with
//! [`SchedError::UnreadableSource`], naming the op and the tensor.
//!
//! [`Backend::supports_op`] is asked with each source where that backend would read it
//! (its own buffer type, host memory after a download, or its result buffer type after a
//! copy up), so a buffer type's conditions on the other operands (the AMX buffer type
//! wants src1 F32 in host memory) are checked against what will really happen.

use std::sync::Arc;

use crate::backend::Backend;
use crate::buffer::Buft;
use crate::buffer::host::host;
use crate::error::SchedError;
use crate::graph::{Graph, TensorKind};
use crate::op::{OpDesc, Operand};
use crate::placement::Weights;
use crate::tensor::TensorId;

/// How a source reaches the backend that runs its consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read where it is (the backend accepts its buffer type).
    Direct,
    /// In host memory; the backend copies it up into its own memory.
    Upload,
    /// An op result in another backend's memory: downloaded into host memory by its
    /// buffer type, then read there (or copied up from there).
    Download,
}

/// Scheduler settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedOptions {
    /// Whether a backend may copy a weight up from host memory to run its op (true:
    /// ops on host weights go to the highest-priority backend, as ggml does for large
    /// batches; false: they run where the weight can be read in place, the CPU).
    pub offload_host_weights: bool,
}

impl Default for SchedOptions {
    fn default() -> Self {
        SchedOptions { offload_host_weights: true }
    }
}

/// Where one node runs and how its sources get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlan {
    /// Index of the backend in the list given to [`schedule`].
    pub backend: usize,
    /// One access per source, in the op's order.
    pub access: Vec<Access>,
}

/// A schedule: one plan per node of the graph, in node order.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The plans.
    pub plans: Vec<NodePlan>,
    /// The backends' names, in the order given.
    pub backends: Vec<Arc<str>>,
}

impl Schedule {
    /// How many nodes run on the backend named `name`.
    pub fn count_on(&self, name: &str) -> usize {
        self.plans.iter().filter(|p| &*self.backends[p.backend] == name).count()
    }
}

/// Where each tensor lives as the schedule is built.
struct Homes<'a> {
    graph: &'a Graph,
    weights: &'a Weights,
    results: Vec<Option<Buft>>,
}

impl Homes<'_> {
    fn buft(&self, id: TensorId) -> Result<Buft, SchedError> {
        match self.graph.kind(id) {
            TensorKind::Weight => self.weights.get(id).map(|b| b.buft().clone()).ok_or_else(|| {
                SchedError::NotLoaded { tensor: self.graph.tensor(id).name.clone() }
            }),
            TensorKind::Input | TensorKind::State => Ok(host()),
            // Nodes are in dependency order, so a source's producer was planned.
            TensorKind::Result(_) => Ok(self.results[id.0].clone().unwrap_or_else(host)),
        }
    }
}

/// How `backend` would read a source of kind `kind` living in `buft`, and the buffer
/// type it would then read it from; `None` when it cannot.
fn access(
    backend: &dyn Backend,
    kind: TensorKind,
    buft: &Buft,
    options: SchedOptions,
) -> Option<(Access, Buft)> {
    let after_copy =
        || if backend.supports_buft(&*host()) { host() } else { backend.compute_buft() };
    let copyable = kind != TensorKind::Weight || options.offload_host_weights;
    if backend.supports_buft(&**buft) {
        Some((Access::Direct, buft.clone()))
    } else if buft.is_host() && copyable {
        Some((Access::Upload, backend.compute_buft()))
    } else if matches!(kind, TensorKind::Result(_)) {
        Some((Access::Download, after_copy()))
    } else {
        None
    }
}

/// Assigns every node of `graph` to one of `backends` (highest priority first), with
/// weights where `weights` holds them, with the default [`SchedOptions`].
///
/// Errors: [`SchedError::UnreadableSource`] when an op reads a weight in a non-host
/// buffer type that no backend able to run the op accepts; [`SchedError::NoBackend`]
/// when no backend supports an op otherwise; [`SchedError::NotLoaded`] when a weight of
/// the graph has no buffer; [`SchedError::ForeignWeights`] when `weights` were placed for
/// another graph (a buffer for another tensor at one of this graph's weight ids, or at
/// an id where this graph has no weight); [`SchedError::NoBackends`].
pub fn schedule(
    graph: &Graph,
    weights: &Weights,
    backends: &[&dyn Backend],
) -> Result<Schedule, SchedError> {
    schedule_with(graph, weights, backends, SchedOptions::default())
}

/// [`schedule`] with `options`.
///
/// Errors: as [`schedule`].
pub fn schedule_with(
    graph: &Graph,
    weights: &Weights,
    backends: &[&dyn Backend],
    options: SchedOptions,
) -> Result<Schedule, SchedError> {
    if backends.is_empty() {
        return Err(SchedError::NoBackends);
    }
    if let Some(m) = weights.mismatch(graph) {
        return Err(match m.loaded {
            None => SchedError::NotLoaded { tensor: graph.tensor(m.id).name.clone() },
            Some(loaded) => SchedError::ForeignWeights { id: m.id.0, graph: m.graph, loaded },
        });
    }
    let mut homes = Homes { graph, weights, results: vec![None; graph.len()] };
    let mut plans = Vec::with_capacity(graph.nodes().len());
    for node in graph.nodes() {
        let srcs = node
            .srcs
            .iter()
            .map(|&s| Ok((s, graph.kind(s), homes.buft(s)?)))
            .collect::<Result<Vec<_>, SchedError>>()?;
        let dst = graph.tensor(node.dst);
        let mut chosen = None;
        for (b, backend) in backends.iter().enumerate() {
            let Some(seen) = srcs
                .iter()
                .map(|(_, kind, buft)| access(*backend, *kind, buft, options))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let op = OpDesc {
                op: node.op,
                srcs: srcs
                    .iter()
                    .zip(&seen)
                    .map(|((s, _, _), (_, buft))| Operand {
                        desc: graph.tensor(*s).clone(),
                        buft: buft.clone(),
                        contiguous: true,
                    })
                    .collect(),
                dst: dst.clone(),
            };
            if backend.supports_op(&op) {
                chosen = Some(NodePlan { backend: b, access: seen.iter().map(|s| s.0).collect() });
                break;
            }
        }
        let Some(plan) = chosen else {
            let stuck =
                srcs.iter().find(|(_, kind, buft)| *kind == TensorKind::Weight && !buft.is_host());
            return Err(match stuck {
                Some((s, _, buft)) => SchedError::UnreadableSource {
                    op: dst.name.clone(),
                    kind: node.op.name(),
                    tensor: graph.tensor(*s).name.clone(),
                    buft: buft.name().into(),
                },
                None => SchedError::NoBackend { op: dst.name.clone(), kind: node.op.name() },
            });
        };
        homes.results[node.dst.0] = Some(backends[plan.backend].compute_buft());
        plans.push(plan);
    }
    let backends = backends.iter().map(|b| Arc::from(b.name())).collect();
    Ok(Schedule { plans, backends })
}

#[cfg(test)]
mod tests;
