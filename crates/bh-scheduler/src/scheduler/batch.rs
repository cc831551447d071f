//! The batch and service scheduler: `Count` partitions, each run by one approved execution at a time.
//!
//! Steps per evaluation: fail executions on lost nodes; apply timeouts; stop old job versions; per partition
//! approve the oldest accepted bid and reject the rest; place partitions that have no live execution on the
//! best feasible node not already busy with this job and not already failed for that partition; then queue,
//! fail ("not enough nodes", "exhausted retries") or move the job to Running / Completed. Batch partitions are
//! done once one execution completed; service partitions never are (a finished execution is replaced).

use std::collections::{BTreeMap, BTreeSet};

use bh_models::execution::{TRIGGER_EXEC_LIMIT, TRIGGER_JOB_QUEUE};
use bh_models::job::JOB_TYPE_SERVICE;
use bh_models::{
    Evaluation, Execution, ExecutionDesiredStateType, ExecutionStateType, JobStateType,
};

use super::context::{not_enough_nodes, PlanContext};
use super::requirements::JobRequirements;
use super::SchedulerConfig;
use crate::plan::{NodeRejection, Plan, Scheduler, Snapshot};

/// Schedules `batch` and `service` jobs.
#[derive(Debug, Clone, Default)]
pub struct BatchServiceScheduler {
    config: SchedulerConfig,
}

impl BatchServiceScheduler {
    /// A scheduler with `config`.
    pub fn new(config: SchedulerConfig) -> Self {
        Self { config }
    }
}

impl Scheduler for BatchServiceScheduler {
    fn process(&self, snapshot: &Snapshot, eval: &Evaluation, now: i64) -> Plan {
        let mut ctx = PlanContext::new(&self.config, snapshot, eval, now);
        if ctx.begin() {
            plan_partitions(&mut ctx);
        }
        ctx.finish()
    }
}

fn plan_partitions(ctx: &mut PlanContext<'_>) {
    let job = ctx.job;
    let requirements = match JobRequirements::from_job(job) {
        Ok(requirements) => requirements,
        Err(err) => return ctx.fail_job(err.to_string()),
    };
    ctx.fail_executions_on_lost_nodes();
    if ctx.apply_timeouts() {
        return;
    }
    ctx.stop_old_versions();

    let is_service = job.job_type == JOB_TYPE_SERVICE;
    let count = job.count.max(1);
    let mut by_partition: BTreeMap<i64, Vec<&Execution>> = BTreeMap::new();
    for execution in ctx.current() {
        if (0..count).contains(&execution.partition_index) {
            by_partition
                .entry(execution.partition_index)
                .or_default()
                .push(execution);
        } else {
            ctx.stop(execution, "partition no longer part of the job");
        }
    }

    // Bids and duplicates: at most one approved execution per partition, the oldest.
    let mut completed_partitions = 0;
    for partition in 0..count {
        let executions = by_partition.get(&partition).cloned().unwrap_or_default();
        let completed = !is_service
            && executions
                .iter()
                .any(|e| ctx.compute(e) == ExecutionStateType::Completed);
        if completed {
            completed_partitions += 1;
            for execution in &executions {
                ctx.stop(
                    execution,
                    &format!("partition {partition} already completed"),
                );
            }
            continue;
        }
        let keep = executions
            .iter()
            .find(|e| ctx.is_approved(e))
            .or_else(|| {
                executions.iter().find(|e| {
                    ctx.is_live(e)
                        && ctx.desired(e) == ExecutionDesiredStateType::Pending
                        && ctx.compute(e) == ExecutionStateType::AskForBidAccepted
                })
            })
            .copied();
        let Some(keep) = keep else {
            continue;
        };
        if ctx.desired(keep) != ExecutionDesiredStateType::Running {
            ctx.approve(keep);
        }
        for execution in &executions {
            if execution.id != keep.id {
                ctx.stop(
                    execution,
                    &format!("bid rejected: partition {partition} runs on another node"),
                );
            }
        }
    }

    if !is_service && completed_partitions == count {
        ctx.stop_all("job completed");
        ctx.set_job_state(JobStateType::Completed, "");
        return;
    }

    place_partitions(ctx, &requirements, &by_partition, count, is_service);
    if ctx.job_state().is_terminal() {
        return;
    }

    let running = ctx.current().iter().any(|e| ctx.is_approved(e))
        || ctx
            .plan
            .new_executions
            .iter()
            .any(|e| e.desired_state.state_type == ExecutionDesiredStateType::Running);
    if running
        && matches!(
            ctx.job_state(),
            JobStateType::Pending | JobStateType::Queued
        )
    {
        ctx.set_job_state(JobStateType::Running, "");
    }
}

/// Places every partition that has neither a live execution nor (batch) a completed one.
fn place_partitions(
    ctx: &mut PlanContext<'_>,
    requirements: &JobRequirements,
    by_partition: &BTreeMap<i64, Vec<&Execution>>,
    count: i64,
    is_service: bool,
) {
    let empty = Vec::new();
    let needing: Vec<i64> = (0..count)
        .filter(|p| {
            let executions = by_partition.get(p).unwrap_or(&empty);
            !executions.iter().any(|e| {
                ctx.is_live(e) || (!is_service && ctx.compute(e) == ExecutionStateType::Completed)
            })
        })
        .collect();
    if needing.is_empty() {
        return;
    }

    // One execution of the job per node: nodes already busy with it are not candidates.
    let mut busy: BTreeSet<String> = ctx
        .current()
        .iter()
        .filter(|e| ctx.is_live(e))
        .map(|e| e.node_id.clone())
        .collect();
    // A limit of 0 would never place anything and loop on exec-limit evaluations.
    let limit = ctx.config.max_new_executions_per_eval.max(1);
    let mut placed = 0usize;
    let mut unplaced: Vec<i64> = Vec::new();
    // Unplaced partitions that every feasible node has already failed or refused: retrying cannot help. With no
    // feasible node at all (say the only node was lost) the job is short of nodes instead, so it may queue.
    let mut exhausted: Vec<i64> = Vec::new();
    let mut deferred = 0usize;
    let mut available = 0usize;
    let mut rejections: Vec<NodeRejection> = Vec::new();

    for &partition in &needing {
        if placed >= limit {
            deferred += 1;
            continue;
        }
        // A node that failed or refused this partition is not asked again.
        let tried: BTreeMap<&str, String> = by_partition
            .get(&partition)
            .unwrap_or(&empty)
            .iter()
            .filter(|e| {
                matches!(
                    ctx.compute(e),
                    ExecutionStateType::Failed | ExecutionStateType::AskForBidRejected
                )
            })
            .map(|e| (e.node_id.as_str(), ctx.compute_message(e)))
            .collect();
        let selection = ctx.select(requirements);
        ctx.record_rejections(&selection.rejected);
        available = selection.available;
        let chosen = selection
            .ranked
            .iter()
            .find(|n| !busy.contains(&n.node_id) && !tried.contains_key(n.node_id.as_str()))
            .map(|n| n.node_id.clone());
        match chosen {
            Some(node_id) => {
                ctx.create_execution(
                    &node_id,
                    partition,
                    requirements,
                    ExecutionDesiredStateType::Pending,
                );
                busy.insert(node_id);
                placed += 1;
            }
            None => {
                if unplaced.is_empty() {
                    rejections = selection.rejected.clone();
                    for ranked in &selection.ranked {
                        let reason = match tried.get(ranked.node_id.as_str()) {
                            Some(message) if !busy.contains(&ranked.node_id) => format!(
                                "already tried partition {partition} of this job: {}",
                                if message.is_empty() {
                                    "failed"
                                } else {
                                    message
                                }
                            ),
                            _ => "already runs an execution of this job".to_string(),
                        };
                        rejections.push(NodeRejection {
                            node_id: ranked.node_id.clone(),
                            reason,
                        });
                    }
                    rejections.sort_by(|a, b| a.node_id.cmp(&b.node_id));
                }
                if !selection.ranked.is_empty()
                    && selection
                        .ranked
                        .iter()
                        .all(|n| tried.contains_key(n.node_id.as_str()))
                {
                    exhausted.push(partition);
                }
                unplaced.push(partition);
            }
        }
    }
    ctx.record_rejections(&rejections);

    if !unplaced.is_empty() {
        if let Some(last_error) = last_failure(ctx, by_partition, &exhausted) {
            return ctx.fail_job(format!("exhausted retries: {last_error}"));
        }
        let requested = needing.len() - deferred;
        let message = not_enough_nodes(requested, available, placed, &rejections);
        for partition in &unplaced {
            ctx.plan.unplaced.insert(*partition, message.clone());
        }
        if !ctx.may_queue() {
            return ctx.fail_job(message);
        }
        let wait_until = ctx.queue_wait_until();
        ctx.follow_up(TRIGGER_JOB_QUEUE, wait_until, message.clone());
        let anything_live = placed > 0 || ctx.current().iter().any(|e| ctx.is_live(e));
        if !anything_live {
            ctx.set_job_state(
                JobStateType::Queued,
                format!("waiting for nodes: {message}"),
            );
        }
    }
    if deferred > 0 {
        let now = ctx.now;
        ctx.follow_up(
            TRIGGER_EXEC_LIMIT,
            now,
            format!(
                "{deferred} partitions left to place after the per-evaluation limit of {limit}"
            ),
        );
    }
}

/// The most recent failure among `partitions`, if any of them failed before.
fn last_failure(
    ctx: &PlanContext<'_>,
    by_partition: &BTreeMap<i64, Vec<&Execution>>,
    partitions: &[i64],
) -> Option<String> {
    partitions
        .iter()
        .filter_map(|p| by_partition.get(p))
        .flatten()
        .filter(|e| ctx.compute(e) == ExecutionStateType::Failed)
        .max_by(|a, b| a.modify_time.cmp(&b.modify_time).then(a.id.cmp(&b.id)))
        .map(|e| {
            let message = ctx.compute_message(e);
            let message = if message.is_empty() {
                e.run_output
                    .as_ref()
                    .map(|o| o.error_msg.clone())
                    .unwrap_or_default()
            } else {
                message
            };
            if message.is_empty() {
                format!("execution on node {} failed", e.node_id)
            } else {
                message
            }
        })
}
