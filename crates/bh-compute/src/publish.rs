//! Publishing results: `noop` (nothing leaves the node) and `local` (a folder under `data_dir/results`).

use std::path::{Path, PathBuf};

use bh_models::{ResultPath, SpecConfig};

use crate::error::ComputeError;
use crate::executor::{ExecutionOutput, Mount};

/// Publisher types this node supports.
pub const PUBLISHER_NOOP: &str = "noop";
pub const PUBLISHER_LOCAL: &str = "local";

/// Every publisher type this node supports, as announced in its NodeInfo.
pub fn supported_publishers() -> Vec<String> {
    vec![PUBLISHER_NOOP.to_string(), PUBLISHER_LOCAL.to_string()]
}

/// Whether `publisher` can be served (an empty type means `noop`).
pub fn is_supported(publisher: &SpecConfig) -> bool {
    publisher.config_type.is_empty()
        || supported_publishers()
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&publisher.config_type))
}

/// Publishes an execution's results. `local` copies each result folder to
/// `results_dir/<execution id>/<result name>/` next to `stdout`, `stderr` and `exitCode` files, and
/// returns `{Type: "local", Params: {URL: "file://..."}}`; `noop` publishes nothing.
pub async fn publish(
    publisher: &SpecConfig,
    results_dir: &Path,
    execution_id: &str,
    outputs: &[(ResultPath, Mount)],
    output: &ExecutionOutput,
) -> Result<Option<SpecConfig>, ComputeError> {
    if publisher.config_type.is_empty()
        || publisher.config_type.eq_ignore_ascii_case(PUBLISHER_NOOP)
    {
        return Ok(None);
    }
    if !publisher.config_type.eq_ignore_ascii_case(PUBLISHER_LOCAL) {
        return Err(ComputeError::Publish(format!(
            "publisher {:?} is not supported by this node",
            publisher.config_type
        )));
    }
    let target = results_dir.join(execution_id);
    let outputs = outputs.to_vec();
    let output = output.clone();
    let destination = target.clone();
    tokio::task::spawn_blocking(move || write_local(&destination, &outputs, &output))
        .await
        .map_err(|e| ComputeError::Publish(e.to_string()))??;
    let absolute = std::fs::canonicalize(&target).unwrap_or(target);
    Ok(Some(SpecConfig::new(PUBLISHER_LOCAL).with_param(
        "URL",
        format!("file://{}", absolute.display()),
    )))
}

fn write_local(
    destination: &Path,
    outputs: &[(ResultPath, Mount)],
    output: &ExecutionOutput,
) -> Result<(), ComputeError> {
    let io =
        |path: &Path, e: std::io::Error| ComputeError::Publish(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(destination).map_err(|e| io(destination, e))?;
    for (result, mount) in outputs {
        let name = if crate::inputs::is_safe_name(&result.name) {
            result.name.clone()
        } else {
            mount
                .host_path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "outputs".to_string())
        };
        copy_tree(&mount.host_path, &destination.join(name)).map_err(|(p, e)| io(&p, e))?;
    }
    for (name, data) in [
        ("stdout", output.stdout.as_slice()),
        ("stderr", output.stderr.as_slice()),
        ("exitCode", output.exit_code.to_string().as_bytes()),
    ] {
        let path = destination.join(name);
        std::fs::write(&path, data).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// Copies a folder recursively (symbolic links are copied as the files they point to).
fn copy_tree(from: &Path, to: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    std::fs::create_dir_all(to).map_err(|e| (to.to_path_buf(), e))?;
    let entries = std::fs::read_dir(from).map_err(|e| (from.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| (from.to_path_buf(), e))?;
        let source = entry.path();
        let dest = to.join(entry.file_name());
        if source.is_dir() {
            copy_tree(&source, &dest)?;
        } else {
            std::fs::copy(&source, &dest).map_err(|e| (source.clone(), e))?;
        }
    }
    Ok(())
}
