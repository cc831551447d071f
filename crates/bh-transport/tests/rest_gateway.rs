//! The REST gateway and the typed client over a loopback listener, with a test fake behind the router.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bh_models::api::{
    GetJobResponse, GetNodeResponse, ListExecutionsResponse, ListHistoryResponse, ListJobsResponse,
    ListNodesResponse, ListOptions, ListResultsResponse, PutJobRequest, PutJobResponse,
    PutNodeRequest, PutNodeResponse, StopJobResponse,
};
use bh_models::{
    BuildVersionInfo, Error, ErrorCode, Job, JobStateType, NodeInfo, NodeState, Result, SpecConfig,
    State,
};
use bh_transport::service::{
    AgentApi, GetJobOptions, HistoryOptions, NodeListOptions, OrchestratorApi,
};
use bh_transport::{router, Client};
use serde_json::{json, Value};

/// What the gateway handed to the API, recorded by the fake.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    PutJob(String, PutJobRequest),
    GetJob(String, String, GetJobOptions),
    ListJobs(ListOptions),
    StopJob(String, String, String),
    Executions(String, String, ListOptions),
    History(String, String, HistoryOptions),
    Results(String, String),
    ListNodes(NodeListOptions),
    GetNode(String),
    UpdateNode(String, PutNodeRequest),
}

/// TEST FAKE (routing and shapes only): canned answers, and a record of every call the gateway made.
/// Job `j-wait` moves one revision per long poll and completes at revision 3; `missing` is not found.
#[derive(Default)]
struct FakeApi {
    calls: Mutex<Vec<Call>>,
}

impl FakeApi {
    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
    fn last(&self) -> Call {
        self.calls.lock().unwrap().last().cloned().expect("no call")
    }
    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

fn job(id: &str, revision: u64, state: JobStateType) -> Job {
    Job {
        id: id.into(),
        name: id.into(),
        namespace: "default".into(),
        job_type: "batch".into(),
        revision,
        state: State::new(state, ""),
        ..Default::default()
    }
}

#[async_trait]
impl OrchestratorApi for FakeApi {
    async fn put_job(&self, namespace_hint: &str, req: PutJobRequest) -> Result<PutJobResponse> {
        self.record(Call::PutJob(namespace_hint.into(), req.clone()));
        if req.job.get("Name") == Some(&json!("taken")) {
            return Err(Error::conflict("no changes detected for job taken"));
        }
        Ok(PutJobResponse {
            job_id: "j-new".into(),
            evaluation_id: "ev-1".into(),
            warnings: vec!["careful".into()],
        })
    }
    async fn get_job(
        &self,
        namespace: &str,
        id: &str,
        opts: GetJobOptions,
    ) -> Result<GetJobResponse> {
        self.record(Call::GetJob(namespace.into(), id.into(), opts.clone()));
        match id {
            "missing" => Err(Error::not_found("job missing not found")),
            "j-wait" => {
                let revision = opts.wait_after_revision.map(|r| r + 1).unwrap_or(1);
                let state = if revision >= 3 {
                    JobStateType::Completed
                } else {
                    JobStateType::Running
                };
                Ok(GetJobResponse {
                    job: job(id, revision, state),
                    ..Default::default()
                })
            }
            _ => Ok(GetJobResponse {
                job: job(id, 1, JobStateType::Running),
                history: opts.include_history.then(Vec::new),
                executions: opts.include_executions.then(Vec::new),
            }),
        }
    }
    async fn list_jobs(&self, opts: ListOptions) -> Result<ListJobsResponse> {
        self.record(Call::ListJobs(opts));
        Ok(ListJobsResponse {
            items: vec![job("j-1", 1, JobStateType::Pending)],
            next_token: "t2".into(),
        })
    }
    async fn stop_job(&self, namespace: &str, id: &str, reason: &str) -> Result<StopJobResponse> {
        self.record(Call::StopJob(namespace.into(), id.into(), reason.into()));
        Ok(StopJobResponse {
            evaluation_id: "ev-stop".into(),
        })
    }
    async fn job_executions(
        &self,
        namespace: &str,
        id: &str,
        opts: ListOptions,
    ) -> Result<ListExecutionsResponse> {
        self.record(Call::Executions(namespace.into(), id.into(), opts));
        Ok(ListExecutionsResponse::default())
    }
    async fn job_history(
        &self,
        namespace: &str,
        id: &str,
        opts: HistoryOptions,
    ) -> Result<ListHistoryResponse> {
        self.record(Call::History(namespace.into(), id.into(), opts));
        Ok(ListHistoryResponse::default())
    }
    async fn job_results(&self, namespace: &str, id: &str) -> Result<ListResultsResponse> {
        self.record(Call::Results(namespace.into(), id.into()));
        Ok(ListResultsResponse {
            items: vec![SpecConfig::new("local").with_param("URL", "http://x")],
            ..Default::default()
        })
    }
    async fn list_nodes(&self, opts: NodeListOptions) -> Result<ListNodesResponse> {
        self.record(Call::ListNodes(opts));
        Ok(ListNodesResponse {
            nodes: vec![NodeState::default()],
            ..Default::default()
        })
    }
    async fn get_node(&self, id: &str) -> Result<GetNodeResponse> {
        self.record(Call::GetNode(id.into()));
        if id == "missing" {
            return Err(Error::not_found("node missing not found"));
        }
        Ok(GetNodeResponse::default())
    }
    async fn update_node(&self, id: &str, req: PutNodeRequest) -> Result<PutNodeResponse> {
        self.record(Call::UpdateNode(id.into(), req));
        Ok(PutNodeResponse {
            success: true,
            error: String::new(),
        })
    }
}

impl AgentApi for FakeApi {
    fn agent_node(&self) -> NodeInfo {
        NodeInfo {
            node_id: "n-orch".into(),
            node_type: "Requester".into(),
            ..Default::default()
        }
    }
    fn agent_config(&self) -> Value {
        json!({"API": {"Port": 1234}})
    }
}

struct Gateway {
    api: Arc<FakeApi>,
    base: String,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

async fn start() -> Gateway {
    let api = Arc::new(FakeApi::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(api.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Gateway {
        api,
        base,
        http,
        _server: server,
    }
}

impl Gateway {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.send(reqwest::Method::GET, path, None).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Asserts upstream's error body shape and returns its message.
fn assert_error_body(body: &Value, status: u16, code: &str) -> String {
    assert_eq!(body["Status"], json!(status), "{body}");
    assert_eq!(body["Code"], json!(code), "{body}");
    assert_eq!(body["Component"], json!("APIServer"), "{body}");
    let request_id = body["RequestID"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{body}");
    body["Message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn agent_endpoints_answer_upstream_shapes() {
    let gw = start().await;
    assert_eq!(
        gw.get("/api/v1/agent/alive").await,
        (200, json!({"Status": "OK"}))
    );
    let (status, body) = gw.get("/api/v1/agent/version").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["BuildVersionInfo"],
        serde_json::to_value(BuildVersionInfo::current()).unwrap()
    );
    let (status, body) = gw.get("/api/v1/agent/node").await;
    assert_eq!((status, body["NodeID"].clone()), (200, json!("n-orch")));
    assert_eq!(
        gw.get("/api/v1/agent/config").await,
        (200, json!({"config": {"API": {"Port": 1234}}}))
    );
}

#[tokio::test]
async fn put_job_accepts_put_and_post_and_any_case_of_job() {
    let gw = start().await;
    let (status, text) = gw
        .send(
            reqwest::Method::PUT,
            "/api/v1/orchestrator/jobs",
            Some(r#"{"Job":{"Type":"batch"},"Force":true}"#),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({"JobID": "j-new", "EvaluationID": "ev-1", "Warnings": ["careful"]})
    );
    assert_eq!(
        gw.api.last(),
        Call::PutJob(
            String::new(),
            PutJobRequest {
                job: json!({"Type": "batch"}),
                force: true
            }
        )
    );

    let (status, _) = gw
        .send(
            reqwest::Method::POST,
            "/api/v1/orchestrator/jobs?namespace=team",
            Some(r#"{"job":{"name":"x"}}"#),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        gw.api.last(),
        Call::PutJob(
            "team".into(),
            PutJobRequest {
                job: json!({"name": "x"}),
                force: false
            }
        )
    );

    let (status, text) = gw
        .send(
            reqwest::Method::PUT,
            "/api/v1/orchestrator/jobs",
            Some(r#"{"Job":{"Name":"taken"}}"#),
        )
        .await;
    assert_eq!(status, 409);
    assert_error_body(&serde_json::from_str(&text).unwrap(), 409, "Conflict");
}

#[tokio::test]
async fn bad_bodies_are_400_with_the_error_body() {
    let gw = start().await;
    let before = gw.api.count();
    for (body, needle) in [
        (r#"{"Job": {"#, "malformed JSON"),
        (r#"[1,2]"#, "expected a JSON object"),
        (r#"{"Force":true}"#, "Job"),
        (r#"{"Job":"text"}"#, "Job"),
        (r#"{"Job":{},"Force":"yes"}"#, "Force"),
        ("", "missing"),
    ] {
        let (status, text) = gw
            .send(
                reqwest::Method::PUT,
                "/api/v1/orchestrator/jobs",
                Some(body),
            )
            .await;
        assert_eq!(status, 400, "{body}: {text}");
        let message = assert_error_body(&serde_json::from_str(&text).unwrap(), 400, "BadRequest");
        assert!(message.contains(needle), "{body}: {message}");
    }
    let (status, text) = gw
        .send(
            reqwest::Method::PUT,
            "/api/v1/orchestrator/nodes/n-1",
            Some("{oops"),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(gw.api.count(), before, "no bad request reaches the api");
}

#[tokio::test]
async fn oversized_bodies_are_413_with_the_error_body() {
    let gw = start().await;
    let huge = format!(
        r#"{{"Job":{{"Name":"{}"}}}}"#,
        "x".repeat(bh_transport::MAX_BODY_BYTES + 1)
    );
    let (status, text) = gw
        .send(
            reqwest::Method::PUT,
            "/api/v1/orchestrator/jobs",
            Some(&huge),
        )
        .await;
    assert_eq!(status, 413);
    let message = assert_error_body(&serde_json::from_str(&text).unwrap(), 413, "BadRequest");
    assert!(message.contains("larger than"), "{message}");
}

#[tokio::test]
async fn list_parameters_are_parsed() {
    let gw = start().await;
    let (status, body) = gw
        .get("/api/v1/orchestrator/jobs?namespace=*&limit=5&next_token=abc&order_by=created_at&reverse&labels=a%3Db&labels=c%20in%20(d)")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["NextToken"], json!("t2"));
    assert_eq!(
        gw.api.last(),
        Call::ListJobs(ListOptions {
            limit: 5,
            next_token: "abc".into(),
            order_by: "created_at".into(),
            reverse: true,
            namespace: "*".into(),
            labels: vec!["a=b".into(), "c in (d)".into()],
        })
    );
    gw.get("/api/v1/orchestrator/jobs?reverse=false").await;
    assert_eq!(
        gw.api.last(),
        Call::ListJobs(ListOptions {
            namespace: "default".into(),
            ..Default::default()
        })
    );
}

#[tokio::test]
async fn bad_query_values_are_400_naming_the_parameter() {
    let gw = start().await;
    let before = gw.api.count();
    for (path, param) in [
        ("/api/v1/orchestrator/jobs?limit=abc", "limit"),
        ("/api/v1/orchestrator/jobs?limit=-1", "limit"),
        ("/api/v1/orchestrator/jobs?reverse=maybe", "reverse"),
        (
            "/api/v1/orchestrator/jobs/j-1?include=everything",
            "include",
        ),
        (
            "/api/v1/orchestrator/jobs/j-1?wait_after_revision=x",
            "wait_after_revision",
        ),
        (
            "/api/v1/orchestrator/jobs/j-1/history?since=yesterday",
            "since",
        ),
        (
            "/api/v1/orchestrator/jobs/j-1/history?event_type=node",
            "event_type",
        ),
        ("/api/v1/orchestrator/nodes?limit=1.5", "limit"),
    ] {
        let (status, body) = gw.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = assert_error_body(&body, 400, "BadRequest");
        assert!(message.contains(&format!("'{param}'")), "{path}: {message}");
    }
    assert_eq!(gw.api.count(), before);
}

#[tokio::test]
async fn job_endpoints_pass_their_parameters() {
    let gw = start().await;
    let (status, body) = gw
        .get("/api/v1/orchestrator/jobs/j-1?include=history&include=executions&namespace=ns")
        .await;
    assert_eq!(status, 200);
    // Upstream nests list answers here (`ListJobExecutionsResponse`, `ListJobHistoryResponse`).
    assert_eq!(body["Executions"], json!({"Items": [], "NextToken": ""}));
    assert_eq!(body["History"], json!({"Items": [], "NextToken": ""}));
    assert_eq!(
        gw.api.last(),
        Call::GetJob(
            "ns".into(),
            "j-1".into(),
            GetJobOptions {
                include_history: true,
                include_executions: true,
                ..Default::default()
            }
        )
    );

    gw.get("/api/v1/orchestrator/jobs/j-1?wait_after_revision=7&wait_timeout_secs=5")
        .await;
    assert_eq!(
        gw.api.last(),
        Call::GetJob(
            "default".into(),
            "j-1".into(),
            GetJobOptions {
                wait_after_revision: Some(7),
                wait: Some(Duration::from_secs(5)),
                ..Default::default()
            }
        )
    );

    let (status, body) = gw.get("/api/v1/orchestrator/jobs/missing").await;
    assert_eq!(status, 404);
    assert_eq!(
        assert_error_body(&body, 404, "NotFound"),
        "job missing not found"
    );

    let (status, text) = gw
        .send(
            reqwest::Method::DELETE,
            "/api/v1/orchestrator/jobs/j-1?reason=from%20query",
            None,
        )
        .await;
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"EvaluationID":"ev-stop"}"#)
    );
    assert_eq!(
        gw.api.last(),
        Call::StopJob("default".into(), "j-1".into(), "from query".into())
    );
    gw.send(
        reqwest::Method::DELETE,
        "/api/v1/orchestrator/jobs/j-1",
        Some(r#"{"reason":"from body"}"#),
    )
    .await;
    assert_eq!(
        gw.api.last(),
        Call::StopJob("default".into(), "j-1".into(), "from body".into())
    );

    gw.get("/api/v1/orchestrator/jobs/j-1/executions?limit=2&order_by=id")
        .await;
    assert_eq!(
        gw.api.last(),
        Call::Executions(
            "default".into(),
            "j-1".into(),
            ListOptions {
                limit: 2,
                order_by: "id".into(),
                namespace: "default".into(),
                ..Default::default()
            }
        )
    );
    gw.get("/api/v1/orchestrator/jobs/j-1/history?since=10&event_type=execution&execution_id=e-1&node_id=n-1").await;
    assert_eq!(
        gw.api.last(),
        Call::History(
            "default".into(),
            "j-1".into(),
            HistoryOptions {
                list: ListOptions {
                    namespace: "default".into(),
                    ..Default::default()
                },
                since: 10,
                event_type: "execution".into(),
                execution_id: "e-1".into(),
                node_id: "n-1".into(),
            }
        )
    );
    let (status, body) = gw.get("/api/v1/orchestrator/jobs/j-1/results").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["Items"][0],
        json!({"Type": "local", "Params": {"URL": "http://x"}})
    );
}

#[tokio::test]
async fn node_endpoints_pass_their_parameters() {
    let gw = start().await;
    let (status, body) = gw.get("/api/v1/orchestrator/nodes?filter-approval=PENDING&filter-status=CONNECTED&order_by=available_cpu&labels=zone%3Deu").await;
    assert_eq!(status, 200);
    assert_eq!(body["Nodes"].as_array().unwrap().len(), 1);
    assert_eq!(
        gw.api.last(),
        Call::ListNodes(NodeListOptions {
            list: ListOptions {
                order_by: "available_cpu".into(),
                namespace: "default".into(),
                labels: vec!["zone=eu".into()],
                ..Default::default()
            },
            filter_approval: "PENDING".into(),
            filter_status: "CONNECTED".into(),
        })
    );
    let (status, body) = gw.get("/api/v1/orchestrator/nodes/missing").await;
    assert_eq!(status, 404);
    assert_error_body(&body, 404, "NotFound");

    let (status, text) = gw
        .send(
            reqwest::Method::PUT,
            "/api/v1/orchestrator/nodes/n-1",
            Some(r#"{"action":"approve","Message":"ok"}"#),
        )
        .await;
    assert_eq!((status, text.as_str()), (200, r#"{"Success":true}"#));
    assert_eq!(
        gw.api.last(),
        Call::UpdateNode(
            "n-1".into(),
            PutNodeRequest {
                action: "approve".into(),
                message: "ok".into(),
                node_id: "n-1".into()
            }
        )
    );
}

#[tokio::test]
async fn requester_api_is_gone_and_unknown_routes_are_404() {
    let gw = start().await;
    for path in [
        "/api/v1/requester/list",
        "/api/v1/requester",
        "/api/v1/requester/jobs/j-1/x",
    ] {
        let (status, body) = gw.get(path).await;
        assert_eq!(status, 410, "{path}");
        assert!(assert_error_body(&body, 410, "NotFound").contains("/api/v1/orchestrator"));
    }
    let (status, text) = gw
        .send(
            reqwest::Method::POST,
            "/api/v1/requester/submit",
            Some("{}"),
        )
        .await;
    assert_eq!(status, 410, "{text}");

    for path in [
        "/api/v1/nope",
        "/api/v1/orchestrator/nope",
        "/api/v1/agent/nope/deeper",
    ] {
        let (status, body) = gw.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(assert_error_body(&body, 404, "NotFound").contains(path));
    }

    let (status, text) = gw
        .send(reqwest::Method::PATCH, "/api/v1/orchestrator/jobs", None)
        .await;
    assert_eq!(status, 405, "{text}");
    assert_error_body(
        &serde_json::from_str(&text).unwrap(),
        405,
        "MethodNotAllowed",
    );
}

#[tokio::test]
async fn redirects_and_pretty_printing() {
    let gw = start().await;
    for (path, target) in [
        ("/", "/api/v1/agent/version"),
        ("/version", "/api/v1/agent/version"),
        ("/livez", "/api/v1/agent/alive"),
    ] {
        let resp = gw
            .http
            .get(format!("{}{path}", gw.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 301, "{path}");
        assert_eq!(resp.headers()["location"], target, "{path}");
    }
    let (_, compact) = gw
        .send(reqwest::Method::GET, "/api/v1/agent/config", None)
        .await;
    assert!(!compact.contains('\n'));
    for path in [
        "/api/v1/agent/config?pretty",
        "/api/v1/agent/config?pretty=true",
        "/api/v1/orchestrator/jobs?pretty",
    ] {
        let (status, text) = gw.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200);
        assert!(text.contains("\n  "), "{path}: {text}");
    }
    let (_, text) = gw
        .send(
            reqwest::Method::GET,
            "/api/v1/agent/config?pretty=false",
            None,
        )
        .await;
    assert!(!text.contains('\n'));
}

#[tokio::test]
async fn typed_client_speaks_to_the_router() {
    let gw = start().await;
    let client = Client::new(&gw.base).unwrap();
    assert_eq!(client.alive().await.unwrap().status, "OK");
    assert_eq!(client.version().await.unwrap(), BuildVersionInfo::current());
    assert_eq!(client.agent_node().await.unwrap().node_id, "n-orch");
    assert_eq!(
        client.agent_config().await.unwrap(),
        json!({"API": {"Port": 1234}})
    );

    let req = PutJobRequest {
        job: json!({"Type": "batch"}),
        force: true,
    };
    assert_eq!(client.put_job(&req).await.unwrap().job_id, "j-new");
    assert_eq!(gw.api.last(), Call::PutJob(String::new(), req));

    let opts = GetJobOptions {
        include_executions: true,
        ..Default::default()
    };
    let got = client.get_job("j-1", &opts, "ns").await.unwrap();
    assert_eq!(got.job.id, "j-1");
    assert_eq!(gw.api.last(), Call::GetJob("ns".into(), "j-1".into(), opts));

    let list = ListOptions {
        limit: 3,
        next_token: "n".into(),
        order_by: "modified_at".into(),
        reverse: true,
        namespace: "*".into(),
        labels: vec!["a=b".into(), "c!=d".into()],
    };
    assert_eq!(client.list_jobs(&list).await.unwrap().items.len(), 1);
    assert_eq!(gw.api.last(), Call::ListJobs(list.clone()));

    assert_eq!(
        client
            .stop_job("j-1", "ns", "enough")
            .await
            .unwrap()
            .evaluation_id,
        "ev-stop"
    );
    assert_eq!(
        gw.api.last(),
        Call::StopJob("ns".into(), "j-1".into(), "enough".into())
    );

    client.job_executions("j-1", &list).await.unwrap();
    assert_eq!(
        gw.api.last(),
        Call::Executions("*".into(), "j-1".into(), list.clone())
    );

    let history = HistoryOptions {
        list: ListOptions {
            namespace: "default".into(),
            ..Default::default()
        },
        since: 5,
        event_type: "job".into(),
        execution_id: "e-1".into(),
        node_id: "n-1".into(),
    };
    client.job_history("j-1", &history).await.unwrap();
    assert_eq!(
        gw.api.last(),
        Call::History("default".into(), "j-1".into(), history)
    );

    assert_eq!(client.job_results("j-1", "").await.unwrap().items.len(), 1);
    assert_eq!(gw.api.last(), Call::Results("default".into(), "j-1".into()));

    let nodes = NodeListOptions {
        list: ListOptions {
            limit: 1,
            namespace: "default".into(),
            ..Default::default()
        },
        filter_approval: "APPROVED".into(),
        filter_status: "DISCONNECTED".into(),
    };
    client.list_nodes(&nodes).await.unwrap();
    assert_eq!(gw.api.last(), Call::ListNodes(nodes));
    client.get_node("n-1").await.unwrap();
    assert_eq!(gw.api.last(), Call::GetNode("n-1".into()));
    let update = PutNodeRequest {
        action: "reject".into(),
        message: "bad".into(),
        node_id: "n-1".into(),
    };
    assert!(client.update_node("n-1", &update).await.unwrap().success);
    assert_eq!(gw.api.last(), Call::UpdateNode("n-1".into(), update));

    let err = client
        .get_job("missing", &GetJobOptions::default(), "")
        .await
        .unwrap_err();
    assert_eq!(err, Error::not_found("job missing not found"));
    let err = client
        .put_job(&PutJobRequest {
            job: json!({"Name": "taken"}),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
}

#[tokio::test]
async fn wait_for_job_long_polls_until_terminal() {
    let gw = start().await;
    let client = Client::new(&gw.base).unwrap();
    let before = gw.api.count();
    let done = client
        .wait_for_job("j-wait", "default", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.job.state.state_type, JobStateType::Completed);
    assert_eq!(done.job.revision, 3);
    // One plain read, then one long poll per revision.
    assert_eq!(gw.api.count() - before, 3);
    match gw.api.last() {
        Call::GetJob(_, _, opts) => {
            assert_eq!(opts.wait_after_revision, Some(2));
            assert!(opts.wait.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_orchestrator_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::from_host_port("127.0.0.1", addr.port()).unwrap();
    let err = client.alive().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert!(
        err.message.starts_with(&format!(
            "cannot reach orchestrator at http://127.0.0.1:{}: ",
            addr.port()
        )),
        "{}",
        err.message
    );
}
