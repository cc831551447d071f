//! Plumbing shared by the daemons (`orchestratord`, `computed`): `-c/--config FILE|Key.Path=value` arguments,
//! configuration loading, logging to stderr, the persisted node ID, and waiting for a stop signal.

use std::path::Path;

use bh_models::config::{ConfigFormat, NodeConfig};
use bh_models::{Error, Result};

/// The daemons' shared command line: `-c/--config FILE|Key.Path=value`, repeatable.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// A configuration file (YAML, JSON or TOML), or a `Key.Path=value` setting; repeatable, later wins.
    #[arg(short = 'c', long = "config", value_name = "FILE|KEY=VALUE")]
    pub config: Vec<String>,
}

/// Reads the configuration from `-c` values: defaults, then the file (the last one named), then the
/// `Key.Path=value` settings in the order given. A value with `=` that is not an existing file is a setting.
pub fn load_config(values: &[String]) -> Result<NodeConfig> {
    let mut file: Option<(String, ConfigFormat)> = None;
    let mut overrides = Vec::new();
    for value in values {
        if value.contains('=') && !Path::new(value).exists() {
            overrides.push(value.clone());
        } else {
            let text = std::fs::read_to_string(value)
                .map_err(|e| Error::invalid(format!("cannot read config file {value}: {e}")))?;
            file = Some((text, ConfigFormat::from_path(value)));
        }
    }
    NodeConfig::from_sources(file.as_ref().map(|(t, f)| (t.as_str(), *f)), &overrides)
}

/// Logs go to stderr; stdout carries only the ready line.
pub fn init_tracing(level: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The node ID: from the configuration, else the one kept in `DataDir/node_id`, else `fallback`, which is
/// written there so that the node keeps its ID across restarts.
pub fn node_id(config: &NodeConfig, data_dir: &Path, fallback: &str) -> Result<String> {
    if !config.node_id.is_empty() {
        return Ok(config.node_id.clone());
    }
    let path = data_dir.join("node_id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    std::fs::write(&path, fallback)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(fallback.to_string())
}

/// Ends the daemon's process: exit 0, or one `Error: ...` line (with its causes) and exit 1. It exits at once
/// rather than when the runtime has wound down, so a blocking task (a running workload, a long plan) cannot
/// keep a stopped daemon alive.
pub fn exit_with<E: std::fmt::Display>(result: std::result::Result<(), E>) -> ! {
    match result {
        Ok(()) => std::process::exit(0),
        Err(err) => {
            eprintln!("Error: {err:#}");
            std::process::exit(1)
        }
    }
}

/// How long a daemon waits for its tasks to finish after a stop signal before it exits anyway.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
