//! The REST-facing API (`OrchestratorApi`): jobs (get with long-poll, list, stop, executions, history,
//! results) and nodes (list, get, approve/reject/delete), plus the agent endpoints.

use std::time::Duration;

use async_trait::async_trait;
use bh_jobstore::{ChangeKind, HistoryLevel, HistoryQuery, Txn};
use bh_models::api::{
    GetJobResponse, GetNodeResponse, ListExecutionsResponse, ListHistoryResponse, ListJobsResponse,
    ListNodesResponse, ListOptions, ListResultsResponse, PutJobRequest, PutJobResponse,
    PutNodeRequest, PutNodeResponse, StopJobResponse,
};
use bh_models::execution::TRIGGER_JOB_CANCEL;
use bh_models::node::NODE_TYPE_REQUESTER;
use bh_models::{
    BuildVersionInfo, Constraint, Error, ExecutionStateType, Job, JobStateType, NodeInfo,
    NodeState, Result, State,
};
use bh_transport::service::{
    AgentApi, GetJobOptions, HistoryOptions, NodeListOptions, OrchestratorApi,
};
use tokio::sync::broadcast::error::RecvError;

use super::effects::job_event;
use super::Orchestrator;

/// How long a long-poll waits when the client names no limit.
const DEFAULT_LONG_POLL: Duration = Duration::from_secs(30);
/// The longest a long-poll may wait.
const MAX_LONG_POLL: Duration = Duration::from_secs(300);

/// Parses repeated `labels` query parameters into constraints (all must match).
fn parse_label_selectors(labels: &[String]) -> Result<Vec<Constraint>> {
    let mut out = Vec::new();
    for selector in labels.iter().filter(|s| !s.trim().is_empty()) {
        let parsed = bh_models::selector::parse_selector(selector)
            .map_err(|e| Error::invalid(format!("labels: {}", e.message)))?;
        out.extend(parsed);
    }
    Ok(out)
}

/// The key a node list is ordered by.
fn node_order_key(node: &NodeState, order_by: &str) -> Result<(f64, String)> {
    let available = &node.info.compute_node_info.available_capacity;
    let id = node.info.node_id.clone();
    Ok(match order_by {
        "" | "id" => (0.0, id),
        "type" => (0.0, format!("{}\u{0}{id}", node.info.node_type)),
        "approval" => (0.0, format!("{}\u{0}{id}", node.membership)),
        "status" => (0.0, format!("{}\u{0}{id}", node.connection_state.status)),
        "available_cpu" => (available.cpu, id),
        "available_memory" => (available.memory as f64, id),
        "available_disk" => (available.disk as f64, id),
        "available_gpu" => (available.gpu as f64, id),
        other => {
            return Err(Error::invalid(format!(
                "order_by: unknown node ordering {other:?} (id, type, available_cpu, available_memory, available_disk, available_gpu, approval, status)"
            )))
        }
    })
}

/// Applies offset-token paging to an ordered list.
fn page<T>(items: Vec<T>, opts: &ListOptions) -> Result<(Vec<T>, String)> {
    let start: usize = if opts.next_token.is_empty() {
        0
    } else {
        opts.next_token.parse().map_err(|_| {
            Error::invalid(format!("next_token: invalid token {:?}", opts.next_token))
        })?
    };
    let total = items.len();
    let limit = if opts.limit == 0 {
        usize::MAX
    } else {
        opts.limit as usize
    };
    let end = start.saturating_add(limit).min(total);
    let next = if end < total {
        end.to_string()
    } else {
        String::new()
    };
    Ok((
        items
            .into_iter()
            .skip(start)
            .take(end.saturating_sub(start))
            .collect(),
        next,
    ))
}

impl Orchestrator {
    /// Waits until the job's Revision exceeds `after`, it is terminal, or `wait` runs out; returns the
    /// job as last read. Watches the store's change feed (no polling).
    async fn wait_for_job_change(&self, job: Job, after: u64, wait: Duration) -> Result<Job> {
        let mut feed = self.store.subscribe();
        // Re-read after subscribing so that a change between the first read and the subscription is seen.
        let mut job = self.store.get_job(&job.id).await?;
        let deadline = tokio::time::Instant::now() + wait.min(MAX_LONG_POLL);
        loop {
            if job.revision > after || job.state.state_type.is_terminal() {
                return Ok(job);
            }
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Err(_) => return Ok(job),
                Ok(Ok(change)) => {
                    if change.kind != ChangeKind::Job || change.id != job.id {
                        continue;
                    }
                }
                Ok(Err(RecvError::Lagged(_))) => {}
                Ok(Err(RecvError::Closed)) => return Ok(job),
            }
            job = self.store.get_job(&job.id).await?;
        }
    }

    async fn stop(&self, namespace: &str, id: &str, reason: &str) -> Result<StopJobResponse> {
        for _ in 0..8 {
            let job = self.store.resolve_job(namespace, id).await?;
            match job.state.state_type {
                JobStateType::Completed => {
                    return Err(Error::invalid(format!(
                        "job {} is already completed",
                        job.id
                    )))
                }
                JobStateType::Stopped => return Ok(StopJobResponse::default()),
                _ => {}
            }
            let now = self.now();
            let reason = if reason.trim().is_empty() {
                "job stopped by user".to_string()
            } else {
                reason.trim().to_string()
            };
            let mut stopped = job.clone();
            stopped.state = State::new(JobStateType::Stopped, reason.clone());
            let eval = self.new_evaluation(&job, TRIGGER_JOB_CANCEL, now);
            let history = job_event(
                &job,
                job.state.state_type,
                JobStateType::Stopped,
                &reason,
                now,
            );
            let txn = Txn::new(now)
                .update_job(stopped)
                .put_evaluation(eval.clone())
                .append_history(history);
            match self.store.commit(txn).await {
                Ok(stored) => {
                    self.enqueue_all(stored.evaluations);
                    return Ok(StopJobResponse {
                        evaluation_id: eval.id,
                    });
                }
                Err(err) if err.code == bh_models::ErrorCode::Conflict => continue,
                Err(err) => return Err(err),
            }
        }
        Err(Error::unavailable(
            "the job is changing too quickly to stop; try again",
        ))
    }
}

#[async_trait]
impl OrchestratorApi for Orchestrator {
    async fn put_job(&self, namespace_hint: &str, req: PutJobRequest) -> Result<PutJobResponse> {
        self.submit(namespace_hint, req).await
    }

    async fn get_job(
        &self,
        namespace: &str,
        id: &str,
        opts: GetJobOptions,
    ) -> Result<GetJobResponse> {
        let mut job = self.store.resolve_job(namespace, id).await?;
        if let Some(after) = opts.wait_after_revision {
            job = self
                .wait_for_job_change(job, after, opts.wait.unwrap_or(DEFAULT_LONG_POLL))
                .await?;
        }
        let history = if opts.include_history {
            let (items, _) = self
                .store
                .list_history(&job.id, &HistoryQuery::default())
                .await?;
            Some(items)
        } else {
            None
        };
        let executions = if opts.include_executions {
            Some(self.store.list_executions_by_job(&job.id, None).await?)
        } else {
            None
        };
        Ok(GetJobResponse {
            job,
            history,
            executions,
        })
    }

    async fn list_jobs(&self, opts: ListOptions) -> Result<ListJobsResponse> {
        let selectors = parse_label_selectors(&opts.labels)?;
        let filter = |job: &Job| bh_models::selector::matches_all(&selectors, &job.labels);
        let (items, next_token) = self.store.list_jobs(&opts, &filter).await?;
        Ok(ListJobsResponse { items, next_token })
    }

    async fn stop_job(&self, namespace: &str, id: &str, reason: &str) -> Result<StopJobResponse> {
        self.stop(namespace, id, reason).await
    }

    async fn job_executions(
        &self,
        namespace: &str,
        id: &str,
        opts: ListOptions,
    ) -> Result<ListExecutionsResponse> {
        let job = self.store.resolve_job(namespace, id).await?;
        let mut items = self.store.list_executions_by_job(&job.id, None).await?;
        match opts.order_by.as_str() {
            "" | "created_at" | "create_time" => {
                items.sort_by_key(|e| (e.create_time, e.id.clone()))
            }
            "modified_at" | "modify_time" => items.sort_by_key(|e| (e.modify_time, e.id.clone())),
            "id" => items.sort_by(|a, b| a.id.cmp(&b.id)),
            // `bacalhau job executions --order-by state` (documented with modify_time, create_time and id).
            "state" => items.sort_by_key(|e| {
                (
                    e.compute_state.state_type.as_i64(),
                    e.create_time,
                    e.id.clone(),
                )
            }),
            other => {
                return Err(Error::invalid(format!(
                    "order_by: unknown execution ordering {other:?} (created_at, modified_at, id, state)"
                )))
            }
        }
        if opts.reverse {
            items.reverse();
        }
        let (items, next_token) = page(items, &opts)?;
        Ok(ListExecutionsResponse { items, next_token })
    }

    async fn job_history(
        &self,
        namespace: &str,
        id: &str,
        opts: HistoryOptions,
    ) -> Result<ListHistoryResponse> {
        let job = self.store.resolve_job(namespace, id).await?;
        let level = HistoryLevel::parse(&opts.event_type).ok_or_else(|| {
            Error::invalid(format!(
                "event_type: unknown event type {:?} (all, job or execution)",
                opts.event_type
            ))
        })?;
        let query = HistoryQuery {
            since: opts.since,
            level,
            execution_id: opts.execution_id,
            node_id: opts.node_id,
            job_version: None,
            limit: opts.list.limit,
            next_token: opts.list.next_token,
        };
        let (items, next_token) = self.store.list_history(&job.id, &query).await?;
        Ok(ListHistoryResponse { items, next_token })
    }

    async fn job_results(&self, namespace: &str, id: &str) -> Result<ListResultsResponse> {
        let job = self.store.resolve_job(namespace, id).await?;
        let items = self
            .store
            .list_executions_by_job(&job.id, None)
            .await?
            .into_iter()
            .filter(|e| e.compute_state.state_type == ExecutionStateType::Completed)
            .filter_map(|e| e.published_result)
            .filter(|r| !r.is_empty())
            .collect();
        Ok(ListResultsResponse {
            items,
            next_token: String::new(),
        })
    }

    async fn list_nodes(&self, opts: NodeListOptions) -> Result<ListNodesResponse> {
        let selectors = parse_label_selectors(&opts.list.labels)?;
        let approval = opts.filter_approval.trim().to_ascii_uppercase();
        let status = opts.filter_status.trim().to_ascii_uppercase();
        let mut keyed = Vec::new();
        for node in self.store.list_nodes().await? {
            if !approval.is_empty() && node.membership.to_ascii_uppercase() != approval {
                continue;
            }
            if !status.is_empty() && node.connection_state.status.to_ascii_uppercase() != status {
                continue;
            }
            if !bh_models::selector::matches_all(&selectors, &node.info.labels) {
                continue;
            }
            let key = node_order_key(&node, &opts.list.order_by)?;
            keyed.push((key, node));
        }
        keyed.sort_by(|(a, _), (b, _)| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        if opts.list.reverse {
            keyed.reverse();
        }
        let nodes: Vec<NodeState> = keyed.into_iter().map(|(_, n)| n).collect();
        let (nodes, next_token) = page(nodes, &opts.list)?;
        Ok(ListNodesResponse { nodes, next_token })
    }

    async fn get_node(&self, id: &str) -> Result<GetNodeResponse> {
        Ok(GetNodeResponse {
            node: self.find_node(id).await?,
        })
    }

    async fn update_node(&self, id: &str, req: PutNodeRequest) -> Result<PutNodeResponse> {
        self.node_action(id, req).await
    }
}

impl AgentApi for Orchestrator {
    fn agent_node(&self) -> NodeInfo {
        NodeInfo {
            node_id: self.config.node_id.clone(),
            node_type: NODE_TYPE_REQUESTER.to_string(),
            labels: self.config.labels.clone(),
            supported_protocols: vec!["ncl/v1".to_string()],
            compute_node_info: Default::default(),
            bacalhau_version: BuildVersionInfo::current(),
        }
    }

    fn agent_config(&self) -> serde_json::Value {
        self.config.to_json()
    }
}
