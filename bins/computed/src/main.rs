//! `computed`: wires configuration, the executors (wasm, docker), the compute node and the gRPC client that
//! dials the orchestrators. No logic of its own.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use bh_compute::{ComputeConfig, ComputeNode, Executor, UnavailableExecutor};
use bh_executor_docker::{DockerConfig, DockerExecutor};
use bh_executor_wasm::{WasmConfig, WasmExecutor};
use bh_models::{FromCompute, NodeInfo, ToCompute};
use bh_transport::daemon;
use bh_transport::service::ComputeAgent;
use clap::Parser;

/// The bh compute node: dials the orchestrator, bids for executions and runs them.
#[derive(Debug, Parser)]
#[command(name = "computed", version)]
struct Args {
    #[command(flatten)]
    settings: daemon::ConfigArgs,
}

#[tokio::main]
async fn main() {
    daemon::exit_with(run().await);
}

async fn run() -> Result<()> {
    let args = Args::parse();
    let config = daemon::load_config(&args.settings.config)?;
    daemon::init_tracing(&config.logging.level);

    let data_dir = PathBuf::from(&config.data_dir);
    let configured_id = Some(config.node_id.as_str()).filter(|id| !id.is_empty());
    let node_id = bh_compute::config::resolve_node_id(&data_dir, configured_id)?;

    let mut executors: Vec<Arc<dyn Executor>> = Vec::new();
    executors.push(Arc::new(WasmExecutor::new(WasmConfig::default())?));
    let docker_config = DockerConfig {
        node_id: node_id.clone(),
        ..DockerConfig::default()
    };
    match DockerExecutor::connect(docker_config).await {
        Ok(docker) => executors.push(Arc::new(docker)),
        Err(err) => {
            tracing::warn!(%err, "docker engine unavailable; docker jobs will be refused");
            executors.push(Arc::new(UnavailableExecutor::new(
                "docker",
                err.to_string(),
            )));
        }
    }

    let mut compute_config = ComputeConfig::new(&data_dir);
    compute_config.node_id = Some(node_id.clone());
    compute_config.labels = config.labels.clone();
    compute_config.allocated_capacity = config.compute.allocated_capacity.clone();
    compute_config.accept_networked_jobs = config.job_admission_control.accept_networked_jobs;
    compute_config.allowed_local_paths = config.compute.allow_listed_local_paths.clone();
    // The transport client sends heartbeats on its own timer.
    compute_config.heartbeat_interval = None;
    let node = ComputeNode::start(compute_config, executors)
        .await
        .context("start the compute node")?;

    let shutdown = tokio_util::sync::CancellationToken::new();
    // The agent endpoints (`bh agent node --api-port ...` shows engines, capacity and why an engine is
    // missing). On a host that also runs the orchestrator the port may be taken: the node works without them.
    let api_addr =
        match tokio::net::TcpListener::bind((config.api.host.as_str(), config.api.port)).await {
            Ok(listener) => {
                let addr = listener.local_addr()?;
                tracing::info!(%addr, "agent API listening");
                let router = bh_transport::agent_router(node.clone());
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .await
                });
                addr.to_string()
            }
            Err(err) => {
                tracing::warn!(
                    %err,
                    "agent API not served on {}:{} (set API.Port to serve it)",
                    config.api.host,
                    config.api.port
                );
                "none".to_string()
            }
        };

    let agent = Arc::new(AnnounceFirstConnection {
        node: node.clone(),
        announced: std::sync::Once::new(),
        orchestrators: config.compute.orchestrators.join(","),
        api: api_addr,
    });
    let opts = bh_transport::ClientOptions {
        heartbeat_interval: Duration::from_secs(config.compute.heartbeat_interval_secs.max(1)),
        ..bh_transport::ClientOptions::default()
    };
    let client = tokio::spawn(bh_transport::run_compute_client(
        config.compute.orchestrators.clone(),
        agent,
        opts,
        shutdown.clone(),
    ));

    tokio::select! {
        _ = daemon::wait_for_signal() => {}
        result = client => {
            result.context("compute client task")??;
        }
    }
    tracing::info!("shutting down");
    shutdown.cancel();
    node.shutdown();
    Ok(())
}

/// Passes everything to the node, and prints the ready line once the first handshake succeeded, so tools and
/// tests know when the node can take work.
struct AnnounceFirstConnection {
    node: Arc<ComputeNode>,
    announced: std::sync::Once,
    orchestrators: String,
    api: String,
}

#[async_trait]
impl ComputeAgent for AnnounceFirstConnection {
    fn node_info(&self) -> NodeInfo {
        self.node.node_info()
    }

    async fn on_connected(&self) {
        self.node.on_connected().await;
        self.announced.call_once(|| {
            println!(
                "computed ready node={} orchestrators={} api={}",
                self.node.node_id(),
                self.orchestrators,
                self.api
            );
        });
    }

    async fn handle(&self, msg: ToCompute) {
        self.node.handle(msg).await;
    }

    async fn next_outbound(&self) -> Option<FromCompute> {
        self.node.next_outbound().await
    }
}
