//! The envelope every Web Endpoint route answers with (§1.5):
//! `{"status":"success","result":{...}}`, or
//! `{"status":"error","statusCode":404,"message":"camera not found.","meta":{"code":-25,"name":"NOT_FOUND"}}`.
//!
//! Success is decided on the body's `status` **and** the HTTP status: an HTTP error is an
//! error whatever the body says, and `"status":"error"` is an error even with HTTP 200.

use std::fmt;

use serde_json::{Map, Value};

use super::{MAX_TEXT, json_type, text};
use crate::key::clip;

/// The server refused the request: its error envelope, or an HTTP error status with a body
/// in no known shape (a proxy's HTML page, an empty body). Never holds a secret: the message
/// is the server's text, clipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status of the response.
    pub http_status: u16,
    /// The envelope's `statusCode` (it repeats the HTTP status).
    pub status_code: Option<u16>,
    /// `meta.code`: Avigilon's own error number (`-25` is `NOT_FOUND`).
    pub code: Option<i64>,
    /// `meta.name` (`NOT_FOUND`, ...).
    pub name: Option<String>,
    /// `message`, or the start of a body that was not an envelope.
    pub message: Option<String>,
}

impl ApiError {
    /// The status that decides what to do: the HTTP status when it is an error, otherwise the
    /// envelope's `statusCode` (an error envelope sent with HTTP 200).
    pub fn status(&self) -> u16 {
        if self.http_status >= 400 { self.http_status } else { self.status_code.unwrap_or(self.http_status) }
    }

    /// 401 (credentials refused, or the session expired) or 403 (the session or the
    /// authorization token was not accepted, often clock skew): log in again (§1.4), and on a
    /// login that fails so, stop and report.
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), 401 | 403)
    }

    /// Worth retrying later unchanged: 408, 429, 500, 502, 503 (communication error), 504 (the
    /// Web Endpoint timed out waiting on ACC) and 507.
    pub fn is_transient(&self) -> bool {
        matches!(self.status(), 408 | 429 | 500 | 502 | 503 | 504 | 507)
    }

    /// What to do about it, for messages.
    fn hint(&self) -> &'static str {
        match self.status() {
            400 => "the request was refused as malformed",
            401 => "credentials refused or session expired; log in again",
            403 => {
                "the session or authorization token was not accepted; check the user nonce and key, and the clock (timestamp_offset)"
            }
            404 => "not found",
            500 | 502 | 503 | 504 | 507 => "server-side failure; retry later",
            _ => "",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Avigilon Web Endpoint answered HTTP {}", self.http_status)?;
        if let Some(s) = self.status_code.filter(|&s| s != self.http_status) {
            write!(f, " (statusCode {s})")?;
        }
        match (&self.name, self.code) {
            (Some(n), Some(c)) => write!(f, ", {n} ({c})")?,
            (Some(n), None) => write!(f, ", {n}")?,
            (None, Some(c)) => write!(f, ", code {c}")?,
            (None, None) => {}
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        let hint = self.hint();
        if !hint.is_empty() {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Why a response gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The server answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A success status, but not the JSON the route answers with. `what` says what is wrong
    /// (never a secret: it names fields and types, not values).
    #[error("unexpected Avigilon Web Endpoint response: {what}")]
    Invalid { what: String },
}

impl ResponseError {
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        ResponseError::Invalid { what: what.into() }
    }

    /// The server's error, when it sent one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ResponseError::Api(e) => Some(e),
            ResponseError::Invalid { .. } => None,
        }
    }

    /// See [`ApiError::is_auth`].
    pub fn is_auth(&self) -> bool {
        self.api().is_some_and(ApiError::is_auth)
    }
}

/// Read the envelope: `Ok(result)` (`None` when a success carries no `result`), or the error.
pub(crate) fn result_of(http_status: u16, body: &[u8]) -> Result<Option<Value>, ResponseError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let failed = !(200..300).contains(&http_status);
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if failed => return Err(ApiError { http_status, message: snippet(body), ..blank() }.into()),
        Err(e) => return Err(ResponseError::invalid(format!("the body is not JSON ({e})"))),
    };
    let Value::Object(mut m) = value else {
        if failed {
            return Err(ApiError { http_status, message: snippet(body), ..blank() }.into());
        }
        return Err(ResponseError::invalid(format!("the body is {}, not a JSON object", json_type(&value))));
    };
    let status = m.get("status").and_then(Value::as_str);
    if failed || status.is_some_and(|s| s.eq_ignore_ascii_case("error")) {
        return Err(api_error(http_status, &m).into());
    }
    match m.get("status") {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("success") => {}
        // Some documented answers (`/sites`) show no `status`; `result` alone is success.
        None => {}
        Some(other) => {
            let shown = other.as_str().map(|s| format!("{:?}", clip(s, 40))).unwrap_or_else(|| json_type(other).into());
            return Err(ResponseError::invalid(format!("`status` is {shown}, neither \"success\" nor \"error\"")));
        }
    }
    Ok(m.remove("result").filter(|r| !r.is_null()))
}

/// The `result` object of a success, or why there is none.
pub(crate) fn result_object(http_status: u16, body: &[u8]) -> Result<Map<String, Value>, ResponseError> {
    match result_of(http_status, body)? {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(ResponseError::invalid(format!("`result` is {}, not an object", json_type(&other)))),
        None => Err(ResponseError::invalid("a success without `result`")),
    }
}

fn blank() -> ApiError {
    ApiError { http_status: 0, status_code: None, code: None, name: None, message: None }
}

/// The error envelope's fields, each read where it has the documented type.
fn api_error(http_status: u16, m: &Map<String, Value>) -> ApiError {
    let meta = m.get("meta").and_then(Value::as_object);
    let message = match m.get("message") {
        Some(Value::String(s)) => text(s),
        // Some servers nest an object or send an array of messages: keep it as JSON text.
        Some(v @ (Value::Object(_) | Value::Array(_))) => text(&v.to_string()),
        _ => None,
    };
    ApiError {
        http_status,
        status_code: m.get("statusCode").and_then(integer).and_then(|n| u16::try_from(n).ok()),
        code: meta.and_then(|meta| meta.get("code")).and_then(integer),
        name: meta.and_then(|meta| meta.get("name")).and_then(Value::as_str).and_then(text),
        message,
    }
}

/// An integer sent as a number or a decimal string.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The start of a body that is not an envelope, as text for a message.
fn snippet(body: &[u8]) -> Option<String> {
    let cut = &body[..body.len().min(MAX_TEXT * 4)];
    let t = String::from_utf8_lossy(cut);
    let flat: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
    text(&flat)
}
