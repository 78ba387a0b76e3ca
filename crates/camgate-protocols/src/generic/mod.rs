//! The generic ingest format: one event in camgate's own model, as JSON.
//!
//! Scripts and other systems `POST /api/ingest` with this body. camgate fills in `id` and
//! `received_at`; images come inline as base64 (`{"role": "source", "data": "..."}`) and are
//! written to files by the daemon.

use std::num::NonZeroU32;

use base64::Engine;
use camgate_core::event::{Counts, Face, Kind, Object, Plate, State, Vendor, bbox_is_valid};
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Longest `source` accepted, in bytes.
pub const MAX_SOURCE_LEN: usize = 128;
/// Longest `key` accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// An event as a client posts it, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestEvent {
    pub key: Option<String>,
    pub source: String,
    pub vendor: Vendor,
    pub kind: Kind,
    pub code: Option<String>,
    pub state: Option<State>,
    pub channel: Option<NonZeroU32>,
    pub rule: Option<String>,
    pub occurred_at: Option<Timestamp>,
    pub plate: Option<Plate>,
    pub face: Option<Face>,
    pub objects: Vec<Object>,
    pub counts: Option<Counts>,
    pub data: Option<serde_json::Value>,
    pub images: Vec<IngestImage>,
    pub schedule: Option<String>,
}

/// An image posted inline, already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestImage {
    pub role: String,
    pub bytes: Vec<u8>,
}

/// Why a body was refused. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("invalid JSON at `{path}`: {message}")]
    Json { path: String, message: String },
    #[error("invalid field `{field}`: {message}")]
    Field { field: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    // camgate assigns these; a client that copies an event from a camgate feed may send them.
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    received_at: Option<IgnoredAny>,
    #[serde(default)]
    key: Option<String>,
    source: String,
    #[serde(default)]
    vendor: Option<Vendor>,
    kind: Kind,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<State>,
    #[serde(default)]
    channel: Option<NonZeroU32>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    occurred_at: Option<Timestamp>,
    #[serde(default)]
    plate: Option<Plate>,
    #[serde(default)]
    face: Option<Face>,
    #[serde(default)]
    objects: Vec<Object>,
    #[serde(default)]
    counts: Option<Counts>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    images: Vec<WireImage>,
    #[serde(default)]
    schedule: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireImage {
    role: String,
    /// Base64 (standard alphabet, padding optional) of the image file.
    data: String,
}

fn field(field: impl Into<String>, message: impl Into<String>) -> IngestError {
    IngestError::Field { field: field.into(), message: message.into() }
}

/// Empty and blank strings mean "absent".
fn present(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn tidy(s: &mut Option<String>) {
    *s = present(s.take());
}

/// Absent, not empty: blank strings and empty objects inside the event become absent.
fn normalise_plate(p: &mut Plate) {
    p.number = p.number.trim().to_owned();
    tidy(&mut p.list);
    tidy(&mut p.direction);
    tidy(&mut p.color);
    if let Some(v) = &mut p.vehicle {
        tidy(&mut v.kind);
        tidy(&mut v.color);
        tidy(&mut v.brand);
        tidy(&mut v.model);
    }
    if p.vehicle.as_ref().is_some_and(|v| *v == Default::default()) {
        p.vehicle = None;
    }
}

fn normalise_face(f: &mut Face) {
    tidy(&mut f.age);
    tidy(&mut f.sex);
}

fn check_unit(name: String, v: Option<f64>, max: f64) -> Result<(), IngestError> {
    match v {
        Some(c) if !c.is_finite() || !(0.0..=max).contains(&c) => {
            Err(field(name, format!("{c} is out of range 0..{max}")))
        }
        _ => Ok(()),
    }
}

/// Parse and validate one posted event.
pub fn parse_ingest(body: &[u8]) -> Result<IngestEvent, IngestError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let w: Wire = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| IngestError::Json { path: e.path().to_string(), message: e.into_inner().to_string() })?;
    de.end().map_err(|e| IngestError::Json { path: ".".into(), message: e.to_string() })?;
    let _ = (w.id, w.received_at);

    let source = w.source.trim().to_owned();
    if source.is_empty() {
        return Err(field("source", "must not be empty"));
    }
    if source.len() > MAX_SOURCE_LEN {
        return Err(field("source", format!("longer than {MAX_SOURCE_LEN} bytes")));
    }
    let key = present(w.key);
    if key.as_ref().is_some_and(|k| k.len() > MAX_KEY_LEN) {
        return Err(field("key", format!("longer than {MAX_KEY_LEN} bytes")));
    }
    let mut plate = w.plate;
    if let Some(p) = &mut plate {
        normalise_plate(p);
        if p.number.is_empty() {
            return Err(field("plate.number", "must not be empty"));
        }
        check_unit("plate.confidence".into(), p.confidence, 100.0)?;
    }
    let mut objects = w.objects;
    for (i, o) in objects.iter_mut().enumerate() {
        o.kind = o.kind.trim().to_lowercase();
        tidy(&mut o.id);
        if o.kind.is_empty() {
            return Err(field(format!("objects[{i}].type"), "must not be empty"));
        }
        if let Some(b) = &o.bbox
            && !bbox_is_valid(b)
        {
            return Err(field(
                format!("objects[{i}].bbox"),
                format!("{b:?} is not [left, top, right, bottom] within 0..1"),
            ));
        }
        check_unit(format!("objects[{i}].confidence"), o.confidence, 1.0)?;
    }
    let mut images = Vec::with_capacity(w.images.len());
    for (i, img) in w.images.into_iter().enumerate() {
        let role = img.role.trim();
        if role.is_empty()
            || role.len() > 32
            || !role.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(field(format!("images[{i}].role"), "must be 1 to 32 letters, digits, '-' or '_'"));
        }
        let bytes = decode_base64(&img.data)
            .map_err(|e| field(format!("images[{i}].data"), format!("not valid base64: {e}")))?;
        if bytes.is_empty() {
            return Err(field(format!("images[{i}].data"), "is empty"));
        }
        images.push(IngestImage { role: role.to_owned(), bytes });
    }
    Ok(IngestEvent {
        key,
        source,
        vendor: w.vendor.unwrap_or(Vendor::Generic),
        kind: w.kind,
        code: present(w.code),
        state: w.state,
        channel: w.channel,
        rule: present(w.rule),
        occurred_at: w.occurred_at,
        plate,
        face: w
            .face
            .map(|mut f| {
                normalise_face(&mut f);
                f
            })
            .filter(|f| *f != Face::default()),
        objects,
        counts: w.counts.filter(|c| !c.is_empty()),
        data: w.data.filter(|d| !d.is_null()),
        images,
        schedule: present(w.schedule),
    })
}

/// Decode base64 with or without padding, ignoring line breaks (devices wrap at 76 columns).
pub fn decode_base64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String;
    let s = if s.contains(['\n', '\r', ' ']) {
        compact = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        &compact
    } else {
        s
    };
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(s.trim_end_matches('='))
}

#[cfg(test)]
mod tests;
