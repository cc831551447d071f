//! Messages between the orchestrator and compute nodes, transport-neutral (bh-transport maps them to protobuf).

use serde::{Deserialize, Serialize};

use crate::execution::{Execution, RunCommandResult};
use crate::job::SpecConfig;
use crate::node::NodeInfo;

/// Orchestrator to compute node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToCompute {
    /// Ask the node to bid on an execution. With `pre_approved` the node runs it at once if it accepts
    /// (ops and daemon jobs, which have no approval round).
    AskForBid {
        execution: Box<Execution>,
        pre_approved: bool,
    },
    /// The node's bid won: run the execution.
    BidAccepted { execution_id: String },
    /// The node's bid lost: forget the execution.
    BidRejected {
        execution_id: String,
        reason: String,
    },
    /// Stop the execution now.
    Cancel {
        execution_id: String,
        reason: String,
    },
}

/// Compute node to orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromCompute {
    /// Liveness, with the node's latest load.
    Heartbeat { seq: u64 },
    /// The node's capabilities or load changed.
    UpdateNodeInfo { info: Box<NodeInfo> },
    /// Answer to AskForBid.
    BidResult {
        execution_id: String,
        accepted: bool,
        reason: String,
    },
    /// The execution started running.
    ExecutionStarted { execution_id: String },
    /// The execution finished; the workload may still have exited non-zero.
    RunResult {
        execution_id: String,
        output: RunCommandResult,
        published_result: Option<SpecConfig>,
    },
    /// The execution could not run or was killed (timeout, cancel, executor error).
    ComputeError {
        execution_id: String,
        message: String,
        /// Output captured before the failure, if any.
        output: Option<RunCommandResult>,
    },
}
