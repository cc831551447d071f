//! The executor conformance suite: engine-independent checks that every [`Executor`] must pass.
//!
//! Each engine's tests implement [`ConformanceTarget`], translating each [`Scenario`] ("print X", "exit
//! with N", "run forever"...) into an engine spec for that engine (docker: busybox `sh -c`, wasm: WAT
//! modules, mock: canned results), then call [`run_conformance_suite`] and assert on the report:
//!
//! ```ignore
//! let report = run_conformance_suite(&MyTarget::new()).await;
//! report.assert_all_passed();
//! ```
//!
//! The suite builds the requests itself (env, input and output mounts in temporary folders, resources,
//! timeouts) and checks outcomes: output content, exit codes, env, args, working directory, read-only
//! inputs, outputs collected on the host, timeout and cancellation bounds, and memory limits.
//! Compiled only with the `conformance` cargo feature.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bh_models::{NetworkConfig, Resources, SpecConfig};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::executor::{
    ExecutionOutput, ExecutionRequest, Executor, ExecutorError, LogSink, LogStream, Mount,
};

/// A workload behaviour the suite needs; the target turns it into an engine spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// Print `text` and a newline to stdout, exit 0.
    PrintStdout { text: String },
    /// Write `stderr` (and a newline) to stderr, exit with `code`.
    ExitWithCode { code: i64, stderr: String },
    /// Print the value of environment variable `name` (the suite sets it to `value` in the request env).
    EchoEnv { name: String, value: String },
    /// Print `args` separated by single spaces, passed to the workload as arguments.
    EchoArgs { args: Vec<String> },
    /// Run with working directory `dir` and print the working directory.
    PrintWorkdir { dir: String },
    /// Print the content of `<target>/<file_name>` (which is `content`), then try to create
    /// `<target>/written-by-workload` and print `WRITE-FAILED` if that fails, `WRITE-SUCCEEDED` if not.
    ReadInput {
        target: String,
        file_name: String,
        content: String,
    },
    /// Write `content` (no newline) to `<target>/<file_name>`, exit 0.
    WriteOutput {
        target: String,
        file_name: String,
        content: String,
    },
    /// Print `marker` and a newline to stdout, then run until killed.
    RunForever { marker: String },
    /// Use (touch) more memory than the request's memory limit, which is [`ConformanceTarget::memory_limit`].
    ExceedMemory,
    /// Print lines `out-1`..`out-<count>` to stdout and `err-1`..`err-<count>` to stderr, exit 0.
    ManyLines { count: usize },
}

/// One engine under test.
pub trait ConformanceTarget: Send + Sync {
    /// The executor to test.
    fn executor(&self) -> Arc<dyn Executor>;

    /// The engine spec that makes the workload behave as `scenario` says; `None` if the engine cannot
    /// express it (the check is then reported as skipped).
    fn engine_spec(&self, scenario: &Scenario) -> Option<SpecConfig>;

    /// The memory limit in bytes given to the `ExceedMemory` scenario.
    fn memory_limit(&self) -> u64 {
        32 * 1024 * 1024
    }

    /// The execution timeout used by the timeout check.
    fn timeout(&self) -> Duration {
        Duration::from_secs(2)
    }

    /// How long the workload may take to start (image, compile...), added to time bounds.
    fn startup_allowance(&self) -> Duration {
        Duration::from_secs(10)
    }

    /// How soon after cancellation `run` must return.
    fn cancel_bound(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Passed,
    Failed(String),
    /// The target cannot express the scenario.
    Skipped,
}

/// The result of one named check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub name: &'static str,
    pub outcome: CheckOutcome,
}

/// The results of a whole suite run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConformanceReport {
    pub results: Vec<CheckResult>,
}

impl ConformanceReport {
    /// The checks that failed, with their reasons.
    pub fn failures(&self) -> Vec<(&'static str, String)> {
        self.results
            .iter()
            .filter_map(|r| match &r.outcome {
                CheckOutcome::Failed(reason) => Some((r.name, reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// The names of the skipped checks.
    pub fn skipped(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|r| r.outcome == CheckOutcome::Skipped)
            .map(|r| r.name)
            .collect()
    }

    /// Panics with the whole report when any check failed.
    pub fn assert_all_passed(&self) {
        assert!(self.failures().is_empty(), "conformance failures:\n{self}");
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for result in &self.results {
            match &result.outcome {
                CheckOutcome::Passed => writeln!(f, "  ok      {}", result.name)?,
                CheckOutcome::Skipped => writeln!(f, "  skipped {}", result.name)?,
                CheckOutcome::Failed(reason) => writeln!(f, "  FAILED  {}: {reason}", result.name)?,
            }
        }
        Ok(())
    }
}

/// The names of all checks, in the order [`run_conformance_suite`] runs them.
pub const CHECK_NAMES: &[&str] = &[
    "stdout",
    "exit_code_and_stderr",
    "env",
    "args",
    "working_directory",
    "input_read_only",
    "output_collected",
    "full_output_and_log_sink",
    "timeout",
    "cancel",
    "memory_limit",
];

/// Runs every check against `target`, one after the other, and reports each outcome.
pub async fn run_conformance_suite(target: &dyn ConformanceTarget) -> ConformanceReport {
    let mut report = ConformanceReport::default();
    for name in CHECK_NAMES {
        let outcome = run_check(target, name).await;
        report.results.push(CheckResult { name, outcome });
    }
    report
}

/// Runs one check by name (one of [`CHECK_NAMES`]).
pub async fn run_check(target: &dyn ConformanceTarget, name: &str) -> CheckOutcome {
    let result = match name {
        "stdout" => check_stdout(target).await,
        "exit_code_and_stderr" => check_exit_code(target).await,
        "env" => check_env(target).await,
        "args" => check_args(target).await,
        "working_directory" => check_workdir(target).await,
        "input_read_only" => check_input_read_only(target).await,
        "output_collected" => check_output_collected(target).await,
        "full_output_and_log_sink" => check_full_output(target).await,
        "timeout" => check_timeout(target).await,
        "cancel" => check_cancel(target).await,
        "memory_limit" => check_memory_limit(target).await,
        other => Err(Failure::Failed(format!("no check named {other}"))),
    };
    match result {
        Ok(()) => CheckOutcome::Passed,
        Err(Failure::Skipped) => CheckOutcome::Skipped,
        Err(Failure::Failed(reason)) => CheckOutcome::Failed(reason),
    }
}

enum Failure {
    Skipped,
    Failed(String),
}

type CheckResultInner = Result<(), Failure>;

fn fail<T>(reason: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Failed(reason.into()))
}

/// Temporary folders of one request, removed when dropped.
struct Workspace {
    root: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Result<Self, Failure> {
        tempfile::Builder::new()
            .prefix("bh-conformance-")
            .tempdir()
            .map(|root| Self { root })
            .map_err(|e| Failure::Failed(format!("creating a temporary folder: {e}")))
    }

    fn folder(&self, name: &str) -> Result<std::path::PathBuf, Failure> {
        let path = self.root.path().join(name);
        std::fs::create_dir_all(&path)
            .map_err(|e| Failure::Failed(format!("creating {}: {e}", path.display())))?;
        Ok(path)
    }

    /// A request with an empty writable `/outputs` mount, no inputs and no limits.
    fn request(&self, engine: SpecConfig) -> Result<ExecutionRequest, Failure> {
        let outputs = self.folder("outputs")?;
        Ok(ExecutionRequest {
            execution_id: format!("conformance-{}", uuid::Uuid::new_v4().simple()),
            job_id: format!("conformance-job-{}", uuid::Uuid::new_v4().simple()),
            engine,
            env: BTreeMap::new(),
            inputs: Vec::new(),
            outputs: vec![Mount {
                host_path: outputs,
                target: "/outputs".to_string(),
                read_only: false,
            }],
            resources: Resources::default(),
            network: NetworkConfig::default(),
            timeout: None,
            scratch_dir: self.folder("scratch")?,
        })
    }
}

fn spec_for(target: &dyn ConformanceTarget, scenario: &Scenario) -> Result<SpecConfig, Failure> {
    target.engine_spec(scenario).ok_or(Failure::Skipped)
}

/// Keeps everything written to it and signals when a marker shows up on stdout.
struct RecordingSink {
    stdout: Mutex<Vec<u8>>,
    stderr: Mutex<Vec<u8>>,
    marker: Option<Vec<u8>>,
    marker_seen: AtomicBool,
    marker_notify: Notify,
}

impl RecordingSink {
    fn new(marker: Option<&str>) -> Arc<Self> {
        Arc::new(Self {
            stdout: Mutex::new(Vec::new()),
            stderr: Mutex::new(Vec::new()),
            marker: marker.map(|m| m.as_bytes().to_vec()),
            marker_seen: AtomicBool::new(false),
            marker_notify: Notify::new(),
        })
    }

    fn take(&self, stream: LogStream) -> Vec<u8> {
        let buffer = match stream {
            LogStream::Stdout => &self.stdout,
            LogStream::Stderr => &self.stderr,
        };
        buffer.lock().map(|b| b.clone()).unwrap_or_default()
    }

    async fn wait_for_marker(&self) {
        loop {
            let notified = self.marker_notify.notified();
            if self.marker_seen.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

impl LogSink for RecordingSink {
    fn write(&self, stream: LogStream, data: &[u8]) {
        let buffer = match stream {
            LogStream::Stdout => &self.stdout,
            LogStream::Stderr => &self.stderr,
        };
        if let Ok(mut buffer) = buffer.lock() {
            buffer.extend_from_slice(data);
            if stream == LogStream::Stdout {
                if let Some(marker) = &self.marker {
                    if contains(&buffer, marker) {
                        self.marker_seen.store(true, Ordering::SeqCst);
                        self.marker_notify.notify_waiters();
                    }
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() > 300 {
        format!("{}...", &text[..text.floor_char_boundary(300)])
    } else {
        text.into_owned()
    }
}

/// Runs `request` to an exit, with a generous overall bound so that a hanging executor fails the check.
async fn run_to_exit(
    target: &dyn ConformanceTarget,
    request: ExecutionRequest,
) -> Result<ExecutionOutput, Failure> {
    let bound = target.startup_allowance() + Duration::from_secs(30);
    match tokio::time::timeout(
        bound,
        target
            .executor()
            .run(request, RecordingSink::new(None), CancellationToken::new()),
    )
    .await
    {
        Err(_) => fail(format!("run did not return within {bound:?}")),
        Ok(Err(e)) => fail(format!("run failed: {e:?}")),
        Ok(Ok(output)) => Ok(output),
    }
}

fn expect_exit(output: &ExecutionOutput, code: i64) -> CheckResultInner {
    if output.exit_code != code {
        return fail(format!(
            "exit code {} (expected {code}); stdout {:?}; stderr {:?}",
            output.exit_code,
            show(&output.stdout),
            show(&output.stderr)
        ));
    }
    Ok(())
}

fn expect_stdout_contains(output: &ExecutionOutput, text: &str) -> CheckResultInner {
    if !contains(&output.stdout, text.as_bytes()) {
        return fail(format!(
            "stdout {:?} lacks {text:?}; stderr {:?}",
            show(&output.stdout),
            show(&output.stderr)
        ));
    }
    Ok(())
}

async fn check_stdout(target: &dyn ConformanceTarget) -> CheckResultInner {
    let text = "hello from the conformance suite";
    let spec = spec_for(
        target,
        &Scenario::PrintStdout {
            text: text.to_string(),
        },
    )?;
    let workspace = Workspace::new()?;
    let output = run_to_exit(target, workspace.request(spec)?).await?;
    expect_exit(&output, 0)?;
    expect_stdout_contains(&output, text)
}

async fn check_exit_code(target: &dyn ConformanceTarget) -> CheckResultInner {
    let message = "something went wrong";
    let spec = spec_for(
        target,
        &Scenario::ExitWithCode {
            code: 3,
            stderr: message.to_string(),
        },
    )?;
    let workspace = Workspace::new()?;
    let output = run_to_exit(target, workspace.request(spec)?).await?;
    expect_exit(&output, 3)?;
    if !contains(&output.stderr, message.as_bytes()) {
        return fail(format!(
            "stderr {:?} lacks {message:?}",
            show(&output.stderr)
        ));
    }
    if contains(&output.stdout, message.as_bytes()) {
        return fail("the stderr text also appeared on stdout");
    }
    Ok(())
}

async fn check_env(target: &dyn ConformanceTarget) -> CheckResultInner {
    let (name, value) = ("BH_CONFORMANCE_VAR", "value-from-the-request");
    let spec = spec_for(
        target,
        &Scenario::EchoEnv {
            name: name.to_string(),
            value: value.to_string(),
        },
    )?;
    let workspace = Workspace::new()?;
    let mut request = workspace.request(spec)?;
    request.env.insert(name.to_string(), value.to_string());
    let output = run_to_exit(target, request).await?;
    expect_exit(&output, 0)?;
    expect_stdout_contains(&output, value)
}

async fn check_args(target: &dyn ConformanceTarget) -> CheckResultInner {
    let args = vec![
        "first".to_string(),
        "second-arg".to_string(),
        "third".to_string(),
    ];
    let spec = spec_for(target, &Scenario::EchoArgs { args: args.clone() })?;
    let workspace = Workspace::new()?;
    let output = run_to_exit(target, workspace.request(spec)?).await?;
    expect_exit(&output, 0)?;
    expect_stdout_contains(&output, &args.join(" "))
}

async fn check_workdir(target: &dyn ConformanceTarget) -> CheckResultInner {
    let dir = "/tmp";
    let spec = spec_for(
        target,
        &Scenario::PrintWorkdir {
            dir: dir.to_string(),
        },
    )?;
    let workspace = Workspace::new()?;
    let output = run_to_exit(target, workspace.request(spec)?).await?;
    expect_exit(&output, 0)?;
    let printed = String::from_utf8_lossy(&output.stdout);
    if printed.trim() != dir {
        return fail(format!(
            "printed working directory {printed:?}, expected {dir:?}"
        ));
    }
    Ok(())
}

async fn check_input_read_only(target: &dyn ConformanceTarget) -> CheckResultInner {
    let (mount_target, file_name, content) = ("/inputs", "data.txt", "input-content-42");
    let spec = spec_for(
        target,
        &Scenario::ReadInput {
            target: mount_target.to_string(),
            file_name: file_name.to_string(),
            content: content.to_string(),
        },
    )?;
    let workspace = Workspace::new()?;
    let input_dir = workspace.folder("inputs")?;
    let input_file = input_dir.join(file_name);
    std::fs::write(&input_file, content)
        .map_err(|e| Failure::Failed(format!("writing {}: {e}", input_file.display())))?;
    let mut request = workspace.request(spec)?;
    request.inputs.push(Mount {
        host_path: input_dir.clone(),
        target: mount_target.to_string(),
        read_only: true,
    });
    let output = run_to_exit(target, request).await?;
    expect_stdout_contains(&output, content)?;
    if contains(&output.stdout, b"WRITE-SUCCEEDED") {
        return fail("the workload could write into its input mount");
    }
    expect_stdout_contains(&output, "WRITE-FAILED")?;
    if input_dir.join("written-by-workload").exists() {
        return fail("a file written by the workload appeared in the input folder");
    }
    match std::fs::read_to_string(&input_file) {
        Ok(now) if now == content => Ok(()),
        Ok(now) => fail(format!("input file changed to {now:?}")),
        Err(e) => fail(format!("input file unreadable after the run: {e}")),
    }
}

async fn check_output_collected(target: &dyn ConformanceTarget) -> CheckResultInner {
    let (file_name, content) = ("result.txt", "result-content-7");
    let spec = spec_for(
        target,
        &Scenario::WriteOutput {
            target: "/outputs".to_string(),
            file_name: file_name.to_string(),
            content: content.to_string(),
        },
    )?;
    let workspace = Workspace::new()?;
    let request = workspace.request(spec)?;
    let host_outputs = request.outputs[0].host_path.clone();
    let output = run_to_exit(target, request).await?;
    expect_exit(&output, 0)?;
    read_expected(&host_outputs.join(file_name), content)
}

fn read_expected(path: &Path, content: &str) -> CheckResultInner {
    match std::fs::read_to_string(path) {
        Ok(found) if found == content => Ok(()),
        Ok(found) => fail(format!(
            "{} holds {found:?}, expected {content:?}",
            path.display()
        )),
        Err(e) => fail(format!(
            "output {} not found on the host: {e}",
            path.display()
        )),
    }
}

async fn check_full_output(target: &dyn ConformanceTarget) -> CheckResultInner {
    let count = 2000;
    let spec = spec_for(target, &Scenario::ManyLines { count })?;
    let workspace = Workspace::new()?;
    let sink = RecordingSink::new(None);
    let request = workspace.request(spec)?;
    let bound = target.startup_allowance() + Duration::from_secs(30);
    let output = match tokio::time::timeout(
        bound,
        target
            .executor()
            .run(request, sink.clone(), CancellationToken::new()),
    )
    .await
    {
        Err(_) => return fail(format!("run did not return within {bound:?}")),
        Ok(Err(e)) => return fail(format!("run failed: {e:?}")),
        Ok(Ok(output)) => output,
    };
    expect_exit(&output, 0)?;
    let expected_out: String = (1..=count).map(|i| format!("out-{i}\n")).collect();
    let expected_err: String = (1..=count).map(|i| format!("err-{i}\n")).collect();
    if output.stdout != expected_out.as_bytes() {
        return fail(format!(
            "stdout is not the {count} expected lines ({} bytes, expected {})",
            output.stdout.len(),
            expected_out.len()
        ));
    }
    if output.stderr != expected_err.as_bytes() {
        return fail(format!(
            "stderr is not the {count} expected lines ({} bytes, expected {})",
            output.stderr.len(),
            expected_err.len()
        ));
    }
    if sink.take(LogStream::Stdout) != output.stdout {
        return fail("the log sink did not receive the same stdout as returned");
    }
    if sink.take(LogStream::Stderr) != output.stderr {
        return fail("the log sink did not receive the same stderr as returned");
    }
    Ok(())
}

const RUNNING_MARKER: &str = "conformance-workload-running";

async fn check_timeout(target: &dyn ConformanceTarget) -> CheckResultInner {
    let spec = spec_for(
        target,
        &Scenario::RunForever {
            marker: RUNNING_MARKER.to_string(),
        },
    )?;
    let workspace = Workspace::new()?;
    let mut request = workspace.request(spec)?;
    let timeout = target.timeout();
    request.timeout = Some(timeout);
    let bound = timeout + target.startup_allowance();
    let started = Instant::now();
    let result = tokio::time::timeout(
        bound + Duration::from_secs(10),
        target
            .executor()
            .run(request, RecordingSink::new(None), CancellationToken::new()),
    )
    .await;
    let elapsed = started.elapsed();
    match result {
        Err(_) => fail(format!("run ignored its {timeout:?} timeout")),
        Ok(Err(ExecutorError::Timeout {
            timeout: reported,
            partial,
        })) => {
            if reported != timeout {
                return fail(format!(
                    "reported timeout {reported:?}, expected {timeout:?}"
                ));
            }
            if elapsed < timeout {
                return fail(format!("returned after {elapsed:?}, before the timeout"));
            }
            if elapsed > bound {
                return fail(format!("returned after {elapsed:?}, beyond {bound:?}"));
            }
            if !contains(&partial.stdout, RUNNING_MARKER.as_bytes()) {
                return fail(format!(
                    "partial output {:?} lost what the workload printed",
                    show(&partial.stdout)
                ));
            }
            Ok(())
        }
        Ok(other) => fail(format!("expected a Timeout error, got {other:?}")),
    }
}

async fn check_cancel(target: &dyn ConformanceTarget) -> CheckResultInner {
    let spec = spec_for(
        target,
        &Scenario::RunForever {
            marker: RUNNING_MARKER.to_string(),
        },
    )?;
    let workspace = Workspace::new()?;
    let request = workspace.request(spec)?;
    let sink = RecordingSink::new(Some(RUNNING_MARKER));
    let cancel = CancellationToken::new();
    let executor = target.executor();
    let running = tokio::spawn({
        let sink = sink.clone();
        let cancel = cancel.clone();
        async move { executor.run(request, sink, cancel).await }
    });
    let allowance = target.startup_allowance();
    if tokio::time::timeout(allowance, sink.wait_for_marker())
        .await
        .is_err()
    {
        cancel.cancel();
        return fail(format!(
            "the workload did not print its marker within {allowance:?}"
        ));
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let bound = target.cancel_bound();
    let result = tokio::time::timeout(bound + Duration::from_secs(10), running).await;
    let elapsed = cancelled_at.elapsed();
    match result {
        Err(_) => fail("run did not return after cancellation"),
        Ok(Err(join)) => fail(format!("run panicked: {join}")),
        Ok(Ok(Err(ExecutorError::Cancelled { .. }))) if elapsed <= bound => Ok(()),
        Ok(Ok(Err(ExecutorError::Cancelled { .. }))) => fail(format!(
            "returned {elapsed:?} after cancellation, beyond {bound:?}"
        )),
        Ok(Ok(other)) => fail(format!("expected a Cancelled error, got {other:?}")),
    }
}

async fn check_memory_limit(target: &dyn ConformanceTarget) -> CheckResultInner {
    let spec = spec_for(target, &Scenario::ExceedMemory)?;
    let workspace = Workspace::new()?;
    let mut request = workspace.request(spec)?;
    request.resources.memory = target.memory_limit();
    let bound = target.startup_allowance() + Duration::from_secs(60);
    let result = tokio::time::timeout(
        bound,
        target
            .executor()
            .run(request, RecordingSink::new(None), CancellationToken::new()),
    )
    .await;
    match result {
        Err(_) => fail(format!("run did not return within {bound:?}")),
        Ok(Err(ExecutorError::ResourceLimit { message, .. })) => {
            if message.to_ascii_lowercase().contains("memory") {
                Ok(())
            } else {
                fail(format!(
                    "resource limit message {message:?} does not name memory"
                ))
            }
        }
        Ok(other) => fail(format!("expected a ResourceLimit error, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lists_failures_and_skips() {
        let report = ConformanceReport {
            results: vec![
                CheckResult {
                    name: "stdout",
                    outcome: CheckOutcome::Passed,
                },
                CheckResult {
                    name: "env",
                    outcome: CheckOutcome::Failed("nope".into()),
                },
                CheckResult {
                    name: "args",
                    outcome: CheckOutcome::Skipped,
                },
            ],
        };
        assert_eq!(report.failures(), vec![("env", "nope".to_string())]);
        assert_eq!(report.skipped(), vec!["args"]);
        let text = report.to_string();
        assert!(text.contains("FAILED  env: nope"), "{text}");
    }

    #[test]
    fn recording_sink_sees_a_marker_split_across_writes() {
        let sink = RecordingSink::new(Some("marker"));
        sink.write(LogStream::Stdout, b"mar");
        assert!(!sink.marker_seen.load(Ordering::SeqCst));
        sink.write(LogStream::Stdout, b"ker\n");
        assert!(sink.marker_seen.load(Ordering::SeqCst));
    }
}
