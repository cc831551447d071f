//! REST request and response bodies of Bacalhau's `/api/v1` API, shared by the gateway and the typed client.

use serde::{Deserialize, Serialize};

use crate::execution::Execution;
use crate::history::JobHistory;
use crate::job::{Job, SpecConfig};
use crate::node::{NodeInfo, NodeState};

/// `PUT /api/v1/orchestrator/jobs` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PutJobRequest {
    /// The job as submitted; kept as raw JSON so the server can apply the case-insensitive parser and allow-list.
    #[serde(rename = "Job")]
    pub job: serde_json::Value,
    #[serde(rename = "Force")]
    pub force: bool,
}

/// `PUT /api/v1/orchestrator/jobs` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PutJobResponse {
    #[serde(rename = "JobID")]
    pub job_id: String,
    #[serde(rename = "EvaluationID")]
    pub evaluation_id: String,
    #[serde(rename = "Warnings")]
    pub warnings: Vec<String>,
}

/// `GET /api/v1/orchestrator/jobs/{id}` answer.
///
/// On the wire `History` and `Executions` are list answers, `{"Items":[...],"NextToken":""}`, as in upstream's
/// `GetJobResponse` (which nests `ListJobHistoryResponse` and `ListJobExecutionsResponse`); a bare array is
/// also accepted when reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GetJobResponse {
    #[serde(rename = "Job")]
    pub job: Job,
    #[serde(
        rename = "History",
        with = "nested_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub history: Option<Vec<JobHistory>>,
    #[serde(
        rename = "Executions",
        with = "nested_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub executions: Option<Vec<Execution>>,
}

/// (De)serialises an optional list as a nested list answer `{"Items":[...],"NextToken":""}`.
mod nested_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct ListOut<'a, T> {
        #[serde(rename = "Items")]
        items: &'a [T],
        #[serde(rename = "NextToken")]
        next_token: &'a str,
    }

    #[derive(Deserialize)]
    struct ListIn<T> {
        #[serde(rename = "Items", alias = "items", default = "Option::default")]
        items: Option<Vec<T>>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Bare(Vec<T>),
        Nested(ListIn<T>),
    }

    pub(super) fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Vec<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(items) => ListOut {
                items,
                next_token: "",
            }
            .serialize(serializer),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<T>>, D::Error> {
        Ok(match Option::<Either<T>>::deserialize(deserializer)? {
            None => None,
            Some(Either::Bare(items)) => Some(items),
            Some(Either::Nested(list)) => Some(list.items.unwrap_or_default()),
        })
    }
}

/// `GET /api/v1/orchestrator/jobs` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListJobsResponse {
    #[serde(rename = "Items")]
    pub items: Vec<Job>,
    #[serde(rename = "NextToken")]
    pub next_token: String,
}

/// `DELETE /api/v1/orchestrator/jobs/{id}` body (optional) and answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StopJobRequest {
    #[serde(rename = "reason", alias = "Reason")]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StopJobResponse {
    #[serde(rename = "EvaluationID")]
    pub evaluation_id: String,
}

/// `GET /api/v1/orchestrator/jobs/{id}/executions` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListExecutionsResponse {
    #[serde(rename = "Items")]
    pub items: Vec<Execution>,
    #[serde(rename = "NextToken")]
    pub next_token: String,
}

/// `GET /api/v1/orchestrator/jobs/{id}/history` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListHistoryResponse {
    #[serde(rename = "Items")]
    pub items: Vec<JobHistory>,
    #[serde(rename = "NextToken")]
    pub next_token: String,
}

/// `GET /api/v1/orchestrator/jobs/{id}/results` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListResultsResponse {
    #[serde(rename = "Items")]
    pub items: Vec<SpecConfig>,
    #[serde(rename = "NextToken")]
    pub next_token: String,
}

/// `GET /api/v1/orchestrator/nodes` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListNodesResponse {
    #[serde(rename = "Nodes")]
    pub nodes: Vec<NodeState>,
    #[serde(rename = "NextToken")]
    pub next_token: String,
}

/// `GET /api/v1/orchestrator/nodes/{id}` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GetNodeResponse {
    #[serde(rename = "Node")]
    pub node: NodeState,
}

/// Node actions for `PUT /api/v1/orchestrator/nodes/{id}`.
pub const NODE_ACTION_APPROVE: &str = "approve";
pub const NODE_ACTION_REJECT: &str = "reject";
pub const NODE_ACTION_DELETE: &str = "delete";

/// `PUT /api/v1/orchestrator/nodes/{id}` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PutNodeRequest {
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
}

/// `PUT /api/v1/orchestrator/nodes/{id}` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PutNodeResponse {
    #[serde(rename = "Success")]
    pub success: bool,
    #[serde(rename = "Error", skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// `GET /api/v1/agent/alive` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct IsAliveResponse {
    #[serde(rename = "Status")]
    pub status: String,
}

/// `GET /api/v1/agent/node` answer is a bare NodeInfo.
pub type AgentNodeResponse = NodeInfo;

/// Upstream's error body: `{Status,Message,RequestID,Code,Component,Hint?,Details?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ErrorResponse {
    #[serde(rename = "Status")]
    pub status: u16,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "RequestID")]
    pub request_id: String,
    #[serde(rename = "Code")]
    pub code: String,
    #[serde(rename = "Component")]
    pub component: String,
    #[serde(rename = "Hint", skip_serializing_if = "String::is_empty")]
    pub hint: String,
    #[serde(rename = "Details", skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// Ordering and paging options shared by list endpoints (query parameters `limit`, `next_token`,
/// `order_by`, `reverse`, `namespace`, `labels`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// 0 means the endpoint's default.
    pub limit: u32,
    pub next_token: String,
    pub order_by: String,
    pub reverse: bool,
    /// `*` means every namespace; empty means `default`.
    pub namespace: String,
    /// Kubernetes-style label selectors, all of which must match.
    pub labels: Vec<String>,
}
