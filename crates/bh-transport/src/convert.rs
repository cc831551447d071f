//! Conversions between the protobuf messages of `proto/bh/v1/node.proto` and the transport-neutral models.
//!
//! Models to proto never fails; proto to models fails with an `InvalidArgument` error naming the field when a
//! peer sent something malformed (an empty oneof, JSON that does not parse).

use bh_models::{
    BuildVersionInfo, ComputeNodeInfo, Error, Execution, FromCompute, Gpu, NodeInfo, Resources,
    Result, RunCommandResult, SpecConfig, ToCompute,
};

use crate::proto;
use crate::proto::{compute_message, orchestrator_message};

// ---------------------------------------------------------------------------------------------------------
// Messages

/// The first message of a compute node's stream.
pub fn handshake_message(info: &NodeInfo) -> proto::ComputeMessage {
    proto::ComputeMessage {
        kind: Some(compute_message::Kind::Handshake(proto::Handshake {
            info: Some(node_info_to_proto(info)),
        })),
    }
}

/// The orchestrator's answer to a handshake.
pub fn handshake_ack_message(accepted: bool, reason: &str) -> proto::OrchestratorMessage {
    proto::OrchestratorMessage {
        kind: Some(orchestrator_message::Kind::HandshakeAck(
            proto::HandshakeAck {
                accepted,
                reason: reason.to_string(),
            },
        )),
    }
}

/// A compute-side model message as protobuf.
pub fn from_compute_to_proto(msg: &FromCompute) -> proto::ComputeMessage {
    use compute_message::Kind;
    let kind = match msg {
        FromCompute::Heartbeat { seq } => Kind::Heartbeat(proto::Heartbeat { seq: *seq }),
        FromCompute::UpdateNodeInfo { info } => Kind::UpdateNodeInfo(proto::UpdateNodeInfo {
            info: Some(node_info_to_proto(info)),
        }),
        FromCompute::BidResult {
            execution_id,
            accepted,
            reason,
        } => Kind::BidResult(proto::BidResult {
            execution_id: execution_id.clone(),
            accepted: *accepted,
            reason: reason.clone(),
        }),
        FromCompute::ExecutionStarted { execution_id } => {
            Kind::ExecutionStarted(proto::ExecutionStarted {
                execution_id: execution_id.clone(),
            })
        }
        FromCompute::RunResult {
            execution_id,
            output,
            published_result,
        } => Kind::RunResult(proto::RunResult {
            execution_id: execution_id.clone(),
            output: Some(run_result_to_proto(output)),
            published_result: published_result.as_ref().map(spec_config_to_proto),
        }),
        FromCompute::ComputeError {
            execution_id,
            message,
            output,
        } => Kind::ComputeError(proto::ComputeError {
            execution_id: execution_id.clone(),
            message: message.clone(),
            output: output.as_ref().map(run_result_to_proto),
        }),
    };
    proto::ComputeMessage { kind: Some(kind) }
}

/// What a compute node's stream message is, once the handshake is done.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundCompute {
    /// A (repeated) handshake: the node's info.
    Handshake(Box<NodeInfo>),
    /// Any other message.
    Message(FromCompute),
}

/// A protobuf message from a compute node as a model.
pub fn compute_message_from_proto(msg: proto::ComputeMessage) -> Result<InboundCompute> {
    use compute_message::Kind;
    let kind = msg
        .kind
        .ok_or_else(|| Error::invalid("ComputeMessage.kind: empty message"))?;
    let model = match kind {
        Kind::Handshake(h) => {
            return Ok(InboundCompute::Handshake(Box::new(required_node_info(
                h.info,
                "Handshake.info",
            )?)))
        }
        Kind::Heartbeat(h) => FromCompute::Heartbeat { seq: h.seq },
        Kind::UpdateNodeInfo(u) => FromCompute::UpdateNodeInfo {
            info: Box::new(required_node_info(u.info, "UpdateNodeInfo.info")?),
        },
        Kind::BidResult(b) => FromCompute::BidResult {
            execution_id: b.execution_id,
            accepted: b.accepted,
            reason: b.reason,
        },
        Kind::ExecutionStarted(e) => FromCompute::ExecutionStarted {
            execution_id: e.execution_id,
        },
        Kind::RunResult(r) => FromCompute::RunResult {
            execution_id: r.execution_id,
            output: r.output.map(run_result_from_proto).unwrap_or_default(),
            published_result: r
                .published_result
                .map(|s| spec_config_from_proto(s, "RunResult.published_result"))
                .transpose()?,
        },
        Kind::ComputeError(c) => FromCompute::ComputeError {
            execution_id: c.execution_id,
            message: c.message,
            output: c.output.map(run_result_from_proto),
        },
    };
    Ok(InboundCompute::Message(model))
}

/// An orchestrator-side model message as protobuf.
pub fn to_compute_to_proto(msg: &ToCompute) -> Result<proto::OrchestratorMessage> {
    use orchestrator_message::Kind;
    let kind = match msg {
        ToCompute::AskForBid {
            execution,
            pre_approved,
        } => Kind::AskForBid(proto::AskForBid {
            execution_json: serde_json::to_vec(execution.as_ref()).map_err(|e| {
                Error::internal(format!("AskForBid.execution_json: cannot encode: {e}"))
            })?,
            pre_approved: *pre_approved,
        }),
        ToCompute::BidAccepted { execution_id } => Kind::BidAccepted(proto::BidAccepted {
            execution_id: execution_id.clone(),
        }),
        ToCompute::BidRejected {
            execution_id,
            reason,
        } => Kind::BidRejected(proto::BidRejected {
            execution_id: execution_id.clone(),
            reason: reason.clone(),
        }),
        ToCompute::Cancel {
            execution_id,
            reason,
        } => Kind::Cancel(proto::Cancel {
            execution_id: execution_id.clone(),
            reason: reason.clone(),
        }),
    };
    Ok(proto::OrchestratorMessage { kind: Some(kind) })
}

/// What an orchestrator's stream message is.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundOrchestrator {
    /// The answer to the handshake.
    HandshakeAck { accepted: bool, reason: String },
    /// Any other message.
    Message(ToCompute),
}

/// A protobuf message from the orchestrator as a model.
pub fn orchestrator_message_from_proto(
    msg: proto::OrchestratorMessage,
) -> Result<InboundOrchestrator> {
    use orchestrator_message::Kind;
    let kind = msg
        .kind
        .ok_or_else(|| Error::invalid("OrchestratorMessage.kind: empty message"))?;
    let model = match kind {
        Kind::HandshakeAck(a) => {
            return Ok(InboundOrchestrator::HandshakeAck {
                accepted: a.accepted,
                reason: a.reason,
            })
        }
        Kind::AskForBid(a) => {
            let execution: Execution = serde_json::from_slice(&a.execution_json).map_err(|e| {
                Error::invalid(format!("AskForBid.execution_json: invalid execution: {e}"))
            })?;
            ToCompute::AskForBid {
                execution: Box::new(execution),
                pre_approved: a.pre_approved,
            }
        }
        Kind::BidAccepted(b) => ToCompute::BidAccepted {
            execution_id: b.execution_id,
        },
        Kind::BidRejected(b) => ToCompute::BidRejected {
            execution_id: b.execution_id,
            reason: b.reason,
        },
        Kind::Cancel(c) => ToCompute::Cancel {
            execution_id: c.execution_id,
            reason: c.reason,
        },
    };
    Ok(InboundOrchestrator::Message(model))
}

// ---------------------------------------------------------------------------------------------------------
// Data

fn required_node_info(info: Option<proto::NodeInfo>, field: &str) -> Result<NodeInfo> {
    info.map(node_info_from_proto)
        .ok_or_else(|| Error::invalid(format!("{field}: missing node info")))
}

/// NodeInfo as protobuf.
pub fn node_info_to_proto(info: &NodeInfo) -> proto::NodeInfo {
    proto::NodeInfo {
        node_id: info.node_id.clone(),
        node_type: info.node_type.clone(),
        labels: info.labels.clone(),
        supported_protocols: info.supported_protocols.clone(),
        compute_node_info: Some(compute_node_info_to_proto(&info.compute_node_info)),
        bacalhau_version: Some(version_to_proto(&info.bacalhau_version)),
    }
}

/// NodeInfo from protobuf; absent sub-messages become defaults.
pub fn node_info_from_proto(info: proto::NodeInfo) -> NodeInfo {
    NodeInfo {
        node_id: info.node_id,
        node_type: info.node_type,
        labels: info.labels,
        supported_protocols: info.supported_protocols,
        compute_node_info: info
            .compute_node_info
            .map(compute_node_info_from_proto)
            .unwrap_or_default(),
        bacalhau_version: info
            .bacalhau_version
            .map(version_from_proto)
            .unwrap_or_default(),
    }
}

fn compute_node_info_to_proto(c: &ComputeNodeInfo) -> proto::ComputeNodeInfo {
    proto::ComputeNodeInfo {
        execution_engines: c.execution_engines.clone(),
        publishers: c.publishers.clone(),
        storage_sources: c.storage_sources.clone(),
        max_capacity: Some(resources_to_proto(&c.max_capacity)),
        queue_used_capacity: Some(resources_to_proto(&c.queue_used_capacity)),
        available_capacity: Some(resources_to_proto(&c.available_capacity)),
        max_job_requirements: Some(resources_to_proto(&c.max_job_requirements)),
        running_executions: c.running_executions,
        enqueued_executions: c.enqueued_executions,
        address: c.address.clone(),
        engine_problems: c.engine_problems.clone(),
    }
}

fn compute_node_info_from_proto(c: proto::ComputeNodeInfo) -> ComputeNodeInfo {
    ComputeNodeInfo {
        execution_engines: c.execution_engines,
        publishers: c.publishers,
        storage_sources: c.storage_sources,
        max_capacity: c.max_capacity.map(resources_from_proto).unwrap_or_default(),
        queue_used_capacity: c
            .queue_used_capacity
            .map(resources_from_proto)
            .unwrap_or_default(),
        available_capacity: c
            .available_capacity
            .map(resources_from_proto)
            .unwrap_or_default(),
        max_job_requirements: c
            .max_job_requirements
            .map(resources_from_proto)
            .unwrap_or_default(),
        running_executions: c.running_executions,
        enqueued_executions: c.enqueued_executions,
        address: c.address,
        engine_problems: c.engine_problems,
    }
}

fn resources_to_proto(r: &Resources) -> proto::Resources {
    proto::Resources {
        cpu: r.cpu,
        memory: r.memory,
        disk: r.disk,
        gpu: r.gpu,
        gpus: r
            .gpus
            .iter()
            .map(|g| proto::Gpu {
                index: g.index,
                name: g.name.clone(),
                vendor: g.vendor.clone(),
                memory: g.memory,
                pci_address: g.pci_address.clone(),
            })
            .collect(),
    }
}

fn resources_from_proto(r: proto::Resources) -> Resources {
    Resources {
        cpu: r.cpu,
        memory: r.memory,
        disk: r.disk,
        gpu: r.gpu,
        gpus: r
            .gpus
            .into_iter()
            .map(|g| Gpu {
                index: g.index,
                name: g.name,
                vendor: g.vendor,
                memory: g.memory,
                pci_address: g.pci_address,
            })
            .collect(),
    }
}

fn version_to_proto(v: &BuildVersionInfo) -> proto::BuildVersionInfo {
    proto::BuildVersionInfo {
        major: v.major.clone(),
        minor: v.minor.clone(),
        git_version: v.git_version.clone(),
        git_commit: v.git_commit.clone(),
        build_date: v.build_date.clone(),
        goos: v.goos.clone(),
        goarch: v.goarch.clone(),
    }
}

fn version_from_proto(v: proto::BuildVersionInfo) -> BuildVersionInfo {
    BuildVersionInfo {
        major: v.major,
        minor: v.minor,
        git_version: v.git_version,
        git_commit: v.git_commit,
        build_date: v.build_date,
        goos: v.goos,
        goarch: v.goarch,
    }
}

fn run_result_to_proto(r: &RunCommandResult) -> proto::RunCommandResult {
    proto::RunCommandResult {
        stdout: r.stdout.clone(),
        stdout_truncated: r.stdout_truncated,
        stderr: r.stderr.clone(),
        stderr_truncated: r.stderr_truncated,
        exit_code: r.exit_code,
        error_msg: r.error_msg.clone(),
    }
}

fn run_result_from_proto(r: proto::RunCommandResult) -> RunCommandResult {
    RunCommandResult {
        stdout: r.stdout,
        stdout_truncated: r.stdout_truncated,
        stderr: r.stderr,
        stderr_truncated: r.stderr_truncated,
        exit_code: r.exit_code,
        error_msg: r.error_msg,
    }
}

fn spec_config_to_proto(s: &SpecConfig) -> proto::SpecConfig {
    proto::SpecConfig {
        r#type: s.config_type.clone(),
        // An empty byte string stands for "no params"; a JSON object map always encodes.
        params_json: if s.params.is_empty() {
            Vec::new()
        } else {
            serde_json::Value::Object(s.params.clone())
                .to_string()
                .into_bytes()
        },
    }
}

fn spec_config_from_proto(s: proto::SpecConfig, field: &str) -> Result<SpecConfig> {
    let params = if s.params_json.is_empty() {
        serde_json::Map::new()
    } else {
        serde_json::from_slice(&s.params_json)
            .map_err(|e| Error::invalid(format!("{field}.params_json: not a JSON object: {e}")))?
    };
    Ok(SpecConfig {
        config_type: s.r#type,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bh_models::{ExecutionStateType, Job, State, Task};

    fn sample_node_info() -> NodeInfo {
        let mut info = NodeInfo {
            node_id: "n-1".into(),
            node_type: "Compute".into(),
            supported_protocols: vec!["bh/v1".into()],
            bacalhau_version: BuildVersionInfo::current(),
            ..Default::default()
        };
        info.labels.insert("zone".into(), "eu".into());
        let c = &mut info.compute_node_info;
        c.execution_engines = vec!["docker".into(), "wasm".into()];
        c.publishers = vec!["local".into()];
        c.storage_sources = vec!["urldownload".into()];
        c.max_capacity = Resources {
            cpu: 3.5,
            memory: 1 << 30,
            disk: 1 << 35,
            gpu: 1,
            gpus: vec![Gpu {
                index: 0,
                name: "H200".into(),
                vendor: "NVIDIA".into(),
                memory: 141_000,
                pci_address: "0000:01:00.0".into(),
            }],
        };
        c.available_capacity.cpu = 1.25;
        c.queue_used_capacity.memory = 42;
        c.max_job_requirements.disk = 7;
        c.running_executions = 2;
        c.enqueued_executions = 3;
        c.address = "10.0.0.1".into();
        c.engine_problems
            .insert("docker".into(), "daemon not reachable".into());
        info
    }

    fn sample_output() -> RunCommandResult {
        RunCommandResult {
            stdout: "hello\n".into(),
            stdout_truncated: true,
            stderr: "warn\n".into(),
            stderr_truncated: false,
            exit_code: 3,
            error_msg: "exit 3".into(),
        }
    }

    fn round_trip_compute(msg: FromCompute) {
        let back = compute_message_from_proto(from_compute_to_proto(&msg)).unwrap();
        assert_eq!(back, InboundCompute::Message(msg));
    }

    fn round_trip_orchestrator(msg: ToCompute) {
        let back = orchestrator_message_from_proto(to_compute_to_proto(&msg).unwrap()).unwrap();
        assert_eq!(back, InboundOrchestrator::Message(msg));
    }

    #[test]
    fn node_info_round_trips() {
        let info = sample_node_info();
        assert_eq!(node_info_from_proto(node_info_to_proto(&info)), info);
        let back = compute_message_from_proto(handshake_message(&info)).unwrap();
        assert_eq!(back, InboundCompute::Handshake(Box::new(info)));
    }

    #[test]
    fn every_compute_message_round_trips() {
        round_trip_compute(FromCompute::Heartbeat { seq: 99 });
        round_trip_compute(FromCompute::UpdateNodeInfo {
            info: Box::new(sample_node_info()),
        });
        round_trip_compute(FromCompute::BidResult {
            execution_id: "e-1".into(),
            accepted: false,
            reason: "no docker".into(),
        });
        round_trip_compute(FromCompute::ExecutionStarted {
            execution_id: "e-1".into(),
        });
        round_trip_compute(FromCompute::RunResult {
            execution_id: "e-1".into(),
            output: sample_output(),
            published_result: Some(
                SpecConfig::new("local")
                    .with_param("URL", "http://x/e-1.tgz")
                    .with_param("Nested", serde_json::json!({"a": [1, 2]})),
            ),
        });
        round_trip_compute(FromCompute::RunResult {
            execution_id: "e-2".into(),
            output: RunCommandResult::default(),
            published_result: None,
        });
        round_trip_compute(FromCompute::RunResult {
            execution_id: "e-3".into(),
            output: RunCommandResult::default(),
            published_result: Some(SpecConfig::new("noop")),
        });
        round_trip_compute(FromCompute::ComputeError {
            execution_id: "e-1".into(),
            message: "timed out".into(),
            output: Some(sample_output()),
        });
        round_trip_compute(FromCompute::ComputeError {
            execution_id: "e-1".into(),
            message: "boom".into(),
            output: None,
        });
    }

    #[test]
    fn every_orchestrator_message_round_trips() {
        let job = Job {
            id: "j-1".into(),
            name: "hello".into(),
            job_type: "batch".into(),
            count: 1,
            tasks: vec![Task {
                name: "main".into(),
                engine: SpecConfig::new("docker")
                    .with_param("Image", "ubuntu")
                    .with_param("Entrypoint", serde_json::json!(["echo", "hi"])),
                ..Default::default()
            }],
            ..Default::default()
        };
        let execution = Execution {
            id: "e-1".into(),
            job_id: "j-1".into(),
            node_id: "n-1".into(),
            job: Some(job),
            compute_state: State::new(ExecutionStateType::AskForBid, "asking"),
            ..Default::default()
        };
        round_trip_orchestrator(ToCompute::AskForBid {
            execution: Box::new(execution),
            pre_approved: true,
        });
        round_trip_orchestrator(ToCompute::BidAccepted {
            execution_id: "e-1".into(),
        });
        round_trip_orchestrator(ToCompute::BidRejected {
            execution_id: "e-1".into(),
            reason: "lost".into(),
        });
        round_trip_orchestrator(ToCompute::Cancel {
            execution_id: "e-1".into(),
            reason: "stopped by user".into(),
        });
        let ack = orchestrator_message_from_proto(handshake_ack_message(false, "rejected"));
        assert_eq!(
            ack.unwrap(),
            InboundOrchestrator::HandshakeAck {
                accepted: false,
                reason: "rejected".into()
            }
        );
    }

    #[test]
    fn malformed_messages_name_the_field() {
        let err = compute_message_from_proto(proto::ComputeMessage { kind: None }).unwrap_err();
        assert!(err.message.contains("ComputeMessage.kind"), "{err}");

        let err = compute_message_from_proto(proto::ComputeMessage {
            kind: Some(compute_message::Kind::Handshake(proto::Handshake {
                info: None,
            })),
        })
        .unwrap_err();
        assert!(err.message.contains("Handshake.info"), "{err}");

        let err = orchestrator_message_from_proto(proto::OrchestratorMessage {
            kind: Some(orchestrator_message::Kind::AskForBid(proto::AskForBid {
                execution_json: b"{not json".to_vec(),
                pre_approved: false,
            })),
        })
        .unwrap_err();
        assert_eq!(err.code, bh_models::ErrorCode::InvalidArgument);
        assert!(err.message.contains("AskForBid.execution_json"), "{err}");

        let err = compute_message_from_proto(proto::ComputeMessage {
            kind: Some(compute_message::Kind::RunResult(proto::RunResult {
                execution_id: "e".into(),
                output: None,
                published_result: Some(proto::SpecConfig {
                    r#type: "local".into(),
                    params_json: b"[1]".to_vec(),
                }),
            })),
        })
        .unwrap_err();
        assert!(
            err.message
                .contains("RunResult.published_result.params_json"),
            "{err}"
        );
    }
}
