//! Viewtron IP cameras (IPC, config 1.x) and NVRs (config 2.x): the XML bodies they POST.
//!
//! [`parse`] classifies one body on the parsed document (never on substrings), once, and
//! returns everything it carries: keepalives with the device identity, smart events with
//! every target, rect, rule, id, state and image, alarm-status posts as start/stop
//! events, and traject (tracking) posts. Protocol facts: `docs/protocols/viewtron.md` of
//! the shared folder.
//!
//! Layout: `xml` builds a small DOM (local names, case-insensitive lookups, no entity
//! expansion, depth and size limits); `classify` decides what the body is; `smart` (smart
//! events of both families, read by layout), `lpr` (plates and faces), `status` (alarm
//! status) and `traject` build the events; `targets`, `images`, `fields` and `json` are the
//! shared pieces (objects, image decoding, device/time/key, the `data` payload).
//!
//! ```
//! use camgate_protocols::viewtron::{parse, ParseOptions, Post};
//!
//! let body = br#"<config version="2.0.0"><messageType>alarmStatus</messageType>
//!   <deviceInfo><mac>58:5B:69:40:F4:0D</mac><channelId>1</channelId></deviceInfo>
//!   <currentTime>1772056914000000</currentTime>
//!   <alarmStatusInfo><perimeterAlarm><item id="1">true</item></perimeterAlarm></alarmStatusInfo>
//! </config>"#;
//! let Ok(Post::Events(events)) = parse(body, &ParseOptions::default()) else { panic!() };
//! assert_eq!(events[0].kind, camgate_core::Kind::Intrusion);
//! assert_eq!(events[0].state, Some(camgate_core::State::Start));
//! assert_eq!(events[0].key, "58:5b:69:40:f4:0d/perimeterAlarm/ch1/r1/start/@1772056914000000");
//! ```

use std::num::NonZeroU32;

use camgate_core::{Counts, Face, Kind, Object, Plate, State};
use jiff::Timestamp;

mod classify;
mod fields;
mod images;
mod json;
mod lpr;
mod smart;
mod status;
mod targets;
mod traject;
mod xml;

#[cfg(test)]
mod tests;

use classify::Common;

/// How to read a body.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// The device's time zone, for times it sends without one (`dataTime` of alarm status).
    pub timezone: jiff::tz::TimeZone,
    /// At most this many decoded image bytes per post; further images are dropped and
    /// reported in [`Parsed::image_errors`].
    pub max_image_bytes: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { timezone: jiff::tz::TimeZone::UTC, max_image_bytes: 32 << 20 }
    }
}

/// Which XML family a post belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IP camera posting directly (`<config version="1.x">`).
    Ipc,
    /// NVR forwarding for a channel (`<config version="2.x">` with `messageType`).
    Nvr,
}

/// Who sent it, as far as the body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub name: Option<String>,
    pub ip: Option<String>,
    pub mac: Option<String>,
    pub serial: Option<String>,
    /// `deviceNo.` of IPC keepalives and alarm status.
    pub number: Option<String>,
    pub channel: Option<NonZeroU32>,
}

/// An image carried in the post, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedImage {
    /// `source` (the overview frame), `plate`, `face`, `target`, `vehicle`, ...
    pub role: String,
    pub bytes: Vec<u8>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// One event read from a post, ready to become a camgate [`Event`](camgate_core::Event)
/// (the receiver adds id, source, vendor, receive time, and prefixes `key` with the source).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub family: Family,
    /// `config/@version`.
    pub config_version: Option<String>,
    /// The reference implementation's category: `lpr`, `face`, `intrusion`, `counting`,
    /// `metadata`, `traject`, or camgate's `status` (alarm status) and `other`.
    pub category: &'static str,
    pub kind: Kind,
    /// The device's word: `smartType` (`VEHICE`, `regionIntrusion`), the alarm-status element
    /// (`perimeterAlarm`), or `traject`.
    pub code: String,
    pub state: Option<State>,
    pub channel: Option<NonZeroU32>,
    pub rule: Option<String>,
    /// The device time as a UTC instant.
    pub occurred_at: Option<Timestamp>,
    /// A device time that was present but unusable (out of range, unreadable), verbatim.
    pub time_error: Option<String>,
    pub event_id: Option<String>,
    pub plate: Option<Plate>,
    pub face: Option<Face>,
    pub objects: Vec<Object>,
    pub counts: Option<Counts>,
    pub device: Device,
    /// The whole payload as JSON, image data replaced by its length.
    pub data: serde_json::Value,
    pub images: Vec<ParsedImage>,
    /// Images present but not decodable (bad base64, over the limit): one message each.
    pub image_errors: Vec<String>,
    /// Stable idempotency key from what the device says: device id, code, event id, target
    /// id(s), rule, state and device time where present.
    pub key: String,
}

/// What one body is.
// One `Post` per request, moved once into the receiver: boxing `Traject` would cost an
// allocation per traject post (6-12 a second per target) and change the public shape.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Post {
    /// A keepalive: an empty body, an IPC `<DeviceInfo>`, or `messageType` keepalive.
    Keepalive(Device),
    /// Smart events (one) or alarm-status entries (one per alarm element and rule).
    Events(Vec<Parsed>),
    /// One tracking update (`kind` track, `objects` are the tracked targets).
    Traject(Parsed),
}

/// Why a body could not be read as a Viewtron post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Not well-formed XML (or not UTF-8, or too deeply nested).
    Malformed,
    /// Well-formed, but the root is neither `<config>` nor `<DeviceInfo>`.
    WrongRoot,
    /// A `<config>` with no `smartType`, `messageType`, alarm status or traject.
    NoEvent,
    /// An NVR `messageType` camgate does not know.
    UnknownMessageType,
    /// A `smartType` in no table camgate has (the vendor's event list or the codes the
    /// reference implementation names).
    UnknownSmartType,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "parse-error",
            Reason::WrongRoot => "wrong-root",
            Reason::NoEvent => "no-event",
            Reason::UnknownMessageType => "unknown-messageType",
            Reason::UnknownSmartType => "unknown-smartType",
        }
    }
}

/// A body that is not a Viewtron post, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", reason.as_str())]
pub struct ParseError {
    pub reason: Reason,
    pub message: String,
}

/// Read one POST body.
pub fn parse(body: &[u8], opts: &ParseOptions) -> Result<Post, ParseError> {
    classify::parse(body, opts)
}

/// The exact reply devices expect (126 bytes, no trailing newline).
pub const SUCCESS_REPLY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><config version="1.0" xmlns="http://www.ipc.com/ver10"><status>success</status></config>"#;

#[cfg(test)]
mod reply_tests {
    #[test]
    fn reply_is_126_bytes() {
        assert_eq!(super::SUCCESS_REPLY.len(), 126);
    }
}
