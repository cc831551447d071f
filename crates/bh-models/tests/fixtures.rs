//! Loads every job spec under `testdata/jobs`: the valid ones must parse, normalise and validate as the
//! server would; each one under `invalid/` must fail with the fragment in its `# expect:` line.

use std::path::{Path, PathBuf};

use bh_models::{
    apply_defaults, normalize, parse_job, validate_for_submit, Job, JobStateType, Result,
};

fn jobs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/jobs")
}

fn spec_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            )
        })
        .collect();
    files.sort();
    files
}

/// What the server does with a submitted spec.
fn prepare(text: &str) -> Result<Job> {
    let mut job = parse_job(text)?;
    normalize(&mut job);
    apply_defaults(&mut job);
    validate_for_submit(&job)?;
    Ok(job)
}

fn load(name: &str) -> Job {
    let text = std::fs::read_to_string(jobs_dir().join(name)).unwrap();
    prepare(&text).unwrap_or_else(|e| panic!("{name}: {}", e.message))
}

#[test]
fn every_valid_fixture_prepares() {
    let files = spec_files(&jobs_dir());
    assert!(files.len() >= 14, "found only {files:?}");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let result = prepare(&text);
        if name == "empty.yaml" {
            assert_eq!(result.unwrap_err().message, "job spec is empty");
            continue;
        }
        let job = result.unwrap_or_else(|e| panic!("{name}: {}", e.message));
        assert_eq!(job.tasks.len(), 1, "{name}");
        assert!(!job.tasks[0].engine.config_type.is_empty(), "{name}");
        assert_eq!(job.state.state_type, JobStateType::Undefined, "{name}");
        // Everything a parsed job serialises to parses back to the same job.
        let wire = serde_json::to_value(&job).unwrap();
        let back: Job = serde_json::from_value(wire).unwrap();
        assert_eq!(back, job, "{name}");
    }
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_message() {
    let files = spec_files(&jobs_dir().join("invalid"));
    assert!(files.len() >= 10, "found only {files:?}");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = text
            .lines()
            .find_map(|line| line.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name} has no '# expect:' line"));
        let err = prepare(&text).expect_err(&name);
        assert_eq!(err.code, bh_models::ErrorCode::InvalidArgument, "{name}");
        assert!(
            err.message.contains(expected),
            "{name}: error {:?} does not contain {expected:?}",
            err.message
        );
        assert!(!err.message.contains('\n'), "{name}: {:?}", err.message);
    }
}

#[test]
fn yaml_and_json_fixtures_agree() {
    assert_eq!(load("docker-output.yaml"), load("docker-output.json"));
    let mut lower = load("docker-hello.yaml");
    let upper = load("docker.yaml");
    // Params keep their keys as written; everything else is the same job.
    lower.tasks[0].engine.params = upper.tasks[0].engine.params.clone();
    assert_eq!(lower, upper);
    let hello = load("docker-hello.yaml");
    let engine = &hello.tasks[0].engine;
    assert_eq!(engine.param_str("Image"), Some("busybox:latest"));
    assert_eq!(
        engine
            .param("Parameters")
            .and_then(|p| p.as_array())
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn fixture_details() {
    let nameless = load("nameless.yaml");
    assert!(nameless.name.is_empty());
    assert_eq!(nameless.tasks[0].name, "main");
    assert_eq!(nameless.namespace, "default");
    assert_eq!(nameless.tasks[0].resources.cpu, "500m");
    assert_eq!(nameless.tasks[0].resources.memory, "512Mb");

    let custom = load("custom-task-type.yaml");
    assert_eq!(custom.tasks[0].engine.config_type, "flibble");

    let ops = load("ops.yaml");
    assert_eq!((ops.job_type.as_str(), ops.count), ("ops", 0));
    let daemon = load("daemon.yaml");
    assert_eq!((daemon.job_type.as_str(), daemon.count), ("daemon", 0));
    assert_eq!(daemon.namespace, "logging");
    assert_eq!(daemon.constraints[0].values, vec!["eu", "us"]);
    let service = load("service.yaml");
    assert_eq!((service.job_type.as_str(), service.count), ("service", 2));
    assert_eq!(
        service.tasks[0].resources.to_resources().unwrap().memory,
        128 * 1024 * 1024
    );

    let s3 = load("docker-s3.yaml");
    let input = &s3.tasks[0].input_sources[0];
    assert_eq!(input.source.config_type, "s3");
    assert_eq!(input.source.param_str("bucket"), Some("bh-test-bucket"));

    let wasm = load("wasm.yaml");
    let task = &wasm.tasks[0];
    assert_eq!(task.engine.config_type, "wasm");
    assert_eq!(task.engine.param_str("EntryModule"), Some("/app/main.wasm"));
    let inline = &task.input_sources[0];
    assert_eq!(inline.source.config_type, "inline");
    assert_eq!(inline.target, "/app/main.wasm");
    let url = inline.source.param_str("URL").unwrap();
    assert!(
        url.starts_with("data:application/octet-stream;base64,AGFzbQEAAAA"),
        "{url}"
    );

    let full = load("batch-full.yaml");
    assert_eq!(full.name, "Batch Job Example");
    assert_eq!((full.priority, full.count), (100, 2));
    assert_eq!(
        full.labels.get("Some option").map(String::as_str),
        Some("Some text")
    );
    assert_eq!(full.constraints[0].key, "Operating-System");
    let task = &full.tasks[0];
    assert_eq!(task.name, "Important Calculations");
    assert_eq!(task.publisher.config_type, "ipfs");
    assert_eq!(
        task.input_sources[0].source.param_str("CID"),
        Some("QmSYE8dVx6RTdDFFhBu51JjFG1fwwPdUJoXZ4ZNXvfoK2V")
    );
    let resources = task.resources.to_resources().unwrap();
    assert_eq!(resources.cpu, 0.25);
    assert_eq!(resources.memory, 1_000_000_000);
    assert_eq!(resources.disk, 100_000_000);
    assert_eq!(task.network.network_type, "HTTP");
    assert_eq!(task.network.domains, vec!["example.com", "ghcr.io"]);
    assert_eq!(
        (task.timeouts.queue_timeout, task.timeouts.total_timeout),
        (101, 301)
    );
}
