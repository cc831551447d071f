//! Black-box tests of the `bh` binary against the real REST gateway (`bh_transport::router`) serving an
//! in-memory orchestrator whose jobs finish at once: exit codes, stdout/stderr split, error lines.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bh_models::api::{
    GetJobResponse, GetNodeResponse, ListExecutionsResponse, ListHistoryResponse, ListJobsResponse,
    ListNodesResponse, ListOptions, ListResultsResponse, PutJobRequest, PutJobResponse,
    PutNodeRequest, PutNodeResponse, StopJobResponse,
};
use bh_models::{
    Error, Execution, ExecutionStateType, Job, JobStateType, NodeInfo, NodeState, Result,
    RunCommandResult, State,
};
use bh_transport::service::{
    AgentApi, GetJobOptions, HistoryOptions, NodeListOptions, OrchestratorApi,
};

/// Jobs run instantly: image `fail` fails with exit code 2, image `running` stays Running, anything else prints a
/// greeting.
#[derive(Default)]
struct InstantOrchestrator {
    jobs: Mutex<BTreeMap<String, (Job, Vec<Execution>)>>,
}

impl InstantOrchestrator {
    fn find(&self, id: &str) -> Result<(Job, Vec<Execution>)> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values()
            .find(|(j, _)| j.id == id || j.id.starts_with(id) || j.name == id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("job not found: {id}")))
    }
}

#[async_trait]
impl OrchestratorApi for InstantOrchestrator {
    async fn put_job(&self, _ns: &str, req: PutJobRequest) -> Result<PutJobResponse> {
        let mut job = bh_models::job_from_value(req.job)?;
        let mut jobs = self.jobs.lock().unwrap();
        job.id = format!("j-{:08}-0000-0000-0000-000000000000", jobs.len() + 1);
        job.revision = 2;
        let image = job
            .task()
            .and_then(|t| t.engine.param_str("Image"))
            .unwrap_or("wasm")
            .to_string();
        let failed = image == "fail";
        job.state = State::new(
            if failed {
                JobStateType::Failed
            } else if image == "running" {
                JobStateType::Running
            } else {
                JobStateType::Completed
            },
            if failed { "execution failed" } else { "" },
        );
        let execution = Execution {
            id: "e-1".into(),
            node_id: "n-1".into(),
            job_id: job.id.clone(),
            compute_state: State::new(
                if failed {
                    ExecutionStateType::Failed
                } else {
                    ExecutionStateType::Completed
                },
                if failed { "exit status 2" } else { "" },
            ),
            run_output: Some(RunCommandResult {
                stdout: if failed {
                    String::new()
                } else {
                    format!("hello from {image}\n")
                },
                stderr: if failed {
                    "boom\n".into()
                } else {
                    String::new()
                },
                exit_code: if failed { 2 } else { 0 },
                ..RunCommandResult::default()
            }),
            ..Execution::default()
        };
        let id = job.id.clone();
        jobs.insert(id.clone(), (job, vec![execution]));
        Ok(PutJobResponse {
            job_id: id,
            evaluation_id: "v-1".into(),
            warnings: vec![],
        })
    }
    async fn get_job(&self, _ns: &str, id: &str, opts: GetJobOptions) -> Result<GetJobResponse> {
        let (job, executions) = self.find(id)?;
        Ok(GetJobResponse {
            job,
            history: opts.include_history.then(Vec::new),
            executions: opts.include_executions.then_some(executions),
        })
    }
    async fn list_jobs(&self, _opts: ListOptions) -> Result<ListJobsResponse> {
        let jobs = self.jobs.lock().unwrap();
        Ok(ListJobsResponse {
            items: jobs.values().map(|(j, _)| j.clone()).collect(),
            next_token: String::new(),
        })
    }
    async fn stop_job(&self, _ns: &str, id: &str, _reason: &str) -> Result<StopJobResponse> {
        self.find(id)?;
        Ok(StopJobResponse {
            evaluation_id: "v-2".into(),
        })
    }
    async fn job_executions(
        &self,
        _ns: &str,
        id: &str,
        _opts: ListOptions,
    ) -> Result<ListExecutionsResponse> {
        Ok(ListExecutionsResponse {
            items: self.find(id)?.1,
            next_token: String::new(),
        })
    }
    async fn job_history(
        &self,
        _ns: &str,
        id: &str,
        _opts: HistoryOptions,
    ) -> Result<ListHistoryResponse> {
        self.find(id)?;
        Ok(ListHistoryResponse::default())
    }
    async fn job_results(&self, _ns: &str, _id: &str) -> Result<ListResultsResponse> {
        Ok(ListResultsResponse::default())
    }
    async fn list_nodes(&self, _opts: NodeListOptions) -> Result<ListNodesResponse> {
        Ok(ListNodesResponse {
            nodes: vec![node()],
            next_token: String::new(),
        })
    }
    async fn get_node(&self, id: &str) -> Result<GetNodeResponse> {
        if id == "n-1" {
            Ok(GetNodeResponse { node: node() })
        } else {
            Err(Error::not_found(format!("node not found: {id}")))
        }
    }
    async fn update_node(&self, _id: &str, _req: PutNodeRequest) -> Result<PutNodeResponse> {
        Ok(PutNodeResponse {
            success: true,
            error: String::new(),
        })
    }
}

impl AgentApi for InstantOrchestrator {
    fn agent_node(&self) -> NodeInfo {
        node().info
    }
    fn agent_config(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

fn node() -> NodeState {
    let mut state = NodeState {
        info: NodeInfo {
            node_id: "n-1".into(),
            node_type: "Compute".into(),
            ..NodeInfo::default()
        },
        membership: "APPROVED".into(),
        ..NodeState::default()
    };
    state.connection_state.status = "CONNECTED".into();
    state
}

/// Serves the gateway on a free local port from a background runtime; returns the port.
fn start_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let router = bh_transport::router(Arc::new(InstantOrchestrator::default()));
            axum::serve(listener, router).await.unwrap();
        });
    });
    port
}

fn bh(port: u16, args: &[&str]) -> Output {
    bh_with_stdin(port, args, None)
}

fn bh_with_stdin(port: u16, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bh"));
    cmd.args(["--api-port", &port.to_string()])
        .args(args)
        .env_remove("BH_API_HOST")
        .env_remove("BACALHAU_API_HOST")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SPEC: &str = "Name: {{.name}}\nType: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params:\n        Image: {{.image}}\n";

#[test]
fn job_run_prints_the_job_output_on_stdout_only() {
    let port = start_server();
    let out = bh_with_stdin(
        port,
        &["job", "run", "-", "-V", "name=hello", "-V", "image=busybox"],
        Some(SPEC),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from busybox\n");
    assert!(text(&out.stderr).contains("Job successfully submitted. Job ID: j-"));
}

#[test]
fn job_run_id_only_prints_only_the_id() {
    let port = start_server();
    let out = bh_with_stdin(
        port,
        &["job", "run", "-", "--id-only", "-V", "name=a,image=x"],
        Some(SPEC),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("j-") && stdout.lines().count() == 1,
        "{stdout}"
    );
}

#[test]
fn job_run_missing_template_variable_is_one_error_line() {
    let port = start_server();
    let out = bh_with_stdin(port, &["job", "run", "-", "-V", "name=a"], Some(SPEC));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("Error: ") && stderr.contains("\"image\""),
        "{stderr}"
    );
}

#[test]
fn failed_job_reports_exit_code_and_stderr_and_exits_nonzero() {
    let port = start_server();
    let out = bh(port, &["docker", "run", "fail"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Error: job j-"), "{stderr}");
    assert!(
        stderr.contains("exit code: 2") && stderr.contains("boom"),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn docker_run_waits_and_prints_output() {
    let port = start_server();
    let out = bh(port, &["docker", "run", "ubuntu", "--", "echo", "hi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from ubuntu\n");
}

#[test]
fn run_accepts_upstreams_follow_and_node_details_flags() {
    let port = start_server();
    let out = bh(
        port,
        &[
            "docker",
            "run",
            "-f",
            "--node-details",
            "--wait=false",
            "ubuntu",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from ubuntu\n");
}

#[test]
fn docker_run_dry_run_needs_no_server_and_prints_yaml() {
    let out = bh(1, &["docker", "run", "--dry-run", "ubuntu", "echo", "hi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Image: ubuntu") && stdout.contains("Type: batch"),
        "{stdout}"
    );
}

#[test]
fn bad_flag_value_is_one_line_naming_the_flag() {
    let out = bh(1, &["docker", "run", "--workdir", "rel", "ubuntu"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: invalid value 'rel' for --workdir: must be an absolute path\n"
    );
}

#[test]
fn unknown_job_prints_the_server_message() {
    let port = start_server();
    let out = bh(port, &["job", "describe", "j-nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "Error: job not found: j-nope\n");
}

#[test]
fn list_describe_and_json_outputs() {
    let port = start_server();
    let id = text(
        &bh(
            port,
            &["docker", "run", "--id-only", "--wait=false", "alpine"],
        )
        .stdout,
    )
    .trim()
    .to_string();
    let list = text(&bh(port, &["job", "list"]).stdout);
    assert!(list.trim_start().starts_with("CREATED"), "{list}");
    assert!(
        list.contains(&id[..10]) && list.contains("docker"),
        "{list}"
    );
    let json = text(&bh(port, &["job", "list", "--output", "json"]).stdout);
    let items: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(items[0]["ID"], id.as_str());
    let describe = text(&bh(port, &["job", "describe", &id]).stdout);
    assert!(
        describe.contains(&format!("ID            = {id}")),
        "{describe}"
    );
    assert!(describe.contains("hello from alpine"), "{describe}");
    let described = text(&bh(port, &["job", "describe", &id, "--output", "json"]).stdout);
    let value: serde_json::Value = serde_json::from_str(&described).unwrap();
    assert_eq!(value["Job"]["ID"], id.as_str());
    assert!(value["Executions"]["Items"].is_array(), "{described}");
    let executions = text(&bh(port, &["job", "executions", &id]).stdout);
    assert!(executions.contains("Completed"), "{executions}");
    // As upstream: a job that already ended is not stopped.
    let stop = bh(port, &["job", "stop", &id, "--quiet"]);
    assert_eq!(stop.status.code(), Some(1));
    assert_eq!(
        text(&stop.stderr),
        "Error: Job is already in a terminal state. The current state is: Completed\n"
    );
}

#[test]
fn job_stop_prints_upstream_confirmation() {
    let port = start_server();
    let id = text(
        &bh(
            port,
            &["docker", "run", "--id-only", "--wait=false", "running"],
        )
        .stdout,
    )
    .trim()
    .to_string();
    let stop = bh(port, &["job", "stop", &id]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    assert_eq!(
        text(&stop.stdout),
        "Job stop successfully submitted with evaluation ID: v-2\n"
    );
    let quiet = bh(port, &["job", "stop", &id[..10], "--quiet"]);
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert!(quiet.stdout.is_empty() && quiet.stderr.is_empty());
}

#[test]
fn node_and_agent_commands() {
    let port = start_server();
    let nodes = text(&bh(port, &["node", "list"]).stdout);
    let header: Vec<&str> = nodes.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "TYPE", "APPROVAL", "STATUS", "LABELS", "CPU", "MEMORY", "DISK", "GPU"]
    );
    assert!(
        nodes.contains("n-1") && nodes.contains("APPROVED"),
        "{nodes}"
    );
    let approve = bh(port, &["node", "approve", "n-1", "-m", "ok"]);
    assert!(approve.status.success(), "{}", text(&approve.stderr));
    assert_eq!(text(&bh(port, &["agent", "alive"]).stdout), "Status: OK\n");
    let version = text(&bh(port, &["agent", "version", "--output", "json"]).stdout);
    let value: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert!(value["GitVersion"].is_string(), "{version}");
    // Without --output: upstream's three lines.
    let version = text(&bh(port, &["agent", "version"]).stdout);
    assert!(version.starts_with("Bacalhau v"), "{version}");
    assert!(version.contains("\nGitCommit "), "{version}");
    let missing = bh(port, &["node", "describe", "n-404"]);
    assert_eq!(text(&missing.stderr), "Error: node not found: n-404\n");
}

#[test]
fn unreachable_server_is_one_error_line() {
    let out = bh(1, &["agent", "alive"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("Error: "), "{stderr}");
}
