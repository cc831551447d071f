//! On-disk encodings: versioned JSON record envelopes, sortable index keys, and opaque page tokens.
//!
//! Records are stored as `{"v":1,"data":{...}}` so the format can evolve: a reader meets an unknown
//! version as an error, never a panic or a silent misread.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};

/// The record format version this build writes and reads.
pub(crate) const RECORD_VERSION: u64 = 1;

/// Separates variable-length key parts; IDs, names and namespaces may not contain it.
pub(crate) const SEP: u8 = 0;

/// Index tag under which every job is listed regardless of namespace. Real namespaces are never
/// empty (the store normalises empty to `default`), so this cannot collide with one.
pub(crate) const ALL_NAMESPACES_TAG: &str = "";

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u64,
    data: &'a T,
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u64,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    data: T,
}

/// Encodes `value` in the current envelope. `what` and `key` name the record in errors.
pub(crate) fn encode<T: Serialize>(
    what: &'static str,
    key: &str,
    value: &T,
) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(&EnvelopeOut {
        v: RECORD_VERSION,
        data: value,
    })
    .map_err(|e| StoreError::Encode {
        what,
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Decodes an envelope, refusing unknown versions and malformed bytes with an error naming the record.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    key: &str,
    bytes: &[u8],
) -> StoreResult<T> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        what,
        key: key.to_string(),
        reason: e.to_string(),
    };
    let probe: VersionProbe = serde_json::from_slice(bytes).map_err(corrupt)?;
    if probe.v != RECORD_VERSION {
        return Err(StoreError::UnsupportedVersion {
            what,
            key: key.to_string(),
            version: probe.v,
            supported: RECORD_VERSION,
        });
    }
    let envelope: EnvelopeIn<T> = serde_json::from_slice(bytes).map_err(corrupt)?;
    Ok(envelope.data)
}

/// Big-endian bytes of `t` with the sign bit flipped, so byte order equals numeric order.
pub(crate) fn sortable_i64(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1u64 << 63)).to_be_bytes()
}

/// `first` SEP `rest`: a key whose first part is variable-length.
pub(crate) fn compound_key(first: &str, rest: &[&[u8]]) -> Vec<u8> {
    let len = first.len() + 1 + rest.iter().map(|r| r.len()).sum::<usize>();
    let mut key = Vec::with_capacity(len);
    key.extend_from_slice(first.as_bytes());
    key.push(SEP);
    for part in rest {
        key.extend_from_slice(part);
    }
    key
}

/// The prefix shared by every key whose first part is `first`.
pub(crate) fn prefix_of(first: &str) -> Vec<u8> {
    compound_key(first, &[])
}

/// The smallest key greater than every key starting with `prefix` (prefix ends in SEP, so bump it).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// The order of a job listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobOrder {
    Created,
    Modified,
    Id,
}

impl JobOrder {
    /// Parses `order_by` (empty: by creation time).
    pub(crate) fn parse(order_by: &str) -> StoreResult<Self> {
        match order_by.to_ascii_lowercase().as_str() {
            "" | "created_at" | "create_time" | "createtime" => Ok(Self::Created),
            "modified_at" | "modify_time" | "modifytime" | "updated_at" => Ok(Self::Modified),
            "id" => Ok(Self::Id),
            other => Err(StoreError::Invalid(format!(
                "order_by: unsupported value {other:?} (use created_at, modified_at or id)"
            ))),
        }
    }

    fn token_byte(self) -> u8 {
        match self {
            Self::Created => b'c',
            Self::Modified => b'm',
            Self::Id => b'i',
        }
    }

    /// The part of an index key after the namespace tag: the sort value, then the ID to break ties.
    pub(crate) fn sort_suffix(self, create_time: i64, modify_time: i64, id: &str) -> Vec<u8> {
        let mut suffix = Vec::with_capacity(8 + id.len());
        match self {
            Self::Created => suffix.extend_from_slice(&sortable_i64(create_time)),
            Self::Modified => suffix.extend_from_slice(&sortable_i64(modify_time)),
            Self::Id => {}
        }
        suffix.extend_from_slice(id.as_bytes());
        suffix
    }
}

/// Version byte of the page-token format.
const TOKEN_FORMAT: u8 = 1;

/// Token for the job page that starts after the index entry with `suffix`.
pub(crate) fn job_token(order: JobOrder, suffix: &[u8]) -> String {
    let mut raw = vec![TOKEN_FORMAT, order.token_byte()];
    raw.extend_from_slice(suffix);
    hex::encode(raw)
}

/// The index suffix a job page token continues after.
pub(crate) fn parse_job_token(order: JobOrder, token: &str) -> StoreResult<Vec<u8>> {
    let invalid = || StoreError::Invalid(format!("next_token: invalid page token {token:?}"));
    let raw = hex::decode(token).map_err(|_| invalid())?;
    match raw.as_slice() {
        [TOKEN_FORMAT, order_byte, suffix @ ..] => {
            if *order_byte != order.token_byte() {
                return Err(StoreError::Invalid(format!(
                    "next_token: token {token:?} belongs to another order_by"
                )));
            }
            Ok(suffix.to_vec())
        }
        _ => Err(invalid()),
    }
}

/// Token for the history page that starts after SeqNum `seq`.
pub(crate) fn history_token(seq: u64) -> String {
    let mut raw = vec![TOKEN_FORMAT, b'h'];
    raw.extend_from_slice(&seq.to_be_bytes());
    hex::encode(raw)
}

/// The SeqNum a history page token continues after.
pub(crate) fn parse_history_token(token: &str) -> StoreResult<u64> {
    let invalid = || StoreError::Invalid(format!("next_token: invalid page token {token:?}"));
    let raw = hex::decode(token).map_err(|_| invalid())?;
    match raw.as_slice() {
        [TOKEN_FORMAT, b'h', seq @ ..] => {
            let bytes: [u8; 8] = seq.try_into().map_err(|_| invalid())?;
            Ok(u64::from_be_bytes(bytes))
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_i64_orders_like_numbers() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in values.windows(2) {
            assert!(sortable_i64(pair[0]) < sortable_i64(pair[1]));
        }
    }

    #[test]
    fn envelope_round_trips_and_rejects_unknown_versions() {
        let bytes = encode("job", "j-1", &vec![1, 2, 3]).unwrap();
        assert_eq!(bytes, br#"{"v":1,"data":[1,2,3]}"#);
        let back: Vec<i32> = decode("job", "j-1", &bytes).unwrap();
        assert_eq!(back, vec![1, 2, 3]);

        let err = decode::<Vec<i32>>("job", "j-1", br#"{"v":2,"data":{"x":1}}"#).unwrap_err();
        assert!(matches!(
            err,
            StoreError::UnsupportedVersion { version: 2, .. }
        ));
        let err = decode::<Vec<i32>>("job", "j-1", b"\xff not json").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        let err = decode::<Vec<i32>>("job", "j-1", br#"{"data":[1]}"#).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
    }

    #[test]
    fn tokens_round_trip_and_check_their_order() {
        let suffix = JobOrder::Created.sort_suffix(5, 9, "j-1");
        let token = job_token(JobOrder::Created, &suffix);
        assert_eq!(parse_job_token(JobOrder::Created, &token).unwrap(), suffix);
        assert!(parse_job_token(JobOrder::Id, &token).is_err());
        assert!(parse_job_token(JobOrder::Id, "zz").is_err());
        assert_eq!(parse_history_token(&history_token(42)).unwrap(), 42);
        assert!(parse_history_token(&token).is_err());
    }
}
