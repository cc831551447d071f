//! `orchestratord`: wires configuration, the sled job store, the scheduler, the gRPC node listener and the
//! REST gateway into one process. No logic of its own.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bh_scheduler::orchestrator::{Orchestrator, OrchestratorConfig};
use bh_scheduler::scheduler::{JobScheduler, SchedulerConfig};
use bh_scheduler::SystemClock;
use bh_transport::daemon;
use clap::Parser;

/// The bh orchestrator: stores jobs, schedules them onto compute nodes and serves the REST API.
#[derive(Debug, Parser)]
#[command(name = "orchestratord", version)]
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

    let data_dir = Path::new(&config.data_dir);
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("create DataDir {}", data_dir.display()))?;
    let node_id = daemon::node_id(&config, data_dir, "orchestrator")?;

    let store = bh_jobstore::SledJobStore::open(data_dir.join("jobstore"))
        .with_context(|| format!("open the job store in {}", data_dir.display()))?;
    let scheduler = JobScheduler::new(SchedulerConfig::default());
    let orch_config = OrchestratorConfig {
        node_id,
        manual_approval: config.orchestrator.node_manager.manual_approval,
        disconnect_timeout: Duration::from_secs(
            config
                .orchestrator
                .node_manager
                .disconnect_timeout_secs
                .max(1),
        ),
        housekeeping_interval: Duration::from_secs(
            config.orchestrator.housekeeping_interval_secs.max(1),
        ),
        labels: config.labels.clone(),
        ..OrchestratorConfig::default()
    };
    let orchestrator = Orchestrator::start(
        orch_config,
        Arc::new(store),
        Arc::new(scheduler),
        Arc::new(SystemClock),
    )
    .await
    .context("start the orchestrator")?;

    let grpc_listener = tokio::net::TcpListener::bind((
        config.orchestrator.host.as_str(),
        config.orchestrator.port,
    ))
    .await
    .with_context(|| {
        format!(
            "listen for compute nodes on {}:{}",
            config.orchestrator.host, config.orchestrator.port
        )
    })?;
    let api_listener = tokio::net::TcpListener::bind((config.api.host.as_str(), config.api.port))
        .await
        .with_context(|| {
            format!(
                "listen for the API on {}:{}",
                config.api.host, config.api.port
            )
        })?;
    let grpc_addr = grpc_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;

    let shutdown = tokio_util::sync::CancellationToken::new();
    let grpc = tokio::spawn(bh_transport::serve_grpc(
        grpc_listener,
        orchestrator.clone(),
        shutdown.clone().cancelled_owned(),
    ));
    let router = bh_transport::router(orchestrator.clone());
    let api_shutdown = shutdown.clone();
    let api = tokio::spawn(async move {
        axum::serve(api_listener, router)
            .with_graceful_shutdown(api_shutdown.cancelled_owned())
            .await
    });

    // Tools and tests wait for this line instead of guessing when the daemon is up.
    println!("orchestratord ready api={api_addr} grpc={grpc_addr}");
    tracing::info!(%api_addr, %grpc_addr, "orchestrator ready");

    daemon::wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let graceful = async {
        orchestrator.shutdown().await;
        let _ = grpc.await;
        let _ = api.await;
    };
    // Everything acknowledged is already durable, so a stop that hangs (a worker busy in a long plan) may be
    // cut short: the next start re-queues the pending evaluations.
    if tokio::time::timeout(daemon::SHUTDOWN_GRACE, graceful)
        .await
        .is_err()
    {
        tracing::warn!("graceful shutdown took too long; exiting");
    }
    Ok(())
}
