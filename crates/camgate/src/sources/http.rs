//! HTTP pieces the push sources share.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a body could not be read.
pub enum BodyError {
    TooLarge,
    TooSlow,
    Broken(String),
}

/// Read the whole body: at most `max` bytes (413 as soon as it is known to be larger,
/// from `Content-Length` before reading anything) within `deadline` in total (408).
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, BodyError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let limited = http_body_util::Limited::new(body, max);
    match tokio::time::timeout(deadline, http_body_util::BodyExt::collect(limited)).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
    }
}

impl BodyError {
    /// The status, metric reason and message to answer with.
    pub fn describe(&self, max_body: usize, body_timeout: Duration) -> (StatusCode, &'static str, String) {
        match self {
            BodyError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than webhook.max_body ({max_body} bytes)"),
            ),
            BodyError::TooSlow => (
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("the body did not arrive within webhook.body_timeout ({body_timeout:?})"),
            ),
            BodyError::Broken(e) => (StatusCode::BAD_REQUEST, "body", format!("could not read the body: {e}")),
        }
    }
}

/// A JSON error reply. After 408 and 413 the rest of the body was not read, so the
/// connection is closed.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut r = (status, Json(serde_json::json!({ "error": message.into() }))).into_response();
    if matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE) {
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}
