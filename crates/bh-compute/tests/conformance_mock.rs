//! Runs the executor conformance suite against the mock executor (canned results per scenario).

use std::sync::Arc;
use std::time::Duration;

use bh_compute::conformance::{run_conformance_suite, ConformanceTarget, Scenario};
use bh_compute::mock::MockExecutor;
use bh_compute::Executor;
use bh_models::SpecConfig;
use serde_json::json;

struct MockTarget {
    executor: Arc<MockExecutor>,
}

impl ConformanceTarget for MockTarget {
    fn executor(&self) -> Arc<dyn Executor> {
        self.executor.clone()
    }

    fn engine_spec(&self, scenario: &Scenario) -> Option<SpecConfig> {
        let spec = SpecConfig::new("mock");
        Some(match scenario {
            Scenario::PrintStdout { text } => spec.with_param("Stdout", format!("{text}\n")),
            Scenario::ExitWithCode { code, stderr } => spec
                .with_param("ExitCode", *code)
                .with_param("Stderr", format!("{stderr}\n")),
            Scenario::EchoEnv { value, .. } => spec.with_param("Stdout", format!("{value}\n")),
            Scenario::EchoArgs { args } => {
                spec.with_param("Stdout", format!("{}\n", args.join(" ")))
            }
            Scenario::PrintWorkdir { dir } => spec.with_param("Stdout", format!("{dir}\n")),
            Scenario::ReadInput { content, .. } => {
                spec.with_param("Stdout", format!("{content}\nWRITE-FAILED\n"))
            }
            Scenario::WriteOutput {
                file_name, content, ..
            } => spec.with_param("Files", json!({ file_name.as_str(): content })),
            Scenario::RunForever { marker } => spec
                .with_param("Stdout", format!("{marker}\n"))
                .with_param("RunForever", true),
            Scenario::ExceedMemory => {
                spec.with_param("ResourceLimit", "memory limit exceeded (33554432 bytes)")
            }
            Scenario::ManyLines { count } => spec
                .with_param(
                    "Stdout",
                    (1..=*count)
                        .map(|i| format!("out-{i}\n"))
                        .collect::<String>(),
                )
                .with_param(
                    "Stderr",
                    (1..=*count)
                        .map(|i| format!("err-{i}\n"))
                        .collect::<String>(),
                ),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(200)
    }
}

#[tokio::test]
async fn mock_executor_passes_the_conformance_suite() {
    let target = MockTarget {
        executor: Arc::new(MockExecutor::new()),
    };
    let report = run_conformance_suite(&target).await;
    report.assert_all_passed();
    assert!(report.skipped().is_empty(), "{report}");
    assert_eq!(target.executor.requests().len(), report.results.len());
}
