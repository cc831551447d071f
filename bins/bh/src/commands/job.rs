//! `bh job run|list|describe|executions|history|stop`.

use std::io::Read as _;

use bh_models::api::ListOptions;
use clap::{Args, Subcommand};

use crate::api::{Api, HistoryQuery};
use crate::job_flags::RunFlags;
use crate::output::{self, ListOutputFlags, ObjectOutputFlags, PagingFlags};

/// `bh job ...`
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job from a YAML or JSON file, or from stdin with '-'.
    Run(Box<JobRunArgs>),
    /// List jobs.
    List(JobListArgs),
    /// Describe a job (a readable summary, or --output json|yaml).
    Describe(JobDescribeArgs),
    /// List a job's executions.
    Executions(JobExecutionsArgs),
    /// List a job's history events.
    History(JobHistoryArgs),
    /// Stop a job.
    Stop(JobStopArgs),
}

/// `bh job run` arguments.
#[derive(Debug, Args)]
pub struct JobRunArgs {
    /// The job spec file (YAML or JSON), or '-' for stdin.
    pub file: String,
    /// Use the spec as is, without template substitution.
    #[arg(long = "no-template")]
    pub no_template: bool,
    /// A template variable, KEY=VALUE (repeatable, comma-separated).
    #[arg(short = 'V', long = "template-vars", value_delimiter = ',')]
    pub template_vars: Vec<String>,
    /// Use environment variables whose names match this regular expression as template variables ('*': all).
    #[arg(short = 'E', long = "template-envs")]
    pub template_envs: Option<String>,
    /// Update the job even when the spec has not changed.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub run: RunFlags,
}

/// Namespace selection shared by job commands.
#[derive(Debug, Clone, Args)]
pub struct NamespaceFlag {
    /// The job's namespace.
    #[arg(long, default_value = bh_models::job::DEFAULT_NAMESPACE)]
    pub namespace: String,
}

/// `bh job list` arguments.
#[derive(Debug, Args)]
pub struct JobListArgs {
    /// The maximum number of jobs to list.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    #[command(flatten)]
    pub paging: PagingFlags,
    /// Filter by labels (Kubernetes-style selector).
    #[arg(long, default_value = "")]
    pub labels: String,
    /// The namespace to list ('*' for all).
    #[arg(long, default_value = bh_models::job::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// List jobs of every namespace.
    #[arg(long = "all-namespaces", short = 'A')]
    pub all_namespaces: bool,
    #[command(flatten)]
    pub output: ListOutputFlags,
}

/// `bh job describe` arguments.
#[derive(Debug, Args)]
pub struct JobDescribeArgs {
    /// The job ID (a unique prefix, or the job's name, also works).
    pub id: String,
    #[command(flatten)]
    pub namespace: NamespaceFlag,
    #[command(flatten)]
    pub output: ObjectOutputFlags,
}

/// `bh job executions` arguments.
#[derive(Debug, Args)]
pub struct JobExecutionsArgs {
    /// The job ID.
    pub id: String,
    #[command(flatten)]
    pub namespace: NamespaceFlag,
    /// The maximum number of executions to list.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[command(flatten)]
    pub paging: PagingFlags,
    #[command(flatten)]
    pub output: ListOutputFlags,
}

/// `bh job history` arguments.
#[derive(Debug, Args)]
pub struct JobHistoryArgs {
    /// The job ID.
    pub id: String,
    #[command(flatten)]
    pub namespace: NamespaceFlag,
    /// Which events: all, job or execution.
    #[arg(long = "event-type", default_value = "all")]
    pub event_type: String,
    /// Only events of this execution.
    #[arg(long = "execution-id", default_value = "")]
    pub execution_id: String,
    /// Only events of this node.
    #[arg(long = "node-id", default_value = "")]
    pub node_id: String,
    /// The maximum number of events to list (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    #[command(flatten)]
    pub paging: PagingFlags,
    #[command(flatten)]
    pub output: ListOutputFlags,
}

/// `bh job stop` arguments.
#[derive(Debug, Args)]
pub struct JobStopArgs {
    /// The job ID.
    pub id: String,
    #[command(flatten)]
    pub namespace: NamespaceFlag,
    /// Print nothing.
    #[arg(long)]
    pub quiet: bool,
    /// Why the job is stopped (recorded in its history).
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// Runs a `bh job` subcommand; `api` builds the client when the command needs the server.
pub async fn run(cmd: JobCommand, api: impl FnOnce() -> anyhow::Result<Api>) -> anyhow::Result<()> {
    match cmd {
        JobCommand::Run(args) => run_job(*args, api).await,
        JobCommand::List(args) => list(args, &api()?).await,
        JobCommand::Describe(args) => describe(args, &api()?).await,
        JobCommand::Executions(args) => executions(args, &api()?).await,
        JobCommand::History(args) => history(args, &api()?).await,
        JobCommand::Stop(args) => stop(args, &api()?).await,
    }
}

/// Reads the spec (file or stdin), renders templates, parses and checks it locally.
pub fn load_spec(
    args: &JobRunArgs,
    read_stdin: impl FnOnce() -> std::io::Result<String>,
) -> anyhow::Result<bh_models::Job> {
    let text = if args.file == "-" {
        read_stdin().map_err(|e| anyhow::anyhow!("cannot read the job spec from stdin: {e}"))?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| anyhow::anyhow!("cannot read job spec '{}': {e}", args.file))?
    };
    let text = if args.no_template {
        text
    } else {
        let vars = crate::template::template_vars(
            &args.template_vars,
            args.template_envs.as_deref(),
            std::env::vars(),
        )?;
        crate::template::render(&text, &vars)?
    };
    let mut job = bh_models::parse_job(&text)
        .map_err(|e| anyhow::anyhow!("invalid job spec: {}", e.message))?;
    bh_models::normalize(&mut job);
    bh_models::validate(&job).map_err(|e| anyhow::anyhow!("invalid job spec: {}", e.message))?;
    Ok(job)
}

async fn run_job(
    args: JobRunArgs,
    api: impl FnOnce() -> anyhow::Result<Api>,
) -> anyhow::Result<()> {
    let job = load_spec(&args, || {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    })?;
    if args.run.dry_run {
        print!("{}", crate::submit::spec_yaml(&job)?);
        return Ok(());
    }
    crate::submit::submit_and_follow(&api()?, &job, args.force, &args.run).await
}

async fn list(args: JobListArgs, api: &Api) -> anyhow::Result<()> {
    let opts = ListOptions {
        limit: args.limit,
        next_token: args.paging.next_token,
        order_by: args.paging.order_by,
        reverse: args.paging.reverse,
        namespace: if args.all_namespaces {
            "*".to_string()
        } else {
            args.namespace
        },
        labels: if args.labels.trim().is_empty() {
            Vec::new()
        } else {
            vec![args.labels]
        },
    };
    let response = api.list_jobs(&opts).await?;
    let rows = output::job_rows(&response.items, args.output.wide);
    print!(
        "{}",
        output::list(&response.items, &output::JOB_HEADERS, rows, &args.output)?
    );
    if !response.next_token.is_empty() && args.output.output == output::OutputFormat::Table {
        eprintln!(
            "To fetch more records use: --next-token {}",
            response.next_token
        );
    }
    Ok(())
}

async fn describe(args: JobDescribeArgs, api: &Api) -> anyhow::Result<()> {
    let response = api
        .get_job(&args.namespace.namespace, &args.id, true, true)
        .await?;
    match args.output.output {
        Some(format) => print!(
            "{}",
            output::structured(&response, format, args.output.pretty)?
        ),
        None => print!("{}", output::describe_job(&response)),
    }
    Ok(())
}

async fn executions(args: JobExecutionsArgs, api: &Api) -> anyhow::Result<()> {
    let opts = ListOptions {
        limit: args.limit,
        next_token: args.paging.next_token,
        order_by: args.paging.order_by,
        reverse: args.paging.reverse,
        namespace: args.namespace.namespace.clone(),
        labels: Vec::new(),
    };
    let response = api
        .job_executions(&args.namespace.namespace, &args.id, &opts)
        .await?;
    let rows = output::execution_rows(&response.items, args.output.wide);
    print!(
        "{}",
        output::list(
            &response.items,
            &output::EXECUTION_HEADERS,
            rows,
            &args.output
        )?
    );
    Ok(())
}

async fn history(args: JobHistoryArgs, api: &Api) -> anyhow::Result<()> {
    let event_type = args.event_type.to_ascii_lowercase();
    if !["all", "job", "execution"].contains(&event_type.as_str()) {
        anyhow::bail!(
            "invalid value '{}' for --event-type: expected all, job or execution",
            args.event_type
        );
    }
    let query = HistoryQuery {
        list: ListOptions {
            limit: args.limit,
            next_token: args.paging.next_token,
            order_by: args.paging.order_by,
            reverse: args.paging.reverse,
            namespace: args.namespace.namespace.clone(),
            labels: Vec::new(),
        },
        event_type,
        execution_id: args.execution_id,
        node_id: args.node_id,
    };
    let response = api
        .job_history(&args.namespace.namespace, &args.id, &query)
        .await?;
    let rows = output::history_rows(&response.items, args.output.wide);
    print!(
        "{}",
        output::list(
            &response.items,
            &output::HISTORY_HEADERS,
            rows,
            &args.output
        )?
    );
    Ok(())
}

async fn stop(args: JobStopArgs, api: &Api) -> anyhow::Result<()> {
    let reason = if args.reason.is_empty() {
        "stopped by user".to_string()
    } else {
        args.reason
    };
    // Like upstream, a job that already ended is not stopped again (the server only refuses Completed).
    let current = api
        .get_job(&args.namespace.namespace, &args.id, false, false)
        .await?;
    let state = current.job.state.state_type;
    if state.is_terminal() {
        anyhow::bail!("Job is already in a terminal state. The current state is: {state}");
    }
    let response = api
        .stop_job(&args.namespace.namespace, &current.job.id, &reason)
        .await?;
    if !args.quiet {
        println!(
            "Job stop successfully submitted with evaluation ID: {}",
            response.evaluation_id
        );
    }
    Ok(())
}
