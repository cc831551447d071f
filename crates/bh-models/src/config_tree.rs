//! Layered configuration trees: case-insensitive key canonicalisation against a template, and `Key.Path=value`
//! overrides as given with `-c` on the daemons' command lines. Pure functions over `serde_json::Value`.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Rewrites the keys of `input` to the spelling used in `template`, compared case-insensitively, at every level
/// where the template has an object with entries. Keys the template lacks are an error naming their path, so
/// a misspelt setting is never silently ignored. Below an empty template object (a free map such as `Labels`)
/// keys are kept as written.
pub fn canonicalize(input: Value, template: &Value) -> Result<Value> {
    canonicalize_at(input, template, "")
}

fn canonicalize_at(input: Value, template: &Value, path: &str) -> Result<Value> {
    match (input, template) {
        (Value::Object(map), Value::Object(tmpl)) if !tmpl.is_empty() => {
            let mut out = Map::new();
            for (key, value) in map {
                let Some((canonical, child)) =
                    tmpl.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key))
                else {
                    let full = join(path, &key);
                    return Err(Error::invalid(format!(
                        "unknown configuration key '{full}'"
                    )));
                };
                let child_path = join(path, canonical);
                out.insert(
                    canonical.clone(),
                    canonicalize_at(value, child, &child_path)?,
                );
            }
            Ok(Value::Object(out))
        }
        (other, _) => Ok(other),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Turns one `Key.Path=value` override into a nested object (`{"Key":{"Path":value}}`). The value is read as
/// JSON when it parses as a number, boolean, array or object, else as a string; a comma-separated value for
/// a key whose template value is a list becomes a list of strings.
pub fn parse_override(assignment: &str, template: &Value) -> Result<Value> {
    let (path, raw) = assignment.split_once('=').ok_or_else(|| {
        Error::invalid(format!(
            "invalid -c value '{assignment}': expected Key.Path=value"
        ))
    })?;
    let parts: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::invalid(format!("invalid -c key '{path}'")));
    }
    let mut node = template;
    for part in &parts {
        node = match node {
            Value::Object(m) => m
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(part))
                .map(|(_, v)| v)
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
    }
    let value = match node {
        Value::Array(_) if !raw.trim_start().starts_with('[') => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        Value::String(_) => Value::String(raw.to_string()),
        _ => serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string())),
    };
    let mut out = value;
    for part in parts.iter().rev() {
        let mut m = Map::new();
        m.insert((*part).to_string(), out);
        out = Value::Object(m);
    }
    canonicalize(out, template)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"API": {"Host": "0.0.0.0", "Port": 1234}, "Labels": {}, "Compute": {"Orchestrators": ["a:1"]}})
    }

    #[test]
    fn keys_are_canonicalised_case_insensitively_and_free_maps_keep_keys() {
        let got = canonicalize(
            json!({"api": {"port": 9}, "labels": {"Zone": "EU"}}),
            &template(),
        )
        .unwrap();
        assert_eq!(got, json!({"API": {"Port": 9}, "Labels": {"Zone": "EU"}}));
    }

    #[test]
    fn unknown_key_names_its_path() {
        let err = canonicalize(json!({"api": {"prot": 9}}), &template()).unwrap_err();
        assert!(err.message.contains("API.prot"), "{}", err.message);
    }

    #[test]
    fn overrides_take_types_from_the_template() {
        let t = template();
        assert_eq!(
            parse_override("api.port=4321", &t).unwrap(),
            json!({"API": {"Port": 4321}})
        );
        assert_eq!(
            parse_override("API.Host=127.0.0.1", &t).unwrap(),
            json!({"API": {"Host": "127.0.0.1"}})
        );
        assert_eq!(
            parse_override("Compute.Orchestrators=h:1,h:2", &t).unwrap(),
            json!({"Compute": {"Orchestrators": ["h:1", "h:2"]}})
        );
        assert!(parse_override("nonsense", &t).is_err());
    }
}
