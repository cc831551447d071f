//! The scheduler's input (a read-only snapshot) and output (a Plan applied by the caller in one transaction).

use std::collections::BTreeMap;

use bh_models::{
    Evaluation, Execution, ExecutionDesiredStateType, ExecutionStateType, Job, JobStateType,
    NodeState, State,
};

/// What the scheduler may read: the job, all its executions (every version), and every known node.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub job: Job,
    pub executions: Vec<Execution>,
    pub nodes: Vec<NodeState>,
}

/// A change to an existing execution. Only the fields that are `Some` change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutionUpdate {
    pub execution_id: String,
    /// Revision the execution had in the snapshot; the applier refuses the plan if it moved (compare-and-swap).
    pub expected_revision: u64,
    pub desired_state: Option<State<ExecutionDesiredStateType>>,
    /// Set by the scheduler only to fail executions it gives up on (lost node, timeout).
    pub compute_state: Option<State<ExecutionStateType>>,
}

/// Why a node was not chosen for this job, for messages such as "not enough nodes ...".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeRejection {
    pub node_id: String,
    pub reason: String,
}

/// The outcome of one evaluation: what to create, change and tell, with a reason for everything not placed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub eval_id: String,
    pub job_id: String,
    /// Revision of the job in the snapshot (compare-and-swap on apply).
    pub job_revision: u64,
    /// The job's new state, if it changes.
    pub job_state: Option<State<JobStateType>>,
    /// Executions to create (ComputeState New; DesiredState Pending for bidding, Running when pre-approved).
    pub new_executions: Vec<Execution>,
    pub execution_updates: Vec<ExecutionUpdate>,
    /// Follow-up evaluations, for example a delayed `job-queue` evaluation with WaitUntil set.
    pub new_evaluations: Vec<Evaluation>,
    /// Nodes considered and refused, with why.
    pub rejected_nodes: Vec<NodeRejection>,
    /// Partitions that could not be placed, with why.
    pub unplaced: BTreeMap<i64, String>,
}

impl Plan {
    /// An empty plan for `eval` over `job`.
    pub fn for_eval(eval: &Evaluation, job: &Job) -> Self {
        Self {
            eval_id: eval.id.clone(),
            job_id: job.id.clone(),
            job_revision: job.revision,
            ..Self::default()
        }
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.job_state.is_none()
            && self.new_executions.is_empty()
            && self.execution_updates.is_empty()
            && self.new_evaluations.is_empty()
    }
}

/// A scheduler for one or more job types: a pure function of snapshot, evaluation and time.
pub trait Scheduler: Send + Sync {
    /// Plans `eval` against `snapshot` at `now` (Unix nanoseconds). Must not do I/O or read the wall clock.
    fn process(&self, snapshot: &Snapshot, eval: &Evaluation, now: i64) -> Plan;
}
