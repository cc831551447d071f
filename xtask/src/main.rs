//! `cargo xtask`: the project's scripts (test, demo, bench, gpu-check), in Rust so they run the same everywhere.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xtask::cluster::{workspace_root, Binaries, Cluster};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo        build, start a local cluster (1 orchestrator, 2 compute nodes) and run a sample wasm job
  test        install test prerequisites, then fmt, clippy, every test, and cargo-deny when installed
  bench       latency benchmarks on a local release cluster (wasm; docker when the engine answers)
  gpu-check   detect GPUs for real and, where the NVIDIA runtime exists, run a GPU container";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        Some("gpu-check") => gpu_check(),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

/// Runs a command in the workspace root, failing on a non-zero exit.
fn run(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("run {program}"))?;
    if !status.success() {
        bail!("{program} {} failed: {status}", args.join(" "));
    }
    Ok(())
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Debian packages the tests use: busybox-static to build local container images (no registry is reachable).
fn install_prerequisites() -> Result<()> {
    if !std::path::Path::new("/bin/busybox").exists()
        && !std::path::Path::new("/usr/bin/busybox").exists()
    {
        if have("apt-get") {
            run("sh", &["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null"])?;
        } else {
            eprintln!("warning: busybox-static is missing and apt-get is not available; docker tests will fail");
        }
    }
    Ok(())
}

fn test() -> Result<()> {
    install_prerequisites()?;
    let cargo = cargo();
    run(&cargo, &["fmt", "--all", "--", "--check"])?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The end-to-end tests start the real binaries, so build them first.
    run(&cargo, &["build", "--workspace", "--bins"])?;
    run(&cargo, &["test", "--workspace", "--no-fail-fast"])?;
    if have("cargo-deny") {
        run(
            &cargo,
            &["deny", "--offline", "check", "licenses", "bans", "sources"],
        )?;
    } else {
        eprintln!("cargo-deny is not installed: skipping `cargo deny check` (CI installs it)");
    }
    Ok(())
}

/// Builds the three binaries, in release mode for benchmarks.
fn build_binaries(release: bool) -> Result<()> {
    let mut args = vec![
        "build",
        "--bins",
        "-p",
        "orchestratord",
        "-p",
        "computed",
        "-p",
        "bh",
    ];
    if release {
        args.push("--release");
    }
    run(&cargo(), &args)
}

fn demo() -> Result<()> {
    build_binaries(false)?;
    let data = workspace_root().join(".bh-demo");
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("clear {}", data.display()))?;
    }
    let cluster = Cluster::start(Binaries::in_target("debug"), &data, 2)?;
    eprintln!(
        "cluster up: orchestrator API {} , 2 compute nodes, data in {}",
        cluster.api_url(),
        data.display()
    );
    let module = data.join("hello.wasm");
    std::fs::write(
        &module,
        xtask::samples::hello_wasm("Hello from a bh wasm job!\n")?,
    )?;
    let nodes = cluster.bh().args(["node", "list"]).status()?;
    if !nodes.success() {
        bail!("bh node list failed");
    }
    eprintln!("+ bh wasm run {}", module.display());
    let out = cluster.bh().arg("wasm").arg("run").arg(&module).output()?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!("the sample job failed");
    }
    eprintln!("demo done; logs are in {}", data.display());
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p50 = percentile(&samples, 50.0);
    let p99 = percentile(&samples, 99.0);
    println!(
        "{name}: n={} p50={:.2}ms p99={:.2}ms min={:.2}ms max={:.2}ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        samples
            .first()
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0),
        samples.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
    );
    (p50, p99)
}

fn bench(args: &[String]) -> Result<()> {
    let jobs: usize = args
        .iter()
        .position(|a| a == "--jobs")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse())
        .transpose()
        .context("--jobs")?
        .unwrap_or(200);
    build_binaries(true)?;
    let data: PathBuf = std::env::temp_dir().join(format!("bh-bench-{}", std::process::id()));
    let cluster = Cluster::start(Binaries::in_target("release"), &data, 1)?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        let client = cluster.client()?;
        let module = xtask::samples::hello_wasm("ok\n")?;
        let job = wasm_job_json(&module);
        // Warm up: compile caches, connections.
        for _ in 0..5 {
            submit_and_wait(&client, &job).await?;
        }
        let mut samples = Vec::with_capacity(jobs);
        for _ in 0..jobs {
            let started = Instant::now();
            submit_and_wait(&client, &job).await?;
            samples.push(started.elapsed());
        }
        report("wasm submit-to-Completed", samples);
        if xtask::images::docker_available() {
            bench_docker(&client).await?;
        } else {
            println!("docker: the engine does not answer; docker benchmark skipped");
        }
        anyhow::Ok(())
    });
    drop(cluster);
    let _ = std::fs::remove_dir_all(&data);
    result
}

/// Trivial docker job through bh against a bare `docker run --rm` of the same image, interleaved so both see
/// the same machine state.
async fn bench_docker(client: &bh_transport::Client) -> Result<()> {
    const RUNS: usize = 30;
    let image = xtask::images::ensure_busybox_image()?;
    let job = serde_json::json!({
        "Type": "batch",
        "Count": 1,
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "docker", "Params": {"Image": image, "Parameters": ["true"]}}
        }]
    });
    submit_and_wait(client, &job).await?;
    let mut through_bh = Vec::with_capacity(RUNS);
    let mut bare = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = tokio::process::Command::new("docker")
            .args(["run", "--rm", "--network", "none", image, "true"])
            .status()
            .await?;
        if !status.success() {
            bail!("docker run --rm failed");
        }
        bare.push(started.elapsed());
        let started = Instant::now();
        submit_and_wait(client, &job).await?;
        through_bh.push(started.elapsed());
    }
    let (bare_p50, _) = report("docker run --rm (bare)", bare);
    let (bh_p50, _) = report("docker job submit-to-Completed (bh)", through_bh);
    println!(
        "docker overhead at p50: {:.1}ms",
        (bh_p50.as_secs_f64() - bare_p50.as_secs_f64()) * 1e3
    );
    Ok(())
}

fn wasm_job_json(module: &[u8]) -> serde_json::Value {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(module);
    serde_json::json!({
        "Type": "batch",
        "Count": 1,
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {
                "EntryModule": {"Source": {"Type": "inline", "Params": {"URL": format!("data:application/wasm;base64,{encoded}")}}, "Target": "/app/main.wasm"},
                "Entrypoint": "_start"
            }}
        }]
    })
}

async fn submit_and_wait(client: &bh_transport::Client, job: &serde_json::Value) -> Result<()> {
    let resp = client
        .put_job(&bh_models::api::PutJobRequest {
            job: job.clone(),
            force: false,
        })
        .await?;
    let done = client
        .wait_for_job(&resp.job_id, "default", Duration::from_secs(60))
        .await?;
    if done.job.state.state_type != bh_models::JobStateType::Completed {
        bail!(
            "job {} ended {}: {}",
            resp.job_id,
            done.job.state.state_type,
            done.job.state.message
        );
    }
    Ok(())
}

/// Real GPU detection (NVML, rocm-smi, xpu-smi) and, where the NVIDIA container runtime exists, a container
/// that asks for one GPU through the docker executor's device request.
fn gpu_check() -> Result<()> {
    let gpus = bh_compute::gpu::detect_gpus();
    println!("detected {} GPU(s)", gpus.len());
    for gpu in &gpus {
        println!(
            "  GPU {}: {} {} ({} MiB) at {}",
            gpu.index, gpu.vendor, gpu.name, gpu.memory, gpu.pci_address
        );
    }
    for (key, value) in bh_compute::gpu::gpu_labels(&gpus) {
        println!("  label {key}={value}");
    }
    if gpus.is_empty() {
        println!("no GPU here: detection ran and found none; nothing more to check");
        return Ok(());
    }
    let runtimes = Command::new("docker")
        .args(["info", "--format", "{{json .Runtimes}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !runtimes.contains("nvidia") {
        println!("the Docker Engine has no nvidia runtime: GPU container check skipped");
        return Ok(());
    }
    let image = xtask::images::ensure_busybox_image()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        use bh_compute::Executor as _;
        let scratch = std::env::temp_dir().join(format!("bh-gpu-check-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let executor =
            bh_executor_docker::DockerExecutor::connect(bh_executor_docker::DockerConfig {
                node_id: "gpu-check".to_string(),
                ..Default::default()
            })
            .await?;
        let request = bh_compute::ExecutionRequest {
            execution_id: "e-gpu-check".to_string(),
            job_id: "j-gpu-check".to_string(),
            engine: bh_models::SpecConfig::new("docker")
                .with_param("Image", image)
                .with_param(
                    "Parameters",
                    serde_json::json!(["sh", "-c", "ls /dev/nvidia0 && (nvidia-smi -L || true)"]),
                ),
            env: Default::default(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            resources: bh_models::Resources {
                cpu: 1.0,
                memory: 256 * 1024 * 1024,
                gpu: 1,
                ..Default::default()
            },
            network: Default::default(),
            timeout: Some(Duration::from_secs(120)),
            scratch_dir: scratch.clone(),
        };
        let output = executor
            .run(
                request,
                std::sync::Arc::new(bh_compute::NullLogSink),
                tokio_util::sync::CancellationToken::new(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("GPU container failed: {e}"))?;
        let _ = std::fs::remove_dir_all(&scratch);
        print!("{}", String::from_utf8_lossy(&output.stdout));
        if output.exit_code != 0 {
            bail!(
                "GPU container exited {}: {}",
                output.exit_code,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        println!("GPU container ran with a GPU device");
        anyhow::Ok(())
    })
}
