//! Nodes: NodeInfo as a node describes itself, NodeState as the orchestrator tracks it, and capacity as Resources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Node types (strings on the wire).
pub const NODE_TYPE_COMPUTE: &str = "Compute";
pub const NODE_TYPE_REQUESTER: &str = "Requester";

/// Membership values (strings on the wire).
pub const MEMBERSHIP_PENDING: &str = "PENDING";
pub const MEMBERSHIP_APPROVED: &str = "APPROVED";
pub const MEMBERSHIP_REJECTED: &str = "REJECTED";

/// Connection values (strings on the wire).
pub const CONNECTION_CONNECTED: &str = "CONNECTED";
pub const CONNECTION_DISCONNECTED: &str = "DISCONNECTED";

/// Absolute amounts of resources: CPU in cores, memory and disk in bytes, GPUs as a count plus details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Resources {
    #[serde(rename = "CPU")]
    pub cpu: f64,
    #[serde(rename = "Memory")]
    pub memory: u64,
    #[serde(rename = "Disk")]
    pub disk: u64,
    #[serde(rename = "GPU")]
    pub gpu: u64,
    #[serde(rename = "GPUs", skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<Gpu>,
}

impl Resources {
    /// Whether every dimension of `self` fits in `other`.
    pub fn fits_in(&self, other: &Resources) -> bool {
        self.cpu <= other.cpu + 1e-9
            && self.memory <= other.memory
            && self.disk <= other.disk
            && self.gpu <= other.gpu
    }

    /// `self + other` per dimension (GPU details are not merged).
    pub fn add(&self, other: &Resources) -> Resources {
        Resources {
            cpu: self.cpu + other.cpu,
            memory: self.memory.saturating_add(other.memory),
            disk: self.disk.saturating_add(other.disk),
            gpu: self.gpu.saturating_add(other.gpu),
            gpus: Vec::new(),
        }
    }

    /// `self - other` per dimension, floored at zero (GPU details are not merged).
    pub fn sub(&self, other: &Resources) -> Resources {
        Resources {
            cpu: (self.cpu - other.cpu).max(0.0),
            memory: self.memory.saturating_sub(other.memory),
            disk: self.disk.saturating_sub(other.disk),
            gpu: self.gpu.saturating_sub(other.gpu),
            gpus: Vec::new(),
        }
    }

    /// Whether every dimension is zero.
    pub fn is_zero(&self) -> bool {
        self.cpu == 0.0 && self.memory == 0 && self.disk == 0 && self.gpu == 0
    }
}

/// One GPU of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Gpu {
    #[serde(rename = "Index")]
    pub index: u64,
    #[serde(rename = "Name")]
    pub name: String,
    /// `NVIDIA`, `AMD` or `Intel`.
    #[serde(rename = "Vendor")]
    pub vendor: String,
    /// Memory in MiB.
    #[serde(rename = "Memory")]
    pub memory: u64,
    #[serde(rename = "PCIAddress")]
    pub pci_address: String,
}

/// The build a node runs (Bacalhau's `BuildVersionInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct BuildVersionInfo {
    #[serde(rename = "Major")]
    pub major: String,
    #[serde(rename = "Minor")]
    pub minor: String,
    #[serde(rename = "GitVersion")]
    pub git_version: String,
    #[serde(rename = "GitCommit")]
    pub git_commit: String,
    #[serde(rename = "BuildDate")]
    pub build_date: String,
    #[serde(rename = "GOOS")]
    pub goos: String,
    #[serde(rename = "GOARCH")]
    pub goarch: String,
}

impl BuildVersionInfo {
    /// The version of this build of bh.
    pub fn current() -> Self {
        let version = env!("CARGO_PKG_VERSION");
        let mut parts = version.split('.');
        Self {
            major: parts.next().unwrap_or("0").to_string(),
            minor: parts.next().unwrap_or("0").to_string(),
            git_version: format!("v{version}"),
            git_commit: String::new(),
            build_date: String::new(),
            goos: std::env::consts::OS.to_string(),
            goarch: match std::env::consts::ARCH {
                "x86_64" => "amd64".to_string(),
                "aarch64" => "arm64".to_string(),
                other => other.to_string(),
            },
        }
    }
}

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NodeInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "NodeType")]
    pub node_type: String,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "SupportedProtocols")]
    pub supported_protocols: Vec<String>,
    #[serde(rename = "ComputeNodeInfo")]
    pub compute_node_info: ComputeNodeInfo,
    #[serde(rename = "BacalhauVersion")]
    pub bacalhau_version: BuildVersionInfo,
}

/// A compute node's capabilities and load. Note the lowercase `address` key: it is Bacalhau's wire shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ComputeNodeInfo {
    #[serde(rename = "ExecutionEngines")]
    pub execution_engines: Vec<String>,
    #[serde(rename = "Publishers")]
    pub publishers: Vec<String>,
    #[serde(rename = "StorageSources")]
    pub storage_sources: Vec<String>,
    #[serde(rename = "MaxCapacity")]
    pub max_capacity: Resources,
    #[serde(rename = "QueueUsedCapacity")]
    pub queue_used_capacity: Resources,
    #[serde(rename = "AvailableCapacity")]
    pub available_capacity: Resources,
    #[serde(rename = "MaxJobRequirements")]
    pub max_job_requirements: Resources,
    #[serde(rename = "RunningExecutions")]
    pub running_executions: i64,
    #[serde(rename = "EnqueuedExecutions")]
    pub enqueued_executions: i64,
    #[serde(rename = "address")]
    pub address: String,
    /// Engines the node has but cannot use now, with the reason (bh addition; empty when all is well).
    #[serde(rename = "EngineProblems", skip_serializing_if = "BTreeMap::is_empty")]
    pub engine_problems: BTreeMap<String, String>,
}

/// How the orchestrator sees a node's link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ConnectionState {
    /// `CONNECTED` or `DISCONNECTED`.
    #[serde(rename = "Status")]
    pub status: String,
    /// RFC 3339; empty for never. On the wire "never" is Go's zero time, `0001-01-01T00:00:00Z`, as upstream
    /// sends it (a Go client cannot decode an empty time).
    #[serde(rename = "LastHeartbeat", with = "zero_time")]
    pub last_heartbeat: String,
    #[serde(rename = "ConnectedSince", with = "zero_time")]
    pub connected_since: String,
    #[serde(rename = "DisconnectedSince", with = "zero_time")]
    pub disconnected_since: String,
    #[serde(rename = "LastComputeSeqNum")]
    pub last_compute_seq_num: u64,
    #[serde(rename = "LastOrchestratorSeqNum")]
    pub last_orchestrator_seq_num: u64,
    #[serde(rename = "LastError", skip_serializing_if = "String::is_empty")]
    pub last_error: String,
}

/// An RFC 3339 time that is empty in memory for "never" and Go's zero time on the wire.
mod zero_time {
    use serde::{Deserialize, Deserializer, Serializer};

    /// How Go's `encoding/json` writes a zero `time.Time`.
    const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

    pub(super) fn serialize<S: Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if value.is_empty() {
            GO_ZERO_TIME
        } else {
            value
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<String, D::Error> {
        let value = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        Ok(if value == GO_ZERO_TIME {
            String::new()
        } else {
            value
        })
    }
}

/// A node as the orchestrator tracks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NodeState {
    #[serde(rename = "Info")]
    pub info: NodeInfo,
    /// `PENDING`, `APPROVED` or `REJECTED`.
    #[serde(rename = "Membership")]
    pub membership: String,
    #[serde(rename = "ConnectionState")]
    pub connection_state: ConnectionState,
}

impl NodeState {
    /// Whether the scheduler may place work on this node.
    pub fn is_schedulable(&self) -> bool {
        self.membership == MEMBERSHIP_APPROVED
            && self.connection_state.status == CONNECTION_CONNECTED
    }
}
