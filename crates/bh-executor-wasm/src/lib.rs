//! bh-executor-wasm: runs WebAssembly (WASI preview 1) tasks with wasmtime, as the `wasm` engine.
//!
//! # Contract with the compute node
//!
//! The engine's `EntryModule` and `ImportModules` parameters are InputSources. The compute node prepares
//! them like any other input before calling [`Executor::run`]: for each of them the
//! [`ExecutionRequest::inputs`] hold a [`Mount`](bh_compute::Mount) whose `target` equals the InputSource's `Target`, and
//! whose `host_path` is the module file (or a folder holding exactly one file). The node fills in a
//! `Target` where the user gave none, so every module InputSource that reaches this executor has one.
//! An `inline` module that nobody prepared (no mount at its target) is decoded from its data URL by the
//! executor itself.
//!
//! Each input mount is visible to the module read-only at its target, each output mount read-write
//! (`/outputs` by default). A mount of a single file is exposed through its parent folder in the guest
//! (for example a file mounted at `/inputs/data.txt` appears inside a preopened `/inputs`).
//!
//! Engine parameters (keys case-insensitive): `EntryModule` (required), `Entrypoint` (default `_start`;
//! a function with no parameters and no results), `Parameters` (argv after the program name),
//! `EnvironmentVariables` (map, merged over the task's Env), `ImportModules` (their exports are available
//! to the entry module under the module's own name, or the file name without extension when it has
//! none).
//!
//! Timeouts and cancellation interrupt running wasm code through epoch interruption; a module blocked
//! inside a host call (a long `poll_oneoff` sleep) is stopped when it returns to wasm code.

mod capture;
mod params;
mod run;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bh_compute::{ExecutionOutput, ExecutionRequest, Executor, ExecutorError, LogSink, LogStream};
use bh_models::{InputSource, SpecConfig};
use tokio_util::sync::CancellationToken;

pub use params::{WasmParams, DEFAULT_ENTRYPOINT};

use capture::CapturedOutput;
use run::{ModuleCache, Preopen, RunEnd, RunPlan, ABORT_CANCELLED, ABORT_NONE, ABORT_TIMEOUT};

/// The engine type this executor serves.
pub const ENGINE_TYPE: &str = "wasm";

/// Memory a module may use when the task asks for none: 512 MiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 * 1024 * 1024;

/// How often a stopped module is poked until it notices (epoch ticks while an abort is pending).
const ABORT_TICK: Duration = Duration::from_millis(10);

/// Settings of the wasm executor.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Linear memory a module may use when the task's Resources name no memory.
    pub memory_limit_default: u64,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            memory_limit_default: DEFAULT_MEMORY_LIMIT,
        }
    }
}

/// Why the executor could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm engine: {0}")]
pub struct WasmInitError(String);

impl From<WasmInitError> for bh_models::Error {
    fn from(e: WasmInitError) -> Self {
        bh_models::Error::internal(e.to_string())
    }
}

/// The `wasm` engine: runs WASI preview 1 modules with wasmtime.
pub struct WasmExecutor {
    config: WasmConfig,
    engine: wasmtime::Engine,
    cache: Arc<ModuleCache>,
}

impl WasmExecutor {
    /// Creates the executor and its wasmtime engine.
    pub fn new(config: WasmConfig) -> Result<Self, WasmInitError> {
        let mut engine_config = wasmtime::Config::new();
        engine_config.epoch_interruption(true);
        let engine =
            wasmtime::Engine::new(&engine_config).map_err(|e| WasmInitError(e.to_string()))?;
        Ok(Self {
            config,
            engine,
            cache: Arc::new(ModuleCache::default()),
        })
    }

    /// How many compiled modules are cached (by content hash).
    pub fn cached_modules(&self) -> usize {
        self.cache.len()
    }

    fn plan(&self, request: &ExecutionRequest) -> Result<RunPlan, ExecutorError> {
        let params = WasmParams::parse(&request.engine)?;
        let entry_module = module_file(request, &params.entry_module, "EntryModule")?;
        let mut import_modules = Vec::new();
        for (i, source) in params.import_modules.iter().enumerate() {
            let path = module_file(request, source, &format!("ImportModules[{i}]"))?;
            // Modules without a name of their own are registered under their target's file name.
            let named_after = if source.target.is_empty() {
                path.clone()
            } else {
                PathBuf::from(&source.target)
            };
            let fallback = named_after
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            import_modules.push((path, fallback));
        }
        let program = Path::new(&params.entry_module.target)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "main.wasm".to_string());
        let mut args = vec![program];
        args.extend(params.parameters.iter().cloned());
        let mut env = request.env.clone();
        env.extend(params.environment.clone());
        let memory_limit = if request.resources.memory > 0 {
            request.resources.memory
        } else {
            self.config.memory_limit_default
        };
        Ok(RunPlan {
            entry_module,
            import_modules,
            entrypoint: params.entrypoint,
            args,
            env,
            preopens: preopens(request)?,
            memory_limit,
        })
    }
}

/// The host file of a module: the input mounted at its target, or, for an `inline` source nobody
/// prepared, the decoded data written to the scratch folder.
fn module_file(
    request: &ExecutionRequest,
    source: &InputSource,
    field: &str,
) -> Result<PathBuf, ExecutorError> {
    let target = source.target.as_str();
    let mount = request
        .inputs
        .iter()
        .find(|m| !target.is_empty() && same_target(&m.target, target));
    let Some(mount) = mount else {
        if source.source.config_type.eq_ignore_ascii_case("inline") {
            return write_inline_module(request, source, field);
        }
        if target.is_empty() {
            return Err(ExecutorError::InvalidSpec(format!(
                "{field}.Target is empty"
            )));
        }
        return Err(ExecutorError::Engine(format!(
            "{field} was not prepared: no input is mounted at {target}"
        )));
    };
    if mount.host_path.is_dir() {
        // A folder holding exactly one file (as some storage sources produce) stands for that file.
        let files: Vec<PathBuf> = std::fs::read_dir(&mount.host_path)
            .map_err(|e| ExecutorError::Engine(format!("cannot read {field}: {e}")))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        return match files.as_slice() {
            [single] => Ok(single.clone()),
            _ => Err(ExecutorError::Engine(format!(
                "{field} at {target} is a folder, not a module file"
            ))),
        };
    }
    Ok(mount.host_path.clone())
}

/// Decodes an inline module's data URL into a file of the scratch folder.
fn write_inline_module(
    request: &ExecutionRequest,
    source: &InputSource,
    field: &str,
) -> Result<PathBuf, ExecutorError> {
    let url = source.source.param_str("URL").ok_or_else(|| {
        ExecutorError::InvalidSpec(format!("{field}.Source.Params.URL is required"))
    })?;
    let bytes = bh_compute::inputs::decode_data_url(url)
        .map_err(|e| ExecutorError::InvalidSpec(format!("{field}: {e}")))?;
    let folder = request.scratch_dir.join("modules");
    std::fs::create_dir_all(&folder)
        .map_err(|e| ExecutorError::Engine(format!("cannot create {}: {e}", folder.display())))?;
    let name: String = field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = folder.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes)
        .map_err(|e| ExecutorError::Engine(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

fn same_target(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Folders to preopen: folder mounts directly, file mounts through a scratch folder per guest parent.
fn preopens(request: &ExecutionRequest) -> Result<Vec<Preopen>, ExecutorError> {
    let mut preopens = Vec::new();
    let mut file_groups: Vec<(String, PathBuf)> = Vec::new();
    let mounts = request
        .inputs
        .iter()
        .map(|m| (m, !m.read_only))
        .chain(request.outputs.iter().map(|m| (m, !m.read_only)));
    for (mount, writable) in mounts {
        if mount.host_path.is_dir() {
            preopens.push(Preopen {
                host_path: mount.host_path.clone(),
                guest_path: mount.target.clone(),
                writable,
            });
            continue;
        }
        let target = Path::new(&mount.target);
        let guest_parent = target
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());
        let file_name = target.file_name().ok_or_else(|| {
            ExecutorError::Engine(format!(
                "input mounted at {} has no file name",
                mount.target
            ))
        })?;
        let folder = match file_groups
            .iter()
            .find(|(parent, _)| *parent == guest_parent)
        {
            Some((_, folder)) => folder.clone(),
            None => {
                let folder = request
                    .scratch_dir
                    .join(format!("file-mounts-{}", file_groups.len()));
                std::fs::create_dir_all(&folder).map_err(|e| {
                    ExecutorError::Engine(format!("cannot create {}: {e}", folder.display()))
                })?;
                file_groups.push((guest_parent.clone(), folder.clone()));
                preopens.push(Preopen {
                    host_path: folder.clone(),
                    guest_path: guest_parent,
                    writable: false,
                });
                folder
            }
        };
        let link = folder.join(file_name);
        // A hard link costs nothing; across file systems fall back to a copy.
        if std::fs::hard_link(&mount.host_path, &link).is_err() {
            std::fs::copy(&mount.host_path, &link).map_err(|e| {
                ExecutorError::Engine(format!(
                    "cannot expose {} at {}: {e}",
                    mount.host_path.display(),
                    mount.target
                ))
            })?;
        }
    }
    Ok(preopens)
}

#[async_trait]
impl Executor for WasmExecutor {
    fn engine_type(&self) -> &str {
        ENGINE_TYPE
    }

    async fn is_available(&self) -> Result<(), String> {
        Ok(())
    }

    fn validate(&self, engine: &SpecConfig) -> Result<(), ExecutorError> {
        WasmParams::parse(engine).map(|_| ())
    }

    async fn run(
        &self,
        request: ExecutionRequest,
        logs: Arc<dyn LogSink>,
        cancel: CancellationToken,
    ) -> Result<ExecutionOutput, ExecutorError> {
        let plan = self.plan(&request)?;
        let stdout = CapturedOutput::new(LogStream::Stdout, logs.clone());
        let stderr = CapturedOutput::new(LogStream::Stderr, logs);
        let abort = Arc::new(AtomicU8::new(ABORT_NONE));
        let finished = CancellationToken::new();

        let watcher = tokio::spawn(watch(
            self.engine.clone(),
            abort.clone(),
            request.timeout,
            cancel,
            finished.clone(),
        ));
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let (out, err) = (stdout.clone(), stderr.clone());
        let joined = tokio::task::spawn_blocking(move || {
            run::run_module(&engine, &cache, &plan, out, err, abort)
        })
        .await;
        finished.cancel();
        let _ = watcher.await;
        let _ = std::fs::remove_dir_all(&request.scratch_dir);

        let output = ExecutionOutput {
            stdout: stdout.contents(),
            stderr: stderr.contents(),
            exit_code: 0,
        };
        let end = joined.map_err(|e| ExecutorError::Engine(format!("wasm run failed: {e}")))?;
        match end {
            RunEnd::Exited(code) => Ok(ExecutionOutput {
                exit_code: i64::from(code),
                ..output
            }),
            RunEnd::Aborted(ABORT_TIMEOUT) => Err(ExecutorError::Timeout {
                timeout: request.timeout.unwrap_or_default(),
                partial: output,
            }),
            RunEnd::Aborted(_) => Err(ExecutorError::Cancelled { partial: output }),
            RunEnd::MemoryLimit => Err(ExecutorError::ResourceLimit {
                message: format!(
                    "memory limit exceeded ({})",
                    format_bytes(if request.resources.memory > 0 {
                        request.resources.memory
                    } else {
                        self.config.memory_limit_default
                    })
                ),
                partial: output,
            }),
            RunEnd::Failed(message) => Err(ExecutorError::Engine(message)),
        }
    }
}

/// Sets the abort flag on timeout or cancel, then ticks the epoch until the run notices and finishes.
async fn watch(
    engine: wasmtime::Engine,
    abort: Arc<AtomicU8>,
    timeout: Option<Duration>,
    cancel: CancellationToken,
    finished: CancellationToken,
) {
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let reason = tokio::select! {
        _ = finished.cancelled() => return,
        _ = cancel.cancelled() => ABORT_CANCELLED,
        _ = deadline => ABORT_TIMEOUT,
    };
    abort.store(reason, Ordering::SeqCst);
    loop {
        engine.increment_epoch();
        tokio::select! {
            _ = finished.cancelled() => return,
            _ = tokio::time::sleep(ABORT_TICK) => {}
        }
    }
}

/// Bytes as a short human figure (`512MB`, `1.5GB`), as shown in limit messages.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if value.fract() == 0.0 {
                format!("{value:.0}{unit}")
            } else {
                format!("{value:.1}{unit}")
            };
        }
    }
    format!("{bytes}B")
}
