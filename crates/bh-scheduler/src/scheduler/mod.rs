//! The pure schedulers: a function of (snapshot, evaluation, now) to a [`Plan`](crate::plan::Plan).
//!
//! No I/O and no wall clock; randomness (tie-breaks, new IDs) comes from a `StdRng` seeded with
//! [`SchedulerConfig::seed`] mixed with the evaluation ID, the time and the job revision, so the same inputs
//! always give the same plan. New execution and evaluation IDs are therefore UUID v4-formatted values drawn
//! from that seeded source (`e-<uuid>`, `v-<uuid>`), not from the OS.
//!
//! [`JobScheduler`] dispatches on the job type: batch and service to [`BatchServiceScheduler`], ops and daemon
//! to [`OpsDaemonScheduler`].

mod batch;
mod context;
mod ops;
pub mod requirements;
pub mod selection;

use std::time::Duration;

use bh_models::job::{JOB_TYPE_BATCH, JOB_TYPE_DAEMON, JOB_TYPE_OPS, JOB_TYPE_SERVICE};
use bh_models::{Evaluation, JobStateType};

pub use batch::BatchServiceScheduler;
pub use context::DETAIL_NODE_LOST;
pub use ops::OpsDaemonScheduler;
pub use requirements::{JobRequirements, RequirementsError};
pub use selection::{select_nodes, PlannedLoad, RankedNode, Selection};

use crate::plan::{Plan, Scheduler, Snapshot};

/// Tunables shared by all schedulers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// How long a job that cannot be placed yet waits before the next try (the `job-queue` evaluation's
    /// WaitUntil is now plus this). Bacalhau's QueueBackoff, 1 minute.
    pub queue_backoff: Duration,
    /// At most this many executions are created per evaluation; the rest get an `exec-limit` evaluation.
    pub max_new_executions_per_eval: usize,
    /// Seed of the tie-break and ID randomness.
    pub seed: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            queue_backoff: Duration::from_secs(60),
            max_new_executions_per_eval: 20,
            seed: 0,
        }
    }
}

/// The scheduler the orchestrator runs: picks batch/service or ops/daemon scheduling by `job.job_type`.
#[derive(Debug, Clone, Default)]
pub struct JobScheduler {
    batch: BatchServiceScheduler,
    fan_out: OpsDaemonScheduler,
}

impl JobScheduler {
    /// A scheduler for every job type with `config`.
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            batch: BatchServiceScheduler::new(config.clone()),
            fan_out: OpsDaemonScheduler::new(config),
        }
    }
}

impl Scheduler for JobScheduler {
    fn process(&self, snapshot: &Snapshot, eval: &Evaluation, now: i64) -> Plan {
        let job = &snapshot.job;
        match job.job_type.to_ascii_lowercase().as_str() {
            JOB_TYPE_BATCH | JOB_TYPE_SERVICE | "" => self.batch.process(snapshot, eval, now),
            JOB_TYPE_OPS | JOB_TYPE_DAEMON => self.fan_out.process(snapshot, eval, now),
            other => {
                let mut plan = Plan::for_eval(eval, job);
                if job.id == eval.job_id && !job.state.state_type.is_terminal() {
                    plan.job_state = Some(bh_models::State::new(
                        JobStateType::Failed,
                        format!("unknown job type {other:?}"),
                    ));
                }
                plan
            }
        }
    }
}
