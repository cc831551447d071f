//! Submitting a job and following it: dry runs, `--id-only`, waiting (long poll, no sleep loop),
//! printing the job's stdout verbatim on stdout, and reporting a failed job as one block on stderr.

use std::io::Write as _;
use std::time::Duration;

use bh_models::api::PutJobRequest;
use bh_models::{ErrorCode, Execution, ExecutionStateType, Job, JobStateType};

use crate::api::Api;
use crate::job_flags::{submission_value, RunFlags};

/// Checks a job built from flags as the client should (after normalising it), then submits it
/// or, with `--dry-run`, prints its spec as YAML.
pub async fn run_built_job(
    job: &Job,
    run: &RunFlags,
    api: impl FnOnce() -> anyhow::Result<Api>,
) -> anyhow::Result<()> {
    let job = prepare_job(job.clone())?;
    if run.dry_run {
        print!("{}", spec_yaml(&job)?);
        return Ok(());
    }
    submit_and_follow(&api()?, &job, false, run).await
}

/// Normalises a job built from flags and checks it as a client does before submitting.
pub fn prepare_job(mut job: Job) -> anyhow::Result<Job> {
    bh_models::normalize(&mut job);
    bh_models::validate(&job).map_err(|e| anyhow::anyhow!("invalid job spec: {}", e.message))?;
    Ok(job)
}

/// The job spec as YAML, ready to be saved and passed to `bh job run`.
pub fn spec_yaml(job: &Job) -> anyhow::Result<String> {
    Ok(yaml_serde::to_string(&submission_value(job))?)
}

/// Submits `job` and, unless told otherwise, waits for it and prints its output.
pub async fn submit_and_follow(
    api: &Api,
    job: &Job,
    force: bool,
    run: &RunFlags,
) -> anyhow::Result<()> {
    let response = api
        .put_job(&PutJobRequest {
            job: submission_value(job),
            force,
        })
        .await
        .map_err(|e| anyhow::anyhow!("failed to submit job: {}", e.message))?;
    if !run.hide_warnings {
        for warning in &response.warnings {
            eprintln!("Warning: {warning}");
        }
    }
    let id = response.job_id;
    if run.id_only {
        println!("{id}");
    } else {
        eprintln!("Job successfully submitted. Job ID: {id}");
    }
    // `--follow` waits for the output even with `--wait=false`.
    if !run.wait && !run.follow {
        if !run.id_only {
            eprintln!("To get more details about the job, run: bh job describe {id}");
        }
        return Ok(());
    }
    if !run.id_only {
        eprintln!("Checking job status... (Ctrl+C stops waiting; the job keeps running)");
    }
    let namespace = job.namespace.as_str();
    let finished = api
        .wait_for_job(
            namespace,
            &id,
            job.is_finite(),
            Duration::from_secs(run.wait_timeout_secs),
        )
        .await
        .map_err(|e| match e.code {
            ErrorCode::Timeout => anyhow::anyhow!(
                "job {id} did not finish within {} seconds; it keeps running: see bh job describe {id}",
                run.wait_timeout_secs
            ),
            _ => anyhow::anyhow!("failed while waiting for job {id}: {}", e.message),
        })?;
    let executions = api
        .get_job(namespace, &id, false, true)
        .await
        .map(|r| r.executions.unwrap_or_default())
        .unwrap_or_default();
    match finished.state.state_type {
        JobStateType::Completed => {
            if !run.id_only {
                print_outputs(&executions)?;
                eprintln!("Job {id} completed. To get more details, run: bh job describe {id}");
            }
            Ok(())
        }
        JobStateType::Failed | JobStateType::Stopped => {
            Err(anyhow::anyhow!(failure_report(&finished, &executions)))
        }
        // Service and daemon jobs never finish: waiting ends once they run.
        other => {
            if !run.id_only {
                eprintln!("Job {id} is {other}. To follow it, run: bh job describe {id}");
            }
            Ok(())
        }
    }
}

/// Writes the stdout of every completed execution to stdout, verbatim, in partition order.
fn print_outputs(executions: &[Execution]) -> anyhow::Result<()> {
    let mut completed: Vec<&Execution> = executions
        .iter()
        .filter(|e| e.compute_state.state_type == ExecutionStateType::Completed)
        .collect();
    completed.sort_by_key(|e| (e.partition_index, e.create_time));
    let mut stdout = std::io::stdout().lock();
    for execution in completed {
        if let Some(run) = &execution.run_output {
            stdout.write_all(run.stdout.as_bytes())?;
            if run.stdout_truncated {
                eprintln!(
                    "Note: the output of execution {} was truncated; fetch the full results with bh job describe {}",
                    execution.id, execution.job_id
                );
            }
        }
    }
    stdout.flush()?;
    Ok(())
}

/// One readable block: why the job failed, then each failed execution's message, exit code and stderr.
pub fn failure_report(job: &Job, executions: &[Execution]) -> String {
    let verb = match job.state.state_type {
        JobStateType::Stopped => "was stopped",
        _ => "failed",
    };
    let mut report = format!("job {} {verb}", job.id);
    if !job.state.message.is_empty() {
        report.push_str(&format!(": {}", job.state.message));
    }
    for execution in executions {
        let state = execution.compute_state.state_type;
        let run = execution.run_output.as_ref();
        let interesting = state == ExecutionStateType::Failed
            || run.is_some_and(|r| r.exit_code != 0 || !r.error_msg.is_empty());
        if !interesting {
            continue;
        }
        report.push_str(&format!(
            "\n  execution {} on node {}: {}",
            execution.id, execution.node_id, state
        ));
        if !execution.compute_state.message.is_empty() {
            report.push_str(&format!(": {}", execution.compute_state.message));
        }
        if let Some(run) = run {
            if !run.error_msg.is_empty()
                && !execution.compute_state.message.contains(&run.error_msg)
            {
                report.push_str(&format!("\n    error: {}", run.error_msg));
            }
            report.push_str(&format!("\n    exit code: {}", run.exit_code));
            let stderr = run.stderr.trim_end();
            if !stderr.is_empty() {
                report.push_str("\n    stderr:");
                for line in stderr.lines() {
                    report.push_str(&format!("\n      {line}"));
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use bh_models::{RunCommandResult, State};

    #[test]
    fn failure_report_has_message_exit_code_and_stderr() {
        let job = Job {
            id: "j-1".into(),
            state: State::new(JobStateType::Failed, "execution failed"),
            ..Job::default()
        };
        let execution = Execution {
            id: "e-1".into(),
            node_id: "n-1".into(),
            compute_state: State::new(ExecutionStateType::Failed, "exit status 3"),
            run_output: Some(RunCommandResult {
                exit_code: 3,
                stderr: "boom\nbang\n".into(),
                ..RunCommandResult::default()
            }),
            ..Execution::default()
        };
        let report = failure_report(&job, &[execution]);
        assert_eq!(
            report,
            "job j-1 failed: execution failed\n  execution e-1 on node n-1: Failed: exit status 3\n    exit code: 3\n    stderr:\n      boom\n      bang"
        );
    }
}
