//! Command execution: resolves the endpoint, builds the API client and dispatches each subcommand.

pub mod agent;
pub mod docker;
pub mod job;
pub mod node;
pub mod wasm;

use anyhow::Context as _;

use crate::api::Api;
use crate::{Cli, Command, DockerCommand, WasmCommand};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Resolved only when a command needs the server, so that dry runs work whatever the settings.
    let (api_host, api_port) = (cli.api_host.clone(), cli.api_port);
    let api = move || -> anyhow::Result<Api> {
        let endpoint = crate::endpoint::resolve(api_host.as_deref(), api_port, |name| {
            std::env::var(name).ok()
        })
        .map_err(anyhow::Error::msg)?;
        Api::new(&endpoint).with_context(|| format!("cannot use {}", endpoint.base_url()))
    };
    match cli.command {
        Command::Job(cmd) => job::run(cmd, api).await,
        Command::Docker(DockerCommand::Run(args)) => {
            let job = args.build_job()?;
            crate::submit::run_built_job(&job, &args.run, api).await
        }
        Command::Wasm(WasmCommand::Run(args)) => {
            let job = args.build_job()?;
            crate::submit::run_built_job(&job, &args.run, api).await
        }
        Command::Node(cmd) => node::run(cmd, &api()?).await,
        Command::Agent(cmd) => agent::run(cmd, &api()?).await,
    }
}
