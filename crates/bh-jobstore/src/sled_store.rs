//! `SledJobStore`: the embedded `JobStore` on sled, with secondary index trees kept in the same transaction.
//!
//! Trees and key layouts (SEP is a 0 byte; `t` is a sign-flipped big-endian i64, `u` a big-endian u64):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `jobs` | job ID | job envelope |
//! | `job_versions` | job ID SEP u(version) | job envelope (that version as last written) |
//! | `jobs_by_created` | namespace SEP t(CreateTime) job ID | job ID |
//! | `jobs_by_modified` | namespace SEP t(ModifyTime) job ID | job ID |
//! | `jobs_by_id` | namespace SEP job ID | job ID |
//! | `jobs_by_name` | namespace SEP name | job ID |
//! | `executions` | execution ID | execution envelope |
//! | `executions_by_job` | job ID SEP t(CreateTime) execution ID | execution ID |
//! | `executions_by_node` | node ID SEP execution ID | execution ID |
//! | `executions_active` | execution ID (non-terminal only) | empty |
//! | `evaluations` | evaluation ID | evaluation envelope |
//! | `history` | job ID SEP u(SeqNum) | history envelope |
//! | `nodes` | node ID | node envelope |
//! | `meta` | `history_seq` | u(last SeqNum) |
//!
//! The three `jobs_by_*` listing indexes hold every job twice: under its namespace and under the
//! empty tag, which lists all namespaces (`*`).

use std::ops::Bound;
use std::path::Path;

use async_trait::async_trait;
use bh_models::api::ListOptions;
use bh_models::history::rfc3339_from_nanos;
use bh_models::job::DEFAULT_NAMESPACE;
use bh_models::{Evaluation, Execution, Job, JobHistory, NodeState, Result};
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use tokio::sync::broadcast;

use crate::codec::{
    compound_key, decode, encode, history_token, job_token, parse_history_token, parse_job_token,
    prefix_end, prefix_of, sortable_i64, JobOrder, ALL_NAMESPACES_TAG, SEP,
};
use crate::error::{StoreError, StoreResult};
use crate::store::{
    Change, ChangeKind, CommitResult, HistoryLevel, HistoryQuery, JobFilter, JobStore, Txn,
    DEFAULT_PAGE_LIMIT,
};

/// How many changes a slow subscriber may fall behind before it sees `Lagged`.
const CHANGE_FEED_CAPACITY: usize = 4096;

/// Most IDs an ambiguity error lists.
const AMBIGUITY_LIST_MAX: usize = 10;

const META_HISTORY_SEQ: &[u8] = b"history_seq";

// Positions of the trees in `SledJobStore::trees` (and in a transaction's views).
const JOBS: usize = 0;
const JOB_VERSIONS: usize = 1;
const JOBS_BY_CREATED: usize = 2;
const JOBS_BY_MODIFIED: usize = 3;
const JOBS_BY_ID: usize = 4;
const JOBS_BY_NAME: usize = 5;
const EXECUTIONS: usize = 6;
const EXECUTIONS_BY_JOB: usize = 7;
const EXECUTIONS_BY_NODE: usize = 8;
const EXECUTIONS_ACTIVE: usize = 9;
const EVALUATIONS: usize = 10;
const HISTORY: usize = 11;
const NODES: usize = 12;
const META: usize = 13;

const TREE_NAMES: [&str; 14] = [
    "jobs",
    "job_versions",
    "jobs_by_created",
    "jobs_by_modified",
    "jobs_by_id",
    "jobs_by_name",
    "executions",
    "executions_by_job",
    "executions_by_node",
    "executions_active",
    "evaluations",
    "history",
    "nodes",
    "meta",
];

/// The embedded, durable [`JobStore`] on sled. Cheap to clone (clones share the database).
#[derive(Clone)]
pub struct SledJobStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    changes: broadcast::Sender<Change>,
}

impl std::fmt::Debug for SledJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledJobStore").finish_non_exhaustive()
    }
}

impl SledJobStore {
    /// Opens (or creates) the store in the folder `path`. Only one process may hold it open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let db = sled::Config::new().path(path).open().map_err(|e| {
            bh_models::Error::unavailable(format!(
                "cannot open job store at {}: {e}",
                path.display()
            ))
        })?;
        Self::from_db(db)
    }

    /// A store in a temporary folder that is removed when the store is dropped (for tests).
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|e| bh_models::Error::unavailable(format!("cannot open job store: {e}")))?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Self> {
        let trees = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(StoreError::from)?;
        let (changes, _) = broadcast::channel(CHANGE_FEED_CAPACITY);
        Ok(Self { db, trees, changes })
    }

    fn read<T: DeserializeOwned>(
        &self,
        tree: usize,
        what: &'static str,
        id: &str,
    ) -> StoreResult<Option<T>> {
        match self.trees[tree].get(id.as_bytes())? {
            Some(bytes) => decode(what, id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn read_required<T: DeserializeOwned>(
        &self,
        tree: usize,
        what: &'static str,
        id: &str,
    ) -> StoreResult<T> {
        self.read(tree, what, id)?
            .ok_or_else(|| StoreError::NotFound(format!("{what} not found: {id}")))
    }

    /// Reads the records an index points to (index values are record IDs), in index order.
    fn follow_index<T: DeserializeOwned>(
        &self,
        entries: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        target: usize,
        what: &'static str,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        for entry in entries {
            let (_, id) = entry?;
            let id = String::from_utf8_lossy(&id);
            match self.read(target, what, &id)? {
                Some(record) => out.push(record),
                None => tracing::warn!(%id, what, "index entry points at a missing record"),
            }
        }
        Ok(out)
    }

    fn read_all<T: DeserializeOwned>(
        &self,
        tree: usize,
        what: &'static str,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        for entry in self.trees[tree].iter() {
            let (key, bytes) = entry?;
            out.push(decode(what, &String::from_utf8_lossy(&key), &bytes)?);
        }
        Ok(out)
    }

    fn resolve(&self, namespace: &str, query: &str) -> StoreResult<Job> {
        if query.is_empty() {
            return Err(StoreError::Invalid("job ID or name is empty".to_string()));
        }
        let namespace = normalize_namespace(namespace);
        let in_namespace = |job: &Job| namespace == "*" || job.namespace == namespace;

        if let Some(job) = self.read::<Job>(JOBS, "job", query)? {
            if in_namespace(&job) {
                return Ok(job);
            }
        }

        let mut prefix_matches = Vec::new();
        for entry in self.trees[JOBS].scan_prefix(query.as_bytes()) {
            let (key, bytes) = entry?;
            let job: Job = decode("job", &String::from_utf8_lossy(&key), &bytes)?;
            if in_namespace(&job) {
                prefix_matches.push(job);
            }
        }
        if prefix_matches.len() == 1 {
            return Ok(prefix_matches.remove(0));
        }

        let mut name_matches = if namespace == "*" {
            self.read_all::<Job>(JOBS, "job")?
                .into_iter()
                .filter(|job| job.name == query)
                .collect()
        } else {
            let key = compound_key(namespace, &[query.as_bytes()]);
            match self.trees[JOBS_BY_NAME].get(key)? {
                Some(id) => self
                    .read::<Job>(JOBS, "job", &String::from_utf8_lossy(&id))?
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            }
        };
        match name_matches.len() {
            0 => {}
            1 => return Ok(name_matches.remove(0)),
            _ => return Err(ambiguous("name", query, &name_matches)),
        }
        if prefix_matches.len() > 1 {
            return Err(ambiguous("ID prefix", query, &prefix_matches));
        }
        Err(StoreError::NotFound(format!("job not found: {query}")))
    }

    fn list_jobs_page(
        &self,
        opts: &ListOptions,
        filter: JobFilter<'_>,
    ) -> StoreResult<(Vec<Job>, String)> {
        let order = JobOrder::parse(&opts.order_by)?;
        let tag = match opts.namespace.as_str() {
            "*" => ALL_NAMESPACES_TAG,
            other => {
                let ns = normalize_namespace(other);
                check_key_part("namespace", ns)?;
                ns
            }
        };
        let limit = if opts.limit == 0 {
            DEFAULT_PAGE_LIMIT
        } else {
            opts.limit
        } as usize;
        let prefix = prefix_of(tag);
        let mut lower = Bound::Included(prefix.clone());
        let mut upper = Bound::Excluded(prefix_end(&prefix));
        if !opts.next_token.is_empty() {
            let mut cursor = prefix.clone();
            cursor.extend_from_slice(&parse_job_token(order, &opts.next_token)?);
            if opts.reverse {
                upper = Bound::Excluded(cursor);
            } else {
                // The smallest key after `cursor` is `cursor` followed by a 0 byte.
                cursor.push(0);
                lower = Bound::Included(cursor);
            }
        }
        let range = self.trees[index_tree(order)].range::<Vec<u8>, _>((lower, upper));
        let entries: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if opts.reverse {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };

        let mut jobs = Vec::new();
        let mut last_suffix: Vec<u8> = Vec::new();
        let mut next_token = String::new();
        for entry in entries {
            let (key, id) = entry?;
            let id = String::from_utf8_lossy(&id);
            let Some(job) = self.read::<Job>(JOBS, "job", &id)? else {
                tracing::warn!(%id, "job index entry points at a missing job");
                continue;
            };
            if !filter(&job) {
                continue;
            }
            if jobs.len() == limit {
                next_token = job_token(order, &last_suffix);
                break;
            }
            last_suffix = key.get(prefix.len()..).unwrap_or_default().to_vec();
            jobs.push(job);
        }
        Ok((jobs, next_token))
    }

    fn history_page(
        &self,
        job_id: &str,
        query: &HistoryQuery,
    ) -> StoreResult<(Vec<JobHistory>, String)> {
        check_key_part("job ID", job_id)?;
        let after = if query.next_token.is_empty() {
            0
        } else {
            parse_history_token(&query.next_token)?
        };
        let prefix = prefix_of(job_id);
        let start = compound_key(job_id, &[&after.saturating_add(1).to_be_bytes()]);
        let limit = query.limit as usize;
        let mut events: Vec<JobHistory> = Vec::new();
        let mut next_token = String::new();
        for entry in self.trees[HISTORY].range(start..prefix_end(&prefix)) {
            let (key, bytes) = entry?;
            let event: JobHistory = decode("history event", &hex::encode(&key), &bytes)?;
            if !history_matches(&event, query) {
                continue;
            }
            if limit > 0 && events.len() == limit {
                if let Some(last) = events.last() {
                    next_token = history_token(last.seq_num);
                }
                break;
            }
            events.push(event);
        }
        Ok((events, next_token))
    }

    fn apply(&self, txn: &Txn) -> StoreResult<(CommitResult, Vec<Change>)> {
        let tree_refs: Vec<&sled::Tree> = self.trees.iter().collect();
        let outcome = tree_refs
            .as_slice()
            .transaction(|views| apply_in_transaction(views, txn));
        match outcome {
            Ok(result) => Ok(result),
            Err(TransactionError::Abort(err)) => Err(err),
            Err(TransactionError::Storage(err)) => Err(StoreError::Storage(err)),
        }
    }
}

fn index_tree(order: JobOrder) -> usize {
    match order {
        JobOrder::Created => JOBS_BY_CREATED,
        JobOrder::Modified => JOBS_BY_MODIFIED,
        JobOrder::Id => JOBS_BY_ID,
    }
}

fn normalize_namespace(namespace: &str) -> &str {
    if namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        namespace
    }
}

/// Refuses values that cannot be part of a key: empty ones and ones containing the separator.
fn check_key_part(field: &str, value: &str) -> StoreResult<()> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("{field} is empty")));
    }
    if value.as_bytes().contains(&SEP) {
        return Err(StoreError::Invalid(format!(
            "{field} {value:?} contains a NUL character"
        )));
    }
    Ok(())
}

fn ambiguous(by: &str, query: &str, matches: &[Job]) -> StoreError {
    let mut ids: Vec<&str> = matches.iter().map(|job| job.id.as_str()).collect();
    ids.sort_unstable();
    let more = ids.len().saturating_sub(AMBIGUITY_LIST_MAX);
    ids.truncate(AMBIGUITY_LIST_MAX);
    let mut message = format!(
        "job {by} {query:?} is ambiguous: it matches {}",
        ids.join(", ")
    );
    if more > 0 {
        message.push_str(&format!(" and {more} more"));
    }
    StoreError::Invalid(message)
}

fn history_matches(event: &JobHistory, query: &HistoryQuery) -> bool {
    use bh_models::history::{HISTORY_EXECUTION_LEVEL, HISTORY_JOB_LEVEL};
    let level_ok = match query.level {
        HistoryLevel::All => true,
        HistoryLevel::Job => event.history_type == HISTORY_JOB_LEVEL,
        HistoryLevel::Execution => event.history_type == HISTORY_EXECUTION_LEVEL,
    };
    let since_ok = query.since == 0
        || bh_models::history::nanos_from_rfc3339(&event.time)
            // An unparseable time cannot be placed, so it is kept rather than silently dropped.
            .is_none_or(|nanos| nanos.div_euclid(1_000_000_000) >= query.since);
    level_ok
        && since_ok
        && (query.execution_id.is_empty() || event.execution_id == query.execution_id)
        && (query.node_id.is_empty() || event.node_id == query.node_id)
        && query.job_version.is_none_or(|v| event.job_version == v)
}

/// Errors inside a transaction closure: sled's own conflicts (which make sled retry the closure) or
/// an abort carrying the store error.
type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

impl From<StoreError> for ConflictableTransactionError<StoreError> {
    fn from(err: StoreError) -> Self {
        ConflictableTransactionError::Abort(err)
    }
}

/// Reads and decodes a record inside a transaction.
fn tx_read<T: DeserializeOwned>(
    view: &TransactionalTree,
    what: &'static str,
    id: &str,
) -> TxResult<Option<T>> {
    match view.get(id.as_bytes())? {
        Some(bytes) => Ok(Some(decode(what, id, &bytes)?)),
        None => Ok(None),
    }
}

fn tx_insert(
    view: &TransactionalTree,
    key: impl AsRef<[u8]>,
    value: impl AsRef<[u8]>,
) -> TxResult<()> {
    view.insert(key.as_ref(), value.as_ref())?;
    Ok(())
}

fn tx_remove(view: &TransactionalTree, key: impl AsRef<[u8]>) -> TxResult<()> {
    view.remove(key.as_ref())?;
    Ok(())
}

/// Checks the compare-and-swap rule for one object and names both revisions when it fails.
fn check_revision(
    what: &str,
    id: &str,
    expected: Option<u64>,
    stored: Option<u64>,
) -> StoreResult<()> {
    match (expected, stored) {
        (None, None) => Ok(()),
        (Some(e), Some(s)) if e == s => Ok(()),
        (None, Some(s)) => Err(StoreError::Conflict(format!(
            "{what} {id} already exists (stored revision {s}, expected it not to exist)"
        ))),
        (Some(e), None) => Err(StoreError::Conflict(format!(
            "{what} {id}: expected revision {e}, but it does not exist"
        ))),
        (Some(e), Some(s)) => Err(StoreError::Conflict(format!(
            "{what} {id}: expected revision {e}, stored revision is {s}"
        ))),
    }
}

/// The listing-index keys of a job: each order, under its namespace and under the all-namespaces tag.
fn job_index_keys(job: &Job) -> [(usize, Vec<u8>); 6] {
    let key = |order: JobOrder, tag: &str| {
        compound_key(
            tag,
            &[&order.sort_suffix(job.create_time, job.modify_time, &job.id)],
        )
    };
    [
        (JOBS_BY_CREATED, key(JobOrder::Created, &job.namespace)),
        (JOBS_BY_CREATED, key(JobOrder::Created, ALL_NAMESPACES_TAG)),
        (JOBS_BY_MODIFIED, key(JobOrder::Modified, &job.namespace)),
        (
            JOBS_BY_MODIFIED,
            key(JobOrder::Modified, ALL_NAMESPACES_TAG),
        ),
        (JOBS_BY_ID, key(JobOrder::Id, &job.namespace)),
        (JOBS_BY_ID, key(JobOrder::Id, ALL_NAMESPACES_TAG)),
    ]
}

fn execution_index_keys(execution: &Execution) -> Vec<(usize, Vec<u8>)> {
    let mut keys = vec![(
        EXECUTIONS_BY_JOB,
        compound_key(
            &execution.job_id,
            &[
                &sortable_i64(execution.create_time),
                execution.id.as_bytes(),
            ],
        ),
    )];
    if !execution.node_id.is_empty() {
        keys.push((
            EXECUTIONS_BY_NODE,
            compound_key(&execution.node_id, &[execution.id.as_bytes()]),
        ));
    }
    if !execution.is_terminal() {
        keys.push((EXECUTIONS_ACTIVE, execution.id.as_bytes().to_vec()));
    }
    keys
}

fn apply_in_transaction(
    views: &[TransactionalTree],
    txn: &Txn,
) -> TxResult<(CommitResult, Vec<Change>)> {
    let now = txn.now;
    let mut result = CommitResult::default();
    let mut changes = Vec::new();

    for put in &txn.jobs {
        let mut job = put.job.clone();
        check_key_part("job ID", &job.id)?;
        if job.namespace.is_empty() {
            job.namespace = DEFAULT_NAMESPACE.to_string();
        }
        check_key_part("job namespace", &job.namespace)?;
        if job.name.is_empty() {
            job.name = job.id.clone();
        }
        check_key_part("job name", &job.name)?;

        let stored: Option<Job> = tx_read(&views[JOBS], "job", &job.id)?;
        check_revision(
            "job",
            &job.id,
            put.expected_revision,
            stored.as_ref().map(|s| s.revision),
        )?;

        let name_key = compound_key(&job.namespace, &[job.name.as_bytes()]);
        if let Some(owner) = views[JOBS_BY_NAME].get(&name_key)? {
            if owner.as_ref() != job.id.as_bytes() {
                return Err(StoreError::Conflict(format!(
                    "job name {:?} in namespace {} is already used by job {}",
                    job.name,
                    job.namespace,
                    String::from_utf8_lossy(&owner)
                ))
                .into());
            }
        }

        match &stored {
            Some(old) => {
                job.revision = old.revision + 1;
                job.create_time = old.create_time;
                if job.version == 0 {
                    job.version = old.version;
                }
                for (tree, key) in job_index_keys(old) {
                    tx_remove(&views[tree], key)?;
                }
                tx_remove(
                    &views[JOBS_BY_NAME],
                    compound_key(&old.namespace, &[old.name.as_bytes()]),
                )?;
            }
            None => {
                job.revision = 1;
                if job.create_time == 0 {
                    job.create_time = now;
                }
                if job.version == 0 {
                    job.version = 1;
                }
            }
        }
        job.modify_time = now;

        let bytes = encode("job", &job.id, &job)?;
        tx_insert(&views[JOBS], job.id.as_bytes(), &bytes)?;
        tx_insert(
            &views[JOB_VERSIONS],
            compound_key(&job.id, &[&job.version.to_be_bytes()]),
            &bytes,
        )?;
        for (tree, key) in job_index_keys(&job) {
            tx_insert(&views[tree], key, job.id.as_bytes())?;
        }
        tx_insert(&views[JOBS_BY_NAME], name_key, job.id.as_bytes())?;

        changes.push(Change {
            kind: ChangeKind::Job,
            id: job.id.clone(),
            job_id: job.id.clone(),
            revision: job.revision,
            deleted: false,
        });
        result.jobs.push(job);
    }

    for put in &txn.executions {
        let mut execution = put.execution.clone();
        check_key_part("execution ID", &execution.id)?;
        check_key_part("execution JobID", &execution.job_id)?;
        if !execution.node_id.is_empty() {
            check_key_part("execution NodeID", &execution.node_id)?;
        }
        let stored: Option<Execution> = tx_read(&views[EXECUTIONS], "execution", &execution.id)?;
        check_revision(
            "execution",
            &execution.id,
            put.expected_revision,
            stored.as_ref().map(|s| s.revision),
        )?;
        match &stored {
            Some(old) => {
                execution.revision = old.revision + 1;
                execution.create_time = old.create_time;
                for (tree, key) in execution_index_keys(old) {
                    tx_remove(&views[tree], key)?;
                }
            }
            None => {
                execution.revision = 1;
                if execution.create_time == 0 {
                    execution.create_time = now;
                }
            }
        }
        execution.modify_time = now;

        let bytes = encode("execution", &execution.id, &execution)?;
        tx_insert(&views[EXECUTIONS], execution.id.as_bytes(), bytes)?;
        for (tree, key) in execution_index_keys(&execution) {
            let value: &[u8] = if tree == EXECUTIONS_ACTIVE {
                &[]
            } else {
                execution.id.as_bytes()
            };
            tx_insert(&views[tree], key, value)?;
        }
        changes.push(Change {
            kind: ChangeKind::Execution,
            id: execution.id.clone(),
            job_id: execution.job_id.clone(),
            revision: execution.revision,
            deleted: false,
        });
        result.executions.push(execution);
    }

    for evaluation in &txn.evaluations {
        let mut evaluation = evaluation.clone();
        check_key_part("evaluation ID", &evaluation.id)?;
        if evaluation.create_time == 0 {
            evaluation.create_time = now;
        }
        evaluation.modify_time = now;
        let bytes = encode("evaluation", &evaluation.id, &evaluation)?;
        tx_insert(&views[EVALUATIONS], evaluation.id.as_bytes(), bytes)?;
        changes.push(Change {
            kind: ChangeKind::Evaluation,
            id: evaluation.id.clone(),
            job_id: evaluation.job_id.clone(),
            revision: 0,
            deleted: false,
        });
        result.evaluations.push(evaluation);
    }

    for id in &txn.delete_evaluations {
        check_key_part("evaluation ID", id)?;
        let stored: Option<Evaluation> = tx_read(&views[EVALUATIONS], "evaluation", id)?;
        tx_remove(&views[EVALUATIONS], id.as_bytes())?;
        if let Some(old) = stored {
            changes.push(Change {
                kind: ChangeKind::Evaluation,
                id: id.clone(),
                job_id: old.job_id,
                revision: 0,
                deleted: true,
            });
        }
    }

    for node in &txn.nodes {
        check_key_part("node ID", &node.info.node_id)?;
        let bytes = encode("node", &node.info.node_id, node)?;
        tx_insert(&views[NODES], node.info.node_id.as_bytes(), bytes)?;
        changes.push(Change {
            kind: ChangeKind::Node,
            id: node.info.node_id.clone(),
            job_id: String::new(),
            revision: 0,
            deleted: false,
        });
        result.nodes.push(node.clone());
    }

    for id in &txn.delete_nodes {
        check_key_part("node ID", id)?;
        if tx_read::<NodeState>(&views[NODES], "node", id)?.is_some() {
            tx_remove(&views[NODES], id.as_bytes())?;
            changes.push(Change {
                kind: ChangeKind::Node,
                id: id.clone(),
                job_id: String::new(),
                revision: 0,
                deleted: true,
            });
        }
    }

    if !txn.history.is_empty() {
        let mut seq = match views[META].get(META_HISTORY_SEQ)? {
            Some(bytes) => {
                let raw: [u8; 8] = bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    what: "history sequence",
                    key: "history_seq".to_string(),
                    reason: format!("expected 8 bytes, found {}", bytes.len()),
                })?;
                u64::from_be_bytes(raw)
            }
            None => 0,
        };
        let now_text = rfc3339_from_nanos(now);
        for event in &txn.history {
            let mut event = event.clone();
            check_key_part("history JobID", &event.job_id)?;
            seq += 1;
            event.seq_num = seq;
            if event.time.is_empty() {
                event.time = now_text.clone();
            }
            if event.event.timestamp.is_empty() {
                event.event.timestamp = event.time.clone();
            }
            let key = compound_key(&event.job_id, &[&seq.to_be_bytes()]);
            let bytes = encode("history event", &seq.to_string(), &event)?;
            tx_insert(&views[HISTORY], key, bytes)?;
            changes.push(Change {
                kind: ChangeKind::History,
                id: seq.to_string(),
                job_id: event.job_id.clone(),
                revision: seq,
                deleted: false,
            });
            result.history.push(event);
        }
        tx_insert(&views[META], META_HISTORY_SEQ, seq.to_be_bytes())?;
    }

    Ok((result, changes))
}

#[async_trait]
impl JobStore for SledJobStore {
    async fn get_job(&self, id: &str) -> Result<Job> {
        Ok(self.read_required(JOBS, "job", id)?)
    }

    async fn resolve_job(&self, namespace: &str, query: &str) -> Result<Job> {
        Ok(self.resolve(namespace, query)?)
    }

    async fn list_jobs(
        &self,
        opts: &ListOptions,
        filter: JobFilter<'_>,
    ) -> Result<(Vec<Job>, String)> {
        Ok(self.list_jobs_page(opts, filter)?)
    }

    async fn job_versions(&self, id: &str) -> Result<Vec<Job>> {
        check_key_part("job ID", id)?;
        let versions: Vec<Job> = {
            let mut out = Vec::new();
            for entry in self.trees[JOB_VERSIONS].scan_prefix(prefix_of(id)) {
                let (key, bytes) = entry.map_err(StoreError::from)?;
                out.push(decode("job version", &hex::encode(&key), &bytes)?);
            }
            out
        };
        if versions.is_empty() {
            return Err(StoreError::NotFound(format!("job not found: {id}")).into());
        }
        Ok(versions)
    }

    async fn job_version(&self, id: &str, version: u64) -> Result<Job> {
        check_key_part("job ID", id)?;
        let key = compound_key(id, &[&version.to_be_bytes()]);
        match self.trees[JOB_VERSIONS]
            .get(key)
            .map_err(StoreError::from)?
        {
            Some(bytes) => Ok(decode("job version", &format!("{id}@{version}"), &bytes)?),
            None => {
                Err(StoreError::NotFound(format!("job not found: {id} version {version}")).into())
            }
        }
    }

    async fn job_revision(&self, id: &str) -> Result<Option<u64>> {
        Ok(self.read::<Job>(JOBS, "job", id)?.map(|job| job.revision))
    }

    async fn get_execution(&self, id: &str) -> Result<Execution> {
        Ok(self.read_required(EXECUTIONS, "execution", id)?)
    }

    async fn list_executions_by_job(
        &self,
        job_id: &str,
        job_version: Option<u64>,
    ) -> Result<Vec<Execution>> {
        check_key_part("job ID", job_id)?;
        let entries = self.trees[EXECUTIONS_BY_JOB].scan_prefix(prefix_of(job_id));
        let executions: Vec<Execution> = self.follow_index(entries, EXECUTIONS, "execution")?;
        Ok(executions
            .into_iter()
            .filter(|e| job_version.is_none_or(|v| e.job_version == v))
            .collect())
    }

    async fn list_executions_by_node(&self, node_id: &str) -> Result<Vec<Execution>> {
        check_key_part("node ID", node_id)?;
        let entries = self.trees[EXECUTIONS_BY_NODE].scan_prefix(prefix_of(node_id));
        Ok(self.follow_index(entries, EXECUTIONS, "execution")?)
    }

    async fn list_active_executions(&self) -> Result<Vec<Execution>> {
        let mut out = Vec::new();
        for entry in self.trees[EXECUTIONS_ACTIVE].iter() {
            let (id, _) = entry.map_err(StoreError::from)?;
            let id = String::from_utf8_lossy(&id);
            if let Some(execution) = self.read::<Execution>(EXECUTIONS, "execution", &id)? {
                out.push(execution);
            }
        }
        Ok(out)
    }

    async fn get_evaluation(&self, id: &str) -> Result<Evaluation> {
        Ok(self.read_required(EVALUATIONS, "evaluation", id)?)
    }

    async fn list_evaluations(&self) -> Result<Vec<Evaluation>> {
        Ok(self.read_all(EVALUATIONS, "evaluation")?)
    }

    async fn list_history(
        &self,
        job_id: &str,
        query: &HistoryQuery,
    ) -> Result<(Vec<JobHistory>, String)> {
        Ok(self.history_page(job_id, query)?)
    }

    async fn get_node(&self, id: &str) -> Result<NodeState> {
        Ok(self.read_required(NODES, "node", id)?)
    }

    async fn list_nodes(&self) -> Result<Vec<NodeState>> {
        Ok(self.read_all(NODES, "node")?)
    }

    async fn commit(&self, txn: Txn) -> Result<CommitResult> {
        if txn.is_empty() {
            return Ok(CommitResult::default());
        }
        let (result, changes) = self.apply(&txn)?;
        // Acknowledge only what is on disk: a crash after this point cannot lose the commit.
        self.db.flush_async().await.map_err(StoreError::from)?;
        for change in changes {
            // No receivers is fine: nobody is watching yet.
            let _ = self.changes.send(change);
        }
        Ok(result)
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}
