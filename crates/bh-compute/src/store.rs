//! The node's execution store (sled in `data_dir/executions`): each local execution, its state, its full
//! output and the last report sent about it.

use std::path::Path;

use bh_models::{Execution, FromCompute};
use serde::{Deserialize, Serialize};

use crate::error::ComputeError;

/// Where a local execution stands on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalState {
    /// The node bid on it and waits for the orchestrator's answer.
    Accepted,
    /// The bid was refused by this node.
    Rejected,
    /// Approved and waiting for capacity.
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl LocalState {
    /// Whether nothing more will happen to the execution on this node.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Rejected | Self::Completed | Self::Failed | Self::Cancelled
        )
    }
}

/// Output of a run, kept in full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
}

/// One execution as this node knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalExecution {
    pub execution: Execution,
    pub state: LocalState,
    /// The last report about this execution; re-sent after reconnections.
    pub report: Option<FromCompute>,
    pub output: Option<StoredOutput>,
    /// Enqueue order, for FIFO within a priority.
    pub seq: u64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

impl LocalExecution {
    /// The execution's ID.
    pub fn id(&self) -> &str {
        &self.execution.id
    }
}

/// Persistent local executions, keyed by execution ID.
#[derive(Clone)]
pub struct ExecutionStore {
    tree: sled::Tree,
    db: sled::Db,
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl ExecutionStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, ComputeError> {
        let db = sled::open(path)
            .map_err(|e| ComputeError::Store(format!("cannot open {}: {e}", path.display())))?;
        let tree = db.open_tree("executions")?;
        Ok(Self { tree, db })
    }

    /// Writes (replaces) a record and flushes it to disk.
    pub fn put(&self, record: &LocalExecution) -> Result<(), ComputeError> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| ComputeError::Store(format!("cannot encode execution: {e}")))?;
        self.tree.insert(record.id().as_bytes(), bytes)?;
        self.db.flush()?;
        Ok(())
    }

    /// The record of `id`, if any.
    pub fn get(&self, id: &str) -> Result<Option<LocalExecution>, ComputeError> {
        match self.tree.get(id.as_bytes())? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Removes the record of `id`.
    pub fn remove(&self, id: &str) -> Result<(), ComputeError> {
        self.tree.remove(id.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Every record (unreadable ones are skipped with a warning).
    pub fn all(&self) -> Result<Vec<LocalExecution>, ComputeError> {
        let mut records = Vec::new();
        for entry in self.tree.iter() {
            let (key, bytes) = entry?;
            match decode(&bytes) {
                Ok(record) => records.push(record),
                Err(e) => tracing::warn!(
                    key = %String::from_utf8_lossy(&key),
                    error = %e,
                    "skipping unreadable execution record"
                ),
            }
        }
        Ok(records)
    }
}

fn decode(bytes: &[u8]) -> Result<LocalExecution, ComputeError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ComputeError::Store(format!("cannot decode execution: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let record = LocalExecution {
            execution: Execution {
                id: "e-1".into(),
                ..Default::default()
            },
            state: LocalState::Running,
            report: Some(FromCompute::ExecutionStarted {
                execution_id: "e-1".into(),
            }),
            output: None,
            seq: 1,
            updated_at: 5,
        };
        {
            let store = ExecutionStore::open(dir.path()).unwrap();
            store.put(&record).unwrap();
        }
        let store = ExecutionStore::open(dir.path()).unwrap();
        assert_eq!(store.get("e-1").unwrap(), Some(record));
        assert_eq!(store.all().unwrap().len(), 1);
        store.remove("e-1").unwrap();
        assert_eq!(store.get("e-1").unwrap(), None);
    }
}
