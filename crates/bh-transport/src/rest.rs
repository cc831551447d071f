//! The REST gateway: an axum router for Bacalhau's `/api/v1` API that parses requests, calls
//! [`OrchestratorApi`], and answers with Bacalhau's JSON shapes and error bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use axum::Router;
use bh_models::api::{IsAliveResponse, ListOptions, PutJobRequest, PutNodeRequest};
use bh_models::{BuildVersionInfo, ErrorCode};
use serde::Serialize;

use crate::errors::ApiError;
use crate::service::{AgentApi, GetJobOptions, HistoryOptions, NodeListOptions, OrchestratorApi};

/// Largest accepted request body (upstream's limit).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The namespace used when a request names none.
const DEFAULT_NAMESPACE: &str = "default";

/// Wait used by the long-poll extension when `wait_after_revision` comes without `wait_timeout_secs`.
const DEFAULT_LONG_POLL: Duration = Duration::from_secs(30);
/// Longest wait a client may ask for in one long poll.
const MAX_LONG_POLL: Duration = Duration::from_secs(600);

type Api = Arc<dyn OrchestratorApi>;
type ApiResult = Result<Response, ApiError>;

/// The `/api/v1` router over an orchestrator. Serve it with `axum::serve`.
///
/// Every answer is JSON; `?pretty` pretty-prints it. Errors carry upstream's body
/// `{Status,Message,RequestID,Code,Component}` with the status from [`crate::errors::http_status`]; bad
/// bodies and query values are 400 naming the field, bodies over [`MAX_BODY_BYTES`] are 413, unknown routes
/// 404, `/api/v1/requester/...` 410. An absent `namespace` query parameter is passed on as `default`, except
/// to `put_job`, whose hint is empty then (the job's own Namespace decides).
///
/// bh extension: `GET /jobs/{id}?wait_after_revision=N&wait_timeout_secs=S` long-polls (see
/// [`GetJobOptions`]); without `wait_timeout_secs` the wait is 30 s, and it is capped at 600 s.
pub fn router(api: Arc<dyn OrchestratorApi>) -> Router {
    let jobs = Router::new()
        .route("/jobs", put(put_job).post(put_job).get(list_jobs))
        .route("/jobs/{id}", get(get_job).delete(stop_job))
        .route("/jobs/{id}/executions", get(job_executions))
        .route("/jobs/{id}/history", get(job_history))
        .route("/jobs/{id}/results", get(job_results))
        .route(
            "/nodes",
            get(list_nodes)
                .put(update_node_from_body)
                .post(update_node_from_body),
        )
        .route(
            "/nodes/{id}",
            get(get_node).put(update_node).post(update_node),
        );
    let agent_api: Arc<dyn AgentApi> = api.clone();
    Router::new()
        .nest("/api/v1/orchestrator", jobs)
        .nest("/api/v1/agent", agent_routes().with_state(agent_api))
        .route("/api/v1/requester", any(requester_gone))
        .route("/api/v1/requester/{*rest}", any(requester_gone))
        .merge(redirects())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

/// The agent endpoints alone (`/api/v1/agent/{alive,version,node,config}` and the redirects), as a compute
/// node serves them.
pub fn agent_router(api: Arc<dyn AgentApi>) -> Router {
    Router::new()
        .nest("/api/v1/agent", agent_routes())
        .merge(redirects())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}

fn agent_routes() -> Router<Arc<dyn AgentApi>> {
    Router::new()
        .route("/alive", get(alive))
        .route("/version", get(version))
        .route("/node", get(agent_node))
        .route("/config", get(agent_config))
}

fn redirects<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { redirect_301("/api/v1/agent/version") }))
        .route(
            "/version",
            get(|| async { redirect_301("/api/v1/agent/version") }),
        )
        .route(
            "/livez",
            get(|| async { redirect_301("/api/v1/agent/alive") }),
        )
}

/// A 301 redirect (axum's `Redirect::permanent` answers 308; upstream's Echo server answers 301).
fn redirect_301(location: &'static str) -> Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, location)],
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------------------
// Query parameters

/// The decoded query string, keeping repeated keys.
struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    fn parse(uri: &Uri) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| ApiError::invalid(format!("invalid query string: {}", e.body_text())))?;
        Ok(Self { pairs })
    }

    /// The last value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable parameter, in order.
    fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn string(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    /// A flag: present without a value (`?reverse`) means true.
    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "" | "true" | "1" | "t" | "yes" => Ok(true),
                "false" | "0" | "f" | "no" => Ok(false),
                _ => Err(ApiError::invalid(format!(
                    "invalid value for query parameter '{name}': '{v}' is not a boolean"
                ))),
            },
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<T>().map(Some).map_err(|_| {
                ApiError::invalid(format!(
                    "invalid value for query parameter '{name}': '{v}' is not a valid number"
                ))
            }),
        }
    }

    fn pretty(&self) -> bool {
        // A bad `pretty` value is not worth failing a request over.
        self.flag("pretty").unwrap_or(false)
    }

    fn namespace(&self) -> String {
        match self.get("namespace") {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => DEFAULT_NAMESPACE.to_string(),
        }
    }

    fn list_options(&self) -> Result<ListOptions, ApiError> {
        Ok(ListOptions {
            limit: self.number::<u32>("limit")?.unwrap_or(0),
            next_token: self.string("next_token"),
            order_by: self.string("order_by"),
            reverse: self.flag("reverse")?,
            namespace: self.namespace(),
            labels: self.all("labels"),
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Bodies and answers

/// A JSON answer, pretty-printed on request.
fn json<T: Serialize>(pretty: bool, value: &T) -> ApiResult {
    let encoded = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .map_err(|e| {
        ApiError::from_error(bh_models::Error::internal(format!(
            "cannot encode answer: {e}"
        )))
    })?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        encoded,
    )
        .into_response())
}

/// The request body, or the 413/400 error for a body that is too large or unreadable.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::with_status(
                status,
                ErrorCode::InvalidArgument.as_str(),
                format!("request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::invalid(format!(
                "cannot read request body: {}",
                rejection.body_text()
            ))
        }
    })
}

/// The body as a JSON object; `None` for an empty body.
fn json_object(
    bytes: &[u8],
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::invalid("request body: expected a JSON object")),
        Err(e) => Err(ApiError::invalid(format!(
            "request body: malformed JSON: {e}"
        ))),
    }
}

/// A key of a JSON object compared case-insensitively, as Go's JSON decoding does (exact match first).
fn field<'a>(
    obj: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'a serde_json::Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn string_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<String, ApiError> {
    match field(obj, name) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid(format!("{name}: expected a string"))),
    }
}

fn bool_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<bool, ApiError> {
    match field(obj, name) {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(format!("{name}: expected a boolean"))),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Orchestrator: jobs

async fn put_job(
    State(api): State<Api>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let bytes = body_bytes(body)?;
    let obj = json_object(&bytes)?
        .ok_or_else(|| ApiError::invalid("request body: missing; expected {\"Job\":{...}}"))?;
    let job = match field(&obj, "Job") {
        Some(job @ serde_json::Value::Object(_)) => job.clone(),
        Some(serde_json::Value::Null) | None => {
            return Err(ApiError::invalid("Job: missing from the request body"))
        }
        Some(_) => return Err(ApiError::invalid("Job: expected a JSON object")),
    };
    let req = PutJobRequest {
        job,
        force: bool_field(&obj, "Force")?,
    };
    let namespace_hint = q.string("namespace");
    let answer = api.put_job(&namespace_hint, req).await?;
    json(q.pretty(), &answer)
}

async fn list_jobs(State(api): State<Api>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let answer = api.list_jobs(q.list_options()?).await?;
    json(q.pretty(), &answer)
}

async fn get_job(State(api): State<Api>, Path(id): Path<String>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let mut opts = GetJobOptions::default();
    for include in q.all("include") {
        for part in include.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "history" => opts.include_history = true,
                "executions" => opts.include_executions = true,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "invalid value for query parameter 'include': '{part}' (expected history or executions)"
                    )))
                }
            }
        }
    }
    opts.wait_after_revision = q.number::<u64>("wait_after_revision")?;
    let wait_secs = q.number::<u64>("wait_timeout_secs")?;
    if opts.wait_after_revision.is_some() {
        let wait = wait_secs
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LONG_POLL);
        opts.wait = Some(wait.min(MAX_LONG_POLL));
    }
    let answer = api.get_job(&q.namespace(), &id, opts).await?;
    json(q.pretty(), &answer)
}

async fn stop_job(
    State(api): State<Api>,
    Path(id): Path<String>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let bytes = body_bytes(body)?;
    let mut reason = q.string("reason");
    if let Some(obj) = json_object(&bytes)? {
        let from_body = string_field(&obj, "reason")?;
        if !from_body.is_empty() {
            reason = from_body;
        }
    }
    let answer = api.stop_job(&q.namespace(), &id, &reason).await?;
    json(q.pretty(), &answer)
}

async fn job_executions(State(api): State<Api>, Path(id): Path<String>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let answer = api
        .job_executions(&q.namespace(), &id, q.list_options()?)
        .await?;
    json(q.pretty(), &answer)
}

async fn job_history(State(api): State<Api>, Path(id): Path<String>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let event_type = q.string("event_type").to_ascii_lowercase();
    if !matches!(event_type.as_str(), "" | "all" | "job" | "execution") {
        return Err(ApiError::invalid(format!(
            "invalid value for query parameter 'event_type': '{event_type}' (expected all, job or execution)"
        )));
    }
    let opts = HistoryOptions {
        list: q.list_options()?,
        since: q.number::<i64>("since")?.unwrap_or(0),
        event_type,
        execution_id: q.string("execution_id"),
        node_id: q.string("node_id"),
    };
    let answer = api.job_history(&q.namespace(), &id, opts).await?;
    json(q.pretty(), &answer)
}

async fn job_results(State(api): State<Api>, Path(id): Path<String>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let answer = api.job_results(&q.namespace(), &id).await?;
    json(q.pretty(), &answer)
}

// ---------------------------------------------------------------------------------------------------------
// Orchestrator: nodes

async fn list_nodes(State(api): State<Api>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let opts = NodeListOptions {
        list: q.list_options()?,
        filter_approval: q.string("filter-approval"),
        filter_status: q.string("filter-status"),
    };
    let answer = api.list_nodes(opts).await?;
    json(q.pretty(), &answer)
}

async fn get_node(State(api): State<Api>, Path(id): Path<String>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let answer = api.get_node(&id).await?;
    json(q.pretty(), &answer)
}

fn node_request(bytes: &[u8]) -> Result<PutNodeRequest, ApiError> {
    let obj = json_object(bytes)?.ok_or_else(|| {
        ApiError::invalid("request body: missing; expected {\"Action\":...,\"NodeID\":...}")
    })?;
    Ok(PutNodeRequest {
        action: string_field(&obj, "Action")?,
        message: string_field(&obj, "Message")?,
        node_id: string_field(&obj, "NodeID")?,
    })
}

async fn update_node(
    State(api): State<Api>,
    Path(id): Path<String>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let mut req = node_request(&body_bytes(body)?)?;
    if req.node_id.is_empty() {
        req.node_id = id.clone();
    }
    let answer = api.update_node(&id, req).await?;
    json(q.pretty(), &answer)
}

/// `PUT|POST /nodes` with the node named in the body (the shape older clients send).
async fn update_node_from_body(
    State(api): State<Api>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    let req = node_request(&body_bytes(body)?)?;
    if req.node_id.is_empty() {
        return Err(ApiError::invalid("NodeID: missing from the request body"));
    }
    let id = req.node_id.clone();
    let answer = api.update_node(&id, req).await?;
    json(q.pretty(), &answer)
}

// ---------------------------------------------------------------------------------------------------------
// Agent

async fn alive(uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    json(
        q.pretty(),
        &IsAliveResponse {
            status: "OK".to_string(),
        },
    )
}

async fn version(uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    json(
        q.pretty(),
        &serde_json::json!({ "BuildVersionInfo": BuildVersionInfo::current() }),
    )
}

async fn agent_node(State(api): State<Arc<dyn AgentApi>>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    json(q.pretty(), &api.agent_node())
}

async fn agent_config(State(api): State<Arc<dyn AgentApi>>, uri: Uri) -> ApiResult {
    let q = QueryParams::parse(&uri)?;
    json(
        q.pretty(),
        &serde_json::json!({ "config": api.agent_config() }),
    )
}

// ---------------------------------------------------------------------------------------------------------
// Everything else

async fn requester_gone() -> ApiError {
    ApiError::with_status(
        StatusCode::GONE,
        ErrorCode::NotFound.as_str(),
        "the requester API (/api/v1/requester) was removed in v1.4.0; use /api/v1/orchestrator instead",
    )
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::from_error(bh_models::Error::not_found(format!(
        "no route for {method} {}",
        uri.path()
    )))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("method {method} is not allowed on {}", uri.path()),
    )
}
