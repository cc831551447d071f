//! Flags shared by `bh docker run` and `bh wasm run` (job, task and run-time settings, as in
//! Bacalhau's `cliflags`), their parsing (`-i`, `-p`, `-o`, `-l`, resources...) and the job they build.

use std::collections::BTreeMap;

use bh_models::job::{JOB_TYPE_BATCH, JOB_TYPE_OPS};
use bh_models::{InputSource, Job, NetworkConfig, ResourcesConfig, ResultPath, SpecConfig, Task};
use clap::{ArgAction, Args, ValueEnum};
use serde_json::Value;

/// A flag value that makes no sense; the message names the flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError(pub String);

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlagError {}

/// Result of flag parsing.
pub type FlagResult<T> = Result<T, FlagError>;

fn flag_error(flag: &str, value: &str, why: impl std::fmt::Display) -> FlagError {
    FlagError(format!("invalid value '{value}' for {flag}: {why}"))
}

/// `--target`: where the job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Target {
    /// One node per partition (a batch job).
    #[default]
    Any,
    /// Every matching node (an ops job).
    All,
}

/// Job-level settings.
#[derive(Debug, Clone, Default, Args)]
pub struct JobFlags {
    /// The name to refer to this job by.
    #[arg(long)]
    pub name: Option<String>,
    /// The namespace to associate with this job.
    #[arg(long)]
    pub namespace: Option<String>,
    /// The priority of the job.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// The number of instances of this job to run.
    #[arg(long, visible_alias = "concurrency")]
    pub count: Option<i64>,
    /// Run on any one node per instance (batch) or on all matching nodes (ops).
    #[arg(long, value_enum, default_value_t = Target::Any)]
    pub target: Target,
    /// Labels for the job, as key=value or key (repeatable, comma-separated).
    #[arg(
        short = 'l',
        long = "labels",
        visible_alias = "label",
        value_delimiter = ','
    )]
    pub labels: Vec<String>,
    /// Selector (label query) for the nodes this job may run on, e.g. 'region=eu,gpu>1'.
    #[arg(short = 's', long = "constraints", visible_alias = "selector")]
    pub constraints: Option<String>,
}

/// Task-level settings.
#[derive(Debug, Clone, Default, Args)]
pub struct TaskFlags {
    /// The name to refer to this task by.
    #[arg(long = "task-name", default_value = "main")]
    pub task_name: String,
    /// Mount URIs as inputs: URI[:DST] or src=URI,dst=PATH[,opt=key=value] (repeatable).
    /// Schemes: ipfs://, http(s)://, s3://, file://. The default destination is /inputs.
    #[arg(short = 'i', long = "input")]
    pub inputs: Vec<String>,
    /// Result paths as name:path (repeatable, comma-separated).
    #[arg(short = 'o', long = "output", value_delimiter = ',')]
    pub outputs: Vec<String>,
    /// Where to publish results: ipfs, local, s3managed, or s3://bucket/key[,opt=region=...].
    #[arg(short = 'p', long = "publisher")]
    pub publisher: Option<String>,
    /// Job CPU cores (e.g. 500m, 2, 8).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Job memory requirement (e.g. 500Mb, 2Gb, 8Gb).
    #[arg(long)]
    pub memory: Option<String>,
    /// Job disk requirement (e.g. 500Gb, 2Tb).
    #[arg(long)]
    pub disk: Option<String>,
    /// Job GPU requirement (e.g. 1, 2).
    #[arg(long)]
    pub gpu: Option<String>,
    /// Networking the job needs: none, host, full, http or bridge.
    #[arg(long)]
    pub network: Option<String>,
    /// A domain the job needs to reach with --network http (repeatable).
    #[arg(long = "domain")]
    pub domains: Vec<String>,
    /// Total job timeout in seconds (0: none).
    #[arg(long)]
    pub timeout: Option<i64>,
    /// How long the job may wait for a node, in seconds (0: fail at once).
    #[arg(long = "queue-timeout")]
    pub queue_timeout: Option<i64>,
}

/// How the command behaves after building the job.
#[derive(Debug, Clone, Args)]
pub struct RunFlags {
    /// Print only the job ID.
    #[arg(long = "id-only")]
    pub id_only: bool,
    /// Wait for the job to finish (use --wait=false to return at once).
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = ArgAction::Set)]
    pub wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long = "wait-timeout-secs", default_value_t = 600)]
    pub wait_timeout_secs: u64,
    /// Print the job spec that would be submitted, and submit nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Do not print the submission's warnings.
    #[arg(long = "hide-warnings")]
    pub hide_warnings: bool,
    /// Print the job's output (accepted as upstream's flag; bh prints the output once the job ends).
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Accepted as upstream's flag; `bh job describe` shows where each execution ran.
    #[arg(long = "node-details")]
    pub node_details: bool,
}

impl Default for RunFlags {
    fn default() -> Self {
        Self {
            id_only: false,
            wait: true,
            wait_timeout_secs: 600,
            dry_run: false,
            hide_warnings: false,
            follow: false,
            node_details: false,
        }
    }
}

/// Builds a single-task job around `engine` from the shared flags.
pub fn build_job(engine: SpecConfig, job: &JobFlags, task: &TaskFlags) -> FlagResult<Job> {
    let (job_type, count) = match job.target {
        Target::Any => (JOB_TYPE_BATCH, job.count.unwrap_or(1)),
        Target::All => match job.count {
            Some(n) if n > 1 => {
                return Err(FlagError(format!(
                    "invalid value '{n}' for --count: a job with --target all runs once on every matching node"
                )))
            }
            _ => (JOB_TYPE_OPS, 0),
        },
    };
    if count < 0 {
        return Err(flag_error(
            "--count",
            &count.to_string(),
            "must not be negative",
        ));
    }
    let mut constraints = match &job.constraints {
        Some(text) => bh_models::selector::parse_selector(text)
            .map_err(|e| flag_error("--constraints", text, e.message))?,
        None => Vec::new(),
    };
    // Sorted by key, as Kubernetes' selector parser (and so Bacalhau) returns them.
    constraints.sort_by(|a, b| a.key.cmp(&b.key));
    for constraint in &mut constraints {
        constraint.values.sort();
    }

    let task = Task {
        name: non_empty("--task-name", &task.task_name)?,
        engine,
        publisher: match &task.publisher {
            Some(p) => parse_publisher(p)?,
            None => SpecConfig::default(),
        },
        input_sources: task
            .inputs
            .iter()
            .map(|i| parse_input(i, "/inputs"))
            .collect::<FlagResult<_>>()?,
        result_paths: task
            .outputs
            .iter()
            .map(|o| parse_result_path(o))
            .collect::<FlagResult<_>>()?,
        resources: parse_resources(task)?,
        network: NetworkConfig {
            network_type: match &task.network {
                Some(n) => parse_network(n)?,
                None => bh_models::job::NETWORK_NONE.to_string(),
            },
            ports: Vec::new(),
            domains: task.domains.clone(),
        },
        timeouts: bh_models::TimeoutConfig {
            execution_timeout: 0,
            queue_timeout: seconds("--queue-timeout", task.queue_timeout)?,
            total_timeout: seconds("--timeout", task.timeout)?,
        },
        ..Task::default()
    };
    Ok(Job {
        name: job.name.clone().unwrap_or_default(),
        namespace: job
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| bh_models::job::DEFAULT_NAMESPACE.to_string()),
        job_type: job_type.to_string(),
        priority: job.priority,
        count,
        constraints,
        labels: parse_labels(&job.labels)?,
        tasks: vec![task],
        ..Job::default()
    })
}

/// The JSON a client submits for `job`: the user-settable fields only (no ID, state, versions or
/// times), so that it can also be saved and fed back to `bh job run`.
pub fn submission_value(job: &Job) -> Value {
    let mut value = serde_json::to_value(job).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for key in [
            "ID",
            "State",
            "Version",
            "Revision",
            "CreateTime",
            "ModifyTime",
        ] {
            map.remove(key);
        }
        for key in ["Constraints", "Meta", "Labels"] {
            let empty = match map.get(key) {
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                _ => false,
            };
            if empty {
                map.remove(key);
            }
        }
        if map.get("Name").and_then(Value::as_str) == Some("") {
            map.remove("Name");
        }
        if let Some(Value::Array(tasks)) = map.get_mut("Tasks") {
            for task in tasks.iter_mut().filter_map(Value::as_object_mut) {
                // Empty sections are noise in a spec a user reads and edits.
                task.retain(|key, v| match key.as_str() {
                    "Publisher" => {
                        v.get("Type").and_then(Value::as_str) != Some("")
                            || v.get("Params").is_some()
                    }
                    "Resources" | "Timeouts" | "Network" => {
                        v.as_object().is_none_or(|o| !o.is_empty())
                    }
                    _ => true,
                });
            }
        }
    }
    value
}

fn non_empty(flag: &str, value: &str) -> FlagResult<String> {
    if value.trim().is_empty() {
        Err(FlagError(format!(
            "invalid value for {flag}: must not be empty"
        )))
    } else {
        Ok(value.to_string())
    }
}

fn seconds(flag: &str, value: Option<i64>) -> FlagResult<i64> {
    match value {
        Some(v) if v < 0 => Err(flag_error(flag, &v.to_string(), "must not be negative")),
        Some(v) => Ok(v),
        None => Ok(0),
    }
}

fn parse_resources(task: &TaskFlags) -> FlagResult<ResourcesConfig> {
    use bh_models::quantity::{parse_bytes, parse_cpu, parse_gpu};
    fn checked<T>(
        flag: &str,
        value: &Option<String>,
        parse: impl Fn(&str) -> bh_models::Result<T>,
    ) -> FlagResult<String> {
        match value {
            None => Ok(String::new()),
            Some(v) => parse(v)
                .map(|_| v.trim().to_string())
                .map_err(|e| flag_error(flag, v, e.message)),
        }
    }
    Ok(ResourcesConfig {
        cpu: checked("--cpu", &task.cpu, parse_cpu)?,
        memory: checked("--memory", &task.memory, parse_bytes)?,
        disk: checked("--disk", &task.disk, parse_bytes)?,
        gpu: checked("--gpu", &task.gpu, parse_gpu)?,
    })
}

/// Parses `--network`: none, host, full, http or bridge (any case) to the wire name.
pub fn parse_network(value: &str) -> FlagResult<String> {
    use bh_models::job::{NETWORK_BRIDGE, NETWORK_FULL, NETWORK_HOST, NETWORK_HTTP, NETWORK_NONE};
    let name = match value.trim().to_ascii_lowercase().as_str() {
        "none" | "" => NETWORK_NONE,
        "host" => NETWORK_HOST,
        "full" => NETWORK_FULL,
        "http" => NETWORK_HTTP,
        "bridge" => NETWORK_BRIDGE,
        _ => {
            return Err(flag_error(
                "--network",
                value,
                "expected one of none, host, full, http, bridge",
            ))
        }
    };
    Ok(name.to_string())
}

/// Parses `-l/--labels` entries (`key=value` or `key`) into job labels.
pub fn parse_labels(entries: &[String]) -> FlagResult<BTreeMap<String, String>> {
    let key_ok = |c: char| c.is_ascii_alphanumeric() || "-_.:/|".contains(c);
    let value_ok = |c: char| c.is_ascii_alphanumeric() || "-_.:|".contains(c);
    let mut labels = BTreeMap::new();
    for entry in entries {
        let (key, value) = match entry.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (entry.trim(), ""),
        };
        if key.is_empty() {
            return Err(flag_error("--labels", entry, "the label key is empty"));
        }
        if !key.chars().all(key_ok) {
            return Err(flag_error(
                "--labels",
                entry,
                "label keys may contain only letters, digits and - _ . : / |",
            ));
        }
        if !value.chars().all(value_ok) {
            return Err(flag_error(
                "--labels",
                entry,
                "label values may contain only letters, digits and - _ . : |",
            ));
        }
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

/// Parses `-o name:path` (also `name=path`) into a result path.
pub fn parse_result_path(value: &str) -> FlagResult<ResultPath> {
    let split = value.find([':', '=']);
    let (name, path) = match split {
        Some(i) => (value[..i].trim(), value[i + 1..].trim()),
        None => ("", ""),
    };
    if name.is_empty() || path.is_empty() {
        return Err(flag_error(
            "--output",
            value,
            "expected NAME:PATH, e.g. outputs:/outputs",
        ));
    }
    if !path.starts_with('/') {
        return Err(flag_error("--output", value, "the path must be absolute"));
    }
    Ok(ResultPath {
        name: name.to_string(),
        path: path.to_string(),
    })
}

/// Splits a comma-separated flag value, honouring double quotes as Go's CSV reader does.
fn csv_fields(value: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    fields.push(current);
    fields
}

/// Parses one `-i/--input` value into an input source. Forms: `URI`, `URI:DST` (DST absolute),
/// `URI,dst=DST`, `src=URI,dst=DST[,opt=K=V...]`. `default_target` applies when no destination is given.
pub fn parse_input(value: &str, default_target: &str) -> FlagResult<InputSource> {
    let mut source = String::new();
    let mut target = default_target.to_string();
    let mut options: Vec<(String, String)> = Vec::new();
    for (index, field) in csv_fields(value).into_iter().enumerate() {
        let field = field.trim().to_string();
        if index == 0 && (is_uri_start(&field) || !field.contains('=')) {
            let (uri, dst) = split_uri_destination(&field);
            source = uri;
            if let Some(d) = dst {
                target = d;
            }
            continue;
        }
        let Some((key, val)) = field.split_once('=') else {
            return Err(flag_error(
                "--input",
                value,
                format!("'{field}' must be a key=value pair"),
            ));
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "source" | "src" => source = val.trim().to_string(),
            "target" | "dst" | "destination" => target = val.trim().to_string(),
            "opt" | "option" => {
                let (k, v) = val.split_once('=').unwrap_or((val, ""));
                if !k.trim().is_empty() {
                    options.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            other => {
                return Err(flag_error(
                    "--input",
                    value,
                    format!("unexpected key '{other}' (expected src, dst or opt)"),
                ))
            }
        }
    }
    let source = source
        .trim_matches(|c| c == ' ' || c == '\'' || c == '"')
        .to_string();
    if source.is_empty() {
        return Err(flag_error("--input", value, "no source URI"));
    }
    if !target.starts_with('/') {
        return Err(flag_error(
            "--input",
            value,
            format!("the destination '{target}' must be an absolute path"),
        ));
    }
    let spec = storage_spec(&source, &options).map_err(|why| flag_error("--input", value, why))?;
    Ok(InputSource {
        source: spec,
        alias: source,
        target,
    })
}

/// Whether `field` starts with `scheme://` (so an `=` in it belongs to the URI, e.g. a query string).
fn is_uri_start(field: &str) -> bool {
    match field.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        }
        None => false,
    }
}

/// Splits `scheme://rest:/dst` into the URI and the destination. Only a colon followed by `/`
/// starts a destination, so ports (`http://host:8080/x`) stay part of the URI.
fn split_uri_destination(field: &str) -> (String, Option<String>) {
    let (scheme, rest) = match field.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), field),
    };
    match rest.rfind(":/") {
        Some(i) => (
            format!("{scheme}{}", &rest[..i]),
            Some(rest[i + 1..].to_string()),
        ),
        None => (field.to_string(), None),
    }
}

/// The storage spec for a source URI with its options.
fn storage_spec(uri: &str, options: &[(String, String)]) -> Result<SpecConfig, String> {
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        "expected a URI such as ipfs://CID, https://..., s3://bucket/key or file:///path"
            .to_string()
    })?;
    let no_options = |kind: &str| -> Result<(), String> {
        match options.first() {
            Some((k, _)) => Err(format!("unknown option '{k}' for {kind} storage")),
            None => Ok(()),
        }
    };
    match scheme.to_ascii_lowercase().as_str() {
        "ipfs" => {
            no_options("ipfs")?;
            let cid = rest.split('/').next().unwrap_or_default();
            if cid.is_empty() {
                return Err("no CID after ipfs://".to_string());
            }
            Ok(SpecConfig::new("ipfs").with_param("CID", cid))
        }
        "http" | "https" => {
            no_options("url")?;
            if rest.is_empty() {
                return Err("no host in the URL".to_string());
            }
            Ok(SpecConfig::new("urlDownload").with_param("URL", uri))
        }
        "s3" => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("no bucket after s3://".to_string());
            }
            let mut spec = SpecConfig::new("s3")
                .with_param("Bucket", bucket)
                .with_param("Key", key.trim_start_matches('/'));
            for (k, v) in options {
                let param = match k.as_str() {
                    "endpoint" => "Endpoint",
                    "region" => "Region",
                    "versionID" | "version-id" | "version_id" => "VersionID",
                    "checksum-256" | "checksum256" | "checksum_256" => "ChecksumSHA256",
                    "filter" => "Filter",
                    other => return Err(format!("unknown option '{other}' for s3 storage")),
                };
                spec = spec.with_param(param, v.as_str());
            }
            Ok(spec)
        }
        "file" => {
            let mut read_write = false;
            for (k, v) in options {
                match k.as_str() {
                    "rw" | "read-write" | "read_write" | "readwrite" => {
                        read_write = parse_bool(v).ok_or_else(|| {
                            format!("option '{k}' must be true or false, not '{v}'")
                        })?;
                    }
                    other => return Err(format!("unknown option '{other}' for file storage")),
                }
            }
            let path = if rest.starts_with('/') {
                rest.to_string()
            } else {
                format!("/{rest}")
            };
            if path == "/" && rest.is_empty() {
                return Err("no path after file://".to_string());
            }
            Ok(SpecConfig::new("localDirectory")
                .with_param("SourcePath", path)
                .with_param("ReadWrite", read_write))
        }
        other => Err(format!(
            "unknown storage scheme '{other}' (expected ipfs, http, https, s3 or file)"
        )),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

/// Parses `-p/--publisher`: `ipfs`, `local`, `s3managed`, or `s3://bucket/key` with
/// `opt=region=...`, `opt=endpoint=...` (and `opt=bucket=`, `opt=key=` overrides).
pub fn parse_publisher(value: &str) -> FlagResult<SpecConfig> {
    let mut destination = String::new();
    let mut options: BTreeMap<String, String> = BTreeMap::new();
    for (index, field) in csv_fields(value).into_iter().enumerate() {
        match field.split_once('=') {
            Some((key, val)) => match key.trim().to_ascii_lowercase().as_str() {
                "target" | "dst" | "destination" => destination = val.trim().to_string(),
                "opt" | "option" => {
                    let (k, v) = val.split_once('=').unwrap_or((val, ""));
                    if !k.trim().is_empty() {
                        options.insert(k.trim().to_string(), v.trim().to_string());
                    }
                }
                _ => {
                    return Err(flag_error(
                        "--publisher",
                        value,
                        format!("unexpected option '{field}'"),
                    ))
                }
            },
            None if index == 0 => destination = field.trim().to_string(),
            None => {
                return Err(flag_error(
                    "--publisher",
                    value,
                    format!("'{field}' must be a key=value pair"),
                ))
            }
        }
    }
    let destination = destination.trim_matches(|c| c == ' ' || c == '\'' || c == '"');
    let (scheme, rest) = match destination.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => (destination.to_ascii_lowercase(), ""),
    };
    let bad = |why: String| flag_error("--publisher", value, why);
    let only = |kind: &str| -> FlagResult<()> {
        match options.keys().next() {
            Some(k) => Err(bad(format!(
                "unknown option '{k}' for the {kind} publisher"
            ))),
            None => Ok(()),
        }
    };
    match scheme.as_str() {
        "ipfs" => {
            only("ipfs")?;
            Ok(SpecConfig::new("ipfs"))
        }
        "local" => {
            only("local")?;
            Ok(SpecConfig::new("local"))
        }
        "s3managed" => {
            only("s3managed")?;
            Ok(SpecConfig::new("s3managed"))
        }
        "s3" => {
            let (url_bucket, url_key) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket = options
                .get("bucket")
                .cloned()
                .unwrap_or_else(|| url_bucket.to_string());
            let key = options
                .get("key")
                .cloned()
                .unwrap_or_else(|| url_key.trim_start_matches('/').to_string());
            if bucket.is_empty() {
                return Err(bad("no bucket: use s3://BUCKET/KEY".to_string()));
            }
            let mut spec = SpecConfig::new("s3")
                .with_param("Bucket", bucket)
                .with_param("Key", key);
            for (k, v) in &options {
                match k.as_str() {
                    "bucket" | "key" => {}
                    "region" => spec = spec.with_param("Region", v.as_str()),
                    "endpoint" => spec = spec.with_param("Endpoint", v.as_str()),
                    other => {
                        return Err(bad(format!(
                            "unknown option '{other}' for the s3 publisher"
                        )))
                    }
                }
            }
            Ok(spec)
        }
        "" => Err(bad("no publisher type".to_string())),
        other => Err(bad(format!(
            "unknown publisher type '{other}' (expected ipfs, local, s3managed or s3://bucket/key)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_forms() {
        let i = parse_input("ipfs://QmCID", "/inputs").unwrap();
        assert_eq!(i.target, "/inputs");
        assert_eq!(i.alias, "ipfs://QmCID");
        assert_eq!(i.source.param_str("CID"), Some("QmCID"));
        let i = parse_input("ipfs://QmCID:/data", "/inputs").unwrap();
        assert_eq!(i.target, "/data");
        let i = parse_input("https://example.com:8080/a.txt", "/inputs").unwrap();
        assert_eq!(
            i.source.param_str("URL"),
            Some("https://example.com:8080/a.txt")
        );
        assert_eq!(i.target, "/inputs");
        let i = parse_input("https://example.com/q?x=1:/in", "/inputs").unwrap();
        assert_eq!(i.source.param_str("URL"), Some("https://example.com/q?x=1"));
        assert_eq!(i.target, "/in");
        let i = parse_input("src=s3://b/k/x,dst=/d,opt=region=eu-west-1", "/inputs").unwrap();
        assert_eq!(i.source.config_type, "s3");
        assert_eq!(i.source.param_str("Region"), Some("eu-west-1"));
        let i = parse_input("file:///data,opt=rw=true", "/inputs").unwrap();
        assert_eq!(i.source.param("ReadWrite"), Some(&Value::Bool(true)));
    }

    #[test]
    fn input_errors_name_the_flag() {
        for bad in [
            "foo://x",
            "notauri",
            "ipfs://",
            "s3://b/k,opt=bogus=1",
            "ipfs://x,weird",
        ] {
            let err = parse_input(bad, "/inputs").unwrap_err();
            assert!(err.0.contains("--input"), "{bad}: {err}");
        }
    }

    #[test]
    fn publisher_forms() {
        assert_eq!(parse_publisher("ipfs").unwrap(), SpecConfig::new("ipfs"));
        assert_eq!(parse_publisher("local").unwrap(), SpecConfig::new("local"));
        let s3 = parse_publisher("s3://b/k,opt=region=r,opt=endpoint=http://e").unwrap();
        assert_eq!(s3.param_str("Bucket"), Some("b"));
        assert_eq!(s3.param_str("Key"), Some("k"));
        assert_eq!(s3.param_str("Region"), Some("r"));
        assert_eq!(s3.param_str("Endpoint"), Some("http://e"));
        assert!(parse_publisher("abc://123").is_err());
    }

    #[test]
    fn labels_and_outputs() {
        let l = parse_labels(&["a=b".into(), "c".into()]).unwrap();
        assert_eq!(l.get("a").map(String::as_str), Some("b"));
        assert_eq!(l.get("c").map(String::as_str), Some(""));
        assert!(parse_labels(&["=x".into()]).is_err());
        assert!(parse_labels(&["🐟=x".into()]).is_err());
        assert!(parse_labels(&["x=🐟".into()]).is_err());
        let o = parse_result_path("outputs:/outputs").unwrap();
        assert_eq!((o.name.as_str(), o.path.as_str()), ("outputs", "/outputs"));
        assert!(parse_result_path("nopath").is_err());
    }

    #[test]
    fn csv_respects_quotes() {
        assert_eq!(csv_fields("a,\"b,c\",d"), vec!["a", "b,c", "d"]);
    }
}
