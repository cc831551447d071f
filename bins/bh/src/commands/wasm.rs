//! `bh wasm run MODULE [-- ARGS...]`: builds a job with the `wasm` engine; local modules are inlined.

use std::path::Path;

use base64::Engine as _;
use bh_models::{InputSource, Job, SpecConfig};
use clap::Args;
use serde_json::{Map, Value};

use crate::job_flags::{
    build_job, parse_input, FlagError, FlagResult, JobFlags, RunFlags, TaskFlags,
};

/// `bh wasm run` arguments.
#[derive(Debug, Clone, Args)]
pub struct WasmRunArgs {
    #[command(flatten)]
    pub job: JobFlags,
    #[command(flatten)]
    pub task: TaskFlags,
    #[command(flatten)]
    pub run: RunFlags,
    /// The exported function to call.
    #[arg(long = "entry-point", default_value = "_start")]
    pub entry_point: String,
    /// Modules to link before the entry module: local files or URIs (repeatable, comma-separated).
    #[arg(short = 'I', long = "import-modules", value_delimiter = ',')]
    pub import_modules: Vec<String>,
    /// Environment variables for the module, as KEY=VALUE (repeatable, comma-separated).
    #[arg(short = 'e', long = "env", value_delimiter = ',')]
    pub env: Vec<String>,
    /// The module: a local .wasm file, or a URI (ipfs://CID, https://...).
    pub module: String,
    /// Arguments passed to the module (put them after `--` when they start with `-`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl WasmRunArgs {
    /// The job these flags describe (reads local module files).
    pub fn build_job(&self) -> FlagResult<Job> {
        build_job(self.engine()?, &self.job, &self.task)
    }

    /// The `wasm` engine spec: EntryModule, Entrypoint, Parameters, EnvironmentVariables, ImportModules.
    fn engine(&self) -> FlagResult<SpecConfig> {
        let entry = module_source("MODULE", &self.module)?;
        let imports = self
            .import_modules
            .iter()
            .filter(|m| !m.trim().is_empty())
            .map(|m| module_source("--import-modules", m))
            .collect::<FlagResult<Vec<_>>>()?;
        let mut env = Map::new();
        for pair in &self.env {
            match pair.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => {
                    if let Some(problem) = bh_models::validate::env_name_problem(key.trim()) {
                        return Err(FlagError(format!(
                            "invalid value '{pair}' for --env: {problem}"
                        )));
                    }
                    env.insert(key.trim().to_string(), Value::String(value.to_string()));
                }
                _ => {
                    return Err(FlagError(format!(
                        "invalid value '{pair}' for --env: expected KEY=VALUE"
                    )))
                }
            }
        }
        if self.entry_point.trim().is_empty() {
            return Err(FlagError(
                "invalid value for --entry-point: must not be empty".to_string(),
            ));
        }
        let mut engine = SpecConfig::new("wasm")
            .with_param("EntryModule", to_value(&entry))
            .with_param("Entrypoint", self.entry_point.as_str())
            .with_param(
                "Parameters",
                Value::Array(self.args.iter().cloned().map(Value::String).collect()),
            );
        if !env.is_empty() {
            engine = engine.with_param("EnvironmentVariables", Value::Object(env));
        }
        if !imports.is_empty() {
            engine = engine.with_param(
                "ImportModules",
                Value::Array(imports.iter().map(to_value).collect()),
            );
        }
        Ok(engine)
    }
}

fn to_value(source: &InputSource) -> Value {
    serde_json::to_value(source).unwrap_or(Value::Null)
}

/// A module as an input source: a URI is used as is (mounted under `/app`), a local file is
/// inlined as a `data:` URL.
fn module_source(what: &str, module: &str) -> FlagResult<InputSource> {
    let module = module.trim();
    if module.is_empty() {
        return Err(FlagError(format!("invalid {what}: must not be empty")));
    }
    if module.contains("://") {
        let name = module
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let name = if name.is_empty() { "module.wasm" } else { name };
        return parse_input(module, &format!("/app/{name}"))
            .map_err(|e| FlagError(e.0.replace("--input", what)));
    }
    let path = Path::new(module);
    let bytes = std::fs::read(path)
        .map_err(|e| FlagError(format!("cannot read {what} '{module}': {e}")))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module.wasm".to_string());
    let url = format!(
        "data:application/wasm;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    Ok(InputSource {
        source: SpecConfig::new("inline").with_param("URL", url),
        alias: String::new(),
        target: format!("/app/{name}"),
    })
}
