//! The CLI's calls to the orchestrator, as a thin layer over the typed REST client
//! `bh_transport::Client` (errors stay the shared `bh_models::Error`, carrying the server's message).

use std::time::{Duration, Instant};

use bh_models::api::{
    GetJobResponse, GetNodeResponse, IsAliveResponse, ListExecutionsResponse, ListHistoryResponse,
    ListJobsResponse, ListNodesResponse, ListOptions, PutJobRequest, PutJobResponse,
    PutNodeRequest, PutNodeResponse, StopJobResponse,
};
use bh_models::{BuildVersionInfo, Error, ErrorCode, Job, JobStateType, NodeInfo, Result};
use bh_transport::service::{GetJobOptions, HistoryOptions, NodeListOptions};
use bh_transport::Client;

use crate::endpoint::Endpoint;

/// Filters of `job history`.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub list: ListOptions,
    pub event_type: String,
    pub execution_id: String,
    pub node_id: String,
}

/// Filters of `node list`.
#[derive(Debug, Clone, Default)]
pub struct NodeQuery {
    pub list: ListOptions,
    pub filter_approval: String,
    pub filter_status: String,
}

/// Longest single long poll when waiting for a long-running job to start.
const LONG_POLL: Duration = Duration::from_secs(60);

/// A client of one orchestrator.
pub struct Api {
    client: Client,
}

impl Api {
    /// A client for `endpoint`.
    pub fn new(endpoint: &Endpoint) -> anyhow::Result<Self> {
        let client = Client::new(&endpoint.base_url()).map_err(|e| anyhow::anyhow!(e.message))?;
        Ok(Self { client })
    }

    /// `PUT /orchestrator/jobs`.
    pub async fn put_job(&self, req: &PutJobRequest) -> Result<PutJobResponse> {
        self.client.put_job(req).await
    }

    /// `GET /orchestrator/jobs/{id}` with optional history and executions.
    pub async fn get_job(
        &self,
        namespace: &str,
        id: &str,
        history: bool,
        executions: bool,
    ) -> Result<GetJobResponse> {
        let opts = GetJobOptions {
            include_history: history,
            include_executions: executions,
            ..GetJobOptions::default()
        };
        self.client.get_job(id, &opts, namespace).await
    }

    /// `GET /orchestrator/jobs`.
    pub async fn list_jobs(&self, opts: &ListOptions) -> Result<ListJobsResponse> {
        self.client.list_jobs(opts).await
    }

    /// `DELETE /orchestrator/jobs/{id}`.
    pub async fn stop_job(
        &self,
        namespace: &str,
        id: &str,
        reason: &str,
    ) -> Result<StopJobResponse> {
        self.client.stop_job(id, namespace, reason).await
    }

    /// `GET /orchestrator/jobs/{id}/executions`.
    pub async fn job_executions(
        &self,
        namespace: &str,
        id: &str,
        opts: &ListOptions,
    ) -> Result<ListExecutionsResponse> {
        let opts = ListOptions {
            namespace: namespace.to_string(),
            ..opts.clone()
        };
        self.client.job_executions(id, &opts).await
    }

    /// `GET /orchestrator/jobs/{id}/history`.
    pub async fn job_history(
        &self,
        namespace: &str,
        id: &str,
        q: &HistoryQuery,
    ) -> Result<ListHistoryResponse> {
        let opts = HistoryOptions {
            list: ListOptions {
                namespace: namespace.to_string(),
                ..q.list.clone()
            },
            since: 0,
            event_type: q.event_type.clone(),
            execution_id: q.execution_id.clone(),
            node_id: q.node_id.clone(),
        };
        self.client.job_history(id, &opts).await
    }

    /// `GET /orchestrator/nodes`.
    pub async fn list_nodes(&self, q: &NodeQuery) -> Result<ListNodesResponse> {
        let opts = NodeListOptions {
            list: q.list.clone(),
            filter_approval: q.filter_approval.clone(),
            filter_status: q.filter_status.clone(),
        };
        self.client.list_nodes(&opts).await
    }

    /// `GET /orchestrator/nodes/{id}`.
    pub async fn get_node(&self, id: &str) -> Result<GetNodeResponse> {
        self.client.get_node(id).await
    }

    /// `PUT /orchestrator/nodes/{id}` with an approve, reject or delete action.
    pub async fn update_node(
        &self,
        id: &str,
        action: &str,
        message: &str,
    ) -> Result<PutNodeResponse> {
        let req = PutNodeRequest {
            action: action.to_string(),
            message: message.to_string(),
            node_id: id.to_string(),
        };
        self.client.update_node(id, &req).await
    }

    /// `GET /agent/alive`.
    pub async fn alive(&self) -> Result<IsAliveResponse> {
        self.client.alive().await
    }

    /// `GET /agent/version`.
    pub async fn version(&self) -> Result<BuildVersionInfo> {
        self.client.version().await
    }

    /// `GET /agent/node`.
    pub async fn agent_node(&self) -> Result<NodeInfo> {
        self.client.agent_node().await
    }

    /// Waits (long poll, no sleeping) until a batch or ops job is terminal, or a service or daemon
    /// job (which never finishes) is running or terminal. Errors with `Timeout` when time runs out.
    pub async fn wait_for_job(
        &self,
        namespace: &str,
        id: &str,
        finite: bool,
        timeout: Duration,
    ) -> Result<Job> {
        if finite {
            return Ok(self.client.wait_for_job(id, namespace, timeout).await?.job);
        }
        let deadline = Instant::now() + timeout;
        let mut opts = GetJobOptions::default();
        loop {
            let job = self.client.get_job(id, &opts, namespace).await?.job;
            let state = job.state.state_type;
            if state.is_terminal() || state == JobStateType::Running {
                return Ok(job);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorCode::Timeout,
                    format!("job {id} did not start in time (last state: {state})"),
                ));
            }
            opts = GetJobOptions {
                wait_after_revision: Some(job.revision),
                wait: Some(left.min(LONG_POLL).max(Duration::from_secs(1))),
                ..GetJobOptions::default()
            };
        }
    }
}
