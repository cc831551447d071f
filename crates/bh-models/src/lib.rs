//! bh-models: Bacalhau-compatible wire types, spec parsing and validation, selectors, quantities and IDs.
//!
//! This crate does no I/O. Everything that crosses a process boundary as JSON is defined here.

pub mod api;
pub mod error;
pub mod execution;
pub mod history;
pub mod ids;
pub mod job;
pub mod messages;
pub mod node;
pub mod state;

pub use error::{Error, ErrorCode, Result};
pub use execution::{AllocatedResources, Evaluation, Execution, RunCommandResult};
pub use history::{Event, JobHistory, StateChange};
pub use job::{
    Constraint, InputSource, Job, NetworkConfig, ResourcesConfig, ResultPath, SpecConfig, Task,
    TimeoutConfig,
};
pub use messages::{FromCompute, ToCompute};
pub use node::{
    BuildVersionInfo, ComputeNodeInfo, ConnectionState, Gpu, NodeInfo, NodeState, Resources,
};
pub use state::{ExecutionDesiredStateType, ExecutionStateType, JobStateType, State};
