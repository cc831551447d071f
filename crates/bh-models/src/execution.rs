//! Executions (one try of one partition of a job on one node) and evaluations (a request to re-plan a job).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::{Job, SpecConfig};
use crate::node::Resources;
use crate::state::{ExecutionDesiredStateType, ExecutionStateType, State};

/// One placement of one partition of a job on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Execution {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Namespace")]
    pub namespace: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    /// The job as it was when the execution was created.
    #[serde(rename = "Job", skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    #[serde(rename = "JobVersion")]
    pub job_version: u64,
    #[serde(rename = "AllocatedResources")]
    pub allocated_resources: AllocatedResources,
    #[serde(rename = "DesiredState")]
    pub desired_state: State<ExecutionDesiredStateType>,
    #[serde(rename = "ComputeState")]
    pub compute_state: State<ExecutionStateType>,
    #[serde(rename = "PublishedResult", skip_serializing_if = "Option::is_none")]
    pub published_result: Option<SpecConfig>,
    #[serde(rename = "RunOutput", skip_serializing_if = "Option::is_none")]
    pub run_output: Option<RunCommandResult>,
    #[serde(rename = "PreviousExecution", skip_serializing_if = "String::is_empty")]
    pub previous_execution: String,
    #[serde(rename = "NextExecution", skip_serializing_if = "String::is_empty")]
    pub next_execution: String,
    #[serde(rename = "FollowupEvalID", skip_serializing_if = "String::is_empty")]
    pub followup_eval_id: String,
    #[serde(rename = "PartitionIndex")]
    pub partition_index: i64,
    #[serde(rename = "Revision")]
    pub revision: u64,
    /// Unix time in nanoseconds.
    #[serde(rename = "CreateTime")]
    pub create_time: i64,
    /// Unix time in nanoseconds.
    #[serde(rename = "ModifyTime")]
    pub modify_time: i64,
}

impl Execution {
    /// Whether the execution has reached a final compute state or was stopped before it started.
    pub fn is_terminal(&self) -> bool {
        self.compute_state.state_type.is_terminal()
    }
}

/// Resources the orchestrator set aside for an execution, per task name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AllocatedResources {
    #[serde(rename = "Tasks")]
    pub tasks: BTreeMap<String, Resources>,
}

/// What a workload produced: its output streams and exit code.
///
/// Note the lowercase `stderr` key: it is Bacalhau's wire shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunCommandResult {
    #[serde(rename = "Stdout")]
    pub stdout: String,
    #[serde(rename = "StdoutTruncated")]
    pub stdout_truncated: bool,
    #[serde(rename = "stderr")]
    pub stderr: String,
    #[serde(rename = "StderrTruncated")]
    pub stderr_truncated: bool,
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    #[serde(rename = "ErrorMsg")]
    pub error_msg: String,
}

/// Evaluation statuses (strings on the wire).
pub const EVAL_STATUS_BLOCKED: &str = "blocked";
pub const EVAL_STATUS_PENDING: &str = "pending";
pub const EVAL_STATUS_COMPLETE: &str = "complete";
pub const EVAL_STATUS_FAILED: &str = "failed";
pub const EVAL_STATUS_CANCELED: &str = "canceled";

/// What caused an evaluation.
pub const TRIGGER_JOB_REGISTER: &str = "job-register";
pub const TRIGGER_JOB_UPDATE: &str = "job-update";
pub const TRIGGER_JOB_CANCEL: &str = "job-cancel";
pub const TRIGGER_JOB_RERUN: &str = "job-rerun";
pub const TRIGGER_JOB_QUEUE: &str = "job-queue";
pub const TRIGGER_JOB_TIMEOUT: &str = "job-timeout";
pub const TRIGGER_EXEC_FAILURE: &str = "exec-failure";
pub const TRIGGER_EXEC_UPDATE: &str = "exec-update";
pub const TRIGGER_EXEC_TIMEOUT: &str = "exec-timeout";
pub const TRIGGER_EXEC_LIMIT: &str = "exec-limit";
pub const TRIGGER_NODE_JOIN: &str = "node-join";
pub const TRIGGER_NODE_LEAVE: &str = "node-leave";

/// A request to bring a job's executions in line with its spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Evaluation {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Namespace")]
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    #[serde(rename = "TriggeredBy")]
    pub triggered_by: String,
    #[serde(rename = "Priority")]
    pub priority: i64,
    /// The job type, which selects the scheduler.
    #[serde(rename = "Type")]
    pub eval_type: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "Comment", skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Unix time in nanoseconds before which the evaluation must not run (0: now).
    #[serde(rename = "WaitUntil")]
    pub wait_until: i64,
    #[serde(rename = "CreateTime")]
    pub create_time: i64,
    #[serde(rename = "ModifyTime")]
    pub modify_time: i64,
}
