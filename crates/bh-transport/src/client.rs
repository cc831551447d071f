//! The typed REST client of Bacalhau's `/api/v1` API, used by the CLI and by embedders (plain HTTP, no TLS).

use std::time::{Duration, Instant};

use bh_models::api::{
    ErrorResponse, GetJobResponse, GetNodeResponse, IsAliveResponse, ListExecutionsResponse,
    ListHistoryResponse, ListJobsResponse, ListNodesResponse, ListOptions, ListResultsResponse,
    PutJobRequest, PutJobResponse, PutNodeRequest, PutNodeResponse, StopJobRequest,
    StopJobResponse,
};
use bh_models::{BuildVersionInfo, Error, ErrorCode, NodeInfo, Result};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::service::{GetJobOptions, HistoryOptions, NodeListOptions};

/// Longest single long poll `wait_for_job` asks for; the server caps it too.
const LONG_POLL_STEP: Duration = Duration::from_secs(60);
/// Extra time given to a long-poll request over the wait it asked for, for the answer to travel.
const LONG_POLL_SLACK: Duration = Duration::from_secs(10);

/// A client of one orchestrator's REST API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct VersionResponse {
    #[serde(rename = "BuildVersionInfo", default)]
    build_version_info: BuildVersionInfo,
}

#[derive(Deserialize)]
struct ConfigResponse {
    #[serde(default)]
    config: serde_json::Value,
}

impl Client {
    /// A client of the API at `base_url` (`http://host:port`; a bare `host:port` gets `http://`).
    pub fn new(base_url: &str) -> Result<Self> {
        let with_scheme = if base_url.contains("://") {
            base_url.to_string()
        } else {
            format!("http://{base_url}")
        };
        let base = Url::parse(with_scheme.trim_end_matches('/'))
            .map_err(|e| Error::invalid(format!("api address '{base_url}': {e}")))?;
        if base.scheme() != "http" {
            return Err(Error::invalid(format!(
                "api address '{base_url}': only http:// is supported"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::internal(format!("cannot build HTTP client: {e}")))?;
        Ok(Self { base, http })
    }

    /// A client of `http://host:port`.
    pub fn from_host_port(host: &str, port: u16) -> Result<Self> {
        Self::new(&format!("http://{host}:{port}"))
    }

    /// The base URL, for messages.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    // -----------------------------------------------------------------------------------------------------
    // Orchestrator: jobs

    /// `PUT /api/v1/orchestrator/jobs`.
    pub async fn put_job(&self, req: &PutJobRequest) -> Result<PutJobResponse> {
        self.call(
            Method::PUT,
            "/api/v1/orchestrator/jobs",
            &[],
            Some(req),
            None,
        )
        .await
    }

    /// `GET /api/v1/orchestrator/jobs/{id}`, long-polling when `opts.wait_after_revision` is set.
    pub async fn get_job(
        &self,
        id: &str,
        opts: &GetJobOptions,
        namespace: &str,
    ) -> Result<GetJobResponse> {
        let mut query = namespace_query(namespace);
        let mut include = Vec::new();
        if opts.include_history {
            include.push("history");
        }
        if opts.include_executions {
            include.push("executions");
        }
        if !include.is_empty() {
            query.push(("include".into(), include.join(",")));
        }
        let mut timeout = None;
        if let Some(revision) = opts.wait_after_revision {
            query.push(("wait_after_revision".into(), revision.to_string()));
            let wait = opts.wait.unwrap_or(LONG_POLL_STEP);
            query.push((
                "wait_timeout_secs".into(),
                wait.as_secs().max(1).to_string(),
            ));
            timeout = Some(wait + LONG_POLL_SLACK);
        }
        let path = format!("/api/v1/orchestrator/jobs/{}", encode_segment(id));
        self.call::<(), _>(Method::GET, &path, &query, None, timeout)
            .await
    }

    /// `GET /api/v1/orchestrator/jobs`.
    pub async fn list_jobs(&self, opts: &ListOptions) -> Result<ListJobsResponse> {
        self.call::<(), _>(
            Method::GET,
            "/api/v1/orchestrator/jobs",
            &list_query(opts),
            None,
            None,
        )
        .await
    }

    /// `DELETE /api/v1/orchestrator/jobs/{id}` with the reason in a JSON body, as upstream's client does.
    pub async fn stop_job(
        &self,
        id: &str,
        namespace: &str,
        reason: &str,
    ) -> Result<StopJobResponse> {
        let path = format!("/api/v1/orchestrator/jobs/{}", encode_segment(id));
        let body = StopJobRequest {
            reason: reason.to_string(),
        };
        self.call(
            Method::DELETE,
            &path,
            &namespace_query(namespace),
            Some(&body),
            None,
        )
        .await
    }

    /// `GET /api/v1/orchestrator/jobs/{id}/executions` (namespace from `opts`).
    pub async fn job_executions(
        &self,
        id: &str,
        opts: &ListOptions,
    ) -> Result<ListExecutionsResponse> {
        let path = format!(
            "/api/v1/orchestrator/jobs/{}/executions",
            encode_segment(id)
        );
        self.call::<(), _>(Method::GET, &path, &list_query(opts), None, None)
            .await
    }

    /// `GET /api/v1/orchestrator/jobs/{id}/history` (namespace from `opts.list`).
    pub async fn job_history(
        &self,
        id: &str,
        opts: &HistoryOptions,
    ) -> Result<ListHistoryResponse> {
        let path = format!("/api/v1/orchestrator/jobs/{}/history", encode_segment(id));
        let mut query = list_query(&opts.list);
        if opts.since != 0 {
            query.push(("since".into(), opts.since.to_string()));
        }
        for (name, value) in [
            ("event_type", &opts.event_type),
            ("execution_id", &opts.execution_id),
            ("node_id", &opts.node_id),
        ] {
            if !value.is_empty() {
                query.push((name.into(), value.clone()));
            }
        }
        self.call::<(), _>(Method::GET, &path, &query, None, None)
            .await
    }

    /// `GET /api/v1/orchestrator/jobs/{id}/results`.
    pub async fn job_results(&self, id: &str, namespace: &str) -> Result<ListResultsResponse> {
        let path = format!("/api/v1/orchestrator/jobs/{}/results", encode_segment(id));
        self.call::<(), _>(Method::GET, &path, &namespace_query(namespace), None, None)
            .await
    }

    /// Waits until the job is terminal (Completed, Failed or Stopped) and returns it, using the server's
    /// long-poll extension (`wait_after_revision`) so that no request is repeated while nothing changes.
    ///
    /// Errors with `Timeout` (naming the last state seen) when `timeout` passes first.
    pub async fn wait_for_job(
        &self,
        id: &str,
        namespace: &str,
        timeout: Duration,
    ) -> Result<GetJobResponse> {
        let deadline = Instant::now() + timeout;
        let mut answer = self
            .get_job(id, &GetJobOptions::default(), namespace)
            .await?;
        loop {
            let job = &answer.job;
            if job.state.state_type.is_terminal() {
                return Ok(answer);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorCode::Timeout,
                    format!(
                        "job {} did not finish within {}s (last state: {})",
                        job.id,
                        timeout.as_secs(),
                        job.state.state_type
                    ),
                ));
            }
            // Whole seconds on the wire; at least one so that a short remainder still waits server-side.
            let step = left.min(LONG_POLL_STEP).max(Duration::from_secs(1));
            let opts = GetJobOptions {
                wait_after_revision: Some(job.revision),
                wait: Some(step),
                ..Default::default()
            };
            answer = self.get_job(id, &opts, namespace).await?;
        }
    }

    // -----------------------------------------------------------------------------------------------------
    // Orchestrator: nodes

    /// `GET /api/v1/orchestrator/nodes`.
    pub async fn list_nodes(&self, opts: &NodeListOptions) -> Result<ListNodesResponse> {
        let mut query = list_query(&opts.list);
        if !opts.filter_approval.is_empty() {
            query.push(("filter-approval".into(), opts.filter_approval.clone()));
        }
        if !opts.filter_status.is_empty() {
            query.push(("filter-status".into(), opts.filter_status.clone()));
        }
        self.call::<(), _>(
            Method::GET,
            "/api/v1/orchestrator/nodes",
            &query,
            None,
            None,
        )
        .await
    }

    /// `GET /api/v1/orchestrator/nodes/{id}`.
    pub async fn get_node(&self, id: &str) -> Result<GetNodeResponse> {
        let path = format!("/api/v1/orchestrator/nodes/{}", encode_segment(id));
        self.call::<(), _>(Method::GET, &path, &[], None, None)
            .await
    }

    /// `PUT /api/v1/orchestrator/nodes/{id}` (approve, reject or delete).
    pub async fn update_node(&self, id: &str, req: &PutNodeRequest) -> Result<PutNodeResponse> {
        let path = format!("/api/v1/orchestrator/nodes/{}", encode_segment(id));
        self.call(Method::PUT, &path, &[], Some(req), None).await
    }

    // -----------------------------------------------------------------------------------------------------
    // Agent

    /// `GET /api/v1/agent/alive`.
    pub async fn alive(&self) -> Result<IsAliveResponse> {
        self.call::<(), _>(Method::GET, "/api/v1/agent/alive", &[], None, None)
            .await
    }

    /// `GET /api/v1/agent/version`.
    pub async fn version(&self) -> Result<BuildVersionInfo> {
        let answer: VersionResponse = self
            .call::<(), _>(Method::GET, "/api/v1/agent/version", &[], None, None)
            .await?;
        Ok(answer.build_version_info)
    }

    /// `GET /api/v1/agent/node`.
    pub async fn agent_node(&self) -> Result<NodeInfo> {
        self.call::<(), _>(Method::GET, "/api/v1/agent/node", &[], None, None)
            .await
    }

    /// `GET /api/v1/agent/config`: the node's effective configuration.
    pub async fn agent_config(&self) -> Result<serde_json::Value> {
        let answer: ConfigResponse = self
            .call::<(), _>(Method::GET, "/api/v1/agent/config", &[], None, None)
            .await?;
        Ok(answer.config)
    }

    // -----------------------------------------------------------------------------------------------------

    /// One request: builds the URL, sends, and decodes the answer or the error body.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<T> {
        let mut url = self.base.clone();
        // Keep a path prefix of the base URL (an API behind a reverse proxy).
        let prefix = self.base.path().trim_end_matches('/');
        url.set_path(&format!("{prefix}{path}"));
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let mut request = self.http.request(method, url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|e| self.send_error(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.send_error(&e))?;
        if !status.is_success() {
            return Err(decode_error(status.as_u16(), &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::internal(format!(
                "invalid answer from {} for {path}: {e}",
                self.base_url()
            ))
        })
    }

    fn send_error(&self, err: &reqwest::Error) -> Error {
        if err.is_timeout() {
            Error::new(
                ErrorCode::Timeout,
                format!("request to orchestrator at {} timed out", self.base_url()),
            )
        } else {
            Error::unavailable(format!(
                "cannot reach orchestrator at {}: {}",
                self.base_url(),
                crate::errors::error_chain(err)
            ))
        }
    }
}

/// A non-2xx answer as the shared error: the body's `Message` (or the raw text), the code from the status.
fn decode_error(status: u16, body: &[u8]) -> Error {
    let code = ErrorCode::from_http_status(status);
    let message = match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(parsed) if !parsed.message.is_empty() => parsed.message,
        _ => {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if text.is_empty() {
                format!("request failed with HTTP status {status}")
            } else {
                text
            }
        }
    };
    Error::new(code, message)
}

fn namespace_query(namespace: &str) -> Vec<(String, String)> {
    if namespace.is_empty() {
        Vec::new()
    } else {
        vec![("namespace".into(), namespace.to_string())]
    }
}

fn list_query(opts: &ListOptions) -> Vec<(String, String)> {
    let mut query = namespace_query(&opts.namespace);
    if opts.limit > 0 {
        query.push(("limit".into(), opts.limit.to_string()));
    }
    if !opts.next_token.is_empty() {
        query.push(("next_token".into(), opts.next_token.clone()));
    }
    if !opts.order_by.is_empty() {
        query.push(("order_by".into(), opts.order_by.clone()));
    }
    if opts.reverse {
        query.push(("reverse".into(), "true".into()));
    }
    for selector in &opts.labels {
        query.push(("labels".into(), selector.clone()));
    }
    query
}

/// A path segment with the characters that would change the path percent-encoded.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_decode_with_the_status_code() {
        let body = br#"{"Status":404,"Message":"job j-1 not found","RequestID":"x","Code":"NotFound","Component":"APIServer"}"#;
        let err = decode_error(404, body);
        assert_eq!(err, Error::not_found("job j-1 not found"));
        let err = decode_error(502, b"bad gateway");
        assert_eq!(err.code, ErrorCode::Internal);
        assert_eq!(err.message, "bad gateway");
        assert!(decode_error(503, b"").message.contains("503"));
    }

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(
            Client::new("localhost:1234").unwrap().base_url(),
            "http://localhost:1234"
        );
        assert_eq!(Client::new("http://h:1/").unwrap().base_url(), "http://h:1");
        assert_eq!(
            Client::from_host_port("10.0.0.1", 80).unwrap().base_url(),
            "http://10.0.0.1"
        );
        assert_eq!(
            Client::new("https://h:1").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(encode_segment("j-1/x y"), "j-1%2Fx%20y");
    }
}
