//! An evaluation worker's job: snapshot, scheduler, one compare-and-swap commit of the plan, then messages.

use bh_jobstore::Txn;
use bh_models::execution::EVAL_STATUS_PENDING;
use bh_models::ids::new_evaluation_id;
use bh_models::{ErrorCode, Evaluation, Result};

use super::broker::Lease;
use super::effects::plan_effects;
use super::Orchestrator;
use crate::plan::Snapshot;

/// How often an evaluation is re-planned after compare-and-swap conflicts before it is retried later.
const MAX_PLAN_ATTEMPTS: usize = 8;
/// How long an evaluation waits after a storage failure before it is tried again.
const RETRY_DELAY_NANOS: i64 = 1_000_000_000;

/// Whether a worker finished an evaluation or must retry it later.
enum Outcome {
    Done,
    RetryLater,
}

impl Orchestrator {
    /// Runs one leased evaluation to the end and releases its job in the broker.
    pub(super) async fn run_lease(&self, lease: Lease) {
        match self.process_lease(&lease).await {
            Ok(Outcome::Done) => self.broker.finish(&lease),
            Ok(Outcome::RetryLater) => {
                self.broker
                    .retry_later(lease, self.now().saturating_add(RETRY_DELAY_NANOS));
            }
            Err(err) => {
                tracing::warn!(eval = %lease.eval.id, job = %lease.eval.job_id, %err, "evaluation failed; retrying later");
                self.broker
                    .retry_later(lease, self.now().saturating_add(RETRY_DELAY_NANOS));
            }
        }
    }

    async fn process_lease(&self, lease: &Lease) -> Result<Outcome> {
        let eval = &lease.eval;
        for _ in 0..MAX_PLAN_ATTEMPTS {
            let now = self.now();
            let job = match self.store.get_job(&eval.job_id).await {
                Ok(job) => job,
                Err(err) if err.code == ErrorCode::NotFound => {
                    // The job is gone: nothing to plan, just forget the evaluations.
                    let mut txn = Txn::new(now);
                    txn.delete_evaluations = lease.eval_ids();
                    self.store.commit(txn).await?;
                    return Ok(Outcome::Done);
                }
                Err(err) => return Err(err),
            };
            let executions = self.store.list_executions_by_job(&job.id, None).await?;
            let nodes = self.store.list_nodes().await?;
            let snapshot = Snapshot {
                job,
                executions,
                nodes,
            };
            let plan = self.scheduler.process(&snapshot, eval, now);
            let fx = plan_effects(&snapshot.job, &snapshot.executions, &plan, now);

            let mut txn = Txn::new(now);
            let changes_anything = fx.job.is_some()
                || !fx.new_executions.is_empty()
                || !fx.updated_executions.is_empty()
                || !plan.new_evaluations.is_empty();
            if changes_anything {
                // Writing the job (even unchanged) makes the commit fail if anyone else changed it
                // since the snapshot, so two plans for one job can never both land.
                let mut job = fx.job.clone().unwrap_or_else(|| snapshot.job.clone());
                job.revision = snapshot.job.revision;
                txn = txn.update_job(job);
            }
            for exec in fx.new_executions.iter().cloned() {
                txn = txn.create_execution(exec);
            }
            for (mut exec, expected) in fx.updated_executions.iter().cloned() {
                exec.revision = expected;
                txn = txn.update_execution(exec);
            }
            for follow_up in &plan.new_evaluations {
                txn =
                    txn.put_evaluation(self.complete_evaluation(follow_up.clone(), &snapshot, now));
            }
            txn.delete_evaluations = lease.eval_ids();
            txn.history = fx.history.clone();

            match self.store.commit(txn).await {
                Ok(stored) => {
                    if !plan.rejected_nodes.is_empty() || !plan.unplaced.is_empty() {
                        tracing::debug!(job = %eval.job_id, rejected = ?plan.rejected_nodes, unplaced = ?plan.unplaced, "partitions not placed");
                    }
                    self.enqueue_all(stored.evaluations);
                    for (node_id, msg) in fx.messages {
                        self.send_to_node(&node_id, msg);
                    }
                    return Ok(Outcome::Done);
                }
                Err(err) if err.code == ErrorCode::Conflict => {
                    tracing::debug!(eval = %eval.id, %err, "plan conflicted; re-planning from a fresh snapshot");
                    continue;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(Outcome::RetryLater)
    }

    /// Fills the fields of a follow-up evaluation the scheduler may have left empty.
    fn complete_evaluation(
        &self,
        mut eval: Evaluation,
        snapshot: &Snapshot,
        now: i64,
    ) -> Evaluation {
        if eval.id.is_empty() {
            eval.id = new_evaluation_id();
        }
        if eval.job_id.is_empty() {
            eval.job_id = snapshot.job.id.clone();
        }
        if eval.namespace.is_empty() {
            eval.namespace = snapshot.job.namespace.clone();
        }
        if eval.eval_type.is_empty() {
            eval.eval_type = snapshot.job.job_type.clone();
        }
        if eval.status.is_empty() {
            eval.status = EVAL_STATUS_PENDING.to_string();
        }
        if eval.priority == 0 {
            eval.priority = snapshot.job.priority;
        }
        if eval.create_time == 0 {
            eval.create_time = now;
        }
        eval.modify_time = now;
        eval
    }

    /// A new pending evaluation of `job` triggered by `trigger`.
    pub(super) fn new_evaluation(
        &self,
        job: &bh_models::Job,
        trigger: &str,
        now: i64,
    ) -> Evaluation {
        Evaluation {
            id: new_evaluation_id(),
            namespace: job.namespace.clone(),
            job_id: job.id.clone(),
            triggered_by: trigger.to_string(),
            priority: job.priority,
            eval_type: job.job_type.clone(),
            status: EVAL_STATUS_PENDING.to_string(),
            comment: String::new(),
            wait_until: 0,
            create_time: now,
            modify_time: now,
        }
    }
}
