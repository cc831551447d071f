//! bh-executor-docker: runs `docker` engine tasks as containers on a local Docker Engine, through bollard.
//!
//! Use [`DockerExecutor::connect`] with a [`DockerConfig`] (socket and node id), then run it through the
//! [`bh_compute::Executor`] trait. Each run: makes sure the image is present (pulling it, bounded by
//! [`DockerConfig::pull_timeout`]), creates a labelled container with inputs bound read-only and outputs
//! writable, applies CPU, memory (swap capped to memory), disk (where the storage driver supports quotas)
//! and GPU limits, sets up networking (see [`proxy`] for the `HTTP` mode), streams and keeps the output,
//! kills the container (SIGKILL) on timeout or cancellation, and removes the container and any
//! per-execution network afterwards, whatever happened. Containers and networks carry the labels
//! [`LABEL_MANAGED`], [`LABEL_NODE_ID`], [`LABEL_EXECUTION_ID`] and [`LABEL_JOB_ID`], which
//! [`DockerExecutor::cleanup_leftovers`] uses to remove what a crashed node left behind.

pub mod proxy;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bh_compute::{ExecutionOutput, ExecutionRequest, Executor, ExecutorError, LogSink, LogStream};
use bh_models::job::{
    NETWORK_BRIDGE, NETWORK_DEFAULT, NETWORK_FULL, NETWORK_HOST, NETWORK_HTTP, NETWORK_NONE,
};
use bh_models::{NetworkConfig, SpecConfig};
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, DeviceRequest, HostConfig, Mount as DockerMount, MountType,
    NetworkCreateRequest,
};
use bollard::query_parameters::{
    CreateImageOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions,
    LogsOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::proxy::{DomainAllowList, EgressProxy, PeerSubnet};
pub use crate::spec::{DockerSpec, ENGINE_TYPE};

/// Label marking containers and networks created by bh.
pub const LABEL_MANAGED: &str = "bh.managed";
/// Label holding the id of the node that created a container or network.
pub const LABEL_NODE_ID: &str = "bh.node-id";
/// Label holding the execution id a container or network belongs to.
pub const LABEL_EXECUTION_ID: &str = "bh.execution-id";
/// Label holding the job id a container belongs to.
pub const LABEL_JOB_ID: &str = "bh.job-id";

/// How long to wait for the output stream to end after the container stopped.
const LOG_DRAIN_BOUND: Duration = Duration::from_secs(5);
/// How long `is_available` waits for the engine to answer a ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the Docker Engine and how this node's executor behaves.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Engine socket (`/var/run/docker.sock` or `unix:///...`); empty means `DOCKER_HOST` when it is a
    /// `unix://` address, else `/var/run/docker.sock`.
    pub socket: String,
    /// This node's id, put on every container and network (label [`LABEL_NODE_ID`]).
    pub node_id: String,
    /// Upper bound for pulling a missing image; a pull that takes longer fails the execution.
    pub pull_timeout: Duration,
    /// Timeout for each Engine API call to answer (streams may last longer).
    pub api_timeout: Duration,
    /// Fixed name resolutions for the `HTTP` mode egress proxy, consulted before DNS.
    pub proxy_resolve_overrides: BTreeMap<String, IpAddr>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            socket: String::new(),
            node_id: String::new(),
            pull_timeout: Duration::from_secs(300),
            api_timeout: Duration::from_secs(120),
            proxy_resolve_overrides: BTreeMap::new(),
        }
    }
}

/// Why the executor could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerError {
    /// The configuration is unusable (names the field).
    #[error("invalid docker executor config: {0}")]
    InvalidConfig(String),
    /// The engine could not be reached or refused a call.
    #[error("Docker Engine at {socket}: {message}")]
    Engine { socket: String, message: String },
}

impl From<DockerError> for bh_models::Error {
    fn from(error: DockerError) -> Self {
        match &error {
            DockerError::InvalidConfig(_) => bh_models::Error::invalid(error.to_string()),
            DockerError::Engine { .. } => {
                bh_models::Error::new(bh_models::ErrorCode::Unavailable, error.to_string())
            }
        }
    }
}

/// Runs docker engine tasks on a local Docker Engine.
pub struct DockerExecutor {
    docker: Docker,
    config: DockerConfig,
    socket_name: String,
    /// Whether the storage driver accepts a per-container `size` storage option.
    disk_quota_supported: bool,
}

/// How a task's network requirement maps onto Docker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NetworkPlan {
    /// `network_mode: none`.
    Isolated,
    /// The default bridge (outbound access, NAT).
    Bridge,
    /// The host's network namespace.
    Host,
    /// A per-execution internal network plus an egress proxy allowing these domains.
    Http(Vec<String>),
}

impl NetworkPlan {
    fn from_config(network: &NetworkConfig) -> Result<Self, ExecutorError> {
        let kind = network.network_type.trim();
        let is = |name: &str| kind.eq_ignore_ascii_case(name);
        if kind.is_empty() || is(NETWORK_NONE) || is(NETWORK_DEFAULT) {
            Ok(Self::Isolated)
        } else if is(NETWORK_FULL) || is(NETWORK_BRIDGE) {
            Ok(Self::Bridge)
        } else if is(NETWORK_HOST) {
            Ok(Self::Host)
        } else if is(NETWORK_HTTP) {
            Ok(Self::Http(network.domains.clone()))
        } else {
            Err(ExecutorError::InvalidSpec(format!(
                "Network.Type: unknown network type {kind:?}"
            )))
        }
    }
}

fn engine_error(context: &str, error: impl std::fmt::Display) -> ExecutorError {
    ExecutorError::Engine(format!("{context}: {error}"))
}

/// Keeps Docker object names to the characters Docker accepts.
fn docker_name_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Splits an image reference into the `fromImage` and `tag` of a pull (tag `latest` when none is given).
fn pull_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (image[..at].to_string(), Some(image[at + 1..].to_string()))
        }
        None => (image.to_string(), Some("latest".to_string())),
    }
}

fn is_status(error: &BollardError, status: u16) -> bool {
    matches!(error, BollardError::DockerResponseServerError { status_code, .. } if *status_code == status)
}

/// What a run created, removed by [`Leftovers::remove`] or, if the run future is dropped, by a spawned task.
struct Leftovers {
    docker: Docker,
    container: Option<String>,
    network: Option<String>,
    proxy: Option<EgressProxy>,
}

impl Leftovers {
    async fn remove_all(docker: Docker, container: Option<String>, network: Option<String>) {
        if let Some(id) = container {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            if let Err(e) = docker.remove_container(&id, Some(options)).await {
                if !is_status(&e, 404) {
                    tracing::warn!(container = %id, error = %e, "removing container failed");
                }
            }
        }
        if let Some(id) = network {
            if let Err(e) = docker.remove_network(&id).await {
                if !is_status(&e, 404) {
                    tracing::warn!(network = %id, error = %e, "removing network failed");
                }
            }
        }
    }

    async fn remove(mut self) {
        self.proxy = None;
        let (container, network) = (self.container.take(), self.network.take());
        Self::remove_all(self.docker.clone(), container, network).await;
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let (container, network) = (self.container.take(), self.network.take());
        if container.is_none() && network.is_none() {
            return;
        }
        // The run was abandoned midway (its future dropped): clean up in the background.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(Self::remove_all(self.docker.clone(), container, network));
        }
    }
}

/// How the wait for the container ended.
enum Ending {
    Exited,
    TimedOut(Duration),
    Cancelled,
    WaitFailed(String),
}

impl DockerExecutor {
    /// Connects to the engine, negotiates the API version, and removes what this node left behind.
    pub async fn connect(config: DockerConfig) -> Result<Self, DockerError> {
        if config.node_id.trim().is_empty() {
            return Err(DockerError::InvalidConfig("node_id is required".into()));
        }
        let socket_name = if config.socket.is_empty() {
            std::env::var("DOCKER_HOST")
                .ok()
                .filter(|h| h.starts_with("unix://"))
                .unwrap_or_else(|| "/var/run/docker.sock".to_string())
        } else {
            config.socket.clone()
        };
        let engine_err = |message: String| DockerError::Engine {
            socket: socket_name.clone(),
            message,
        };
        let docker = if config.socket.is_empty() {
            Docker::connect_with_unix_defaults()
        } else {
            Docker::connect_with_socket(
                &config.socket,
                config.api_timeout.as_secs().max(1),
                bollard::API_DEFAULT_VERSION,
            )
        }
        .map_err(|e| engine_err(e.to_string()))?
        .with_timeout(config.api_timeout);
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| engine_err(format!("does not answer: {e}")))?;
        let info = docker
            .info()
            .await
            .map_err(|e| engine_err(format!("info: {e}")))?;
        let driver = info.driver.unwrap_or_default();
        let backing_fs = info
            .driver_status
            .unwrap_or_default()
            .into_iter()
            .find(|pair| pair.first().is_some_and(|k| k == "Backing Filesystem"))
            .and_then(|pair| pair.get(1).cloned())
            .unwrap_or_default();
        let disk_quota_supported = matches!(
            driver.as_str(),
            "btrfs" | "zfs" | "devicemapper" | "windowsfilter"
        ) || (driver == "overlay2" && backing_fs == "xfs");
        let executor = Self {
            docker,
            config,
            socket_name,
            disk_quota_supported,
        };
        let removed = executor.cleanup_leftovers().await?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed containers and networks left behind by this node"
            );
        }
        Ok(executor)
    }

    /// The node id this executor labels its containers with.
    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    fn label_filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_MANAGED}=true"),
                format!("{LABEL_NODE_ID}={}", self.config.node_id),
            ],
        )])
    }

    fn engine_err(&self, message: String) -> DockerError {
        DockerError::Engine {
            socket: self.socket_name.clone(),
            message,
        }
    }

    /// Ids of the containers (running or not) this node created and has not removed.
    pub async fn managed_containers(&self) -> Result<Vec<String>, DockerError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(self.label_filters()),
            ..Default::default()
        };
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.engine_err(format!("listing containers: {e}")))?;
        Ok(containers.into_iter().filter_map(|c| c.id).collect())
    }

    /// Ids of the networks this node created and has not removed.
    pub async fn managed_networks(&self) -> Result<Vec<String>, DockerError> {
        let options = ListNetworksOptions {
            filters: Some(self.label_filters()),
        };
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| self.engine_err(format!("listing networks: {e}")))?;
        Ok(networks.into_iter().filter_map(|n| n.id).collect())
    }

    /// Removes every container and network labelled with this node's id (left by a crash); returns how
    /// many were removed. Call it only when this node runs nothing (`connect` does).
    pub async fn cleanup_leftovers(&self) -> Result<usize, DockerError> {
        let containers = self.managed_containers().await?;
        let networks = self.managed_networks().await?;
        let count = containers.len() + networks.len();
        for id in containers {
            Leftovers::remove_all(self.docker.clone(), Some(id), None).await;
        }
        for id in networks {
            Leftovers::remove_all(self.docker.clone(), None, Some(id)).await;
        }
        Ok(count)
    }

    /// Makes sure `image` is present locally, pulling it within the configured bound.
    async fn ensure_image(&self, image: &str) -> Result<(), ExecutorError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(engine_error(&format!("inspecting image {image}"), e)),
        }
        let (from_image, tag) = pull_reference(image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag,
            ..Default::default()
        };
        let pull = async {
            let mut progress = self.docker.create_image(Some(options), None, None);
            while let Some(item) = progress.next().await {
                let info = item.map_err(|e| engine_error(&format!("pulling image {image}"), e))?;
                if let Some(detail) = info.error_detail {
                    let message = detail.message.unwrap_or_else(|| "unknown error".into());
                    return Err(engine_error(&format!("pulling image {image}"), message));
                }
            }
            Ok(())
        };
        let bound = self.config.pull_timeout;
        tokio::time::timeout(bound, pull).await.map_err(|_| {
            ExecutorError::Engine(format!("pulling image {image}: not done within {bound:?}"))
        })??;
        // A pull may "succeed" without producing the reference asked for (for example a platform mismatch).
        self.docker
            .inspect_image(image)
            .await
            .map(|_| ())
            .map_err(|e| engine_error(&format!("image {image} missing after pull"), e))
    }

    fn labels(&self, request: &ExecutionRequest) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_NODE_ID.to_string(), self.config.node_id.clone()),
            (LABEL_EXECUTION_ID.to_string(), request.execution_id.clone()),
            (LABEL_JOB_ID.to_string(), request.job_id.clone()),
        ])
    }

    /// Creates the per-execution internal network and its egress proxy; returns the network name and the
    /// proxy environment variables.
    async fn setup_http_network(
        &self,
        request: &ExecutionRequest,
        domains: &[String],
        leftovers: &mut Leftovers,
    ) -> Result<(String, Vec<(String, String)>), ExecutorError> {
        let name = format!(
            "bh-{}-{}",
            docker_name_part(&self.config.node_id),
            docker_name_part(&request.execution_id)
        );
        let created = self
            .docker
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".to_string()),
                internal: Some(true),
                labels: Some(self.labels(request)),
                ..Default::default()
            })
            .await
            .map_err(|e| engine_error("creating the execution network", e))?;
        leftovers.network = Some(created.id.clone());
        let inspected = self
            .docker
            .inspect_network(&created.id, None)
            .await
            .map_err(|e| engine_error("inspecting the execution network", e))?;
        let ipam = inspected
            .ipam
            .and_then(|ipam| ipam.config)
            .and_then(|configs| configs.into_iter().find(|c| c.gateway.is_some()))
            .ok_or_else(|| {
                ExecutorError::Engine("the execution network has no gateway address".into())
            })?;
        let gateway: IpAddr = ipam
            .gateway
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| engine_error("the execution network's gateway address", e))?;
        let peers = ipam.subnet.as_deref().and_then(PeerSubnet::parse);
        let proxy = EgressProxy::start(
            gateway,
            DomainAllowList::new(domains),
            peers,
            self.config.proxy_resolve_overrides.clone(),
        )
        .await
        .map_err(|e| engine_error(&format!("starting the egress proxy on {gateway}"), e))?;
        let url = format!("http://{}", proxy.address());
        leftovers.proxy = Some(proxy);
        let env = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"]
            .into_iter()
            .map(|k| (k.to_string(), url.clone()))
            .chain([
                ("no_proxy".to_string(), "localhost,127.0.0.1".to_string()),
                ("NO_PROXY".to_string(), "localhost,127.0.0.1".to_string()),
            ])
            .collect();
        Ok((name, env))
    }

    /// Completes `streamed` with what the engine stored but the follow stream missed: Docker 20.10's
    /// follow reader may stop before the last chunk written as the container exits. The missing tail
    /// is passed to `sink` too.
    async fn reconcile_logs(
        &self,
        id: &str,
        streamed: ExecutionOutput,
        sink: &dyn LogSink,
    ) -> ExecutionOutput {
        let stored = match read_all_logs(&self.docker, id).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "re-reading container output failed");
                return streamed;
            }
        };
        let mut complete = streamed;
        for (kind, have, full) in [
            (LogStream::Stdout, &mut complete.stdout, stored.stdout),
            (LogStream::Stderr, &mut complete.stderr, stored.stderr),
        ] {
            if full.len() > have.len() && full.starts_with(have) {
                sink.write(kind, &full[have.len()..]);
                *have = full;
            }
        }
        complete
    }

    async fn run_container(
        &self,
        request: &ExecutionRequest,
        spec: &DockerSpec,
        plan: NetworkPlan,
        leftovers: &mut Leftovers,
        logs: Arc<dyn LogSink>,
        cancel: &CancellationToken,
    ) -> Result<ExecutionOutput, ExecutorError> {
        let (network_mode, proxy_env) = match &plan {
            NetworkPlan::Isolated => ("none".to_string(), Vec::new()),
            NetworkPlan::Bridge => ("bridge".to_string(), Vec::new()),
            NetworkPlan::Host => ("host".to_string(), Vec::new()),
            NetworkPlan::Http(domains) => {
                self.setup_http_network(request, domains, leftovers).await?
            }
        };

        // Later sources win: the image spec's variables, then the task's, then the proxy's.
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.extend(spec.environment.iter().cloned());
        env.extend(request.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.extend(proxy_env);

        let host_config = host_config(request, network_mode, self.disk_quota_supported)?;
        let resources = &request.resources;

        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: (!spec.parameters.is_empty()).then(|| spec.parameters.clone()),
            env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: (!spec.working_directory.is_empty())
                .then(|| spec.working_directory.clone()),
            labels: Some(self.labels(request)),
            host_config: Some(host_config),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None, body)
            .await
            .map_err(|e| engine_error("creating the container", e))?;
        let id = created.id;
        leftovers.container = Some(id.clone());
        if cancel.is_cancelled() {
            return Err(ExecutorError::Cancelled {
                partial: ExecutionOutput::default(),
            });
        }
        self.docker
            .start_container(&id, None)
            .await
            .map_err(|e| engine_error("starting the container", e))?;

        let collected = Arc::new(Mutex::new(ExecutionOutput::default()));
        let logs_sink = logs;
        let collector = tokio::spawn(collect_logs(
            self.docker.clone(),
            id.clone(),
            logs_sink.clone(),
            collected.clone(),
        ));

        let ending = {
            let mut wait = self.docker.wait_container(&id, None);
            let deadline = async {
                match request.timeout {
                    Some(timeout) => {
                        tokio::time::sleep(timeout).await;
                        timeout
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                waited = wait.next() => match waited {
                    Some(Ok(_)) | Some(Err(BollardError::DockerContainerWaitError { .. })) => Ending::Exited,
                    Some(Err(e)) => Ending::WaitFailed(e.to_string()),
                    None => Ending::WaitFailed("the wait stream ended early".to_string()),
                },
                timeout = deadline => Ending::TimedOut(timeout),
                _ = cancel.cancelled() => Ending::Cancelled,
            }
        };
        if !matches!(ending, Ending::Exited) {
            let kill = KillContainerOptions {
                signal: "SIGKILL".to_string(),
            };
            if let Err(e) = self.docker.kill_container(&id, Some(kill)).await {
                // 409: it already stopped by itself.
                if !is_status(&e, 409) {
                    tracing::warn!(container = %id, error = %e, "killing container failed");
                }
            }
        }
        // The log stream ends when the container stops; bound it in case the engine does not close it.
        let mut collector = collector;
        if tokio::time::timeout(LOG_DRAIN_BOUND, &mut collector)
            .await
            .is_err()
        {
            tracing::warn!(container = %id, "container output stream did not end; output may be cut");
            collector.abort();
        }
        let streamed = collected
            .lock()
            .map(|o| o.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        let output = self.reconcile_logs(&id, streamed, logs_sink.as_ref()).await;

        match ending {
            Ending::TimedOut(timeout) => Err(ExecutorError::Timeout {
                timeout,
                partial: output,
            }),
            Ending::Cancelled => Err(ExecutorError::Cancelled { partial: output }),
            Ending::WaitFailed(message) => Err(ExecutorError::Engine(format!(
                "waiting for the container: {message}"
            ))),
            Ending::Exited => {
                let inspected = self
                    .docker
                    .inspect_container(&id, None)
                    .await
                    .map_err(|e| engine_error("inspecting the finished container", e))?;
                let state = inspected.state.unwrap_or_default();
                let exit_code = state.exit_code.unwrap_or(-1);
                let oom_killed =
                    state.oom_killed.unwrap_or(false) || (exit_code == 137 && resources.memory > 0);
                if oom_killed {
                    return Err(ExecutorError::ResourceLimit {
                        message: format!("memory limit exceeded ({} bytes)", resources.memory),
                        partial: output,
                    });
                }
                Ok(ExecutionOutput {
                    exit_code,
                    ..output
                })
            }
        }
    }
}

/// Reads a stopped container's whole output (no follow).
async fn read_all_logs(docker: &Docker, id: &str) -> Result<ExecutionOutput, BollardError> {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut output = ExecutionOutput::default();
    let mut stream = docker.logs(id, Some(options));
    while let Some(item) = stream.next().await {
        match item? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                output.stdout.extend_from_slice(&message)
            }
            LogOutput::StdErr { message } => output.stderr.extend_from_slice(&message),
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(output)
}

/// Follows the container's output until it ends, feeding `sink` and keeping everything in `collected`.
async fn collect_logs(
    docker: Docker,
    id: String,
    sink: Arc<dyn LogSink>,
    collected: Arc<Mutex<ExecutionOutput>>,
) {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut stream = docker.logs(&id, Some(options));
    while let Some(item) = stream.next().await {
        let (kind, message) = match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                (LogStream::Stdout, message)
            }
            Ok(LogOutput::StdErr { message }) => (LogStream::Stderr, message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "reading container output failed");
                break;
            }
        };
        sink.write(kind, &message);
        let mut output = collected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match kind {
            LogStream::Stdout => output.stdout.extend_from_slice(&message),
            LogStream::Stderr => output.stderr.extend_from_slice(&message),
        }
    }
}

/// The container's host settings: bind mounts (inputs read-only), network mode and resource limits.
fn host_config(
    request: &ExecutionRequest,
    network_mode: String,
    disk_quota_supported: bool,
) -> Result<HostConfig, ExecutorError> {
    let mounts = request
        .inputs
        .iter()
        .map(|m| (m, true))
        .chain(request.outputs.iter().map(|m| (m, m.read_only)))
        .map(|(mount, read_only)| DockerMount {
            target: Some(mount.target.clone()),
            source: Some(mount.host_path.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(read_only),
            ..Default::default()
        })
        .collect::<Vec<_>>();

    let resources = &request.resources;
    let mut host_config = HostConfig {
        mounts: Some(mounts),
        network_mode: Some(network_mode),
        ..Default::default()
    };
    if resources.cpu > 0.0 {
        host_config.nano_cpus = Some((resources.cpu * 1e9).round() as i64);
    }
    if resources.memory > 0 {
        let memory = i64::try_from(resources.memory).map_err(|_| {
            ExecutorError::InvalidSpec(format!(
                "Resources.Memory: {} bytes is too large",
                resources.memory
            ))
        })?;
        host_config.memory = Some(memory);
        // Equal to Memory: no swap on top, so the limit is real.
        host_config.memory_swap = Some(memory);
    }
    if resources.disk > 0 {
        if disk_quota_supported {
            host_config.storage_opt = Some(HashMap::from([(
                "size".to_string(),
                resources.disk.to_string(),
            )]));
        } else {
            tracing::warn!(
                execution_id = %request.execution_id,
                disk = resources.disk,
                "the Docker storage driver cannot limit container disk size; disk limit not enforced"
            );
        }
    }
    if resources.gpu > 0 {
        host_config.device_requests = Some(vec![DeviceRequest {
            driver: Some("nvidia".to_string()),
            count: Some(i64::try_from(resources.gpu).unwrap_or(i64::MAX)),
            capabilities: Some(vec![vec!["gpu".to_string()]]),
            ..Default::default()
        }]);
    }
    Ok(host_config)
}

fn check_mounts(request: &ExecutionRequest) -> Result<(), ExecutorError> {
    for (kind, mount) in request
        .inputs
        .iter()
        .map(|m| ("input", m))
        .chain(request.outputs.iter().map(|m| ("output", m)))
    {
        if !mount.host_path.is_absolute() {
            return Err(ExecutorError::InvalidSpec(format!(
                "{kind} mount {}: host path {} is not absolute",
                mount.target,
                mount.host_path.display()
            )));
        }
        if !mount.target.starts_with('/') {
            return Err(ExecutorError::InvalidSpec(format!(
                "{kind} mount target {:?} is not an absolute path",
                mount.target
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl Executor for DockerExecutor {
    fn engine_type(&self) -> &str {
        ENGINE_TYPE
    }

    async fn is_available(&self) -> Result<(), String> {
        match tokio::time::timeout(PING_TIMEOUT, self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "Docker Engine at {} does not answer: {e}",
                self.socket_name
            )),
            Err(_) => Err(format!(
                "Docker Engine at {} did not answer within {PING_TIMEOUT:?}",
                self.socket_name
            )),
        }
    }

    fn validate(&self, engine: &SpecConfig) -> Result<(), ExecutorError> {
        DockerSpec::parse(engine).map(|_| ())
    }

    async fn run(
        &self,
        request: ExecutionRequest,
        logs: Arc<dyn LogSink>,
        cancel: CancellationToken,
    ) -> Result<ExecutionOutput, ExecutorError> {
        let spec = DockerSpec::parse(&request.engine)?;
        check_mounts(&request)?;
        let plan = NetworkPlan::from_config(&request.network)?;
        tokio::select! {
            pulled = self.ensure_image(&spec.image) => pulled?,
            _ = cancel.cancelled() => {
                return Err(ExecutorError::Cancelled { partial: ExecutionOutput::default() });
            }
        }
        let mut leftovers = Leftovers {
            docker: self.docker.clone(),
            container: None,
            network: None,
            proxy: None,
        };
        let result = self
            .run_container(&request, &spec, plan, &mut leftovers, logs, &cancel)
            .await;
        leftovers.remove().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_get_a_tag() {
        assert_eq!(
            pull_reference("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            pull_reference("busybox:1.36"),
            ("busybox".into(), Some("1.36".into()))
        );
        assert_eq!(
            pull_reference("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), Some("latest".into()))
        );
        assert_eq!(
            pull_reference("localhost:5000/a/b:v2"),
            ("localhost:5000/a/b".into(), Some("v2".into()))
        );
        assert_eq!(pull_reference("a@sha256:00"), ("a@sha256:00".into(), None));
    }

    #[test]
    fn network_modes_map_and_unknown_is_named() {
        let cfg = |t: &str| NetworkConfig {
            network_type: t.into(),
            ..Default::default()
        };
        assert_eq!(
            NetworkPlan::from_config(&cfg("")).unwrap(),
            NetworkPlan::Isolated
        );
        assert_eq!(
            NetworkPlan::from_config(&cfg("none")).unwrap(),
            NetworkPlan::Isolated
        );
        assert_eq!(
            NetworkPlan::from_config(&cfg("Full")).unwrap(),
            NetworkPlan::Bridge
        );
        assert_eq!(
            NetworkPlan::from_config(&cfg("bridge")).unwrap(),
            NetworkPlan::Bridge
        );
        assert_eq!(
            NetworkPlan::from_config(&cfg("Host")).unwrap(),
            NetworkPlan::Host
        );
        assert_eq!(
            NetworkPlan::from_config(&cfg("HTTP")).unwrap(),
            NetworkPlan::Http(Vec::new())
        );
        let err = NetworkPlan::from_config(&cfg("carrier-pigeon")).unwrap_err();
        assert!(err.to_string().contains("Network.Type"), "{err}");
    }

    #[test]
    fn host_config_maps_mounts_and_limits() {
        let request = ExecutionRequest {
            execution_id: "e".into(),
            job_id: "j".into(),
            engine: SpecConfig::new("docker"),
            env: BTreeMap::new(),
            inputs: vec![bh_compute::Mount {
                host_path: "/data/in".into(),
                target: "/inputs".into(),
                read_only: false,
            }],
            outputs: vec![bh_compute::Mount {
                host_path: "/data/out".into(),
                target: "/outputs".into(),
                read_only: false,
            }],
            resources: bh_models::Resources {
                cpu: 0.5,
                memory: 1 << 30,
                disk: 1 << 20,
                gpu: 2,
                gpus: Vec::new(),
            },
            network: NetworkConfig::default(),
            timeout: None,
            scratch_dir: "/tmp".into(),
        };
        let config = host_config(&request, "none".into(), true).unwrap();
        let mounts = config.mounts.unwrap();
        assert_eq!(mounts[0].target.as_deref(), Some("/inputs"));
        assert_eq!(
            mounts[0].read_only,
            Some(true),
            "inputs are always read-only"
        );
        assert_eq!(mounts[1].read_only, Some(false));
        assert_eq!(config.network_mode.as_deref(), Some("none"));
        assert_eq!(config.nano_cpus, Some(500_000_000));
        assert_eq!(config.memory, Some(1 << 30));
        assert_eq!(config.memory_swap, Some(1 << 30));
        assert_eq!(config.storage_opt.unwrap()["size"], "1048576");
        let gpus = &config.device_requests.unwrap()[0];
        assert_eq!(gpus.driver.as_deref(), Some("nvidia"));
        assert_eq!(gpus.count, Some(2));

        let without_quota = host_config(&request, "none".into(), false).unwrap();
        assert!(without_quota.storage_opt.is_none());
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(docker_name_part("node/1 x"), "node-1-x");
    }
}
