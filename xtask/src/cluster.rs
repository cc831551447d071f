//! A local cluster of real processes: one `orchestratord` and N `computed`, on loopback ports chosen by the
//! kernel, with data in a folder. Readiness is read from each daemon's `ready` line on stdout, never guessed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// How long a daemon may take to print its ready line before the cluster gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the built binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub orchestratord: PathBuf,
    pub computed: PathBuf,
    pub bh: PathBuf,
}

impl Binaries {
    /// The binaries in `target/<profile>` of this workspace.
    pub fn in_target(profile: &str) -> Self {
        let dir = workspace_root().join("target").join(profile);
        Self {
            orchestratord: dir.join("orchestratord"),
            computed: dir.join("computed"),
            bh: dir.join("bh"),
        }
    }

    /// Fails with a readable message if a binary is missing.
    pub fn check(&self) -> Result<()> {
        for path in [&self.orchestratord, &self.computed, &self.bh] {
            if !path.exists() {
                bail!(
                    "{} is not built: run `cargo build --workspace --bins` first",
                    path.display()
                );
            }
        }
        Ok(())
    }
}

/// The workspace root (the folder above `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A running daemon whose output is being read.
pub struct Daemon {
    pub name: String,
    child: Child,
    /// Fields of the ready line (`key=value` pairs).
    pub ready: Vec<(String, String)>,
}

impl Daemon {
    /// Starts `cmd` and waits for its stdout line starting with `ready_prefix`.
    fn spawn(name: &str, mut cmd: Command, ready_prefix: &str, log: &Path) -> Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .stdin(Stdio::null());
        let mut child = cmd.spawn().with_context(|| format!("start {name}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name}: no stdout"))?;
        let (tx, rx) = mpsc::channel::<String>();
        let prefix = ready_prefix.to_string();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if !sent && line.starts_with(&prefix) {
                    sent = tx.send(line).is_ok();
                }
            }
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                bail!("{name} did not become ready; its log:\n{tail}");
            }
        };
        let ready = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Self {
            name: name.to_string(),
            child,
            ready,
        })
    }

    /// A field of the ready line.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.ready
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One orchestrator and its compute nodes.
pub struct Cluster {
    pub bins: Binaries,
    pub data_dir: PathBuf,
    pub orchestrator: Daemon,
    pub computes: Vec<Daemon>,
    pub api_port: u16,
    pub grpc_port: u16,
}

impl Cluster {
    /// Starts an orchestrator and `nodes` compute nodes with data under `data_dir`.
    pub fn start(bins: Binaries, data_dir: &Path, nodes: usize) -> Result<Self> {
        bins.check()?;
        std::fs::create_dir_all(data_dir)?;
        let orchestrator = start_orchestrator(&bins, data_dir, 0, 0)?;
        let api_port = port_field(&orchestrator, "api")?;
        let grpc_port = port_field(&orchestrator, "grpc")?;
        let mut cluster = Self {
            bins,
            data_dir: data_dir.to_path_buf(),
            orchestrator,
            computes: Vec::new(),
            api_port,
            grpc_port,
        };
        for i in 0..nodes {
            cluster.add_compute(i, &[])?;
        }
        Ok(cluster)
    }

    /// Starts compute node number `index` (its data in `compute-<index>`), with extra `-c` settings.
    pub fn add_compute(&mut self, index: usize, settings: &[&str]) -> Result<()> {
        let dir = self.data_dir.join(format!("compute-{index}"));
        std::fs::create_dir_all(&dir)?;
        let mut cmd = Command::new(&self.bins.computed);
        cmd.arg("-c")
            .arg(format!("DataDir={}", dir.display()))
            .arg("-c")
            .arg(format!(
                "Compute.Orchestrators=127.0.0.1:{}",
                self.grpc_port
            ))
            .arg("-c")
            .arg("Compute.HeartbeatIntervalSecs=1")
            .arg("-c")
            .arg("API.Host=127.0.0.1")
            .arg("-c")
            .arg("API.Port=0");
        for s in settings {
            cmd.arg("-c").arg(s);
        }
        let log = self.data_dir.join(format!("compute-{index}.log"));
        let daemon = Daemon::spawn(&format!("computed-{index}"), cmd, "computed ready", &log)?;
        self.computes.push(daemon);
        Ok(())
    }

    /// Kills the orchestrator with SIGKILL and starts it again on the same data and ports.
    pub fn restart_orchestrator(&mut self) -> Result<()> {
        self.orchestrator.kill();
        self.orchestrator =
            start_orchestrator(&self.bins, &self.data_dir, self.api_port, self.grpc_port)?;
        Ok(())
    }

    /// The REST base URL.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// A typed client for the REST API.
    pub fn client(&self) -> Result<bh_transport::Client> {
        Ok(bh_transport::Client::from_host_port(
            "127.0.0.1",
            self.api_port,
        )?)
    }

    /// Waits (long poll, no sleeping) until job `id` is terminal, for at most two minutes.
    pub fn wait_for_job(&self, id: &str) -> Result<bh_models::api::GetJobResponse> {
        let client = self.client()?;
        Ok(block_on(client.wait_for_job(
            id,
            "default",
            Duration::from_secs(120),
        ))?)
    }

    /// A `bh` command pointed at this cluster.
    pub fn bh(&self) -> Command {
        let mut cmd = Command::new(&self.bins.bh);
        cmd.env("BH_API_HOST", "127.0.0.1")
            .env("BH_API_PORT", self.api_port.to_string())
            .env_remove("BACALHAU_API_HOST")
            .env_remove("BACALHAU_API_PORT");
        cmd
    }
}

/// Runs `future` to completion on a fresh single-threaded runtime (for synchronous tests and tools).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(future),
        Err(err) => panic!("cannot start a tokio runtime: {err}"),
    }
}

fn start_orchestrator(
    bins: &Binaries,
    data_dir: &Path,
    api_port: u16,
    grpc_port: u16,
) -> Result<Daemon> {
    let dir = data_dir.join("orchestrator");
    std::fs::create_dir_all(&dir)?;
    let mut cmd = Command::new(&bins.orchestratord);
    cmd.arg("-c")
        .arg(format!("DataDir={}", dir.display()))
        .arg("-c")
        .arg("API.Host=127.0.0.1")
        .arg("-c")
        .arg(format!("API.Port={api_port}"))
        .arg("-c")
        .arg("Orchestrator.Host=127.0.0.1")
        .arg("-c")
        .arg(format!("Orchestrator.Port={grpc_port}"));
    Daemon::spawn(
        "orchestratord",
        cmd,
        "orchestratord ready",
        &data_dir.join("orchestrator.log"),
    )
}

fn port_field(daemon: &Daemon, key: &str) -> Result<u16> {
    let addr = daemon
        .field(key)
        .ok_or_else(|| anyhow!("{}: ready line lacks {key}=", daemon.name))?;
    let port = addr.rsplit(':').next().unwrap_or(addr);
    port.parse()
        .with_context(|| format!("{}: bad {key} address {addr}", daemon.name))
}
