//! What a body is, decided on the parsed document: keepalive, alarm status, traject or
//! smart event (or why it is none of them).

use super::fields::{self, DeviceTime, clip};
use super::xml::{Doc, El};
use super::{Device, Family, ParseError, ParseOptions, Post, Reason, json, smart, status, traject};

/// What every event of one post shares.
pub(super) struct Common<'d> {
    pub family: Family,
    pub config_version: Option<String>,
    pub device: Device,
    pub time: DeviceTime<'d>,
    pub data: serde_json::Value,
}

fn error(reason: Reason, message: impl Into<String>) -> ParseError {
    ParseError { reason, message: message.into() }
}

/// Reads one body (see [`super::parse`]).
pub(super) fn parse(body: &[u8], opts: &ParseOptions) -> Result<Post, ParseError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    let body = &body[start..];
    if body.is_empty() {
        return Ok(Post::Keepalive(Device::default()));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        error(Reason::Malformed, format!("the body is not UTF-8 (invalid byte at offset {})", start + e.valid_up_to()))
    })?;
    let doc = Doc::parse(text).map_err(|e| error(Reason::Malformed, e.0))?;
    let root = doc.root();
    if root.is("DeviceInfo") {
        return Ok(Post::Keepalive(fields::device(root)));
    }
    if !root.is("config") {
        return Err(error(
            Reason::WrongRoot,
            format!("the root element is <{}>, not <config> or <DeviceInfo>", clip(root.name(), 64)),
        ));
    }
    config(root, opts, body.len())
}

/// IPC for config 1.x; NVR for 2.x, except a 2.x body without `messageType` whose
/// `smartType` is an IPC code (the reference's rule); without a version, NVR when it has a
/// `messageType`.
fn family(version: Option<&str>, message_type: Option<&str>, smart_type: Option<&str>) -> Family {
    match version.map(str::trim).and_then(|v| v.chars().next()) {
        Some('1') => Family::Ipc,
        Some('2') if message_type.is_none() && smart_type.is_some_and(smart::is_ipc_code) => Family::Ipc,
        Some('2') => Family::Nvr,
        _ if message_type.is_some() => Family::Nvr,
        _ => Family::Ipc,
    }
}

fn config(root: El<'_, '_>, opts: &ParseOptions, body_len: usize) -> Result<Post, ParseError> {
    let message_type = root.child_value("messageType");
    let smart_type = root.child_value("smartType");
    let is_status_message = message_type.is_some_and(|m| m.eq_ignore_ascii_case("alarmStatus"));
    match message_type {
        Some(m) if m.eq_ignore_ascii_case("keepalive") => return Ok(Post::Keepalive(fields::device(root))),
        Some(m) if !m.eq_ignore_ascii_case("alarmData") && !is_status_message => {
            return Err(error(
                Reason::UnknownMessageType,
                format!("messageType {:?} is none of alarmData, alarmStatus, keepalive", clip(m, 64)),
            ));
        }
        _ => {}
    }
    let version = root.attr("version");
    let common = || Common {
        family: family(version, message_type, smart_type),
        config_version: version.map(|v| clip(v, 64).to_owned()),
        device: fields::device(root),
        time: fields::device_time(root, &opts.timezone),
        data: json::document(root),
    };
    if let Some(info) = root.child("alarmStatusInfo")
        && (is_status_message || smart_type.is_none())
    {
        let events = status::parse(root, info, common(), body_len);
        if events.is_empty() {
            return Err(error(Reason::NoEvent, "alarmStatusInfo lists no alarm"));
        }
        return Ok(Post::Events(events));
    }
    if is_status_message {
        return Err(error(Reason::NoEvent, "messageType alarmStatus without alarmStatusInfo"));
    }
    if let Some(tr) = root.child("traject")
        && smart_type.is_none()
    {
        return Ok(Post::Traject(traject::parse(root, tr, common(), opts)));
    }
    if let Some(st) = smart_type {
        if !smart::is_known(st) {
            return Err(error(
                Reason::UnknownSmartType,
                format!(
                    "smartType {:?} is not one camgate knows; the post is kept as a dead letter",
                    st.chars().take(64).collect::<String>()
                ),
            ));
        }
        return Ok(Post::Events(vec![smart::parse(root, st, common(), opts)]));
    }
    Err(error(Reason::NoEvent, "a <config> without smartType, messageType, alarmStatusInfo or traject"))
}
