//! The one place where the shared `ErrorCode` vocabulary maps to HTTP statuses and gRPC codes (side by side,
//! so the two transports cannot drift apart), plus the REST error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bh_models::api::ErrorResponse;
use bh_models::{Error, ErrorCode};

/// The HTTP status a REST answer carries for an error code.
pub fn http_status(code: ErrorCode) -> StatusCode {
    // `ErrorCode::http_status` is the vocabulary's own table; a value outside the valid range cannot come from
    // it, but fall back to 500 rather than panic.
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The gRPC code a node-protocol answer carries for an error code.
pub fn grpc_code(code: ErrorCode) -> tonic::Code {
    match code {
        ErrorCode::NotFound => tonic::Code::NotFound,
        ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
        ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
        ErrorCode::Forbidden => tonic::Code::PermissionDenied,
        ErrorCode::Conflict => tonic::Code::AlreadyExists,
        ErrorCode::Unavailable => tonic::Code::Unavailable,
        ErrorCode::Timeout => tonic::Code::DeadlineExceeded,
        ErrorCode::Internal => tonic::Code::Internal,
    }
}

/// The error code for a gRPC code (the inverse of [`grpc_code`], total over every gRPC code).
pub fn code_from_grpc(code: tonic::Code) -> ErrorCode {
    match code {
        tonic::Code::NotFound => ErrorCode::NotFound,
        tonic::Code::InvalidArgument
        | tonic::Code::OutOfRange
        | tonic::Code::FailedPrecondition => ErrorCode::InvalidArgument,
        tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
        tonic::Code::PermissionDenied => ErrorCode::Forbidden,
        tonic::Code::AlreadyExists | tonic::Code::Aborted => ErrorCode::Conflict,
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Cancelled => {
            ErrorCode::Unavailable
        }
        tonic::Code::DeadlineExceeded => ErrorCode::Timeout,
        _ => ErrorCode::Internal,
    }
}

/// A shared error as a gRPC status.
pub fn to_status(err: &Error) -> tonic::Status {
    tonic::Status::new(grpc_code(err.code), err.message.clone())
}

/// A gRPC status as a shared error.
pub fn from_status(status: &tonic::Status) -> Error {
    Error::new(code_from_grpc(status.code()), status.message().to_string())
}

/// The `Component` field of every REST error body.
pub(crate) const COMPONENT: &str = "APIServer";

/// An error answered by the REST gateway: an HTTP status and upstream's error body.
///
/// The status is usually [`http_status`] of the code; a few transport-level failures (413, 410, 405) keep their
/// own status while the body's `Code` stays within the shared vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// An error with the status from the one mapping.
    pub fn from_error(err: Error) -> Self {
        Self {
            status: http_status(err.code),
            code: err.code.as_str().to_string(),
            message: err.message,
        }
    }

    /// A 400 for a bad request parameter or body.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::from_error(Error::invalid(message))
    }

    /// An error with an explicit status.
    pub fn with_status(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    fn body(&self) -> ErrorResponse {
        ErrorResponse {
            status: self.status.as_u16(),
            message: self.message.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            code: self.code.clone(),
            component: COMPONENT.to_string(),
            hint: String::new(),
            details: None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self::from_error(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// An error followed by its sources, since the top-level messages of reqwest and tonic hide the cause
/// ("error sending request", "transport error").
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 8] = [
        ErrorCode::NotFound,
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::Internal,
    ];

    #[test]
    fn both_mappings_round_trip_every_code() {
        for code in ALL {
            assert_eq!(code_from_grpc(grpc_code(code)), code, "{code:?} via gRPC");
            assert_eq!(
                ErrorCode::from_http_status(http_status(code).as_u16()),
                code,
                "{code:?} via HTTP"
            );
        }
        let err = Error::not_found("job j-1 not found");
        assert_eq!(from_status(&to_status(&err)), err);
    }

    #[test]
    fn client_errors_are_4xx() {
        for code in [
            ErrorCode::NotFound,
            ErrorCode::InvalidArgument,
            ErrorCode::Conflict,
        ] {
            assert!(http_status(code).is_client_error(), "{code:?}");
        }
    }
}
