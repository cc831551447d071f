//! Kubernetes-style label selectors: parsing `a=b,c!=d,env in (x,y),has,!gone,gpu>2` into
//! [`Constraint`]s, checking constraints, matching them against node labels, and explaining misses.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::job::Constraint;

/// Operator names as they travel in `Constraint.Operator`.
pub const OP_EQUALS: &str = "=";
pub const OP_DOUBLE_EQUALS: &str = "==";
pub const OP_NOT_EQUALS: &str = "!=";
pub const OP_IN: &str = "in";
pub const OP_NOT_IN: &str = "notin";
pub const OP_EXISTS: &str = "exists";
pub const OP_DOES_NOT_EXIST: &str = "!";
pub const OP_GREATER_THAN: &str = "gt";
pub const OP_LESS_THAN: &str = "lt";

/// The wire operator for an operator as written, case-insensitively, also accepting the aliases
/// `>`, `<`, `!exists` and `doesnotexist`; None when unknown.
pub fn canonical_operator(operator: &str) -> Option<&'static str> {
    let lower = operator.trim().to_ascii_lowercase();
    Some(match lower.as_str() {
        "=" => OP_EQUALS,
        "==" => OP_DOUBLE_EQUALS,
        "!=" => OP_NOT_EQUALS,
        "in" => OP_IN,
        "notin" => OP_NOT_IN,
        "exists" => OP_EXISTS,
        "!" | "!exists" | "doesnotexist" => OP_DOES_NOT_EXIST,
        "gt" | ">" => OP_GREATER_THAN,
        "lt" | "<" => OP_LESS_THAN,
        _ => return None,
    })
}

/// Parses a comma-separated selector. Commas inside `( )` belong to a value set. An empty or blank
/// selector yields no constraints. Errors name the requirement that is wrong.
pub fn parse_selector(selector: &str) -> Result<Vec<Constraint>> {
    if selector.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_requirements(selector)?
        .into_iter()
        .map(|part| {
            parse_requirement(part.trim()).map_err(|reason| {
                Error::invalid(format!(
                    "invalid selector requirement '{}': {reason}",
                    part.trim()
                ))
            })
        })
        .collect()
}

/// Splits at commas that are not inside parentheses.
fn split_requirements(selector: &str) -> Result<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    Error::invalid(format!("invalid selector '{selector}': unbalanced ')'"))
                })?
            }
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(Error::invalid(format!(
            "invalid selector '{selector}': missing ')'"
        )));
    }
    parts.push(&selector[start..]);
    Ok(parts)
}

fn parse_requirement(text: &str) -> std::result::Result<Constraint, String> {
    if text.is_empty() {
        return Err("empty requirement (check for a stray comma)".to_string());
    }
    if let Some(key) = text.strip_prefix('!') {
        if !key.contains(['=', '(']) {
            let key = key.trim();
            check_key(key)?;
            return Ok(constraint(key, OP_DOES_NOT_EXIST, Vec::new()));
        }
    }
    if let Some(open) = text.find('(') {
        let head = text[..open].trim();
        let mut words = head.split_whitespace();
        let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
            return Err("expected '<key> in (<values>)' or '<key> notin (<values>)'".to_string());
        };
        let operator = match op.to_ascii_lowercase().as_str() {
            "in" => OP_IN,
            "notin" => OP_NOT_IN,
            other => return Err(format!("unknown set operator '{other}' (use in or notin)")),
        };
        let rest = text[open + 1..].trim_end();
        let Some(inner) = rest.strip_suffix(')') else {
            return Err("expected ')' at the end of the value set".to_string());
        };
        check_key(key)?;
        let values: Vec<String> = inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(format!("'{operator}' needs at least one value"));
        }
        for value in &values {
            check_value(value)?;
        }
        return Ok(constraint(key, operator, values));
    }
    if let Some(at) = text.find(['!', '=', '<', '>']) {
        let key = text[..at].trim();
        let rest = &text[at..];
        let (operator, len) = if rest.starts_with("!=") {
            (OP_NOT_EQUALS, 2)
        } else if rest.starts_with("==") {
            (OP_DOUBLE_EQUALS, 2)
        } else if rest.starts_with('=') {
            (OP_EQUALS, 1)
        } else if rest.starts_with('>') {
            (OP_GREATER_THAN, 1)
        } else if rest.starts_with('<') {
            (OP_LESS_THAN, 1)
        } else {
            return Err("expected '!=' after the key".to_string());
        };
        let value = rest[len..].trim();
        check_key(key)?;
        check_value(value)?;
        if matches!(operator, OP_GREATER_THAN | OP_LESS_THAN) && value.parse::<i64>().is_err() {
            return Err(format!("'{value}' is not an integer"));
        }
        return Ok(constraint(key, operator, vec![value.to_string()]));
    }
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(key), None) => {
            check_key(key)?;
            Ok(constraint(key, OP_EXISTS, Vec::new()))
        }
        _ => Err("expected an operator (=, ==, !=, in, notin, >, <) between key and value".into()),
    }
}

fn constraint(key: &str, operator: &str, values: Vec<String>) -> Constraint {
    Constraint {
        key: key.to_string(),
        operator: operator.to_string(),
        values,
    }
}

fn check_key(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() {
        return Err("missing key".to_string());
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
    {
        return Err(format!("key '{key}' contains '{bad}'"));
    }
    Ok(())
}

fn check_value(value: &str) -> std::result::Result<(), String> {
    if let Some(bad) = value
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '=' | '!' | '<' | '>'))
    {
        return Err(format!("value '{value}' contains '{bad}'"));
    }
    Ok(())
}

/// Checks that a constraint has a key, a known operator and the right number of values for it.
pub fn validate_constraint(constraint: &Constraint) -> std::result::Result<(), String> {
    if constraint.key.trim().is_empty() {
        return Err("Key: missing key".to_string());
    }
    let Some(operator) = canonical_operator(&constraint.operator) else {
        return Err(format!(
            "Operator: unknown operator '{}' (use =, ==, !=, in, notin, exists, !, gt or lt)",
            constraint.operator
        ));
    };
    let n = constraint.values.len();
    match operator {
        OP_EQUALS | OP_DOUBLE_EQUALS | OP_NOT_EQUALS if n != 1 => Err(format!(
            "Values: operator '{operator}' needs exactly one value, found {n}"
        )),
        OP_IN | OP_NOT_IN if n == 0 => Err(format!(
            "Values: operator '{operator}' needs at least one value"
        )),
        OP_EXISTS | OP_DOES_NOT_EXIST if n != 0 => Err(format!(
            "Values: operator '{operator}' takes no values, found {n}"
        )),
        OP_GREATER_THAN | OP_LESS_THAN => match constraint.values.as_slice() {
            [v] if v.trim().parse::<i64>().is_ok() => Ok(()),
            [v] => Err(format!(
                "Values: operator '{operator}' needs an integer, found '{v}'"
            )),
            _ => Err(format!(
                "Values: operator '{operator}' needs exactly one value, found {n}"
            )),
        },
        _ => Ok(()),
    }
}

impl Constraint {
    /// Whether `labels` satisfy this constraint (Kubernetes semantics: `!=` and `notin` also match
    /// when the label is absent). An unknown operator never matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let in_values = |v: &String| self.values.iter().any(|want| want == v);
        match canonical_operator(&self.operator) {
            Some(OP_EQUALS | OP_DOUBLE_EQUALS | OP_IN) => value.is_some_and(in_values),
            Some(OP_NOT_EQUALS | OP_NOT_IN) => !value.is_some_and(in_values),
            Some(OP_EXISTS) => value.is_some(),
            Some(OP_DOES_NOT_EXIST) => value.is_none(),
            Some(op @ (OP_GREATER_THAN | OP_LESS_THAN)) => {
                let have = value.and_then(|v| v.trim().parse::<i64>().ok());
                let want = self
                    .values
                    .first()
                    .and_then(|v| v.trim().parse::<i64>().ok());
                match (have, want) {
                    (Some(have), Some(want)) if op == OP_GREATER_THAN => have > want,
                    (Some(have), Some(want)) => have < want,
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// Whether `labels` satisfy every constraint (true for none).
pub fn matches_all(constraints: &[Constraint], labels: &BTreeMap<String, String>) -> bool {
    constraints.iter().all(|c| c.matches(labels))
}

/// Why `labels` fail `constraint`, for messages such as
/// `label region=eu does not match region in (us)`; None when they match.
pub fn explain_mismatch(
    constraint: &Constraint,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    if constraint.matches(labels) {
        return None;
    }
    let key = &constraint.key;
    Some(
        match (canonical_operator(&constraint.operator), labels.get(key)) {
            (None, _) => format!("unknown selector operator '{}'", constraint.operator),
            (Some(OP_DOES_NOT_EXIST), Some(v)) => {
                format!("label {key}={v} is set but the selector requires {constraint}")
            }
            (Some(_), None) => format!("label {key} is not set (required by {constraint})"),
            (Some(_), Some(v)) => format!("label {key}={v} does not match {constraint}"),
        },
    )
}

/// Writes a constraint in selector syntax: `region=us`, `env in (x,y)`, `has`, `!gone`, `gpu>2`.
impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let values = self.values.join(",");
        match canonical_operator(&self.operator) {
            Some(op @ (OP_EQUALS | OP_DOUBLE_EQUALS | OP_NOT_EQUALS)) => {
                write!(f, "{key}{op}{values}")
            }
            Some(op @ (OP_IN | OP_NOT_IN)) => write!(f, "{key} {op} ({values})"),
            Some(OP_EXISTS) => write!(f, "{key}"),
            Some(OP_DOES_NOT_EXIST) => write!(f, "!{key}"),
            Some(OP_GREATER_THAN) => write!(f, "{key}>{values}"),
            Some(OP_LESS_THAN) => write!(f, "{key}<{values}"),
            _ => write!(f, "{key} {} ({values})", self.operator),
        }
    }
}

/// Writes constraints as one selector string (the inverse of [`parse_selector`]).
pub fn format_selector(constraints: &[Constraint]) -> String {
    constraints
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        let parsed =
            parse_selector("a=b,c!=d,env in (x, y),tier notin (z),has,!gone,gpu>2,mem<8,e==f")
                .unwrap();
        let got: Vec<(&str, &str, Vec<&str>)> = parsed
            .iter()
            .map(|c| {
                (
                    c.key.as_str(),
                    c.operator.as_str(),
                    c.values.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", "=", vec!["b"]),
                ("c", "!=", vec!["d"]),
                ("env", "in", vec!["x", "y"]),
                ("tier", "notin", vec!["z"]),
                ("has", "exists", vec![]),
                ("gone", "!", vec![]),
                ("gpu", "gt", vec!["2"]),
                ("mem", "lt", vec!["8"]),
                ("e", "==", vec!["f"]),
            ]
        );
        for c in &parsed {
            validate_constraint(c).unwrap();
        }
        assert_eq!(
            format_selector(&parsed),
            "a=b,c!=d,env in (x,y),tier notin (z),has,!gone,gpu>2,mem<8,e==f"
        );
        assert_eq!(parse_selector(&format_selector(&parsed)).unwrap(), parsed);
        assert!(parse_selector("  ").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("a=b,,c=d", "''"),
            ("env in x", "env in x"),
            ("env in (x", "missing ')'"),
            ("env within (x)", "within"),
            ("a b", "'a b'"),
            ("gpu>two", "'two' is not an integer"),
            ("a=b c", "contains ' '"),
            ("env in ()", "at least one value"),
            ("=x", "missing key"),
        ];
        for (selector, fragment) in cases {
            let err = parse_selector(selector).unwrap_err();
            assert!(
                err.message.contains(fragment),
                "{selector}: {} should contain {fragment}",
                err.message
            );
        }
    }

    #[test]
    fn matching() {
        let node = labels(&[("region", "eu"), ("gpu", "4"), ("arch", "arm64")]);
        let yes = "region=eu,region==eu,region in (us,eu),region!=us,tier notin (x),arch,!gone,gpu>2,gpu<5,missing!=x";
        assert!(matches_all(&parse_selector(yes).unwrap(), &node));
        for no in [
            "region=us",
            "region in (us)",
            "region notin (eu)",
            "region!=eu",
            "missing",
            "!arch",
            "gpu>4",
            "gpu<4",
            "arch>1",
            "missing=x",
        ] {
            let parsed = parse_selector(no).unwrap();
            assert!(!matches_all(&parsed, &node), "{no} should not match");
        }
        assert!(matches_all(&[], &node));
        let odd = Constraint {
            key: "region".into(),
            operator: "In".into(),
            values: vec!["eu".into()],
        };
        assert!(odd.matches(&node), "operators are case-insensitive");
        let unknown = Constraint {
            key: "region".into(),
            operator: "~".into(),
            values: vec!["eu".into()],
        };
        assert!(!unknown.matches(&node));
    }

    #[test]
    fn explanations() {
        let node = labels(&[("region", "eu")]);
        let c = &parse_selector("region in (us)").unwrap()[0];
        assert_eq!(
            explain_mismatch(c, &node).unwrap(),
            "label region=eu does not match region in (us)"
        );
        let c = &parse_selector("zone=a").unwrap()[0];
        assert_eq!(
            explain_mismatch(c, &node).unwrap(),
            "label zone is not set (required by zone=a)"
        );
        let c = &parse_selector("!region").unwrap()[0];
        assert!(explain_mismatch(c, &node).unwrap().contains("is set"));
        let c = &parse_selector("region=eu").unwrap()[0];
        assert_eq!(explain_mismatch(c, &node), None);
    }

    #[test]
    fn constraint_validation() {
        let c = |op: &str, values: &[&str]| Constraint {
            key: "k".into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        assert!(validate_constraint(&c("=", &["a"])).is_ok());
        assert!(validate_constraint(&c("=", &[])).is_err());
        assert!(validate_constraint(&c("in", &[])).is_err());
        assert!(validate_constraint(&c("in", &["a", "b"])).is_ok());
        assert!(validate_constraint(&c("exists", &["a"])).is_err());
        assert!(validate_constraint(&c("gt", &["x"])).is_err());
        assert!(validate_constraint(&c("gt", &["3"])).is_ok());
        assert!(validate_constraint(&c("like", &["a"]))
            .unwrap_err()
            .contains("unknown operator 'like'"));
        let mut no_key = c("exists", &[]);
        no_key.key.clear();
        assert!(validate_constraint(&no_key).is_err());
    }
}
