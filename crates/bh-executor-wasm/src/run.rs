//! Running one prepared module to its end on the current (blocking) thread: linking, WASI setup, limits, and exit.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Linker, Module, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::capture::CapturedOutput;

/// Values of the abort flag shared with the watcher task.
pub const ABORT_NONE: u8 = 0;
pub const ABORT_TIMEOUT: u8 = 1;
pub const ABORT_CANCELLED: u8 = 2;

/// A folder made visible to the module.
#[derive(Debug, Clone)]
pub struct Preopen {
    pub host_path: PathBuf,
    pub guest_path: String,
    pub writable: bool,
}

/// Everything needed to run a module, already resolved to host paths.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub entry_module: PathBuf,
    /// Import modules as (host file, name to register under when the module has no name of its own).
    pub import_modules: Vec<(PathBuf, String)>,
    pub entrypoint: String,
    /// argv, program name first.
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub preopens: Vec<Preopen>,
    /// Bytes of linear memory (all memories together) the module may use.
    pub memory_limit: u64,
}

/// How a run ended.
#[derive(Debug)]
pub enum RunEnd {
    /// The module exited (`proc_exit`) or its entrypoint returned (code 0).
    Exited(i32),
    /// The watcher interrupted it; the value is one of the `ABORT_*` flags.
    Aborted(u8),
    /// The module tried to use more memory than allowed.
    MemoryLimit,
    /// Loading, linking or running failed otherwise (invalid module, missing import, trap).
    Failed(String),
}

/// Compiled modules kept by the sha256 of their bytes, so a module run again is not compiled again.
#[derive(Default)]
pub struct ModuleCache {
    modules: Mutex<HashMap<String, Module>>,
}

impl ModuleCache {
    /// The compiled module for `bytes`, compiling it (binary or WAT text) on first use.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<Module, String> {
        let key = hex::encode(Sha256::digest(bytes));
        if let Some(module) = self.lock().get(&key) {
            return Ok(module.clone());
        }
        let module = Module::new(engine, bytes).map_err(|e| format!("{e}"))?;
        self.lock().insert(key, module.clone());
        Ok(module)
    }

    /// How many compiled modules are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Module>> {
        match self.modules.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Bounds the total linear memory of a store and remembers whether the bound was hit.
struct MemoryLimiter {
    limit: usize,
    used: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.limit {
            self.exceeded = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes exceeded",
                self.limit
            )));
        }
        self.used = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Table elements cost a pointer each; keep tables within the memory budget too.
        Ok(desired.saturating_mul(std::mem::size_of::<usize>()) <= self.limit)
    }
}

struct StoreState {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
}

fn read_module(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    if path.is_dir() {
        return Err(format!(
            "{what} at {} is a directory, not a module file",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// Runs the plan to its end. Must be called off the async runtime's workers (WASI p1 sync blocks on tokio).
pub fn run_module(
    engine: &Engine,
    cache: &ModuleCache,
    plan: &RunPlan,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
    abort: Arc<AtomicU8>,
) -> RunEnd {
    let entry_bytes = match read_module(&plan.entry_module, "EntryModule") {
        Ok(bytes) => bytes,
        Err(e) => return RunEnd::Failed(e),
    };
    let entry = match cache.load(engine, &entry_bytes) {
        Ok(module) => module,
        Err(e) => return RunEnd::Failed(format!("EntryModule is not a valid wasm module: {e}")),
    };
    let mut imports = Vec::new();
    for (i, (path, fallback_name)) in plan.import_modules.iter().enumerate() {
        let what = format!("ImportModules[{i}]");
        let loaded = read_module(path, &what).and_then(|bytes| {
            cache
                .load(engine, &bytes)
                .map_err(|e| format!("{what} is not a valid wasm module: {e}"))
        });
        match loaded {
            Ok(module) => {
                let name = module.name().unwrap_or(fallback_name).to_string();
                imports.push((name, module));
            }
            Err(e) => return RunEnd::Failed(e),
        }
    }

    let mut builder = WasiCtxBuilder::new();
    builder.args(&plan.args).stdout(stdout).stderr(stderr);
    for (key, value) in &plan.env {
        builder.env(key, value);
    }
    for preopen in &plan.preopens {
        let perms = if preopen.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        if let Err(e) = builder.preopened_dir(&preopen.host_path, &preopen.guest_path, perms) {
            return RunEnd::Failed(format!(
                "cannot mount {} at {}: {e}",
                preopen.host_path.display(),
                preopen.guest_path
            ));
        }
    }
    let state = StoreState {
        wasi: builder.build_p1(),
        limiter: MemoryLimiter {
            limit: usize::try_from(plan.memory_limit).unwrap_or(usize::MAX),
            used: 0,
            exceeded: false,
        },
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    let watched = abort.clone();
    store.epoch_deadline_callback(move |_| {
        if watched.load(Ordering::SeqCst) != ABORT_NONE {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });

    let outcome = instantiate_and_call(engine, &mut store, &imports, &entry, &plan.entrypoint);
    match outcome {
        Ok(()) => RunEnd::Exited(0),
        Err(error) => {
            if let Some(exit) = error.downcast_ref::<I32Exit>() {
                return RunEnd::Exited(exit.0);
            }
            let aborted = abort.load(Ordering::SeqCst);
            if aborted != ABORT_NONE {
                return RunEnd::Aborted(aborted);
            }
            if store.data().limiter.exceeded {
                return RunEnd::MemoryLimit;
            }
            match error.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => RunEnd::Failed(format!("the module stopped with a {trap}")),
                None => RunEnd::Failed(format!("{error}")),
            }
        }
    }
}

fn instantiate_and_call(
    engine: &Engine,
    store: &mut Store<StoreState>,
    imports: &[(String, Module)],
    entry: &Module,
    entrypoint: &str,
) -> wasmtime::Result<()> {
    let mut linker: Linker<StoreState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi)?;
    for (name, module) in imports {
        let instance = linker.instantiate(&mut *store, module)?;
        linker.instance(&mut *store, name, instance)?;
    }
    let instance = linker.instantiate(&mut *store, entry)?;
    let func = instance.get_func(&mut *store, entrypoint).ok_or_else(|| {
        wasmtime::Error::msg(format!(
            "entrypoint {entrypoint:?} is not exported by the EntryModule"
        ))
    })?;
    let typed = func.typed::<(), ()>(&*store).map_err(|_| {
        wasmtime::Error::msg(format!(
            "entrypoint {entrypoint:?} must take no parameters and return nothing"
        ))
    })?;
    typed.call(&mut *store, ())
}
