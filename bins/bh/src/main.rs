//! bh: the operator CLI (mirrors `bacalhau`): submit and inspect jobs, manage nodes, query the agent.
//!
//! Every failure prints one `Error: <message>` line (a block for a failed job) to stderr and exits 1.

mod api;
mod commands;
mod endpoint;
mod job_flags;
mod output;
mod submit;
mod template;

#[cfg(test)]
mod golden_tests;

use clap::{Parser, Subcommand};

use crate::commands::agent::AgentCommand;
use crate::commands::docker::DockerRunArgs;
use crate::commands::job::JobCommand;
use crate::commands::node::NodeCommand;
use crate::commands::wasm::WasmRunArgs;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "bh",
    version,
    about = "Compute over data: submit and manage jobs on a bh (Bacalhau-compatible) network"
)]
pub struct Cli {
    /// Host of the orchestrator's REST API (a name, an address, or a URL such as http://host:port).
    /// Defaults to $BH_API_HOST, then $BACALHAU_API_HOST, then 127.0.0.1.
    #[arg(long = "api-host", global = true)]
    pub api_host: Option<String>,
    /// Port of the orchestrator's REST API. Defaults to $BH_API_PORT, then $BACALHAU_API_PORT, then 1234.
    #[arg(long = "api-port", global = true)]
    pub api_port: Option<u16>,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit and manage jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Run a docker job on the network.
    #[command(subcommand)]
    Docker(DockerCommand),
    /// Run a WebAssembly job on the network.
    #[command(subcommand)]
    Wasm(WasmCommand),
    /// Query and manage nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Query the agent (the node the CLI talks to).
    #[command(subcommand)]
    Agent(AgentCommand),
}

/// `bh docker ...`
#[derive(Debug, Subcommand)]
pub enum DockerCommand {
    /// Run a docker job: bh docker run [flags] IMAGE[:TAG|@DIGEST] [-- COMMAND ARGS...]
    Run(Box<DockerRunArgs>),
}

/// `bh wasm ...`
#[derive(Debug, Subcommand)]
pub enum WasmCommand {
    /// Run a WebAssembly job: bh wasm run [flags] MODULE [-- ARGS...]
    Run(Box<WasmRunArgs>),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with success; syntax errors are clap's readable message.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(commands::run(cli)) {
        eprintln!("Error: {}", one_message(&e));
        std::process::exit(1);
    }
}

/// The error with its causes, as one message (causes that only repeat the message are skipped).
fn one_message(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
    }
    message
}
