//! Preparing a task's inputs and result folders on the host: `inline`, `localDirectory` and `urlDownload`
//! sources, engine module inputs (wasm `EntryModule`/`ImportModules`), and `env:` variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use bh_models::{InputSource, ResultPath, SpecConfig, Task};

use crate::error::ComputeError;
use crate::executor::Mount;

/// Storage source types this node can prepare.
pub const STORAGE_INLINE: &str = "inline";
pub const STORAGE_LOCAL_DIRECTORY: &str = "localDirectory";
pub const STORAGE_URL_DOWNLOAD: &str = "urlDownload";

/// Every storage source type this node supports, as announced in its NodeInfo.
pub fn supported_storage_sources() -> Vec<String> {
    vec![
        STORAGE_INLINE.to_string(),
        STORAGE_LOCAL_DIRECTORY.to_string(),
        STORAGE_URL_DOWNLOAD.to_string(),
    ]
}

/// Engine parameters that hold InputSources the node prepares like task inputs.
const ENGINE_MODULE_PARAMS: [&str; 2] = ["EntryModule", "ImportModules"];

/// The result folder used when a task names none.
pub fn default_result_paths() -> Vec<ResultPath> {
    vec![ResultPath {
        name: "outputs".to_string(),
        path: "/outputs".to_string(),
    }]
}

/// A host folder `localDirectory` inputs may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPath {
    pub path: PathBuf,
    pub read_write: bool,
}

impl AllowedPath {
    /// Parses an allow-list entry: `PATH`, `PATH:ro` or `PATH:rw`.
    pub fn parse(entry: &str) -> Self {
        let (path, read_write) = if let Some(p) = entry.strip_suffix(":rw") {
            (p, true)
        } else if let Some(p) = entry.strip_suffix(":ro") {
            (p, false)
        } else {
            (entry, false)
        };
        Self {
            path: PathBuf::from(path),
            read_write,
        }
    }
}

/// The engine spec with a `Target` filled in for every module InputSource that lacks one, and those
/// module InputSources (the node prepares them as input mounts; see bh-executor-wasm's contract).
pub fn engine_module_sources(engine: &SpecConfig) -> (SpecConfig, Vec<InputSource>) {
    let mut engine = engine.clone();
    let mut sources = Vec::new();
    for param in ENGINE_MODULE_PARAMS {
        let Some(key) = engine
            .params
            .keys()
            .find(|k| k.eq_ignore_ascii_case(param))
            .cloned()
        else {
            continue;
        };
        let Some(value) = engine.params.get_mut(&key) else {
            continue;
        };
        let mut fill = |value: &mut serde_json::Value, default_target: String| {
            let Some(object) = value.as_object_mut() else {
                return;
            };
            let has_target = object.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("Target") && v.as_str().is_some_and(|s| !s.is_empty())
            });
            if !has_target {
                object.retain(|k, _| !k.eq_ignore_ascii_case("Target"));
                object.insert("Target".to_string(), default_target.into());
            }
            if let Ok(source) = serde_json::from_value::<InputSource>(value.clone()) {
                sources.push(source);
            }
        };
        match value {
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    fill(item, format!("/bh/modules/import-{i}.wasm"));
                }
            }
            other => fill(other, "/bh/modules/entry.wasm".to_string()),
        }
    }
    (engine, sources)
}

/// Replaces `env:HOST_VAR` values with the host's variable; a missing host variable is an error naming
/// the task variable.
pub fn resolve_env(
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ComputeError> {
    env.iter()
        .map(|(name, value)| match value.strip_prefix("env:") {
            Some(host_var) => std::env::var(host_var)
                .map(|v| (name.clone(), v))
                .map_err(|_| {
                    ComputeError::Input(format!(
                        "Env {name}: host variable {host_var} is not set on this node"
                    ))
                }),
            None => Ok((name.clone(), value.clone())),
        })
        .collect()
}

/// Checks that every input source is of a supported type before bidding, naming the bad one.
pub fn check_sources(sources: &[InputSource]) -> Result<(), String> {
    for source in sources {
        let kind = source.source.config_type.as_str();
        if ![
            STORAGE_INLINE,
            STORAGE_LOCAL_DIRECTORY,
            STORAGE_URL_DOWNLOAD,
        ]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(kind))
        {
            return Err(format!(
                "input source type {kind:?} (target {}) is not supported by this node, only {}",
                source.target,
                supported_storage_sources().join(", ")
            ));
        }
    }
    Ok(())
}

/// The host side of a prepared task: its input mounts and its (empty) result folders.
#[derive(Debug, Clone)]
pub struct PreparedTask {
    pub inputs: Vec<Mount>,
    /// Each result path with the host folder mounted for it.
    pub outputs: Vec<(ResultPath, Mount)>,
    pub scratch_dir: PathBuf,
}

/// Prepares inputs and result folders for a task under `work_dir` (one folder per execution).
pub async fn prepare(
    work_dir: &Path,
    task: &Task,
    module_sources: &[InputSource],
    allowed: &[AllowedPath],
) -> Result<PreparedTask, ComputeError> {
    let inputs_dir = work_dir.join("inputs");
    let outputs_dir = work_dir.join("outputs");
    let scratch_dir = work_dir.join("scratch");
    for dir in [&inputs_dir, &outputs_dir, &scratch_dir] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| ComputeError::io(dir, e))?;
    }
    let mut inputs = Vec::new();
    for (i, source) in task.input_sources.iter().chain(module_sources).enumerate() {
        let folder = inputs_dir.join(i.to_string());
        let mount = prepare_source(source, &folder, allowed).await?;
        inputs.push(mount);
    }
    let result_paths = if task.result_paths.is_empty() {
        default_result_paths()
    } else {
        task.result_paths.clone()
    };
    let mut outputs = Vec::new();
    for (i, result) in result_paths.into_iter().enumerate() {
        let folder_name = if is_safe_name(&result.name) {
            result.name.clone()
        } else {
            format!("result-{i}")
        };
        let host_path = outputs_dir.join(folder_name);
        tokio::fs::create_dir_all(&host_path)
            .await
            .map_err(|e| ComputeError::io(&host_path, e))?;
        let mount = Mount {
            host_path,
            target: result.path.clone(),
            read_only: false,
        };
        outputs.push((result, mount));
    }
    Ok(PreparedTask {
        inputs,
        outputs,
        scratch_dir,
    })
}

/// Whether `name` can be used as a single folder name.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn input_error(source: &InputSource, message: impl std::fmt::Display) -> ComputeError {
    ComputeError::Input(format!(
        "input {} ({}): {message}",
        if source.target.is_empty() {
            source.alias.as_str()
        } else {
            source.target.as_str()
        },
        source.source.config_type
    ))
}

/// The file name an input gets on the host: the last part of its target.
fn target_file_name(source: &InputSource, fallback: &str) -> String {
    Path::new(&source.target)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| is_safe_name(s))
        .unwrap_or_else(|| fallback.to_string())
}

async fn prepare_source(
    source: &InputSource,
    folder: &Path,
    allowed: &[AllowedPath],
) -> Result<Mount, ComputeError> {
    if source.target.is_empty() {
        return Err(input_error(source, "Target is empty"));
    }
    let kind = source.source.config_type.as_str();
    if kind.eq_ignore_ascii_case(STORAGE_INLINE) {
        let url = source
            .source
            .param_str("URL")
            .ok_or_else(|| input_error(source, "Params.URL is required"))?;
        let data = decode_data_url(url).map_err(|e| input_error(source, e))?;
        tokio::fs::create_dir_all(folder)
            .await
            .map_err(|e| ComputeError::io(folder, e))?;
        let file = folder.join(target_file_name(source, "inline"));
        tokio::fs::write(&file, data)
            .await
            .map_err(|e| ComputeError::io(&file, e))?;
        Ok(Mount {
            host_path: file,
            target: source.target.clone(),
            read_only: true,
        })
    } else if kind.eq_ignore_ascii_case(STORAGE_LOCAL_DIRECTORY) {
        let path = source
            .source
            .param_str("SourcePath")
            .ok_or_else(|| input_error(source, "Params.SourcePath is required"))?;
        let read_write = source
            .source
            .param("ReadWrite")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let host_path = check_local_path(Path::new(path), read_write, allowed)
            .map_err(|e| input_error(source, e))?;
        Ok(Mount {
            host_path,
            target: source.target.clone(),
            read_only: !read_write,
        })
    } else if kind.eq_ignore_ascii_case(STORAGE_URL_DOWNLOAD) {
        let url = source
            .source
            .param_str("URL")
            .ok_or_else(|| input_error(source, "Params.URL is required"))?;
        tokio::fs::create_dir_all(folder)
            .await
            .map_err(|e| ComputeError::io(folder, e))?;
        download(url, folder)
            .await
            .map_err(|e| input_error(source, e))?;
        Ok(Mount {
            host_path: folder.to_path_buf(),
            target: source.target.clone(),
            read_only: true,
        })
    } else {
        Err(input_error(
            source,
            "this storage source type is not supported",
        ))
    }
}

/// Checks `localDirectory` sources against the allow-list before bidding (other types pass).
pub fn check_local_sources(sources: &[InputSource], allowed: &[AllowedPath]) -> Result<(), String> {
    for source in sources {
        if !source
            .source
            .config_type
            .eq_ignore_ascii_case(STORAGE_LOCAL_DIRECTORY)
        {
            continue;
        }
        let path = source
            .source
            .param_str("SourcePath")
            .ok_or_else(|| format!("input {}: Params.SourcePath is required", source.target))?;
        let read_write = source
            .source
            .param("ReadWrite")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        check_local_path(Path::new(path), read_write, allowed)
            .map_err(|e| format!("input {}: {e}", source.target))?;
    }
    Ok(())
}

/// Resolves a `localDirectory` path and checks it against the allow-list.
fn check_local_path(
    path: &Path,
    read_write: bool,
    allowed: &[AllowedPath],
) -> Result<PathBuf, String> {
    let resolved =
        std::fs::canonicalize(path).map_err(|e| format!("SourcePath {}: {e}", path.display()))?;
    let mut read_only_match = false;
    for entry in allowed {
        let Ok(root) = std::fs::canonicalize(&entry.path) else {
            continue;
        };
        if resolved.starts_with(&root) {
            if !read_write || entry.read_write {
                return Ok(resolved);
            }
            read_only_match = true;
        }
    }
    if read_only_match {
        return Err(format!(
            "SourcePath {} is allowed read-only on this node, not read-write",
            path.display()
        ));
    }
    Err(format!(
        "SourcePath {} is not in this node's allowed local paths (Compute.AllowListedLocalPaths)",
        path.display()
    ))
}

/// Decodes a `data:` URL (`data:[<type>][;base64],<data>`), base64 or percent-encoded.
pub fn decode_data_url(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| "Params.URL must be a data: URL".to_string())?;
    let (header, data) = rest
        .split_once(',')
        .ok_or_else(|| "Params.URL is a data: URL without a comma".to_string())?;
    if header
        .split(';')
        .any(|part| part.eq_ignore_ascii_case("base64"))
    {
        let cleaned: String = percent_decode(data)?
            .into_iter()
            .map(char::from)
            .filter(|c| !c.is_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.as_bytes())
            })
            .map_err(|e| format!("Params.URL has invalid base64 data: {e}"))
    } else {
        percent_decode(data)
    }
}

fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("Params.URL has a bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Downloads `url` into `folder`, naming the file after the URL's last path segment.
async fn download(url: &str, folder: &Path) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("Params.URL {url:?}: {e}"))?;
    let name = parsed
        .path_segments()
        .and_then(|mut segments| segments.next_back().map(str::to_string))
        .filter(|s| is_safe_name(s))
        .unwrap_or_else(|| "download".to_string());
    let mut response = reqwest::get(parsed)
        .await
        .map_err(|e| format!("downloading {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("downloading {url}: HTTP {}", response.status()));
    }
    let path = folder.join(name);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    use tokio::io::AsyncWriteExt as _;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("downloading {url}: {e}"))?
    {
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_decode() {
        assert_eq!(
            decode_data_url("data:,hello%20world").unwrap(),
            b"hello world"
        );
        assert_eq!(
            decode_data_url("data:text/plain;base64,aGVsbG8=").unwrap(),
            b"hello"
        );
        assert!(decode_data_url("http://x").is_err());
        assert!(decode_data_url("data:,%zz").is_err());
    }

    #[test]
    fn module_targets_are_filled() {
        let engine = SpecConfig::new("wasm").with_param(
            "entrymodule",
            serde_json::json!({"Source": {"Type": "inline", "Params": {"URL": "data:,x"}}}),
        );
        let (engine, sources) = engine_module_sources(&engine);
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].target, "/bh/modules/entry.wasm");
        assert_eq!(
            engine.param("EntryModule").unwrap()["Target"],
            "/bh/modules/entry.wasm"
        );
    }

    #[tokio::test]
    async fn local_paths_must_be_allowed() {
        let allowed_dir = tempfile::tempdir().unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let allowed = vec![AllowedPath::parse(
            &allowed_dir.path().display().to_string(),
        )];
        let task = |path: &Path, rw: bool| Task {
            input_sources: vec![InputSource {
                source: SpecConfig::new("localDirectory")
                    .with_param("SourcePath", path.display().to_string())
                    .with_param("ReadWrite", rw),
                alias: String::new(),
                target: "/data".into(),
            }],
            ..Default::default()
        };
        let ok = prepare(work.path(), &task(allowed_dir.path(), false), &[], &allowed)
            .await
            .unwrap();
        assert_eq!(ok.inputs[0].target, "/data");
        assert!(ok.inputs[0].read_only);
        assert_eq!(ok.outputs[0].1.target, "/outputs");
        let err = prepare(work.path(), &task(other_dir.path(), false), &[], &allowed)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AllowListedLocalPaths"), "{err}");
        let err = prepare(work.path(), &task(allowed_dir.path(), true), &[], &allowed)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
    }
}
