//! Docker-specific behaviour beyond the conformance suite: pulls, OOM, network modes, leftovers, config.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bh_compute::{Executor, ExecutorError, Mount, NullLogSink};
use bh_executor_docker::{DockerConfig, DockerError, DockerExecutor, LABEL_MANAGED, LABEL_NODE_ID};
use bh_models::{NetworkConfig, SpecConfig};
use bollard::models::{ContainerCreateBody, HostConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

macro_rules! require_docker {
    () => {
        if common::docker_tests_disabled() {
            return;
        }
    };
}

async fn run(
    executor: &DockerExecutor,
    request: bh_compute::ExecutionRequest,
) -> Result<bh_compute::ExecutionOutput, ExecutorError> {
    executor
        .run(request, Arc::new(NullLogSink), CancellationToken::new())
        .await
}

fn stdout(output: &bh_compute::ExecutionOutput) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn a_failed_pull_is_a_clear_engine_error() {
    require_docker!();
    let executor =
        common::executor_with("pull", |c| c.pull_timeout = Duration::from_secs(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = SpecConfig::new("docker").with_param("Image", "bh-no-such-registry.invalid/none:1");
    let started = Instant::now();
    let err = run(&executor, common::request(dir.path(), spec))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(25));
    match err {
        ExecutorError::Engine(message) => {
            assert!(
                message.contains("pulling image bh-no-such-registry.invalid/none:1"),
                "{message}"
            )
        }
        other => panic!("expected an engine error, got {other:?}"),
    }
    common::assert_no_leftovers(&executor).await;
}

#[tokio::test]
async fn exceeding_memory_is_a_resource_limit_naming_the_limit() {
    require_docker!();
    let executor = common::executor("oom").await;
    let dir = tempfile::tempdir().unwrap();
    let mut request = common::request(
        dir.path(),
        common::sh("head -c 256m /dev/zero | tail > /dev/null"),
    );
    request.resources.memory = 16 * 1024 * 1024;
    match run(&executor, request).await {
        Err(ExecutorError::ResourceLimit { message, .. }) => {
            assert_eq!(message, "memory limit exceeded (16777216 bytes)")
        }
        other => panic!("expected a resource limit, got {other:?}"),
    }
    common::assert_no_leftovers(&executor).await;
}

#[tokio::test]
async fn a_killed_workload_without_memory_limit_is_just_an_exit_code() {
    require_docker!();
    let executor = common::executor("kill9").await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &executor,
        common::request(dir.path(), common::sh("sh -c 'kill -9 $$'; exit $?")),
    )
    .await
    .unwrap();
    assert_eq!(output.exit_code, 137);
}

#[tokio::test]
async fn env_merges_spec_variables_and_request_env_and_files_mount() {
    require_docker!();
    let executor = common::executor("env").await;
    let dir = tempfile::tempdir().unwrap();
    let input_file = dir.path().join("single.txt");
    std::fs::write(&input_file, "single-file-input").unwrap();
    let spec = common::sh("echo $A-$B-$C; cat /data/in.txt").with_param(
        "EnvironmentVariables",
        serde_json::json!(["A=from-spec", "B=spec", "C = spaced"]),
    );
    let mut request = common::request(dir.path(), spec);
    request.env.insert("B".into(), "from-request".into());
    request.inputs.push(Mount {
        host_path: input_file,
        target: "/data/in.txt".into(),
        read_only: true,
    });
    let output = run(&executor, request).await.unwrap();
    assert_eq!(
        stdout(&output),
        "from-spec-from-request-spaced\nsingle-file-input"
    );
}

#[tokio::test]
async fn none_network_has_only_loopback_and_full_has_an_interface() {
    require_docker!();
    let executor = common::executor("netnone").await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &executor,
        common::request(dir.path(), common::sh("ls /sys/class/net")),
    )
    .await
    .unwrap();
    assert_eq!(
        stdout(&output).split_whitespace().collect::<Vec<_>>(),
        vec!["lo"]
    );

    let mut request = common::request(dir.path(), common::sh("ls /sys/class/net"));
    request.network = NetworkConfig {
        network_type: "Full".into(),
        ..Default::default()
    };
    let output = run(&executor, request).await.unwrap();
    assert!(stdout(&output).contains("eth0"), "{}", stdout(&output));
}

/// A tiny HTTP server on the host answering every request with `body`.
async fn http_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_network_reaches_listed_domains_only() {
    require_docker!();
    let port = http_server("allowed-content").await;
    let executor = common::executor_with("nethttp", |c| {
        c.proxy_resolve_overrides = BTreeMap::from([
            (
                "sub.allowed.test".to_string(),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ),
            ("other.test".to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ]);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // No `-T`: Debian's busybox 1.35 wget crashes when it is combined with a proxy.
    let script = format!(
        "wget -q -O - http://sub.allowed.test:{port}/ && echo; \
         if wget -q -O - http://other.test:{port}/ 2>/dev/null; then echo OTHER-REACHED; else echo OTHER-REFUSED; fi; \
         if env -u http_proxy -u HTTP_PROXY timeout 5 wget -q -O - http://1.1.1.1/ 2>/dev/null; then echo DIRECT-REACHED; else echo DIRECT-BLOCKED; fi"
    );
    let mut request = common::request(dir.path(), common::sh(&script));
    request.network = NetworkConfig {
        network_type: "HTTP".into(),
        domains: vec![".allowed.test".into()],
        ..Default::default()
    };
    let output = run(&executor, request).await.unwrap();
    let printed = stdout(&output);
    assert!(
        printed.contains("allowed-content"),
        "{printed} / {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("OTHER-REFUSED"), "{printed}");
    assert!(printed.contains("DIRECT-BLOCKED"), "{printed}");
    common::assert_no_leftovers(&executor).await;
}

#[tokio::test]
async fn connect_removes_what_a_crashed_node_left_behind() {
    require_docker!();
    common::ensure_test_image().await;
    let node_id = format!("test-crash-{}", uuid::Uuid::new_v4().simple());
    let docker = bollard::Docker::connect_with_unix_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_NODE_ID.to_string(), node_id.clone()),
    ]);
    let created = docker
        .create_container(
            None,
            ContainerCreateBody {
                image: Some(common::TEST_IMAGE.into()),
                cmd: Some(vec!["sleep".into(), "600".into()]),
                labels: Some(labels.clone()),
                host_config: Some(HostConfig {
                    network_mode: Some("none".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    docker.start_container(&created.id, None).await.unwrap();
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: format!("{node_id}-net"),
            internal: Some(true),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .unwrap();

    let executor = common::executor_with("crash", |c| c.node_id = node_id.clone()).await;
    common::assert_no_leftovers(&executor).await;
    assert!(docker.inspect_container(&created.id, None).await.is_err());
}

#[tokio::test]
async fn availability_and_connection_errors_are_explained() {
    require_docker!();
    let executor = common::executor("avail").await;
    assert_eq!(executor.is_available().await, Ok(()));
    assert_eq!(executor.engine_type(), "docker");

    let missing = DockerExecutor::connect(DockerConfig {
        socket: "/nonexistent/docker.sock".into(),
        node_id: "n".into(),
        ..Default::default()
    })
    .await;
    match missing {
        Err(DockerError::Engine { socket, .. }) => assert_eq!(socket, "/nonexistent/docker.sock"),
        other => panic!("expected an engine error, got {:?}", other.err()),
    }
    let no_node = DockerExecutor::connect(DockerConfig::default()).await;
    assert!(matches!(no_node, Err(DockerError::InvalidConfig(m)) if m.contains("node_id")));
}

#[tokio::test]
async fn cancel_before_start_leaves_nothing() {
    require_docker!();
    let executor = common::executor("precancel").await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let result = executor
        .run(
            common::request(dir.path(), common::sh("echo never")),
            Arc::new(NullLogSink),
            cancel,
        )
        .await;
    assert!(
        matches!(result, Err(ExecutorError::Cancelled { .. })),
        "{result:?}"
    );
    common::assert_no_leftovers(&executor).await;
}
