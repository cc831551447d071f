//! Job submission: parse, normalise, default, validate, then one durable commit of job + evaluation +
//! history, and only then an answer.

use bh_jobstore::Txn;
use bh_models::api::{ListOptions, PutJobRequest, PutJobResponse};
use bh_models::execution::{TRIGGER_JOB_REGISTER, TRIGGER_JOB_UPDATE};
use bh_models::ids::new_job_id;
use bh_models::job::DEFAULT_NAMESPACE;
use bh_models::validate;
use bh_models::{Error, Job, JobStateType, Result, State};

use super::effects::job_event;
use super::Orchestrator;

impl Orchestrator {
    /// Handles `PUT /orchestrator/jobs`.
    pub(super) async fn submit(
        &self,
        namespace_hint: &str,
        req: PutJobRequest,
    ) -> Result<PutJobResponse> {
        let mut job = bh_models::spec::job_from_value(req.job)?;
        let mut warnings = Vec::new();
        if job.namespace.trim().is_empty() {
            job.namespace = if namespace_hint.trim().is_empty() {
                DEFAULT_NAMESPACE.to_string()
            } else {
                namespace_hint.trim().to_string()
            };
        }
        self.prepare_job(&mut job, &mut warnings)?;

        let now = self.now();
        let existing = if job.name.is_empty() {
            None
        } else {
            self.find_job_by_name(&job.namespace, &job.name).await?
        };
        let Some(existing) = existing else {
            return self.register_new_job(job, warnings, now).await;
        };

        if same_spec(&existing, &job) && !req.force {
            return Err(Error::invalid(format!(
                "no changes detected for job {}: submit with Force to rerun it unchanged",
                existing.name
            )));
        }
        let mut updated = job;
        updated.id = existing.id.clone();
        updated.name = existing.name.clone();
        updated.version = existing.version + 1;
        updated.revision = existing.revision;
        updated.create_time = existing.create_time;
        updated.modify_time = now;
        updated.state = State::new(JobStateType::Pending, "");
        let eval = self.new_evaluation(&updated, TRIGGER_JOB_UPDATE, now);
        let history = job_event(
            &updated,
            existing.state.state_type,
            JobStateType::Pending,
            &format!("Job updated to version {}", updated.version),
            now,
        );
        let txn = Txn::new(now)
            .update_job(updated)
            .put_evaluation(eval.clone())
            .append_history(history);
        let stored = self.store.commit(txn).await?;
        self.enqueue_all(stored.evaluations);
        Ok(PutJobResponse {
            job_id: existing.id,
            evaluation_id: eval.id,
            warnings,
        })
    }

    async fn register_new_job(
        &self,
        mut job: Job,
        warnings: Vec<String>,
        now: i64,
    ) -> Result<PutJobResponse> {
        job.id = new_job_id();
        if job.name.is_empty() {
            job.name = job.id.clone();
        }
        job.version = 1;
        job.revision = 0;
        job.create_time = now;
        job.modify_time = now;
        job.state = State::new(JobStateType::Pending, "");
        let eval = self.new_evaluation(&job, TRIGGER_JOB_REGISTER, now);
        let history = job_event(
            &job,
            JobStateType::Undefined,
            JobStateType::Pending,
            "Job submitted",
            now,
        );
        let job_id = job.id.clone();
        let stored = self
            .store
            .submit_job(job, eval.clone(), history, now)
            .await?;
        self.enqueue_all(stored.evaluations);
        Ok(PutJobResponse {
            job_id,
            evaluation_id: eval.id,
            warnings,
        })
    }

    /// The job named exactly `name` in `namespace`, if any.
    async fn find_job_by_name(&self, namespace: &str, name: &str) -> Result<Option<Job>> {
        let opts = ListOptions {
            namespace: namespace.to_string(),
            limit: 1,
            ..ListOptions::default()
        };
        let filter = |job: &Job| job.name == name;
        let (jobs, _) = self.store.list_jobs(&opts, &filter).await?;
        Ok(jobs.into_iter().next())
    }

    /// Sanitises (with warnings), normalises, applies the configured defaults and validates a job.
    fn prepare_job(&self, job: &mut Job, warnings: &mut Vec<String>) -> Result<()> {
        warnings.extend(validate::sanitize_for_submit(job));
        validate::normalize(job);
        validate::apply_job_defaults(job, &self.config.job_defaults);
        validate::validate_for_submit(job)
    }
}

/// Whether two jobs have the same user-settable spec.
fn same_spec(a: &Job, b: &Job) -> bool {
    a.job_type == b.job_type
        && a.priority == b.priority
        && a.count == b.count
        && a.constraints == b.constraints
        && a.meta == b.meta
        && a.labels == b.labels
        && a.tasks == b.tasks
}
