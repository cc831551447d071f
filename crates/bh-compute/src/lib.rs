//! bh-compute: the compute node: capacity, bidding, the execution queue and store, and the Executor trait.
//!
//! Start a node with [`ComputeNode::start`] and a list of executors; it implements
//! [`bh_transport::service::ComputeAgent`], which the transport's gRPC client drives.

pub mod capacity;
pub mod config;
/// Executor conformance suite (feature `conformance`, for tests of executors).
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod executor;
/// GPU detection (NVML, rocm-smi, xpu-smi) and GPU node labels.
pub mod gpu;
pub mod inputs;
pub mod logs;
/// A scriptable executor for tests.
pub mod mock;
pub mod node;
pub mod publish;
pub mod store;

pub use config::{CapacityConfig, ComputeConfig};
pub use error::ComputeError;
pub use executor::{
    ExecutionOutput, ExecutionRequest, Executor, ExecutorError, LogSink, LogStream, Mount,
    NullLogSink, UnavailableExecutor,
};
pub use logs::{LogBuffer, LogChunk};
pub use node::ComputeNode;
pub use store::{LocalExecution, LocalState};
