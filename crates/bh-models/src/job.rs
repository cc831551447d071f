//! The job spec wire types: Job, Task, SpecConfig, InputSource, ResultPath, Resources, Network, Timeouts, Constraint.
//!
//! Field names and JSON keys follow Bacalhau's v1 API exactly (PascalCase, with the documented exceptions).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{JobStateType, State};

/// Job types as they appear on the wire.
pub const JOB_TYPE_BATCH: &str = "batch";
pub const JOB_TYPE_OPS: &str = "ops";
pub const JOB_TYPE_DAEMON: &str = "daemon";
pub const JOB_TYPE_SERVICE: &str = "service";

/// The namespace used when a job names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A unit of work submitted by a user; see Bacalhau's `models.Job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Job {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Namespace")]
    pub namespace: String,
    #[serde(rename = "Type")]
    pub job_type: String,
    #[serde(rename = "Priority")]
    pub priority: i64,
    #[serde(rename = "Count")]
    pub count: i64,
    #[serde(rename = "Constraints")]
    pub constraints: Vec<Constraint>,
    #[serde(rename = "Meta")]
    pub meta: BTreeMap<String, String>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "Tasks")]
    pub tasks: Vec<Task>,
    #[serde(rename = "State")]
    pub state: State<JobStateType>,
    #[serde(rename = "Version")]
    pub version: u64,
    #[serde(rename = "Revision")]
    pub revision: u64,
    /// Unix time in nanoseconds.
    #[serde(rename = "CreateTime")]
    pub create_time: i64,
    /// Unix time in nanoseconds.
    #[serde(rename = "ModifyTime")]
    pub modify_time: i64,
}

impl Job {
    /// The job's single task (Bacalhau supports one task per job today).
    pub fn task(&self) -> Option<&Task> {
        self.tasks.first()
    }

    /// Whether this job type runs on every matching node (ops, daemon) instead of `Count` partitions.
    pub fn is_fan_out(&self) -> bool {
        self.job_type == JOB_TYPE_OPS || self.job_type == JOB_TYPE_DAEMON
    }

    /// Whether this job type is expected to finish (batch, ops) rather than run forever (service, daemon).
    pub fn is_finite(&self) -> bool {
        self.job_type == JOB_TYPE_BATCH || self.job_type == JOB_TYPE_OPS
    }
}

/// A node-selection requirement in Kubernetes selector style (`LabelSelectorRequirement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Constraint {
    #[serde(rename = "Key")]
    pub key: String,
    /// One of `=`, `==`, `!=`, `in`, `notin`, `exists`, `!`, `gt`, `lt`.
    #[serde(rename = "Operator")]
    pub operator: String,
    #[serde(rename = "Values", skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A task: what to run, with which inputs, outputs and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Task {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Engine")]
    pub engine: SpecConfig,
    #[serde(rename = "Publisher")]
    pub publisher: SpecConfig,
    /// Values are literal (`"v"`) or taken from the compute host (`"env:HOST_VAR"`).
    #[serde(rename = "Env", skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(rename = "Meta", skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    #[serde(rename = "InputSources", skip_serializing_if = "Vec::is_empty")]
    pub input_sources: Vec<InputSource>,
    #[serde(rename = "ResultPaths", skip_serializing_if = "Vec::is_empty")]
    pub result_paths: Vec<ResultPath>,
    #[serde(rename = "Resources")]
    pub resources: ResourcesConfig,
    #[serde(rename = "Network")]
    pub network: NetworkConfig,
    #[serde(rename = "Timeouts")]
    pub timeouts: TimeoutConfig,
}

/// A typed bag of parameters: an engine, a publisher, or a storage source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SpecConfig {
    #[serde(rename = "Type")]
    pub config_type: String,
    #[serde(rename = "Params", skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl SpecConfig {
    /// A config of `config_type` with no parameters.
    pub fn new(config_type: impl Into<String>) -> Self {
        Self {
            config_type: config_type.into(),
            params: serde_json::Map::new(),
        }
    }

    /// Adds one parameter (builder style).
    pub fn with_param(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.params.insert(key.to_string(), value.into());
        self
    }

    /// Looks a parameter up with its key compared case-insensitively, as Go's JSON decoding does.
    pub fn param(&self, key: &str) -> Option<&serde_json::Value> {
        self.params.get(key).or_else(|| {
            self.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }

    /// A string parameter, if present and a string.
    pub fn param_str(&self, key: &str) -> Option<&str> {
        self.param(key).and_then(|v| v.as_str())
    }

    /// Whether no type is set.
    pub fn is_empty(&self) -> bool {
        self.config_type.is_empty()
    }
}

/// Data made available to a task at `Target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct InputSource {
    #[serde(rename = "Source")]
    pub source: SpecConfig,
    #[serde(rename = "Alias", skip_serializing_if = "String::is_empty")]
    pub alias: String,
    #[serde(rename = "Target")]
    pub target: String,
}

/// A folder of the task whose content is published as a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResultPath {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Path")]
    pub path: String,
}

/// Requested resources as the user wrote them (strings such as `250m`, `1Gb`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesConfig {
    #[serde(rename = "CPU", skip_serializing_if = "String::is_empty")]
    pub cpu: String,
    #[serde(rename = "Memory", skip_serializing_if = "String::is_empty")]
    pub memory: String,
    #[serde(rename = "Disk", skip_serializing_if = "String::is_empty")]
    pub disk: String,
    #[serde(rename = "GPU", skip_serializing_if = "String::is_empty")]
    pub gpu: String,
}

/// Network modes, sent as strings.
pub const NETWORK_DEFAULT: &str = "Default";
pub const NETWORK_NONE: &str = "None";
pub const NETWORK_HOST: &str = "Host";
pub const NETWORK_FULL: &str = "Full";
pub const NETWORK_HTTP: &str = "HTTP";
pub const NETWORK_BRIDGE: &str = "Bridge";

/// A task's networking requirements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NetworkConfig {
    /// One of the `NETWORK_*` names; empty means `None`.
    #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
    pub network_type: String,
    #[serde(rename = "Ports", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<serde_json::Value>,
    #[serde(rename = "Domains", skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
}

impl NetworkConfig {
    /// Whether the task asks for any network access.
    pub fn is_networked(&self) -> bool {
        !(self.network_type.is_empty()
            || self.network_type.eq_ignore_ascii_case(NETWORK_NONE)
            || self.network_type.eq_ignore_ascii_case(NETWORK_DEFAULT))
    }
}

/// Timeouts in integer seconds; 0 means unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TimeoutConfig {
    #[serde(rename = "ExecutionTimeout", skip_serializing_if = "is_zero")]
    pub execution_timeout: i64,
    #[serde(rename = "QueueTimeout", skip_serializing_if = "is_zero")]
    pub queue_timeout: i64,
    #[serde(rename = "TotalTimeout", skip_serializing_if = "is_zero")]
    pub total_timeout: i64,
}

impl TimeoutConfig {
    /// The execution timeout in force: ExecutionTimeout, else TotalTimeout, else none (0).
    pub fn effective_execution_timeout(&self) -> i64 {
        if self.execution_timeout > 0 {
            self.execution_timeout
        } else {
            self.total_timeout.max(0)
        }
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}
