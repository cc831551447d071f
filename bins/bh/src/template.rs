//! Job-spec templating for `bh job run`: the `{{.name}}` subset of Go's text/template, with
//! `missingkey=error` semantics (a placeholder naming an unknown variable is an error).

use std::collections::BTreeMap;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// Builds the template variables: environment variables whose name matches `env_pattern`
/// (`*` means all; any other text is a regular expression searched in the name), then the
/// explicit `key=value` pairs, which win over the environment.
pub fn template_vars(
    explicit: &[String],
    env_pattern: Option<&str>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, TemplateError> {
    let mut vars = BTreeMap::new();
    if let Some(pattern) = env_pattern {
        let matcher = if pattern == "*" {
            None
        } else {
            Some(regex::Regex::new(pattern).map_err(|e| {
                TemplateError(format!("invalid --template-envs pattern '{pattern}': {e}"))
            })?)
        };
        for (name, value) in env {
            if matcher.as_ref().is_none_or(|m| m.is_match(&name)) {
                vars.insert(name, value);
            }
        }
    }
    for pair in explicit {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            TemplateError(format!(
                "invalid --template-vars value '{pair}': expected KEY=VALUE"
            ))
        })?;
        if key.trim().is_empty() {
            return Err(TemplateError(format!(
                "invalid --template-vars value '{pair}': the key is empty"
            )));
        }
        vars.insert(key.trim().to_string(), value.to_string());
    }
    Ok(vars)
}

/// Replaces every `{{ .name }}` action in `text` with the variable's value.
///
/// Supported actions: `{{.name}}` (spaces and `-` trim markers allowed) and `{{/* comments */}}`.
/// Anything else inside `{{ }}` is reported as unsupported rather than silently kept.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let line = text[..text.len() - rest.len() + start]
            .matches('\n')
            .count()
            + 1;
        let mut before = &rest[..start];
        let after_open = &rest[start + 2..];
        let end = after_open
            .find("}}")
            .ok_or_else(|| TemplateError(format!("template: line {line}: unclosed action")))?;
        let mut action = &after_open[..end];
        let mut remainder = &after_open[end + 2..];
        // `{{-` trims whitespace before the action, `-}}` after it (Go semantics).
        if let Some(stripped) = action.strip_prefix("- ") {
            action = stripped;
            before = before.trim_end();
        }
        if let Some(stripped) = action.strip_suffix(" -") {
            action = stripped;
            remainder = remainder.trim_start();
        }
        out.push_str(before);
        let action = action.trim();
        if action.starts_with("/*") && action.ends_with("*/") {
            // A comment renders as nothing.
        } else if let Some(name) = action.strip_prefix('.') {
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(TemplateError(format!(
                    "template: line {line}: unsupported action {{{{{action}}}}}: only {{{{.name}}}} placeholders are supported"
                )));
            }
            let value = vars.get(name).ok_or_else(|| {
                TemplateError(format!(
                    "template: line {line}: map has no entry for key \"{name}\" (set it with -V {name}=VALUE, or disable templating with --no-template)"
                ))
            })?;
            out.push_str(value);
        } else {
            return Err(TemplateError(format!(
                "template: line {line}: unsupported action {{{{{action}}}}}: only {{{{.name}}}} placeholders are supported (use --no-template to send the spec as is)"
            )));
        }
        rest = remainder;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replaces_placeholders_with_and_without_spaces() {
        let v = vars(&[("name", "x"), ("image", "ubuntu")]);
        assert_eq!(
            render("Name: {{.name}}\nImage: {{ .image }}\n", &v).unwrap(),
            "Name: x\nImage: ubuntu\n"
        );
    }

    #[test]
    fn unknown_variable_is_an_error_naming_it() {
        let err = render("a: {{.missing}}", &vars(&[])).unwrap_err();
        assert!(err.0.contains("\"missing\""), "{err}");
    }

    #[test]
    fn text_without_actions_is_unchanged() {
        let text = "Tasks:\n  - Name: main\n";
        assert_eq!(render(text, &vars(&[])).unwrap(), text);
    }

    #[test]
    fn unsupported_actions_and_unclosed_braces_are_errors() {
        assert!(render("{{ if .x }}", &vars(&[("x", "1")])).is_err());
        assert!(render("a {{ .x", &vars(&[("x", "1")])).is_err());
    }

    #[test]
    fn comments_and_trim_markers() {
        let v = vars(&[("x", "1")]);
        assert_eq!(render("a {{/* c */}}b", &v).unwrap(), "a b");
        assert_eq!(render("a   {{- .x -}}   b", &v).unwrap(), "a1b");
    }

    #[test]
    fn explicit_vars_win_over_environment() {
        let env = vec![
            ("FOO".to_string(), "env".to_string()),
            ("BAR".to_string(), "bar".to_string()),
            ("OTHER".to_string(), "o".to_string()),
        ];
        let v = template_vars(&["FOO=flag".to_string()], Some("^(FOO|BAR)$"), env).unwrap();
        assert_eq!(v, vars(&[("FOO", "flag"), ("BAR", "bar")]));
    }

    #[test]
    fn star_means_all_environment_variables() {
        let env = vec![("A".to_string(), "1".to_string())];
        let v = template_vars(&[], Some("*"), env).unwrap();
        assert_eq!(v, vars(&[("A", "1")]));
    }

    #[test]
    fn bad_pairs_and_patterns_name_the_flag() {
        let err = template_vars(&["novalue".to_string()], None, vec![]).unwrap_err();
        assert!(err.0.contains("--template-vars"));
        let err = template_vars(&[], Some("("), vec![]).unwrap_err();
        assert!(err.0.contains("--template-envs"));
    }
}
