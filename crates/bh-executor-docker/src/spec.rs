//! The docker engine spec (`Image`, `Entrypoint`, `Parameters`, `EnvironmentVariables`, `WorkingDirectory`),
//! read from a task's `Engine.Params` with keys compared case-insensitively, as Bacalhau's Go decoding does.

use bh_compute::ExecutorError;
use bh_models::SpecConfig;
use serde_json::Value;

/// The engine type this crate serves.
pub const ENGINE_TYPE: &str = "docker";

/// A validated docker engine spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerSpec {
    /// Image reference, for example `ubuntu:24.04` or `busybox@sha256:...`.
    pub image: String,
    /// Replaces the image's entrypoint when `Some` (even when empty: Docker then uses no entrypoint).
    pub entrypoint: Option<Vec<String>>,
    /// Arguments (Docker `Cmd`); empty means the image's default command.
    pub parameters: Vec<String>,
    /// `K=V` pairs from `EnvironmentVariables` (a list of `K=V` strings or a map).
    pub environment: Vec<(String, String)>,
    /// Absolute working directory, or empty for the image's default.
    pub working_directory: String,
}

fn invalid(message: impl Into<String>) -> ExecutorError {
    ExecutorError::InvalidSpec(message.into())
}

fn string_list(name: &str, value: &Value) -> Result<Vec<String>, ExecutorError> {
    let items = value
        .as_array()
        .ok_or_else(|| invalid(format!("{name} must be a list of strings")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid(format!("{name}[{i}] must be a string"))),
        })
        .collect()
}

/// Splits `K=V` (spaces around the key and `=` are tolerated, as in Bacalhau's documentation examples).
fn split_env(name: &str, index: usize, entry: &str) -> Result<(String, String), ExecutorError> {
    let (raw_key, raw_value) = entry.split_once('=').ok_or_else(|| {
        invalid(format!(
            "{name}[{index}] must look like KEY=VALUE, got {entry:?}"
        ))
    })?;
    let key = raw_key.trim();
    if key.is_empty() {
        return Err(invalid(format!("{name}[{index}] has an empty name")));
    }
    // `KEY = value` (spaces around `=`) means `value`; otherwise the value is kept byte for byte.
    let value = if raw_key.ends_with(' ') {
        raw_value.trim_start()
    } else {
        raw_value
    };
    Ok((key.to_string(), value.to_string()))
}

impl DockerSpec {
    /// Reads and checks a docker engine spec, naming the bad parameter on error.
    pub fn parse(engine: &SpecConfig) -> Result<Self, ExecutorError> {
        if !engine.config_type.eq_ignore_ascii_case(ENGINE_TYPE) {
            return Err(invalid(format!(
                "Type: expected {ENGINE_TYPE:?}, got {:?}",
                engine.config_type
            )));
        }
        let image = match engine.param("Image") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(invalid("Image is required"))
            }
            Some(_) => return Err(invalid("Image must be a string")),
        };
        let entrypoint = match engine.param("Entrypoint") {
            None | Some(Value::Null) => None,
            Some(value) => Some(string_list("Entrypoint", value)?),
        };
        let parameters = match engine.param("Parameters") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => string_list("Parameters", value)?,
        };
        let environment = match engine.param("EnvironmentVariables") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(_)) => {
                let entries = string_list(
                    "EnvironmentVariables",
                    engine.param("EnvironmentVariables").unwrap_or(&Value::Null),
                )?;
                entries
                    .iter()
                    .enumerate()
                    .map(|(i, entry)| split_env("EnvironmentVariables", i, entry))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(Value::Object(map)) => map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(s) => Ok((key.clone(), s.clone())),
                    Value::Number(n) => Ok((key.clone(), n.to_string())),
                    Value::Bool(b) => Ok((key.clone(), b.to_string())),
                    _ => Err(invalid(format!(
                        "EnvironmentVariables.{key} must be a string"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(invalid(
                    "EnvironmentVariables must be a list of KEY=VALUE strings or a map",
                ))
            }
        };
        let working_directory = match engine.param("WorkingDirectory") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => return Err(invalid("WorkingDirectory must be a string")),
        };
        if !working_directory.is_empty() && !working_directory.starts_with('/') {
            return Err(invalid(format!(
                "WorkingDirectory must be an absolute path, got {working_directory:?}"
            )));
        }
        Ok(Self {
            image,
            entrypoint,
            parameters,
            environment,
            working_directory,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(params: Value) -> SpecConfig {
        let mut config = SpecConfig::new("docker");
        if let Value::Object(map) = params {
            config.params = map;
        }
        config
    }

    #[test]
    fn parses_all_fields_case_insensitively() {
        let parsed = DockerSpec::parse(&spec(json!({
            "image": "busybox:1",
            "Entrypoint": ["sh", "-c"],
            "parameters": ["echo hi"],
            "EnvironmentVariables": ["A=1", "DEFAULT_USER_NAME = root", "B=x=y"],
            "workingdirectory": "/work",
        })))
        .unwrap();
        assert_eq!(parsed.image, "busybox:1");
        assert_eq!(parsed.entrypoint, Some(vec!["sh".into(), "-c".into()]));
        assert_eq!(parsed.parameters, vec!["echo hi".to_string()]);
        assert_eq!(
            parsed.environment,
            vec![
                ("A".into(), "1".into()),
                ("DEFAULT_USER_NAME".into(), "root".into()),
                ("B".into(), "x=y".into())
            ]
        );
        assert_eq!(parsed.working_directory, "/work");
    }

    #[test]
    fn null_entrypoint_and_map_env() {
        let parsed = DockerSpec::parse(&spec(json!({
            "Image": "x", "Entrypoint": null, "EnvironmentVariables": {"K": "v", "N": 3}
        })))
        .unwrap();
        assert_eq!(parsed.entrypoint, None);
        assert_eq!(
            parsed.environment,
            vec![("K".into(), "v".into()), ("N".into(), "3".into())]
        );
    }

    #[test]
    fn errors_name_the_parameter() {
        let cases = [
            (json!({}), "Image"),
            (json!({"Image": ""}), "Image"),
            (json!({"Image": 3}), "Image"),
            (json!({"Image": "x", "Entrypoint": "sh"}), "Entrypoint"),
            (json!({"Image": "x", "Parameters": [1]}), "Parameters[0]"),
            (
                json!({"Image": "x", "EnvironmentVariables": ["NOEQUALS"]}),
                "EnvironmentVariables[0]",
            ),
            (
                json!({"Image": "x", "WorkingDirectory": "rel"}),
                "WorkingDirectory",
            ),
        ];
        for (params, name) in cases {
            let err = DockerSpec::parse(&spec(params.clone())).unwrap_err();
            assert!(err.to_string().contains(name), "{params}: {err}");
        }
        let err = DockerSpec::parse(&SpecConfig::new("wasm")).unwrap_err();
        assert!(err.to_string().contains("Type"), "{err}");
    }
}
