//! The node side: connection handshake with membership, reconciliation after reconnect, node reports,
//! liveness, and node administration (approve, reject, delete).

use std::collections::BTreeSet;

use async_trait::async_trait;
use bh_jobstore::Txn;
use bh_models::api::{ListOptions, PutNodeRequest, PutNodeResponse};
use bh_models::api::{NODE_ACTION_APPROVE, NODE_ACTION_DELETE, NODE_ACTION_REJECT};
use bh_models::execution::{
    TRIGGER_EXEC_FAILURE, TRIGGER_EXEC_UPDATE, TRIGGER_NODE_JOIN, TRIGGER_NODE_LEAVE,
};
use bh_models::history::rfc3339_from_nanos;
use bh_models::node::{
    CONNECTION_CONNECTED, CONNECTION_DISCONNECTED, MEMBERSHIP_APPROVED, MEMBERSHIP_PENDING,
    MEMBERSHIP_REJECTED,
};
use bh_models::{
    ConnectionState, Error, ErrorCode, Execution, ExecutionDesiredStateType as Desired,
    ExecutionStateType as Compute, FromCompute, Job, JobStateType, NodeInfo, NodeState, Result,
    State, ToCompute,
};
use bh_transport::service::NodeHub;
use tokio::sync::mpsc;

use super::effects::execution_event;
use super::{Orchestrator, NODE_CHANNEL_CAPACITY};

/// How often a report is re-applied after compare-and-swap conflicts with a worker.
const MAX_REPORT_ATTEMPTS: usize = 8;

/// How a report changes an execution, decided from its current state.
struct ReportChange {
    compute: State<Compute>,
    run_output: Option<bh_models::RunCommandResult>,
    published_result: Option<bh_models::SpecConfig>,
    /// Evaluation to raise, if the scheduler must look at the job again.
    trigger: Option<&'static str>,
}

impl Orchestrator {
    /// The messages a (re)connecting node must get for executions that it may not have acknowledged.
    fn reconciliation_messages(executions: &[Execution]) -> Vec<ToCompute> {
        let mut out = Vec::new();
        for exec in executions.iter().filter(|e| !e.is_terminal()) {
            let compute = exec.compute_state.state_type;
            match exec.desired_state.state_type {
                Desired::Pending | Desired::Running
                    if matches!(compute, Compute::New | Compute::AskForBid) =>
                {
                    out.push(ToCompute::AskForBid {
                        execution: Box::new(exec.clone()),
                        pre_approved: exec.desired_state.state_type == Desired::Running,
                    });
                }
                Desired::Running
                    if matches!(compute, Compute::AskForBidAccepted | Compute::BidAccepted) =>
                {
                    out.push(ToCompute::BidAccepted {
                        execution_id: exec.id.clone(),
                    });
                }
                Desired::Stopped => out.push(ToCompute::Cancel {
                    execution_id: exec.id.clone(),
                    reason: exec.desired_state.message.clone(),
                }),
                _ => {}
            }
        }
        out
    }

    /// Every job for which `keep` is true, across namespaces and pages.
    pub(super) async fn all_jobs(
        &self,
        keep: &(dyn Fn(&Job) -> bool + Send + Sync),
    ) -> Result<Vec<Job>> {
        let mut out = Vec::new();
        let mut opts = ListOptions {
            namespace: "*".to_string(),
            limit: 500,
            ..ListOptions::default()
        };
        loop {
            let (jobs, next) = self.store.list_jobs(&opts, keep).await?;
            out.extend(jobs);
            if next.is_empty() {
                return Ok(out);
            }
            opts.next_token = next;
        }
    }

    /// Commits one new evaluation with `trigger` for each job in `job_ids` and queues them.
    async fn raise_evaluations(&self, job_ids: BTreeSet<String>, trigger: &str) -> Result<()> {
        if job_ids.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let mut txn = Txn::new(now);
        for job_id in job_ids {
            if self.broker.has_queued(&job_id, trigger) {
                continue;
            }
            let job = match self.store.get_job(&job_id).await {
                Ok(job) => job,
                Err(err) if err.code == ErrorCode::NotFound => continue,
                Err(err) => return Err(err),
            };
            txn = txn.put_evaluation(self.new_evaluation(&job, trigger, now));
        }
        if txn.is_empty() {
            return Ok(());
        }
        let stored = self.store.commit(txn).await?;
        self.enqueue_all(stored.evaluations);
        Ok(())
    }

    /// Marks a node DISCONNECTED and closes its channel; with `leave`, also raises `node-leave` for the
    /// jobs with work on it (the scheduler then reschedules that work).
    pub(super) async fn mark_disconnected(
        &self,
        node_id: &str,
        reason: &str,
        leave: bool,
    ) -> Result<()> {
        self.lock_links().remove(node_id);
        if leave {
            self.lock_departed().insert(node_id.to_string());
        }
        {
            let _guard = self.node_write.lock().await;
            let mut node = match self.store.get_node(node_id).await {
                Ok(node) => node,
                Err(err) if err.code == ErrorCode::NotFound => return Ok(()),
                Err(err) => return Err(err),
            };
            if node.connection_state.status != CONNECTION_DISCONNECTED {
                node.connection_state.status = CONNECTION_DISCONNECTED.to_string();
                node.connection_state.disconnected_since = rfc3339_from_nanos(self.now());
                node.connection_state.last_error = reason.to_string();
                self.store
                    .commit(Txn::new(self.now()).put_node(node))
                    .await?;
            }
        }
        if !leave {
            return Ok(());
        }
        let jobs: BTreeSet<String> = self
            .store
            .list_executions_by_node(node_id)
            .await?
            .into_iter()
            .filter(|e| !e.is_terminal())
            .map(|e| e.job_id)
            .collect();
        self.raise_evaluations(jobs, TRIGGER_NODE_LEAVE).await
    }

    /// Disconnects nodes whose last heartbeat is older than the disconnect timeout, and makes their
    /// work move elsewhere (once per departure).
    pub(super) async fn check_liveness(&self) -> Result<()> {
        let now = self.now();
        let timeout = i64::try_from(self.config.disconnect_timeout.as_nanos()).unwrap_or(i64::MAX);
        for node in self.store.list_nodes().await? {
            if self.lock_departed().contains(&node.info.node_id) {
                continue;
            }
            let last =
                bh_models::history::nanos_from_rfc3339(&node.connection_state.last_heartbeat)
                    .unwrap_or(0);
            if now.saturating_sub(last) > timeout {
                tracing::info!(node = %node.info.node_id, "node missed its heartbeats; disconnecting");
                self.mark_disconnected(&node.info.node_id, "heartbeat timeout", true)
                    .await?;
            }
        }
        Ok(())
    }

    /// Applies a node's report about one of its executions (idempotent: reports about terminal
    /// executions, or that would move an execution backwards, change nothing).
    async fn apply_report(
        &self,
        node_id: &str,
        execution_id: &str,
        msg: &FromCompute,
    ) -> Result<()> {
        for _ in 0..MAX_REPORT_ATTEMPTS {
            let exec = match self.store.get_execution(execution_id).await {
                Ok(exec) => exec,
                Err(err) if err.code == ErrorCode::NotFound => {
                    tracing::debug!(
                        node = node_id,
                        execution = execution_id,
                        "report about an unknown execution"
                    );
                    return Ok(());
                }
                Err(err) => return Err(err),
            };
            if exec.node_id != node_id {
                tracing::warn!(node = node_id, execution = execution_id, owner = %exec.node_id, "report from a node that does not hold the execution");
                return Ok(());
            }
            if exec.is_terminal() {
                return Ok(());
            }
            let Some(change) = report_change(&exec, msg) else {
                return Ok(());
            };
            let now = self.now();
            let previous = exec.compute_state.state_type;
            let mut updated = exec.clone();
            let message = change.compute.message.clone();
            updated.compute_state = change.compute;
            if change.run_output.is_some() {
                updated.run_output = change.run_output;
            }
            if change.published_result.is_some() {
                updated.published_result = change.published_result;
            }
            let new_state = updated.compute_state.state_type;
            let event_message = if message.is_empty() {
                format!("Execution {}", new_state.as_str())
            } else {
                message
            };
            let mut txn = Txn::new(now)
                .append_history(execution_event(
                    &updated,
                    previous,
                    new_state,
                    &event_message,
                    now,
                ))
                .update_execution(updated);
            if let Some(trigger) = change.trigger {
                match self.store.get_job(&exec.job_id).await {
                    Ok(job) => txn = txn.put_evaluation(self.new_evaluation(&job, trigger, now)),
                    Err(err) if err.code == ErrorCode::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
            match self.store.commit(txn).await {
                Ok(stored) => {
                    self.enqueue_all(stored.evaluations);
                    return Ok(());
                }
                Err(err) if err.code == ErrorCode::Conflict => continue,
                Err(err) => return Err(err),
            }
        }
        Err(Error::unavailable(format!(
            "execution {execution_id}: too many concurrent updates; the report will be retried"
        )))
    }

    /// Changes a stored node under the node lock; `NotFound` if it does not exist.
    async fn update_stored_node(
        &self,
        node_id: &str,
        change: impl FnOnce(&mut NodeState),
    ) -> Result<NodeState> {
        let _guard = self.node_write.lock().await;
        let mut node = self.store.get_node(node_id).await?;
        change(&mut node);
        self.store
            .commit(Txn::new(self.now()).put_node(node.clone()))
            .await?;
        Ok(node)
    }

    /// Handles `PUT /orchestrator/nodes/{id}`.
    pub(super) async fn node_action(
        &self,
        id: &str,
        req: PutNodeRequest,
    ) -> Result<PutNodeResponse> {
        let node = self.find_node(id).await?;
        let node_id = node.info.node_id.clone();
        // Refusals use upstream's exact wording ("node already approved"), which scripts look for; the CLI
        // adds the node ID.
        let refuse = |error: String| {
            Ok(PutNodeResponse {
                success: false,
                error,
            })
        };
        match req.action.to_ascii_lowercase().as_str() {
            NODE_ACTION_APPROVE => {
                if node.membership == MEMBERSHIP_APPROVED {
                    return refuse("node already approved".to_string());
                }
                self.update_stored_node(&node_id, |n| {
                    n.membership = MEMBERSHIP_APPROVED.to_string();
                })
                .await?;
                if self.lock_links().contains_key(&node_id) {
                    self.raise_join_evaluations().await?;
                }
            }
            NODE_ACTION_REJECT => {
                if node.membership == MEMBERSHIP_REJECTED {
                    return refuse("node already rejected".to_string());
                }
                self.update_stored_node(&node_id, |n| {
                    n.membership = MEMBERSHIP_REJECTED.to_string();
                })
                .await?;
                self.mark_disconnected(&node_id, "node rejected", true)
                    .await?;
            }
            NODE_ACTION_DELETE => {
                self.lock_links().remove(&node_id);
                let jobs: BTreeSet<String> = self
                    .store
                    .list_executions_by_node(&node_id)
                    .await?
                    .into_iter()
                    .filter(|e| !e.is_terminal())
                    .map(|e| e.job_id)
                    .collect();
                {
                    let _guard = self.node_write.lock().await;
                    self.store
                        .commit(Txn::new(self.now()).delete_node(node_id.clone()))
                        .await?;
                }
                self.raise_evaluations(jobs, TRIGGER_NODE_LEAVE).await?;
            }
            other => {
                return Err(Error::invalid(format!(
                    "Action: unknown node action {other:?} (approve, reject or delete)"
                )))
            }
        }
        Ok(PutNodeResponse {
            success: true,
            error: String::new(),
        })
    }

    /// The node with ID `id`, or the only node whose ID starts with `id`.
    pub(super) async fn find_node(&self, id: &str) -> Result<NodeState> {
        match self.store.get_node(id).await {
            Ok(node) => return Ok(node),
            Err(err) if err.code != ErrorCode::NotFound => return Err(err),
            Err(_) => {}
        }
        let matches: Vec<NodeState> = self
            .store
            .list_nodes()
            .await?
            .into_iter()
            .filter(|n| !id.is_empty() && n.info.node_id.starts_with(id))
            .collect();
        match matches.len() {
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            0 => Err(Error::not_found(format!("node not found: {id}"))),
            _ => Err(Error::invalid(format!(
                "node ID prefix {id} is ambiguous: {}",
                matches
                    .iter()
                    .map(|n| n.info.node_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Raises `node-join` evaluations for jobs that a new node may serve: ops and daemon jobs still
    /// running, and queued jobs.
    async fn raise_join_evaluations(&self) -> Result<()> {
        let keep = |job: &Job| {
            !job.state.state_type.is_terminal()
                && (job.is_fan_out() || job.state.state_type == JobStateType::Queued)
        };
        let jobs = self.all_jobs(&keep).await?;
        self.raise_evaluations(jobs.into_iter().map(|j| j.id).collect(), TRIGGER_NODE_JOIN)
            .await
    }

    async fn handshake(&self, info: NodeInfo) -> Result<mpsc::Receiver<ToCompute>> {
        if info.node_id.trim().is_empty() {
            return Err(Error::invalid("NodeID: a node must name itself"));
        }
        let node_id = info.node_id.clone();
        let now = self.now();
        let stamp = rfc3339_from_nanos(now);
        let (tx, rx) = mpsc::channel(NODE_CHANNEL_CAPACITY);
        let membership = {
            let _guard = self.node_write.lock().await;
            let existing = match self.store.get_node(&node_id).await {
                Ok(node) => Some(node),
                Err(err) if err.code == ErrorCode::NotFound => None,
                Err(err) => return Err(err),
            };
            if let Some(node) = &existing {
                if node.membership == MEMBERSHIP_REJECTED {
                    return Err(Error::new(
                        ErrorCode::Forbidden,
                        format!("node {node_id} was rejected by the orchestrator"),
                    ));
                }
            }
            let membership = match &existing {
                Some(node) if !node.membership.is_empty() => node.membership.clone(),
                _ if self.config.manual_approval => MEMBERSHIP_PENDING.to_string(),
                _ => MEMBERSHIP_APPROVED.to_string(),
            };
            let previous = existing.map(|n| n.connection_state).unwrap_or_default();
            let node = NodeState {
                info,
                membership: membership.clone(),
                connection_state: ConnectionState {
                    status: CONNECTION_CONNECTED.to_string(),
                    last_heartbeat: stamp.clone(),
                    connected_since: stamp,
                    disconnected_since: String::new(),
                    last_compute_seq_num: previous.last_compute_seq_num,
                    last_orchestrator_seq_num: previous.last_orchestrator_seq_num,
                    last_error: String::new(),
                },
            };
            self.store.commit(Txn::new(now).put_node(node)).await?;
            membership
        };
        // Whatever this node may have missed while away goes first on its new channel.
        let executions = self.store.list_executions_by_node(&node_id).await?;
        for msg in Self::reconciliation_messages(&executions) {
            if tx.try_send(msg).is_err() {
                tracing::warn!(node = %node_id, "reconciliation backlog exceeds the node channel");
                break;
            }
        }
        self.lock_links().insert(node_id.clone(), tx);
        self.lock_departed().remove(&node_id);
        *self.lock_streams().entry(node_id.clone()).or_default() += 1;
        tracing::info!(node = %node_id, %membership, "node connected");
        if membership == MEMBERSHIP_APPROVED {
            self.raise_join_evaluations().await?;
        }
        Ok(rx)
    }

    async fn handle_message(&self, node_id: &str, msg: FromCompute) -> Result<()> {
        match &msg {
            FromCompute::Heartbeat { seq } => {
                let now = self.now();
                let connected = self.lock_links().contains_key(node_id);
                let seq = *seq;
                self.update_stored_node(node_id, |n| {
                    n.connection_state.last_heartbeat = rfc3339_from_nanos(now);
                    n.connection_state.last_compute_seq_num = seq;
                    if connected && n.connection_state.status != CONNECTION_CONNECTED {
                        n.connection_state.status = CONNECTION_CONNECTED.to_string();
                        n.connection_state.connected_since = rfc3339_from_nanos(now);
                    }
                })
                .await?;
            }
            FromCompute::UpdateNodeInfo { info } => {
                let mut info = (**info).clone();
                info.node_id = node_id.to_string();
                let now = self.now();
                self.update_stored_node(node_id, |n| {
                    n.info = info;
                    n.connection_state.last_heartbeat = rfc3339_from_nanos(now);
                })
                .await?;
            }
            FromCompute::BidResult { execution_id, .. }
            | FromCompute::ExecutionStarted { execution_id }
            | FromCompute::RunResult { execution_id, .. }
            | FromCompute::ComputeError { execution_id, .. } => {
                self.apply_report(node_id, execution_id, &msg).await?;
            }
        }
        Ok(())
    }
}

/// How `msg` changes `exec`, or `None` when it changes nothing (duplicate, late or out of order).
fn report_change(exec: &Execution, msg: &FromCompute) -> Option<ReportChange> {
    let current = exec.compute_state.state_type;
    let simple = |state: Compute, message: String, trigger: Option<&'static str>| ReportChange {
        compute: State::new(state, message),
        run_output: None,
        published_result: None,
        trigger,
    };
    match msg {
        FromCompute::BidResult {
            accepted, reason, ..
        } => {
            if !matches!(current, Compute::New | Compute::AskForBid) {
                return None;
            }
            let pre_approved = exec.desired_state.state_type == Desired::Running;
            let state = match (*accepted, pre_approved) {
                (true, true) => Compute::BidAccepted,
                (true, false) => Compute::AskForBidAccepted,
                (false, _) => Compute::AskForBidRejected,
            };
            Some(simple(state, reason.clone(), Some(TRIGGER_EXEC_UPDATE)))
        }
        FromCompute::ExecutionStarted { .. } => {
            if matches!(current, Compute::Running | Compute::Publishing) {
                return None;
            }
            Some(simple(Compute::Running, String::new(), None))
        }
        FromCompute::RunResult {
            output,
            published_result,
            ..
        } => {
            let (state, message, trigger) = if output.exit_code == 0 {
                (Compute::Completed, String::new(), TRIGGER_EXEC_UPDATE)
            } else {
                (
                    Compute::Failed,
                    format!("exit code {}", output.exit_code),
                    TRIGGER_EXEC_FAILURE,
                )
            };
            Some(ReportChange {
                compute: State::new(state, message),
                run_output: Some(output.clone()),
                published_result: published_result.clone(),
                trigger: Some(trigger),
            })
        }
        FromCompute::ComputeError {
            message, output, ..
        } => Some(ReportChange {
            compute: State::new(Compute::Failed, message.clone()),
            run_output: output.clone(),
            published_result: None,
            trigger: Some(TRIGGER_EXEC_FAILURE),
        }),
        FromCompute::Heartbeat { .. } | FromCompute::UpdateNodeInfo { .. } => None,
    }
}

#[async_trait]
impl NodeHub for Orchestrator {
    async fn connect(&self, info: NodeInfo) -> Result<mpsc::Receiver<ToCompute>> {
        self.handshake(info).await
    }

    async fn on_message(&self, node_id: &str, msg: FromCompute) {
        if let Err(err) = self.handle_message(node_id, msg).await {
            tracing::warn!(node = node_id, %err, "could not apply node message");
        }
    }

    async fn disconnected(&self, node_id: &str) {
        let still_open = {
            let mut streams = self.lock_streams();
            let open = streams.get(node_id).copied().unwrap_or(0).saturating_sub(1);
            if open == 0 {
                streams.remove(node_id);
            } else {
                streams.insert(node_id.to_string(), open);
            }
            open
        };
        if still_open > 0 {
            tracing::debug!(
                node = node_id,
                "an older stream of the node ended; the newer one stays"
            );
            return;
        }
        if let Err(err) = self
            .mark_disconnected(node_id, "connection closed", false)
            .await
        {
            tracing::warn!(node = node_id, %err, "could not record node disconnection");
        }
    }
}
