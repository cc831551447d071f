//! `bh node list|describe|approve|reject|delete`.

use bh_models::api::{ListOptions, NODE_ACTION_APPROVE, NODE_ACTION_DELETE, NODE_ACTION_REJECT};
use clap::{Args, Subcommand};

use crate::api::{Api, NodeQuery};
use crate::output::{self, ListOutputFlags, ObjectFormat, ObjectOutputFlags, PagingFlags};

/// `bh node ...`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List nodes.
    List(NodeListArgs),
    /// Describe a node (YAML by default).
    Describe(NodeDescribeArgs),
    /// Approve a node's request to join the cluster.
    Approve(NodeActionArgs),
    /// Reject a node's request to join the cluster.
    Reject(NodeActionArgs),
    /// Delete a node from the cluster.
    Delete(NodeActionArgs),
}

/// `bh node list` arguments.
#[derive(Debug, Args)]
pub struct NodeListArgs {
    /// Only nodes with this approval: approved, pending or rejected.
    #[arg(long = "filter-approval", default_value = "")]
    pub filter_approval: String,
    /// Only nodes with this status: connected (healthy) or disconnected (unhealthy).
    #[arg(long = "filter-status", default_value = "")]
    pub filter_status: String,
    /// Filter by labels (Kubernetes-style selector).
    #[arg(long, default_value = "")]
    pub labels: String,
    /// The maximum number of nodes to list (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    #[command(flatten)]
    pub paging: PagingFlags,
    #[command(flatten)]
    pub output: ListOutputFlags,
}

/// `bh node describe` arguments.
#[derive(Debug, Args)]
pub struct NodeDescribeArgs {
    /// The node ID.
    pub id: String,
    #[command(flatten)]
    pub output: ObjectOutputFlags,
}

/// `bh node approve|reject|delete` arguments.
#[derive(Debug, Args)]
pub struct NodeActionArgs {
    /// The node ID.
    pub id: String,
    /// A message recorded with the action.
    #[arg(short = 'm', long = "message", default_value = "")]
    pub message: String,
}

/// Runs a `bh node` subcommand.
pub async fn run(cmd: NodeCommand, api: &Api) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::List(args) => list(args, api).await,
        NodeCommand::Describe(args) => {
            let response = api.get_node(&args.id).await?;
            let format = args.output.output.unwrap_or(ObjectFormat::Yaml);
            print!(
                "{}",
                output::structured(&response.node, format, args.output.pretty)?
            );
            Ok(())
        }
        NodeCommand::Approve(args) => act(api, NODE_ACTION_APPROVE, args).await,
        NodeCommand::Reject(args) => act(api, NODE_ACTION_REJECT, args).await,
        NodeCommand::Delete(args) => act(api, NODE_ACTION_DELETE, args).await,
    }
}

/// Normalises `--filter-status`: Bacalhau's healthy/unhealthy names map to connection states.
fn status_filter(value: &str) -> anyhow::Result<String> {
    Ok(match value.trim().to_ascii_lowercase().as_str() {
        "" => String::new(),
        "connected" | "healthy" => "CONNECTED".to_string(),
        "disconnected" | "unhealthy" => "DISCONNECTED".to_string(),
        _ => anyhow::bail!(
            "invalid value '{value}' for --filter-status: expected connected or disconnected"
        ),
    })
}

fn approval_filter(value: &str) -> anyhow::Result<String> {
    Ok(match value.trim().to_ascii_lowercase().as_str() {
        "" => String::new(),
        "approved" => "APPROVED".to_string(),
        "pending" => "PENDING".to_string(),
        "rejected" => "REJECTED".to_string(),
        _ => anyhow::bail!(
            "invalid value '{value}' for --filter-approval: expected approved, pending or rejected"
        ),
    })
}

async fn list(args: NodeListArgs, api: &Api) -> anyhow::Result<()> {
    let query = NodeQuery {
        list: ListOptions {
            limit: args.limit,
            next_token: args.paging.next_token,
            order_by: args.paging.order_by,
            reverse: args.paging.reverse,
            namespace: String::new(),
            labels: if args.labels.trim().is_empty() {
                Vec::new()
            } else {
                vec![args.labels]
            },
        },
        filter_approval: approval_filter(&args.filter_approval)?,
        filter_status: status_filter(&args.filter_status)?,
    };
    let response = api.list_nodes(&query).await?;
    let rows = output::node_rows(&response.nodes, args.output.wide);
    print!(
        "{}",
        output::list(&response.nodes, &output::NODE_HEADERS, rows, &args.output)?
    );
    Ok(())
}

async fn act(api: &Api, action: &str, args: NodeActionArgs) -> anyhow::Result<()> {
    let response = api.update_node(&args.id, action, &args.message).await?;
    if !response.success {
        let why = if response.error.is_empty() {
            "the orchestrator refused".to_string()
        } else {
            response.error
        };
        anyhow::bail!("failed to {action} node {}: {why}", args.id);
    }
    let done = match action {
        NODE_ACTION_APPROVE => "approved",
        NODE_ACTION_REJECT => "rejected",
        _ => "deleted",
    };
    println!("Ok: node {} {done}", args.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_accept_bacalhau_names() {
        assert_eq!(status_filter("healthy").unwrap(), "CONNECTED");
        assert_eq!(status_filter("Disconnected").unwrap(), "DISCONNECTED");
        assert!(status_filter("x").is_err());
        assert_eq!(approval_filter("pending").unwrap(), "PENDING");
        assert!(approval_filter("maybe").is_err());
    }
}
