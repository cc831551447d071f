//! Housekeeping: node liveness, and timeout evaluations for batch and ops jobs (the scheduler fails them).

use std::collections::BTreeSet;

use bh_jobstore::Txn;
use bh_models::execution::{TRIGGER_EXEC_TIMEOUT, TRIGGER_JOB_TIMEOUT};
use bh_models::{Job, Result};

use super::Orchestrator;

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Orchestrator {
    /// One housekeeping pass at the clock's current time: disconnects nodes that missed their
    /// heartbeats (raising `node-leave`), raises `job-timeout` / `exec-timeout` evaluations for batch
    /// and ops jobs past their TotalTimeout / ExecutionTimeout (plus the configured grace), and releases
    /// delayed evaluations that are due. The background timer calls this every `housekeeping_interval`.
    pub async fn housekeeping_tick(&self) -> Result<()> {
        self.check_liveness().await?;
        self.check_timeouts().await?;
        self.tick();
        Ok(())
    }

    async fn check_timeouts(&self) -> Result<()> {
        let now = self.now();
        let grace = i64::try_from(self.config.timeout_grace.as_nanos()).unwrap_or(i64::MAX);
        let keep = |job: &Job| job.is_finite() && !job.state.state_type.is_terminal();
        let jobs = self.all_jobs(&keep).await?;
        let mut job_timeouts = BTreeSet::new();
        let mut exec_timeouts = BTreeSet::new();
        for job in &jobs {
            let Some(task) = job.task() else { continue };
            let total = task.timeouts.total_timeout;
            if total > 0
                && now
                    > job
                        .create_time
                        .saturating_add(total.saturating_mul(NANOS_PER_SEC))
                        .saturating_add(grace)
            {
                job_timeouts.insert(job.id.clone());
                continue;
            }
            let exec_timeout = task.timeouts.effective_execution_timeout();
            if exec_timeout <= 0 {
                continue;
            }
            let limit = exec_timeout
                .saturating_mul(NANOS_PER_SEC)
                .saturating_add(grace);
            let executions = self.store.list_executions_by_job(&job.id, None).await?;
            let overdue = executions.iter().any(|e| {
                !e.is_terminal()
                    && e.compute_state.state_type.is_executing()
                    && now > e.create_time.saturating_add(limit)
            });
            if overdue {
                exec_timeouts.insert(job.id.clone());
            }
        }
        let mut txn = Txn::new(now);
        for (ids, trigger) in [
            (&job_timeouts, TRIGGER_JOB_TIMEOUT),
            (&exec_timeouts, TRIGGER_EXEC_TIMEOUT),
        ] {
            for job in jobs.iter().filter(|j| ids.contains(&j.id)) {
                if !self.broker.has_queued(&job.id, trigger) {
                    txn = txn.put_evaluation(self.new_evaluation(job, trigger, now));
                }
            }
        }
        if txn.is_empty() {
            return Ok(());
        }
        let stored = self.store.commit(txn).await?;
        self.enqueue_all(stored.evaluations);
        Ok(())
    }
}
