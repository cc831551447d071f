//! The orchestrator runtime: accepts jobs, runs evaluations through the scheduler, applies plans to the
//! job store, and talks to compute nodes.
//!
//! ```text
//! put_job ──commit──▶ store ──▶ broker ──▶ worker: snapshot → Scheduler::process → Plan
//!                                              │ one commit (CAS), then ToCompute messages
//! NodeHub::on_message ──commit──▶ execution update + evaluation ──▶ broker
//! ```
//!
//! Persisted evaluations are the source of truth: on start every stored evaluation is queued again, so a
//! job acknowledged before a crash is scheduled after the restart. Tests turn `background` off and
//! drive the runtime with [`Orchestrator::process_pending`] and [`Orchestrator::housekeeping_tick`].

mod api;
mod broker;
mod config;
mod effects;
mod housekeeping;
mod nodes;
mod submit;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bh_jobstore::JobStore;
use bh_models::{Evaluation, Result, ToCompute};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::plan::Scheduler;

pub use config::{JobDefaults, OrchestratorConfig};

use broker::EvalBroker;

/// Messages a node's channel holds before sends are dropped (reconciliation on reconnect re-sends them).
const NODE_CHANNEL_CAPACITY: usize = 4096;

/// The orchestrator: implements [`bh_transport::service::OrchestratorApi`] (REST) and
/// [`bh_transport::service::NodeHub`] (compute nodes).
pub struct Orchestrator {
    config: OrchestratorConfig,
    store: Arc<dyn JobStore>,
    scheduler: Arc<dyn Scheduler>,
    clock: Arc<dyn Clock>,
    broker: EvalBroker,
    /// Senders of the connected nodes' message channels, by node ID.
    links: Mutex<HashMap<String, mpsc::Sender<ToCompute>>>,
    /// Open streams per node as the transport reports them (connect, then disconnected): a late
    /// `disconnected` of a replaced stream must not disconnect the node's newer stream.
    streams: Mutex<HashMap<String, usize>>,
    /// Nodes declared gone (heartbeat timeout, rejected) whose work was already sent elsewhere.
    departed: Mutex<HashSet<String>>,
    /// Serialises read-modify-write of node records (they carry no revision to compare).
    node_write: tokio::sync::Mutex<()>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Orchestrator {
    /// Starts the orchestrator over `store`: queues every persisted evaluation and, when
    /// `config.background` is set, spawns the evaluation workers and the timers (must then be called
    /// inside a tokio runtime).
    pub async fn start(
        config: OrchestratorConfig,
        store: Arc<dyn JobStore>,
        scheduler: Arc<dyn Scheduler>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>> {
        let (shutdown_tx, _) = watch::channel(false);
        let orch = Arc::new(Self {
            config,
            store,
            scheduler,
            clock,
            broker: EvalBroker::default(),
            links: Mutex::new(HashMap::new()),
            departed: Mutex::new(HashSet::new()),
            streams: Mutex::new(HashMap::new()),
            node_write: tokio::sync::Mutex::new(()),
            shutdown_tx,
            tasks: Mutex::new(Vec::new()),
        });
        let now = orch.now();
        let persisted = orch.store.list_evaluations().await?;
        tracing::info!(count = persisted.len(), "re-queued persisted evaluations");
        for eval in persisted {
            orch.broker.enqueue(eval, now);
        }
        if orch.config.background {
            orch.spawn_background();
        }
        Ok(orch)
    }

    /// Stops the background tasks and closes every node channel. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
        let handles: Vec<_> = std::mem::take(&mut *self.lock_tasks());
        for handle in handles {
            handle.abort();
            let _ = handle.await;
        }
        self.lock_links().clear();
    }

    /// The configuration the orchestrator runs with.
    pub fn config(&self) -> &OrchestratorConfig {
        &self.config
    }

    /// Runs every evaluation that is ready now (after releasing delayed ones whose time has come),
    /// including follow-ups they raise, until none is left. Returns how many evaluations ran.
    /// Used by tests and tools instead of the background workers.
    pub async fn process_pending(&self) -> usize {
        let mut processed = 0;
        loop {
            self.broker.release_due(self.now());
            let Some(lease) = self.broker.dequeue() else {
                break;
            };
            processed += 1 + lease.duplicates.len();
            self.run_lease(lease).await;
        }
        processed
    }

    /// Releases delayed evaluations whose WaitUntil the clock has passed; returns how many.
    pub fn tick(&self) -> usize {
        self.broker.release_due(self.now())
    }

    /// Evaluations waiting for a worker now, and delayed ones.
    pub fn queued_evaluations(&self) -> (usize, usize) {
        (self.broker.ready_len(), self.broker.delayed_len())
    }

    fn now(&self) -> i64 {
        self.clock.now_nanos()
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<ToCompute>>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_departed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.departed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues evaluations that were just committed.
    fn enqueue_all(&self, evals: impl IntoIterator<Item = Evaluation>) {
        let now = self.now();
        for eval in evals {
            self.broker.enqueue(eval, now);
        }
    }

    /// Sends `msg` to a connected node; a node that is not connected gets it on reconnect (reconciliation).
    fn send_to_node(&self, node_id: &str, msg: ToCompute) {
        let links = self.lock_links();
        match links.get(node_id) {
            Some(tx) => {
                if let Err(err) = tx.try_send(msg) {
                    tracing::warn!(node = node_id, %err, "could not queue message for node");
                }
            }
            None => tracing::debug!(
                node = node_id,
                "node not connected; message left for reconnect"
            ),
        }
    }

    fn spawn_background(self: &Arc<Self>) {
        let mut handles = Vec::new();
        for _ in 0..self.config.workers.max(1) {
            let orch = Arc::clone(self);
            handles.push(tokio::spawn(async move { orch.worker_loop().await }));
        }
        let orch = Arc::clone(self);
        handles.push(tokio::spawn(async move { orch.delayed_timer_loop().await }));
        let orch = Arc::clone(self);
        handles.push(tokio::spawn(async move { orch.housekeeping_loop().await }));
        self.lock_tasks().extend(handles);
    }

    async fn worker_loop(self: Arc<Self>) {
        let mut shutdown = self.shutdown_tx.subscribe();
        loop {
            let notified = self.broker.ready_notify.notified();
            if *shutdown.borrow() {
                return;
            }
            if let Some(lease) = self.broker.dequeue() {
                self.run_lease(lease).await;
                continue;
            }
            tokio::select! {
                _ = notified => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Releases delayed evaluations when the clock passes their WaitUntil.
    async fn delayed_timer_loop(self: Arc<Self>) {
        let mut shutdown = self.shutdown_tx.subscribe();
        loop {
            let changed = self.broker.delayed_notify.notified();
            if *shutdown.borrow() {
                return;
            }
            self.broker.release_due(self.now());
            let wait = match self.broker.next_due() {
                Some(due) => {
                    let nanos = u64::try_from(due.saturating_sub(self.now())).unwrap_or(0);
                    Duration::from_nanos(nanos).max(Duration::from_millis(1))
                }
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = changed => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn housekeeping_loop(self: Arc<Self>) {
        let mut shutdown = self.shutdown_tx.subscribe();
        let period = self
            .config
            .housekeeping_interval
            .max(Duration::from_millis(100));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(err) = self.housekeeping_tick().await {
                tracing::warn!(%err, "housekeeping failed");
            }
        }
    }
}

impl Drop for Orchestrator {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        for handle in self.lock_tasks().drain(..) {
            handle.abort();
        }
    }
}
