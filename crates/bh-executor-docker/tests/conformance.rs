//! Runs the executor conformance suite against the docker executor on the local Docker Engine.

mod common;

use std::sync::Arc;

use bh_compute::conformance::{run_conformance_suite, ConformanceTarget, Scenario};
use bh_compute::Executor;
use bh_executor_docker::DockerExecutor;
use bh_models::SpecConfig;
use serde_json::json;

struct DockerTarget {
    executor: Arc<DockerExecutor>,
}

/// Single-quotes `text` for `sh`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl ConformanceTarget for DockerTarget {
    fn executor(&self) -> Arc<dyn Executor> {
        self.executor.clone()
    }

    fn engine_spec(&self, scenario: &Scenario) -> Option<SpecConfig> {
        Some(match scenario {
            Scenario::PrintStdout { text } => common::sh(&format!("echo {}", quote(text))),
            Scenario::ExitWithCode { code, stderr } => {
                common::sh(&format!("echo {} >&2; exit {code}", quote(stderr)))
            }
            Scenario::EchoEnv { name, .. } => common::sh(&format!("echo \"${name}\"")),
            Scenario::EchoArgs { args } => SpecConfig::new("docker")
                .with_param("Image", common::TEST_IMAGE)
                .with_param("Entrypoint", json!(["/bin/echo"]))
                .with_param("Parameters", json!(args)),
            Scenario::PrintWorkdir { dir } => common::sh("pwd").with_param("WorkingDirectory", dir.as_str()),
            Scenario::ReadInput {
                target, file_name, ..
            } => common::sh(&format!(
                "cat {t}/{f}; echo; if touch {t}/written-by-workload 2>/dev/null; then echo WRITE-SUCCEEDED; else echo WRITE-FAILED; fi",
                t = quote(target),
                f = quote(file_name)
            )),
            Scenario::WriteOutput {
                target,
                file_name,
                content,
            } => common::sh(&format!(
                "printf %s {} > {}/{}",
                quote(content),
                quote(target),
                quote(file_name)
            )),
            Scenario::RunForever { marker } => {
                common::sh(&format!("echo {}; while true; do sleep 1; done", quote(marker)))
            }
            // tail keeps a newline-free input whole in memory.
            Scenario::ExceedMemory => common::sh("head -c 512m /dev/zero | tail > /dev/null"),
            Scenario::ManyLines { count } => common::sh(&format!(
                "i=1; while [ $i -le {count} ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done"
            )),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_executor_passes_the_conformance_suite() {
    if common::docker_tests_disabled() {
        return;
    }
    let executor = common::executor("conformance").await;
    let target = DockerTarget {
        executor: executor.clone(),
    };
    let report = run_conformance_suite(&target).await;
    println!("{report}");
    report.assert_all_passed();
    assert!(report.skipped().is_empty(), "{report}");
    common::assert_no_leftovers(&executor).await;
}
