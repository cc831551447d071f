//! Identifiers: `j-`, `e-`, `n-` and `v-` prefixed UUIDs, and short-prefix matching.

/// Prefix of job IDs.
pub const JOB_ID_PREFIX: &str = "j-";
/// Prefix of execution IDs.
pub const EXECUTION_ID_PREFIX: &str = "e-";
/// Prefix of node IDs.
pub const NODE_ID_PREFIX: &str = "n-";
/// Prefix of evaluation IDs.
pub const EVALUATION_ID_PREFIX: &str = "v-";

/// A new job ID.
pub fn new_job_id() -> String {
    format!("{JOB_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// A new execution ID.
pub fn new_execution_id() -> String {
    format!("{EXECUTION_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// A new node ID.
pub fn new_node_id() -> String {
    format!("{NODE_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// A new evaluation ID.
pub fn new_evaluation_id() -> String {
    format!("{EVALUATION_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// The short form shown in tables: prefix plus the first 8 hex digits (`j-28c08f7f`).
pub fn short_id(id: &str) -> &str {
    let prefix_len = id.find('-').map(|i| i + 1).unwrap_or(0);
    let end = (prefix_len + 8).min(id.len());
    id.get(..end).unwrap_or(id)
}

/// Whether `query` names `full_id`: the same ID, or a non-empty prefix of it (`j-28c08f7f`).
pub fn id_matches(full_id: &str, query: &str) -> bool {
    !query.is_empty() && full_id.starts_with(query)
}

/// The one ID among `candidates` that `query` names: an exact match wins, else the single ID it
/// is a prefix of. NotFound when none matches; InvalidArgument when the prefix is ambiguous.
pub fn resolve_id_prefix<'a, I>(candidates: I, query: &str) -> crate::Result<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut matched: Vec<&'a str> = Vec::new();
    for id in candidates {
        if id == query {
            return Ok(id);
        }
        if id_matches(id, query) {
            matched.push(id);
        }
    }
    match matched.as_slice() {
        [one] => Ok(one),
        [] => Err(crate::Error::not_found(format!("no ID matches '{query}'"))),
        many => Err(crate::Error::invalid(format!(
            "'{query}' is ambiguous: it matches {} IDs ({})",
            many.len(),
            many.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefixes_and_short_forms() {
        let id = new_job_id();
        assert!(id.starts_with("j-"));
        assert_eq!(short_id(&id).len(), 10);
        assert!(new_execution_id().starts_with("e-"));
        assert!(new_node_id().starts_with("n-"));
        assert!(new_evaluation_id().starts_with("v-"));
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn prefix_matching() {
        assert!(id_matches("j-28c08f7f-aaaa", "j-28c0"));
        assert!(id_matches("j-28c08f7f-aaaa", "j-28c08f7f-aaaa"));
        assert!(!id_matches("j-28c08f7f-aaaa", ""));
        assert!(!id_matches("j-28c08f7f-aaaa", "j-28d"));
        let ids = ["j-abc1", "j-abc2", "j-abd"];
        assert_eq!(resolve_id_prefix(ids, "j-abd").unwrap(), "j-abd");
        assert_eq!(resolve_id_prefix(ids, "j-abc1").unwrap(), "j-abc1");
        let ambiguous = resolve_id_prefix(ids, "j-abc").unwrap_err();
        assert_eq!(ambiguous.code, crate::ErrorCode::InvalidArgument);
        let missing = resolve_id_prefix(ids, "j-x").unwrap_err();
        assert_eq!(missing.code, crate::ErrorCode::NotFound);
        // An exact ID wins even when it is also a prefix of another.
        assert_eq!(resolve_id_prefix(["j-a", "j-ab"], "j-a").unwrap(), "j-a");
    }
}
