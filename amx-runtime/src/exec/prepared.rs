//! A graph prepared once for a step shape and run step after step without allocating:
//! every input and result has its buffer, made once; each op writes into its result's
//! buffer ([`Backend::compute_into`]); temporaries come from a bump arena reset at the
//! start of every step.
//!
//! Results share storage: once the last op that reads a result has run, its buffer is
//! taken by a later result of the same buffer type (retagged, [`Buffer::retag`]), except
//! for the results the caller reads after the step (`keep`). A step of a model's layers
//! then needs the storage of about one layer's results, not of all of them.
//!
//! # Which checks run when
//!
//! What cannot change between steps is checked once; what can, every step:
//!
//! - at [`Prepared::new`]: the schedule against the graph, and every op's rules
//!   ([`crate::op::OpDesc::check`]: its sources fit the op, its result is what they give);
//! - at the first step with a set of weights (and graph): the weights against the graph
//!   ([`ExecError::ForeignWeights`]). Loaded weights never change, so a later step with
//!   the same set ([`Weights`] identity) skips it;
//! - at the first step an op's sources are in given buffer types: whether those buffer
//!   types accept the op ([`CheckedOp::new`]). A step whose buffers are in other buffer
//!   types (weights loaded elsewhere) checks the op again;
//! - every step, for every op: each source buffer is found and has the description and
//!   buffer type the op has (compared by identity: cheap); the backend checks that the
//!   buffers are those the op describes, that it reads their buffer types, the result
//!   buffer and every length; a packed weight's 64-byte header is parsed by each GEMM
//!   call (the guard against reading packed bytes as anything else); ids and positions
//!   read from the sources are checked as they are read.

use std::sync::Arc;

use bumpalo::Bump;

use crate::backend::Backend;
use crate::buffer::host::host;
use crate::buffer::{Buffer, Kernel};
use crate::error::ExecError;
use crate::graph::{Graph, TensorKind};
use crate::op::{CheckedOp, OpDesc, Operand};
use crate::placement::Weights;
use crate::sched::{Access, Schedule};
use crate::tensor::TensorId;

/// One node as it runs: the op with its sources where they are read, and where each
/// source comes from.
#[derive(Debug)]
struct PreparedNode {
    op: OpDesc,
    backend: usize,
    srcs: Vec<(TensorId, Access)>,
    /// Host copies of the sources downloaded from another backend's memory.
    copies: Vec<Option<Buffer>>,
    /// The storage the result is written to.
    dst_slot: usize,
    /// Whether `op` passed [`CheckedOp::new`] with its sources' buffer types as they are
    /// now (cleared when one changes).
    checked: bool,
}

/// A graph, its schedule and the buffers of its inputs and results, ready to run again
/// and again ([`Prepared::run`]) with new input values and the engine's state.
#[derive(Debug)]
pub struct Prepared {
    nodes: Vec<PreparedNode>,
    /// The storage of inputs and results (several results over a step may share one).
    slots: Vec<Option<Buffer>>,
    /// Per tensor id: its storage, for inputs and results.
    slot_of: Vec<Option<usize>>,
    /// Per tensor id: its description, for inputs and results.
    descs: Vec<Option<crate::tensor::TensorDesc>>,
    kernels: Vec<Option<Kernel>>,
    inputs: Vec<TensorId>,
    scratch: Bump,
    /// For each node, how many nodes from it on (up to [`GROUP_MAX`]) are MUL_MATs of
    /// weights on the same activations (or MUL_MAT_IDs on the same activations and
    /// expert ids), run as one job where the backend can
    /// ([`Backend::compute_group_into`]); 1 for the others.
    group_len: Vec<usize>,
    /// The weights (their [`Weights::id`]) and graph (its address) last found to match.
    weights_checked: Option<(u64, usize)>,
}

/// The most MUL_MATs run as one job (Q, K, V; gate and up).
const GROUP_MAX: usize = 4;

impl Prepared {
    /// Makes the buffers of every input (host memory) and result (the memory of the
    /// backend that computes it, as `schedule` says; a result's storage is reused once
    /// its last reader has run, except for the results in `keep`, which the caller reads
    /// after a step), and the per-step arena with `scratch_bytes` of room to start with
    /// (it grows if a step needs more, then keeps its size).
    ///
    /// Errors: [`ExecError::ScheduleMismatch`] when `schedule` is not `graph`'s for
    /// `backends`; [`ExecError::Buffer`] when a buffer cannot be had; [`ExecError::Op`]
    /// for an op that breaks its rules.
    pub fn new(
        graph: &Graph,
        schedule: &Schedule,
        backends: &[&dyn Backend],
        scratch_bytes: usize,
        keep: &[TensorId],
    ) -> Result<Prepared, ExecError> {
        let mismatch = || ExecError::ScheduleMismatch {
            nodes: graph.nodes().len(),
            planned: schedule.plans.len(),
        };
        if schedule.plans.len() != graph.nodes().len() || schedule.backends.len() != backends.len()
        {
            return Err(mismatch());
        }
        let host = host();
        let mut slots: Vec<Option<Buffer>> = Vec::new();
        let mut slot_of: Vec<Option<usize>> = vec![None; graph.len()];
        let mut descs = vec![None; graph.len()];
        let mut homes = vec![host.clone(); graph.len()];
        for id in graph.inputs() {
            slot_of[id.0] = Some(slots.len());
            slots.push(Some(Buffer::alloc(&host, graph.tensor(id).clone())?));
            descs[id.0] = Some(graph.tensor(id).clone());
        }
        // The last node that reads each result (kept results: never released).
        let mut last_use: Vec<Option<usize>> = vec![None; graph.len()];
        for (i, node) in graph.nodes().iter().enumerate() {
            for s in &node.srcs {
                last_use[s.0] = Some(i);
            }
        }
        let mut free: Vec<usize> = Vec::new();
        let mut nodes = Vec::with_capacity(graph.nodes().len());
        for (i, (node, plan)) in graph.nodes().iter().zip(&schedule.plans).enumerate() {
            let backend = *backends.get(plan.backend).ok_or_else(mismatch)?;
            if plan.access.len() != node.srcs.len() {
                return Err(mismatch());
            }
            let mut copies = Vec::with_capacity(node.srcs.len());
            let mut operands = Vec::with_capacity(node.srcs.len());
            for (&s, &access) in node.srcs.iter().zip(&plan.access) {
                let desc = graph.tensor(s).clone();
                let copy = match access {
                    Access::Download => Some(Buffer::alloc(&host, desc.clone())?),
                    Access::Direct | Access::Upload => None,
                };
                copies.push(copy);
                // Weights' buffer types are known at run time only (the loaded
                // weights); they are filled in then.
                let buft = match (graph.kind(s), access) {
                    (_, Access::Download) => host.clone(),
                    (TensorKind::Result(_), _) => homes[s.0].clone(),
                    _ => host.clone(),
                };
                operands.push(Operand { desc, buft, contiguous: true });
            }
            let dst = graph.tensor(node.dst).clone();
            let compute_buft = backend.compute_buft();
            let need = compute_buft.alloc_size(&dst)?;
            // The smallest released storage of this buffer type that holds the result.
            let reuse = free
                .iter()
                .enumerate()
                .filter_map(|(f, &slot)| {
                    let b = slots[slot].as_ref()?;
                    (b.buft().id() == compute_buft.id() && b.capacity() >= need)
                        .then_some((b.capacity(), f))
                })
                .min();
            let dst_slot = match reuse {
                Some((_, f)) => free.swap_remove(f),
                None => {
                    slots.push(Some(Buffer::alloc(&compute_buft, dst.clone())?));
                    slots.len() - 1
                }
            };
            slot_of[node.dst.0] = Some(dst_slot);
            descs[node.dst.0] = Some(dst.clone());
            homes[node.dst.0] = compute_buft;
            // Results this node read last, and a result nobody reads, are released
            // (after the result's storage was chosen: it is never a source's).
            let mut release = |t: TensorId| {
                let done = matches!(graph.kind(t), TensorKind::Result(_))
                    && !keep.contains(&t)
                    && last_use[t.0].is_none_or(|l| l == i);
                if let Some(slot) = slot_of[t.0].filter(|s| done && !free.contains(s)) {
                    free.push(slot);
                }
            };
            for &s in &node.srcs {
                release(s);
            }
            if last_use[node.dst.0].is_none() {
                release(node.dst);
            }
            nodes.push(PreparedNode {
                op: OpDesc { op: node.op, srcs: operands, dst },
                backend: plan.backend,
                srcs: node.srcs.iter().copied().zip(plan.access.iter().copied()).collect(),
                copies,
                dst_slot,
                checked: false,
            });
        }
        let kernels = vec![None; nodes.len()];
        let inputs = graph.inputs().collect();
        let scratch = Bump::with_capacity(scratch_bytes);
        let group_len = group::groups(graph, &nodes, &slot_of);
        // The ops' rules depend on their descriptions only: checked here, once.
        for node in &nodes {
            node.op.check().map_err(ExecError::Op)?;
        }
        let weights_checked = None;
        Ok(Prepared {
            nodes,
            slots,
            slot_of,
            descs,
            kernels,
            inputs,
            scratch,
            group_len,
            weights_checked,
        })
    }

    /// Runs one step: `inputs` (each graph input's plain bytes) copied into their
    /// buffers, every op into its result's buffer, in node order. `weights` and `state`
    /// as for [`crate::exec::run_with_state`]; `graph` is the one this was prepared for.
    ///
    /// Errors: [`ExecError::Input`] for a missing or mis-sized input or state tensor, or
    /// a source of another description than the prepared op's;
    /// [`ExecError::ForeignWeights`] as [`crate::exec::run`] checks (once per set of
    /// weights, see the module docs); [`ExecError::Unsupported`] for an op a source's
    /// buffer type refuses; and the first error of a backend, which stops the step.
    ///
    /// May request the AMX permission (once per process, [`crate::tile_state`]) when it
    /// takes the AMX path.
    pub fn run(
        &mut self,
        graph: &Graph,
        backends: &[&dyn Backend],
        weights: &Weights,
        inputs: &[(TensorId, &[u8])],
        state: &[(TensorId, &Buffer)],
    ) -> Result<(), ExecError> {
        // Loaded weights never change: checked once per set (and graph).
        let seen = (weights.id(), graph as *const Graph as usize);
        if self.weights_checked != Some(seen) {
            if let Some(m) = weights.mismatch(graph) {
                let loaded = m.loaded.unwrap_or_else(|| "no buffer".into());
                return Err(ExecError::ForeignWeights { id: m.id.0, graph: m.graph, loaded });
            }
            self.weights_checked = Some(seen);
        }
        self.scratch.reset();
        for &id in &self.inputs {
            let missing = || ExecError::Input { tensor: graph.tensor(id).name.clone() };
            let (_, bytes) = inputs.iter().find(|(i, _)| *i == id).ok_or_else(missing)?;
            let slot = self.slot_of[id.0].ok_or_else(missing)?;
            let buf = self.slots[slot].as_mut().ok_or_else(missing)?;
            let dst = buf.host_bytes_mut()?;
            if dst.len() != bytes.len() {
                return Err(missing());
            }
            dst.copy_from_slice(bytes);
        }
        let mut grouped_until = 0;
        for i in 0..self.nodes.len() {
            if i < grouped_until {
                continue;
            }
            let len = self.group_len[i];
            if len > 1 && self.run_group(i, len, backends, weights)? {
                grouped_until = i + len;
                continue;
            }
            let node = &mut self.nodes[i];
            let backend = *backends.get(node.backend).ok_or(ExecError::ScheduleMismatch {
                nodes: graph.nodes().len(),
                planned: self.kernels.len(),
            })?;
            let name = &node.op.dst.name;
            let mismatch = || ExecError::Sources {
                op: name.clone(),
                what: "the schedule does not match the graph",
            };
            // Results in another backend's memory come down into their host copies.
            for ((s, access), copy) in node.srcs.iter().zip(&mut node.copies) {
                if let (Access::Download, Some(copy)) = (access, copy) {
                    let slot = self.slot_of[s.0].ok_or_else(mismatch)?;
                    let from = self.slots[slot].as_ref().ok_or_else(mismatch)?;
                    from.buft().get_tensor(from, copy.host_bytes_mut()?)?;
                }
            }
            let mut dst = self.slots[node.dst_slot].take().ok_or_else(mismatch)?;
            // The storage may have held another result earlier in the step.
            if dst.desc() != &node.op.dst {
                dst.retag(node.op.dst.clone())?;
            }
            let mut srcs: [Option<&Buffer>; 6] = [None; 6];
            if node.srcs.len() > srcs.len() {
                return Err(mismatch());
            }
            for (slot, (((s, access), copy), operand)) in
                srcs.iter_mut().zip(node.srcs.iter().zip(&node.copies).zip(&mut node.op.srcs))
            {
                let buf = match (access, graph.kind(*s)) {
                    (Access::Download, _) => copy.as_ref(),
                    (_, TensorKind::Weight) => weights.get(*s),
                    (_, TensorKind::State) => state.iter().find(|(i, _)| i == s).map(|(_, b)| *b),
                    (_, TensorKind::Input | TensorKind::Result(_)) => {
                        self.slot_of[s.0].and_then(|slot| self.slots[slot].as_ref())
                    }
                };
                let buf =
                    buf.ok_or_else(|| ExecError::Input { tensor: operand.desc.name.clone() })?;
                if buf.desc() != &operand.desc {
                    return Err(ExecError::Input { tensor: operand.desc.name.clone() });
                }
                if buf.buft().id() != operand.buft.id() {
                    operand.buft = buf.buft().clone();
                    node.checked = false;
                }
                *slot = Some(buf);
            }
            if !node.checked {
                CheckedOp::new(&node.op)?;
                node.checked = true;
            }
            // Every op has a source; the first fills the unused slots.
            let first = srcs[0].ok_or_else(mismatch)?;
            let mut refs: [&Buffer; 6] = [first; 6];
            let n = node.srcs.len();
            for (r, s) in refs.iter_mut().zip(&srcs[..n]) {
                *r = s.ok_or_else(mismatch)?;
            }
            // Checked just above or at an earlier step, and not changed since.
            let op = CheckedOp::trusted(&node.op);
            let done = backend.compute_checked_into(op, &refs[..n], &mut dst, &self.scratch);
            self.slots[node.dst_slot] = Some(dst);
            self.kernels[i] = Some(done?.0);
        }
        Ok(())
    }

    /// The buffer of input or result `id` after the last step: always for inputs and
    /// the results kept ([`Prepared::new`]), for others only while their storage still
    /// holds them.
    pub fn value(&self, id: TensorId) -> Option<&Buffer> {
        let slot = (*self.slot_of.get(id.0)?)?;
        let buf = self.slots.get(slot)?.as_ref()?;
        (Some(buf.desc()) == self.descs[id.0].as_ref()).then_some(buf)
    }

    /// Bytes of storage of the inputs and results (shared storage counted once).
    pub fn storage_bytes(&self) -> usize {
        self.slots.iter().flatten().map(Buffer::capacity).sum()
    }

    /// The kernel that ran each node in the last step (node order).
    pub fn kernels(&self) -> impl Iterator<Item = Option<&Kernel>> + '_ {
        self.kernels.iter().map(Option::as_ref)
    }

    /// Bytes the per-step arena holds (its size after the largest step so far).
    pub fn scratch_bytes(&self) -> usize {
        self.scratch.allocated_bytes()
    }

    /// For each node, how many nodes from it on run as one job (1: alone), for tests.
    #[cfg(test)]
    pub(crate) fn group_lengths(&self) -> &[usize] {
        &self.group_len
    }

    /// The node names, for reports.
    pub fn node_names(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.nodes.iter().map(|n| &n.op.dst.name)
    }
}

mod group;
