//! Errors as `application/problem+json` (RFC 9457).
//!
//! Every error a route returns is an [`ApiError`]: an HTTP status, a stable
//! machine-readable `code` (also the last part of the `type` URI), a short `title`
//! and a `detail` for humans. A client's mistake is always a 4xx; a 5xx means the server
//! or its disk failed. The codes are listed in `docs/http-api.md`.

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::codec::CodecError;
use crate::engine::Error as EngineError;
use crate::index::IndexError;
use crate::instance::LookupError;

/// The media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `key-not-found`.
    pub code: &'static str,
    /// What happened, for humans.
    pub detail: String,
}

/// The body of an error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:lsm:problem:{code}`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the kind of problem (the status text).
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
}

impl ApiError {
    /// An error with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// 400: a query parameter or path segment is malformed.
    pub fn bad_parameter(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-parameter", detail)
    }

    /// 422: a well-formed body whose content is not acceptable.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body", detail)
    }

    /// 404: no such key.
    pub fn key_not_found(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "key-not-found",
            format!("key {key:?} does not exist"),
        )
    }

    /// 500: something failed that is not the client's doing.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// The body of this error.
    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: format!("urn:lsm:problem:{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

/// What an error response tells the request log (a response extension): the code,
/// and for server errors the detail. The request middleware logs it with the request
/// ([`super::metrics::track`]), so an error is logged once, with its route and latency.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    /// The problem's code.
    pub code: &'static str,
    /// The detail of a 5xx (client errors are not logged with theirs).
    pub detail: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorInfo {
            code: self.code,
            detail: self.status.is_server_error().then_some(self.detail),
        });
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            EngineError::InvalidKey(_) | EngineError::KeyTooLarge { .. } => {
                (S::UNPROCESSABLE_ENTITY, "invalid-key")
            }
            EngineError::ValueTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "value-too-large"),
            EngineError::BatchTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "batch-too-large"),
            EngineError::Poisoned(_) | EngineError::Background(_) | EngineError::Closed => {
                (S::SERVICE_UNAVAILABLE, "instance-unavailable")
            }
            _ => (S::INTERNAL_SERVER_ERROR, "storage-error"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<CodecError> for ApiError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-value", m)
            }
            CodecError::Failed(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "plugin-failed",
                e.to_string(),
            ),
            CodecError::Undecodable(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "undecodable-value",
                e.to_string(),
            ),
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        use StatusCode as S;
        let e = match e {
            IndexError::Engine(inner) => return ApiError::from(inner),
            other => other,
        };
        let (status, code) = match &e {
            IndexError::Engine(_) => (S::INTERNAL_SERVER_ERROR, "storage-error"),
            IndexError::Damaged(_) => (S::INTERNAL_SERVER_ERROR, "index-damaged"),
            IndexError::UnknownIndex { .. } => (S::NOT_FOUND, "index-not-found"),
            IndexError::Exists(_) => (S::CONFLICT, "index-exists"),
            IndexError::NotReady { .. } => (S::CONFLICT, "index-not-ready"),
            IndexError::Invalid(_) => (S::UNPROCESSABLE_ENTITY, "invalid-query"),
            IndexError::Rejected { .. } => (S::UNPROCESSABLE_ENTITY, "extractor-rejected"),
            IndexError::TooManyPostings(_) => (S::UNPROCESSABLE_ENTITY, "query-too-broad"),
            IndexError::Timeout(_) => (S::UNPROCESSABLE_ENTITY, "query-timeout"),
            IndexError::BadCursor(_) => (S::BAD_REQUEST, "invalid-cursor"),
            IndexError::CursorExpired => (S::GONE, "cursor-expired"),
            IndexError::ReservedKey => (S::UNPROCESSABLE_ENTITY, "invalid-key"),
            IndexError::FromFile(_) => (S::CONFLICT, "index-from-file"),
            IndexError::Disabled(_) => (S::FORBIDDEN, "queries-disabled"),
            IndexError::Conflict(_) => (S::CONFLICT, "conflict"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "instance-not-found", e.to_string())
            }
            LookupError::Unavailable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "instance-unavailable",
                e.to_string(),
            ),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::invalid_body(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed-json", e.body_text())
            }
            JsonRejection::MissingJsonContentType(e) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                e.body_text(),
            ),
            JsonRejection::BytesRejection(e) => e.into(),
            other => ApiError::new(other.status(), "invalid-body", other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "the request body is larger than the server's max_body_size",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "unreadable-body", r.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_parameter(r.body_text())
    }
}

/// Result of a route.
pub type ApiResult<T> = Result<T, ApiError>;
