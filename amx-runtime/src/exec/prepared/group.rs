//! Consecutive matmuls on the same activations (Q, K and V; gate and up, as MUL_MATs or
//! as MUL_MAT_IDs of a MoE layer) found once, and run as one job of their backend.

use crate::backend::Backend;
use crate::buffer::Buffer;
use crate::error::ExecError;
use crate::graph::{Graph, TensorKind};
use crate::op::{CheckedOp, Op};
use crate::placement::Weights;
use crate::sched::Access;

use super::{GROUP_MAX, Prepared, PreparedNode};

impl Prepared {
    /// Runs the `len` MUL_MATs or MUL_MAT_IDs from node `first` on (found by [`groups`])
    /// as one job
    /// of their backend: `Ok(false)`, with nothing run, where it does not take them
    /// together.
    pub(super) fn run_group(
        &mut self,
        first: usize,
        len: usize,
        backends: &[&dyn Backend],
        weights: &Weights,
    ) -> Result<bool, ExecError> {
        let (planned, nodes_len) = (self.kernels.len(), self.nodes.len());
        let nodes = &mut self.nodes[first..first + len];
        let mismatch = || ExecError::ScheduleMismatch { nodes: nodes_len, planned };
        let backend = *backends.get(nodes[0].backend).ok_or_else(mismatch)?;
        let x_slot = self.slot_of[nodes[0].srcs[1].0.0].ok_or_else(mismatch)?;
        // MUL_MAT_ID's expert ids ([`groups`] keeps them out of the results' storage).
        let ids_slot = match nodes[0].srcs.get(2) {
            Some((ids, _)) => Some(self.slot_of[ids.0].ok_or_else(mismatch)?),
            None => None,
        };
        // The weights' buffer types, as the one-by-one path records them.
        for node in nodes.iter_mut() {
            let w = weights.get(node.srcs[0].0);
            let w =
                w.ok_or_else(|| ExecError::Input { tensor: node.op.srcs[0].desc.name.clone() })?;
            if w.buft().id() != node.op.srcs[0].buft.id() {
                node.op.srcs[0].buft = w.buft().clone();
                node.checked = false;
            }
            if !node.checked {
                CheckedOp::new(&node.op)?;
                node.checked = true;
            }
        }
        let mut dsts: [Option<Buffer>; GROUP_MAX] = [None, None, None, None];
        for (d, node) in dsts.iter_mut().zip(nodes.iter()) {
            let mut b = self.slots[node.dst_slot].take().ok_or_else(mismatch)?;
            if b.desc() != &node.op.dst {
                b.retag(node.op.dst.clone())?;
            }
            *d = Some(b);
        }
        let x = self.slots[x_slot].as_ref();
        let ids = ids_slot.map(|slot| self.slots[slot].as_ref());
        let result = (|| {
            let x = x.ok_or_else(mismatch)?;
            let ids = ids.map(|ids| ids.ok_or_else(mismatch)).transpose()?;
            let n = 2 + usize::from(ids.is_some());
            let mut lists: [[&Buffer; 3]; GROUP_MAX] = [[x; 3]; GROUP_MAX];
            // Each checked above or at an earlier step, and not changed since.
            let mut ops = [CheckedOp::trusted(&nodes[0].op); GROUP_MAX];
            for ((list, op), node) in lists.iter_mut().zip(ops.iter_mut()).zip(nodes.iter()) {
                let w = weights.get(node.srcs[0].0).ok_or_else(mismatch)?;
                let s = &node.op.srcs;
                let same = s.len() == n
                    && w.desc() == &s[0].desc
                    && x.desc() == &s[1].desc
                    && ids.is_none_or(|ids| ids.desc() == &s[2].desc);
                if !same {
                    return Err(ExecError::Input { tensor: s[0].desc.name.clone() });
                }
                *list = [w, x, ids.unwrap_or(x)];
                *op = CheckedOp::trusted(&node.op);
            }
            let [l0, l1, l2, l3] = &lists;
            let srcs: [&[&Buffer]; GROUP_MAX] = [&l0[..n], &l1[..n], &l2[..n], &l3[..n]];
            let [a, b, c, d] = &mut dsts;
            let mut outs: [Option<&mut Buffer>; GROUP_MAX] =
                [a.as_mut(), b.as_mut(), c.as_mut(), d.as_mut()];
            let mut refs: [&mut Buffer; GROUP_MAX] = match &mut outs {
                [Some(a), Some(b), Some(c), Some(d)] => [a, b, c, d],
                [Some(a), Some(b), Some(c), None] => {
                    return backend.compute_group_into(&ops[..3], &srcs[..3], &mut [a, b, c]);
                }
                [Some(a), Some(b), None, None] => {
                    return backend.compute_group_into(&ops[..2], &srcs[..2], &mut [a, b]);
                }
                _ => return Err(mismatch()),
            };
            backend.compute_group_into(&ops, &srcs, &mut refs)
        })();
        for (d, node) in dsts.into_iter().zip(nodes.iter()) {
            self.slots[node.dst_slot] = d;
        }
        match result? {
            Some(kernel) => {
                for k in &mut self.kernels[first..first + len] {
                    *k = Some(kernel.clone());
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// [`Prepared::group_len`] of each node: runs of up to [`GROUP_MAX`] consecutive
/// MUL_MATs on one backend, each of a weight read in place, all on the same activations
/// read in place, with results in distinct storage (none of them the activations'); or
/// such runs of MUL_MAT_IDs, all with the same expert ids (an input or result read in
/// place, whose storage no result of the run takes either).
pub(super) fn groups(
    graph: &Graph,
    nodes: &[PreparedNode],
    slot_of: &[Option<usize>],
) -> Vec<usize> {
    let fits = |n: &PreparedNode| {
        let arity = match n.op.op {
            Op::MulMat => 2,
            Op::MulMatId => 3,
            _ => return false,
        };
        n.srcs.len() == arity
            && matches!(graph.kind(n.srcs[0].0), TensorKind::Weight)
            && n.srcs[1..]
                .iter()
                .all(|(s, _)| matches!(graph.kind(*s), TensorKind::Input | TensorKind::Result(_)))
            && n.srcs.iter().all(|(_, a)| matches!(a, Access::Direct))
    };
    let mut out = vec![1; nodes.len()];
    let mut i = 0;
    while i < nodes.len() {
        let mut len = 1;
        if fits(&nodes[i]) {
            let (head, backend) = (&nodes[i], nodes[i].backend);
            // The activations' (and expert ids') storage.
            let read: Vec<Option<usize>> =
                head.srcs[1..].iter().map(|(s, _)| slot_of[s.0]).collect();
            let same_reads = |n: &PreparedNode| {
                n.op.op == head.op.op
                    && n.srcs[1..].iter().zip(&head.srcs[1..]).all(|(a, b)| a.0 == b.0)
            };
            while i + len < nodes.len() && len < GROUP_MAX {
                let n = &nodes[i + len];
                let distinct = nodes[i..i + len].iter().all(|m| m.dst_slot != n.dst_slot)
                    && !read.contains(&Some(n.dst_slot));
                if !(fits(n) && same_reads(n) && n.backend == backend && distinct) {
                    break;
                }
                len += 1;
            }
            if read.contains(&Some(head.dst_slot)) {
                len = 1;
            }
        }
        out[i] = len;
        i += len;
    }
    out
}
