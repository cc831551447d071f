//! The `Executor` trait that every engine (wasm, docker, mock) implements, and what it is given and returns.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bh_models::{NetworkConfig, Resources, SpecConfig};
use tokio_util::sync::CancellationToken;

/// A folder prepared on the host and mounted into the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where the data lies on the host.
    pub host_path: PathBuf,
    /// Where the workload sees it (for example `/inputs` or `/outputs`).
    pub target: String,
    pub read_only: bool,
}

/// Everything an executor needs to run one execution. Inputs are already prepared on the host.
#[derive(Debug, Clone)]
pub struct ExecutionRequest {
    pub execution_id: String,
    pub job_id: String,
    /// The task's engine spec (`Type` and `Params`, keys to be read case-insensitively).
    pub engine: SpecConfig,
    /// Environment variables, already resolved (`env:HOST` values replaced).
    pub env: BTreeMap<String, String>,
    /// Read-only input mounts; for inline or file inputs a file may be mounted instead of a folder.
    pub inputs: Vec<Mount>,
    /// Writable result folders (ResultPaths, `/outputs` by default), empty when the run starts.
    pub outputs: Vec<Mount>,
    /// Resources granted to the execution (CPU cores, memory and disk bytes, GPU count).
    pub resources: Resources,
    pub network: NetworkConfig,
    /// Kill the workload after this long; `None` means no limit.
    pub timeout: Option<Duration>,
    /// A private scratch folder for the executor, removed after the run.
    pub scratch_dir: PathBuf,
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Receives output while the workload runs (for live log streaming). Executors also return it in full.
pub trait LogSink: Send + Sync {
    fn write(&self, stream: LogStream, data: &[u8]);
}

/// A sink that drops everything.
pub struct NullLogSink;

impl LogSink for NullLogSink {
    fn write(&self, _stream: LogStream, _data: &[u8]) {}
}

/// What a workload produced when it ran to an exit (whatever its exit code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
}

/// Why a workload did not run to an exit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// The engine spec is malformed (names the parameter).
    #[error("invalid engine spec: {0}")]
    InvalidSpec(String),
    /// The workload ran past its timeout and was killed; output captured so far is kept.
    #[error("execution timed out after {timeout:?}")]
    Timeout {
        timeout: Duration,
        partial: ExecutionOutput,
    },
    /// The workload was stopped through the cancellation token; output captured so far is kept.
    #[error("execution cancelled")]
    Cancelled { partial: ExecutionOutput },
    /// The workload hit a resource limit (for example out of memory).
    #[error("resource limit exceeded: {message}")]
    ResourceLimit {
        message: String,
        partial: ExecutionOutput,
    },
    /// The engine failed (image missing, module invalid, daemon error...).
    #[error("{0}")]
    Engine(String),
}

/// A way to run workloads. Implementations must: enforce `timeout` themselves, stop the workload within a
/// second of `cancel` firing, capture stdout and stderr in full, and leave nothing behind (containers,
/// temporary files) whatever the outcome.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// The engine type this executor serves (`wasm`, `docker`, ...), matched case-insensitively.
    fn engine_type(&self) -> &str;

    /// Whether the engine can run work now; `Err` carries the reason shown to operators.
    async fn is_available(&self) -> Result<(), String>;

    /// Checks an engine spec before bidding, naming the bad parameter.
    fn validate(&self, engine: &SpecConfig) -> Result<(), ExecutorError>;

    /// Runs the workload to completion, a timeout, or cancellation.
    async fn run(
        &self,
        request: ExecutionRequest,
        logs: Arc<dyn LogSink>,
        cancel: CancellationToken,
    ) -> Result<ExecutionOutput, ExecutorError>;
}

/// Stands in for an engine that could not be set up (for example a Docker Engine that does not answer), so
/// that the node reports the engine as unavailable with the reason instead of silently lacking it.
pub struct UnavailableExecutor {
    engine_type: String,
    reason: String,
}

impl UnavailableExecutor {
    pub fn new(engine_type: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            engine_type: engine_type.into(),
            reason: reason.into(),
        }
    }
}

#[async_trait]
impl Executor for UnavailableExecutor {
    fn engine_type(&self) -> &str {
        &self.engine_type
    }

    async fn is_available(&self) -> Result<(), String> {
        Err(self.reason.clone())
    }

    fn validate(&self, _engine: &SpecConfig) -> Result<(), ExecutorError> {
        Err(ExecutorError::Engine(self.reason.clone()))
    }

    async fn run(
        &self,
        _request: ExecutionRequest,
        _logs: Arc<dyn LogSink>,
        _cancel: CancellationToken,
    ) -> Result<ExecutionOutput, ExecutorError> {
        Err(ExecutorError::Engine(self.reason.clone()))
    }
}
