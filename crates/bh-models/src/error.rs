//! The one small error vocabulary shared by every crate; each layer maps it once to HTTP status or gRPC code.

/// What kind of failure this is, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    NotFound,
    InvalidArgument,
    Unauthenticated,
    Forbidden,
    Conflict,
    Unavailable,
    Timeout,
    Internal,
}

impl ErrorCode {
    /// The HTTP status for this code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::InvalidArgument => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::Conflict => 409,
            Self::Unavailable => 503,
            Self::Timeout => 504,
            Self::Internal => 500,
        }
    }

    /// The code name as used in error bodies (`Code` field).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NotFound",
            Self::InvalidArgument => "BadRequest",
            Self::Unauthenticated => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::Conflict => "Conflict",
            Self::Unavailable => "ServiceUnavailable",
            // Upstream's spelling (`bacerrors.TimeOutError`).
            Self::Timeout => "TimeOut",
            Self::Internal => "InternalError",
        }
    }

    /// The code for an HTTP status (used by clients reading error bodies).
    pub fn from_http_status(status: u16) -> Self {
        match status {
            400 | 413 | 422 => Self::InvalidArgument,
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 | 410 => Self::NotFound,
            409 => Self::Conflict,
            503 => Self::Unavailable,
            408 | 504 => Self::Timeout,
            _ => Self::Internal,
        }
    }
}

/// An error with a code and a message that is safe to show to a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// Shorthand for results carrying the shared error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
