//! Table-driven scheduler cases: each row is a snapshot, an evaluation and a time, and the plan it must yield.

mod harness;

use bh_models::{
    ExecutionDesiredStateType as Desired, ExecutionStateType as Compute, JobStateType,
};
use bh_scheduler::{JobScheduler, Scheduler, SchedulerConfig, Snapshot};
use harness::*;

use Compute::{AskForBid, AskForBidAccepted, BidAccepted, Completed, Failed, Running as Run};
use Desired::{Pending, Running, Stopped};

/// Partition placeholder in `Expect::new` when any partition is fine (distinctness is still checked).
const ANY: i64 = -1;

struct Case {
    name: &'static str,
    snapshot: Snapshot,
    trigger: &'static str,
    now: i64,
    expect: Expect,
}

/// What a plan must contain. Lists are exact (order-insensitive); strings are substrings.
#[derive(Default)]
struct Expect {
    /// The job's new state; `None` means the plan must not change it.
    state: Option<JobStateType>,
    message: &'static [&'static str],
    new: &'static [(&'static str, i64, Desired)],
    approved: &'static [&'static str],
    stopped: &'static [&'static str],
    failed: &'static [(&'static str, &'static str)],
    evaluations: &'static [(&'static str, i64)],
    rejected: &'static [(&'static str, &'static str)],
}

fn case(name: &'static str, snapshot: Snapshot, expect: Expect) -> Case {
    Case {
        name,
        snapshot,
        trigger: "job-register",
        now: T0 + SEC,
        expect,
    }
}

impl Case {
    fn at(mut self, now: i64) -> Self {
        self.now = now;
        self
    }
    fn by(mut self, trigger: &'static str) -> Self {
        self.trigger = trigger;
        self
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "single node placement",
            snapshot(batch(), vec![node("n-1")], vec![]),
            Expect {
                new: &[("n-1", 0, Pending)],
                ..Expect::default()
            },
        ),
        case(
            "count 3 over 3 nodes spreads one per node",
            snapshot(
                batch().count(3),
                vec![node("n-1"), node("n-2"), node("n-3")],
                vec![],
            ),
            Expect {
                new: &[
                    ("n-1", ANY, Pending),
                    ("n-2", ANY, Pending),
                    ("n-3", ANY, Pending),
                ],
                ..Expect::default()
            },
        ),
        case(
            "least-loaded node preferred",
            snapshot(
                batch(),
                vec![
                    node("n-busy").available(1.0, 2 * GB).queue(3, 2),
                    node("n-idle"),
                ],
                vec![],
            ),
            Expect {
                new: &[("n-idle", 0, Pending)],
                ..Expect::default()
            },
        ),
        case(
            "no node supports the engine: fails with per-node reasons",
            snapshot(
                batch(),
                vec![node("n-1").engines(&["wasm"]), node("n-2").engines(&[])],
                vec![],
            ),
            Expect {
                state: Some(JobStateType::Failed),
                message: &[
                    "not enough nodes to run job. requested: 1, available: 2, suitable: 0.",
                    "Node n-1: does not support docker, only wasm",
                    "Node n-2: does not support docker, only none",
                ],
                rejected: &[
                    ("n-1", "does not support docker, only wasm"),
                    ("n-2", "does not support docker"),
                ],
                ..Expect::default()
            },
        ),
        case(
            "constraint mismatch is explained, matching node chosen",
            snapshot(
                batch().constraint("zone", "=", &["us-east"]),
                vec![
                    node("n-1").label("zone", "eu"),
                    node("n-2").label("zone", "us-east"),
                    node("n-3"),
                ],
                vec![],
            ),
            Expect {
                new: &[("n-2", 0, Pending)],
                rejected: &[
                    ("n-1", "label zone=eu does not match zone=us-east"),
                    ("n-3", "label zone is not set (required by zone=us-east)"),
                ],
                ..Expect::default()
            },
        ),
        case(
            "no node matches the constraints: fails",
            snapshot(
                batch().constraint("arch", "in", &["arm64"]),
                vec![node("n-1").label("arch", "amd64")],
                vec![],
            ),
            Expect {
                state: Some(JobStateType::Failed),
                message: &["Node n-1: label arch=amd64 does not match arch in (arm64)"],
                rejected: &[("n-1", "does not match")],
                ..Expect::default()
            },
        ),
        case(
            "not enough memory",
            snapshot(
                batch().memory("4GB"),
                vec![node("n-1").available(4.0, 2 * GB)],
                vec![],
            ),
            Expect {
                state: Some(JobStateType::Failed),
                message: &["Node n-1: not enough memory: requested 4.0 GB, available 2.0 GB"],
                rejected: &[(
                    "n-1",
                    "not enough memory: requested 4.0 GB, available 2.0 GB",
                )],
                ..Expect::default()
            },
        ),
        case(
            "not enough GPUs",
            snapshot(
                batch().gpu("1"),
                vec![node("n-1"), node("n-2").gpus(1)],
                vec![],
            ),
            Expect {
                new: &[("n-2", 0, Pending)],
                rejected: &[("n-1", "not enough gpu: requested 1, available 0")],
                ..Expect::default()
            },
        ),
        case(
            "unschedulable nodes are refused with why",
            snapshot(
                batch(),
                vec![
                    node("n-1").disconnected(),
                    node("n-2").pending_approval(),
                    node("n-3"),
                ],
                vec![],
            ),
            Expect {
                new: &[("n-3", 0, Pending)],
                rejected: &[
                    ("n-1", "node is DISCONNECTED"),
                    ("n-2", "node membership is PENDING"),
                ],
                ..Expect::default()
            },
        ),
        case(
            "queue timeout set: queued with a delayed job-queue evaluation",
            snapshot(
                batch().timeouts(0, 600, 0),
                vec![node("n-1").engines(&["wasm"])],
                vec![],
            ),
            Expect {
                state: Some(JobStateType::Queued),
                message: &["waiting for nodes", "does not support docker"],
                evaluations: &[("job-queue", T0 + SEC + 60 * SEC)],
                rejected: &[("n-1", "does not support docker")],
                ..Expect::default()
            },
        ),
        case(
            "queue timeout passed: fails",
            snapshot(
                batch().timeouts(0, 600, 0),
                vec![node("n-1").engines(&["wasm"])],
                vec![],
            ),
            Expect {
                state: Some(JobStateType::Failed),
                message: &["not enough nodes to run job"],
                rejected: &[("n-1", "does not support docker")],
                ..Expect::default()
            },
        )
        .at(T0 + 601 * SEC)
        .by("job-queue"),
        case(
            "partial placement with queueing: placed ones stay, the rest waits",
            snapshot(
                batch().count(3).timeouts(0, 600, 0),
                vec![node("n-1"), node("n-2")],
                vec![],
            ),
            Expect {
                new: &[("n-1", ANY, Pending), ("n-2", ANY, Pending)],
                evaluations: &[("job-queue", T0 + 61 * SEC)],
                rejected: &[
                    ("n-1", "already runs an execution of this job"),
                    ("n-2", "already runs an execution of this job"),
                ],
                ..Expect::default()
            },
        ),
        case(
            "oldest accepted bid approved, other bids rejected",
            snapshot(
                batch(),
                vec![node("n-1"), node("n-2"), node("n-3")],
                vec![
                    exec("e-1", "n-1", 0, AskForBidAccepted, Pending, 3),
                    exec("e-2", "n-2", 0, AskForBidAccepted, Pending, 1),
                    exec("e-3", "n-3", 0, AskForBid, Pending, 2),
                ],
            ),
            Expect {
                state: Some(JobStateType::Running),
                approved: &["e-2"],
                stopped: &["e-1", "e-3"],
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "bids still outstanding: nothing to do",
            snapshot(
                batch(),
                vec![node("n-1")],
                vec![exec("e-1", "n-1", 0, AskForBid, Pending, 0)],
            ),
            Expect::default(),
        ),
        case(
            "two approved executions of one partition: the younger is stopped",
            snapshot(
                batch().state(JobStateType::Running),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Run, Running, 0),
                    exec("e-2", "n-2", 0, BidAccepted, Running, 4),
                ],
            ),
            Expect {
                stopped: &["e-2"],
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "a late bid for a completed partition is rejected",
            snapshot(
                batch().count(2).state(JobStateType::Running),
                vec![node("n-1"), node("n-2"), node("n-3")],
                vec![
                    exec("e-1", "n-1", 0, Completed, Running, 0),
                    exec("e-2", "n-2", 0, AskForBidAccepted, Pending, 1),
                    exec("e-3", "n-3", 1, Run, Running, 1),
                ],
            ),
            Expect {
                stopped: &["e-2"],
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "a node that refused the bid is not asked again",
            snapshot(
                batch(),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Compute::AskForBidRejected, Pending, 0)
                        .message("not enough disk"),
                ],
            ),
            Expect {
                new: &[("n-2", 0, Pending)],
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "every node refused the bid: not enough nodes, with the refusals",
            snapshot(
                batch(),
                vec![node("n-1")],
                vec![
                    exec("e-1", "n-1", 0, Compute::AskForBidRejected, Pending, 0)
                        .message("image not allowed"),
                ],
            ),
            Expect {
                state: Some(JobStateType::Failed),
                message: &[
                    "requested: 1, available: 1, suitable: 0.",
                    "Node n-1: already tried partition 0 of this job: image not allowed",
                ],
                rejected: &[("n-1", "image not allowed")],
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "every partition completed: job completed",
            snapshot(
                batch().count(2).state(JobStateType::Running),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Completed, Running, 0),
                    exec("e-2", "n-2", 1, Completed, Running, 0),
                ],
            ),
            Expect {
                state: Some(JobStateType::Completed),
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "one partition completed, one running: no change",
            snapshot(
                batch().count(2).state(JobStateType::Running),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Completed, Running, 0),
                    exec("e-2", "n-2", 1, Run, Running, 0),
                ],
            ),
            Expect::default(),
        )
        .by("exec-update"),
        case(
            "failed execution retried on another node",
            snapshot(
                batch().state(JobStateType::Running),
                vec![node("n-1"), node("n-2")],
                vec![exec("e-1", "n-1", 0, Failed, Running, 0).message("exit code 1")],
            ),
            Expect {
                new: &[("n-2", 0, Pending)],
                ..Expect::default()
            },
        )
        .by("exec-failure"),
        case(
            "retries exhausted when every node failed the partition",
            snapshot(
                batch().state(JobStateType::Running),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Failed, Running, 0).message("exit code 1"),
                    exec("e-2", "n-2", 0, Failed, Running, 5).message("exit code 2"),
                ],
            ),
            Expect {
                state: Some(JobStateType::Failed),
                message: &["exhausted retries: exit code 2"],
                rejected: &[
                    ("n-1", "already tried partition 0 of this job: exit code 1"),
                    ("n-2", "already tried partition 0 of this job: exit code 2"),
                ],
                ..Expect::default()
            },
        )
        .by("exec-failure"),
        case(
            "failed partition with only busy untried nodes: not exhausted, queued",
            snapshot(
                batch()
                    .count(2)
                    .state(JobStateType::Running)
                    .timeouts(0, 600, 0),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Failed, Running, 0).message("exit code 1"),
                    exec("e-2", "n-2", 1, Run, Running, 0),
                ],
            ),
            Expect {
                evaluations: &[("job-queue", T0 + 61 * SEC)],
                rejected: &[
                    ("n-1", "already tried partition 0 of this job: exit code 1"),
                    ("n-2", "already runs an execution of this job"),
                ],
                ..Expect::default()
            },
        )
        .by("exec-failure"),
        case(
            "node lost: its execution fails and is replaced elsewhere",
            snapshot(
                batch().state(JobStateType::Running),
                vec![node("n-1").disconnected(), node("n-2")],
                vec![exec("e-1", "n-1", 0, Run, Running, 0)],
            ),
            Expect {
                failed: &[("e-1", "node n-1 lost")],
                new: &[("n-2", 0, Pending)],
                rejected: &[("n-1", "node is DISCONNECTED")],
                ..Expect::default()
            },
        )
        .by("node-leave"),
        case(
            "only node lost, queue timeout set: the job waits for nodes",
            snapshot(
                batch().state(JobStateType::Running).timeouts(0, 600, 0),
                vec![node("n-1").disconnected()],
                vec![exec("e-1", "n-1", 0, Run, Running, 0)],
            ),
            Expect {
                state: Some(JobStateType::Queued),
                message: &["waiting for nodes", "Node n-1: node is DISCONNECTED"],
                failed: &[("e-1", "node n-1 lost")],
                evaluations: &[("job-queue", T0 + 61 * SEC)],
                rejected: &[("n-1", "node is DISCONNECTED")],
                ..Expect::default()
            },
        )
        .by("node-leave"),
        case(
            "execution on an unknown node is lost too",
            snapshot(
                batch().state(JobStateType::Running),
                vec![node("n-2")],
                vec![exec("e-1", "n-gone", 0, Run, Running, 0)],
            ),
            Expect {
                failed: &[("e-1", "node n-gone lost")],
                new: &[("n-2", 0, Pending)],
                ..Expect::default()
            },
        ),
        case(
            "execution timeout fails the execution and retries elsewhere",
            snapshot(
                batch().state(JobStateType::Running).timeouts(60, 0, 0),
                vec![node("n-1"), node("n-2")],
                vec![exec("e-1", "n-1", 0, Run, Running, 0)],
            ),
            Expect {
                failed: &[("e-1", "execution timed out")],
                new: &[("n-2", 0, Pending)],
                ..Expect::default()
            },
        )
        .at(T0 + 61 * SEC)
        .by("exec-timeout"),
        case(
            "execution timeout not yet reached",
            snapshot(
                batch().state(JobStateType::Running).timeouts(60, 0, 0),
                vec![node("n-1"), node("n-2")],
                vec![exec("e-1", "n-1", 0, Run, Running, 0)],
            ),
            Expect::default(),
        )
        .at(T0 + 59 * SEC),
        case(
            "total timeout fails the job and stops its executions",
            snapshot(
                batch().state(JobStateType::Running).timeouts(0, 0, 100),
                vec![node("n-1")],
                vec![exec("e-1", "n-1", 0, Run, Running, 0)],
            ),
            Expect {
                state: Some(JobStateType::Failed),
                message: &["job timed out after 100s"],
                stopped: &["e-1"],
                ..Expect::default()
            },
        )
        .at(T0 + 100 * SEC)
        .by("job-timeout"),
        case(
            "stopped job stops its executions and nothing else",
            snapshot(
                batch().count(2).state(JobStateType::Stopped),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Run, Running, 0),
                    exec("e-2", "n-2", 1, Completed, Running, 0),
                ],
            ),
            Expect {
                stopped: &["e-1"],
                ..Expect::default()
            },
        )
        .by("job-cancel"),
        case(
            "executions of an older job version are stopped and replaced",
            snapshot(
                batch().version(2).state(JobStateType::Running),
                vec![node("n-1")],
                vec![exec("e-1", "n-1", 0, Run, Running, 0).version(1)],
            ),
            Expect {
                stopped: &["e-1"],
                new: &[("n-1", 0, Pending)],
                ..Expect::default()
            },
        )
        .by("job-update"),
        case(
            "service: a completed execution is replaced",
            snapshot(
                service().state(JobStateType::Running),
                vec![node("n-1")],
                vec![exec("e-1", "n-1", 0, Completed, Running, 0)],
            ),
            Expect {
                new: &[("n-1", 0, Pending)],
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "at most max_new_executions_per_eval per evaluation, then exec-limit",
            snapshot(
                batch().count(25),
                (0..25).map(|i| node(&format!("n-{i:02}"))).collect(),
                vec![],
            ),
            Expect {
                evaluations: &[("exec-limit", T0 + SEC)],
                ..Expect::default()
            },
        ),
        case(
            "ops: on every matching node, pre-approved",
            snapshot(
                ops().constraint("role", "=", &["worker"]),
                vec![
                    node("n-1").label("role", "worker"),
                    node("n-2").label("role", "worker"),
                    node("n-3").label("role", "db"),
                ],
                vec![],
            ),
            Expect {
                state: Some(JobStateType::Running),
                new: &[("n-1", 0, Running), ("n-2", 0, Running)],
                rejected: &[("n-3", "label role=db does not match role=worker")],
                ..Expect::default()
            },
        ),
        case(
            "ops: no matching node fails at once with reasons",
            snapshot(ops(), vec![node("n-1").engines(&["wasm"])], vec![]),
            Expect {
                state: Some(JobStateType::Failed),
                message: &[
                    "not enough nodes",
                    "Node n-1: does not support docker, only wasm",
                ],
                rejected: &[("n-1", "does not support docker")],
                ..Expect::default()
            },
        ),
        case(
            "ops: no matching node yet, queue timeout set: queued",
            snapshot(
                ops().timeouts(0, 300, 0),
                vec![node("n-1").engines(&["wasm"])],
                vec![],
            ),
            Expect {
                state: Some(JobStateType::Queued),
                message: &["waiting for nodes", "does not support docker"],
                evaluations: &[("job-queue", T0 + 61 * SEC)],
                rejected: &[("n-1", "does not support docker")],
                ..Expect::default()
            },
        ),
        case(
            "ops: a failed execution fails the job",
            snapshot(
                ops().state(JobStateType::Running),
                vec![node("n-1"), node("n-2"), node("n-3")],
                vec![
                    exec("e-1", "n-1", 0, Completed, Running, 0),
                    exec("e-2", "n-2", 0, Failed, Running, 0).message("boom"),
                    exec("e-3", "n-3", 0, Run, Running, 0),
                ],
            ),
            Expect {
                state: Some(JobStateType::Failed),
                message: &["execution on node n-2 failed: boom"],
                stopped: &["e-3"],
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "ops: all executions completed: job completed",
            snapshot(
                ops().state(JobStateType::Running),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Completed, Running, 0),
                    exec("e-2", "n-2", 0, Completed, Running, 0),
                ],
            ),
            Expect {
                state: Some(JobStateType::Completed),
                ..Expect::default()
            },
        )
        .by("exec-update"),
        case(
            "ops: still running: no change",
            snapshot(
                ops().state(JobStateType::Running),
                vec![node("n-1"), node("n-2")],
                vec![
                    exec("e-1", "n-1", 0, Completed, Running, 0),
                    exec("e-2", "n-2", 0, BidAccepted, Running, 0),
                ],
            ),
            Expect::default(),
        )
        .by("exec-update"),
        case(
            "daemon: a newly joined node gets an execution",
            snapshot(
                daemon().state(JobStateType::Running),
                vec![node("n-1"), node("n-2")],
                vec![exec("e-1", "n-1", 0, Run, Running, 0)],
            ),
            Expect {
                new: &[("n-2", 0, Running)],
                ..Expect::default()
            },
        )
        .by("node-join"),
        case(
            "daemon: a workload that failed is not restarted, one whose node was lost is",
            snapshot(
                daemon().state(JobStateType::Running),
                vec![node("n-1"), node("n-2"), node("n-3")],
                vec![
                    exec("e-1", "n-1", 0, Failed, Running, 0).message("crashed"),
                    {
                        let mut lost = exec("e-2", "n-2", 0, Failed, Stopped, 0);
                        lost.compute_state.details.insert(
                            bh_scheduler::scheduler::DETAIL_NODE_LOST.to_string(),
                            "true".to_string(),
                        );
                        lost
                    },
                    exec("e-3", "n-3", 0, Run, Running, 0),
                ],
            ),
            Expect {
                new: &[("n-2", 0, Running)],
                ..Expect::default()
            },
        )
        .by("node-join"),
        case(
            "daemon: no node yet: queued, never failed",
            snapshot(daemon(), vec![node("n-1").engines(&["wasm"])], vec![]),
            Expect {
                state: Some(JobStateType::Queued),
                message: &["waiting for nodes"],
                rejected: &[("n-1", "does not support docker")],
                ..Expect::default()
            },
        ),
    ]
}

fn check(case: &Case, scheduler: &JobScheduler) {
    let name = case.name;
    let plan = scheduler.process(&case.snapshot, &eval(case.trigger), case.now);
    let summary = Summary::of(&plan);
    let expect = &case.expect;

    match expect.state {
        None => assert_eq!(summary.job_state, None, "{name}: job state must not change"),
        Some(state) => {
            let (actual, message) = summary.job_state.clone().unwrap_or_else(|| {
                panic!("{name}: expected job state {state}, plan: {summary:#?}")
            });
            assert_eq!(actual, state, "{name}: job state ({message})");
            for part in expect.message {
                assert!(
                    message.contains(part),
                    "{name}: message {message:?} lacks {part:?}"
                );
            }
        }
    }

    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        summary.approved,
        strings(expect.approved),
        "{name}: approved"
    );
    assert_eq!(summary.stopped, strings(expect.stopped), "{name}: stopped");
    assert_eq!(
        summary.failed.len(),
        expect.failed.len(),
        "{name}: failed {:?}",
        summary.failed
    );
    for ((id, message), (want_id, want_part)) in summary.failed.iter().zip(expect.failed) {
        assert_eq!(id, want_id, "{name}: failed execution");
        assert!(
            message.contains(want_part),
            "{name}: {message:?} lacks {want_part:?}"
        );
    }

    if !expect.new.is_empty() || expect.evaluations.iter().all(|(t, _)| *t != "exec-limit") {
        assert_eq!(
            summary.new.len(),
            expect.new.len(),
            "{name}: new {:?}",
            summary.new
        );
        for (actual, want) in summary.new.iter().zip(expect.new) {
            assert_eq!(actual.0, want.0, "{name}: new execution node");
            if want.1 != ANY {
                assert_eq!(actual.1, want.1, "{name}: new execution partition");
            }
            assert_eq!(actual.2, want.2, "{name}: new execution desired state");
        }
    }
    let mut partitions: Vec<i64> = plan
        .new_executions
        .iter()
        .filter(|e| !plan.job_id.is_empty() && e.desired_state.state_type == Pending)
        .map(|e| e.partition_index)
        .collect();
    let placed = partitions.len();
    partitions.sort();
    partitions.dedup();
    assert_eq!(
        partitions.len(),
        placed,
        "{name}: one new execution per partition"
    );

    let evaluations: Vec<(String, i64)> = expect
        .evaluations
        .iter()
        .map(|(t, w)| (t.to_string(), *w))
        .collect();
    assert_eq!(summary.evaluations, evaluations, "{name}: evaluations");

    for (node, part) in expect.rejected {
        let reason = summary
            .rejected
            .get(*node)
            .unwrap_or_else(|| panic!("{name}: {node} not rejected: {:?}", summary.rejected));
        assert!(
            reason.contains(part),
            "{name}: {node}: {reason:?} lacks {part:?}"
        );
    }
    if expect.rejected.is_empty() {
        assert!(
            summary.rejected.is_empty(),
            "{name}: unexpected rejections {:?}",
            summary.rejected
        );
    }
}

#[test]
fn scheduling_table() {
    let scheduler = JobScheduler::new(SchedulerConfig::default());
    for case in cases() {
        check(&case, &scheduler);
    }
}

#[test]
fn rows_hold_for_any_seed() {
    for seed in 1..20 {
        let scheduler = JobScheduler::new(SchedulerConfig {
            seed,
            ..SchedulerConfig::default()
        });
        for case in cases() {
            check(&case, &scheduler);
        }
    }
}

#[test]
fn same_inputs_give_the_same_plan() {
    let scheduler = JobScheduler::new(SchedulerConfig::default());
    let nodes: Vec<_> = (0..6).map(|i| node(&format!("n-{i}"))).collect();
    let forward = snapshot(batch().count(4), nodes.clone(), vec![]);
    let mut reversed = forward.clone();
    reversed.nodes.reverse();
    let eval = eval("job-register");

    let first = scheduler.process(&forward, &eval, T0 + SEC);
    let second = scheduler.process(&forward, &eval, T0 + SEC);
    let shuffled = scheduler.process(&reversed, &eval, T0 + SEC);
    assert_eq!(first, second);
    assert_eq!(first, shuffled, "snapshot order must not matter");
    assert_eq!(first.new_executions.len(), 4);

    let other_seed = JobScheduler::new(SchedulerConfig {
        seed: 7,
        ..SchedulerConfig::default()
    })
    .process(&forward, &eval, T0 + SEC);
    assert_ne!(
        first.new_executions[0].id, other_seed.new_executions[0].id,
        "the seed feeds the IDs"
    );
}

#[test]
fn new_executions_are_complete() {
    let scheduler = JobScheduler::new(SchedulerConfig::default());
    let plan = scheduler.process(
        &snapshot(batch(), vec![node("n-1")], vec![]),
        &eval("job-register"),
        T0 + SEC,
    );
    let execution = &plan.new_executions[0];
    let uuid = execution.id.strip_prefix("e-").expect("e- prefix");
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.as_bytes()[14], b'4', "UUID v4 format: {uuid}");
    assert_eq!(execution.job_id, "j-1");
    assert_eq!(execution.namespace, "default");
    assert_eq!(execution.eval_id, "v-job-register");
    assert_eq!(execution.job_version, 1);
    assert_eq!(execution.compute_state.state_type, Compute::New);
    assert_eq!(execution.desired_state.state_type, Pending);
    assert_eq!(execution.create_time, T0 + SEC);
    assert_eq!(execution.modify_time, T0 + SEC);
    assert!(execution.job.is_some());
    let resources = &execution.allocated_resources.tasks["main"];
    assert_eq!(resources.cpu, 1.0);
    assert_eq!(resources.memory, GB);
    assert_eq!(plan.eval_id, "v-job-register");
    assert_eq!(plan.job_id, "j-1");
    assert_eq!(plan.job_revision, 1);
}

#[test]
fn capacity_used_by_the_plan_counts() {
    // Each node fits one 3GB execution; the plan must not put two on one node even across partitions.
    let scheduler = JobScheduler::new(SchedulerConfig::default());
    let job = batch().count(2).memory("3GB");
    let nodes = vec![
        node("n-1").available(4.0, 4 * GB),
        node("n-2").available(4.0, 4 * GB),
    ];
    let plan = scheduler.process(
        &snapshot(job, nodes, vec![]),
        &eval("job-register"),
        T0 + SEC,
    );
    let mut on: Vec<&str> = plan
        .new_executions
        .iter()
        .map(|e| e.node_id.as_str())
        .collect();
    on.sort();
    assert_eq!(on, ["n-1", "n-2"]);
}

#[test]
fn load_spreads_across_idle_nodes_over_many_evaluations() {
    // Many single-partition jobs over identical idle nodes: the tie-break spreads them.
    let scheduler = JobScheduler::new(SchedulerConfig::default());
    let nodes: Vec<_> = (0..4).map(|i| node(&format!("n-{i}"))).collect();
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..200 {
        let mut e = eval("job-register");
        e.id = format!("v-{i}");
        let plan = scheduler.process(&snapshot(batch(), nodes.clone(), vec![]), &e, T0 + SEC);
        *counts
            .entry(plan.new_executions[0].node_id.clone())
            .or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(counts.values().all(|n| *n >= 25), "{counts:?}");
}

#[test]
fn invalid_resources_fail_the_job_naming_the_field() {
    let scheduler = JobScheduler::new(SchedulerConfig::default());
    let plan = scheduler.process(
        &snapshot(batch().memory("lots"), vec![node("n-1")], vec![]),
        &eval("job-register"),
        T0 + SEC,
    );
    let state = plan.job_state.expect("job state");
    assert_eq!(state.state_type, JobStateType::Failed);
    assert!(
        state.message.contains("Resources: Memory"),
        "{}",
        state.message
    );
}

#[test]
fn snapshot_of_another_job_plans_nothing() {
    let scheduler = JobScheduler::new(SchedulerConfig::default());
    let mut e = eval("job-register");
    e.job_id = "j-other".to_string();
    let plan = scheduler.process(&snapshot(batch(), vec![node("n-1")], vec![]), &e, T0 + SEC);
    assert!(plan.is_empty());
}
