//! What a job asks of a node: engine, publisher, storages, label constraints and parsed resources.

use bh_models::{Constraint, Job, Resources};

/// Constraint keys with this prefix are preferences: a match adds to a node's score, a mismatch refuses nothing.
pub const PREFERENCE_PREFIX: &str = "favour_";

/// Why a job's requirements could not be read. The job spec names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementsError {
    /// The job has no task to run.
    #[error("job has no tasks")]
    NoTask,
    /// A resource quantity does not parse; the message starts with the field (`Memory: ...`).
    #[error("invalid Tasks[0].Resources: {0}")]
    InvalidResources(String),
}

/// The node-facing requirements of a job, parsed once per evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobRequirements {
    /// Name of the task, the key of `AllocatedResources.Tasks`.
    pub task_name: String,
    /// Engine type, e.g. `docker`; compared case-insensitively.
    pub engine: String,
    /// Publisher type; empty when the task publishes nothing.
    pub publisher: String,
    /// Storage source types of the task's inputs, deduplicated.
    pub storage_sources: Vec<String>,
    /// Hard constraints: a node that does not match one is refused.
    pub constraints: Vec<Constraint>,
    /// `favour_` constraints with the prefix removed: each match adds to the node's score.
    pub preferences: Vec<Constraint>,
    /// Resources one execution needs.
    pub resources: Resources,
}

impl JobRequirements {
    /// Reads the requirements of `job`'s task.
    pub fn from_job(job: &Job) -> Result<Self, RequirementsError> {
        let task = job.task().ok_or(RequirementsError::NoTask)?;
        let mut storage_sources: Vec<String> = Vec::new();
        for input in &task.input_sources {
            let kind = input.source.config_type.to_ascii_lowercase();
            if !kind.is_empty() && !storage_sources.contains(&kind) {
                storage_sources.push(kind);
            }
        }
        let (preferences, constraints): (Vec<Constraint>, Vec<Constraint>) = job
            .constraints
            .iter()
            .cloned()
            .partition(|c| c.key.starts_with(PREFERENCE_PREFIX));
        let preferences = preferences
            .into_iter()
            .map(|mut c| {
                c.key = c.key[PREFERENCE_PREFIX.len()..].to_string();
                c
            })
            .collect();
        let resources = task
            .resources
            .to_resources()
            .map_err(|err| RequirementsError::InvalidResources(err.message))?;
        Ok(Self {
            task_name: task.name.clone(),
            engine: task.engine.config_type.clone(),
            publisher: task.publisher.config_type.clone(),
            storage_sources,
            constraints,
            preferences,
            resources,
        })
    }
}
