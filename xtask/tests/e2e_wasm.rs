//! End-to-end: the three real binaries (`orchestratord`, two `computed`, `bh`) on loopback run wasm jobs.
//! Needs `cargo build --workspace --bins` first (`cargo xtask test` does it).

use std::process::Output;

use serde_json::Value;
use xtask::cluster::{block_on, Binaries, Cluster};
use xtask::samples::{failing_wasm, hello_wasm};

fn start(nodes: usize) -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster =
        Cluster::start(Binaries::in_target("debug"), dir.path(), nodes).expect("cluster starts");
    (dir, cluster)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\nstdout: {}",
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

fn get_json(cluster: &Cluster, path: &str) -> (u16, Value) {
    block_on(async {
        let resp = reqwest::get(format!("{}{}", cluster.api_url(), path))
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.expect("JSON body");
        (status, body)
    })
}

fn put_json(cluster: &Cluster, path: &str, body: &Value) -> (u16, Value) {
    block_on(async {
        let resp = reqwest::Client::new()
            .put(format!("{}{}", cluster.api_url(), path))
            .json(body)
            .send()
            .await
            .expect("PUT");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.expect("JSON body");
        (status, body)
    })
}

#[test]
fn wasm_job_runs_end_to_end_and_has_bacalhau_shapes() {
    let (dir, cluster) = start(2);
    let module = dir.path().join("hello.wasm");
    std::fs::write(&module, hello_wasm("hello from bh\n").expect("wat")).expect("write module");

    // `bh wasm run` waits and prints the job's stdout.
    let out = cluster
        .bh()
        .arg("wasm")
        .arg("run")
        .arg(&module)
        .output()
        .expect("bh runs");
    assert_eq!(ok(&out), "hello from bh\n");

    // And again with --id-only, then check the JSON shapes over the REST API.
    let out = cluster
        .bh()
        .args(["wasm", "run", "--id-only"])
        .arg(&module)
        .output()
        .expect("bh runs");
    let id = ok(&out).trim().to_string();
    assert!(id.starts_with("j-") && id.len() == 38, "job id {id}");

    let (status, body) = get_json(
        &cluster,
        &format!("/api/v1/orchestrator/jobs/{id}?include=executions"),
    );
    assert_eq!(status, 200, "{body}");
    let job = &body["Job"];
    assert_eq!(job["ID"], Value::String(id.clone()));
    assert_eq!(job["State"]["StateType"], "Completed", "{job}");
    assert_eq!(job["Type"], "batch");
    assert!(
        job["CreateTime"].as_i64().unwrap_or(0) > 1_600_000_000_000_000_000,
        "nanoseconds: {job}"
    );
    assert!(job["Version"].is_u64() && job["Revision"].is_u64());
    let execs = body["Executions"]["Items"]
        .as_array()
        .expect("Executions included");
    assert_eq!(execs.len(), 1, "{body}");
    let exec = &execs[0];
    assert!(exec["ID"].as_str().unwrap_or("").starts_with("e-"));
    assert!(exec["NodeID"].as_str().unwrap_or("").starts_with("n-"));
    assert_eq!(
        exec["ComputeState"]["StateType"], 9,
        "Completed is the integer 9: {exec}"
    );
    assert_eq!(
        exec["DesiredState"]["StateType"], 1,
        "Running is the integer 1: {exec}"
    );
    assert_eq!(exec["RunOutput"]["Stdout"], "hello from bh\n");
    assert_eq!(exec["RunOutput"]["ExitCode"], 0);
    assert!(
        exec["RunOutput"].get("stderr").is_some(),
        "lowercase stderr key: {exec}"
    );

    // Short prefix resolves; the list shows the job; the nodes are both there.
    let short = &id[..10];
    let (status, body) = get_json(&cluster, &format!("/api/v1/orchestrator/jobs/{short}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Job"]["ID"], Value::String(id.clone()));
    let (_, list) = get_json(&cluster, "/api/v1/orchestrator/jobs");
    assert!(
        list["Items"]
            .as_array()
            .map(|a| a.len() >= 2)
            .unwrap_or(false),
        "{list}"
    );
    let (_, nodes) = get_json(&cluster, "/api/v1/orchestrator/nodes");
    let nodes = nodes["Nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len(), 2);
    for n in &nodes {
        assert_eq!(n["Membership"], "APPROVED");
        assert_eq!(n["ConnectionState"]["Status"], "CONNECTED");
        assert_eq!(n["Info"]["NodeType"], "Compute");
    }
    let (status, alive) = get_json(&cluster, "/api/v1/agent/alive");
    assert_eq!((status, alive["Status"].as_str()), (200, Some("OK")));
}

#[test]
fn failing_module_fails_the_job_and_keeps_exit_code_and_stderr() {
    let (dir, cluster) = start(1);
    let module = dir.path().join("fail.wasm");
    std::fs::write(&module, failing_wasm("something broke\n", 3).expect("wat"))
        .expect("write module");

    let out = cluster
        .bh()
        .arg("wasm")
        .arg("run")
        .arg(&module)
        .output()
        .expect("bh runs");
    assert!(!out.status.success(), "a failed job makes bh exit non-zero");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("something broke") || stderr.contains("exit code 3"),
        "{stderr}"
    );

    let out = cluster
        .bh()
        .args(["job", "list", "--output", "json"])
        .output()
        .expect("bh runs");
    let jobs: Value = serde_json::from_str(&ok(&out)).expect("json list");
    let id = jobs
        .as_array()
        .and_then(|a| a.first())
        .and_then(|j| j["ID"].as_str())
        .expect("a job")
        .to_string();
    let (_, body) = get_json(
        &cluster,
        &format!("/api/v1/orchestrator/jobs/{id}?include=executions"),
    );
    assert_eq!(body["Job"]["State"]["StateType"], "Failed", "{body}");
    let execs = body["Executions"]["Items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failed = execs
        .iter()
        .find(|e| e["RunOutput"]["ExitCode"] == 3)
        .expect("an execution kept exit code 3");
    assert!(
        failed["RunOutput"]["stderr"]
            .as_str()
            .unwrap_or("")
            .contains("something broke"),
        "{failed}"
    );
}

#[test]
fn acknowledged_job_survives_orchestrator_sigkill() {
    let (dir, mut cluster) = start(0);
    let module = dir.path().join("hello.wasm");
    std::fs::write(&module, hello_wasm("survived\n").expect("wat")).expect("write module");

    // No compute node yet: with a queue timeout the job waits instead of failing.
    let out = cluster
        .bh()
        .args([
            "wasm",
            "run",
            "--id-only",
            "--wait=false",
            "--queue-timeout",
            "600",
        ])
        .arg(&module)
        .output()
        .expect("bh runs");
    let id = ok(&out).trim().to_string();
    assert!(id.starts_with("j-"));

    // The submit was acknowledged: kill -9 right away, restart on the same data.
    cluster
        .restart_orchestrator()
        .expect("orchestrator restarts");
    cluster.add_compute(0, &[]).expect("compute node joins");

    let out = cluster
        .bh()
        .args(["job", "describe", &id, "--output", "json"])
        .output()
        .expect("bh runs");
    ok(&out);
    let done = cluster.wait_for_job(&id).expect("job finishes");
    assert_eq!(
        done.job.state.state_type,
        bh_models::JobStateType::Completed,
        "{:?}",
        done.job.state
    );
}

#[test]
fn bad_input_is_refused_with_the_field_named() {
    let (dir, cluster) = start(1);

    // REST: a malformed spec is a 400 naming the field.
    let bad = serde_json::json!({"Job": {"Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "wasm"}, "Resources": {"CPU": "lots"}}]}});
    let (status, body) = put_json(&cluster, "/api/v1/orchestrator/jobs", &bad);
    assert_eq!(status, 400, "{body}");
    let message = body["Message"].as_str().unwrap_or("");
    assert!(message.contains("CPU"), "names the field: {message}");
    assert_eq!(body["Status"], 400);
    assert!(
        body.get("RequestID").is_some() && body.get("Code").is_some(),
        "{body}"
    );

    // CLI: one readable line, non-zero exit.
    let spec = dir.path().join("bad.yaml");
    std::fs::write(&spec, "Type: batch\nTasks:\n  - Name: t\n    Engine:\n      Type: wasm\n    Timeouts:\n      ExecutionTimeout: -5\n").expect("write");
    let out = cluster
        .bh()
        .arg("job")
        .arg("run")
        .arg(&spec)
        .output()
        .expect("bh runs");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("ExecutionTimeout"), "{stderr}");

    // Unknown job: 404 on the API, a clear line from the CLI.
    let (status, body) = get_json(
        &cluster,
        "/api/v1/orchestrator/jobs/j-00000000-0000-0000-0000-000000000000",
    );
    assert_eq!(status, 404, "{body}");
    let out = cluster
        .bh()
        .args(["job", "describe", "j-doesnotexist"])
        .output()
        .expect("bh runs");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).to_lowercase().contains("not found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn job_in_flight_completes_after_orchestrator_sigkill_with_nodes_connected() {
    let (dir, mut cluster) = start(2);
    let module = dir.path().join("hello.wasm");
    std::fs::write(&module, hello_wasm("still here\n").expect("wat")).expect("write module");
    let out = cluster
        .bh()
        .args(["wasm", "run", "--id-only", "--wait=false"])
        .arg(&module)
        .output()
        .expect("bh runs");
    let id = ok(&out).trim().to_string();

    // Killed wherever the job is (queued, bidding, running or done); the nodes reconnect to the new process.
    cluster
        .restart_orchestrator()
        .expect("orchestrator restarts");
    let done = cluster.wait_for_job(&id).expect("job finishes");
    assert_eq!(
        done.job.state.state_type,
        bh_models::JobStateType::Completed,
        "{:?}",
        done.job.state
    );
    let (_, body) = get_json(
        &cluster,
        &format!("/api/v1/orchestrator/jobs/{id}?include=executions"),
    );
    let completed = body["Executions"]["Items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["ComputeState"]["StateType"] == 9)
                .count()
        })
        .unwrap_or(0);
    assert_eq!(
        completed, 1,
        "exactly one completed execution for the one partition: {body}"
    );
}

/// A module that spins forever (only a timeout or a stop ends it).
fn spinning_wasm() -> Vec<u8> {
    wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start") (loop $forever (br $forever))))"#)
        .expect("wat")
}

#[test]
fn ops_job_runs_once_on_every_node() {
    let (dir, cluster) = start(2);
    let module = dir.path().join("hello.wasm");
    std::fs::write(&module, hello_wasm("everywhere\n").expect("wat")).expect("write module");
    let out = cluster
        .bh()
        .args(["wasm", "run", "--target", "all", "--id-only"])
        .arg(&module)
        .output()
        .expect("bh runs");
    let id = ok(&out).trim().to_string();
    let (_, body) = get_json(
        &cluster,
        &format!("/api/v1/orchestrator/jobs/{id}?include=executions"),
    );
    assert_eq!(body["Job"]["Type"], "ops", "{body}");
    assert_eq!(body["Job"]["State"]["StateType"], "Completed", "{body}");
    let execs = body["Executions"]["Items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let nodes: std::collections::BTreeSet<_> = execs
        .iter()
        .filter(|e| e["ComputeState"]["StateType"] == 9)
        .filter_map(|e| e["NodeID"].as_str().map(str::to_string))
        .collect();
    assert_eq!(nodes.len(), 2, "one completed execution per node: {body}");
}

#[test]
fn execution_timeout_kills_the_workload_and_fails_the_job_saying_so() {
    let (dir, cluster) = start(1);
    let module = dir.path().join("spin.wasm");
    std::fs::write(&module, spinning_wasm()).expect("write module");
    let out = cluster
        .bh()
        .args(["wasm", "run", "--timeout", "2"])
        .arg(&module)
        .output()
        .expect("bh runs");
    assert!(!out.status.success(), "a timed-out job fails");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("timed out"),
        "the failure says it timed out: {stderr}"
    );
}
