//! Node selection on its own: filters with their reasons, and the capacity- and queue-aware ranking.

mod harness;

use bh_models::{Job, NodeState, Resources};
use bh_scheduler::scheduler::{select_nodes, JobRequirements, PlannedLoad, Selection};
use harness::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn select(job: &Job, nodes: &[NodeState], planned: &PlannedLoad, seed: u64) -> Selection {
    let requirements = JobRequirements::from_job(job).expect("requirements");
    select_nodes(
        &requirements,
        nodes,
        planned,
        &mut StdRng::seed_from_u64(seed),
    )
}

fn ranked(selection: &Selection) -> Vec<&str> {
    selection
        .ranked
        .iter()
        .map(|n| n.node_id.as_str())
        .collect()
}

fn reason<'a>(selection: &'a Selection, node_id: &str) -> &'a str {
    selection
        .rejected
        .iter()
        .find(|r| r.node_id == node_id)
        .map(|r| r.reason.as_str())
        .unwrap_or_else(|| panic!("{node_id} not rejected: {:?}", selection.rejected))
}

#[test]
fn ranking_prefers_free_capacity_and_short_queues_for_every_seed() {
    let nodes = vec![
        node("n-full").available(1.5, GB + 1),
        node("n-half").available(2.0, 4 * GB),
        node("n-queued").queue(8, 4),
        node("n-idle"),
    ];
    for seed in 0..50 {
        let selection = select(&batch(), &nodes, &PlannedLoad::default(), seed);
        assert_eq!(ranked(&selection)[0], "n-idle", "seed {seed}");
        assert_eq!(ranked(&selection)[3], "n-full", "seed {seed}");
        assert_eq!(selection.available, 4);
        assert!(selection.rejected.is_empty());
    }
}

#[test]
fn capacity_already_planned_is_subtracted() {
    let nodes = vec![node("n-1").available(4.0, 2 * GB)];
    let mut planned = PlannedLoad::default();
    planned.add(
        "n-1",
        &Resources {
            cpu: 1.0,
            memory: GB + GB / 2,
            ..Resources::default()
        },
    );
    assert_eq!(planned.executions("n-1"), 1);
    let selection = select(&batch(), &nodes, &planned, 0);
    assert!(selection.ranked.is_empty());
    assert_eq!(
        reason(&selection, "n-1"),
        "not enough memory: requested 1.0 GB, available 500 MB"
    );
}

#[test]
fn per_job_limit_is_enforced_only_where_set() {
    let mut limited = node("n-limited");
    limited.info.compute_node_info.max_job_requirements = Resources {
        cpu: 0.5,
        ..Resources::default()
    };
    let mut memory_only = node("n-memory-only");
    memory_only.info.compute_node_info.max_job_requirements = Resources {
        memory: 2 * GB,
        ..Resources::default()
    };
    let selection = select(
        &batch(),
        &[limited, memory_only],
        &PlannedLoad::default(),
        0,
    );
    assert_eq!(ranked(&selection), ["n-memory-only"]);
    assert_eq!(
        reason(&selection, "n-limited"),
        "job exceeds the node's per-job limit: cpu: requested 1, limit 500m"
    );
}

#[test]
fn engine_matching_is_case_insensitive_and_problems_are_reported() {
    let mut broken = node("n-broken");
    broken
        .info
        .compute_node_info
        .engine_problems
        .insert("docker".to_string(), "daemon not reachable".to_string());
    let nodes = vec![node("n-upper").engines(&["Docker"]), broken];
    let selection = select(&batch(), &nodes, &PlannedLoad::default(), 0);
    assert_eq!(ranked(&selection), ["n-upper"]);
    assert_eq!(
        reason(&selection, "n-broken"),
        "engine docker is unavailable: daemon not reachable"
    );
}

#[test]
fn publishers_and_storages_are_checked_when_the_node_lists_them() {
    let mut job = batch();
    job.tasks[0].publisher = bh_models::SpecConfig::new("s3");
    job.tasks[0].input_sources = vec![bh_models::InputSource {
        source: bh_models::SpecConfig::new("ipfs"),
        target: "/in".to_string(),
        ..Default::default()
    }];
    let mut no_s3 = node("n-no-s3");
    no_s3.info.compute_node_info.publishers = vec!["local".to_string()];
    let mut no_ipfs = node("n-no-ipfs");
    no_ipfs.info.compute_node_info.storage_sources = vec!["urldownload".to_string()];
    let mut both = node("n-both");
    both.info.compute_node_info.publishers = vec!["S3".to_string()];
    both.info.compute_node_info.storage_sources = vec!["ipfs".to_string()];
    let unlisted = node("n-unlisted");
    let selection = select(
        &job,
        &[no_s3, no_ipfs, both, unlisted],
        &PlannedLoad::default(),
        0,
    );
    let mut names = ranked(&selection);
    names.sort();
    assert_eq!(names, ["n-both", "n-unlisted"]);
    assert_eq!(
        reason(&selection, "n-no-s3"),
        "does not support s3, only local"
    );
    assert_eq!(
        reason(&selection, "n-no-ipfs"),
        "does not support ipfs, only urldownload"
    );
}

#[test]
fn favour_constraints_prefer_without_refusing() {
    let job = batch().constraint("favour_zone", "=", &["eu"]);
    let nodes = vec![
        node("n-us").label("zone", "us"),
        node("n-eu").label("zone", "eu"),
    ];
    for seed in 0..20 {
        let selection = select(&job, &nodes, &PlannedLoad::default(), seed);
        assert_eq!(ranked(&selection), ["n-eu", "n-us"], "seed {seed}");
    }
}

#[test]
fn requester_nodes_are_ignored() {
    let mut requester = node("n-requester");
    requester.info.node_type = bh_models::node::NODE_TYPE_REQUESTER.to_string();
    let selection = select(&batch(), &[requester], &PlannedLoad::default(), 0);
    assert!(selection.ranked.is_empty());
    assert!(selection.rejected.is_empty());
    assert_eq!(selection.available, 0);
}
