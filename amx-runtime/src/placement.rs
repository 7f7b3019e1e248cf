//! Weight placement: each weight goes to the first buffer type of its preference list
//! that accepts the op that will consume it.
//!
//! The question is asked with the real op: the consuming node of the graph, with the
//! weight in the candidate buffer type and every other source as the CPU would hand it
//! over (host memory, contiguous): MUL_MAT with its real src1, GET_ROWS for an
//! embedding, MUL for a norm, MUL_MAT_ID for an expert stack. The answer is the buffer
//! type's own [`BufferType::supports_op`](crate::buffer::BufferType::supports_op); no
//! name, element type or list of types is matched here. So F32 norms, biases and router
//! weights stay in host memory because the AMX buffer type refuses them, and quantized
//! expert stacks go to it because it accepts their MUL_MAT_ID (its grouped kernel).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::buffer::host::host;
use crate::buffer::{Buffer, Buft};
use crate::error::PlaceError;
use crate::graph::{Graph, Node, TensorKind};
use crate::op::{OpDesc, Operand};
use crate::tensor::{TensorDesc, TensorId};

/// Where one weight goes, and why.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The weight.
    pub tensor: TensorId,
    /// Its description.
    pub desc: TensorDesc,
    /// The chosen buffer type.
    pub buft: Buft,
    /// The consuming ops as the chosen buffer type accepted them (empty when no node
    /// reads the weight; it then stays in host memory).
    pub accepted: Vec<String>,
    /// Buffer types earlier in the preference list, each with the op it refused (kind
    /// and node name).
    pub refused: Vec<(String, String)>,
}

/// The placement of every weight of a graph.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    decisions: Vec<Decision>,
}

/// The consuming `node` as it would run with `weight` in `buft` and every other source
/// in host memory.
fn probe(graph: &Graph, node: &Node, weight: TensorId, buft: &Buft) -> OpDesc {
    let srcs = node
        .srcs
        .iter()
        .map(|&s| Operand {
            desc: graph.tensor(s).clone(),
            buft: if s == weight { buft.clone() } else { host() },
            contiguous: true,
        })
        .collect();
    OpDesc { op: node.op, srcs, dst: graph.tensor(node.dst).clone() }
}

/// For every tensor of `graph`, the indices of the nodes that read it (each node once,
/// in node order): one pass over the nodes, so that placement is linear in the graph's
/// size rather than scanning every node for every weight.
fn consumer_index(graph: &Graph) -> Vec<Vec<usize>> {
    let mut index = vec![Vec::new(); graph.len()];
    for (i, node) in graph.nodes().iter().enumerate() {
        #[cfg(test)]
        tests::NODE_VISITS.with(|v| v.set(v.get() + 1));
        for s in &node.srcs {
            // A node reading the same tensor twice (`x * x`) is one consumer.
            let list: &mut Vec<usize> = &mut index[s.0];
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    index
}

/// Places every weight of `graph`: `prefs` gives a weight's buffer types in the engine's
/// order of preference (put the host buffer type last as the fallback). Time is linear
/// in the number of tensors plus the number of (weight, consumer) pairs: the consumers
/// of every tensor are indexed in one pass over the nodes.
///
/// Errors: [`PlaceError::NoBufferType`] when no buffer type in the list accepts a
/// consumer of the weight.
pub fn place(
    graph: &Graph,
    prefs: impl Fn(TensorId, &TensorDesc) -> Vec<Buft>,
) -> Result<Placement, PlaceError> {
    let index = consumer_index(graph);
    let mut decisions = Vec::new();
    for id in graph.weights() {
        let desc = graph.tensor(id).clone();
        let consumers: Vec<&Node> = index[id.0].iter().map(|&i| &graph.nodes()[i]).collect();
        if consumers.is_empty() {
            let d = Decision { tensor: id, desc, buft: host(), accepted: vec![], refused: vec![] };
            decisions.push(d);
            continue;
        }
        let mut refused = Vec::new();
        let mut chosen = None;
        for buft in prefs(id, &desc) {
            let ops: Vec<OpDesc> = consumers.iter().map(|n| probe(graph, n, id, &buft)).collect();
            match ops.iter().find(|op| !buft.supports_op(op)) {
                Some(op) => {
                    refused.push((buft.name().to_owned(), format!("{} {}", op.op, op.name())))
                }
                None => {
                    chosen = Some((buft, ops.iter().map(ToString::to_string).collect()));
                    break;
                }
            }
        }
        let Some((buft, accepted)) = chosen else {
            let op = graph.tensor(consumers[0].dst).name.clone();
            return Err(PlaceError::NoBufferType { tensor: desc.name, op });
        };
        decisions.push(Decision { tensor: id, desc, buft, accepted, refused });
    }
    Ok(Placement { decisions })
}

impl Placement {
    /// One decision per weight, in graph order.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The buffer type chosen for weight `id`.
    pub fn buft(&self, id: TensorId) -> Option<&Buft> {
        // Decisions are in graph order, which is increasing id order.
        let i = self.decisions.binary_search_by_key(&id, |d| d.tensor).ok()?;
        Some(&self.decisions[i].buft)
    }

    /// Allocates every weight in its buffer type and uploads its plain bytes from `data`
    /// (packing where the buffer type packs).
    ///
    /// Errors: [`PlaceError::MissingData`], [`PlaceError::Buffer`].
    pub fn load<'d>(
        &self,
        data: impl Fn(TensorId) -> Option<&'d [u8]>,
    ) -> Result<Weights, PlaceError> {
        let mut buffers = HashMap::new();
        for d in &self.decisions {
            let bytes = data(d.tensor)
                .ok_or_else(|| PlaceError::MissingData { tensor: d.desc.name.clone() })?;
            buffers.insert(d.tensor, Buffer::upload(&d.buft, d.desc.clone(), bytes)?);
        }
        Ok(Weights::new(buffers))
    }
}

impl fmt::Display for Placement {
    /// The placement report: one line per weight (tensor -> buffer type: why), then the
    /// count per buffer type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for d in &self.decisions {
            write!(f, "{} -> {}:", d.desc, d.buft.name())?;
            for (buft, op) in &d.refused {
                write!(f, " {buft} refuses {op};")?;
            }
            match d.accepted.first() {
                None => writeln!(f, " no op reads it, kept in host memory")?,
                Some(op) => {
                    let more = d.accepted.len() - 1;
                    let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
                    writeln!(f, " accepts {op}{more}")?;
                }
            }
            match counts.iter_mut().find(|c| c.0 == d.buft.name()) {
                Some(c) => c.1 += 1,
                None => counts.push((d.buft.name().to_owned(), 1)),
            }
        }
        for (name, n) in counts {
            writeln!(f, "{name}: {n} weights")?;
        }
        Ok(())
    }
}

/// The loaded weights, one buffer each.
///
/// They belong to the graph they were placed for: each buffer carries the description
/// (name, type, shape) its weight had in that graph, and [`crate::sched::schedule`] and
/// [`crate::exec::run`] refuse weights that are not exactly the graph's
/// ([`SchedError::ForeignWeights`](crate::error::SchedError::ForeignWeights)). Another
/// graph with the same weights at the same ids (prefill and decode graphs of one model)
/// may use them: the scheduler still asks the buffer types about each of its ops.
///
/// A set of weights never changes once loaded (nothing hands out its buffers mutably),
/// so a prepared step compares its identity (an id given at load) to the one it checked
/// instead of checking every weight every step.
#[derive(Debug)]
pub struct Weights {
    buffers: HashMap<TensorId, Buffer>,
    id: u64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights::new(HashMap::new())
    }
}

/// Where loaded weights and a graph disagree (see [`Weights::mismatch`]).
pub(crate) struct Mismatch {
    /// The tensor id.
    pub(crate) id: TensorId,
    /// What the graph has there.
    pub(crate) graph: Arc<str>,
    /// What the weights hold there (`None`: nothing, the weight was not loaded).
    pub(crate) loaded: Option<Arc<str>>,
}

impl Weights {
    fn new(buffers: HashMap<TensorId, Buffer>) -> Weights {
        // Distinct for every set made in this process (2^64 sets are never made).
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Weights { buffers, id: NEXT.fetch_add(1, Ordering::Relaxed) }
    }

    /// This set's identity: distinct from every other set's made in this process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The first place where these weights are not exactly `graph`'s: a weight of the
    /// graph without a buffer or with a buffer for another tensor (name, type or shape),
    /// then a buffer at an id where the graph has no weight. `None` when they match.
    pub(crate) fn mismatch(&self, graph: &Graph) -> Option<Mismatch> {
        for id in graph.weights() {
            let want = graph.tensor(id);
            match self.buffers.get(&id) {
                Some(b) if b.desc() == want => {}
                found => {
                    let loaded = found.map(|b| b.desc().to_string().into());
                    return Some(Mismatch { id, graph: want.to_string().into(), loaded });
                }
            }
        }
        let extra = self
            .buffers
            .keys()
            .copied()
            .filter(|&id| graph.kind_checked(id) != Some(TensorKind::Weight))
            .min()?;
        let what = match graph.kind_checked(extra) {
            Some(TensorKind::Input) => format!("the input {}", graph.tensor(extra)),
            Some(TensorKind::State) => format!("the state {}", graph.tensor(extra)),
            Some(TensorKind::Result(_)) => format!("the op result {}", graph.tensor(extra)),
            Some(TensorKind::Weight) | None => {
                format!("no tensor (it has {} tensors)", graph.len())
            }
        };
        let loaded = self.buffers[&extra].desc().to_string().into();
        Some(Mismatch { id: extra, graph: what.into(), loaded: Some(loaded) })
    }

    /// The buffer of weight `id`.
    pub fn get(&self, id: TensorId) -> Option<&Buffer> {
        self.buffers.get(&id)
    }

    /// Every weight's buffer.
    pub fn iter(&self) -> impl Iterator<Item = (TensorId, &Buffer)> + '_ {
        self.buffers.iter().map(|(&id, b)| (id, b))
    }

    /// Plain reads refused on weight buffers so far (zero in a correct run).
    pub fn refused_reads(&self) -> usize {
        self.buffers.values().map(Buffer::refused_reads).sum()
    }
}

#[cfg(test)]
mod tests;
