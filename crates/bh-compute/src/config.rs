//! The compute node's settings, and the node ID kept in the data folder across restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use bh_models::config::AllocatedCapacity as CapacityConfig;

use crate::error::ComputeError;

/// Name of the file in the data folder that holds the node ID.
pub const NODE_ID_FILE: &str = "node_id";

/// Settings of a compute node.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    /// Where the node keeps its ID, execution store, working folders and local results.
    pub data_dir: PathBuf,
    /// An explicit node ID; when `None` the ID stored in `data_dir` is used (created on first start).
    pub node_id: Option<String>,
    /// Labels announced to the orchestrator, merged over the automatic `Architecture` and
    /// `Operating-System` labels.
    pub labels: BTreeMap<String, String>,
    /// How much of the detected capacity jobs may use (`Compute.AllocatedCapacity`).
    pub allocated_capacity: CapacityConfig,
    /// Whether tasks that ask for network access are accepted (`JobAdmissionControl.AcceptNetworkedJobs`).
    pub accept_networked_jobs: bool,
    /// Host folders `localDirectory` inputs may use (`Compute.AllowListedLocalPaths`); an entry may end
    /// in `:rw` to allow read-write mounts (`:ro`, the default, allows read-only ones).
    pub allowed_local_paths: Vec<String>,
    /// The node's address as announced in its NodeInfo.
    pub address: String,
    /// How often `next_outbound` yields a heartbeat while idle; `None` sends none.
    pub heartbeat_interval: Option<Duration>,
    /// How long reports of finished executions are kept and re-sent after each reconnection.
    pub report_retention: Duration,
    /// How much of each output stream is kept in memory for live log streaming, per execution.
    pub log_buffer_bytes: usize,
}

impl ComputeConfig {
    /// Defaults for a node keeping its state in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            node_id: None,
            labels: BTreeMap::new(),
            allocated_capacity: CapacityConfig::default(),
            accept_networked_jobs: false,
            allowed_local_paths: Vec::new(),
            address: String::new(),
            heartbeat_interval: Some(Duration::from_secs(15)),
            report_retention: Duration::from_secs(3600),
            log_buffer_bytes: 1024 * 1024,
        }
    }
}

/// The node ID to use: the configured one, else the one stored in `data_dir`, else a new `n-<uuid>`
/// which is stored for the next start.
pub fn resolve_node_id(data_dir: &Path, configured: Option<&str>) -> Result<String, ComputeError> {
    if let Some(id) = configured.map(str::trim).filter(|id| !id.is_empty()) {
        return Ok(id.to_string());
    }
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ComputeError::io(&path, e)),
    }
    std::fs::create_dir_all(data_dir).map_err(|e| ComputeError::io(data_dir, e))?;
    let id = bh_models::ids::new_node_id();
    std::fs::write(&path, format!("{id}\n")).map_err(|e| ComputeError::io(&path, e))?;
    Ok(id)
}
