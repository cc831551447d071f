//! End-to-end tests of the orchestrator runtime over a real sled job store, the real scheduler, a manual
//! clock and in-test FAKE compute nodes (they record ToCompute messages and answer with FromCompute).

use std::sync::Arc;
use std::time::Duration;

use bh_jobstore::{JobStore, SledJobStore};
use bh_models::api::{ListOptions, PutJobRequest, PutNodeRequest};
use bh_models::node::{CONNECTION_CONNECTED, CONNECTION_DISCONNECTED, MEMBERSHIP_APPROVED};
use bh_models::{
    ComputeNodeInfo, ErrorCode, ExecutionStateType, FromCompute, JobStateType, NodeInfo, Resources,
    RunCommandResult, SpecConfig, ToCompute,
};
use bh_scheduler::{
    Clock, JobScheduler, ManualClock, Orchestrator, OrchestratorConfig, SchedulerConfig,
};
use bh_transport::service::{GetJobOptions, NodeHub, NodeListOptions, OrchestratorApi};
use tokio::sync::mpsc;

const START: i64 = 1_700_000_000_000_000_000;

/// A FAKE compute node for tests: it records what the orchestrator sends and answers on command.
struct FakeNode {
    id: String,
    rx: mpsc::Receiver<ToCompute>,
}

impl FakeNode {
    /// Every message sent so far (sends happen before the orchestrator call that causes them returns).
    fn drain(&mut self) -> Vec<ToCompute> {
        let mut out = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            out.push(msg);
        }
        out
    }
}

fn node_info(id: &str) -> NodeInfo {
    let capacity = Resources {
        cpu: 4.0,
        memory: 8 << 30,
        disk: 100 << 30,
        gpu: 0,
        gpus: vec![],
    };
    NodeInfo {
        node_id: id.to_string(),
        node_type: "Compute".to_string(),
        compute_node_info: ComputeNodeInfo {
            execution_engines: vec!["docker".into(), "wasm".into()],
            publishers: vec!["noop".into(), "local".into()],
            max_capacity: capacity.clone(),
            available_capacity: capacity,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn job_spec(name: Option<&str>) -> serde_json::Value {
    let mut job = serde_json::json!({
        "Type": "batch",
        "Count": 1,
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "docker", "Params": {"Image": "busybox", "Entrypoint": ["echo", "hello"]}},
            "Publisher": {"Type": "noop"}
        }]
    });
    if let Some(name) = name {
        job["Name"] = serde_json::Value::String(name.to_string());
    }
    job
}

struct Harness {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clock: Arc<ManualClock>,
    orch: Arc<Orchestrator>,
}

fn test_config() -> OrchestratorConfig {
    OrchestratorConfig {
        background: false,
        timeout_grace: Duration::ZERO,
        ..OrchestratorConfig::default()
    }
}

async fn start_on(
    path: &std::path::Path,
    clock: Arc<ManualClock>,
    config: OrchestratorConfig,
) -> Arc<Orchestrator> {
    let store: Arc<dyn JobStore> = Arc::new(SledJobStore::open(path).unwrap());
    let scheduler = Arc::new(JobScheduler::new(SchedulerConfig::default()));
    Orchestrator::start(config, store, scheduler, clock as Arc<dyn Clock>)
        .await
        .unwrap()
}

impl Harness {
    async fn new() -> Self {
        Self::with_config(test_config()).await
    }

    async fn with_config(config: OrchestratorConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let clock = Arc::new(ManualClock::new(START));
        let orch = start_on(&path, clock.clone(), config).await;
        Self {
            _dir: dir,
            path,
            clock,
            orch,
        }
    }

    async fn connect(&self, id: &str) -> FakeNode {
        let rx = self.orch.connect(node_info(id)).await.unwrap();
        FakeNode {
            id: id.to_string(),
            rx,
        }
    }

    async fn submit(&self, name: Option<&str>) -> String {
        let resp = self
            .orch
            .put_job(
                "",
                PutJobRequest {
                    job: job_spec(name),
                    force: false,
                },
            )
            .await
            .unwrap();
        assert!(resp.job_id.starts_with("j-"));
        assert!(!resp.evaluation_id.is_empty());
        resp.job_id
    }

    async fn job(&self, id: &str) -> bh_models::api::GetJobResponse {
        self.orch
            .get_job(
                "default",
                id,
                GetJobOptions {
                    include_history: true,
                    include_executions: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }

    async fn report(&self, node: &FakeNode, msg: FromCompute) {
        self.orch.on_message(&node.id, msg).await;
        self.orch.process_pending().await;
    }
}

/// The execution ID of the single AskForBid among `msgs`.
fn asked(msgs: &[ToCompute]) -> (String, bool) {
    let asks: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            ToCompute::AskForBid {
                execution,
                pre_approved,
            } => Some((execution.id.clone(), *pre_approved)),
            _ => None,
        })
        .collect();
    assert_eq!(asks.len(), 1, "expected one AskForBid in {msgs:?}");
    asks.into_iter().next().unwrap()
}

fn bid(execution_id: &str) -> FromCompute {
    FromCompute::BidResult {
        execution_id: execution_id.to_string(),
        accepted: true,
        reason: String::new(),
    }
}

fn run_result(execution_id: &str, stdout: &str, exit_code: i64) -> FromCompute {
    FromCompute::RunResult {
        execution_id: execution_id.to_string(),
        output: RunCommandResult {
            stdout: stdout.to_string(),
            exit_code,
            ..Default::default()
        },
        published_result: Some(SpecConfig::new("local").with_param("URL", "http://n/result.tgz")),
    }
}

/// Drives a submitted job on `node` until it runs; returns the execution ID.
async fn run_on(h: &Harness, node: &mut FakeNode) -> String {
    let (exec_id, pre_approved) = asked(&node.drain());
    assert!(!pre_approved);
    h.report(node, bid(&exec_id)).await;
    let msgs = node.drain();
    assert!(
        msgs.contains(&ToCompute::BidAccepted {
            execution_id: exec_id.clone()
        }),
        "{msgs:?}"
    );
    h.report(
        node,
        FromCompute::ExecutionStarted {
            execution_id: exec_id.clone(),
        },
    )
    .await;
    exec_id
}

#[tokio::test]
async fn submitted_job_runs_to_completion_with_its_output() {
    let h = Harness::new().await;
    let mut node = h.connect("n-1").await;
    let job_id = h.submit(None).await;

    let stored = h.job(&job_id).await;
    assert_eq!(stored.job.state.state_type, JobStateType::Pending);
    assert_eq!(stored.job.name, job_id);
    assert_eq!(stored.job.version, 1);
    assert_eq!(stored.job.create_time, START);
    let history = stored.history.unwrap();
    assert_eq!(history[0].event.message, "Job submitted");

    assert!(h.orch.process_pending().await >= 1);
    let view = h.job(&job_id).await;
    let exec = &view.executions.unwrap()[0];
    assert_eq!(exec.compute_state.state_type, ExecutionStateType::AskForBid);

    let exec_id = run_on(&h, &mut node).await;
    assert_eq!(
        h.job(&job_id).await.job.state.state_type,
        JobStateType::Running
    );

    h.report(&node, run_result(&exec_id, "hello\n", 0)).await;
    let done = h.job(&job_id).await;
    assert_eq!(done.job.state.state_type, JobStateType::Completed);
    let exec = done
        .executions
        .unwrap()
        .into_iter()
        .find(|e| e.id == exec_id)
        .unwrap();
    assert_eq!(exec.compute_state.state_type, ExecutionStateType::Completed);
    assert_eq!(exec.run_output.unwrap().stdout, "hello\n");

    let results = h.orch.job_results("default", &job_id).await.unwrap();
    assert_eq!(results.items.len(), 1);
    assert_eq!(results.items[0].config_type, "local");

    let listed = h.orch.list_jobs(ListOptions::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    // A job with that label does not exist.
    let filtered = h
        .orch
        .list_jobs(ListOptions {
            labels: vec!["team=blue".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(filtered.items.is_empty());

    // Every ordering `bacalhau job executions --order-by` documents is accepted.
    for order_by in ["modify_time", "create_time", "id", "state", "created_at"] {
        let listed = h
            .orch
            .job_executions(
                "default",
                &job_id,
                ListOptions {
                    order_by: order_by.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("order_by={order_by}: {e}"));
        assert_eq!(listed.items.len(), 1, "order_by={order_by}");
    }
}

#[tokio::test]
async fn non_zero_exit_fails_the_execution_and_retries_on_another_node() {
    let h = Harness::new().await;
    let mut a = h.connect("n-a").await;
    let mut b = h.connect("n-b").await;
    let job_id = h.submit(None).await;
    h.orch.process_pending().await;
    let (first, second) = if a.drain().is_empty() {
        (&mut b, &mut a)
    } else {
        (&mut a, &mut b)
    };
    // Re-create the AskForBid view: the drain above consumed the first node's messages.
    let exec = h.job(&job_id).await.executions.unwrap().remove(0);
    assert_eq!(exec.node_id, first.id);
    h.report(first, bid(&exec.id)).await;
    h.report(first, run_result(&exec.id, "", 3)).await;

    let view = h.job(&job_id).await;
    let failed = view
        .executions
        .unwrap()
        .into_iter()
        .find(|e| e.id == exec.id)
        .unwrap();
    assert_eq!(failed.compute_state.state_type, ExecutionStateType::Failed);
    assert_eq!(failed.compute_state.message, "exit code 3");
    assert_eq!(failed.run_output.unwrap().exit_code, 3);

    let (retry, _) = asked(&second.drain());
    assert_ne!(retry, exec.id);
}

#[tokio::test]
async fn stop_cancels_the_running_execution() {
    let h = Harness::new().await;
    let mut node = h.connect("n-1").await;
    let job_id = h.submit(Some("stoppable")).await;
    h.orch.process_pending().await;
    let exec_id = run_on(&h, &mut node).await;

    let resp = h
        .orch
        .stop_job("default", "stoppable", "enough")
        .await
        .unwrap();
    assert!(!resp.evaluation_id.is_empty());
    let job = h.job(&job_id).await.job;
    assert_eq!(job.state.state_type, JobStateType::Stopped);
    assert_eq!(job.state.message, "enough");
    h.orch.process_pending().await;
    let msgs = node.drain();
    assert!(
        msgs.iter().any(
            |m| matches!(m, ToCompute::Cancel { execution_id, .. } if *execution_id == exec_id)
        ),
        "{msgs:?}"
    );
    // Stopping a stopped job is a no-op.
    let again = h.orch.stop_job("default", &job_id, "").await.unwrap();
    assert!(again.evaluation_id.is_empty());
}

#[tokio::test]
async fn stopping_a_completed_job_is_refused() {
    let h = Harness::new().await;
    let mut node = h.connect("n-1").await;
    let job_id = h.submit(None).await;
    h.orch.process_pending().await;
    let exec_id = run_on(&h, &mut node).await;
    h.report(&node, run_result(&exec_id, "ok", 0)).await;
    let err = h.orch.stop_job("default", &job_id, "").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.contains("already completed"), "{err}");
}

#[tokio::test]
async fn duplicate_and_late_reports_change_nothing() {
    let h = Harness::new().await;
    let mut node = h.connect("n-1").await;
    let job_id = h.submit(None).await;
    h.orch.process_pending().await;
    let exec_id = run_on(&h, &mut node).await;
    h.report(&node, run_result(&exec_id, "first", 0)).await;
    let before = h.job(&job_id).await;

    h.report(&node, run_result(&exec_id, "second", 1)).await;
    h.report(&node, bid(&exec_id)).await;
    h.report(
        &node,
        FromCompute::ComputeError {
            execution_id: exec_id.clone(),
            message: "late".into(),
            output: None,
        },
    )
    .await;
    let after = h.job(&job_id).await;
    assert_eq!(before.executions, after.executions);
    assert_eq!(before.job, after.job);
    assert_eq!(h.orch.queued_evaluations(), (0, 0));
    assert!(node.drain().is_empty());
}

#[tokio::test]
async fn invalid_and_unchanged_submissions_are_refused() {
    let h = Harness::new().await;
    let err = h
        .orch
        .put_job(
            "",
            PutJobRequest {
                job: serde_json::json!({"Tasks": [{"Name": "t", "Engine": {"Type": "docker"}}]}),
                force: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.contains("Type"), "{err}");

    let id = h.submit(Some("same")).await;
    let req = PutJobRequest {
        job: job_spec(Some("same")),
        force: false,
    };
    let err = h.orch.put_job("", req.clone()).await.unwrap_err();
    assert!(err.message.contains("no changes detected"), "{err}");
    let forced = h
        .orch
        .put_job("", PutJobRequest { force: true, ..req })
        .await
        .unwrap();
    assert_eq!(forced.job_id, id);
    assert_eq!(h.job(&id).await.job.version, 2);
}

#[tokio::test]
async fn rejected_node_is_disconnected_and_refused() {
    let h = Harness::new().await;
    let mut node = h.connect("n-bad").await;
    let listed = h.orch.list_nodes(NodeListOptions::default()).await.unwrap();
    assert_eq!(listed.nodes[0].membership, MEMBERSHIP_APPROVED);
    assert_eq!(
        listed.nodes[0].connection_state.status,
        CONNECTION_CONNECTED
    );

    let resp = h
        .orch
        .update_node(
            "n-b",
            PutNodeRequest {
                action: "reject".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(resp.success, "{resp:?}");
    assert!(node.rx.recv().await.is_none(), "the channel closes");
    let err = h.orch.connect(node_info("n-bad")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let got = h.orch.get_node("n-bad").await.unwrap().node;
    assert_eq!(got.connection_state.status, CONNECTION_DISCONNECTED);

    let again = h
        .orch
        .update_node(
            "n-bad",
            PutNodeRequest {
                action: "reject".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!again.success);
    // Upstream's wording, which scripts look for.
    assert_eq!(again.error, "node already rejected");
    let deleted = h
        .orch
        .update_node(
            "n-bad",
            PutNodeRequest {
                action: "delete".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(deleted.success);
    assert_eq!(
        h.orch.get_node("n-bad").await.unwrap_err().code,
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn acknowledged_job_is_scheduled_after_a_restart() {
    let h = Harness::new().await;
    let job_id = h.submit(None).await;
    let Harness {
        _dir,
        path,
        clock,
        orch,
    } = h;
    // The orchestrator dies before any evaluation ran.
    drop(orch);

    let orch = start_on(&path, clock.clone(), test_config()).await;
    assert_eq!(orch.queued_evaluations().0, 1);
    let h = Harness {
        _dir,
        path,
        clock,
        orch,
    };
    let mut node = h.connect("n-1").await;
    h.orch.process_pending().await;
    let (exec_id, _) = asked(&node.drain());
    let exec = h.job(&job_id).await.executions.unwrap().remove(0);
    assert_eq!(exec.id, exec_id);
}

#[tokio::test]
async fn node_missing_heartbeats_is_disconnected_and_its_work_moves() {
    let h = Harness::new().await;
    let mut a = h.connect("n-a").await;
    let job_id = h.submit(None).await;
    h.orch.process_pending().await;
    let exec_id = run_on(&h, &mut a).await;
    let mut b = h.connect("n-b").await;
    h.orch.process_pending().await;
    assert!(b.drain().is_empty());

    h.clock.advance(Duration::from_secs(61));
    h.orch
        .on_message("n-b", FromCompute::Heartbeat { seq: 1 })
        .await;
    h.orch.housekeeping_tick().await.unwrap();
    let node_a = h.orch.get_node("n-a").await.unwrap().node;
    assert_eq!(node_a.connection_state.status, CONNECTION_DISCONNECTED);
    let node_b = h.orch.get_node("n-b").await.unwrap().node;
    assert_eq!(node_b.connection_state.status, CONNECTION_CONNECTED);

    h.orch.process_pending().await;
    let view = h.job(&job_id).await;
    let lost = view
        .executions
        .unwrap()
        .into_iter()
        .find(|e| e.id == exec_id)
        .unwrap();
    assert_eq!(lost.compute_state.state_type, ExecutionStateType::Failed);
    let (moved, _) = asked(&b.drain());
    assert_ne!(moved, exec_id);
}

#[tokio::test]
async fn reconnecting_node_gets_unacknowledged_messages_again() {
    let h = Harness::new().await;
    let mut node = h.connect("n-1").await;
    h.submit(None).await;
    h.orch.process_pending().await;
    let (exec_id, _) = asked(&node.drain());
    h.orch.disconnected("n-1").await;
    let mut node = h.connect("n-1").await;
    let (again, _) = asked(&node.drain());
    assert_eq!(again, exec_id);
}

#[tokio::test]
async fn long_poll_returns_when_the_job_changes() {
    let h = Harness::new().await;
    let job_id = h.submit(None).await;
    let revision = h.job(&job_id).await.job.revision;

    let orch = h.orch.clone();
    let id = job_id.clone();
    let waiter = tokio::spawn(async move {
        orch.get_job(
            "default",
            &id,
            GetJobOptions {
                wait_after_revision: Some(revision),
                wait: Some(Duration::from_secs(60)),
                ..Default::default()
            },
        )
        .await
        .unwrap()
    });
    // Let the waiter reach its wait on the change feed (the test runtime is single-threaded).
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    assert!(!waiter.is_finished());
    // Without nodes the batch job fails at once (no QueueTimeout): a change the waiter sees.
    h.orch.process_pending().await;
    let got = waiter.await.unwrap();
    assert!(got.job.revision > revision);
}

#[tokio::test]
async fn late_disconnect_of_a_replaced_stream_keeps_the_newer_one() {
    let h = Harness::new().await;
    let _old = h.connect("n-1").await;
    let mut new = h.connect("n-1").await;
    // The transport reports the end of the first stream after the second one was set up.
    h.orch.disconnected("n-1").await;
    let node = h.orch.get_node("n-1").await.unwrap().node;
    assert_eq!(node.connection_state.status, CONNECTION_CONNECTED);
    h.submit(None).await;
    h.orch.process_pending().await;
    asked(&new.drain());
}

#[tokio::test]
async fn ops_job_is_pre_approved_and_reaches_a_node_that_joins_later() {
    let h = Harness::new().await;
    let mut a = h.connect("n-a").await;
    let spec = serde_json::json!({
        "Type": "ops",
        "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}]
    });
    let resp = h
        .orch
        .put_job(
            "",
            PutJobRequest {
                job: spec,
                force: false,
            },
        )
        .await
        .unwrap();
    h.orch.process_pending().await;
    let (exec_a, pre_approved) = asked(&a.drain());
    assert!(pre_approved);
    h.report(&a, bid(&exec_a)).await;
    let exec = h.job(&resp.job_id).await.executions.unwrap().remove(0);
    assert_eq!(
        exec.compute_state.state_type,
        ExecutionStateType::BidAccepted
    );
    assert!(a.drain().is_empty(), "no separate approval round");

    // A node that joins while the ops job still runs gets its own execution.
    let mut b = h.connect("n-b").await;
    h.orch.process_pending().await;
    let (exec_b, pre_approved) = asked(&b.drain());
    assert!(pre_approved);
    assert_ne!(exec_b, exec_a);
}

#[tokio::test]
async fn manually_approved_node_gets_work_only_after_approval() {
    let h = Harness::with_config(OrchestratorConfig {
        manual_approval: true,
        ..test_config()
    })
    .await;
    let mut node = h.connect("n-1").await;
    let pending = h
        .orch
        .list_nodes(NodeListOptions {
            filter_approval: "pending".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.nodes.len(), 1);
    let spec = serde_json::json!({
        "Type": "daemon",
        "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}]
    });
    h.orch
        .put_job(
            "",
            PutJobRequest {
                job: spec,
                force: false,
            },
        )
        .await
        .unwrap();
    h.orch.process_pending().await;
    assert!(node.drain().is_empty());

    let resp = h
        .orch
        .update_node(
            "n-1",
            PutNodeRequest {
                action: "approve".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(resp.success);
    h.orch.process_pending().await;
    asked(&node.drain());
}

#[tokio::test]
async fn housekeeping_times_out_a_job_past_its_total_timeout() {
    let h = Harness::new().await;
    let mut node = h.connect("n-1").await;
    let mut spec = job_spec(None);
    spec["Tasks"][0]["Timeouts"] = serde_json::json!({"TotalTimeout": 30});
    let job_id = h
        .orch
        .put_job(
            "",
            PutJobRequest {
                job: spec,
                force: false,
            },
        )
        .await
        .unwrap()
        .job_id;
    h.orch.process_pending().await;
    let exec_id = run_on(&h, &mut node).await;

    h.clock.advance(Duration::from_secs(20));
    h.orch
        .on_message("n-1", FromCompute::Heartbeat { seq: 1 })
        .await;
    h.orch.housekeeping_tick().await.unwrap();
    assert_eq!(h.orch.process_pending().await, 0, "not yet due");

    h.clock.advance(Duration::from_secs(11));
    h.orch
        .on_message("n-1", FromCompute::Heartbeat { seq: 2 })
        .await;
    h.orch.housekeeping_tick().await.unwrap();
    assert_eq!(h.orch.process_pending().await, 1);
    let job = h.job(&job_id).await.job;
    assert_eq!(job.state.state_type, JobStateType::Failed);
    let msgs = node.drain();
    assert!(
        msgs.iter().any(
            |m| matches!(m, ToCompute::Cancel { execution_id, .. } if *execution_id == exec_id)
        ),
        "{msgs:?}"
    );
}

#[tokio::test]
async fn background_workers_schedule_without_explicit_driving() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let orch = start_on(
        &dir.path().join("store"),
        clock,
        OrchestratorConfig {
            background: true,
            ..test_config()
        },
    )
    .await;
    let mut rx = orch.connect(node_info("n-1")).await.unwrap();
    orch.put_job(
        "",
        PutJobRequest {
            job: job_spec(None),
            force: false,
        },
    )
    .await
    .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a worker sends AskForBid")
        .unwrap();
    assert!(matches!(first, ToCompute::AskForBid { .. }));
    orch.shutdown().await;
    assert!(rx.recv().await.is_none(), "shutdown closes node channels");
}
