//! Identifiers: `j-`, `e-`, `n-` and `v-` prefixed UUIDs, and short-prefix matching.

/// Prefix of job IDs.
pub const JOB_ID_PREFIX: &str = "j-";
/// Prefix of execution IDs.
pub const EXECUTION_ID_PREFIX: &str = "e-";
/// Prefix of node IDs.
pub const NODE_ID_PREFIX: &str = "n-";
/// Prefix of evaluation IDs.
pub const EVALUATION_ID_PREFIX: &str = "v-";

/// A new job ID.
pub fn new_job_id() -> String {
    format!("{JOB_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// A new execution ID.
pub fn new_execution_id() -> String {
    format!("{EXECUTION_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// A new node ID.
pub fn new_node_id() -> String {
    format!("{NODE_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// A new evaluation ID.
pub fn new_evaluation_id() -> String {
    format!("{EVALUATION_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// The short form shown in tables: prefix plus the first 8 hex digits (`j-28c08f7f`).
pub fn short_id(id: &str) -> &str {
    let prefix_len = id.find('-').map(|i| i + 1).unwrap_or(0);
    let end = (prefix_len + 8).min(id.len());
    id.get(..end).unwrap_or(id)
}
