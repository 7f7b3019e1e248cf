//! Errors of the memory, buffer, graph, placement, scheduling and execution layers.
//!
//! Each message names what it is about: the op (by its node name and kind), the tensor
//! and the buffer type. Names are carried as `Arc<str>`, so these enums are `Clone` but
//! not `Copy` (unlike amx-core's, which carry numbers only).

mod alloc;
mod buffer;
mod exec;
mod graph;
mod place;

pub use alloc::AllocError;
pub use buffer::BufferError;
pub use exec::ExecError;
pub use graph::GraphError;
pub use place::{PlaceError, SchedError};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_op_tensor_and_buffer_type() {
        let e = SchedError::UnreadableSource {
            op: "blk.0.attn_q".into(),
            kind: "MUL_MAT",
            tensor: "blk.0.attn_q.weight".into(),
            buft: "AMX".into(),
        };
        let s = e.to_string();
        for part in ["MUL_MAT blk.0.attn_q", "blk.0.attn_q.weight", "buffer type AMX"] {
            assert!(s.contains(part), "{s}");
        }
        let e = BufferError::NotHost { tensor: "w".into(), buft: "AMX".into() };
        assert!(e.to_string().contains("tensor w is in buffer type AMX"));
        let e = ExecError::from(e);
        assert!(std::error::Error::source(&e).is_some());
    }
}
