//! The daemons' configuration file schema (Bacalhau-style keys such as `API.Port`, `Compute.Orchestrators`)
//! with its defaults. Both `orchestratord` and `computed` read the same schema and use the parts they need.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole configuration, as written in a YAML, JSON or TOML file or set with `-c Key.Path=value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeConfig {
    /// Where sled stores and execution folders live.
    #[serde(rename = "DataDir")]
    pub data_dir: String,
    /// Fixed node ID; empty means generated once and kept in the data folder.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "API")]
    pub api: ApiConfig,
    #[serde(rename = "Orchestrator")]
    pub orchestrator: OrchestratorSection,
    #[serde(rename = "Compute")]
    pub compute: ComputeSection,
    #[serde(rename = "JobAdmissionControl")]
    pub job_admission_control: JobAdmissionControl,
    /// Labels of this node, matched by job constraints.
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "Logging")]
    pub logging: LoggingConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            node_id: String::new(),
            api: ApiConfig::default(),
            orchestrator: OrchestratorSection::default(),
            compute: ComputeSection::default(),
            job_admission_control: JobAdmissionControl::default(),
            labels: BTreeMap::new(),
            logging: LoggingConfig::default(),
        }
    }
}

fn default_data_dir() -> String {
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() => format!("{home}/.bh"),
        _ => ".bh".to_string(),
    }
}

/// The REST API listener (`API.Host`, `API.Port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    #[serde(rename = "Host")]
    pub host: String,
    #[serde(rename = "Port")]
    pub port: u16,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_string(),
            port: 1234,
        }
    }
}

/// The orchestrator's listener for compute nodes and its node manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrchestratorSection {
    #[serde(rename = "Host")]
    pub host: String,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "NodeManager")]
    pub node_manager: NodeManagerConfig,
    /// Seconds between housekeeping passes (timeouts, liveness).
    #[serde(rename = "HousekeepingIntervalSecs")]
    pub housekeeping_interval_secs: u64,
}

impl Default for OrchestratorSection {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_string(),
            port: 4222,
            node_manager: NodeManagerConfig::default(),
            housekeeping_interval_secs: 5,
        }
    }
}

/// `Orchestrator.NodeManager.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeManagerConfig {
    /// New nodes start PENDING instead of APPROVED.
    #[serde(rename = "ManualApproval")]
    pub manual_approval: bool,
    /// Seconds without a heartbeat before a node is DISCONNECTED.
    #[serde(rename = "DisconnectTimeoutSecs")]
    pub disconnect_timeout_secs: u64,
}

impl Default for NodeManagerConfig {
    fn default() -> Self {
        Self {
            manual_approval: false,
            disconnect_timeout_secs: 60,
        }
    }
}

/// `Compute.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComputeSection {
    /// Orchestrators to dial, as `host:port`.
    #[serde(rename = "Orchestrators")]
    pub orchestrators: Vec<String>,
    #[serde(rename = "AllocatedCapacity")]
    pub allocated_capacity: AllocatedCapacity,
    /// Host folders that `localDirectory` inputs may read.
    #[serde(rename = "AllowListedLocalPaths")]
    pub allow_listed_local_paths: Vec<String>,
    /// Seconds between heartbeats.
    #[serde(rename = "HeartbeatIntervalSecs")]
    pub heartbeat_interval_secs: u64,
}

impl Default for ComputeSection {
    fn default() -> Self {
        Self {
            orchestrators: vec!["127.0.0.1:4222".to_string()],
            allocated_capacity: AllocatedCapacity::default(),
            allow_listed_local_paths: Vec::new(),
            heartbeat_interval_secs: 15,
        }
    }
}

/// `Compute.AllocatedCapacity.*`: absolute quantities (`2`, `500m`, `4Gb`) or shares of what was detected
/// (`80%`). Empty means the default share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocatedCapacity {
    #[serde(rename = "CPU")]
    pub cpu: String,
    #[serde(rename = "Memory")]
    pub memory: String,
    #[serde(rename = "Disk")]
    pub disk: String,
    #[serde(rename = "GPU")]
    pub gpu: String,
}

impl Default for AllocatedCapacity {
    fn default() -> Self {
        Self {
            cpu: "80%".to_string(),
            memory: "80%".to_string(),
            disk: "80%".to_string(),
            gpu: "100%".to_string(),
        }
    }
}

/// `JobAdmissionControl.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct JobAdmissionControl {
    #[serde(rename = "AcceptNetworkedJobs")]
    pub accept_networked_jobs: bool,
}

/// `Logging.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoggingConfig {
    /// `trace`, `debug`, `info`, `warn` or `error` (or a tracing filter).
    #[serde(rename = "Level")]
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_string(),
        }
    }
}

/// Formats a configuration file may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    Yaml,
    Json,
    Toml,
}

impl ConfigFormat {
    /// The format implied by a file name's extension (YAML when unknown).
    pub fn from_path(path: &str) -> Self {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Self::Json
        } else if lower.ends_with(".toml") {
            Self::Toml
        } else {
            Self::Yaml
        }
    }
}

impl NodeConfig {
    /// Builds the configuration from defaults, then an optional file's text, then `-c Key.Path=value`
    /// overrides, each layer over the one before. Keys are matched case-insensitively; an unknown key or a
    /// value of the wrong type is an error naming it.
    pub fn from_sources(
        file: Option<(&str, ConfigFormat)>,
        overrides: &[String],
    ) -> crate::Result<Self> {
        use figment::providers::{Format, Serialized};
        use figment::Figment;

        let template = serde_json::to_value(Self::default())
            .map_err(|e| crate::Error::internal(format!("config template: {e}")))?;
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some((text, format)) = file {
            let raw: serde_json::Value = match format {
                ConfigFormat::Json => serde_json::from_str(text)
                    .map_err(|e| crate::Error::invalid(format!("config file: {e}")))?,
                ConfigFormat::Yaml => {
                    if text.trim().is_empty() {
                        serde_json::Value::Object(Default::default())
                    } else {
                        yaml_serde::from_str(text)
                            .map_err(|e| crate::Error::invalid(format!("config file: {e}")))?
                    }
                }
                ConfigFormat::Toml => {
                    let data = figment::providers::Toml::string(text);
                    Figment::from(data)
                        .extract::<serde_json::Value>()
                        .map_err(|e| crate::Error::invalid(format!("config file: {e}")))?
                }
            };
            let raw = match raw {
                serde_json::Value::Null => serde_json::Value::Object(Default::default()),
                other => other,
            };
            let canonical = crate::config_tree::canonicalize(raw, &template)?;
            figment = figment.merge(Serialized::globals(canonical));
        }
        for assignment in overrides {
            let layer = crate::config_tree::parse_override(assignment, &template)?;
            figment = figment.merge(Serialized::globals(layer));
        }
        figment
            .extract::<Self>()
            .map_err(|e| crate::Error::invalid(format!("invalid configuration: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides_layer_over_defaults() {
        let yaml = "api:\n  port: 8000\ncompute:\n  orchestrators: [\"10.0.0.1:4222\"]\nlabels:\n  Zone: eu\n";
        let cfg = NodeConfig::from_sources(
            Some((yaml, ConfigFormat::Yaml)),
            &[
                "API.Host=127.0.0.1".to_string(),
                "Compute.AllocatedCapacity.CPU=2".to_string(),
            ],
        )
        .unwrap();
        assert_eq!(cfg.api.port, 8000);
        assert_eq!(cfg.api.host, "127.0.0.1");
        assert_eq!(cfg.compute.orchestrators, vec!["10.0.0.1:4222".to_string()]);
        assert_eq!(cfg.compute.allocated_capacity.cpu, "2");
        assert_eq!(cfg.labels.get("Zone").map(String::as_str), Some("eu"));
        assert_eq!(cfg.orchestrator.port, 4222);
    }

    #[test]
    fn wrong_type_and_unknown_key_are_errors() {
        let err = NodeConfig::from_sources(None, &["API.Port=notaport".to_string()]).unwrap_err();
        assert!(
            err.message.contains("Port") || err.message.contains("port"),
            "{}",
            err.message
        );
        let err =
            NodeConfig::from_sources(Some(("Bogus: 1", ConfigFormat::Yaml)), &[]).unwrap_err();
        assert!(err.message.contains("Bogus"), "{}", err.message);
    }
}
