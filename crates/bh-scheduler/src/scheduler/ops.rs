//! The ops and daemon scheduler: one pre-approved execution (desired Running, no bid round) on every feasible
//! node that has none.
//!
//! Ops jobs complete once every execution finished and none failed, fail as soon as one execution fails, and
//! fail at once when no node can take them (unless QueueTimeout lets them wait). Daemon jobs never complete:
//! they wait for matching nodes and pick up nodes that join later.

use std::collections::BTreeSet;

use bh_models::execution::{TRIGGER_EXEC_LIMIT, TRIGGER_JOB_QUEUE};
use bh_models::job::JOB_TYPE_DAEMON;
use bh_models::{
    Evaluation, Execution, ExecutionDesiredStateType, ExecutionStateType, JobStateType,
};

use super::context::{not_enough_nodes, PlanContext, DETAIL_NODE_LOST};
use super::requirements::JobRequirements;
use super::SchedulerConfig;
use crate::plan::{Plan, Scheduler, Snapshot};

/// Schedules `ops` and `daemon` jobs.
#[derive(Debug, Clone, Default)]
pub struct OpsDaemonScheduler {
    config: SchedulerConfig,
}

impl OpsDaemonScheduler {
    /// A scheduler with `config`.
    pub fn new(config: SchedulerConfig) -> Self {
        Self { config }
    }
}

impl Scheduler for OpsDaemonScheduler {
    fn process(&self, snapshot: &Snapshot, eval: &Evaluation, now: i64) -> Plan {
        let mut ctx = PlanContext::new(&self.config, snapshot, eval, now);
        if ctx.begin() {
            plan_fan_out(&mut ctx);
        }
        ctx.finish()
    }
}

fn plan_fan_out(ctx: &mut PlanContext<'_>) {
    let job = ctx.job;
    let is_daemon = job.job_type == JOB_TYPE_DAEMON;
    let requirements = match JobRequirements::from_job(job) {
        Ok(requirements) => requirements,
        Err(err) => return ctx.fail_job(err.to_string()),
    };
    ctx.fail_executions_on_lost_nodes();
    if ctx.apply_timeouts() {
        return;
    }
    ctx.stop_old_versions();

    let current = ctx.current();
    // Fan-out executions are created approved; approve any that still wait, as a bid round would.
    for execution in &current {
        if ctx.is_live(execution)
            && ctx.desired(execution) == ExecutionDesiredStateType::Pending
            && ctx.compute(execution) == ExecutionStateType::AskForBidAccepted
        {
            ctx.approve(execution);
        }
    }
    if !is_daemon {
        if let Some(failed) = current
            .iter()
            .find(|e| ctx.compute(e) == ExecutionStateType::Failed)
        {
            let message = ctx.compute_message(failed);
            return ctx.fail_job(format!(
                "execution on node {} failed: {}",
                failed.node_id,
                if message.is_empty() {
                    "unknown error"
                } else {
                    &message
                }
            ));
        }
    }

    let covered: BTreeSet<&str> = current
        .iter()
        .filter(|e| !is_daemon || !may_restart_daemon(ctx, e))
        .map(|e| e.node_id.as_str())
        .collect();
    let selection = ctx.select(&requirements);
    ctx.record_rejections(&selection.rejected);
    // A limit of 0 would never place anything and loop on exec-limit evaluations.
    let limit = ctx.config.max_new_executions_per_eval.max(1);
    let mut placed = 0usize;
    let mut deferred = 0usize;
    for ranked in &selection.ranked {
        if covered.contains(ranked.node_id.as_str()) {
            continue;
        }
        if placed >= limit {
            deferred += 1;
            continue;
        }
        ctx.create_execution(
            &ranked.node_id,
            0,
            &requirements,
            ExecutionDesiredStateType::Running,
        );
        placed += 1;
    }
    if deferred > 0 {
        let now = ctx.now;
        ctx.follow_up(
            TRIGGER_EXEC_LIMIT,
            now,
            format!("{deferred} nodes left to place after the per-evaluation limit of {limit}"),
        );
    }

    let has_executions = !current.is_empty();
    if placed == 0 && !has_executions {
        let message = not_enough_nodes(1, selection.available, 0, &selection.rejected);
        if is_daemon {
            // A daemon waits for matching nodes; a node-join evaluation places it.
            ctx.set_job_state(
                JobStateType::Queued,
                format!("waiting for nodes: {message}"),
            );
            return;
        }
        if !ctx.may_queue() {
            return ctx.fail_job(message);
        }
        let wait_until = ctx.queue_wait_until();
        ctx.follow_up(TRIGGER_JOB_QUEUE, wait_until, message.clone());
        ctx.set_job_state(
            JobStateType::Queued,
            format!("waiting for nodes: {message}"),
        );
        return;
    }

    if !is_daemon && placed == 0 && current.iter().all(|e| ctx.compute(e).is_terminal()) {
        if current
            .iter()
            .any(|e| ctx.compute(e) == ExecutionStateType::Completed)
        {
            ctx.set_job_state(JobStateType::Completed, "");
        } else {
            ctx.fail_job("no node accepted the job");
        }
        return;
    }

    let running = placed > 0 || current.iter().any(|e| ctx.is_approved(e));
    if running
        && matches!(
            ctx.job_state(),
            JobStateType::Pending | JobStateType::Queued
        )
    {
        ctx.set_job_state(JobStateType::Running, "");
    }
}

/// Whether a daemon may be started again on the node of `execution`: only when that execution ended because
/// its node was lost (a workload that failed or exited on its own is not restarted in a loop).
fn may_restart_daemon(ctx: &PlanContext<'_>, execution: &Execution) -> bool {
    if ctx.is_live(execution) || ctx.compute(execution) != ExecutionStateType::Failed {
        return false;
    }
    ctx.compute_state(execution)
        .details
        .contains_key(DETAIL_NODE_LOST)
}
