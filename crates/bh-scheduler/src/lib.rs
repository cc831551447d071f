//! bh-scheduler: the orchestrator's brain: pure schedulers (snapshot, evaluation, clock in; Plan out), the
//! evaluation broker, and the orchestrator service that applies plans and talks to nodes.

pub mod clock;
pub mod orchestrator;
pub mod plan;
pub mod scheduler;

pub use clock::{Clock, ManualClock, SystemClock};
pub use orchestrator::{JobDefaults, Orchestrator, OrchestratorConfig};
pub use plan::{ExecutionUpdate, NodeRejection, Plan, Scheduler, Snapshot};
pub use scheduler::{JobScheduler, SchedulerConfig};
