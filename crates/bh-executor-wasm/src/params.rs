//! Parsing and checking the wasm engine's `Params` (EntryModule, Entrypoint, Parameters, EnvironmentVariables, ImportModules).

use std::collections::BTreeMap;

use bh_compute::ExecutorError;
use bh_models::{InputSource, SpecConfig};

/// The function run when `Entrypoint` is not given (a WASI command's start function).
pub const DEFAULT_ENTRYPOINT: &str = "_start";

/// The wasm engine parameters of one task, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct WasmParams {
    /// Where the compute node mounted the entry module (the EntryModule's `Target`).
    pub entry_module: InputSource,
    pub entrypoint: String,
    /// Arguments after the program name.
    pub parameters: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub import_modules: Vec<InputSource>,
}

fn invalid(message: impl Into<String>) -> ExecutorError {
    ExecutorError::InvalidSpec(message.into())
}

/// Reads an InputSource given as JSON, naming `field` when it is malformed.
fn parse_input_source(
    value: &serde_json::Value,
    field: &str,
) -> Result<InputSource, ExecutorError> {
    // The current form names the path of one of the task's InputSources; the legacy form is the
    // InputSource itself.
    if let Some(path) = value.as_str() {
        if path.trim().is_empty() {
            return Err(invalid(format!("{field} is empty")));
        }
        return Ok(InputSource {
            target: path.trim().to_string(),
            ..InputSource::default()
        });
    }
    if !value.is_object() {
        return Err(invalid(format!(
            "{field} must be the path of an input or an InputSource object with Source and Target"
        )));
    }
    let source: InputSource = serde_json::from_value(value.clone())
        .map_err(|e| invalid(format!("{field} is not a valid InputSource: {e}")))?;
    if source.source.config_type.is_empty() {
        return Err(invalid(format!("{field}.Source.Type is missing")));
    }
    Ok(source)
}

impl WasmParams {
    /// Parses the engine spec. Keys are matched case-insensitively; every error names the parameter.
    pub fn parse(engine: &SpecConfig) -> Result<Self, ExecutorError> {
        let entry_value = engine
            .param("EntryModule")
            .filter(|v| !v.is_null())
            .ok_or_else(|| invalid("EntryModule is required"))?;
        let entry_module = parse_input_source(entry_value, "EntryModule")?;

        let entrypoint = match engine.param("Entrypoint") {
            None | Some(serde_json::Value::Null) => DEFAULT_ENTRYPOINT.to_string(),
            Some(serde_json::Value::String(s)) if s.is_empty() => DEFAULT_ENTRYPOINT.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("Entrypoint must be a string")),
        };

        let parameters = match engine.param("Parameters") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(format!("Parameters[{i}] must be a string")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("Parameters must be a list of strings")),
        };

        let environment = match engine.param("EnvironmentVariables") {
            None | Some(serde_json::Value::Null) => BTreeMap::new(),
            Some(serde_json::Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Ok((k.clone(), other.to_string())),
                })
                .collect::<Result<_, ExecutorError>>()?,
            Some(_) => {
                return Err(invalid(
                    "EnvironmentVariables must be a map of names to values",
                ))
            }
        };

        let import_modules = match engine.param("ImportModules") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_input_source(v, &format!("ImportModules[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("ImportModules must be a list of InputSources")),
        };

        Ok(Self {
            entry_module,
            entrypoint,
            parameters,
            environment,
            import_modules,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module_source() -> serde_json::Value {
        serde_json::json!({"Source": {"Type": "inline", "Params": {"URL": "data:,x"}}, "Target": "/m.wasm"})
    }

    #[test]
    fn missing_entry_module_is_named() {
        let err = WasmParams::parse(&SpecConfig::new("wasm")).unwrap_err();
        assert!(err.to_string().contains("EntryModule"), "{err}");
    }

    #[test]
    fn keys_are_case_insensitive_and_defaults_apply() {
        let spec = SpecConfig::new("wasm").with_param("entrymodule", module_source());
        let params = WasmParams::parse(&spec).unwrap();
        assert_eq!(params.entrypoint, "_start");
        assert_eq!(params.entry_module.target, "/m.wasm");
        assert!(params.parameters.is_empty());
    }

    #[test]
    fn bad_parameters_are_named() {
        let spec = SpecConfig::new("wasm")
            .with_param("EntryModule", module_source())
            .with_param("Parameters", serde_json::json!(["a", 1]));
        let err = WasmParams::parse(&spec).unwrap_err();
        assert!(err.to_string().contains("Parameters[1]"), "{err}");
        let spec = SpecConfig::new("wasm")
            .with_param("EntryModule", module_source())
            .with_param("ImportModules", serde_json::json!([{"Target": "/x"}]));
        let err = WasmParams::parse(&spec).unwrap_err();
        assert!(err.to_string().contains("ImportModules[0]"), "{err}");
    }
}
