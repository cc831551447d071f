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

/// Runs a `bh agent` subcommand; the default output is YAML, except for `version` (upstream's three lines).
pub async fn run(cmd: AgentCommand, api: &Api) -> anyhow::Result<()> {
    let text = match cmd {
        AgentCommand::Alive(flags) => render(&api.alive().await?, &flags)?,
        AgentCommand::Version(flags) => {
            let version = api.version().await?;
            match flags.output {
                Some(_) => render(&version, &flags)?,
                None => version_text(&version),
            }
        }
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

/// `bacalhau agent version`'s default output.
fn version_text(version: &bh_models::BuildVersionInfo) -> String {
    format!(
        "Bacalhau {}\nBuildDate {}\nGitCommit {}\n",
        version.git_version, version.build_date, version.git_commit
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_default_output_is_upstreams_three_lines() {
        let version = bh_models::BuildVersionInfo {
            git_version: "v0.1.0".into(),
            git_commit: "abc".into(),
            ..Default::default()
        };
        assert_eq!(
            version_text(&version),
            "Bacalhau v0.1.0\nBuildDate \nGitCommit abc\n"
        );
    }
}
