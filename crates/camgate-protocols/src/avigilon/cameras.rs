//! Servers and cameras (§3), and the legacy allowed-camera file (§6.1).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::response::{ResponseError, result_object};
use super::{json_type, text};

/// An ACC server of the site (`GET server/ids`): `id` is the `serverId` of `events/search`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub id: String,
    pub name: Option<String>,
}

/// A camera (`GET cameras`). Only what the poller uses is read; every field is optional but
/// `id`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Camera {
    /// The camera id: `deviceIds` of `events/search`, `cameraId` of events.
    pub id: String,
    pub name: Option<String>,
    /// The server that records it: the `serverId` to query its events on.
    pub server_id: Option<String>,
    /// `connectionState` (`CONNECTED`, ...), else `connectionStatus.state` (`LONG_FAILED`,
    /// `DISCONNECTED`, `ERROR`, `UNKNOWN`, ...).
    pub connection_state: Option<String>,
    pub connected: Option<bool>,
    pub available: Option<bool>,
    pub active: Option<bool>,
    pub location: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
}

impl Camera {
    /// Whether ACC says the camera is connected: `connected`, else a `connectionState` /
    /// `connectionStatus.state` of `CONNECTED`; `None` when it says neither.
    pub fn is_connected(&self) -> Option<bool> {
        self.connected.or_else(|| self.connection_state.as_deref().map(|s| s.eq_ignore_ascii_case("CONNECTED")))
    }
}

/// The entries of a list, and the ones that were skipped (no usable `id`), one message each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub rejected: Vec<String>,
}

/// How much `GET cameras` says per camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Neither `capabilities` nor `links`: enough for the poller.
    Low,
    /// No `links`.
    Medium,
    /// Everything (the server's default).
    High,
}

/// The query string of `GET cameras`.
pub fn cameras_query(verbosity: Verbosity) -> &'static str {
    match verbosity {
        Verbosity::Low => "verbosity=LOW",
        Verbosity::Medium => "verbosity=MEDIUM",
        Verbosity::High => "verbosity=HIGH",
    }
}

/// Read the answer of `GET server/ids`: `{"result":{"servers":[{"id","name"}]}}`.
pub fn parse_servers(http_status: u16, body: &[u8]) -> Result<Listing<Server>, ResponseError> {
    let list = list(http_status, body, "servers")?;
    Ok(collect(list, "servers", |m, id| Server { id, name: m.get("name").and_then(Value::as_str).and_then(text) }))
}

/// Read the answer of `GET cameras`: `{"result":{"cameras":[...]}}`.
pub fn parse_cameras(http_status: u16, body: &[u8]) -> Result<Listing<Camera>, ResponseError> {
    let list = list(http_status, body, "cameras")?;
    Ok(collect(list, "cameras", |m, id| {
        let s = |k: &str| m.get(k).and_then(Value::as_str).and_then(text);
        let b = |k: &str| m.get(k).and_then(Value::as_bool);
        let status_state = m
            .get("connectionStatus")
            .and_then(Value::as_object)
            .and_then(|c| c.get("state"))
            .and_then(Value::as_str)
            .and_then(text);
        Camera {
            id,
            name: s("name"),
            server_id: s("serverId"),
            connection_state: s("connectionState").or(status_state),
            connected: b("connected"),
            available: b("available"),
            active: b("active"),
            location: s("location"),
            manufacturer: s("manufacturer"),
            model: s("model"),
        }
    }))
}

/// `result.<key>` as an array; absent or of another type is an error.
fn list(http_status: u16, body: &[u8], key: &str) -> Result<Vec<Value>, ResponseError> {
    let mut result = result_object(http_status, body)?;
    match result.remove(key) {
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(ResponseError::invalid(format!("`result.{key}` is {}, not an array", json_type(&other)))),
        None => Err(ResponseError::invalid(format!("a success without `result.{key}`"))),
    }
}

fn collect<T>(list: Vec<Value>, what: &str, build: impl Fn(&Map<String, Value>, String) -> T) -> Listing<T> {
    let mut out = Listing { items: Vec::with_capacity(list.len()), rejected: Vec::new() };
    for (i, v) in list.iter().enumerate() {
        let Some(m) = v.as_object() else {
            out.rejected.push(format!("{what}[{i}] is {}, not an object", json_type(v)));
            continue;
        };
        match m.get("id").and_then(Value::as_str).and_then(text) {
            Some(id) => out.items.push(build(m, id)),
            None => out.rejected.push(format!("{what}[{i}] has no `id` string")),
        }
    }
    out
}

/// Why the allowed-camera file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraFileError {
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    #[error("the file holds {found}; it must be a JSON array of camera ids such as [\"4xIx1DMwMLSw...\", \"...\"]")]
    NotAnArray { found: &'static str },
    #[error("entry {index} (0-based) is {found}; camera ids are strings (the `id` of GET /cameras)")]
    NotAString { index: usize, found: &'static str },
    #[error("entry {index} (0-based) is an empty string")]
    Empty { index: usize },
    #[error("entry {index} (0-based) holds spaces or control characters inside the id, or is over 256 bytes")]
    Invalid { index: usize },
}

/// Read the legacy allowed-camera file (`ids_camaras_permitidas.json`, §6.1): a JSON array of
/// ACC camera ids. A UTF-8 byte-order mark is skipped; ids are trimmed; repeated ids are kept
/// once, in first-seen order. An empty array is valid (the caller decides whether it means
/// "no cameras").
pub fn parse_camera_ids(bytes: &[u8]) -> Result<Vec<String>, CameraFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let v: Value = serde_json::from_slice(bytes).map_err(|e| CameraFileError::Json {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let Value::Array(entries) = v else { return Err(CameraFileError::NotAnArray { found: json_type(&v) }) };
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(entries.len());
    for (index, e) in entries.iter().enumerate() {
        let Value::String(s) = e else { return Err(CameraFileError::NotAString { index, found: json_type(e) }) };
        let id = s.trim();
        if id.is_empty() {
            return Err(CameraFileError::Empty { index });
        }
        if id.len() > 256 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(CameraFileError::Invalid { index });
        }
        if seen.insert(id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// serde_json's message without its own " at line L column C" (the error says it already).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
