//! `bh agent alive|version|node`: what the agent the CLI talks to says about itself.

use clap::Subcommand;

use crate::api::Api;
use crate::output::{self, ObjectFormat, ObjectOutputFlags};

/// `bh agent ...`
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Whether the agent is alive (`Status: OK`).
    Alive(ObjectOutputFlags),
    /// The agent's version.
    Version(ObjectOutputFlags),
    /// The agent's node information.
    Node(ObjectOutputFlags),
}

/// Runs a `bh agent` subcommand; the default output is YAML.
pub async fn run(cmd: AgentCommand, api: &Api) -> anyhow::Result<()> {
    let text = match cmd {
        AgentCommand::Alive(flags) => render(&api.alive().await?, &flags)?,
        AgentCommand::Version(flags) => render(&api.version().await?, &flags)?,
        AgentCommand::Node(flags) => render(&api.agent_node().await?, &flags)?,
    };
    print!("{text}");
    Ok(())
}

fn render<T: serde::Serialize>(value: &T, flags: &ObjectOutputFlags) -> anyhow::Result<String> {
    output::structured(
        value,
        flags.output.unwrap_or(ObjectFormat::Yaml),
        flags.pretty,
    )
}
