//! Node selection: feasibility filters (each refusal with a reason), then capacity- and queue-aware ranking.
//!
//! Filters, in order: approved and connected; engine; publisher; storage sources; hard constraints; the node's
//! per-job limit (`MaxJobRequirements`); free capacity (`AvailableCapacity` minus what the plan being built
//! already put on the node). Ranking: free capacity after placement (CPU .4, memory .3, disk .2, GPU .1, scaled
//! to 0-80), plus 0-20 for a short queue, plus 10 per matched `favour_` preference, plus a seeded 0-5 tie-break,
//! so work spreads over idle nodes instead of piling onto one.

use std::collections::BTreeMap;

use bh_models::node::{MEMBERSHIP_APPROVED, NODE_TYPE_REQUESTER};
use bh_models::quantity::{format_bytes, format_cpu};
use bh_models::selector::explain_mismatch;
use bh_models::{NodeState, Resources};
use rand::Rng;

use super::requirements::JobRequirements;
use crate::plan::NodeRejection;

/// Weight of the free-capacity score (out of 100).
const CAPACITY_POINTS: f64 = 80.0;
/// Weight of the queue-depth score (out of 100).
const QUEUE_POINTS: f64 = 20.0;
/// Score added per matched `favour_` preference.
const PREFERENCE_POINTS: f64 = 10.0;
/// Upper bound of the random tie-break.
const TIE_BREAK_POINTS: f64 = 5.0;

/// Work the plan being built has already put on nodes, so later placements in the same plan see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlannedLoad {
    per_node: BTreeMap<String, (Resources, usize)>,
}

impl PlannedLoad {
    /// Records one more execution needing `resources` on `node_id`.
    pub fn add(&mut self, node_id: &str, resources: &Resources) {
        let entry = self.per_node.entry(node_id.to_string()).or_default();
        entry.0 = entry.0.add(resources);
        entry.1 += 1;
    }

    /// Resources the plan has put on `node_id` so far.
    pub fn resources(&self, node_id: &str) -> Resources {
        self.per_node
            .get(node_id)
            .map(|(r, _)| r.clone())
            .unwrap_or_default()
    }

    /// Number of executions the plan has put on `node_id` so far.
    pub fn executions(&self, node_id: &str) -> usize {
        self.per_node.get(node_id).map(|(_, n)| *n).unwrap_or(0)
    }
}

/// A node that can take the job, with its score (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct RankedNode {
    pub node_id: String,
    /// Free capacity (0-80) + short queue (0-20) + 10 per matched preference + tie-break (0-5).
    pub score: f64,
}

/// The outcome of selecting nodes for one execution.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    /// Feasible nodes, best first.
    pub ranked: Vec<RankedNode>,
    /// Every refused node (compute nodes only), with why.
    pub rejected: Vec<NodeRejection>,
    /// Compute nodes that are approved and connected (Bacalhau's "available" in "not enough nodes").
    pub available: usize,
}

/// Filters and ranks `nodes` for one execution with `requirements`, taking `planned` into account.
///
/// Nodes are visited in ID order so that the random tie-break, drawn from `rng`, does not depend on the order
/// of the snapshot.
pub fn select_nodes<R: Rng>(
    requirements: &JobRequirements,
    nodes: &[NodeState],
    planned: &PlannedLoad,
    rng: &mut R,
) -> Selection {
    let mut ordered: Vec<&NodeState> = nodes
        .iter()
        .filter(|n| n.info.node_type != NODE_TYPE_REQUESTER)
        .collect();
    ordered.sort_by(|a, b| a.info.node_id.cmp(&b.info.node_id));

    let mut selection = Selection::default();
    for node in ordered {
        let node_id = node.info.node_id.clone();
        if !node.is_schedulable() {
            let reason = if node.membership != MEMBERSHIP_APPROVED {
                format!(
                    "node membership is {}",
                    display_or(&node.membership, "unknown")
                )
            } else {
                format!(
                    "node is {}",
                    display_or(&node.connection_state.status, "not connected")
                )
            };
            selection.rejected.push(NodeRejection { node_id, reason });
            continue;
        }
        selection.available += 1;
        match refusal(requirements, node, planned) {
            Some(reason) => selection.rejected.push(NodeRejection { node_id, reason }),
            None => {
                let score =
                    score(requirements, node, planned) + rng.random_range(0.0..TIE_BREAK_POINTS);
                selection.ranked.push(RankedNode { node_id, score });
            }
        }
    }
    selection
        .ranked
        .sort_by(|a, b| b.score.total_cmp(&a.score).then(a.node_id.cmp(&b.node_id)));
    selection
}

/// Why `node` cannot take one execution, or `None` when it can.
fn refusal(
    requirements: &JobRequirements,
    node: &NodeState,
    planned: &PlannedLoad,
) -> Option<String> {
    let info = &node.info.compute_node_info;
    if !requirements.engine.is_empty() {
        if let Some(reason) = unsupported(&requirements.engine, &info.execution_engines) {
            return Some(reason);
        }
        if let Some((engine, problem)) = info
            .engine_problems
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&requirements.engine))
        {
            return Some(format!("engine {engine} is unavailable: {problem}"));
        }
    }
    if !requirements.publisher.is_empty() && !info.publishers.is_empty() {
        if let Some(reason) = unsupported(&requirements.publisher, &info.publishers) {
            return Some(reason);
        }
    }
    if !info.storage_sources.is_empty() {
        for storage in &requirements.storage_sources {
            if let Some(reason) = unsupported(storage, &info.storage_sources) {
                return Some(reason);
            }
        }
    }
    for constraint in &requirements.constraints {
        if let Some(reason) = explain_mismatch(constraint, &node.info.labels) {
            return Some(reason);
        }
    }
    let wanted = &requirements.resources;
    if let Some(reason) = exceeds(wanted, &info.max_job_requirements, true) {
        return Some(format!("job exceeds the node's per-job limit: {reason}"));
    }
    let free = info
        .available_capacity
        .sub(&planned.resources(&node.info.node_id));
    exceeds(wanted, &free, false).map(|reason| format!("not enough {reason}"))
}

/// `does not support X, only Y` when `wanted` is not in `offered` (case-insensitive).
fn unsupported(wanted: &str, offered: &[String]) -> Option<String> {
    if offered.iter().any(|o| o.eq_ignore_ascii_case(wanted)) {
        return None;
    }
    let only = if offered.is_empty() {
        "none".to_string()
    } else {
        offered.join(", ")
    };
    Some(format!("does not support {wanted}, only {only}"))
}

/// The first dimension where `wanted` does not fit in `limit`, as `memory: requested 1GB, available 512MB`.
/// With `only_set_limits`, dimensions whose limit is zero are not checked (an unset per-job limit).
fn exceeds(wanted: &Resources, limit: &Resources, only_set_limits: bool) -> Option<String> {
    let checked = |limit_is_zero: bool| !(only_set_limits && limit_is_zero);
    let noun = if only_set_limits {
        "limit"
    } else {
        "available"
    };
    if checked(limit.cpu == 0.0) && wanted.cpu > limit.cpu + 1e-9 {
        return Some(format!(
            "cpu: requested {}, {noun} {}",
            format_cpu(wanted.cpu),
            format_cpu(limit.cpu)
        ));
    }
    if checked(limit.memory == 0) && wanted.memory > limit.memory {
        return Some(format!(
            "memory: requested {}, {noun} {}",
            format_bytes(wanted.memory),
            format_bytes(limit.memory)
        ));
    }
    if checked(limit.disk == 0) && wanted.disk > limit.disk {
        return Some(format!(
            "disk: requested {}, {noun} {}",
            format_bytes(wanted.disk),
            format_bytes(limit.disk)
        ));
    }
    if checked(limit.gpu == 0) && wanted.gpu > limit.gpu {
        return Some(format!(
            "gpu: requested {}, {noun} {}",
            wanted.gpu, limit.gpu
        ));
    }
    None
}

/// Score without the tie-break: free capacity after placement (0-80), short queue (0-20), preferences.
fn score(requirements: &JobRequirements, node: &NodeState, planned: &PlannedLoad) -> f64 {
    let info = &node.info.compute_node_info;
    let node_id = &node.info.node_id;
    let free = info
        .available_capacity
        .sub(&planned.resources(node_id))
        .sub(&requirements.resources);
    let max = &info.max_capacity;
    let dimensions = [
        (0.4, free.cpu, max.cpu),
        (0.3, free.memory as f64, max.memory as f64),
        (0.2, free.disk as f64, max.disk as f64),
        (0.1, free.gpu as f64, max.gpu as f64),
    ];
    let (weighted, weights) = dimensions.iter().filter(|(_, _, max)| *max > 0.0).fold(
        (0.0, 0.0),
        |(sum, weights), (weight, free, max)| {
            (
                sum + weight * (free / max).clamp(0.0, 1.0),
                weights + weight,
            )
        },
    );
    let capacity = if weights > 0.0 {
        CAPACITY_POINTS * weighted / weights
    } else {
        0.0
    };
    // Queued work weighs double: it has not even started, while running work already shows in free capacity.
    let depth = 2.0 * info.enqueued_executions.max(0) as f64
        + info.running_executions.max(0) as f64
        + planned.executions(node_id) as f64;
    let queue = QUEUE_POINTS * (1.0 - depth / (depth + 4.0));
    let preferences = requirements
        .preferences
        .iter()
        .filter(|c| c.matches(&node.info.labels))
        .count() as f64
        * PREFERENCE_POINTS;
    capacity + queue + preferences
}

fn display_or<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.is_empty() {
        fallback
    } else {
        value
    }
}
