//! End-to-end: `bh docker run` through the real binaries on the real Docker Engine, with a busybox image
//! built locally (no registry). Needs `cargo build --workspace --bins` first (`cargo xtask test` does it).

use xtask::cluster::{block_on, Binaries, Cluster};
use xtask::images::{docker_available, ensure_busybox_image};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cluster(settings: &[&str]) -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster =
        Cluster::start(Binaries::in_target("debug"), dir.path(), 0).expect("cluster starts");
    cluster
        .add_compute(0, settings)
        .expect("compute node starts");
    (dir, cluster)
}

#[test]
fn docker_run_prints_the_container_output() {
    assert!(docker_available(), "these tests need the Docker Engine");
    let image = ensure_busybox_image().expect("busybox image");
    let (_dir, cluster) = cluster(&[]);
    let out = cluster
        .bh()
        .args([
            "docker",
            "run",
            image,
            "--",
            "sh",
            "-c",
            "echo hello from docker; echo to-stderr >&2",
        ])
        .output()
        .expect("bh runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from docker\n");
}

#[test]
fn docker_job_over_its_memory_limit_fails_saying_so() {
    assert!(docker_available(), "these tests need the Docker Engine");
    let image = ensure_busybox_image().expect("busybox image");
    let (_dir, cluster) = cluster(&[]);
    // dd allocates its block size in one buffer: 256 MB against a 32 MB limit.
    let out = cluster
        .bh()
        .args([
            "docker",
            "run",
            "--memory",
            "32Mb",
            image,
            "--",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=256M",
            "count=4",
        ])
        .output()
        .expect("bh runs");
    assert!(
        !out.status.success(),
        "the job must fail: {}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr).to_lowercase();
    assert!(
        stderr.contains("memory"),
        "the failure names memory: {stderr}"
    );
}

/// A one-shot HTTP server on the host's loopback that answers every request with `body`.
fn serve_http(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn http_network_mode_reaches_listed_domains_only() {
    assert!(docker_available(), "these tests need the Docker Engine");
    let image = ensure_busybox_image().expect("busybox image");
    let port = serve_http("allowed-content");
    let (_dir, cluster) = cluster(&["JobAdmissionControl.AcceptNetworkedJobs=true"]);

    // The same job but for the URL it fetches, in HTTP mode with only `localhost` allowed.
    let fetch = |url: String| {
        let script = format!("wget -q -O - {url}");
        cluster
            .bh()
            .args([
                "docker",
                "run",
                "--network",
                "http",
                "--domain",
                "localhost",
                image,
            ])
            .args(["--", "sh", "-c", &script])
            .output()
            .expect("bh runs")
    };

    let out = fetch(format!("http://localhost:{port}/"));
    assert!(
        out.status.success(),
        "allowed domain: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "allowed-content");

    let out = fetch(format!("http://not-listed.example:{port}/"));
    assert!(
        !out.status.success(),
        "a domain not listed must be refused: {}",
        text(&out.stdout)
    );
    assert!(!text(&out.stdout).contains("allowed-content"));
}

#[test]
fn networked_jobs_are_refused_unless_admitted() {
    assert!(docker_available(), "these tests need the Docker Engine");
    let image = ensure_busybox_image().expect("busybox image");
    let (_dir, cluster) = cluster(&[]);
    let out = cluster
        .bh()
        .args(["docker", "run", "--network", "full", image, "--", "true"])
        .output()
        .expect("bh runs");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("AcceptNetworkedJobs"),
        "the refusal says why: {stderr}"
    );
}

/// Blocks until Docker reports `event` for a container labelled with this job (including events that
/// happened before the call), or gives up after `bound`. Event-driven: no polling.
fn await_docker_event(job_id: &str, event: &str, since: &str, bound: std::time::Duration) -> bool {
    use std::io::BufRead;
    let mut child = std::process::Command::new("docker")
        .args(["events", "--since", since, "--format", "{{.Action}}"])
        .args([
            "--filter",
            &format!("label=bh.job-id={job_id}"),
            "--filter",
            &format!("event={event}"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker events");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(line)) = std::io::BufReader::new(stdout).lines().next() {
            let _ = tx.send(line);
        }
    });
    let seen = rx.recv_timeout(bound).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn stop_reaches_the_node_and_removes_the_container() {
    assert!(docker_available(), "these tests need the Docker Engine");
    let image = ensure_busybox_image().expect("busybox image");
    let (_dir, cluster) = cluster(&[]);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(1).to_string())
        .unwrap_or_default();
    let out = cluster
        .bh()
        .args([
            "docker",
            "run",
            "--wait=false",
            "--id-only",
            image,
            "--",
            "sleep",
            "600",
        ])
        .output()
        .expect("bh runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let bound = std::time::Duration::from_secs(60);
    assert!(
        await_docker_event(&id, "start", &since, bound),
        "the container started"
    );

    let out = cluster
        .bh()
        .args(["job", "stop", &id])
        .output()
        .expect("bh runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        await_docker_event(&id, "destroy", &since, bound),
        "the stop reached the node: container removed"
    );

    let client = cluster.client().expect("client");
    let job = block_on(client.get_job(&id, &Default::default(), "default")).expect("job");
    assert_eq!(job.job.state.state_type, bh_models::JobStateType::Stopped);
}
