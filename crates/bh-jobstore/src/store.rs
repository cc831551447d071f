//! The backend-neutral `JobStore` trait and the types it speaks: transactions, commit results, queries and changes.
//!
//! Nothing here names a storage engine, so the same trait can be implemented over sled (embedded, the
//! default) or over a distributed key-value store with per-key compare-and-swap and watch (NATS JetStream KV).

use async_trait::async_trait;
use bh_models::api::ListOptions;
use bh_models::{Evaluation, Execution, Job, JobHistory, NodeState, Result};
use tokio::sync::broadcast;

/// Page size used when a job listing asks for `limit = 0`.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;

/// A predicate the caller applies to each job while listing (label selectors, state filters, ...).
pub type JobFilter<'a> = &'a (dyn Fn(&Job) -> bool + Send + Sync);

/// A job write inside a [`Txn`], guarded by compare-and-swap on the stored `Revision`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPut {
    /// The job as it should be stored. `Revision` and `ModifyTime` are set by the store; `CreateTime`
    /// is kept from the stored job on update and defaults to the transaction's `now` on create.
    pub job: Job,
    /// `None`: the job must not exist yet (create). `Some(r)`: the stored job's Revision must be `r`.
    pub expected_revision: Option<u64>,
}

/// An execution write inside a [`Txn`], with the same compare-and-swap rule as [`JobPut`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionPut {
    /// The execution as it should be stored; `Revision` and `ModifyTime` are set by the store.
    pub execution: Execution,
    /// `None`: must not exist yet. `Some(r)`: the stored Revision must be `r`.
    pub expected_revision: Option<u64>,
}

/// One atomic, durable unit of writes. Build it, then hand it to [`JobStore::commit`].
///
/// Either every write lands (and is flushed to disk before `commit` returns) or none does. Writes are
/// applied in this order: jobs, executions, evaluation puts, evaluation deletes, node puts, node
/// deletes, history appends. Several writes to the same object in one transaction see each other
/// (the second put of a job must expect the revision the first one produced).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Txn {
    /// Unix nanoseconds used for `ModifyTime` (and `CreateTime` of new objects). The store never reads
    /// the wall clock, so callers with a fake clock get deterministic results.
    pub now: i64,
    pub jobs: Vec<JobPut>,
    pub executions: Vec<ExecutionPut>,
    /// Evaluations are stored as given (no revision); a put replaces any stored evaluation of that ID.
    pub evaluations: Vec<Evaluation>,
    /// IDs of evaluations to delete; deleting a missing one is not an error.
    pub delete_evaluations: Vec<String>,
    /// Nodes are stored as given, keyed by `Info.NodeID`.
    pub nodes: Vec<NodeState>,
    /// IDs of nodes to delete; deleting a missing one is not an error.
    pub delete_nodes: Vec<String>,
    /// History events to append; the store assigns each a new, strictly increasing `SeqNum`, and fills an
    /// empty `Time` (and `Event.Timestamp`) from `now`.
    pub history: Vec<JobHistory>,
}

impl Txn {
    /// An empty transaction stamped with `now` (Unix nanoseconds).
    pub fn new(now: i64) -> Self {
        Self {
            now,
            ..Self::default()
        }
    }

    /// Adds a job that must not exist yet.
    pub fn create_job(mut self, job: Job) -> Self {
        self.jobs.push(JobPut {
            job,
            expected_revision: None,
        });
        self
    }

    /// Adds an update of a job whose stored Revision must equal `job.revision` (the revision read).
    pub fn update_job(mut self, job: Job) -> Self {
        let expected = job.revision;
        self.jobs.push(JobPut {
            job,
            expected_revision: Some(expected),
        });
        self
    }

    /// Adds an execution that must not exist yet.
    pub fn create_execution(mut self, execution: Execution) -> Self {
        self.executions.push(ExecutionPut {
            execution,
            expected_revision: None,
        });
        self
    }

    /// Adds an update of an execution whose stored Revision must equal `execution.revision`.
    pub fn update_execution(mut self, execution: Execution) -> Self {
        let expected = execution.revision;
        self.executions.push(ExecutionPut {
            execution,
            expected_revision: Some(expected),
        });
        self
    }

    /// Adds (or replaces) an evaluation.
    pub fn put_evaluation(mut self, evaluation: Evaluation) -> Self {
        self.evaluations.push(evaluation);
        self
    }

    /// Deletes an evaluation.
    pub fn delete_evaluation(mut self, id: impl Into<String>) -> Self {
        self.delete_evaluations.push(id.into());
        self
    }

    /// Adds (or replaces) a node.
    pub fn put_node(mut self, node: NodeState) -> Self {
        self.nodes.push(node);
        self
    }

    /// Deletes a node.
    pub fn delete_node(mut self, id: impl Into<String>) -> Self {
        self.delete_nodes.push(id.into());
        self
    }

    /// Appends a history event.
    pub fn append_history(mut self, event: JobHistory) -> Self {
        self.history.push(event);
        self
    }

    /// Whether the transaction writes nothing.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.executions.is_empty()
            && self.evaluations.is_empty()
            && self.delete_evaluations.is_empty()
            && self.nodes.is_empty()
            && self.delete_nodes.is_empty()
            && self.history.is_empty()
    }
}

/// What a commit stored, in the order of the transaction, with store-assigned fields filled in
/// (Revision, ModifyTime, CreateTime, SeqNum, history times).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommitResult {
    pub jobs: Vec<Job>,
    pub executions: Vec<Execution>,
    pub evaluations: Vec<Evaluation>,
    pub nodes: Vec<NodeState>,
    pub history: Vec<JobHistory>,
}

/// Which kind of object a [`Change`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Job,
    Execution,
    Evaluation,
    Node,
    /// A history event was appended; `id` is its SeqNum in decimal and `revision` the SeqNum.
    History,
}

/// One object written by a durable commit, as sent on the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// The object's ID (for nodes, the node ID).
    pub id: String,
    /// The job the object belongs to (the job's own ID for jobs; empty for nodes).
    pub job_id: String,
    /// The object's Revision after the commit (0 for objects without revisions: evaluations, nodes).
    pub revision: u64,
    /// Whether the object was deleted.
    pub deleted: bool,
}

/// Which history events to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistoryLevel {
    /// Job-level and execution-level events.
    #[default]
    All,
    /// Only `JobLevel` events.
    Job,
    /// Only `ExecutionLevel` events.
    Execution,
}

impl HistoryLevel {
    /// Parses the REST `event_type` parameter (`all`, `job`, `execution`; empty means `all`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "" | "all" => Some(Self::All),
            "job" => Some(Self::Job),
            "execution" => Some(Self::Execution),
            _ => None,
        }
    }
}

/// Filters and paging for [`JobStore::list_history`]. The default returns every event of the job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    /// Unix seconds; events whose `Time` is earlier are skipped (0: no lower bound).
    pub since: i64,
    pub level: HistoryLevel,
    /// Only events of this execution (empty: any).
    pub execution_id: String,
    /// Only events on this node (empty: any).
    pub node_id: String,
    /// Only events of this job version (`None`: every version).
    pub job_version: Option<u64>,
    /// Page size; 0 means no limit.
    pub limit: u32,
    /// Token from a previous page (empty: from the start).
    pub next_token: String,
}

/// The orchestrator's durable state: jobs and their versions, executions, evaluations, history events
/// and nodes, written only through atomic transactions, with a change feed.
///
/// Use it behind `Arc<dyn JobStore>`. Reads return the shared [`bh_models::Error`]: `NotFound` for
/// missing objects, `InvalidArgument` for bad queries (naming the parameter), `Conflict` for failed
/// compare-and-swap, `Internal` for storage failures and undecodable records.
///
/// # Example
/// ```
/// # use bh_jobstore::{JobStore, SledJobStore};
/// # use bh_models::{Evaluation, Job, JobHistory};
/// # tokio_test_block_on(async {
/// let store = SledJobStore::temporary().unwrap();
/// let job = Job { id: "j-1".into(), name: "hello".into(), ..Job::default() };
/// let eval = Evaluation { id: "v-1".into(), job_id: "j-1".into(), ..Evaluation::default() };
/// let stored = store.submit_job(job, eval, JobHistory::default(), 1_000).await.unwrap();
/// assert_eq!(stored.jobs[0].revision, 1);
/// assert_eq!(store.resolve_job("default", "hello").await.unwrap().id, "j-1");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait JobStore: Send + Sync {
    // ---- jobs ----

    /// The job with exactly this ID (any namespace). `NotFound`: `job not found: <id>`.
    async fn get_job(&self, id: &str) -> Result<Job>;

    /// Resolves what a user typed: an exact job ID, else a unique ID prefix (`j-28c08f7f`), else a job
    /// Name, all within `namespace` (`*`: any namespace; empty: `default`). An ambiguous prefix that is
    /// not also a name is `InvalidArgument` listing the matching IDs; nothing is `NotFound`
    /// (`job not found: <query>`).
    async fn resolve_job(&self, namespace: &str, query: &str) -> Result<Job>;

    /// One page of jobs in `opts.namespace` (`*`: all; empty: `default`) for which `filter` is true,
    /// ordered by `opts.order_by` (`created_at`/`create_time`, the default; `modified_at`/`modify_time`;
    /// `id`), ascending unless `opts.reverse`. `opts.limit` 0 means [`DEFAULT_PAGE_LIMIT`].
    /// Returns the jobs and the token of the next page (empty when there is no further match). Tokens
    /// are opaque and stay valid while jobs are added; a token used with another `order_by` is
    /// `InvalidArgument`. `opts.labels` is ignored: apply label selectors through `filter`.
    async fn list_jobs(
        &self,
        opts: &ListOptions,
        filter: JobFilter<'_>,
    ) -> Result<(Vec<Job>, String)>;

    /// Every stored version of a job's spec, oldest first, each as last written while it was current.
    async fn job_versions(&self, id: &str) -> Result<Vec<Job>>;

    /// One version of a job's spec. `NotFound` if the job or that version is missing.
    async fn job_version(&self, id: &str, version: u64) -> Result<Job>;

    /// The stored Revision of a job, or `None` if it does not exist.
    async fn job_revision(&self, id: &str) -> Result<Option<u64>>;

    // ---- executions ----

    /// The execution with this ID. `NotFound`: `execution not found: <id>`.
    async fn get_execution(&self, id: &str) -> Result<Execution>;

    /// A job's executions, oldest first, optionally only those of one job version.
    async fn list_executions_by_job(
        &self,
        job_id: &str,
        job_version: Option<u64>,
    ) -> Result<Vec<Execution>>;

    /// The executions placed on a node (every job), ordered by execution ID.
    async fn list_executions_by_node(&self, node_id: &str) -> Result<Vec<Execution>>;

    /// Every execution whose compute state is not terminal, ordered by execution ID.
    async fn list_active_executions(&self) -> Result<Vec<Execution>>;

    // ---- evaluations ----

    /// The evaluation with this ID. `NotFound`: `evaluation not found: <id>`.
    async fn get_evaluation(&self, id: &str) -> Result<Evaluation>;

    /// Every stored evaluation, ordered by ID (to re-enqueue them after a restart).
    async fn list_evaluations(&self) -> Result<Vec<Evaluation>>;

    /// Deletes an evaluation durably (a one-write transaction); a missing one is not an error.
    async fn delete_evaluation(&self, id: &str) -> Result<()> {
        self.commit(Txn::new(0).delete_evaluation(id)).await?;
        Ok(())
    }

    // ---- history ----

    /// A job's history events in SeqNum order, filtered and paged by `query`. Returns the events and
    /// the token of the next page (empty when there is no further match).
    async fn list_history(
        &self,
        job_id: &str,
        query: &HistoryQuery,
    ) -> Result<(Vec<JobHistory>, String)>;

    // ---- nodes ----

    /// The node with this ID. `NotFound`: `node not found: <id>`.
    async fn get_node(&self, id: &str) -> Result<NodeState>;

    /// Every stored node, ordered by node ID.
    async fn list_nodes(&self) -> Result<Vec<NodeState>>;

    /// Stores a node durably (a one-write transaction).
    async fn put_node(&self, node: NodeState) -> Result<()> {
        self.commit(Txn::new(0).put_node(node)).await?;
        Ok(())
    }

    /// Deletes a node durably; a missing one is not an error.
    async fn delete_node(&self, id: &str) -> Result<()> {
        self.commit(Txn::new(0).delete_node(id)).await?;
        Ok(())
    }

    // ---- writes and changes ----

    /// Applies every write of `txn` atomically and durably: revisions are checked (a mismatch is
    /// `Conflict` naming the object and both revisions, and nothing is written), bumped (+1, or 1 on
    /// create), `ModifyTime` set to `txn.now`, history SeqNums assigned, everything written at once
    /// and flushed to disk. Only then does it return, and send one [`Change`] per written object.
    async fn commit(&self, txn: Txn) -> Result<CommitResult>;

    /// Stores a new job together with its first evaluation and history event, atomically and
    /// durably: the body of a submit. The job must not exist yet. An empty history `JobID`, `Type` or
    /// `JobVersion` is filled from the job (`JobLevel`).
    async fn submit_job(
        &self,
        job: Job,
        evaluation: Evaluation,
        history: JobHistory,
        now: i64,
    ) -> Result<CommitResult> {
        let mut history = history;
        if history.job_id.is_empty() {
            history.job_id = job.id.clone();
        }
        if history.history_type.is_empty() {
            history.history_type = bh_models::history::HISTORY_JOB_LEVEL.to_string();
        }
        if history.job_version == 0 {
            history.job_version = job.version.max(1);
        }
        let txn = Txn::new(now)
            .create_job(job)
            .put_evaluation(evaluation)
            .append_history(history);
        self.commit(txn).await
    }

    /// A receiver of the change feed: one [`Change`] per object written by each commit, sent after the
    /// commit is durable, in commit order for a single writer. A receiver that falls more than the
    /// feed's capacity behind gets `RecvError::Lagged` and should re-read what it watches.
    fn subscribe(&self) -> broadcast::Receiver<Change>;
}
