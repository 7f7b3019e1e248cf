//! [`PlaceError`] and [`SchedError`].

use std::fmt;
use std::sync::Arc;

use super::BufferError;

/// Weight placement or upload failed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaceError {
    /// No buffer type in the weight's preference list accepts the op that consumes it.
    NoBufferType {
        /// The weight.
        tensor: Arc<str>,
        /// The consuming op that every buffer type refused.
        op: Arc<str>,
    },
    /// The data for a weight was not given.
    MissingData {
        /// The weight.
        tensor: Arc<str>,
    },
    /// Allocating or uploading the weight failed.
    Buffer(BufferError),
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaceError::NoBufferType { tensor, op } => write!(
                f,
                "no buffer type in the preference list of {tensor} accepts its consumer {op}"
            ),
            PlaceError::MissingData { tensor } => write!(f, "no data was given for {tensor}"),
            PlaceError::Buffer(e) => write!(f, "upload: {e}"),
        }
    }
}

impl std::error::Error for PlaceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlaceError::Buffer(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BufferError> for PlaceError {
    fn from(e: BufferError) -> Self {
        PlaceError::Buffer(e)
    }
}

/// The scheduler refused a graph.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// An op would have to read a weight in a buffer type that no backend able to run the
    /// op can read (a packed buffer with no backend accepting its buffer type), and a
    /// weight outside host memory is never copied.
    UnreadableSource {
        /// The node's name.
        op: Arc<str>,
        /// The op kind.
        kind: &'static str,
        /// The weight.
        tensor: Arc<str>,
        /// Its buffer type.
        buft: Arc<str>,
    },
    /// No backend supports the op with its sources where they are.
    NoBackend {
        /// The node's name.
        op: Arc<str>,
        /// The op kind.
        kind: &'static str,
    },
    /// A weight of the graph has no buffer (it was not loaded).
    NotLoaded {
        /// The weight.
        tensor: Arc<str>,
    },
    /// No backend was given.
    NoBackends,
    /// The loaded weights were placed for another graph: tensor id `id` is `graph` in
    /// this graph and `loaded` in the weights (a weight of another name, type or shape,
    /// or a buffer where this graph has no weight).
    ForeignWeights {
        /// The tensor id where they differ.
        id: usize,
        /// What the graph has there.
        graph: Arc<str>,
        /// What the weights hold there.
        loaded: Arc<str>,
    },
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedError::UnreadableSource { op, kind, tensor, buft } => write!(
                f,
                "{kind} {op} reads {tensor} from buffer type {buft}, which no backend that \
                 runs {kind} accepts, and it is not host memory, so it cannot be copied: \
                 refusing the graph rather than reading packed bytes as plain data"
            ),
            SchedError::NoBackend { op, kind } => {
                write!(f, "no backend supports {kind} {op} with its sources")
            }
            SchedError::NotLoaded { tensor } => write!(f, "weight {tensor} has no buffer"),
            SchedError::NoBackends => f.write_str("no backend was given"),
            SchedError::ForeignWeights { id, graph, loaded } => write!(
                f,
                "the weights were loaded for another graph: tensor #{id} is {graph} in this \
                 graph, the weights hold {loaded} there"
            ),
        }
    }
}

impl std::error::Error for SchedError {}
