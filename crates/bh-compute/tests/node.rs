//! The compute node driven through `ComputeAgent` with the real wasm executor: bidding, running, reporting,
//! cancelling, queueing by priority, restarts and the persisted node ID.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bh_compute::store::{ExecutionStore, LocalExecution, LocalState};
use bh_compute::{CapacityConfig, ComputeConfig, ComputeNode, Executor};
use bh_executor_wasm::{WasmConfig, WasmExecutor};
use bh_models::{
    Execution, FromCompute, Job, NetworkConfig, ResourcesConfig, SpecConfig, Task, TimeoutConfig,
    ToCompute,
};
use bh_transport::service::ComputeAgent;
use serde_json::json;

const HELLO_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

const SPIN_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "started")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 7))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop $forever (br $forever))))"#;

fn config(dir: &Path) -> ComputeConfig {
    let mut config = ComputeConfig::new(dir);
    config.heartbeat_interval = None;
    config.allocated_capacity = CapacityConfig {
        cpu: "2".into(),
        memory: "1Gb".into(),
        disk: "1Gb".into(),
        gpu: "0".into(),
    };
    config
}

async fn start(config: ComputeConfig) -> Arc<ComputeNode> {
    let wasm: Arc<dyn Executor> = Arc::new(WasmExecutor::new(WasmConfig::default()).unwrap());
    ComputeNode::start(config, vec![wasm]).await.unwrap()
}

fn wasm_task(wat: &str) -> Task {
    let url = format!(
        "data:application/wasm;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(wat)
    );
    Task {
        name: "main".into(),
        engine: SpecConfig::new("wasm").with_param(
            "EntryModule",
            json!({"Source": {"Type": "inline", "Params": {"URL": url}}, "Target": "/app/main.wasm"}),
        ),
        publisher: SpecConfig::new("local"),
        ..Default::default()
    }
}

fn execution(id: &str, task: Task, priority: i64) -> Execution {
    Execution {
        id: id.into(),
        job_id: "j-1".into(),
        job: Some(Job {
            id: "j-1".into(),
            job_type: "batch".into(),
            priority,
            count: 1,
            tasks: vec![task],
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn next(node: &ComputeNode) -> FromCompute {
    tokio::time::timeout(Duration::from_secs(20), node.next_outbound())
        .await
        .expect("no message from the node within 20s")
        .expect("the node ended its outbound stream")
}

async fn ask(node: &ComputeNode, execution: Execution, pre_approved: bool) {
    node.handle(ToCompute::AskForBid {
        execution: Box::new(execution),
        pre_approved,
    })
    .await;
}

#[tokio::test]
async fn bid_run_and_report_a_hello_module() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(config(dir.path())).await;

    ask(&node, execution("e-1", wasm_task(HELLO_WAT), 0), false).await;
    assert_eq!(
        next(&node).await,
        FromCompute::BidResult {
            execution_id: "e-1".into(),
            accepted: true,
            reason: String::new()
        }
    );
    node.handle(ToCompute::BidAccepted {
        execution_id: "e-1".into(),
    })
    .await;
    assert_eq!(
        next(&node).await,
        FromCompute::ExecutionStarted {
            execution_id: "e-1".into()
        }
    );
    let FromCompute::RunResult {
        execution_id,
        output,
        published_result,
    } = next(&node).await
    else {
        panic!("expected a RunResult");
    };
    assert_eq!(execution_id, "e-1");
    assert_eq!(output.stdout, "hello\n");
    assert_eq!(output.exit_code, 0);
    assert!(!output.stdout_truncated);
    let published = published_result.expect("local publisher result");
    assert_eq!(published.config_type, "local");
    let url = published.param_str("URL").unwrap();
    let folder = url.strip_prefix("file://").unwrap();
    assert_eq!(
        std::fs::read_to_string(Path::new(folder).join("stdout")).unwrap(),
        "hello\n"
    );
    assert!(Path::new(folder).join("outputs").is_dir());

    let record = node.execution("e-1").unwrap().unwrap();
    assert_eq!(record.state, LocalState::Completed);
    assert_eq!(record.output.unwrap().stdout, b"hello\n");
    assert!(node.logs("e-1").is_some());
    assert_eq!(node.node_info().compute_node_info.running_executions, 0);
}

#[tokio::test]
async fn node_info_describes_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.labels.insert("zone".into(), "a".into());
    let node = start(config).await;
    let info = node.node_info();
    assert!(info.node_id.starts_with("n-"));
    assert_eq!(info.node_type, "Compute");
    assert_eq!(info.labels["zone"], "a");
    assert!(info.labels.contains_key("Architecture"));
    assert!(info.labels.contains_key("Operating-System"));
    let compute = info.compute_node_info;
    assert_eq!(compute.execution_engines, vec!["wasm".to_string()]);
    assert_eq!(
        compute.publishers,
        vec!["noop".to_string(), "local".to_string()]
    );
    assert_eq!(compute.max_capacity.cpu, 2.0);
    assert_eq!(compute.max_capacity.memory, 1_000_000_000);
    assert_eq!(compute.available_capacity.cpu, 2.0);
    assert_eq!(compute.max_job_requirements, compute.max_capacity);
}

#[tokio::test]
async fn refusals_name_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(config(dir.path())).await;

    let mut networked = wasm_task(HELLO_WAT);
    networked.network = NetworkConfig {
        network_type: "Full".into(),
        ..Default::default()
    };
    ask(&node, execution("e-net", networked, 0), false).await;
    let FromCompute::BidResult {
        accepted, reason, ..
    } = next(&node).await
    else {
        panic!("expected a BidResult");
    };
    assert!(!accepted);
    assert_eq!(
        reason,
        "networked jobs are not accepted by this node (JobAdmissionControl.AcceptNetworkedJobs)"
    );

    let mut docker = wasm_task(HELLO_WAT);
    docker.engine = SpecConfig::new("docker");
    ask(&node, execution("e-docker", docker, 0), false).await;
    let FromCompute::BidResult {
        accepted, reason, ..
    } = next(&node).await
    else {
        panic!("expected a BidResult");
    };
    assert!(!accepted);
    assert!(reason.contains("\"docker\" is not supported"), "{reason}");

    let mut big = wasm_task(HELLO_WAT);
    big.resources = ResourcesConfig {
        cpu: "8".into(),
        ..Default::default()
    };
    ask(&node, execution("e-big", big, 0), false).await;
    let FromCompute::BidResult {
        accepted, reason, ..
    } = next(&node).await
    else {
        panic!("expected a BidResult");
    };
    assert!(!accepted);
    assert!(reason.contains("not enough capacity"), "{reason}");

    let mut local = wasm_task(HELLO_WAT);
    local.input_sources = vec![bh_models::InputSource {
        source: SpecConfig::new("localDirectory").with_param("SourcePath", "/etc"),
        alias: String::new(),
        target: "/etc-copy".into(),
    }];
    ask(&node, execution("e-local", local, 0), false).await;
    let FromCompute::BidResult {
        accepted, reason, ..
    } = next(&node).await
    else {
        panic!("expected a BidResult");
    };
    assert!(!accepted);
    assert!(reason.contains("AllowListedLocalPaths"), "{reason}");

    let mut invalid = wasm_task(HELLO_WAT);
    invalid.engine = SpecConfig::new("wasm");
    ask(&node, execution("e-invalid", invalid, 0), false).await;
    let FromCompute::BidResult {
        accepted, reason, ..
    } = next(&node).await
    else {
        panic!("expected a BidResult");
    };
    assert!(!accepted);
    assert!(reason.contains("EntryModule"), "{reason}");
}

#[tokio::test]
async fn networked_jobs_run_when_allowed_and_pre_approved_runs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.accept_networked_jobs = true;
    let node = start(config).await;
    let mut task = wasm_task(HELLO_WAT);
    task.network.network_type = "Host".into();
    task.publisher = SpecConfig::default();
    ask(&node, execution("e-ops", task, 0), true).await;
    assert!(matches!(
        next(&node).await,
        FromCompute::BidResult { accepted: true, .. }
    ));
    assert!(matches!(
        next(&node).await,
        FromCompute::ExecutionStarted { .. }
    ));
    let FromCompute::RunResult {
        published_result, ..
    } = next(&node).await
    else {
        panic!("expected a RunResult");
    };
    assert_eq!(published_result, None, "noop publisher by default");
}

#[tokio::test]
async fn cancel_stops_a_running_execution() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(config(dir.path())).await;
    ask(&node, execution("e-spin", wasm_task(SPIN_WAT), 0), true).await;
    assert!(matches!(
        next(&node).await,
        FromCompute::BidResult { accepted: true, .. }
    ));
    assert!(matches!(
        next(&node).await,
        FromCompute::ExecutionStarted { .. }
    ));
    node.handle(ToCompute::Cancel {
        execution_id: "e-spin".into(),
        reason: "user asked".into(),
    })
    .await;
    let FromCompute::ComputeError {
        execution_id,
        message,
        ..
    } = next(&node).await
    else {
        panic!("expected a ComputeError");
    };
    assert_eq!(execution_id, "e-spin");
    assert_eq!(message, "cancelled: user asked");
    assert_eq!(
        node.execution("e-spin").unwrap().unwrap().state,
        LocalState::Cancelled
    );
}

#[tokio::test]
async fn timeouts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(config(dir.path())).await;
    let mut task = wasm_task(SPIN_WAT);
    task.timeouts = TimeoutConfig {
        execution_timeout: 1,
        ..Default::default()
    };
    ask(&node, execution("e-slow", task, 0), true).await;
    assert!(matches!(
        next(&node).await,
        FromCompute::BidResult { accepted: true, .. }
    ));
    assert!(matches!(
        next(&node).await,
        FromCompute::ExecutionStarted { .. }
    ));
    let FromCompute::ComputeError {
        message, output, ..
    } = next(&node).await
    else {
        panic!("expected a ComputeError");
    };
    assert_eq!(message, "execution timed out after 1s");
    assert_eq!(output.unwrap().stdout, "started");
}

#[tokio::test]
async fn queue_runs_higher_priority_first_when_capacity_frees() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(config(dir.path())).await;
    let needs_all_cpus = |wat: &str| {
        let mut task = wasm_task(wat);
        task.resources.cpu = "2".into();
        task
    };
    ask(
        &node,
        execution("e-spin", needs_all_cpus(SPIN_WAT), 0),
        true,
    )
    .await;
    assert!(matches!(next(&node).await, FromCompute::BidResult { .. }));
    assert!(matches!(
        next(&node).await,
        FromCompute::ExecutionStarted { .. }
    ));

    for (id, priority) in [("e-low", 1), ("e-high", 5), ("e-high-later", 5)] {
        ask(
            &node,
            execution(id, needs_all_cpus(HELLO_WAT), priority),
            true,
        )
        .await;
        assert!(matches!(
            next(&node).await,
            FromCompute::BidResult { accepted: true, .. }
        ));
    }
    let info = node.node_info().compute_node_info;
    assert_eq!(info.enqueued_executions, 3);
    assert_eq!(info.running_executions, 1);
    assert_eq!(info.queue_used_capacity.cpu, 6.0);
    assert_eq!(info.available_capacity.cpu, 0.0);

    node.handle(ToCompute::Cancel {
        execution_id: "e-spin".into(),
        reason: "make room".into(),
    })
    .await;
    assert!(matches!(
        next(&node).await,
        FromCompute::ComputeError { .. }
    ));
    let mut started = Vec::new();
    while started.len() < 3 {
        if let FromCompute::ExecutionStarted { execution_id } = next(&node).await {
            started.push(execution_id);
        }
    }
    assert_eq!(started, vec!["e-high", "e-high-later", "e-low"]);
}

#[tokio::test]
async fn restart_reports_interrupted_executions_and_keeps_the_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let first_id = {
        let node = start(config(dir.path())).await;
        node.node_id().to_string()
    };
    assert!(first_id.starts_with("n-"));
    {
        // A previous run left an execution marked running.
        let store = ExecutionStore::open(&dir.path().join("executions")).unwrap();
        store
            .put(&LocalExecution {
                execution: execution("e-lost", wasm_task(HELLO_WAT), 0),
                state: LocalState::Running,
                report: Some(FromCompute::ExecutionStarted {
                    execution_id: "e-lost".into(),
                }),
                output: None,
                seq: 1,
                updated_at: bh_compute::store::now_secs(),
            })
            .unwrap();
    }
    let node = start(config(dir.path())).await;
    assert_eq!(node.node_id(), first_id);
    node.on_connected().await;
    assert_eq!(
        next(&node).await,
        FromCompute::ComputeError {
            execution_id: "e-lost".into(),
            message: "compute node restarted while the execution was running".into(),
            output: None,
        }
    );
    assert_eq!(
        node.execution("e-lost").unwrap().unwrap().state,
        LocalState::Failed
    );
    drop(node);

    let mut explicit = config(dir.path());
    explicit.node_id = Some("my-node".into());
    let node = start(explicit).await;
    assert_eq!(node.node_id(), "my-node");
}

#[tokio::test]
async fn reconnection_resends_the_latest_reports() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(config(dir.path())).await;
    ask(&node, execution("e-1", wasm_task(HELLO_WAT), 0), true).await;
    assert!(matches!(next(&node).await, FromCompute::BidResult { .. }));
    assert!(matches!(
        next(&node).await,
        FromCompute::ExecutionStarted { .. }
    ));
    assert!(matches!(next(&node).await, FromCompute::RunResult { .. }));
    node.on_connected().await;
    assert!(matches!(next(&node).await, FromCompute::RunResult { .. }));

    // A bid the orchestrator turned down is forgotten.
    ask(&node, execution("e-2", wasm_task(HELLO_WAT), 0), false).await;
    assert!(matches!(next(&node).await, FromCompute::BidResult { .. }));
    node.handle(ToCompute::BidRejected {
        execution_id: "e-2".into(),
        reason: "another node won".into(),
    })
    .await;
    assert!(node.execution("e-2").unwrap().is_none());
}

#[tokio::test]
async fn heartbeats_flow_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.heartbeat_interval = Some(Duration::from_millis(20));
    let node = start(config).await;
    assert!(matches!(
        next(&node).await,
        FromCompute::UpdateNodeInfo { .. }
    ));
    assert_eq!(next(&node).await, FromCompute::Heartbeat { seq: 1 });
    assert_eq!(next(&node).await, FromCompute::Heartbeat { seq: 2 });
}
