//! What a job asks of a node: engine, publisher, storages, label constraints and parsed resources.
//!
//! Quantity parsing and constraint matching live here privately until `bh_models` ships its own
//! (`bh_models::quantity`, `Constraint::matches`); the scheduler then switches to those.

use std::collections::BTreeMap;

use bh_models::{Constraint, Job, Resources};

/// Constraint keys with this prefix are preferences: a match adds to a node's score, a mismatch refuses nothing.
pub const PREFERENCE_PREFIX: &str = "favour_";

/// Why a job's requirements could not be read. The job spec names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementsError {
    /// The job has no task to run.
    #[error("job has no tasks")]
    NoTask,
    /// A resource quantity does not parse.
    #[error("invalid Tasks[0].Resources.{field} {value:?}: {reason}")]
    InvalidResource {
        field: &'static str,
        value: String,
        reason: String,
    },
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
        let res = &task.resources;
        let resources = Resources {
            cpu: parse_cpu(&res.cpu).map_err(|reason| RequirementsError::InvalidResource {
                field: "CPU",
                value: res.cpu.clone(),
                reason,
            })?,
            memory: parse_bytes(&res.memory).map_err(|reason| {
                RequirementsError::InvalidResource {
                    field: "Memory",
                    value: res.memory.clone(),
                    reason,
                }
            })?,
            disk: parse_bytes(&res.disk).map_err(|reason| RequirementsError::InvalidResource {
                field: "Disk",
                value: res.disk.clone(),
                reason,
            })?,
            gpu: parse_gpu(&res.gpu).map_err(|reason| RequirementsError::InvalidResource {
                field: "GPU",
                value: res.gpu.clone(),
                reason,
            })?,
            gpus: Vec::new(),
        };
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

/// Parses a CPU quantity: cores (`1`, `0.5`) or millicores (`250m`); empty is zero.
pub fn parse_cpu(text: &str) -> Result<f64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0.0);
    }
    let (number, scale) = match text.strip_suffix('m') {
        Some(milli) => (milli.trim(), 0.001),
        None => (text, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| "expected cores such as 1, 0.5 or 250m".to_string())?;
    if !value.is_finite() || value < 0.0 {
        return Err("must be a non-negative number".to_string());
    }
    Ok(value * scale)
}

/// Parses a byte quantity: `1024`, `512Mi`, `1Gb`, `1.5 GiB` (SI units are powers of 1000, `i` units of 1024,
/// case-insensitive, as go-humanize reads them); empty is zero.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    if text.ends_with('%') {
        return Err("percentages describe node capacity, not a task".to_string());
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| "expected a size such as 512Mi or 1Gb".to_string())?;
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024.0f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024.0f64.powi(5),
        other => return Err(format!("unknown unit {other:?}")),
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err("too large".to_string());
    }
    Ok(bytes.round() as u64)
}

/// Parses a GPU count; empty is zero.
pub fn parse_gpu(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse()
        .map_err(|_| "expected a whole number of GPUs".to_string())
}

/// Formats bytes compactly with SI units (`512MB`, `1.5GB`), for messages.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let text = if unit == 0 || value >= 100.0 {
        format!("{value:.0}")
    } else {
        let s = format!("{value:.1}");
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    };
    format!("{text}{}", UNITS[unit])
}

/// Formats a CPU amount in cores without trailing zeros (`0.25`, `2`), for messages.
pub fn format_cpu(cores: f64) -> String {
    let s = format!("{cores:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// How a constraint reads in messages: `zone = us-east`, `zone in (a, b)`, `gpu exists`.
pub fn describe_constraint(constraint: &Constraint) -> String {
    let values = constraint.values.join(", ");
    match constraint.operator.to_ascii_lowercase().as_str() {
        "exists" => format!("{} exists", constraint.key),
        "!" => format!("!{}", constraint.key),
        "in" | "notin" => format!("{} {} ({values})", constraint.key, constraint.operator),
        _ => format!("{} {} {values}", constraint.key, constraint.operator),
    }
}

/// Why `labels` do not satisfy `constraint` (Kubernetes label-selector semantics), or `None` when they do.
pub fn constraint_mismatch(
    constraint: &Constraint,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    let label = labels.get(&constraint.key);
    let matches = match constraint.operator.to_ascii_lowercase().as_str() {
        "=" | "==" | "in" => label.is_some_and(|v| constraint.values.contains(v)),
        "!=" | "notin" => label.is_none_or(|v| !constraint.values.contains(v)),
        "exists" => label.is_some(),
        "!" => label.is_none(),
        op @ ("gt" | "lt") => {
            let bound = constraint
                .values
                .first()
                .and_then(|v| v.trim().parse::<i64>().ok());
            let value = label.and_then(|v| v.trim().parse::<i64>().ok());
            match (value, bound) {
                (Some(value), Some(bound)) if op == "gt" => value > bound,
                (Some(value), Some(bound)) => value < bound,
                _ => false,
            }
        }
        other => {
            return Some(format!(
                "constraint {:?} has unsupported operator {other:?}",
                constraint.key
            ))
        }
    };
    if matches {
        return None;
    }
    let actual = match label {
        Some(value) => format!("label {}={value}", constraint.key),
        None => format!("label {} not set", constraint.key),
    };
    Some(format!(
        "does not match constraint {} ({actual})",
        describe_constraint(constraint)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_cpu("250m"), Ok(0.25));
        assert_eq!(parse_cpu("2"), Ok(2.0));
        assert_eq!(parse_cpu(""), Ok(0.0));
        assert!(parse_cpu("lots").is_err());
        assert_eq!(parse_bytes("512Mi"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_bytes("1Gb"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("1.5 GiB"), Ok(1_610_612_736));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("1 parsec").is_err());
        assert!(parse_bytes("85%").is_err());
        assert_eq!(parse_gpu("1"), Ok(1));
        assert!(parse_gpu("-1").is_err());
    }

    #[test]
    fn formats_quantities() {
        assert_eq!(format_bytes(1_000_000_000), "1GB");
        assert_eq!(format_bytes(512_000_000), "512MB");
        assert_eq!(format_bytes(1_500_000_000), "1.5GB");
        assert_eq!(format_bytes(12), "12B");
        assert_eq!(format_cpu(0.25), "0.25");
        assert_eq!(format_cpu(2.0), "2");
        assert_eq!(format_cpu(0.0), "0");
    }

    #[test]
    fn matches_constraints() {
        let labels: BTreeMap<String, String> = [("zone", "us-east"), ("cores", "8")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = |key: &str, op: &str, values: &[&str]| Constraint {
            key: key.to_string(),
            operator: op.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        assert_eq!(constraint_mismatch(&c("zone", "=", &["us-east"]), &labels), None);
        assert_eq!(
            constraint_mismatch(&c("zone", "in", &["eu", "us-east"]), &labels),
            None
        );
        assert_eq!(
            constraint_mismatch(&c("zone", "=", &["eu"]), &labels).as_deref(),
            Some("does not match constraint zone = eu (label zone=us-east)")
        );
        assert_eq!(constraint_mismatch(&c("gpu", "!=", &["x"]), &labels), None);
        assert_eq!(constraint_mismatch(&c("gpu", "!", &[]), &labels), None);
        assert!(constraint_mismatch(&c("gpu", "exists", &[]), &labels).is_some());
        assert_eq!(constraint_mismatch(&c("cores", "gt", &["4"]), &labels), None);
        assert!(constraint_mismatch(&c("cores", "lt", &["4"]), &labels).is_some());
        assert!(constraint_mismatch(&c("zone", "~", &["x"]), &labels).is_some());
    }
}
