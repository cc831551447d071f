//! `bh docker run IMAGE [-- COMMAND ARGS...]`: builds a job with the `docker` engine from flags.

use bh_models::{Job, SpecConfig};
use clap::Args;
use serde_json::Value;

use crate::job_flags::{build_job, FlagError, FlagResult, JobFlags, RunFlags, TaskFlags};

/// `bh docker run` arguments.
#[derive(Debug, Clone, Args)]
pub struct DockerRunArgs {
    #[command(flatten)]
    pub job: JobFlags,
    #[command(flatten)]
    pub task: TaskFlags,
    #[command(flatten)]
    pub run: RunFlags,
    /// Working directory inside the container (an absolute path).
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Override the image's ENTRYPOINT (comma-separated or repeated).
    #[arg(long = "entrypoint", value_delimiter = ',')]
    pub entrypoint: Vec<String>,
    /// Environment variables for the container, as KEY=VALUE (repeatable, comma-separated).
    #[arg(short = 'e', long = "env", value_delimiter = ',')]
    pub env: Vec<String>,
    /// The image to run: IMAGE[:TAG|@DIGEST].
    pub image: String,
    /// The command and its arguments (put them after `--` when they start with `-`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl DockerRunArgs {
    /// The job these flags describe.
    pub fn build_job(&self) -> FlagResult<Job> {
        build_job(self.engine()?, &self.job, &self.task)
    }

    /// The `docker` engine spec: Image, Entrypoint, Parameters, EnvironmentVariables, WorkingDirectory.
    fn engine(&self) -> FlagResult<SpecConfig> {
        let image = self.image.trim();
        if image.is_empty() {
            return Err(FlagError("invalid IMAGE: must not be empty".to_string()));
        }
        let mut engine = SpecConfig::new("docker").with_param("Image", image);
        let entrypoint: Vec<&String> = self.entrypoint.iter().filter(|e| !e.is_empty()).collect();
        if !entrypoint.is_empty() {
            engine = engine.with_param("Entrypoint", strings(entrypoint));
        }
        if !self.command.is_empty() {
            engine = engine.with_param("Parameters", strings(self.command.iter()));
        }
        for pair in &self.env {
            match pair.split_once('=') {
                Some((key, _)) if !key.trim().is_empty() => {
                    if let Some(problem) = bh_models::validate::env_name_problem(key.trim()) {
                        return Err(FlagError(format!(
                            "invalid value '{pair}' for --env: {problem}"
                        )));
                    }
                }
                _ => {
                    return Err(FlagError(format!(
                        "invalid value '{pair}' for --env: expected KEY=VALUE"
                    )))
                }
            }
        }
        if !self.env.is_empty() {
            engine = engine.with_param("EnvironmentVariables", strings(self.env.iter()));
        }
        if let Some(dir) = &self.workdir {
            if !dir.starts_with('/') {
                return Err(FlagError(format!(
                    "invalid value '{dir}' for --workdir: must be an absolute path"
                )));
            }
            engine = engine.with_param("WorkingDirectory", dir.as_str());
        }
        Ok(engine)
    }
}

fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|s| Value::String(s.clone()))
            .collect(),
    )
}
