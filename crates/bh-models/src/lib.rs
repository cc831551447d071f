//! bh-models: Bacalhau-compatible wire types, spec parsing and validation, selectors, quantities and IDs.
//!
//! This crate does no I/O. Everything that crosses a process boundary as JSON is defined here.

pub mod api;
pub mod config;
pub mod config_tree;
pub mod error;
pub mod execution;
pub mod history;
pub mod ids;
pub mod job;
pub mod messages;
pub mod node;
pub mod quantity;
pub mod selector;
pub mod spec;
pub mod state;
pub mod validate;

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
pub use quantity::{
    format_bytes, format_cpu, parse_bytes, parse_capacity_fraction, parse_cpu, parse_gpu,
};
pub use selector::{explain_mismatch, matches_all, parse_selector, validate_constraint};
pub use spec::{job_from_value, parse_job};
pub use state::{ExecutionDesiredStateType, ExecutionStateType, JobStateType, State};
pub use validate::{
    apply_defaults, apply_job_defaults, normalize, sanitize_for_submit, validate,
    validate_for_submit, JobDefaults,
};
