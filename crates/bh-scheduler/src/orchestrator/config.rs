//! The orchestrator's settings, filled by the binary from its configuration files.

use std::time::Duration;

pub use bh_models::validate::JobDefaults;

/// Everything the orchestrator runtime needs to know besides its store, scheduler and clock.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchestratorConfig {
    /// The orchestrator's own node ID (shown by `GET /agent/node`).
    pub node_id: String,
    /// New nodes start PENDING instead of APPROVED and wait for an operator.
    pub manual_approval: bool,
    /// A node whose last heartbeat is older than this becomes DISCONNECTED and its work is rescheduled.
    pub disconnect_timeout: Duration,
    /// How often housekeeping (liveness, timeouts) runs in the background.
    pub housekeeping_interval: Duration,
    /// Extra time past a job's TotalTimeout / ExecutionTimeout before housekeeping raises a timeout
    /// evaluation; the compute node enforces the execution timeout itself, this is only the backstop.
    pub timeout_grace: Duration,
    /// Defaults applied to submitted jobs.
    pub job_defaults: JobDefaults,
    /// Number of evaluation workers in the background.
    pub workers: usize,
    /// Whether to run background tasks (evaluation workers, delayed-evaluation timer, housekeeping timer).
    /// Tests turn this off and drive the orchestrator with `process_pending` and `housekeeping_tick`.
    pub background: bool,
    /// Labels of the orchestrator's own node info.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            node_id: "orchestrator".to_string(),
            manual_approval: false,
            disconnect_timeout: Duration::from_secs(60),
            housekeeping_interval: Duration::from_secs(30),
            timeout_grace: Duration::from_secs(120),
            job_defaults: JobDefaults::default(),
            workers: 2,
            background: true,
            labels: Default::default(),
        }
    }
}

impl OrchestratorConfig {
    /// The effective configuration as JSON for `GET /agent/config` (nothing secret lives here).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "NameProvider": "puuid",
            "Orchestrator": {
                "Enabled": true,
                "NodeID": self.node_id,
                "NodeManager": {
                    "ManualApproval": self.manual_approval,
                    "DisconnectTimeout": format!("{}s", self.disconnect_timeout.as_secs()),
                },
                "EvaluationBroker": { "Workers": self.workers },
                "Housekeeping": {
                    "Interval": format!("{}s", self.housekeeping_interval.as_secs()),
                    "TimeoutBuffer": format!("{}s", self.timeout_grace.as_secs()),
                },
            },
            "JobDefaults": {
                "CPU": self.job_defaults.cpu,
                "Memory": self.job_defaults.memory,
                "Disk": self.job_defaults.disk,
                "GPU": self.job_defaults.gpu,
                "Publisher": self.job_defaults.publisher,
                "ExecutionTimeout": self.job_defaults.execution_timeout,
                "TotalTimeout": self.job_defaults.total_timeout,
                "QueueTimeout": self.job_defaults.queue_timeout,
            },
            "Labels": self.labels,
        })
    }
}
