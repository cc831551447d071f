//! Normalisation, defaults and validation of jobs; every problem names its field path.
//!
//! Order of use: [`normalize`], then (server side) [`apply_defaults`], then [`validate`] (client)
//! or [`validate_for_submit`] (server). Validation collects all problems into one message.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::job::{
    Job, SpecConfig, Task, DEFAULT_NAMESPACE, JOB_TYPE_BATCH, JOB_TYPE_DAEMON, JOB_TYPE_OPS,
    JOB_TYPE_SERVICE, NETWORK_BRIDGE, NETWORK_DEFAULT, NETWORK_FULL, NETWORK_HOST, NETWORK_HTTP,
    NETWORK_NONE,
};
use crate::selector::{canonical_operator, validate_constraint};

/// The most partitions one job may ask for: the scheduler plans every partition on every evaluation, so an
/// absurd Count would pin the orchestrator (upstream sets no bound; bh refuses with a clear error instead).
pub const MAX_JOB_COUNT: i64 = 10_000;

/// The task name used when a task names none.
pub const DEFAULT_TASK_NAME: &str = "main";
/// Default CPU request when a task sets none.
pub const DEFAULT_CPU: &str = "500m";
/// Default memory request when a task sets none.
pub const DEFAULT_MEMORY: &str = "512Mb";
/// Prefix reserved for variables bh itself sets in a workload.
pub const RESERVED_ENV_PREFIX: &str = "BACALHAU_";
/// Meta keys under this prefix are reserved for the orchestrator.
pub const RESERVED_META_PREFIX: &str = "bacalhau.org/";

/// Values filled into tasks that leave them empty (Bacalhau's `JobDefaults`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobDefaults {
    pub cpu: String,
    pub memory: String,
    /// Empty: no default.
    pub disk: String,
    /// Empty: no default.
    pub gpu: String,
    /// Used when a task has no publisher.
    pub publisher: Option<SpecConfig>,
    /// Seconds; 0: no default. Applied to batch and ops jobs only.
    pub execution_timeout: i64,
    /// Seconds; 0: no default. Applied to batch and ops jobs only.
    pub total_timeout: i64,
    /// Seconds; 0: no default (Bacalhau has none).
    pub queue_timeout: i64,
}

impl Default for JobDefaults {
    fn default() -> Self {
        Self {
            cpu: DEFAULT_CPU.to_string(),
            memory: DEFAULT_MEMORY.to_string(),
            disk: String::new(),
            gpu: String::new(),
            publisher: None,
            execution_timeout: 0,
            total_timeout: 0,
            queue_timeout: 0,
        }
    }
}

/// Tidies a job in place: trims strings, lowercases the type, engine and publisher types and
/// constraint operators, sets namespace `default` and task name `main` when empty, and sets Count
/// to 0 for ops and daemon jobs (a Count above 1 is left for [`validate`] to refuse).
pub fn normalize(job: &mut Job) {
    trim_in_place(&mut job.name);
    trim_in_place(&mut job.namespace);
    if job.namespace.is_empty() {
        job.namespace = DEFAULT_NAMESPACE.to_string();
    }
    job.job_type = job.job_type.trim().to_ascii_lowercase();
    if job.is_fan_out() && (job.count == 0 || job.count == 1) {
        job.count = 0;
    }
    for constraint in &mut job.constraints {
        trim_in_place(&mut constraint.key);
        let operator = constraint.operator.trim();
        constraint.operator =
            canonical_operator(operator).map_or_else(|| operator.to_string(), str::to_string);
        for value in &mut constraint.values {
            trim_in_place(value);
        }
    }
    for task in &mut job.tasks {
        normalize_task(task);
    }
}

fn normalize_task(task: &mut Task) {
    trim_in_place(&mut task.name);
    if task.name.is_empty() {
        task.name = DEFAULT_TASK_NAME.to_string();
    }
    task.engine.config_type = task.engine.config_type.trim().to_ascii_lowercase();
    task.publisher.config_type = task.publisher.config_type.trim().to_ascii_lowercase();
    for input in &mut task.input_sources {
        trim_in_place(&mut input.source.config_type);
        trim_in_place(&mut input.alias);
        trim_in_place(&mut input.target);
    }
    for result in &mut task.result_paths {
        trim_in_place(&mut result.name);
        trim_in_place(&mut result.path);
    }
    let resources = &mut task.resources;
    for quantity in [
        &mut resources.cpu,
        &mut resources.memory,
        &mut resources.disk,
        &mut resources.gpu,
    ] {
        trim_in_place(quantity);
    }
    trim_in_place(&mut task.network.network_type);
}

fn trim_in_place(text: &mut String) {
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        *text = trimmed.to_string();
    }
}

/// Applies the built-in defaults (CPU `500m`, Memory `512Mb`) to every task that leaves them empty.
pub fn apply_defaults(job: &mut Job) {
    apply_job_defaults(job, &JobDefaults::default());
}

/// Applies configured defaults to every task that leaves the field empty or zero.
pub fn apply_job_defaults(job: &mut Job, defaults: &JobDefaults) {
    let finite = job.is_finite();
    for task in &mut job.tasks {
        let resources = &mut task.resources;
        for (field, default) in [
            (&mut resources.cpu, &defaults.cpu),
            (&mut resources.memory, &defaults.memory),
            (&mut resources.disk, &defaults.disk),
            (&mut resources.gpu, &defaults.gpu),
        ] {
            if field.trim().is_empty() && !default.is_empty() {
                field.clone_from(default);
            }
        }
        if task.publisher.is_empty() {
            if let Some(publisher) = &defaults.publisher {
                task.publisher = publisher.clone();
            }
        }
        let timeouts = &mut task.timeouts;
        if finite {
            if timeouts.execution_timeout == 0 {
                timeouts.execution_timeout = defaults.execution_timeout;
            }
            if timeouts.total_timeout == 0 {
                timeouts.total_timeout = defaults.total_timeout;
            }
        }
        if timeouts.queue_timeout == 0 {
            timeouts.queue_timeout = defaults.queue_timeout;
        }
    }
}

/// Checks a job as a client does before submitting; all problems in one InvalidArgument error.
pub fn validate(job: &Job) -> Result<()> {
    into_result(validation_problems(job))
}

/// Checks a job as the server does on submit: [`validate`] plus "publisher must be set if result
/// paths are set" and ExecutionTimeout + QueueTimeout <= TotalTimeout when TotalTimeout > 0.
pub fn validate_for_submit(job: &Job) -> Result<()> {
    let mut problems = validation_problems(job);
    for (i, task) in job.tasks.iter().enumerate() {
        let path = format!("Tasks[{i}]");
        if !task.result_paths.is_empty() && task.publisher.is_empty() {
            problems.push(format!(
                "{path}.Publisher: publisher must be set if result paths are set"
            ));
        }
        let t = &task.timeouts;
        if t.total_timeout > 0 && t.execution_timeout + t.queue_timeout > t.total_timeout {
            problems.push(format!(
                "{path}.Timeouts: ExecutionTimeout ({}) + QueueTimeout ({}) must not exceed TotalTimeout ({})",
                t.execution_timeout, t.queue_timeout, t.total_timeout
            ));
        }
    }
    into_result(problems)
}

fn into_result(problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(problems.join("; ")))
    }
}

/// Every problem [`validate`] finds, each starting with its field path (`Tasks[0].Env.foo: ...`).
pub fn validation_problems(job: &Job) -> Vec<String> {
    let mut problems = Vec::new();
    let types = [
        JOB_TYPE_BATCH,
        JOB_TYPE_OPS,
        JOB_TYPE_DAEMON,
        JOB_TYPE_SERVICE,
    ];
    if job.job_type.is_empty() {
        problems.push("Type: missing job type (batch, ops, daemon or service)".to_string());
    } else if !types.contains(&job.job_type.as_str()) {
        problems.push(format!(
            "Type: invalid job type '{}' (batch, ops, daemon or service)",
            job.job_type
        ));
    }
    if job.count < 0 {
        problems.push(format!("Count: must not be negative, got {}", job.count));
    } else if job.count > MAX_JOB_COUNT {
        problems.push(format!(
            "Count: at most {MAX_JOB_COUNT} partitions per job, got {}",
            job.count
        ));
    } else if job.is_fan_out() && job.count > 1 {
        problems.push(format!(
            "Count: {} jobs run on every matching node and take no count, got {}",
            job.job_type, job.count
        ));
    }
    for (i, constraint) in job.constraints.iter().enumerate() {
        if let Err(problem) = validate_constraint(constraint) {
            problems.push(format!("Constraints[{i}].{problem}"));
        }
    }
    match job.tasks.len() {
        0 => problems.push("Tasks: a job needs one task".to_string()),
        1 => {}
        n => problems.push(format!(
            "Tasks: only one task per job is supported, got {n}"
        )),
    }
    for (i, task) in job.tasks.iter().enumerate() {
        task_problems(task, &format!("Tasks[{i}]"), &mut problems);
    }
    problems
}

fn task_problems(task: &Task, path: &str, problems: &mut Vec<String>) {
    if task.name.trim().is_empty() {
        problems.push(format!("{path}.Name: missing task name"));
    }
    if task.engine.config_type.trim().is_empty() {
        problems.push(format!("{path}.Engine.Type: missing engine type"));
    }
    for name in task.env.keys() {
        if let Some(reason) = env_name_problem(name) {
            problems.push(format!("{path}.Env.{name}: {reason}"));
        }
    }
    engine_env_problems(&task.engine, &format!("{path}.Engine.Params"), problems);

    let timeouts = [
        ("ExecutionTimeout", task.timeouts.execution_timeout),
        ("QueueTimeout", task.timeouts.queue_timeout),
        ("TotalTimeout", task.timeouts.total_timeout),
    ];
    for (name, seconds) in timeouts {
        if seconds < 0 {
            problems.push(format!(
                "{path}.Timeouts.{name}: must not be negative, got {seconds}"
            ));
        }
    }

    let mut targets = BTreeSet::new();
    let mut aliases = BTreeSet::new();
    for (i, input) in task.input_sources.iter().enumerate() {
        let input_path = format!("{path}.InputSources[{i}]");
        if input.source.config_type.trim().is_empty() {
            problems.push(format!("{input_path}.Source.Type: missing source type"));
        }
        if input.target.trim().is_empty() {
            problems.push(format!("{input_path}.Target: missing target path"));
        } else if !targets.insert(input.target.as_str()) {
            problems.push(format!(
                "{input_path}.Target: duplicate input target '{}'",
                input.target
            ));
        }
        if !input.alias.is_empty() && !aliases.insert(input.alias.as_str()) {
            problems.push(format!(
                "{input_path}.Alias: duplicate input alias '{}'",
                input.alias
            ));
        }
    }

    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for (i, result) in task.result_paths.iter().enumerate() {
        let result_path = format!("{path}.ResultPaths[{i}]");
        if result.name.trim().is_empty() {
            problems.push(format!("{result_path}.Name: missing result name"));
        } else if !names.insert(result.name.as_str()) {
            problems.push(format!(
                "{result_path}.Name: duplicate result path name '{}'",
                result.name
            ));
        }
        if result.path.trim().is_empty() {
            problems.push(format!("{result_path}.Path: missing result path"));
        } else if !paths.insert(result.path.as_str()) {
            problems.push(format!(
                "{result_path}.Path: duplicate result path '{}'",
                result.path
            ));
        }
    }

    for problem in task.resources.problems() {
        problems.push(format!("{path}.Resources.{problem}"));
    }

    let network = task.network.network_type.trim();
    let known_networks = [
        NETWORK_DEFAULT,
        NETWORK_NONE,
        NETWORK_HOST,
        NETWORK_FULL,
        NETWORK_HTTP,
        NETWORK_BRIDGE,
    ];
    if !network.is_empty()
        && !known_networks
            .iter()
            .any(|n| n.eq_ignore_ascii_case(network))
    {
        problems.push(format!(
            "{path}.Network.Type: invalid network type '{network}' (None, Host, Full, HTTP or Bridge)"
        ));
    }
}

/// Checks the engine's `EnvironmentVariables` parameter, given as a map or a list of `K=V` strings.
fn engine_env_problems(engine: &SpecConfig, path: &str, problems: &mut Vec<String>) {
    let Some(variables) = engine.param("EnvironmentVariables") else {
        return;
    };
    let path = format!("{path}.EnvironmentVariables");
    match variables {
        Value::Object(map) => {
            for name in map.keys() {
                if let Some(reason) = env_name_problem(name) {
                    problems.push(format!("{path}.{name}: {reason}"));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(entry) => {
                        let name = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
                        if let Some(reason) = env_name_problem(name.trim()) {
                            problems.push(format!("{path}[{i}]: {reason}"));
                        }
                    }
                    _ => problems.push(format!("{path}[{i}]: expected a 'NAME=value' string")),
                }
            }
        }
        Value::Null => {}
        _ => problems.push(format!(
            "{path}: expected a mapping or a list of 'NAME=value' strings"
        )),
    }
}

/// Why `name` is not an acceptable environment variable name, if it is not.
pub fn env_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !well_formed {
        return Some(format!(
            "invalid environment variable name '{name}': names must match [A-Z][A-Z0-9_]*"
        ));
    }
    if name.starts_with(RESERVED_ENV_PREFIX) {
        return Some(format!(
            "invalid environment variable name '{name}': the {RESERVED_ENV_PREFIX} prefix is reserved"
        ));
    }
    None
}

/// Drops what a user may not set on submit, as Bacalhau's server does, returning one warning per
/// change: State, Version, Revision and times, the ID of batch and ops jobs, tasks beyond the first, and
/// `bacalhau.org/*` Meta keys.
pub fn sanitize_for_submit(job: &mut Job) -> Vec<String> {
    let mut warnings = Vec::new();
    let job_type = job.job_type.trim();
    let id_is_server_set = job_type.eq_ignore_ascii_case(JOB_TYPE_BATCH)
        || job_type.eq_ignore_ascii_case(JOB_TYPE_OPS);
    if id_is_server_set && !job.id.is_empty() {
        warnings.push(format!(
            "job ID '{}' is set by the server and was ignored",
            job.id
        ));
        job.id.clear();
    }
    if job.state != Default::default() {
        warnings.push("job State is set by the server and was ignored".to_string());
        job.state = Default::default();
    }
    let server_numbers = [
        ("Version", &mut job.version),
        ("Revision", &mut job.revision),
    ];
    for (name, value) in server_numbers {
        if *value != 0 {
            warnings.push(format!("job {name} is set by the server and was ignored"));
            *value = 0;
        }
    }
    for (name, value) in [
        ("CreateTime", &mut job.create_time),
        ("ModifyTime", &mut job.modify_time),
    ] {
        if *value != 0 {
            warnings.push(format!("job {name} is set by the server and was ignored"));
            *value = 0;
        }
    }
    if job.tasks.len() > 1 {
        warnings.push(format!(
            "only one task per job is supported; {} extra task(s) were ignored",
            job.tasks.len() - 1
        ));
        job.tasks.truncate(1);
    }
    let reserved: Vec<String> = job
        .meta
        .keys()
        .filter(|k| k.starts_with(RESERVED_META_PREFIX))
        .cloned()
        .collect();
    for key in reserved {
        warnings.push(format!("Meta key '{key}' is reserved and was ignored"));
        job.meta.remove(&key);
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{InputSource, ResultPath};
    use crate::spec::parse_job;

    fn prepared(yaml: &str) -> Job {
        let mut job = parse_job(yaml).unwrap();
        normalize(&mut job);
        job
    }

    #[test]
    fn normalize_fills_and_tidies() {
        let mut job = prepared(
            "type: ' Batch '\nnamespace: ''\nconstraints:\n  - {key: ' a ', operator: In, values: [x]}\ntasks:\n  - engine: {type: Docker}\n",
        );
        assert_eq!(job.job_type, "batch");
        assert_eq!(job.namespace, "default");
        assert_eq!(job.tasks[0].name, "main");
        assert_eq!(job.tasks[0].engine.config_type, "docker");
        assert_eq!(job.constraints[0].key, "a");
        assert_eq!(job.constraints[0].operator, "in");
        assert!(job.meta.is_empty() && job.labels.is_empty());
        let wire = serde_json::to_value(&job).unwrap();
        assert_eq!(wire["Meta"], serde_json::json!({}));
        assert_eq!(wire["Labels"], serde_json::json!({}));
        assert_eq!(wire["Constraints"].as_array().map(Vec::len), Some(1));

        apply_defaults(&mut job);
        assert_eq!(job.tasks[0].resources.cpu, "500m");
        assert_eq!(job.tasks[0].resources.memory, "512Mb");
        assert_eq!(job.tasks[0].resources.disk, "");
        assert_eq!(job.tasks[0].timeouts.queue_timeout, 0);
        validate_for_submit(&job).unwrap();

        let mut ops = prepared("type: ops\ncount: 1\ntasks: [{engine: {type: noop}}]");
        normalize(&mut ops);
        assert_eq!(ops.count, 0);
    }

    #[test]
    fn configured_defaults() {
        let mut job = prepared("type: batch\ntasks: [{engine: {type: noop}, resources: {cpu: 2}}]");
        let defaults = JobDefaults {
            publisher: Some(SpecConfig::new("local")),
            total_timeout: 600,
            ..JobDefaults::default()
        };
        apply_job_defaults(&mut job, &defaults);
        let task = &job.tasks[0];
        assert_eq!(task.resources.cpu, "2");
        assert_eq!(task.publisher.config_type, "local");
        assert_eq!(task.timeouts.total_timeout, 600);

        let mut service = prepared("type: service\ntasks: [{engine: {type: noop}}]");
        apply_job_defaults(&mut service, &defaults);
        assert_eq!(service.tasks[0].timeouts.total_timeout, 0);
    }

    #[test]
    fn collects_every_problem_with_its_path() {
        let mut job = prepared(
            "type: weekly\ncount: -1\nconstraints: [{key: a, operator: like}]\ntasks:\n  - name: t\n    env: {lower: x, BACALHAU_X: y, GOOD_1: z}\n    engine:\n      type: docker\n      params:\n        EnvironmentVariables: ['OK=1', 'bad=2', 'BACALHAU_Y=3']\n    timeouts: {executiontimeout: -5}\n    resources: {cpu: lots, gpu: '1.5'}\n    network: {type: wormhole}\n",
        );
        job.tasks[0].input_sources = vec![
            InputSource {
                source: SpecConfig::new("url"),
                alias: "in".into(),
                target: "/in".into(),
            },
            InputSource {
                source: SpecConfig::new(""),
                alias: "in".into(),
                target: "/in".into(),
            },
        ];
        job.tasks[0].result_paths = vec![
            ResultPath {
                name: "out".into(),
                path: "/out".into(),
            },
            ResultPath {
                name: "out".into(),
                path: "/out".into(),
            },
        ];
        let problems = validation_problems(&job);
        let expected = [
            "Type: invalid job type 'weekly'",
            "Count: must not be negative",
            "Constraints[0].Operator: unknown operator 'like'",
            "Tasks[0].Env.lower: invalid environment variable name",
            "Tasks[0].Env.BACALHAU_X: invalid environment variable name 'BACALHAU_X': the BACALHAU_ prefix is reserved",
            "Tasks[0].Engine.Params.EnvironmentVariables[1]: invalid environment variable name 'bad'",
            "Tasks[0].Engine.Params.EnvironmentVariables[2]: invalid environment variable name 'BACALHAU_Y'",
            "Tasks[0].Timeouts.ExecutionTimeout: must not be negative",
            "Tasks[0].InputSources[1].Source.Type: missing source type",
            "Tasks[0].InputSources[1].Target: duplicate input target '/in'",
            "Tasks[0].InputSources[1].Alias: duplicate input alias 'in'",
            "Tasks[0].ResultPaths[1].Name: duplicate result path name 'out'",
            "Tasks[0].ResultPaths[1].Path: duplicate result path '/out'",
            "Tasks[0].Resources.CPU: invalid CPU quantity 'lots'",
            "Tasks[0].Resources.GPU: invalid GPU count '1.5'",
            "Tasks[0].Network.Type: invalid network type 'wormhole'",
        ];
        for fragment in expected {
            assert!(
                problems.iter().any(|p| p.starts_with(fragment)),
                "missing {fragment:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        let err = validate(&job).unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::InvalidArgument);
        assert!(err.message.contains("; "));
    }

    #[test]
    fn structural_problems() {
        let job = prepared("type: batch");
        assert_eq!(
            validation_problems(&job),
            vec!["Tasks: a job needs one task"]
        );
        let job = prepared("name: x");
        assert!(validation_problems(&job)[0].starts_with("Type: missing job type"));
        let job = prepared("type: batch\ntasks: [{name: a}, {name: b, engine: {type: x}}]");
        let problems = validation_problems(&job);
        assert!(problems.contains(&"Tasks: only one task per job is supported, got 2".into()));
        assert!(problems.contains(&"Tasks[0].Engine.Type: missing engine type".into()));
        let mut job = prepared("type: batch\ntasks: [{engine: {type: x}}]");
        job.tasks[0].name.clear();
        assert_eq!(
            validation_problems(&job),
            vec!["Tasks[0].Name: missing task name"]
        );
        let job = prepared("type: daemon\ncount: 3\ntasks: [{engine: {type: x}}]");
        assert!(validation_problems(&job)[0].starts_with("Count: daemon jobs run on every"));
        let job = prepared("type: batch\ncount: 0\ntasks: [{engine: {type: x}}]");
        assert!(validate(&job).is_ok(), "count 0 means stop all");
    }

    #[test]
    fn engine_env_as_map() {
        let job = prepared(
            "type: batch\ntasks: [{engine: {type: docker, params: {environmentvariables: {ok: 1, FINE: 2}}}}]",
        );
        assert_eq!(
            validation_problems(&job),
            vec!["Tasks[0].Engine.Params.EnvironmentVariables.ok: invalid environment variable name 'ok': names must match [A-Z][A-Z0-9_]*"]
        );
    }

    #[test]
    fn server_side_rules() {
        let job = prepared(
            "type: batch\ntasks: [{engine: {type: x}, resultpaths: [{name: o, path: /o}], timeouts: {executiontimeout: 50, queuetimeout: 60, totaltimeout: 100}}]",
        );
        validate(&job).unwrap();
        let err = validate_for_submit(&job).unwrap_err();
        assert!(err
            .message
            .contains("Tasks[0].Publisher: publisher must be set if result paths are set"));
        assert!(err.message.contains(
            "Tasks[0].Timeouts: ExecutionTimeout (50) + QueueTimeout (60) must not exceed TotalTimeout (100)"
        ));
    }

    #[test]
    fn sanitize_warns_and_drops() {
        let mut job = crate::spec::job_from_value(serde_json::json!({
            "ID": "j-1", "Type": "batch", "Version": 3, "CreateTime": 5,
            "State": {"StateType": "Running"},
            "Meta": {"bacalhau.org/requester.id": "x", "mine": "y"},
            "Tasks": [{"Name": "a"}, {"Name": "b"}]
        }))
        .unwrap();
        let warnings = sanitize_for_submit(&mut job);
        assert_eq!(warnings.len(), 6, "{warnings:#?}");
        assert!(job.id.is_empty() && job.version == 0 && job.create_time == 0);
        assert_eq!(job.tasks.len(), 1);
        assert_eq!(job.meta.len(), 1);
        assert!(sanitize_for_submit(&mut job).is_empty());

        let mut service = crate::spec::job_from_value(serde_json::json!({
            "ID": "j-svc", "Type": "service", "Tasks": [{"Name": "a"}]
        }))
        .unwrap();
        assert!(sanitize_for_submit(&mut service).is_empty());
        assert_eq!(service.id, "j-svc", "service and daemon jobs keep their ID");
    }

    #[test]
    fn env_names() {
        assert!(env_name_problem("A").is_none());
        assert!(env_name_problem("MY_VAR_2").is_none());
        for bad in ["", "a", "2A", "A-B", "A B", "BACALHAU_JOB"] {
            assert!(env_name_problem(bad).is_some(), "{bad}");
        }
    }
}

#[cfg(test)]
mod count_bound_tests {
    use super::*;

    #[test]
    fn an_absurd_count_is_refused_naming_the_field() {
        let mut job = crate::spec::parse_job(
            "Type: batch\nCount: 99999999999\nTasks:\n  - Name: t\n    Engine:\n      Type: wasm\n",
        )
        .expect("parses");
        normalize(&mut job);
        let err = validate(&job).expect_err("refused");
        assert!(
            err.message.contains("Count: at most 10000"),
            "{}",
            err.message
        );
    }
}
