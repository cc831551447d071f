//! Job history events: what happened to a job and its executions, in order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{ExecutionStateType, JobStateType};

/// History entry levels (strings on the wire).
pub const HISTORY_JOB_LEVEL: &str = "JobLevel";
pub const HISTORY_EXECUTION_LEVEL: &str = "ExecutionLevel";

/// One event in a job's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct JobHistory {
    /// `JobLevel` or `ExecutionLevel`.
    #[serde(rename = "Type")]
    pub history_type: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    #[serde(rename = "ExecutionID", skip_serializing_if = "String::is_empty")]
    pub execution_id: String,
    #[serde(rename = "NodeID", skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    #[serde(rename = "JobVersion")]
    pub job_version: u64,
    #[serde(rename = "JobState", skip_serializing_if = "Option::is_none")]
    pub job_state: Option<StateChange<JobStateType>>,
    #[serde(rename = "ExecutionState", skip_serializing_if = "Option::is_none")]
    pub execution_state: Option<StateChange<ExecutionStateType>>,
    #[serde(rename = "Event")]
    pub event: Event,
    /// RFC 3339.
    #[serde(rename = "Time")]
    pub time: String,
    /// Position in the store's history sequence (monotonic).
    #[serde(rename = "SeqNum")]
    pub seq_num: u64,
}

/// A from/to state pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StateChange<T: Default> {
    #[serde(rename = "Previous")]
    pub previous: T,
    #[serde(rename = "New")]
    pub new: T,
}

/// A human-readable event with machine-readable details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Event {
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Topic")]
    pub topic: String,
    /// RFC 3339.
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "Details", skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// Formats Unix nanoseconds as RFC 3339 (UTC), as history times are sent.
pub fn rfc3339_from_nanos(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Parses an RFC 3339 time to Unix nanoseconds.
pub fn nanos_from_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}
