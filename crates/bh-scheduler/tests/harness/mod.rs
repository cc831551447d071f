//! A tiny builder DSL for scheduler snapshots, and a plan summary that table rows compare against.

#![allow(dead_code)]

use std::collections::BTreeMap;

use bh_models::job::{JOB_TYPE_BATCH, JOB_TYPE_DAEMON, JOB_TYPE_OPS, JOB_TYPE_SERVICE};
use bh_models::node::{
    CONNECTION_CONNECTED, CONNECTION_DISCONNECTED, MEMBERSHIP_APPROVED, MEMBERSHIP_PENDING,
    NODE_TYPE_COMPUTE,
};
use bh_models::{
    ComputeNodeInfo, ConnectionState, Constraint, Evaluation, Execution,
    ExecutionDesiredStateType as Desired, ExecutionStateType as Compute, Job, JobStateType,
    NodeInfo, NodeState, Resources, ResourcesConfig, SpecConfig, State, Task, TimeoutConfig,
};
use bh_scheduler::{Plan, Snapshot};

/// The time jobs are created at in fixtures (Unix nanoseconds).
pub const T0: i64 = 1_700_000_000_000_000_000;
/// One second in nanoseconds.
pub const SEC: i64 = 1_000_000_000;
pub const GB: u64 = 1_000_000_000;

// ----- nodes -----

/// A connected, approved compute node with docker and wasm, 4 CPUs, 8GB memory, 100GB disk, all free.
pub fn node(id: &str) -> NodeState {
    let capacity = Resources {
        cpu: 4.0,
        memory: 8 * GB,
        disk: 100 * GB,
        gpu: 0,
        gpus: Vec::new(),
    };
    NodeState {
        info: NodeInfo {
            node_id: id.to_string(),
            node_type: NODE_TYPE_COMPUTE.to_string(),
            compute_node_info: ComputeNodeInfo {
                execution_engines: vec!["docker".to_string(), "wasm".to_string()],
                max_capacity: capacity.clone(),
                available_capacity: capacity,
                ..ComputeNodeInfo::default()
            },
            ..NodeInfo::default()
        },
        membership: MEMBERSHIP_APPROVED.to_string(),
        connection_state: ConnectionState {
            status: CONNECTION_CONNECTED.to_string(),
            ..ConnectionState::default()
        },
    }
}

/// Builder-style changes to a node.
pub trait NodeExt: Sized {
    fn label(self, key: &str, value: &str) -> Self;
    fn engines(self, engines: &[&str]) -> Self;
    /// Free capacity: CPU cores, memory bytes.
    fn available(self, cpu: f64, memory: u64) -> Self;
    fn gpus(self, count: u64) -> Self;
    fn queue(self, enqueued: i64, running: i64) -> Self;
    fn disconnected(self) -> Self;
    fn pending_approval(self) -> Self;
}

impl NodeExt for NodeState {
    fn label(mut self, key: &str, value: &str) -> Self {
        self.info.labels.insert(key.to_string(), value.to_string());
        self
    }
    fn engines(mut self, engines: &[&str]) -> Self {
        self.info.compute_node_info.execution_engines =
            engines.iter().map(|e| e.to_string()).collect();
        self
    }
    fn available(mut self, cpu: f64, memory: u64) -> Self {
        let available = &mut self.info.compute_node_info.available_capacity;
        available.cpu = cpu;
        available.memory = memory;
        self
    }
    fn gpus(mut self, count: u64) -> Self {
        self.info.compute_node_info.max_capacity.gpu = count;
        self.info.compute_node_info.available_capacity.gpu = count;
        self
    }
    fn queue(mut self, enqueued: i64, running: i64) -> Self {
        self.info.compute_node_info.enqueued_executions = enqueued;
        self.info.compute_node_info.running_executions = running;
        self
    }
    fn disconnected(mut self) -> Self {
        self.connection_state.status = CONNECTION_DISCONNECTED.to_string();
        self
    }
    fn pending_approval(mut self) -> Self {
        self.membership = MEMBERSHIP_PENDING.to_string();
        self
    }
}

// ----- jobs -----

/// A Pending job `j-1` of `job_type`, version 1, count 1, created at T0, one docker task asking 1 CPU and 1GB.
pub fn job(job_type: &str) -> Job {
    Job {
        id: "j-1".to_string(),
        name: "job-one".to_string(),
        namespace: "default".to_string(),
        job_type: job_type.to_string(),
        priority: 0,
        count: 1,
        tasks: vec![Task {
            name: "main".to_string(),
            engine: SpecConfig::new("docker").with_param("Image", "ubuntu"),
            resources: ResourcesConfig {
                cpu: "1".to_string(),
                memory: "1GB".to_string(),
                ..ResourcesConfig::default()
            },
            ..Task::default()
        }],
        state: State::new(JobStateType::Pending, ""),
        version: 1,
        revision: 1,
        create_time: T0,
        modify_time: T0,
        ..Job::default()
    }
}

pub fn batch() -> Job {
    job(JOB_TYPE_BATCH)
}
pub fn service() -> Job {
    job(JOB_TYPE_SERVICE)
}
pub fn ops() -> Job {
    job(JOB_TYPE_OPS)
}
pub fn daemon() -> Job {
    job(JOB_TYPE_DAEMON)
}

/// Builder-style changes to a job.
pub trait JobExt: Sized {
    fn count(self, count: i64) -> Self;
    fn state(self, state: JobStateType) -> Self;
    fn version(self, version: u64) -> Self;
    fn constraint(self, key: &str, operator: &str, values: &[&str]) -> Self;
    fn memory(self, memory: &str) -> Self;
    fn gpu(self, gpu: &str) -> Self;
    fn timeouts(self, execution: i64, queue: i64, total: i64) -> Self;
}

impl JobExt for Job {
    fn count(mut self, count: i64) -> Self {
        self.count = count;
        self
    }
    fn state(mut self, state: JobStateType) -> Self {
        self.state = State::new(state, "");
        self
    }
    fn version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }
    fn constraint(mut self, key: &str, operator: &str, values: &[&str]) -> Self {
        self.constraints.push(Constraint {
            key: key.to_string(),
            operator: operator.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        });
        self
    }
    fn memory(mut self, memory: &str) -> Self {
        self.tasks[0].resources.memory = memory.to_string();
        self
    }
    fn gpu(mut self, gpu: &str) -> Self {
        self.tasks[0].resources.gpu = gpu.to_string();
        self
    }
    fn timeouts(mut self, execution: i64, queue: i64, total: i64) -> Self {
        self.tasks[0].timeouts = TimeoutConfig {
            execution_timeout: execution,
            queue_timeout: queue,
            total_timeout: total,
        };
        self
    }
}

// ----- executions -----

/// An execution `id` of `j-1` version 1 on `node_id`, partition `partition`, in the given states, created at
/// `T0 + created_s` seconds.
pub fn exec(
    id: &str,
    node_id: &str,
    partition: i64,
    compute: Compute,
    desired: Desired,
    created_s: i64,
) -> Execution {
    Execution {
        id: id.to_string(),
        namespace: "default".to_string(),
        node_id: node_id.to_string(),
        job_id: "j-1".to_string(),
        job_version: 1,
        partition_index: partition,
        compute_state: State::new(compute, ""),
        desired_state: State::new(desired, ""),
        revision: 3,
        create_time: T0 + created_s * SEC,
        modify_time: T0 + created_s * SEC,
        ..Execution::default()
    }
}

/// Builder-style changes to an execution.
pub trait ExecExt: Sized {
    fn message(self, message: &str) -> Self;
    fn version(self, version: u64) -> Self;
}

impl ExecExt for Execution {
    fn message(mut self, message: &str) -> Self {
        self.compute_state.message = message.to_string();
        self
    }
    fn version(mut self, version: u64) -> Self {
        self.job_version = version;
        self
    }
}

/// A pending evaluation of `j-1` with `trigger`.
pub fn eval(trigger: &str) -> Evaluation {
    Evaluation {
        id: format!("v-{trigger}"),
        namespace: "default".to_string(),
        job_id: "j-1".to_string(),
        triggered_by: trigger.to_string(),
        status: "pending".to_string(),
        ..Evaluation::default()
    }
}

pub fn snapshot(job: Job, nodes: Vec<NodeState>, executions: Vec<Execution>) -> Snapshot {
    let mut snapshot = Snapshot {
        job,
        executions,
        nodes,
    };
    let job_type = snapshot.job.job_type.clone();
    for execution in &mut snapshot.executions {
        if execution.job.is_none() {
            let mut job = snapshot.job.clone();
            job.job_type = job_type.clone();
            execution.job = Some(job);
        }
    }
    snapshot
}

// ----- plan summary -----

/// What a plan does, in terms a table row can state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// New job state and its message, when the plan changes it.
    pub job_state: Option<(JobStateType, String)>,
    /// Execution IDs moved to desired Running.
    pub approved: Vec<String>,
    /// Execution IDs moved to desired Stopped without being failed.
    pub stopped: Vec<String>,
    /// Execution IDs failed by the scheduler, with the message.
    pub failed: Vec<(String, String)>,
    /// New executions as (node, partition, desired), sorted.
    pub new: Vec<(String, i64, Desired)>,
    /// New evaluations as (trigger, wait until).
    pub evaluations: Vec<(String, i64)>,
    /// Refused nodes and why.
    pub rejected: BTreeMap<String, String>,
}

impl Summary {
    pub fn of(plan: &Plan) -> Self {
        let mut summary = Summary {
            job_state: plan
                .job_state
                .as_ref()
                .map(|s| (s.state_type, s.message.clone())),
            ..Summary::default()
        };
        for update in &plan.execution_updates {
            if let Some(compute) = &update.compute_state {
                if compute.state_type == Compute::Failed {
                    summary
                        .failed
                        .push((update.execution_id.clone(), compute.message.clone()));
                    continue;
                }
            }
            match update.desired_state.as_ref().map(|s| s.state_type) {
                Some(Desired::Running) => summary.approved.push(update.execution_id.clone()),
                Some(Desired::Stopped) => summary.stopped.push(update.execution_id.clone()),
                _ => {}
            }
        }
        summary.approved.sort();
        summary.stopped.sort();
        summary.failed.sort();
        summary.new = plan
            .new_executions
            .iter()
            .map(|e| {
                (
                    e.node_id.clone(),
                    e.partition_index,
                    e.desired_state.state_type,
                )
            })
            .collect();
        summary
            .new
            .sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        summary.evaluations = plan
            .new_evaluations
            .iter()
            .map(|e| (e.triggered_by.clone(), e.wait_until))
            .collect();
        summary.rejected = plan
            .rejected_nodes
            .iter()
            .map(|r| (r.node_id.clone(), r.reason.clone()))
            .collect();
        summary
    }
}
