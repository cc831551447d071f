//! Job spec parsing: YAML or JSON text (or a JSON value) to a [`Job`], with keys matched
//! case-insensitively at every level of the schema, as Bacalhau's Go decoder does.
//!
//! Decoding goes through a small static schema: each struct lists its canonical keys and what each
//! child is (struct, list of structs, free map, leaf). Struct keys are rewritten to their canonical
//! spelling; free maps (Meta, Labels, Env, Params) keep their keys. Type errors name the field path.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::{Job, JOB_TYPE_DAEMON, JOB_TYPE_OPS};

/// The largest spec text `parse_job` accepts (10 MiB, as Bacalhau's client and API limit).
pub const MAX_SPEC_BYTES: usize = 10 * 1024 * 1024;

/// What a field holds, which decides how its value is checked and whether its keys are rewritten.
#[derive(Clone, Copy)]
enum Shape {
    /// An object whose keys are fields of a known struct.
    Struct(&'static [Field]),
    /// A list of such objects.
    StructList(&'static [Field]),
    /// A map of free keys to string values (Meta, Labels, Env); scalar values become strings.
    StringMap,
    /// A map of free keys to arbitrary values, kept as written (Params).
    FreeMap,
    /// A string; numbers and booleans are accepted and written as strings.
    Str,
    /// An integer.
    Int,
    /// A non-negative integer.
    UInt,
    /// A list of strings; a single scalar is accepted as a one-element list.
    StringList,
    /// A list of anything.
    AnyList,
    /// Anything; decoded by the target type itself.
    Any,
}

/// One field of a struct schema: its canonical key and what it holds.
struct Field {
    key: &'static str,
    shape: Shape,
}

const fn field(key: &'static str, shape: Shape) -> Field {
    Field { key, shape }
}

const SPEC_CONFIG: &[Field] = &[field("Type", Shape::Str), field("Params", Shape::FreeMap)];

const INPUT_SOURCE: &[Field] = &[
    field("Source", Shape::Struct(SPEC_CONFIG)),
    field("Alias", Shape::Str),
    field("Target", Shape::Str),
];

const RESULT_PATH: &[Field] = &[field("Name", Shape::Str), field("Path", Shape::Str)];

const RESOURCES: &[Field] = &[
    field("CPU", Shape::Str),
    field("Memory", Shape::Str),
    field("Disk", Shape::Str),
    field("GPU", Shape::Str),
];

const NETWORK: &[Field] = &[
    field("Type", Shape::Str),
    field("Ports", Shape::AnyList),
    field("Domains", Shape::StringList),
];

const TIMEOUTS: &[Field] = &[
    field("ExecutionTimeout", Shape::Int),
    field("QueueTimeout", Shape::Int),
    field("TotalTimeout", Shape::Int),
];

const TASK: &[Field] = &[
    field("Name", Shape::Str),
    field("Engine", Shape::Struct(SPEC_CONFIG)),
    field("Publisher", Shape::Struct(SPEC_CONFIG)),
    field("Env", Shape::StringMap),
    field("Meta", Shape::StringMap),
    field("InputSources", Shape::StructList(INPUT_SOURCE)),
    field("ResultPaths", Shape::StructList(RESULT_PATH)),
    field("Resources", Shape::Struct(RESOURCES)),
    field("Network", Shape::Struct(NETWORK)),
    field("Timeouts", Shape::Struct(TIMEOUTS)),
];

const CONSTRAINT: &[Field] = &[
    field("Key", Shape::Str),
    field("Operator", Shape::Str),
    field("Values", Shape::StringList),
];

const JOB_STATE: &[Field] = &[
    field("StateType", Shape::Any),
    field("Message", Shape::Str),
    field("Details", Shape::StringMap),
];

/// The fields a user may write in a job spec.
const JOB_USER_FIELDS: &[Field] = &[
    field("Name", Shape::Str),
    field("Namespace", Shape::Str),
    field("Type", Shape::Str),
    field("Priority", Shape::Int),
    field("Count", Shape::Int),
    field("Constraints", Shape::StructList(CONSTRAINT)),
    field("Meta", Shape::StringMap),
    field("Labels", Shape::StringMap),
    field("Tasks", Shape::StructList(TASK)),
];

/// Every field of a Job, including those the server sets (accepted by [`job_from_value`]).
const JOB_ALL_FIELDS: &[Field] = &[
    field("Name", Shape::Str),
    field("Namespace", Shape::Str),
    field("Type", Shape::Str),
    field("Priority", Shape::Int),
    field("Count", Shape::Int),
    field("Constraints", Shape::StructList(CONSTRAINT)),
    field("Meta", Shape::StringMap),
    field("Labels", Shape::StringMap),
    field("Tasks", Shape::StructList(TASK)),
    field("ID", Shape::Str),
    field("State", Shape::Struct(JOB_STATE)),
    field("Version", Shape::UInt),
    field("Revision", Shape::UInt),
    field("CreateTime", Shape::Int),
    field("ModifyTime", Shape::Int),
];

/// Top-level keys the server sets; a spec file naming one is refused.
const SERVER_SET_KEYS: &[&str] = &[
    "id",
    "state",
    "version",
    "revision",
    "createtime",
    "modifytime",
];

/// Parses a job spec written as YAML or JSON (text starting with `{` is read as JSON).
///
/// Only the user-settable top-level keys are allowed (`name namespace type priority count
/// constraints meta labels tasks`, any case); unknown nested keys are ignored. A missing `Count`
/// means 1 for batch and service jobs and 0 for ops and daemon jobs. The result is not yet
/// normalised or validated: see [`crate::validate`].
pub fn parse_job(input: &str) -> Result<Job> {
    if input.len() > MAX_SPEC_BYTES {
        return Err(Error::invalid(format!(
            "job spec is too large: {} bytes (the limit is {MAX_SPEC_BYTES} bytes)",
            input.len()
        )));
    }
    let value = parse_document(input)?;
    let object = match value {
        Value::Object(object) => object,
        Value::Null => return Err(Error::invalid("job spec is empty")),
        other => {
            return Err(Error::invalid(format!(
                "job spec must be a mapping of fields, found {}",
                describe(&other)
            )))
        }
    };
    let mut problems = Vec::new();
    for key in object.keys() {
        let lower = key.to_ascii_lowercase();
        if SERVER_SET_KEYS.contains(&lower.as_str()) {
            problems.push(format!("field: '{key}' in 'Job' is not allowed"));
        } else if !JOB_USER_FIELDS
            .iter()
            .any(|f| f.key.eq_ignore_ascii_case(key))
        {
            problems.push(format!("unknown field '{key}'"));
        }
    }
    if !problems.is_empty() {
        return Err(Error::invalid(problems.join("; ")));
    }
    decode_job(object, JOB_USER_FIELDS)
}

/// Decodes a job received as a JSON value (the `Job` of a REST submission), with the same
/// case-insensitive keys and Count default as [`parse_job`]. Server-set fields are accepted here
/// (the server sanitises them); unknown keys at any level are ignored.
pub fn job_from_value(value: Value) -> Result<Job> {
    match value {
        Value::Object(object) => decode_job(object, JOB_ALL_FIELDS),
        Value::Null => Err(Error::invalid("Job: missing job")),
        other => Err(Error::invalid(format!(
            "Job: expected an object, found {}",
            describe(&other)
        ))),
    }
}

/// Canonicalises the keys of a top-level job object and decodes it.
fn decode_job(object: Map<String, Value>, fields: &'static [Field]) -> Result<Job> {
    let mut problems = Vec::new();
    let canonical = canonicalise_struct(object, fields, "", &mut problems);
    if !problems.is_empty() {
        return Err(Error::invalid(problems.join("; ")));
    }
    let count_given = canonical.get("Count").is_some_and(|c| !c.is_null());
    let mut job: Job = serde_json::from_value(Value::Object(canonical))
        .map_err(|e| Error::invalid(format!("invalid job: {e}")))?;
    if !count_given {
        let job_type = job.job_type.trim();
        let fan_out = job_type.eq_ignore_ascii_case(JOB_TYPE_OPS)
            || job_type.eq_ignore_ascii_case(JOB_TYPE_DAEMON);
        job.count = if fan_out { 0 } else { 1 };
    }
    Ok(job)
}

/// Reads spec text as JSON when it looks like JSON, else as YAML, into a JSON value.
fn parse_document(input: &str) -> Result<Value> {
    let trimmed = input.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(trimmed)
            .map_err(|e| Error::invalid(format!("invalid JSON: {}", one_line(&e.to_string()))));
    }
    let mut yaml: yaml_serde::Value = yaml_serde::from_str(input)
        .map_err(|e| Error::invalid(format!("invalid YAML: {}", one_line(&e.to_string()))))?;
    yaml.apply_merge()
        .map_err(|e| Error::invalid(format!("invalid YAML: {}", one_line(&e.to_string()))))?;
    yaml_to_json(yaml, "")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Converts a YAML value to JSON; mapping keys that are scalars become strings.
fn yaml_to_json(value: yaml_serde::Value, path: &str) -> Result<Value> {
    use yaml_serde::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "{}: {f} is not a finite number",
                            display_path(path)
                        ))
                    })?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_string(),
                    _ => {
                        return Err(Error::invalid(format!(
                            "{}: mapping keys must be strings",
                            display_path(path)
                        )))
                    }
                };
                let child = join_path(path, &key);
                object.insert(key, yaml_to_json(item, &child)?);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value, path)?,
    })
}

fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "Job"
    } else {
        path
    }
}

/// A short name of a JSON value's type, for error messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Like [`describe`], but shows numbers themselves.
fn describe_number(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => describe(other).to_string(),
    }
}

/// Rewrites an object's keys to the canonical spelling of `fields`, checking each value against its
/// shape; unknown keys are dropped. Later duplicates (differing only in case) win, as in Go.
fn canonicalise_struct(
    object: Map<String, Value>,
    fields: &'static [Field],
    path: &str,
    problems: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in object {
        let Some(known) = fields.iter().find(|f| f.key.eq_ignore_ascii_case(&key)) else {
            continue;
        };
        let child_path = join_path(path, known.key);
        if let Some(value) = canonicalise_value(value, known.shape, &child_path, problems) {
            out.insert(known.key.to_string(), value);
        }
    }
    out
}

/// Checks and canonicalises one value; None drops it (null, or a type error already recorded).
fn canonicalise_value(
    value: Value,
    shape: Shape,
    path: &str,
    problems: &mut Vec<String>,
) -> Option<Value> {
    if value.is_null() {
        return None;
    }
    let mut wrong = |expected: &str, value: &Value| {
        problems.push(format!(
            "{path}: invalid type: expected {expected}, found {}",
            describe(value)
        ));
        None
    };
    match shape {
        Shape::Any => Some(value),
        Shape::Struct(fields) => match value {
            Value::Object(object) => Some(Value::Object(canonicalise_struct(
                object, fields, path, problems,
            ))),
            other => wrong("a mapping", &other),
        },
        Shape::StructList(fields) => match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match item {
                        Value::Object(object) => out.push(Value::Object(canonicalise_struct(
                            object, fields, &item_path, problems,
                        ))),
                        Value::Null => out.push(Value::Object(Map::new())),
                        other => problems.push(format!(
                            "{item_path}: invalid type: expected a mapping, found {}",
                            describe(&other)
                        )),
                    }
                }
                Some(Value::Array(out))
            }
            other => wrong("a list", &other),
        },
        Shape::StringMap => match value {
            Value::Object(object) => {
                let mut out = Map::new();
                for (key, item) in object {
                    match scalar_to_string(item) {
                        Ok(text) => {
                            out.insert(key, Value::String(text));
                        }
                        Err(other) => problems.push(format!(
                            "{path}.{key}: invalid type: expected a string, found {}",
                            describe(&other)
                        )),
                    }
                }
                Some(Value::Object(out))
            }
            other => wrong("a mapping", &other),
        },
        Shape::FreeMap => match value {
            Value::Object(_) => Some(value),
            other => wrong("a mapping", &other),
        },
        Shape::Str => match scalar_to_string(value) {
            Ok(text) => Some(Value::String(text)),
            Err(other) => wrong("a string", &other),
        },
        Shape::UInt => match value.as_u64() {
            Some(n) => Some(Value::from(n)),
            None => {
                problems.push(format!(
                    "{path}: expected a non-negative integer, found {}",
                    describe_number(&value)
                ));
                None
            }
        },
        Shape::Int => match &value {
            Value::Number(n) => {
                let integer = n.as_i64().or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                });
                match integer {
                    Some(i) => Some(Value::from(i)),
                    None => {
                        problems.push(format!("{path}: expected an integer, found {n}"));
                        None
                    }
                }
            }
            other => {
                problems.push(format!(
                    "{path}: expected an integer, found {}",
                    describe(other)
                ));
                None
            }
        },
        Shape::StringList => match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match scalar_to_string(item) {
                        Ok(text) => out.push(Value::String(text)),
                        Err(other) => problems.push(format!(
                            "{path}[{i}]: invalid type: expected a string, found {}",
                            describe(&other)
                        )),
                    }
                }
                Some(Value::Array(out))
            }
            scalar => match scalar_to_string(scalar) {
                Ok(text) => Some(Value::Array(vec![Value::String(text)])),
                Err(other) => wrong("a list of strings", &other),
            },
        },
        Shape::AnyList => match value {
            Value::Array(_) => Some(value),
            other => wrong("a list", &other),
        },
    }
}

/// A scalar as text (null is empty); lists and mappings are handed back as the error.
fn scalar_to_string(value: Value) -> std::result::Result<String, Value> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_at_every_level() {
        let job = parse_job(
            "NAME: x\ntype: batch\ntasks:\n  - name: t\n    engine:\n      TYPE: docker\n      params:\n        image: ubuntu\n    inputsources:\n      - source: {type: s3, params: {Bucket: b}}\n        target: /in\n    resultpaths:\n      - {name: out, path: /out}\n    resources: {cpu: 1, MEMORY: 1Gb}\n    timeouts: {executiontimeout: 10}\n    env: {my_var: 1}\n",
        )
        .unwrap();
        assert_eq!(job.name, "x");
        assert_eq!(job.count, 1);
        let task = &job.tasks[0];
        assert_eq!(task.engine.config_type, "docker");
        assert_eq!(task.engine.param_str("Image"), Some("ubuntu"));
        assert!(
            task.engine.params.contains_key("image"),
            "Params keep their keys"
        );
        assert_eq!(task.input_sources[0].source.config_type, "s3");
        assert_eq!(task.input_sources[0].target, "/in");
        assert_eq!(task.result_paths[0].path, "/out");
        assert_eq!(task.resources.cpu, "1");
        assert_eq!(task.resources.memory, "1Gb");
        assert_eq!(task.timeouts.execution_timeout, 10);
        assert_eq!(task.env.get("my_var").map(String::as_str), Some("1"));
    }

    #[test]
    fn top_level_allow_list() {
        let err = parse_job("ID: j-1\ntype: batch\n").unwrap_err();
        assert_eq!(err.message, "field: 'ID' in 'Job' is not allowed");
        let err = parse_job("createTime: 5\ntype: batch\n").unwrap_err();
        assert_eq!(err.message, "field: 'createTime' in 'Job' is not allowed");
        let err = parse_job("type: batch\nflavour: mint\n").unwrap_err();
        assert_eq!(err.message, "unknown field 'flavour'");
        // Unknown nested keys are ignored.
        let job = parse_job("type: batch\ntasks:\n  - name: a\n    colour: red\n").unwrap();
        assert_eq!(job.tasks[0].name, "a");
    }

    #[test]
    fn count_defaults_by_type() {
        assert_eq!(parse_job("type: batch").unwrap().count, 1);
        assert_eq!(parse_job("type: service").unwrap().count, 1);
        assert_eq!(parse_job("type: ops").unwrap().count, 0);
        assert_eq!(parse_job("type: Daemon").unwrap().count, 0);
        assert_eq!(parse_job("type: batch\ncount: 0").unwrap().count, 0);
        assert_eq!(parse_job("type: batch\ncount: 3").unwrap().count, 3);
    }

    #[test]
    fn type_errors_name_the_field() {
        let err = parse_job("type: batch\ncount: many").unwrap_err();
        assert!(
            err.message.starts_with("Count: expected an integer"),
            "{}",
            err.message
        );
        let err = parse_job("type: batch\ncount: 1.5").unwrap_err();
        assert!(
            err.message.starts_with("Count: expected an integer"),
            "{}",
            err.message
        );
        let err =
            parse_job("type: batch\ntasks:\n  - resources:\n      cpu: [1, 2]\n").unwrap_err();
        assert!(
            err.message
                .starts_with("Tasks[0].Resources.CPU: invalid type"),
            "{}",
            err.message
        );
        let err = parse_job("type: batch\ntasks: {name: x}").unwrap_err();
        assert!(
            err.message.starts_with("Tasks: invalid type"),
            "{}",
            err.message
        );
        let err = parse_job("type: batch\nmeta: {a: [1]}").unwrap_err();
        assert!(
            err.message.starts_with("Meta.a: invalid type"),
            "{}",
            err.message
        );
    }

    #[test]
    fn parse_errors_are_one_line_with_position() {
        let err = parse_job("type: batch\ntasks:\n  - name: [unclosed\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML: "), "{}", err.message);
        assert!(err.message.contains("line"), "{}", err.message);
        assert!(!err.message.contains('\n'));
        let err = parse_job("{\"Type\": \"batch\",}").unwrap_err();
        assert!(err.message.starts_with("invalid JSON: "), "{}", err.message);
        assert!(err.message.contains("line 1 column"), "{}", err.message);
    }

    #[test]
    fn json_and_values() {
        let job = parse_job(r#"{"type":"batch","Tasks":[{"Name":"a","engine":{"type":"noop"}}]}"#)
            .unwrap();
        assert_eq!(job.tasks[0].engine.config_type, "noop");
        let job = job_from_value(serde_json::json!({
            "ID": "j-1", "type": "ops", "State": {"stateType": "Running"}, "Version": 2,
            "Tasks": [{"name": "a"}]
        }))
        .unwrap();
        assert_eq!(job.id, "j-1");
        assert_eq!(job.count, 0);
        assert_eq!(job.version, 2);
        assert_eq!(job.state.state_type, crate::state::JobStateType::Running);
        assert!(job_from_value(serde_json::json!("x")).is_err());
        let err = job_from_value(serde_json::json!({"Type": "batch", "version": -1})).unwrap_err();
        assert_eq!(
            err.message,
            "Version: expected a non-negative integer, found -1"
        );
    }

    #[test]
    fn size_limit_and_empty() {
        let big = format!("type: batch\nname: {}\n", "x".repeat(MAX_SPEC_BYTES));
        assert!(parse_job(&big).unwrap_err().message.contains("too large"));
        assert_eq!(parse_job("").unwrap_err().message, "job spec is empty");
        assert_eq!(
            parse_job("# nothing\n").unwrap_err().message,
            "job spec is empty"
        );
        assert!(parse_job("- a\n- b\n").is_err());
    }
}
