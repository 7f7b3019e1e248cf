//! A small op graph: weights, inputs and op results, with ggml shape rules checked as
//! nodes are added. Nodes are kept in the order they were added, which is an order in
//! which every source comes before its consumers.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::GraphError;
use crate::op::Op;
use crate::tensor::{DType, TensorDesc, TensorId};

/// What a tensor of the graph is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A model weight: loaded once into the buffer type placement chose.
    Weight,
    /// A graph input (token ids, ...), given in host memory at each run.
    Input,
    /// The result of node `i` (index into [`Graph::nodes`]).
    Result(usize),
    /// State that persists across runs (a KV cache): a host buffer the engine owns,
    /// allocates once and passes to every run ([`crate::exec::run_with_state`]), read
    /// in place (never copied per run on the CPU). Ops only read it; the engine updates
    /// it between runs (appending a step's keys and values), so a graph stays a pure
    /// function of its inputs, weights and state.
    State,
}

/// One op of the graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// The op.
    pub op: Op,
    /// Its sources, in the op's order.
    pub srcs: Vec<TensorId>,
    /// Its result (the node's name is this tensor's name).
    pub dst: TensorId,
}

/// A graph of tensors and the ops between them.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    tensors: Vec<(TensorDesc, TensorKind)>,
    nodes: Vec<Node>,
    names: HashMap<Arc<str>, TensorId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    fn push(&mut self, desc: TensorDesc, kind: TensorKind) -> Result<TensorId, GraphError> {
        if self.names.contains_key(&desc.name) {
            return Err(GraphError::DuplicateName { tensor: desc.name });
        }
        let id = TensorId(self.tensors.len());
        self.names.insert(desc.name.clone(), id);
        self.tensors.push((desc, kind));
        Ok(id)
    }

    fn leaf(
        &mut self,
        name: &str,
        dtype: DType,
        dims: &[usize],
        kind: TensorKind,
    ) -> Result<TensorId, GraphError> {
        let desc = TensorDesc::new(name, dtype, dims)
            .ok_or_else(|| GraphError::BadTensor { tensor: name.into(), dims: dims.to_vec() })?;
        self.push(desc, kind)
    }

    /// Adds a weight of `dims` (ggml order: `[K, N]` for N rows of K values).
    ///
    /// Errors: [`GraphError::BadTensor`], [`GraphError::DuplicateName`].
    pub fn weight(
        &mut self,
        name: &str,
        dtype: DType,
        dims: &[usize],
    ) -> Result<TensorId, GraphError> {
        self.leaf(name, dtype, dims, TensorKind::Weight)
    }

    /// Adds a graph input.
    ///
    /// Errors: [`GraphError::BadTensor`], [`GraphError::DuplicateName`].
    pub fn input(
        &mut self,
        name: &str,
        dtype: DType,
        dims: &[usize],
    ) -> Result<TensorId, GraphError> {
        self.leaf(name, dtype, dims, TensorKind::Input)
    }

    /// Adds a state tensor (see [`TensorKind::State`]).
    ///
    /// Errors: [`GraphError::BadTensor`], [`GraphError::DuplicateName`].
    pub fn state(
        &mut self,
        name: &str,
        dtype: DType,
        dims: &[usize],
    ) -> Result<TensorId, GraphError> {
        self.leaf(name, dtype, dims, TensorKind::State)
    }

    /// Adds node `name` computing `op` on `srcs`, and returns its result.
    ///
    /// Errors: [`GraphError::UnknownTensor`], the shape and type rules of [`Op::infer`],
    /// [`GraphError::DuplicateName`].
    pub fn op(&mut self, name: &str, op: Op, srcs: &[TensorId]) -> Result<TensorId, GraphError> {
        let descs = srcs.iter().map(|&id| self.try_tensor(id)).collect::<Result<Vec<_>, _>>()?;
        let dst = op.infer(&Arc::from(name), &descs)?;
        let id = self.push(dst, TensorKind::Result(self.nodes.len()))?;
        self.nodes.push(Node { op, srcs: srcs.to_vec(), dst: id });
        Ok(id)
    }

    fn try_tensor(&self, id: TensorId) -> Result<&TensorDesc, GraphError> {
        self.tensors.get(id.0).map(|t| &t.0).ok_or(GraphError::UnknownTensor { id: id.0 })
    }

    /// The tensor `id` (of this graph).
    ///
    /// # Panics
    ///
    /// When `id` was not made by this graph.
    pub fn tensor(&self, id: TensorId) -> &TensorDesc {
        &self.tensors[id.0].0
    }

    /// What tensor `id` is (same panic as [`Graph::tensor`]).
    pub fn kind(&self, id: TensorId) -> TensorKind {
        self.tensors[id.0].1
    }

    /// What tensor `id` is, or `None` when `id` is not in this graph.
    pub fn kind_checked(&self, id: TensorId) -> Option<TensorKind> {
        self.tensors.get(id.0).map(|t| t.1)
    }

    /// The tensor named `name`.
    pub fn find(&self, name: &str) -> Option<TensorId> {
        self.names.get(name).copied()
    }

    /// Number of tensors (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the graph has no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The nodes, sources before consumers.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The ids of tensors of one kind.
    fn of_kind(&self, want: fn(TensorKind) -> bool) -> impl Iterator<Item = TensorId> + '_ {
        (0..self.tensors.len()).map(TensorId).filter(move |&id| want(self.kind(id)))
    }

    /// The weights, in the order they were added.
    pub fn weights(&self) -> impl Iterator<Item = TensorId> + '_ {
        self.of_kind(|k| k == TensorKind::Weight)
    }

    /// The inputs, in the order they were added.
    pub fn inputs(&self) -> impl Iterator<Item = TensorId> + '_ {
        self.of_kind(|k| k == TensorKind::Input)
    }

    /// The state tensors, in the order they were added.
    pub fn states(&self) -> impl Iterator<Item = TensorId> + '_ {
        self.of_kind(|k| k == TensorKind::State)
    }

    /// The nodes that read tensor `id`.
    pub fn consumers(&self, id: TensorId) -> impl Iterator<Item = &Node> + '_ {
        self.nodes.iter().filter(move |n| n.srcs.contains(&id))
    }

    /// `MUL_MAT`: `w` `[K, N]` times `x` `[K, M]`, giving `[N, M]`.
    ///
    /// Errors: as [`Graph::op`].
    pub fn mul_mat(
        &mut self,
        name: &str,
        w: TensorId,
        x: TensorId,
    ) -> Result<TensorId, GraphError> {
        self.op(name, Op::MulMat, &[w, x])
    }

    /// `MUL_MAT_ID`: expert stack `w` `[K, N, E]`, `x` `[K, 1 or U, T]`, `ids` `[U, T]`.
    ///
    /// Errors: as [`Graph::op`].
    pub fn mul_mat_id(
        &mut self,
        name: &str,
        w: TensorId,
        x: TensorId,
        ids: TensorId,
    ) -> Result<TensorId, GraphError> {
        self.op(name, Op::MulMatId, &[w, x, ids])
    }

    /// `ADD` with `b` broadcast.
    ///
    /// Errors: as [`Graph::op`].
    pub fn add(&mut self, name: &str, a: TensorId, b: TensorId) -> Result<TensorId, GraphError> {
        self.op(name, Op::Add, &[a, b])
    }

    /// `MUL` with `b` broadcast.
    ///
    /// Errors: as [`Graph::op`].
    pub fn mul(&mut self, name: &str, a: TensorId, b: TensorId) -> Result<TensorId, GraphError> {
        self.op(name, Op::Mul, &[a, b])
    }

    /// `DIV` with `b` broadcast.
    ///
    /// Errors: as [`Graph::op`].
    pub fn div(&mut self, name: &str, a: TensorId, b: TensorId) -> Result<TensorId, GraphError> {
        self.op(name, Op::Div, &[a, b])
    }

    /// `GET_ROWS`: rows `ids` of `table`.
    ///
    /// Errors: as [`Graph::op`].
    pub fn get_rows(
        &mut self,
        name: &str,
        table: TensorId,
        ids: TensorId,
    ) -> Result<TensorId, GraphError> {
        self.op(name, Op::GetRows, &[table, ids])
    }

    /// One-source op `op` on `a` (`SUM_ROWS`, `SOFT_MAX`, `TOP_K`, `RESHAPE`, `TRANSPOSE`,
    /// `RMS_NORM`, `SILU`).
    ///
    /// Errors: as [`Graph::op`].
    pub fn unary(&mut self, name: &str, op: Op, a: TensorId) -> Result<TensorId, GraphError> {
        self.op(name, op, &[a])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amx_core::formats::Format;

    #[test]
    fn builds_checks_and_indexes() {
        let mut g = Graph::new();
        let w = g.weight("w", DType::Block(Format::Q4_0), &[64, 16]).unwrap();
        let x = g.input("x", DType::F32, &[64, 3]).unwrap();
        let y = g.mul_mat("y", w, x).unwrap();
        let s = g.unary("s", Op::SoftMax, y).unwrap();
        assert_eq!(g.tensor(y).ne, [16, 3, 1, 1]);
        assert_eq!(g.kind(s), TensorKind::Result(1));
        assert_eq!(g.find("y"), Some(y));
        assert_eq!(g.weights().collect::<Vec<_>>(), [w]);
        assert_eq!(g.inputs().collect::<Vec<_>>(), [x]);
        assert_eq!(g.consumers(y).count(), 1);
        assert_eq!(g.len(), 4);
        assert!(matches!(g.mul_mat("y", w, x), Err(GraphError::DuplicateName { .. })));
        assert!(matches!(g.mul_mat("z", x, w), Err(GraphError::DType { .. })));
        assert!(matches!(
            g.unary("q", Op::Silu, TensorId(99)),
            Err(GraphError::UnknownTensor { id: 99 })
        ));
        assert!(matches!(g.weight("bad", DType::F32, &[0]), Err(GraphError::BadTensor { .. })));
        assert_eq!(g.nodes().len(), 2);
    }
}
