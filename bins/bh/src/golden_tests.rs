//! Golden tests for `bh docker run` and `bh wasm run`: each case in `testdata/cli/*_run.yaml` is an
//! argv and either the job spec `--dry-run` prints (as YAML) or the error line the command reports.
//!
//! Set `BH_UPDATE_GOLDEN=1` to rewrite the fixtures from the current behaviour (then review the diff).

use std::path::PathBuf;

use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Cli, Command, DockerCommand, WasmCommand};

#[derive(Debug, Serialize, Deserialize)]
struct Case {
    name: String,
    args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The command line itself is malformed (clap refuses it); only failure is checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    syntax_error: bool,
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cli")
}

/// What the command line produces: the submitted spec, or the error line.
fn outcome(command: &str, args: &[String]) -> Result<Value, Option<String>> {
    let dir = testdata();
    let mut argv = vec!["bh".to_string(), command.to_string(), "run".to_string()];
    argv.extend(
        args.iter()
            .map(|a| a.replace("{testdata}", &dir.to_string_lossy())),
    );
    let cli = Cli::try_parse_from(&argv).map_err(|_| None)?;
    let job = match cli.command {
        Command::Docker(DockerCommand::Run(run)) => run.build_job(),
        Command::Wasm(WasmCommand::Run(run)) => run.build_job(),
        _ => unreachable!("only run commands are tested here"),
    }
    .map_err(|e| {
        Some(
            e.to_string()
                .replace(dir.to_string_lossy().as_ref(), "{testdata}"),
        )
    })?;
    let job = crate::submit::prepare_job(job).map_err(|e| Some(e.to_string()))?;
    Ok(crate::job_flags::submission_value(&job))
}

fn check_fixture(command: &str, file: &str) {
    let path = testdata().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut cases: Vec<Case> = yaml_serde::from_str(&text).unwrap();
    assert!(!cases.is_empty());
    let update = std::env::var("BH_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in &mut cases {
        let got = outcome(command, &case.args);
        if update {
            match &got {
                Ok(job) => {
                    case.job = Some(job.clone());
                    case.error = None;
                    case.syntax_error = false;
                }
                Err(Some(err)) => {
                    case.job = None;
                    case.error = Some(err.clone());
                    case.syntax_error = false;
                }
                Err(None) => {
                    case.job = None;
                    case.error = None;
                    case.syntax_error = true;
                }
            }
            continue;
        }
        let ok = match (&got, &case.job, &case.error, case.syntax_error) {
            (Ok(job), Some(want), None, false) => job == want,
            (Err(Some(err)), None, Some(want), false) => err == want,
            (Err(None), None, None, true) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "case '{}' ({:?}):\n  got: {}\n  want job: {}\n  want error: {:?}",
                case.name,
                case.args,
                match &got {
                    Ok(v) => yaml_serde::to_string(v).unwrap_or_default(),
                    Err(e) => format!("error {e:?}"),
                },
                case.job
                    .as_ref()
                    .map(|v| yaml_serde::to_string(v).unwrap_or_default())
                    .unwrap_or_default(),
                case.error
            ));
        }
    }
    if update {
        std::fs::write(&path, yaml_serde::to_string(&cases).unwrap()).unwrap();
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn docker_run_golden() {
    check_fixture("docker", "docker_run.yaml");
}

#[test]
fn wasm_run_golden() {
    check_fixture("wasm", "wasm_run.yaml");
}

#[test]
fn dry_run_spec_round_trips_through_the_spec_parser() {
    let args: Vec<String> = [
        "-i",
        "ipfs://QmCID:/data",
        "-p",
        "local",
        "-o",
        "out:/outputs",
        "--cpu",
        "1",
        "--network",
        "http",
        "--domain",
        "a.com",
        "ubuntu",
        "--",
        "echo",
        "hi",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let value = outcome("docker", &args).unwrap();
    let yaml = yaml_serde::to_string(&value).unwrap();
    let mut parsed = bh_models::parse_job(&yaml).unwrap();
    bh_models::normalize(&mut parsed);
    assert_eq!(crate::job_flags::submission_value(&parsed), value);
}
