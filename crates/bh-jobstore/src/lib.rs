//! bh-jobstore: the orchestrator's durable state behind the backend-neutral [`JobStore`] trait.
//!
//! * [`JobStore`] is the embedding API: reads of jobs (by ID, prefix or name; paged lists), job
//!   versions, executions, evaluations, history and nodes; writes only through atomic, durable
//!   [`Txn`]s with per-object compare-and-swap on `Revision`; and a change feed ([`Change`]).
//! * [`SledJobStore`] implements it on an embedded sled database. Its types never leak: the trait
//!   could equally be implemented on a distributed key-value store with compare-and-swap and watch.
//!
//! ```
//! # use bh_jobstore::{JobStore, SledJobStore, Txn};
//! # use bh_models::{Job, JobHistory, Evaluation};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store: std::sync::Arc<dyn JobStore> = std::sync::Arc::new(SledJobStore::temporary().unwrap());
//! let job = Job { id: "j-1".into(), ..Job::default() };
//! let eval = Evaluation { id: "v-1".into(), job_id: "j-1".into(), ..Evaluation::default() };
//! let done = store.submit_job(job, eval, JobHistory::default(), 1_000).await.unwrap();
//!
//! // Later writes name the revision they read; a concurrent writer makes this fail with Conflict.
//! let mut job = done.jobs[0].clone();
//! job.state.message = "scheduled".into();
//! let updated = store.commit(Txn::new(2_000).update_job(job)).await.unwrap();
//! assert_eq!(updated.jobs[0].revision, 2);
//! # });
//! ```

mod codec;
mod error;
mod sled_store;
mod store;

pub use sled_store::SledJobStore;
pub use store::{
    Change, ChangeKind, CommitResult, ExecutionPut, HistoryLevel, HistoryQuery, JobFilter, JobPut,
    JobStore, Txn, DEFAULT_PAGE_LIMIT,
};
