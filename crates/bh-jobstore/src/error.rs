//! The store's internal error type and its mapping to the shared `bh_models::Error` at the crate boundary.

use bh_models::{Error, ErrorCode};

/// Everything that can go wrong inside the store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("{what} {key}: cannot decode stored record: {reason}")]
    Corrupt {
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error("{what} {key}: stored record has unsupported format version {version} (this build reads version {supported})")]
    UnsupportedVersion {
        what: &'static str,
        key: String,
        version: u64,
        supported: u64,
    },
    #[error("cannot encode {what} {key}: {reason}")]
    Encode {
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        let code = match &err {
            StoreError::Storage(_)
            | StoreError::Corrupt { .. }
            | StoreError::UnsupportedVersion { .. }
            | StoreError::Encode { .. } => ErrorCode::Internal,
            StoreError::Conflict(_) => ErrorCode::Conflict,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::Invalid(_) => ErrorCode::InvalidArgument,
        };
        Error::new(code, err.to_string())
    }
}

/// Result inside the crate.
pub(crate) type StoreResult<T> = std::result::Result<T, StoreError>;
