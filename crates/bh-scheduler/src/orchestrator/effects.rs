//! Turns a scheduler Plan into what must be written (executions, job, evaluations, history) and what must
//! be told to compute nodes. Pure: the worker commits the writes and then sends the messages.

use std::collections::HashMap;

use bh_models::history::{rfc3339_from_nanos, HISTORY_EXECUTION_LEVEL, HISTORY_JOB_LEVEL};
use bh_models::{
    Event, Execution, ExecutionDesiredStateType as Desired, ExecutionStateType as Compute, Job,
    JobHistory, JobStateType, State, StateChange, ToCompute,
};

use crate::plan::Plan;

/// Writes and messages derived from one plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanEffects {
    /// The job with its new state, if the state changed.
    pub job: Option<Job>,
    /// New executions (ComputeState already AskForBid: the message goes out right after the commit).
    pub new_executions: Vec<Execution>,
    /// Changed executions, each with the revision it had in the snapshot (compare-and-swap).
    pub updated_executions: Vec<(Execution, u64)>,
    pub history: Vec<JobHistory>,
    /// Messages to send after the commit, by node ID.
    pub messages: Vec<(String, ToCompute)>,
}

/// A job-level history event.
pub(crate) fn job_event(
    job: &Job,
    previous: JobStateType,
    new: JobStateType,
    message: &str,
    now: i64,
) -> JobHistory {
    JobHistory {
        history_type: HISTORY_JOB_LEVEL.to_string(),
        job_id: job.id.clone(),
        job_version: job.version,
        job_state: (previous != new).then_some(StateChange { previous, new }),
        event: Event {
            message: message.to_string(),
            topic: "JobStateUpdate".to_string(),
            timestamp: rfc3339_from_nanos(now),
            details: Default::default(),
        },
        time: rfc3339_from_nanos(now),
        ..Default::default()
    }
}

/// An execution-level history event.
pub(crate) fn execution_event(
    exec: &Execution,
    previous: Compute,
    new: Compute,
    message: &str,
    now: i64,
) -> JobHistory {
    JobHistory {
        history_type: HISTORY_EXECUTION_LEVEL.to_string(),
        job_id: exec.job_id.clone(),
        execution_id: exec.id.clone(),
        node_id: exec.node_id.clone(),
        job_version: exec.job_version,
        execution_state: (previous != new).then_some(StateChange { previous, new }),
        event: Event {
            message: message.to_string(),
            topic: "ExecutionStateUpdate".to_string(),
            timestamp: rfc3339_from_nanos(now),
            details: Default::default(),
        },
        time: rfc3339_from_nanos(now),
        ..Default::default()
    }
}

/// Derives writes and messages from `plan`, given the job and executions of the snapshot it was made from.
pub(crate) fn plan_effects(
    job: &Job,
    executions: &[Execution],
    plan: &Plan,
    now: i64,
) -> PlanEffects {
    let mut fx = PlanEffects::default();
    let before: HashMap<&str, &Execution> = executions.iter().map(|e| (e.id.as_str(), e)).collect();

    if let Some(state) = &plan.job_state {
        if state.state_type != job.state.state_type || state.message != job.state.message {
            let mut updated = job.clone();
            updated.state = state.clone();
            updated.modify_time = now;
            if state.state_type != job.state.state_type {
                let message = if state.message.is_empty() {
                    format!("Job {}", state.state_type.as_str().to_lowercase())
                } else {
                    state.message.clone()
                };
                fx.history.push(job_event(
                    job,
                    job.state.state_type,
                    state.state_type,
                    &message,
                    now,
                ));
            }
            fx.job = Some(updated);
        }
    }

    for exec in &plan.new_executions {
        let mut exec = exec.clone();
        let pre_approved = exec.desired_state.state_type == Desired::Running;
        if exec.create_time == 0 {
            exec.create_time = now;
        }
        exec.modify_time = now;
        exec.compute_state = State::new(Compute::AskForBid, "");
        if exec.job.is_none() {
            exec.job = Some(job.clone());
        }
        fx.history.push(execution_event(
            &exec,
            Compute::New,
            Compute::AskForBid,
            &format!("Requested execution on node {}", exec.node_id),
            now,
        ));
        fx.messages.push((
            exec.node_id.clone(),
            ToCompute::AskForBid {
                execution: Box::new(exec.clone()),
                pre_approved,
            },
        ));
        fx.new_executions.push(exec);
    }

    for update in &plan.execution_updates {
        let Some(old) = before.get(update.execution_id.as_str()) else {
            tracing::warn!(execution = %update.execution_id, "plan updates an unknown execution");
            continue;
        };
        let mut exec = (*old).clone();
        let old_desired = old.desired_state.state_type;
        let old_compute = old.compute_state.state_type;
        if let Some(desired) = &update.desired_state {
            exec.desired_state = desired.clone();
        }
        if let Some(compute) = &update.compute_state {
            exec.compute_state = compute.clone();
        }
        let new_desired = exec.desired_state.state_type;
        let at_bid_stage = matches!(
            old_compute,
            Compute::New | Compute::AskForBid | Compute::AskForBidAccepted
        );
        if old_desired != Desired::Running && new_desired == Desired::Running {
            if update.compute_state.is_none() && !old_compute.is_terminal() {
                exec.compute_state = State::new(Compute::BidAccepted, "");
            }
            fx.messages.push((
                exec.node_id.clone(),
                ToCompute::BidAccepted {
                    execution_id: exec.id.clone(),
                },
            ));
        } else if old_desired != Desired::Stopped
            && new_desired == Desired::Stopped
            && !old_compute.is_terminal()
        {
            let reason = if exec.desired_state.message.is_empty() {
                "execution stopped by the orchestrator".to_string()
            } else {
                exec.desired_state.message.clone()
            };
            if old_desired == Desired::Pending && at_bid_stage {
                if update.compute_state.is_none() {
                    exec.compute_state = State::new(Compute::BidRejected, reason.clone());
                }
                fx.messages.push((
                    exec.node_id.clone(),
                    ToCompute::BidRejected {
                        execution_id: exec.id.clone(),
                        reason,
                    },
                ));
            } else {
                if update.compute_state.is_none() {
                    exec.compute_state = State::new(Compute::Cancelled, reason.clone());
                }
                fx.messages.push((
                    exec.node_id.clone(),
                    ToCompute::Cancel {
                        execution_id: exec.id.clone(),
                        reason,
                    },
                ));
            }
        }
        let new_compute = exec.compute_state.state_type;
        if new_compute != old_compute {
            let message = if exec.compute_state.message.is_empty() {
                format!("Execution {}", new_compute.as_str())
            } else {
                exec.compute_state.message.clone()
            };
            fx.history.push(execution_event(
                &exec,
                old_compute,
                new_compute,
                &message,
                now,
            ));
        }
        exec.modify_time = now;
        fx.updated_executions.push((exec, update.expected_revision));
    }
    fx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ExecutionUpdate;

    fn exec(id: &str, desired: Desired, compute: Compute) -> Execution {
        Execution {
            id: id.into(),
            node_id: "n-1".into(),
            job_id: "j-1".into(),
            desired_state: State::new(desired, ""),
            compute_state: State::new(compute, ""),
            revision: 3,
            ..Default::default()
        }
    }

    #[test]
    fn messages_follow_desired_state_changes() {
        let job = Job {
            id: "j-1".into(),
            ..Default::default()
        };
        let current = vec![
            exec("e-a", Desired::Pending, Compute::AskForBidAccepted),
            exec("e-b", Desired::Pending, Compute::AskForBidAccepted),
            exec("e-c", Desired::Running, Compute::Running),
        ];
        let stop = |id: &str| ExecutionUpdate {
            execution_id: id.into(),
            expected_revision: 3,
            desired_state: Some(State::new(Desired::Stopped, "stop")),
            compute_state: None,
        };
        let plan = Plan {
            new_executions: vec![exec("e-n", Desired::Running, Compute::New)],
            execution_updates: vec![
                ExecutionUpdate {
                    execution_id: "e-a".into(),
                    expected_revision: 3,
                    desired_state: Some(State::new(Desired::Running, "")),
                    compute_state: None,
                },
                stop("e-b"),
                stop("e-c"),
            ],
            ..Default::default()
        };
        let fx = plan_effects(&job, &current, &plan, 5);
        let kinds: Vec<_> = fx
            .messages
            .iter()
            .map(|(_, m)| match m {
                ToCompute::AskForBid { pre_approved, .. } => format!("ask:{pre_approved}"),
                ToCompute::BidAccepted { execution_id } => format!("accept:{execution_id}"),
                ToCompute::BidRejected { execution_id, .. } => format!("reject:{execution_id}"),
                ToCompute::Cancel { execution_id, .. } => format!("cancel:{execution_id}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec!["ask:true", "accept:e-a", "reject:e-b", "cancel:e-c"]
        );
        assert_eq!(
            fx.new_executions[0].compute_state.state_type,
            Compute::AskForBid
        );
        let states: Vec<_> = fx
            .updated_executions
            .iter()
            .map(|(e, _)| e.compute_state.state_type)
            .collect();
        assert_eq!(
            states,
            vec![
                Compute::BidAccepted,
                Compute::BidRejected,
                Compute::Cancelled
            ]
        );
    }
}
