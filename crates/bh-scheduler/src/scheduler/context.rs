//! The working state of one scheduling pass: the executions as the plan has changed them so far, the seeded
//! random source, ID generation, and the steps every job type shares (lost nodes, timeouts, old versions).

use std::collections::{BTreeMap, BTreeSet};

use bh_models::execution::EVAL_STATUS_PENDING;
use bh_models::ids::{EVALUATION_ID_PREFIX, EXECUTION_ID_PREFIX};
use bh_models::node::CONNECTION_CONNECTED;
use bh_models::{
    AllocatedResources, Evaluation, Execution, ExecutionDesiredStateType, ExecutionStateType, Job,
    JobStateType, State,
};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use super::requirements::JobRequirements;
use super::selection::{select_nodes, PlannedLoad, Selection};
use super::SchedulerConfig;
use crate::plan::{ExecutionUpdate, NodeRejection, Plan, Snapshot};

/// Detail key set on the compute state of executions failed because their node was lost; daemon jobs use it
/// to tell a lost node (restart there when it returns) from a workload that failed (do not crash-loop).
pub const DETAIL_NODE_LOST: &str = "NodeLost";

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// One scheduling pass over a snapshot.
pub(crate) struct PlanContext<'a> {
    pub config: &'a SchedulerConfig,
    pub snapshot: &'a Snapshot,
    pub eval: &'a Evaluation,
    pub now: i64,
    pub job: &'a Job,
    /// The job's executions of every version, oldest first.
    pub executions: Vec<&'a Execution>,
    pub plan: Plan,
    pub planned: PlannedLoad,
    rng: StdRng,
    /// Execution updates in the order they were first made, merged per execution.
    updates: Vec<ExecutionUpdate>,
    update_index: BTreeMap<String, usize>,
}

impl<'a> PlanContext<'a> {
    pub fn new(
        config: &'a SchedulerConfig,
        snapshot: &'a Snapshot,
        eval: &'a Evaluation,
        now: i64,
    ) -> Self {
        let job = &snapshot.job;
        let mut executions: Vec<&Execution> = snapshot
            .executions
            .iter()
            .filter(|e| e.job_id == job.id)
            .collect();
        executions.sort_by(|a, b| a.create_time.cmp(&b.create_time).then(a.id.cmp(&b.id)));
        // Same inputs, same seed: IDs and tie-breaks are reproducible, yet differ between evaluations, times and
        // job revisions so that a re-delivered evaluation never reuses an execution ID.
        let seed = config.seed
            ^ fnv1a(eval.id.as_bytes())
            ^ fnv1a(&now.to_le_bytes()).rotate_left(17)
            ^ fnv1a(&job.revision.to_le_bytes()).rotate_left(31);
        Self {
            config,
            snapshot,
            eval,
            now,
            job,
            executions,
            plan: Plan::for_eval(eval, job),
            planned: PlannedLoad::default(),
            rng: StdRng::seed_from_u64(seed),
            updates: Vec::new(),
            update_index: BTreeMap::new(),
        }
    }

    /// Checks that the snapshot is of the evaluated job and that the job still needs scheduling. A terminal job
    /// (stopped, failed, completed) only has its remaining executions stopped. Returns whether to go on.
    pub fn begin(&mut self) -> bool {
        if self.job.id.is_empty() || self.job.id != self.eval.job_id {
            return false;
        }
        let state = self.job.state.state_type;
        if state.is_terminal() {
            self.stop_all(&format!("job {}", state.as_str().to_ascii_lowercase()));
            return false;
        }
        true
    }

    /// The finished plan.
    pub fn finish(mut self) -> Plan {
        self.plan.execution_updates = self.updates;
        self.plan
    }

    // ----- effective execution state -----

    fn update_of(&self, execution: &Execution) -> Option<&ExecutionUpdate> {
        self.update_index
            .get(&execution.id)
            .and_then(|i| self.updates.get(*i))
    }

    /// The desired state as this plan leaves it.
    pub fn desired(&self, execution: &Execution) -> ExecutionDesiredStateType {
        self.update_of(execution)
            .and_then(|u| u.desired_state.as_ref())
            .map(|s| s.state_type)
            .unwrap_or(execution.desired_state.state_type)
    }

    /// The compute state as this plan leaves it.
    pub fn compute(&self, execution: &Execution) -> ExecutionStateType {
        self.update_of(execution)
            .and_then(|u| u.compute_state.as_ref())
            .map(|s| s.state_type)
            .unwrap_or(execution.compute_state.state_type)
    }

    /// The compute state, with message and details, as this plan leaves it.
    pub fn compute_state<'s>(&'s self, execution: &'s Execution) -> &'s State<ExecutionStateType> {
        self.update_of(execution)
            .and_then(|u| u.compute_state.as_ref())
            .unwrap_or(&execution.compute_state)
    }

    /// The compute-state message as this plan leaves it.
    pub fn compute_message(&self, execution: &Execution) -> String {
        self.compute_state(execution).message.clone()
    }

    /// Not finished and not being stopped.
    pub fn is_live(&self, execution: &Execution) -> bool {
        !self.compute(execution).is_terminal()
            && self.desired(execution) != ExecutionDesiredStateType::Stopped
    }

    /// Live and approved to run.
    pub fn is_approved(&self, execution: &Execution) -> bool {
        self.is_live(execution) && self.desired(execution) == ExecutionDesiredStateType::Running
    }

    /// Executions of the job's current version, oldest first.
    pub fn current(&self) -> Vec<&'a Execution> {
        self.executions
            .iter()
            .copied()
            .filter(|e| e.job_version == self.job.version)
            .collect()
    }

    fn upsert(
        &mut self,
        execution: &Execution,
        desired: Option<State<ExecutionDesiredStateType>>,
        compute: Option<State<ExecutionStateType>>,
    ) {
        let index = match self.update_index.get(&execution.id) {
            Some(i) => *i,
            None => {
                self.updates.push(ExecutionUpdate {
                    execution_id: execution.id.clone(),
                    expected_revision: execution.revision,
                    ..ExecutionUpdate::default()
                });
                let i = self.updates.len() - 1;
                self.update_index.insert(execution.id.clone(), i);
                i
            }
        };
        if let Some(update) = self.updates.get_mut(index) {
            if desired.is_some() {
                update.desired_state = desired;
            }
            if compute.is_some() {
                update.compute_state = compute;
            }
        }
    }

    /// Asks for a live execution to stop (desired Stopped); no-op for one already stopping or finished.
    pub fn stop(&mut self, execution: &Execution, message: &str) {
        if self.is_live(execution) {
            self.upsert(
                execution,
                Some(State::new(ExecutionDesiredStateType::Stopped, message)),
                None,
            );
        }
    }

    /// Approves a bid (desired Running).
    pub fn approve(&mut self, execution: &Execution) {
        self.upsert(
            execution,
            Some(State::new(
                ExecutionDesiredStateType::Running,
                "bid accepted",
            )),
            None,
        );
    }

    /// Gives up on an unfinished execution: compute Failed with `state`'s message, desired Stopped.
    pub fn fail(&mut self, execution: &Execution, state: State<ExecutionStateType>) {
        if self.compute(execution).is_terminal() {
            return;
        }
        let message = state.message.clone();
        self.upsert(
            execution,
            Some(State::new(ExecutionDesiredStateType::Stopped, message)),
            Some(state),
        );
    }

    /// Stops every live execution of every version.
    pub fn stop_all(&mut self, message: &str) {
        for execution in self.executions.clone() {
            self.stop(execution, message);
        }
    }

    // ----- job state -----

    /// Sets the job's state when it differs from the snapshot's and the move is legal.
    pub fn set_job_state(&mut self, state: JobStateType, message: impl Into<String>) {
        let current = self.job.state.state_type;
        let message = message.into();
        if (current == state && self.job.state.message == message)
            || !current.can_transition_to(state)
        {
            return;
        }
        self.plan.job_state = Some(State::new(state, message));
    }

    /// Fails the job and stops its executions.
    pub fn fail_job(&mut self, message: impl Into<String>) {
        let message = message.into();
        self.plan.new_executions.clear();
        self.plan.new_evaluations.clear();
        self.planned = PlannedLoad::default();
        self.stop_all(&message);
        self.set_job_state(JobStateType::Failed, message);
    }

    /// The job state the plan leaves.
    pub fn job_state(&self) -> JobStateType {
        self.plan
            .job_state
            .as_ref()
            .map(|s| s.state_type)
            .unwrap_or(self.job.state.state_type)
    }

    // ----- shared steps -----

    /// Fails every unfinished execution whose node is unknown or no longer connected.
    pub fn fail_executions_on_lost_nodes(&mut self) {
        let connected: BTreeSet<&str> = self
            .snapshot
            .nodes
            .iter()
            .filter(|n| n.connection_state.status == CONNECTION_CONNECTED)
            .map(|n| n.info.node_id.as_str())
            .collect();
        for execution in self.executions.clone() {
            if !connected.contains(execution.node_id.as_str()) {
                let mut state = State::new(
                    ExecutionStateType::Failed,
                    format!("node {} lost", execution.node_id),
                );
                state
                    .details
                    .insert(DETAIL_NODE_LOST.to_string(), "true".to_string());
                self.fail(execution, state);
            }
        }
    }

    /// Applies TotalTimeout (fails the job; returns true) and ExecutionTimeout (fails the overdue executions).
    /// Only finite job types (batch, ops) time out.
    pub fn apply_timeouts(&mut self) -> bool {
        if !self.job.is_finite() {
            return false;
        }
        let Some(task) = self.job.task() else {
            return false;
        };
        let timeouts = task.timeouts;
        if timeouts.total_timeout > 0
            && self.now.saturating_sub(self.job.create_time)
                >= timeouts.total_timeout.saturating_mul(NANOS_PER_SECOND)
        {
            self.fail_job(format!("job timed out after {}s", timeouts.total_timeout));
            return true;
        }
        let limit = timeouts.effective_execution_timeout();
        if limit > 0 {
            let limit = limit.saturating_mul(NANOS_PER_SECOND);
            for execution in self.current() {
                if self.is_live(execution)
                    && self.now.saturating_sub(execution.create_time) >= limit
                {
                    self.fail(
                        execution,
                        State::new(ExecutionStateType::Failed, "execution timed out"),
                    );
                }
            }
        }
        false
    }

    /// Stops live executions of older job versions.
    pub fn stop_old_versions(&mut self) {
        let version = self.job.version;
        for execution in self.executions.clone() {
            if execution.job_version != version {
                self.stop(
                    execution,
                    &format!(
                        "job version {} replaced by version {version}",
                        execution.job_version
                    ),
                );
            }
        }
    }

    /// Whether the job's QueueTimeout is set and has not yet passed.
    pub fn may_queue(&self) -> bool {
        let queue_timeout = self
            .job
            .task()
            .map(|t| t.timeouts.queue_timeout)
            .unwrap_or(0);
        queue_timeout > 0
            && self.now.saturating_sub(self.job.create_time)
                < queue_timeout.saturating_mul(NANOS_PER_SECOND)
    }

    // ----- creation -----

    /// Selects nodes for one more execution, with this plan's placements counted.
    pub fn select(&mut self, requirements: &JobRequirements) -> Selection {
        select_nodes(
            requirements,
            &self.snapshot.nodes,
            &self.planned,
            &mut self.rng,
        )
    }

    /// A UUID v4 drawn from the seeded source (not the OS), so plans are reproducible.
    pub fn next_uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// Adds a new execution of `partition` on `node_id` to the plan and counts its resources on the node.
    pub fn create_execution(
        &mut self,
        node_id: &str,
        partition: i64,
        requirements: &JobRequirements,
        desired: ExecutionDesiredStateType,
    ) {
        let job = self.job;
        let mut tasks = BTreeMap::new();
        tasks.insert(
            requirements.task_name.clone(),
            requirements.resources.clone(),
        );
        let execution = Execution {
            id: format!("{EXECUTION_ID_PREFIX}{}", self.next_uuid()),
            namespace: job.namespace.clone(),
            eval_id: self.eval.id.clone(),
            name: job.name.clone(),
            node_id: node_id.to_string(),
            job_id: job.id.clone(),
            job: Some(job.clone()),
            job_version: job.version,
            allocated_resources: AllocatedResources { tasks },
            desired_state: State::new(desired, ""),
            compute_state: State::new(ExecutionStateType::New, ""),
            partition_index: partition,
            create_time: self.now,
            modify_time: self.now,
            ..Execution::default()
        };
        self.planned.add(node_id, &requirements.resources);
        self.plan.new_executions.push(execution);
    }

    /// Adds a follow-up evaluation of this job that must not run before `wait_until`.
    pub fn follow_up(&mut self, triggered_by: &str, wait_until: i64, comment: String) {
        let job = self.job;
        let evaluation = Evaluation {
            id: format!("{EVALUATION_ID_PREFIX}{}", self.next_uuid()),
            namespace: job.namespace.clone(),
            job_id: job.id.clone(),
            triggered_by: triggered_by.to_string(),
            priority: job.priority,
            eval_type: job.job_type.clone(),
            status: EVAL_STATUS_PENDING.to_string(),
            comment,
            wait_until,
            create_time: self.now,
            modify_time: self.now,
        };
        self.plan.new_evaluations.push(evaluation);
    }

    /// Adds node refusals to the plan, once per node.
    pub fn record_rejections(&mut self, rejections: &[NodeRejection]) {
        for rejection in rejections {
            if !self
                .plan
                .rejected_nodes
                .iter()
                .any(|r| r.node_id == rejection.node_id)
            {
                self.plan.rejected_nodes.push(rejection.clone());
            }
        }
    }

    /// The time the queue back-off ends.
    pub fn queue_wait_until(&self) -> i64 {
        let backoff = i64::try_from(self.config.queue_backoff.as_nanos()).unwrap_or(i64::MAX);
        self.now.saturating_add(backoff)
    }
}

/// `not enough nodes to run job. requested: N, available: M, suitable: K.` followed by each refused node.
pub fn not_enough_nodes(
    requested: usize,
    available: usize,
    suitable: usize,
    rejections: &[NodeRejection],
) -> String {
    let mut message = format!(
        "not enough nodes to run job. requested: {requested}, available: {available}, suitable: {suitable}."
    );
    for rejection in rejections {
        message.push_str(&format!(
            "\n\t• Node {}: {}",
            rejection.node_id, rejection.reason
        ));
    }
    message
}

/// 64-bit FNV-1a: a hash that is stable across builds and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
