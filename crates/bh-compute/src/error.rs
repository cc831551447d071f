//! Errors of the compute node, and their mapping to the shared `bh_models::Error`.

use std::path::Path;

/// Why the compute node could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// A setting is wrong (names the setting).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file or folder could not be used.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// The execution store failed.
    #[error("execution store: {0}")]
    Store(String),
    /// An input could not be prepared (names the input).
    #[error("{0}")]
    Input(String),
    /// Results could not be published.
    #[error("publishing results failed: {0}")]
    Publish(String),
}

impl ComputeError {
    /// An I/O failure on `path`.
    pub fn io(path: &Path, error: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            message: error.to_string(),
        }
    }
}

impl From<ComputeError> for bh_models::Error {
    fn from(e: ComputeError) -> Self {
        match e {
            ComputeError::Config(_) | ComputeError::Input(_) => {
                bh_models::Error::invalid(e.to_string())
            }
            _ => bh_models::Error::internal(e.to_string()),
        }
    }
}

impl From<sled::Error> for ComputeError {
    fn from(e: sled::Error) -> Self {
        Self::Store(e.to_string())
    }
}
