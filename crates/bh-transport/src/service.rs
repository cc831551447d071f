//! The traits the transport calls into: the orchestrator's API (REST gateway), its node hub (gRPC server),
//! and the compute node's agent (gRPC client). Implemented elsewhere; the transport knows only these.

use std::time::Duration;

use async_trait::async_trait;
use bh_models::api::{
    GetJobResponse, GetNodeResponse, ListExecutionsResponse, ListHistoryResponse, ListJobsResponse,
    ListNodesResponse, ListOptions, ListResultsResponse, PutJobRequest, PutJobResponse,
    PutNodeRequest, PutNodeResponse, StopJobResponse,
};
use bh_models::{FromCompute, NodeInfo, Result, ToCompute};
use tokio::sync::mpsc;

/// Options of `GET /jobs/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetJobOptions {
    pub include_history: bool,
    pub include_executions: bool,
    /// bh extension for waiting without polling: answer once the job's Revision exceeds this value or it is
    /// terminal, or when `wait` runs out (whichever comes first). `None`: answer at once.
    pub wait_after_revision: Option<u64>,
    pub wait: Option<Duration>,
}

/// Options of `GET /jobs/{id}/history`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryOptions {
    pub list: ListOptions,
    /// Unix seconds; 0 means from the start.
    pub since: i64,
    /// `all`, `job` or `execution`; empty means all.
    pub event_type: String,
    pub execution_id: String,
    pub node_id: String,
}

/// Options of `GET /nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeListOptions {
    pub list: ListOptions,
    pub filter_approval: String,
    pub filter_status: String,
}

/// What the REST gateway needs from the orchestrator. `id` arguments may be a full job ID, a unique short
/// prefix or a job name, resolved in `namespace`.
#[async_trait]
pub trait OrchestratorApi: AgentApi {
    async fn put_job(&self, namespace_hint: &str, req: PutJobRequest) -> Result<PutJobResponse>;
    async fn get_job(
        &self,
        namespace: &str,
        id: &str,
        opts: GetJobOptions,
    ) -> Result<GetJobResponse>;
    async fn list_jobs(&self, opts: ListOptions) -> Result<ListJobsResponse>;
    async fn stop_job(&self, namespace: &str, id: &str, reason: &str) -> Result<StopJobResponse>;
    async fn job_executions(
        &self,
        namespace: &str,
        id: &str,
        opts: ListOptions,
    ) -> Result<ListExecutionsResponse>;
    async fn job_history(
        &self,
        namespace: &str,
        id: &str,
        opts: HistoryOptions,
    ) -> Result<ListHistoryResponse>;
    async fn job_results(&self, namespace: &str, id: &str) -> Result<ListResultsResponse>;
    async fn list_nodes(&self, opts: NodeListOptions) -> Result<ListNodesResponse>;
    async fn get_node(&self, id: &str) -> Result<GetNodeResponse>;
    async fn update_node(&self, id: &str, req: PutNodeRequest) -> Result<PutNodeResponse>;
}

/// What every node's agent endpoints (`/api/v1/agent/...`) need: the orchestrator and compute nodes both serve
/// them.
pub trait AgentApi: Send + Sync + 'static {
    /// `GET /api/v1/agent/node`.
    fn agent_node(&self) -> NodeInfo;
    /// `GET /api/v1/agent/config` (the effective configuration, secrets removed).
    fn agent_config(&self) -> serde_json::Value;
}

/// The orchestrator's side of the node protocol, driven by the gRPC server.
#[async_trait]
pub trait NodeHub: Send + Sync + 'static {
    /// A node dialled in and handed over its info. On success the hub returns the channel of messages to
    /// send to that node; the connection ends when the hub drops the sender. An error refuses the node
    /// (for example a REJECTED node) and its message is sent back to it.
    async fn connect(&self, info: NodeInfo) -> Result<mpsc::Receiver<ToCompute>>;
    /// A message arrived from a connected node.
    async fn on_message(&self, node_id: &str, msg: FromCompute);
    /// The node's stream ended (network loss, shutdown, or refused).
    async fn disconnected(&self, node_id: &str);
}

/// The compute node's side of the node protocol, driven by the gRPC client that dials the orchestrator.
#[async_trait]
pub trait ComputeAgent: Send + Sync + 'static {
    /// The node info handed over on every (re)connection and heartbeat.
    fn node_info(&self) -> NodeInfo;
    /// Called after each successful handshake, before messages flow; the agent re-queues any reports the
    /// orchestrator may not have received (duplicates are harmless: the orchestrator is idempotent).
    async fn on_connected(&self);
    /// A message from the orchestrator.
    async fn handle(&self, msg: ToCompute);
    /// The next message to send; the client awaits this in a loop while connected. Returning `None` ends
    /// the client (node shutting down).
    async fn next_outbound(&self) -> Option<FromCompute>;
}
