//! Shared set-up for the docker executor's tests: a local busybox image (no registry) and executors.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bh_compute::{ExecutionRequest, Mount};
use bh_executor_docker::{DockerConfig, DockerExecutor};
use bh_models::{NetworkConfig, Resources, SpecConfig};
use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use futures::StreamExt;
use tokio::sync::OnceCell;

/// The image the tests run, built locally from Debian's static busybox.
pub const TEST_IMAGE: &str = "bh-test-busybox:latest";

/// Where Debian's `busybox-static` package puts the binary.
const BUSYBOX: &str = "/bin/busybox";

static IMAGE_READY: OnceCell<()> = OnceCell::const_new();

/// Whether the docker tests were explicitly switched off (machines without a Docker Engine).
pub fn docker_tests_disabled() -> bool {
    std::env::var("BH_SKIP_DOCKER_TESTS").is_ok_and(|v| v == "1")
}

/// Builds `TEST_IMAGE` once per test process: a root with `/bin/busybox`, a symlink per applet, `/tmp`,
/// imported through the Engine API (`POST /images/create?fromSrc=-`), like `docker import`.
pub async fn ensure_test_image() {
    IMAGE_READY
        .get_or_init(|| async {
            let docker = Docker::connect_with_unix_defaults()
                .expect("docker socket")
                .negotiate_version()
                .await
                .expect("Docker Engine answers (set BH_SKIP_DOCKER_TESTS=1 to skip docker tests)");
            assert!(
                Path::new(BUSYBOX).exists(),
                "{BUSYBOX} missing: install Debian's busybox-static"
            );
            let root = tempfile::tempdir().unwrap();
            for dir in ["bin", "tmp", "etc", "work", "outputs"] {
                std::fs::create_dir_all(root.path().join(dir)).unwrap();
            }
            std::fs::copy(BUSYBOX, root.path().join("bin/busybox")).unwrap();
            let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
            for applet in String::from_utf8_lossy(&list.stdout).lines() {
                let applet = applet.trim();
                if applet.is_empty() || applet == "busybox" {
                    continue;
                }
                let link = root.path().join("bin").join(applet);
                if !link.exists() {
                    std::os::unix::fs::symlink("busybox", link).unwrap();
                }
            }
            let tar = Command::new("tar")
                .arg("-C")
                .arg(root.path())
                .args(["-c", "."])
                .output()
                .unwrap();
            assert!(tar.status.success(), "tar failed");
            let options = CreateImageOptions {
                from_src: Some("-".to_string()),
                repo: Some("bh-test-busybox".to_string()),
                tag: Some("latest".to_string()),
                ..Default::default()
            };
            let body = bollard::body_full(tar.stdout.into());
            let mut progress = docker.create_image(Some(options), Some(body), None);
            while let Some(item) = progress.next().await {
                let info = item.expect("importing the test image");
                assert!(info.error_detail.is_none(), "import failed: {info:?}");
            }
        })
        .await;
}

/// An executor with a node id of its own, so that concurrent tests never clean up each other's containers.
pub async fn executor(test_name: &str) -> Arc<DockerExecutor> {
    executor_with(test_name, |_| {}).await
}

/// Like [`executor`], with a config tweak.
pub async fn executor_with(
    test_name: &str,
    tweak: impl FnOnce(&mut DockerConfig),
) -> Arc<DockerExecutor> {
    ensure_test_image().await;
    let mut config = DockerConfig {
        node_id: format!("test-{test_name}-{}", uuid::Uuid::new_v4().simple()),
        pull_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    tweak(&mut config);
    Arc::new(DockerExecutor::connect(config).await.expect("connect"))
}

/// A busybox `sh -c script` spec.
pub fn sh(script: &str) -> SpecConfig {
    SpecConfig::new("docker")
        .with_param("Image", TEST_IMAGE)
        .with_param("Entrypoint", serde_json::json!(["/bin/sh", "-c"]))
        .with_param("Parameters", serde_json::json!([script]))
}

/// A request with an `/outputs` mount in `dir`.
pub fn request(dir: &Path, engine: SpecConfig) -> ExecutionRequest {
    let outputs = dir.join("outputs");
    std::fs::create_dir_all(&outputs).unwrap();
    ExecutionRequest {
        execution_id: format!("e-{}", uuid::Uuid::new_v4().simple()),
        job_id: "j-test".to_string(),
        engine,
        env: BTreeMap::new(),
        inputs: Vec::new(),
        outputs: vec![Mount {
            host_path: outputs,
            target: "/outputs".to_string(),
            read_only: false,
        }],
        resources: Resources::default(),
        network: NetworkConfig::default(),
        timeout: None,
        scratch_dir: dir.to_path_buf(),
    }
}

/// Asserts that `executor` left no container or network behind.
pub async fn assert_no_leftovers(executor: &DockerExecutor) {
    assert_eq!(
        executor.managed_containers().await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        executor.managed_networks().await.unwrap(),
        Vec::<String>::new()
    );
}
