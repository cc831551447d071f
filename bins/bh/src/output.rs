//! Output formatting: tables (comfy-table), CSV, JSON and YAML, plus the row layouts of the list
//! commands and the readable `describe` summaries.

use bh_models::api::GetJobResponse;
use bh_models::ids::short_id;
use bh_models::{Execution, Job, JobHistory, NodeState};
use clap::{ArgAction, Args, ValueEnum};
use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

/// Output formats of list commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
    Yaml,
}

/// Output formats of single-object commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectFormat {
    Json,
    Yaml,
}

/// Paging and ordering flags of list commands. Which `--order-by` values a list accepts depends on the list
/// (jobs: created_at, modified_at, id; executions: modify_time, create_time, id, state; nodes: id, type,
/// available_cpu, available_memory, available_disk, available_gpu, approval, status); the server names the
/// accepted values when it refuses one.
#[derive(Debug, Clone, Default, Args)]
pub struct PagingFlags {
    /// Paging token from a previous list.
    #[arg(long = "next-token", default_value = "")]
    pub next_token: String,
    /// The field to order by: jobs created_at, modified_at or id; executions modify_time, create_time, id or
    /// state; nodes id, type, available_cpu, available_memory, available_disk, available_gpu, approval or status.
    #[arg(long = "order-by", default_value = "")]
    pub order_by: String,
    /// Reverse the order.
    #[arg(long = "order-reversed", visible_alias = "reverse", action = ArgAction::SetTrue)]
    pub reverse: bool,
}

/// Flags of list commands.
#[derive(Debug, Clone, Default, Args)]
pub struct ListOutputFlags {
    /// Output format: table, csv, json or yaml.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Pretty-print json and yaml output.
    #[arg(long)]
    pub pretty: bool,
    /// Do not print the column headers.
    #[arg(long = "hide-header")]
    pub hide_header: bool,
    /// Strip all styling from the table.
    #[arg(long = "no-style")]
    pub no_style: bool,
    /// Print full values in the table, without truncating.
    #[arg(long)]
    pub wide: bool,
}

/// Flags of single-object commands.
#[derive(Debug, Clone, Default, Args)]
pub struct ObjectOutputFlags {
    /// Output format: json or yaml.
    #[arg(long, value_enum)]
    pub output: Option<ObjectFormat>,
    /// Pretty-print json output.
    #[arg(long)]
    pub pretty: bool,
}

/// Serialises `value` as JSON (compact, or indented with `pretty`) or YAML, ending with a newline.
pub fn structured<T: Serialize>(
    value: &T,
    format: ObjectFormat,
    pretty: bool,
) -> anyhow::Result<String> {
    let mut text = match format {
        ObjectFormat::Json if pretty => serde_json::to_string_pretty(value)?,
        ObjectFormat::Json => serde_json::to_string(value)?,
        ObjectFormat::Yaml => yaml_serde::to_string(value)?,
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Renders a list: as a table or CSV from `headers` and `rows`, or `items` as JSON/YAML.
pub fn list<T: Serialize>(
    items: &[T],
    headers: &[&str],
    rows: Vec<Vec<String>>,
    flags: &ListOutputFlags,
) -> anyhow::Result<String> {
    match flags.output {
        OutputFormat::Json => structured(&items, ObjectFormat::Json, flags.pretty),
        OutputFormat::Yaml => structured(&items, ObjectFormat::Yaml, flags.pretty),
        OutputFormat::Csv => Ok(csv(headers, &rows, flags.hide_header)),
        OutputFormat::Table => Ok(table(headers, rows, flags)),
    }
}

/// A borderless table like Bacalhau's; `--no-style` also drops header emphasis and wrapping.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>, flags: &ListOutputFlags) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_content_arrangement(ContentArrangement::Disabled);
    if !flags.hide_header {
        table.set_header(headers.iter().copied());
    }
    for row in rows {
        table.add_row(row);
    }
    let mut text = table
        .lines()
        .map(|line| line.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}

fn csv(headers: &[&str], rows: &[Vec<String>], hide_header: bool) -> String {
    let field = |f: &str| {
        if f.contains([',', '"', '\n']) {
            format!("\"{}\"", f.replace('"', "\"\""))
        } else {
            f.to_string()
        }
    };
    let mut out = String::new();
    if !hide_header {
        out.push_str(
            &headers
                .iter()
                .map(|h| field(h))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    for row in rows {
        out.push_str(&row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// Formats Unix nanoseconds as local time; `wide` adds the date.
pub fn time_of(nanos: i64, wide: bool) -> String {
    if nanos <= 0 {
        return String::new();
    }
    let utc = chrono::DateTime::from_timestamp_nanos(nanos);
    let local = utc.with_timezone(&chrono::Local);
    if wide {
        local.format("%Y-%m-%d %H:%M:%S").to_string()
    } else if local.date_naive() == chrono::Local::now().date_naive() {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%y-%m-%d %H:%M").to_string()
    }
}

fn id_of(id: &str, wide: bool) -> String {
    if wide {
        id.to_string()
    } else {
        short_id(id).to_string()
    }
}

/// Column headers of `job list`.
pub const JOB_HEADERS: [&str; 5] = ["CREATED", "ID", "JOB", "TYPE", "STATE"];

/// Rows of `job list`.
pub fn job_rows(jobs: &[Job], wide: bool) -> Vec<Vec<String>> {
    jobs.iter()
        .map(|job| {
            vec![
                time_of(job.create_time, wide),
                id_of(&job.id, wide),
                job.task()
                    .map(|t| t.engine.config_type.clone())
                    .unwrap_or_default(),
                job.job_type.clone(),
                job.state.state_type.to_string(),
            ]
        })
        .collect()
}

/// Column headers of `job executions`.
pub const EXECUTION_HEADERS: [&str; 7] = [
    "CREATED",
    "MODIFIED",
    "ID",
    "NODE ID",
    "REV.",
    "COMPUTE STATE",
    "DESIRED STATE",
];

/// Rows of `job executions`.
pub fn execution_rows(executions: &[Execution], wide: bool) -> Vec<Vec<String>> {
    executions
        .iter()
        .map(|e| {
            vec![
                time_of(e.create_time, wide),
                time_of(e.modify_time, wide),
                id_of(&e.id, wide),
                id_of(&e.node_id, wide),
                e.revision.to_string(),
                e.compute_state.state_type.to_string(),
                e.desired_state.state_type.to_string(),
            ]
        })
        .collect()
}

/// Column headers of `job history`.
pub const HISTORY_HEADERS: [&str; 7] = [
    "TIME", "LEVEL", "REV.", "EXEC. ID", "NODE ID", "STATE", "EVENT",
];

/// Rows of `job history`.
pub fn history_rows(history: &[JobHistory], wide: bool) -> Vec<Vec<String>> {
    history
        .iter()
        .map(|h| {
            let time = bh_models::history::nanos_from_rfc3339(&h.time)
                .map(|n| time_of(n, wide))
                .unwrap_or_else(|| h.time.clone());
            let state = match (&h.job_state, &h.execution_state) {
                (Some(js), _) => js.new.to_string(),
                (None, Some(es)) => es.new.to_string(),
                (None, None) => String::new(),
            };
            let level = h
                .history_type
                .strip_suffix("Level")
                .unwrap_or(&h.history_type)
                .to_string();
            vec![
                time,
                level,
                h.job_version.to_string(),
                id_of(&h.execution_id, wide),
                id_of(&h.node_id, wide),
                state,
                h.event.message.clone(),
            ]
        })
        .collect()
}

/// Column headers of `node list`.
pub const NODE_HEADERS: [&str; 9] = [
    "ID", "TYPE", "APPROVAL", "STATUS", "LABELS", "CPU", "MEMORY", "DISK", "GPU",
];

/// Rows of `node list`; capacity columns read `available / total`.
pub fn node_rows(nodes: &[NodeState], wide: bool) -> Vec<Vec<String>> {
    use bh_models::quantity::{format_bytes, format_cpu};
    nodes
        .iter()
        .map(|n| {
            let info = &n.info.compute_node_info;
            let compute = n.info.node_type == bh_models::node::NODE_TYPE_COMPUTE;
            let pair = |avail: String, max: String| {
                if compute {
                    format!("{avail} / {max}")
                } else {
                    String::new()
                }
            };
            let labels = n
                .info
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                n.info.node_id.clone(),
                n.info.node_type.clone(),
                n.membership.clone(),
                n.connection_state.status.clone(),
                if wide || labels.len() <= 60 {
                    labels
                } else {
                    format!("{}...", labels.chars().take(57).collect::<String>())
                },
                pair(
                    format_cpu(info.available_capacity.cpu),
                    format_cpu(info.max_capacity.cpu),
                ),
                pair(
                    format_bytes(info.available_capacity.memory),
                    format_bytes(info.max_capacity.memory),
                ),
                pair(
                    format_bytes(info.available_capacity.disk),
                    format_bytes(info.max_capacity.disk),
                ),
                pair(
                    info.available_capacity.gpu.to_string(),
                    info.max_capacity.gpu.to_string(),
                ),
            ]
        })
        .collect()
}

/// The readable `job describe` summary: job fields, executions, history and the outputs.
pub fn describe_job(response: &GetJobResponse) -> String {
    let job = &response.job;
    let mut out = String::new();
    let field = |out: &mut String, name: &str, value: &str| {
        out.push_str(&format!("{name:<14}= {value}\n"));
    };
    field(&mut out, "ID", &job.id);
    field(&mut out, "Name", &job.name);
    field(&mut out, "Namespace", &job.namespace);
    field(&mut out, "Type", &job.job_type);
    field(&mut out, "State", job.state.state_type.as_str());
    if !job.state.message.is_empty() {
        field(&mut out, "Message", &job.state.message);
    }
    field(&mut out, "Count", &job.count.to_string());
    field(&mut out, "Priority", &job.priority.to_string());
    field(&mut out, "Version", &job.version.to_string());
    field(&mut out, "Created", &time_of(job.create_time, true));
    field(&mut out, "Modified", &time_of(job.modify_time, true));
    if !job.labels.is_empty() {
        let labels = job
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        field(&mut out, "Labels", &labels);
    }
    if let Some(task) = job.task() {
        field(&mut out, "Engine", &task.engine.config_type);
        if !task.publisher.is_empty() {
            field(&mut out, "Publisher", &task.publisher.config_type);
        }
    }
    let flags = ListOutputFlags {
        wide: true,
        ..ListOutputFlags::default()
    };
    if let Some(executions) = response.executions.as_deref().filter(|e| !e.is_empty()) {
        out.push_str("\nExecutions\n");
        out.push_str(&table(
            &EXECUTION_HEADERS,
            execution_rows(executions, false),
            &flags,
        ));
    }
    if let Some(history) = response.history.as_deref().filter(|h| !h.is_empty()) {
        out.push_str("\nHistory\n");
        out.push_str(&table(
            &HISTORY_HEADERS,
            history_rows(history, false),
            &flags,
        ));
    }
    if let Some(executions) = &response.executions {
        for execution in executions {
            let Some(run) = &execution.run_output else {
                continue;
            };
            if run.stdout.is_empty() && run.stderr.is_empty() && run.error_msg.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "\nExecution {} on {} (exit code {})\n",
                execution.id, execution.node_id, run.exit_code
            ));
            if !run.stdout.is_empty() {
                out.push_str("Standard Output\n");
                out.push_str(&run.stdout);
                if !run.stdout.ends_with('\n') {
                    out.push('\n');
                }
            }
            if !run.stderr.is_empty() {
                out.push_str("Standard Error\n");
                out.push_str(&run.stderr);
                if !run.stderr.ends_with('\n') {
                    out.push('\n');
                }
            }
            if !run.error_msg.is_empty() {
                out.push_str(&format!("Error: {}\n", run.error_msg));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bh_models::node::NodeInfo;
    use bh_models::{JobStateType, SpecConfig, State, Task};

    fn job() -> Job {
        Job {
            id: "j-12345678-aaaa-bbbb-cccc-dddddddddddd".into(),
            name: "n".into(),
            namespace: "default".into(),
            job_type: "batch".into(),
            count: 1,
            state: State::new(JobStateType::Completed, ""),
            tasks: vec![Task {
                name: "main".into(),
                engine: SpecConfig::new("docker"),
                ..Task::default()
            }],
            ..Job::default()
        }
    }

    #[test]
    fn job_table_has_bacalhau_columns_and_short_ids() {
        let flags = ListOutputFlags::default();
        let text = list(&[job()], &JOB_HEADERS, job_rows(&[job()], false), &flags).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["CREATED", "ID", "JOB", "TYPE", "STATE"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["j-12345678", "docker", "batch", "Completed"]
        );
    }

    #[test]
    fn hide_header_and_csv() {
        let flags = ListOutputFlags {
            output: OutputFormat::Csv,
            hide_header: true,
            ..ListOutputFlags::default()
        };
        let text = list(&[job()], &JOB_HEADERS, job_rows(&[job()], true), &flags).unwrap();
        assert_eq!(
            text,
            ",j-12345678-aaaa-bbbb-cccc-dddddddddddd,docker,batch,Completed\n"
        );
    }

    #[test]
    fn json_list_is_the_array_of_items() {
        let flags = ListOutputFlags {
            output: OutputFormat::Json,
            ..ListOutputFlags::default()
        };
        let text = list(&[job()], &JOB_HEADERS, vec![], &flags).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[0]["ID"], "j-12345678-aaaa-bbbb-cccc-dddddddddddd");
        assert_eq!(value[0]["State"]["StateType"], "Completed");
    }

    #[test]
    fn node_rows_show_available_over_total() {
        let mut node = NodeState {
            info: NodeInfo {
                node_id: "n-1".into(),
                node_type: "Compute".into(),
                ..NodeInfo::default()
            },
            membership: "APPROVED".into(),
            ..NodeState::default()
        };
        node.info.compute_node_info.max_capacity.cpu = 4.0;
        node.info.compute_node_info.available_capacity.cpu = 2.0;
        node.info.labels.insert("a".into(), "b".into());
        let rows = node_rows(&[node], false);
        assert_eq!(rows[0][0], "n-1");
        assert_eq!(rows[0][2], "APPROVED");
        assert_eq!(rows[0][4], "a=b");
        assert!(rows[0][5].contains(" / "), "{}", rows[0][5]);
    }

    #[test]
    fn describe_summary_names_the_job() {
        let text = describe_job(&GetJobResponse {
            job: job(),
            history: None,
            executions: None,
        });
        assert!(text.contains("ID            = j-12345678-aaaa-bbbb-cccc-dddddddddddd"));
        assert!(text.contains("State         = Completed"));
    }
}
