//! Wire shape of serialised models: PascalCase keys with Bacalhau's exceptions, job state as a string,
//! execution states as integers.

use std::collections::BTreeSet;

use bh_models::{
    parse_job, ComputeNodeInfo, Execution, ExecutionDesiredStateType, ExecutionStateType,
    JobStateType, RunCommandResult, State,
};
use serde_json::Value;

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

#[test]
fn job_serialises_with_wire_keys() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/jobs/docker-hello.yaml"),
    )
    .unwrap();
    let mut job = parse_job(&text).unwrap();
    bh_models::normalize(&mut job);
    bh_models::apply_defaults(&mut job);
    job.state = State::new(JobStateType::Running, "");
    let wire = serde_json::to_value(&job).unwrap();
    assert_eq!(
        keys(&wire),
        set(&[
            "ID",
            "Name",
            "Namespace",
            "Type",
            "Priority",
            "Count",
            "Constraints",
            "Meta",
            "Labels",
            "Tasks",
            "State",
            "Version",
            "Revision",
            "CreateTime",
            "ModifyTime",
        ])
    );
    assert_eq!(wire["State"]["StateType"], Value::from("Running"));
    assert_eq!(wire["Meta"], serde_json::json!({}));
    let task = &wire["Tasks"][0];
    assert_eq!(
        keys(task),
        set(&[
            "Name",
            "Engine",
            "Publisher",
            "Resources",
            "Network",
            "Timeouts"
        ])
    );
    assert_eq!(keys(&task["Engine"]), set(&["Type", "Params"]));
    assert_eq!(keys(&task["Resources"]), set(&["CPU", "Memory"]));
    // Params keep the keys the user wrote.
    assert_eq!(
        task["Engine"]["Params"]["image"],
        Value::from("busybox:latest")
    );
}

#[test]
fn execution_states_are_integers_and_exceptions_are_lowercase() {
    let execution = Execution {
        compute_state: State::new(ExecutionStateType::Completed, "done"),
        desired_state: State::new(ExecutionDesiredStateType::Stopped, ""),
        run_output: Some(RunCommandResult {
            stdout: "out".into(),
            stderr: "err".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let wire = serde_json::to_value(&execution).unwrap();
    assert_eq!(wire["ComputeState"]["StateType"], Value::from(9));
    assert_eq!(wire["DesiredState"]["StateType"], Value::from(2));
    let output = &wire["RunOutput"];
    assert_eq!(
        keys(output),
        set(&[
            "Stdout",
            "StdoutTruncated",
            "stderr",
            "StderrTruncated",
            "ExitCode",
            "ErrorMsg"
        ])
    );
    let back: Execution = serde_json::from_value(wire).unwrap();
    assert_eq!(back, execution);

    let info = ComputeNodeInfo {
        address: "10.0.0.1".into(),
        ..Default::default()
    };
    let wire = serde_json::to_value(&info).unwrap();
    assert_eq!(wire["address"], Value::from("10.0.0.1"));
    assert!(wire.get("Address").is_none());
}

#[test]
fn get_job_answer_nests_history_and_executions_as_list_answers() {
    use bh_models::api::GetJobResponse;
    let answer = GetJobResponse {
        executions: Some(vec![Execution {
            id: "e-1".into(),
            ..Default::default()
        }]),
        history: Some(Vec::new()),
        ..Default::default()
    };
    let wire = serde_json::to_value(&answer).unwrap();
    assert_eq!(wire["Executions"]["Items"][0]["ID"], Value::from("e-1"));
    assert_eq!(wire["Executions"]["NextToken"], Value::from(""));
    assert_eq!(
        wire["History"],
        serde_json::json!({"Items": [], "NextToken": ""})
    );
    let back: GetJobResponse = serde_json::from_value(wire).unwrap();
    assert_eq!(back, answer);

    // Not asked for: absent. A bare array (what older bh servers sent) still reads.
    let plain = serde_json::to_value(GetJobResponse::default()).unwrap();
    assert_eq!(keys(&plain), set(&["Job"]));
    let old: GetJobResponse =
        serde_json::from_value(serde_json::json!({"Job": {}, "Executions": [{"ID": "e-2"}]}))
            .unwrap();
    assert_eq!(old.executions.unwrap()[0].id, "e-2");
    assert_eq!(old.history, None);
}

#[test]
fn never_is_go_zero_time_on_the_wire() {
    use bh_models::node::ConnectionState;
    let state = ConnectionState {
        status: "CONNECTED".into(),
        last_heartbeat: "2026-01-02T03:04:05Z".into(),
        connected_since: "2026-01-02T03:04:05Z".into(),
        ..Default::default()
    };
    let wire = serde_json::to_value(&state).unwrap();
    assert_eq!(
        wire["DisconnectedSince"],
        Value::from("0001-01-01T00:00:00Z")
    );
    assert_eq!(wire["LastHeartbeat"], Value::from("2026-01-02T03:04:05Z"));
    let back: ConnectionState = serde_json::from_value(wire).unwrap();
    assert_eq!(back, state);
}

#[test]
fn error_codes_use_upstream_names() {
    use bh_models::ErrorCode;
    assert_eq!(ErrorCode::InvalidArgument.as_str(), "BadRequest");
    assert_eq!(ErrorCode::NotFound.as_str(), "NotFound");
    assert_eq!(ErrorCode::Internal.as_str(), "InternalError");
    assert_eq!(ErrorCode::Timeout.as_str(), "TimeOut");
}
