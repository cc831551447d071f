//! The compute node: bids on executions, queues them by priority within its capacity, runs them through
//! the executors, publishes results, and reports back to the orchestrator through `ComputeAgent`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bh_models::node::NODE_TYPE_COMPUTE;
use bh_models::{
    BuildVersionInfo, ComputeNodeInfo, Execution, FromCompute, NodeInfo, Resources,
    RunCommandResult, ToCompute,
};
use bh_transport::service::ComputeAgent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::capacity;
use crate::config::{resolve_node_id, ComputeConfig};
use crate::error::ComputeError;
use crate::executor::{ExecutionOutput, ExecutionRequest, Executor, ExecutorError, LogSink};
use crate::inputs::{self, AllowedPath};
use crate::logs::LogBuffer;
use crate::publish;
use crate::store::{now_secs, ExecutionStore, LocalExecution, LocalState, StoredOutput};

/// Most bytes of each output stream sent in a report; the store keeps all of it.
pub const MAX_REPORTED_OUTPUT: usize = 1024 * 1024;

/// The message sent when an execution was running while the node stopped.
pub const RESTARTED_MESSAGE: &str = "compute node restarted while the execution was running";

/// Protocols this node speaks, as announced in its NodeInfo.
const SUPPORTED_PROTOCOLS: [&str; 1] = ["ncl/v1"];

/// A compute node. Create it with [`ComputeNode::start`] and hand it to the transport's gRPC client as
/// its [`ComputeAgent`].
pub struct ComputeNode {
    inner: Arc<Inner>,
}

struct EngineStatus {
    available: Vec<String>,
    problems: BTreeMap<String, String>,
}

struct QueuedExecution {
    id: String,
    priority: i64,
    seq: u64,
    resources: Resources,
}

struct RunningExecution {
    resources: Resources,
    cancel: CancellationToken,
    cancel_reason: Arc<Mutex<Option<String>>>,
}

#[derive(Default)]
struct Schedule {
    queue: Vec<QueuedExecution>,
    running: HashMap<String, RunningExecution>,
    used: Resources,
}

#[derive(Default)]
struct HeartbeatState {
    seq: u64,
    last_info: Option<NodeInfo>,
    heartbeat_due: bool,
}

struct Inner {
    config: ComputeConfig,
    node_id: String,
    labels: BTreeMap<String, String>,
    executors: Vec<Arc<dyn Executor>>,
    engines: Mutex<EngineStatus>,
    max_capacity: Resources,
    allowed_paths: Vec<AllowedPath>,
    store: ExecutionStore,
    schedule: Mutex<Schedule>,
    outbound_tx: mpsc::UnboundedSender<FromCompute>,
    outbound_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<FromCompute>>,
    heartbeat_ticker: tokio::sync::Mutex<Option<tokio::time::Interval>>,
    heartbeat: Mutex<HeartbeatState>,
    logs: Mutex<HashMap<String, Arc<LogBuffer>>>,
    next_seq: AtomicU64,
    shutdown: CancellationToken,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Go's names for the CPU architecture, as Bacalhau's `Architecture` label uses them.
fn go_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        "x86" => "386".to_string(),
        other => other.to_string(),
    }
}

impl ComputeNode {
    /// Starts a node: resolves its ID, detects capacity, checks the executors, opens the execution store,
    /// reports executions interrupted by a previous stop, and re-queues approved ones that never started.
    pub async fn start(
        config: ComputeConfig,
        executors: Vec<Arc<dyn Executor>>,
    ) -> Result<Arc<ComputeNode>, ComputeError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| ComputeError::io(&config.data_dir, e))?;
        let node_id = resolve_node_id(&config.data_dir, config.node_id.as_deref())?;
        let gpus = tokio::task::spawn_blocking(crate::gpu::detect_gpus)
            .await
            .unwrap_or_default();
        let detected = capacity::detect(&config.data_dir, gpus);
        let max_capacity = capacity::allocated(&detected, &config.allocated_capacity)?;
        let store = ExecutionStore::open(&config.data_dir.join("executions"))?;
        let mut labels = BTreeMap::from([
            ("Architecture".to_string(), go_arch()),
            (
                "Operating-System".to_string(),
                std::env::consts::OS.to_string(),
            ),
        ]);
        labels.extend(crate::gpu::gpu_labels(&max_capacity.gpus));
        labels.extend(config.labels.clone());
        let allowed_paths = config
            .allowed_local_paths
            .iter()
            .map(|p| AllowedPath::parse(p))
            .collect();
        let (outbound_tx, outbound_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            node_id,
            labels,
            executors,
            engines: Mutex::new(EngineStatus {
                available: Vec::new(),
                problems: BTreeMap::new(),
            }),
            max_capacity,
            allowed_paths,
            store,
            schedule: Mutex::new(Schedule::default()),
            outbound_tx,
            outbound_rx: tokio::sync::Mutex::new(outbound_rx),
            heartbeat_ticker: tokio::sync::Mutex::new(None),
            heartbeat: Mutex::new(HeartbeatState::default()),
            logs: Mutex::new(HashMap::new()),
            next_seq: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
            config,
        });
        inner.refresh_engines().await;
        inner.recover()?;
        tracing::info!(node_id = %inner.node_id, "compute node started");
        Ok(Arc::new(ComputeNode { inner }))
    }

    /// This node's ID.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// The capacity jobs may use on this node.
    pub fn max_capacity(&self) -> &Resources {
        &self.inner.max_capacity
    }

    /// The local record of an execution.
    pub fn execution(&self, id: &str) -> Result<Option<LocalExecution>, ComputeError> {
        self.inner.store.get(id)
    }

    /// The log buffer of an execution that ran (or runs) since the node started.
    pub fn logs(&self, id: &str) -> Option<Arc<LogBuffer>> {
        lock(&self.inner.logs).get(id).cloned()
    }

    /// Re-checks which engines are available (done at start and at each heartbeat).
    pub async fn refresh_engines(&self) {
        self.inner.refresh_engines().await;
    }

    /// Stops the node: cancels running executions and ends `next_outbound`.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        for running in lock(&self.inner.schedule).running.values() {
            *lock(&running.cancel_reason) = Some("compute node shutting down".to_string());
            running.cancel.cancel();
        }
    }
}

#[async_trait]
impl ComputeAgent for ComputeNode {
    fn node_info(&self) -> NodeInfo {
        self.inner.node_info()
    }

    async fn on_connected(&self) {
        self.inner.requeue_reports();
    }

    async fn handle(&self, msg: ToCompute) {
        Inner::handle(&self.inner, msg).await;
    }

    async fn next_outbound(&self) -> Option<FromCompute> {
        self.inner.next_outbound().await
    }
}

/// The resources an execution needs: what the orchestrator allocated, else what the task asks for.
fn execution_resources(execution: &Execution) -> Result<Resources, String> {
    let task = execution
        .job
        .as_ref()
        .and_then(|j| j.task())
        .ok_or_else(|| "the execution carries no job task".to_string())?;
    if let Some(allocated) = execution
        .allocated_resources
        .tasks
        .get(&task.name)
        .filter(|r| !r.is_zero())
    {
        return Ok(allocated.clone());
    }
    task.resources
        .to_resources()
        .map_err(|e| format!("invalid task Resources: {}", e.message))
}

fn describe(resources: &Resources) -> String {
    format!(
        "CPU {}, memory {}, disk {}, GPU {}",
        bh_models::format_cpu(resources.cpu),
        bh_models::format_bytes(resources.memory),
        bh_models::format_bytes(resources.disk),
        resources.gpu
    )
}

fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{d:?}")
    }
}

/// Output as reported to the orchestrator: each stream capped at [`MAX_REPORTED_OUTPUT`].
pub fn reported_output(output: &ExecutionOutput, error_msg: &str) -> RunCommandResult {
    let cap = |data: &[u8]| {
        let truncated = data.len() > MAX_REPORTED_OUTPUT;
        let kept = &data[..data.len().min(MAX_REPORTED_OUTPUT)];
        (String::from_utf8_lossy(kept).into_owned(), truncated)
    };
    let (stdout, stdout_truncated) = cap(&output.stdout);
    let (stderr, stderr_truncated) = cap(&output.stderr);
    RunCommandResult {
        stdout,
        stdout_truncated,
        stderr,
        stderr_truncated,
        exit_code: output.exit_code,
        error_msg: error_msg.to_string(),
    }
}

/// How a run ended, ready to be recorded and reported.
struct Outcome {
    state: LocalState,
    report: FromCompute,
    output: Option<StoredOutput>,
}

impl Inner {
    fn executor_for(&self, engine_type: &str) -> Option<Arc<dyn Executor>> {
        self.executors
            .iter()
            .find(|e| e.engine_type().eq_ignore_ascii_case(engine_type))
            .cloned()
    }

    async fn refresh_engines(&self) {
        let mut available = Vec::new();
        let mut problems = BTreeMap::new();
        for executor in &self.executors {
            match executor.is_available().await {
                Ok(()) => available.push(executor.engine_type().to_string()),
                Err(reason) => {
                    problems.insert(executor.engine_type().to_string(), reason);
                }
            }
        }
        let mut engines = lock(&self.engines);
        engines.available = available;
        engines.problems = problems;
    }

    fn node_info(&self) -> NodeInfo {
        let engines = lock(&self.engines);
        let schedule = lock(&self.schedule);
        let queued = schedule
            .queue
            .iter()
            .fold(Resources::default(), |sum, q| sum.add(&q.resources));
        let mut available = self.max_capacity.sub(&schedule.used);
        available.gpus = Vec::new();
        NodeInfo {
            node_id: self.node_id.clone(),
            node_type: NODE_TYPE_COMPUTE.to_string(),
            labels: self.labels.clone(),
            supported_protocols: SUPPORTED_PROTOCOLS.iter().map(|s| s.to_string()).collect(),
            compute_node_info: ComputeNodeInfo {
                execution_engines: engines.available.clone(),
                publishers: publish::supported_publishers(),
                storage_sources: inputs::supported_storage_sources(),
                max_capacity: self.max_capacity.clone(),
                queue_used_capacity: queued,
                available_capacity: available,
                max_job_requirements: self.max_capacity.clone(),
                running_executions: schedule.running.len() as i64,
                enqueued_executions: schedule.queue.len() as i64,
                address: self.config.address.clone(),
                engine_problems: engines.problems.clone(),
            },
            bacalhau_version: BuildVersionInfo::current(),
        }
    }

    /// Sends a message to the orchestrator (queued until the client picks it up).
    fn send(&self, msg: FromCompute) {
        // The receiver lives as long as `self`, so sending cannot fail while the node exists.
        let _ = self.outbound_tx.send(msg);
    }

    /// Stores `record` with `report` as its latest report, then sends the report.
    fn record_and_send(&self, mut record: LocalExecution, report: FromCompute) {
        record.report = Some(report.clone());
        record.updated_at = now_secs();
        if let Err(e) = self.store.put(&record) {
            tracing::error!(execution_id = %record.id(), error = %e, "cannot store execution");
        }
        self.send(report);
    }

    /// After a restart: executions that were running failed; approved ones that never started are queued
    /// again; old finished ones are dropped.
    fn recover(&self) -> Result<(), ComputeError> {
        let retention = i64::try_from(self.config.report_retention.as_secs()).unwrap_or(i64::MAX);
        let mut records = self.store.all()?;
        records.sort_by_key(|r| r.seq);
        let mut max_seq = 0;
        for mut record in records {
            max_seq = max_seq.max(record.seq);
            match record.state {
                LocalState::Running => {
                    record.state = LocalState::Failed;
                    record.report = Some(FromCompute::ComputeError {
                        execution_id: record.id().to_string(),
                        message: RESTARTED_MESSAGE.to_string(),
                        output: None,
                    });
                    record.updated_at = now_secs();
                    self.store.put(&record)?;
                }
                LocalState::Queued => {
                    let resources = execution_resources(&record.execution).unwrap_or_default();
                    lock(&self.schedule).queue.push(QueuedExecution {
                        id: record.id().to_string(),
                        priority: record.execution.job.as_ref().map_or(0, |j| j.priority),
                        seq: record.seq,
                        resources,
                    });
                }
                state
                    if state.is_terminal()
                        && now_secs().saturating_sub(record.updated_at) > retention =>
                {
                    self.store.remove(record.id())?;
                }
                _ => {}
            }
        }
        self.next_seq.store(max_seq + 1, Ordering::SeqCst);
        Ok(())
    }

    /// Queues the latest report of every execution that is still active or finished within the retention
    /// time (some may have been lost with the previous connection; duplicates are harmless).
    fn requeue_reports(&self) {
        let retention = i64::try_from(self.config.report_retention.as_secs()).unwrap_or(i64::MAX);
        let mut records = match self.store.all() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the execution store");
                return;
            }
        };
        records.sort_by_key(|r| (r.updated_at, r.seq));
        for record in records {
            let recent = now_secs().saturating_sub(record.updated_at) <= retention;
            if !record.state.is_terminal() || recent {
                if let Some(report) = record.report {
                    self.send(report);
                }
            }
        }
        lock(&self.heartbeat).last_info = None;
    }

    async fn next_outbound(&self) -> Option<FromCompute> {
        {
            let mut heartbeat = lock(&self.heartbeat);
            if heartbeat.heartbeat_due {
                heartbeat.heartbeat_due = false;
                heartbeat.seq += 1;
                return Some(FromCompute::Heartbeat { seq: heartbeat.seq });
            }
        }
        let mut rx = self.outbound_rx.lock().await;
        let mut ticker = self.heartbeat_ticker.lock().await;
        let period = self.config.heartbeat_interval.filter(|p| !p.is_zero());
        if ticker.is_none() {
            if let Some(period) = period {
                let mut interval =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                *ticker = Some(interval);
            }
        }
        let tick = async {
            match ticker.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => None,
            msg = rx.recv() => msg,
            _ = tick => {
                drop(rx);
                self.refresh_engines().await;
                let info = self.node_info();
                let mut heartbeat = lock(&self.heartbeat);
                if heartbeat.last_info.as_ref() != Some(&info) {
                    heartbeat.last_info = Some(info.clone());
                    heartbeat.heartbeat_due = true;
                    Some(FromCompute::UpdateNodeInfo { info: Box::new(info) })
                } else {
                    heartbeat.seq += 1;
                    Some(FromCompute::Heartbeat { seq: heartbeat.seq })
                }
            }
        }
    }

    async fn handle(self: &Arc<Self>, msg: ToCompute) {
        match msg {
            ToCompute::AskForBid {
                execution,
                pre_approved,
            } => self.ask_for_bid(*execution, pre_approved).await,
            ToCompute::BidAccepted { execution_id } => self.bid_accepted(&execution_id),
            ToCompute::BidRejected { execution_id, .. } => match self.store.get(&execution_id) {
                Ok(Some(record)) if record.state == LocalState::Accepted => {
                    if let Err(e) = self.store.remove(&execution_id) {
                        tracing::error!(%execution_id, error = %e, "cannot forget execution");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(%execution_id, error = %e, "cannot read execution"),
            },
            ToCompute::Cancel {
                execution_id,
                reason,
            } => self.cancel(&execution_id, &reason),
        }
    }

    /// Decides a bid: the resources the execution needs, or why the node refuses it.
    async fn bid(&self, execution: &Execution) -> Result<Resources, String> {
        let task = execution
            .job
            .as_ref()
            .and_then(|j| j.task())
            .ok_or_else(|| "the execution carries no job task".to_string())?;
        let engine_type = task.engine.config_type.as_str();
        let executor = self.executor_for(engine_type).ok_or_else(|| {
            let known: Vec<&str> = self.executors.iter().map(|e| e.engine_type()).collect();
            format!(
                "engine {engine_type:?} is not supported by this node, only {}",
                known.join(", ")
            )
        })?;
        executor.is_available().await.map_err(|reason| {
            format!("engine {engine_type} is not available on this node: {reason}")
        })?;
        executor.validate(&task.engine).map_err(|e| e.to_string())?;
        if task.network.is_networked() && !self.config.accept_networked_jobs {
            return Err(
                "networked jobs are not accepted by this node (JobAdmissionControl.AcceptNetworkedJobs)"
                    .to_string(),
            );
        }
        if !publish::is_supported(&task.publisher) {
            return Err(format!(
                "publisher {:?} is not supported by this node, only {}",
                task.publisher.config_type,
                publish::supported_publishers().join(", ")
            ));
        }
        let (_, module_sources) = inputs::engine_module_sources(&task.engine);
        let sources: Vec<_> = task
            .input_sources
            .iter()
            .chain(&module_sources)
            .cloned()
            .collect();
        inputs::check_sources(&sources)?;
        inputs::check_local_sources(&sources, &self.allowed_paths)?;
        inputs::resolve_env(&task.env).map_err(|e| e.to_string())?;
        let resources = execution_resources(execution)?;
        if !resources.fits_in(&self.max_capacity) {
            return Err(format!(
                "not enough capacity: the task asks for {} but this node has at most {}",
                describe(&resources),
                describe(&self.max_capacity)
            ));
        }
        Ok(resources)
    }

    async fn ask_for_bid(self: &Arc<Self>, execution: Execution, pre_approved: bool) {
        let id = execution.id.clone();
        match self.store.get(&id) {
            Ok(Some(record)) => {
                // Asked again (a lost answer): repeat the latest report, and honour a pre-approval.
                let state = record.state;
                if let Some(report) = record.report {
                    self.send(report);
                }
                if pre_approved && state == LocalState::Accepted {
                    self.enqueue(&id);
                }
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(execution_id = %id, error = %e, "cannot read execution"),
        }
        let decision = self.bid(&execution).await;
        let (state, report) = match &decision {
            Ok(_) => (
                LocalState::Accepted,
                FromCompute::BidResult {
                    execution_id: id.clone(),
                    accepted: true,
                    reason: String::new(),
                },
            ),
            Err(reason) => {
                tracing::info!(execution_id = %id, %reason, "bid rejected");
                (
                    LocalState::Rejected,
                    FromCompute::BidResult {
                        execution_id: id.clone(),
                        accepted: false,
                        reason: reason.clone(),
                    },
                )
            }
        };
        let record = LocalExecution {
            execution,
            state,
            report: None,
            output: None,
            seq: 0,
            updated_at: now_secs(),
        };
        self.record_and_send(record, report);
        if decision.is_ok() && pre_approved {
            self.enqueue(&id);
        }
    }

    fn bid_accepted(self: &Arc<Self>, id: &str) {
        match self.store.get(id) {
            Ok(Some(record)) if record.state == LocalState::Accepted => self.enqueue(id),
            Ok(Some(record)) => {
                // Already queued, running or finished: repeat where it stands.
                if let Some(report) = record.report {
                    self.send(report);
                }
            }
            Ok(None) => self.send(FromCompute::ComputeError {
                execution_id: id.to_string(),
                message: "this node has no bid for the execution".to_string(),
                output: None,
            }),
            Err(e) => tracing::error!(execution_id = %id, error = %e, "cannot read execution"),
        }
    }

    fn enqueue(self: &Arc<Self>, id: &str) {
        let mut record = match self.store.get(id) {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(execution_id = %id, error = %e, "cannot read execution");
                return;
            }
        };
        record.state = LocalState::Queued;
        record.seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        record.updated_at = now_secs();
        if let Err(e) = self.store.put(&record) {
            tracing::error!(execution_id = %id, error = %e, "cannot store execution");
        }
        let resources = execution_resources(&record.execution).unwrap_or_default();
        lock(&self.schedule).queue.push(QueuedExecution {
            id: id.to_string(),
            priority: record.execution.job.as_ref().map_or(0, |j| j.priority),
            seq: record.seq,
            resources,
        });
        self.start_ready();
    }

    /// Starts queued executions, highest priority first and FIFO within a priority, while they fit.
    fn start_ready(self: &Arc<Self>) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let mut schedule = lock(&self.schedule);
        schedule
            .queue
            .sort_by(|a, b| b.priority.cmp(&a.priority).then(a.seq.cmp(&b.seq)));
        let mut index = 0;
        while index < schedule.queue.len() {
            let needed = schedule.used.add(&schedule.queue[index].resources);
            if !needed.fits_in(&self.max_capacity) {
                index += 1;
                continue;
            }
            let queued = schedule.queue.remove(index);
            let cancel = CancellationToken::new();
            let cancel_reason = Arc::new(Mutex::new(None));
            schedule.used = needed;
            schedule.running.insert(
                queued.id.clone(),
                RunningExecution {
                    resources: queued.resources,
                    cancel: cancel.clone(),
                    cancel_reason: cancel_reason.clone(),
                },
            );
            let node = self.clone();
            tokio::spawn(async move {
                node.run_execution(queued.id, cancel, cancel_reason).await;
            });
        }
    }

    fn cancel(self: &Arc<Self>, id: &str, reason: &str) {
        let message = if reason.is_empty() {
            "cancelled".to_string()
        } else {
            format!("cancelled: {reason}")
        };
        {
            let schedule = lock(&self.schedule);
            if let Some(running) = schedule.running.get(id) {
                *lock(&running.cancel_reason) = Some(message);
                running.cancel.cancel();
                return;
            }
        }
        lock(&self.schedule).queue.retain(|q| q.id != id);
        match self.store.get(id) {
            Ok(Some(mut record)) if !record.state.is_terminal() => {
                record.state = LocalState::Cancelled;
                let report = FromCompute::ComputeError {
                    execution_id: id.to_string(),
                    message,
                    output: None,
                };
                self.record_and_send(record, report);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(execution_id = %id, error = %e, "cannot read execution"),
        }
        self.start_ready();
    }

    async fn run_execution(
        self: Arc<Self>,
        id: String,
        cancel: CancellationToken,
        cancel_reason: Arc<Mutex<Option<String>>>,
    ) {
        let outcome = match self.store.get(&id) {
            Ok(Some(mut record)) => {
                record.state = LocalState::Running;
                let started = FromCompute::ExecutionStarted {
                    execution_id: id.clone(),
                };
                self.record_and_send(record.clone(), started);
                let outcome = self
                    .execute(&record.execution, &cancel, &cancel_reason)
                    .await;
                Some((record, outcome))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(execution_id = %id, error = %e, "cannot read execution");
                None
            }
        };
        let work_dir = self.config.data_dir.join("work").join(&id);
        if let Err(e) = tokio::fs::remove_dir_all(&work_dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %work_dir.display(), error = %e, "cannot remove work folder");
            }
        }
        // Capacity is released before the final report, so the node's info agrees with it.
        {
            let mut schedule = lock(&self.schedule);
            if let Some(running) = schedule.running.remove(&id) {
                schedule.used = schedule.used.sub(&running.resources);
            }
        }
        if let Some((mut record, outcome)) = outcome {
            record.state = outcome.state;
            record.output = outcome.output;
            self.record_and_send(record, outcome.report);
        }
        self.start_ready();
    }

    async fn execute(
        &self,
        execution: &Execution,
        cancel: &CancellationToken,
        cancel_reason: &Mutex<Option<String>>,
    ) -> Outcome {
        let id = execution.id.clone();
        let failed = |message: String, output: Option<&ExecutionOutput>| Outcome {
            state: LocalState::Failed,
            report: FromCompute::ComputeError {
                execution_id: id.clone(),
                message: message.clone(),
                output: output.map(|o| reported_output(o, &message)),
            },
            output: output.map(|o| StoredOutput {
                stdout: o.stdout.clone(),
                stderr: o.stderr.clone(),
                exit_code: o.exit_code,
            }),
        };
        let cancelled = |output: Option<&ExecutionOutput>| {
            let message = lock(cancel_reason)
                .clone()
                .unwrap_or_else(|| "cancelled".to_string());
            Outcome {
                state: LocalState::Cancelled,
                ..failed(message, output)
            }
        };
        let Some(task) = execution.job.as_ref().and_then(|j| j.task()) else {
            return failed("the execution carries no job task".to_string(), None);
        };
        let Some(executor) = self.executor_for(&task.engine.config_type) else {
            return failed(
                format!(
                    "engine {:?} is not supported by this node",
                    task.engine.config_type
                ),
                None,
            );
        };
        let env = match inputs::resolve_env(&task.env) {
            Ok(env) => env,
            Err(e) => return failed(e.to_string(), None),
        };
        let resources = match execution_resources(execution) {
            Ok(r) => r,
            Err(e) => return failed(e, None),
        };
        let (engine, module_sources) = inputs::engine_module_sources(&task.engine);
        let work_dir = self.config.data_dir.join("work").join(&id);
        let prepared = tokio::select! {
            _ = cancel.cancelled() => return cancelled(None),
            prepared = inputs::prepare(&work_dir, task, &module_sources, &self.allowed_paths) => prepared,
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return failed(format!("preparing inputs failed: {e}"), None),
        };
        let logs = Arc::new(LogBuffer::new(self.config.log_buffer_bytes));
        lock(&self.logs).insert(id.clone(), logs.clone());
        let timeout_secs = task.timeouts.effective_execution_timeout();
        let timeout = (timeout_secs > 0).then(|| Duration::from_secs(timeout_secs as u64));
        let request = ExecutionRequest {
            execution_id: id.clone(),
            job_id: execution.job_id.clone(),
            engine,
            env,
            inputs: prepared.inputs.clone(),
            outputs: prepared.outputs.iter().map(|(_, m)| m.clone()).collect(),
            resources,
            network: task.network.clone(),
            timeout,
            scratch_dir: prepared.scratch_dir.clone(),
        };
        if cancel.is_cancelled() {
            return cancelled(None);
        }
        let sink: Arc<dyn LogSink> = logs;
        let result = executor.run(request, sink, cancel.clone()).await;
        match result {
            Ok(output) => {
                let published = publish::publish(
                    &task.publisher,
                    &self.config.data_dir.join("results"),
                    &id,
                    &prepared.outputs,
                    &output,
                )
                .await;
                match published {
                    Ok(published_result) => Outcome {
                        state: LocalState::Completed,
                        report: FromCompute::RunResult {
                            execution_id: id.clone(),
                            output: reported_output(&output, ""),
                            published_result,
                        },
                        output: Some(StoredOutput {
                            stdout: output.stdout,
                            stderr: output.stderr,
                            exit_code: output.exit_code,
                        }),
                    },
                    Err(e) => failed(e.to_string(), Some(&output)),
                }
            }
            Err(ExecutorError::Cancelled { partial }) => cancelled(Some(&partial)),
            Err(ExecutorError::Timeout { timeout, partial }) => failed(
                format!("execution timed out after {}", format_duration(timeout)),
                Some(&partial),
            ),
            Err(ExecutorError::ResourceLimit { message, partial }) => {
                failed(message, Some(&partial))
            }
            Err(e @ ExecutorError::InvalidSpec(_)) => failed(e.to_string(), None),
            Err(ExecutorError::Engine(message)) => failed(message, None),
        }
    }
}

impl bh_transport::service::AgentApi for ComputeNode {
    fn agent_node(&self) -> NodeInfo {
        self.inner.node_info()
    }

    fn agent_config(&self) -> serde_json::Value {
        let config = &self.inner.config;
        serde_json::json!({
            "DataDir": config.data_dir.display().to_string(),
            "NodeID": self.inner.node_id,
            "Labels": config.labels,
            "Compute": {
                "Enabled": true,
                "AllocatedCapacity": config.allocated_capacity,
                "AllowListedLocalPaths": config.allowed_local_paths,
            },
            "JobAdmissionControl": { "AcceptNetworkedJobs": config.accept_networked_jobs },
        })
    }
}
