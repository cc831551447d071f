//! A scriptable in-process executor for tests: canned output, exit code and duration, requests recorded.
//!
//! The duration runs on tokio's clock (so tests can `tokio::time::pause()`), and an optional gate
//! ([`tokio::sync::Notify`]) lets a test hold a run until it releases it. Engine params may override the
//! configured behaviour per request (see [`MockExecutor`]), which is how the conformance suite drives it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bh_models::SpecConfig;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::executor::{
    ExecutionOutput, ExecutionRequest, Executor, ExecutorError, LogSink, LogStream,
};

/// What a [`MockExecutor`] run does, unless the request's engine params say otherwise.
#[derive(Debug, Clone, Default)]
pub struct MockBehaviour {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
    /// How long the run takes on tokio's clock.
    pub duration: Duration,
    /// When set, the run also waits for this to be notified (after `duration`).
    pub gate: Option<Arc<Notify>>,
    /// Never finish on its own: only a timeout or cancellation ends the run.
    pub run_forever: bool,
    /// Files written into the first output mount (name relative to it, content).
    pub output_files: BTreeMap<String, Vec<u8>>,
    /// Returned instead of an output when the run finishes.
    pub error: Option<ExecutorError>,
}

/// An executor that pretends to run workloads.
///
/// Engine params recognised (keys case-insensitive), each overriding the configured [`MockBehaviour`]:
/// `Stdout`, `Stderr` (strings), `ExitCode` (integer), `DurationMs` (integer), `RunForever` (bool),
/// `Files` (object of file name to string content, written into the first output mount),
/// `Fail` (string: an `Engine` error) and `ResourceLimit` (string: a `ResourceLimit` error).
pub struct MockExecutor {
    engine_type: String,
    behaviour: Mutex<MockBehaviour>,
    availability: Mutex<Result<(), String>>,
    requests: Mutex<Vec<ExecutionRequest>>,
    started: Notify,
}

impl Default for MockExecutor {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the recorded state from the others.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MockExecutor {
    /// A mock serving engine type `mock` that exits 0 at once with no output.
    pub fn new() -> Self {
        Self::with_behaviour(MockBehaviour::default())
    }

    /// A mock serving engine type `mock` with the given behaviour.
    pub fn with_behaviour(behaviour: MockBehaviour) -> Self {
        Self {
            engine_type: "mock".to_string(),
            behaviour: Mutex::new(behaviour),
            availability: Mutex::new(Ok(())),
            requests: Mutex::new(Vec::new()),
            started: Notify::new(),
        }
    }

    /// Serves another engine type (for example `docker`, to stand in for a real engine).
    pub fn with_engine_type(mut self, engine_type: impl Into<String>) -> Self {
        self.engine_type = engine_type.into();
        self
    }

    /// Replaces the behaviour for later runs.
    pub fn set_behaviour(&self, behaviour: MockBehaviour) {
        *lock(&self.behaviour) = behaviour;
    }

    /// Makes `is_available` answer `availability` from now on.
    pub fn set_available(&self, availability: Result<(), String>) {
        *lock(&self.availability) = availability;
    }

    /// Every request run so far, in order.
    pub fn requests(&self) -> Vec<ExecutionRequest> {
        lock(&self.requests).clone()
    }

    /// Resolves when the next run starts (or at once if one started since the last wait).
    pub async fn wait_started(&self) {
        self.started.notified().await;
    }

    fn behaviour_for(&self, engine: &SpecConfig) -> Result<MockBehaviour, ExecutorError> {
        let mut behaviour = lock(&self.behaviour).clone();
        let string_param = |key: &str| -> Result<Option<String>, ExecutorError> {
            match engine.param(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ExecutorError::InvalidSpec(format!(
                    "{key} must be a string"
                ))),
            }
        };
        if let Some(stdout) = string_param("Stdout")? {
            behaviour.stdout = stdout.into_bytes();
        }
        if let Some(stderr) = string_param("Stderr")? {
            behaviour.stderr = stderr.into_bytes();
        }
        if let Some(value) = engine.param("ExitCode") {
            behaviour.exit_code = value.as_i64().ok_or_else(|| {
                ExecutorError::InvalidSpec("ExitCode must be an integer".to_string())
            })?;
        }
        if let Some(value) = engine.param("DurationMs") {
            let millis = value.as_u64().ok_or_else(|| {
                ExecutorError::InvalidSpec("DurationMs must be a non-negative integer".to_string())
            })?;
            behaviour.duration = Duration::from_millis(millis);
        }
        if let Some(value) = engine.param("RunForever") {
            behaviour.run_forever = value.as_bool().ok_or_else(|| {
                ExecutorError::InvalidSpec("RunForever must be a boolean".to_string())
            })?;
        }
        if let Some(value) = engine.param("Files") {
            let files = value
                .as_object()
                .ok_or_else(|| ExecutorError::InvalidSpec("Files must be an object".to_string()))?;
            for (name, content) in files {
                let content = content.as_str().ok_or_else(|| {
                    ExecutorError::InvalidSpec(format!("Files.{name} must be a string"))
                })?;
                behaviour
                    .output_files
                    .insert(name.clone(), content.as_bytes().to_vec());
            }
        }
        if let Some(message) = string_param("Fail")? {
            behaviour.error = Some(ExecutorError::Engine(message));
        }
        if let Some(message) = string_param("ResourceLimit")? {
            behaviour.error = Some(ExecutorError::ResourceLimit {
                message,
                partial: ExecutionOutput::default(),
            });
        }
        Ok(behaviour)
    }
}

#[async_trait]
impl Executor for MockExecutor {
    fn engine_type(&self) -> &str {
        &self.engine_type
    }

    async fn is_available(&self) -> Result<(), String> {
        lock(&self.availability).clone()
    }

    fn validate(&self, engine: &SpecConfig) -> Result<(), ExecutorError> {
        self.behaviour_for(engine).map(|_| ())
    }

    async fn run(
        &self,
        request: ExecutionRequest,
        logs: Arc<dyn LogSink>,
        cancel: CancellationToken,
    ) -> Result<ExecutionOutput, ExecutorError> {
        let behaviour = self.behaviour_for(&request.engine)?;
        lock(&self.requests).push(request.clone());
        self.started.notify_one();

        let output = ExecutionOutput {
            stdout: behaviour.stdout.clone(),
            stderr: behaviour.stderr.clone(),
            exit_code: behaviour.exit_code,
        };
        if !output.stdout.is_empty() {
            logs.write(LogStream::Stdout, &output.stdout);
        }
        if !output.stderr.is_empty() {
            logs.write(LogStream::Stderr, &output.stderr);
        }

        let work = async {
            tokio::time::sleep(behaviour.duration).await;
            if let Some(gate) = &behaviour.gate {
                gate.notified().await;
            }
            if behaviour.run_forever {
                std::future::pending::<()>().await;
            }
        };
        let deadline = async {
            match request.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = work => {}
            _ = deadline => {
                return Err(ExecutorError::Timeout {
                    timeout: request.timeout.unwrap_or_default(),
                    partial: output,
                });
            }
            _ = cancel.cancelled() => {
                return Err(ExecutorError::Cancelled { partial: output });
            }
        }

        if !behaviour.output_files.is_empty() {
            let Some(mount) = request.outputs.first() else {
                return Err(ExecutorError::Engine(
                    "mock: Files given but the request has no output mount".to_string(),
                ));
            };
            for (name, content) in &behaviour.output_files {
                let path = mount.host_path.join(name);
                std::fs::write(&path, content).map_err(|e| {
                    ExecutorError::Engine(format!("mock: writing {}: {e}", path.display()))
                })?;
            }
        }
        match behaviour.error {
            Some(ExecutorError::ResourceLimit { message, .. }) => {
                Err(ExecutorError::ResourceLimit {
                    message,
                    partial: output,
                })
            }
            Some(error) => Err(error),
            None => Ok(output),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::NullLogSink;
    use bh_models::{NetworkConfig, Resources};

    fn request(engine: SpecConfig, timeout: Option<Duration>) -> ExecutionRequest {
        ExecutionRequest {
            execution_id: "e-1".into(),
            job_id: "j-1".into(),
            engine,
            env: BTreeMap::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            resources: Resources::default(),
            network: NetworkConfig::default(),
            timeout,
            scratch_dir: std::env::temp_dir(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn duration_runs_on_tokio_time_and_requests_are_recorded() {
        let mock = MockExecutor::with_behaviour(MockBehaviour {
            stdout: b"hi".to_vec(),
            exit_code: 3,
            duration: Duration::from_secs(3600),
            ..Default::default()
        });
        let start = tokio::time::Instant::now();
        let out = mock
            .run(
                request(SpecConfig::new("mock"), None),
                Arc::new(NullLogSink),
                CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(out.exit_code, 3);
        assert_eq!(out.stdout, b"hi");
        assert!(start.elapsed() >= Duration::from_secs(3600));
        assert_eq!(mock.requests().len(), 1);
        assert_eq!(mock.requests()[0].execution_id, "e-1");
    }

    #[tokio::test]
    async fn gate_holds_the_run_until_released() {
        let gate = Arc::new(Notify::new());
        let mock = Arc::new(MockExecutor::with_behaviour(MockBehaviour {
            gate: Some(gate.clone()),
            ..Default::default()
        }));
        let running = {
            let mock = mock.clone();
            tokio::spawn(async move {
                mock.run(
                    request(SpecConfig::new("mock"), None),
                    Arc::new(NullLogSink),
                    CancellationToken::new(),
                )
                .await
            })
        };
        mock.wait_started().await;
        assert!(!running.is_finished());
        gate.notify_one();
        assert_eq!(running.await.unwrap().unwrap().exit_code, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn params_override_behaviour_and_timeout_applies() {
        let mock = MockExecutor::new().with_engine_type("docker");
        assert_eq!(mock.engine_type(), "docker");
        let spec = SpecConfig::new("docker")
            .with_param("runforever", true)
            .with_param("Stdout", "partial");
        let err = mock
            .run(
                request(spec, Some(Duration::from_secs(5))),
                Arc::new(NullLogSink),
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
        match err {
            ExecutorError::Timeout { timeout, partial } => {
                assert_eq!(timeout, Duration::from_secs(5));
                assert_eq!(partial.stdout, b"partial");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_params_name_the_field() {
        let mock = MockExecutor::new();
        let err = mock
            .validate(&SpecConfig::new("mock").with_param("ExitCode", "x"))
            .unwrap_err();
        assert!(err.to_string().contains("ExitCode"), "{err}");
    }

    #[tokio::test]
    async fn availability_is_configurable() {
        let mock = MockExecutor::new();
        assert!(mock.is_available().await.is_ok());
        mock.set_available(Err("engine down".into()));
        assert_eq!(mock.is_available().await, Err("engine down".to_string()));
    }
}
