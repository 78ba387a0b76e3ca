//! The event model: the one JSON shape every consumer of camgate sees.
//!
//! Field names are a stable contract (`docs/events.md` documents each one). Fields that do
//! not apply to an event are absent from its JSON, never empty strings or empty arrays.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A time-ordered (UUIDv7) event id, assigned by camgate when it receives an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A new id whose first 48 bits are the current Unix time in milliseconds.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which kind of system produced the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    Dahua,
    Hikvision,
    Viewtron,
    Avigilon,
    /// Posted to `/api/ingest` by a script or another system, in camgate's own model.
    Generic,
}

/// What happened, in camgate's vocabulary. `code` keeps the vendor's own word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Motion,
    Human,
    Vehicle,
    Plate,
    Face,
    LineCrossing,
    Intrusion,
    RegionEntry,
    RegionExit,
    Loitering,
    Parking,
    Counting,
    Tamper,
    VideoLoss,
    AlarmInput,
    Doorbell,
    Access,
    Audio,
    Metadata,
    Track,
    Device,
    Other,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 22] = [
        Kind::Motion,
        Kind::Human,
        Kind::Vehicle,
        Kind::Plate,
        Kind::Face,
        Kind::LineCrossing,
        Kind::Intrusion,
        Kind::RegionEntry,
        Kind::RegionExit,
        Kind::Loitering,
        Kind::Parking,
        Kind::Counting,
        Kind::Tamper,
        Kind::VideoLoss,
        Kind::AlarmInput,
        Kind::Doorbell,
        Kind::Access,
        Kind::Audio,
        Kind::Metadata,
        Kind::Track,
        Kind::Device,
        Kind::Other,
    ];

    /// The JSON name of the kind (`line_crossing`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Motion => "motion",
            Kind::Human => "human",
            Kind::Vehicle => "vehicle",
            Kind::Plate => "plate",
            Kind::Face => "face",
            Kind::LineCrossing => "line_crossing",
            Kind::Intrusion => "intrusion",
            Kind::RegionEntry => "region_entry",
            Kind::RegionExit => "region_exit",
            Kind::Loitering => "loitering",
            Kind::Parking => "parking",
            Kind::Counting => "counting",
            Kind::Tamper => "tamper",
            Kind::VideoLoss => "video_loss",
            Kind::AlarmInput => "alarm_input",
            Kind::Doorbell => "doorbell",
            Kind::Access => "access",
            Kind::Audio => "audio",
            Kind::Metadata => "metadata",
            Kind::Track => "track",
            Kind::Device => "device",
            Kind::Other => "other",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that names no [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event kind {0:?}; expected one of: motion, human, vehicle, plate, face, line_crossing, intrusion, region_entry, region_exit, loitering, parking, counting, tamper, video_loss, alarm_input, doorbell, access, audio, metadata, track, device, other"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// Whether the event opens, closes or is a single occurrence of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The condition began (Dahua `action=Start`, Viewtron `SMART_START`).
    Start,
    /// The condition ended.
    Stop,
    /// A one-off occurrence with no duration.
    Pulse,
    /// A periodic report of a current state (Dahua `action=State`).
    State,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Start => "start",
            State::Stop => "stop",
            State::Pulse => "pulse",
            State::State => "state",
        }
    }
}

/// A licence plate read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plate {
    /// The plate text as the device read it.
    pub number: String,
    /// The device's list the plate matched (`white`, `black`, `temporary`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Recognition confidence, 0..100 as devices report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Travel direction relative to the camera (`approach`, `leave`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Plate colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<Vehicle>,
}

/// Attributes of the vehicle that carried a plate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vehicle {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Attributes of a detected face.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Face {
    /// Age or age group as the device reports it (`middleAged`, `32`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glasses: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<bool>,
}

/// A bounding box `[left, top, right, bottom]`, each coordinate a fraction of the frame (0..1).
pub type BBox = [f64; 4];

/// One target the device detected in the event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Object {
    /// What it is (`human`, `vehicle`, `face`, `plate`, `bicycle`, ...), in lower case.
    #[serde(rename = "type")]
    pub kind: String,
    /// The device's id for the target, stable while it tracks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BBox>,
    /// Detection confidence, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// Counters a counting rule reported (line or area counting).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enter: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<u64>,
    /// Targets present or counted in total, where the device says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl Counts {
    pub fn is_empty(&self) -> bool {
        self.enter.is_none() && self.exit.is_none() && self.total.is_none()
    }
}

/// A snapshot stored as a file beside the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// What the picture shows: `source` (the whole frame), `plate`, `face`, `target`, ...
    pub role: String,
    /// Path relative to the data directory, `images/YYYY/MM/DD/<id>-<role>.jpg`.
    pub path: String,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
}

/// One event, normalised from whatever the device sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: EventId,
    /// Idempotency key: the store keeps one event per key.
    pub key: String,
    /// The configured name of the device (or its address when it is not configured).
    pub source: String,
    pub vendor: Vendor,
    pub kind: Kind,
    /// The vendor's own event code (`VideoMotion`, `VEHICE`, `DEVICE_ANALYTICS_STOP`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// 1-based channel (Dahua `index=0` is channel 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<NonZeroU32>,
    /// The rule, zone or line that fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// When it happened, by the device's clock (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    /// When camgate received it (UTC, to the millisecond).
    pub received_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<Plate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face: Option<Face>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// The vendor payload as JSON, complete (image bytes excepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    /// The name of the scheduled window the event fell in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

impl Event {
    /// A minimal event; the caller fills in what the device said.
    pub fn new(key: impl Into<String>, source: impl Into<String>, vendor: Vendor, kind: Kind) -> Self {
        Event {
            id: EventId::new(),
            key: key.into(),
            source: source.into(),
            vendor,
            kind,
            code: None,
            state: None,
            channel: None,
            rule: None,
            occurred_at: None,
            received_at: crate::time::now_ms(),
            plate: None,
            face: None,
            objects: Vec::new(),
            counts: None,
            data: None,
            images: Vec::new(),
            schedule: None,
        }
    }
}

/// Whether `bbox` is a valid normalised box: finite, within 0..1, left <= right, top <= bottom.
pub fn bbox_is_valid(b: &BBox) -> bool {
    b.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)) && b[0] <= b[2] && b[1] <= b[3]
}

/// Scale a box given in `0..=max` device units to `0..1`, clamping stray values into range.
pub fn normalise_bbox(raw: [f64; 4], max_x: f64, max_y: f64) -> BBox {
    let clamp = |v: f64, max: f64| {
        if max > 0.0 && v.is_finite() { (v / max).clamp(0.0, 1.0) } else { 0.0 }
    };
    let (x1, y1, x2, y2) = (clamp(raw[0], max_x), clamp(raw[1], max_y), clamp(raw[2], max_x), clamp(raw[3], max_y));
    [x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn absent_fields_are_absent_not_empty() {
        let mut e = Event::new("k1", "front", Vendor::Dahua, Kind::Motion);
        e.received_at = "2026-11-21T15:33:41.012Z".parse().unwrap();
        let v = serde_json::to_value(&e).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["id", "key", "kind", "received_at", "source", "vendor"]);
        assert_eq!(obj["received_at"], "2026-11-21T15:33:41.012Z");
        assert_eq!(obj["vendor"], "dahua");
    }

    #[test]
    fn full_event_has_design_field_names() {
        let json = r#"{
          "id": "01932c1e-6c4e-7a3b-8f6e-0123456789ab", "key": "avigilon:srv1:88123",
          "source": "gate-north", "vendor": "dahua", "kind": "motion", "code": "VideoMotion",
          "state": "start", "channel": 1, "rule": "Region1",
          "occurred_at": "2026-11-21T15:33:41Z", "received_at": "2026-11-21T15:33:41.012Z",
          "plate": {"number": "ABC1234", "list": "white", "confidence": 99.0, "direction": "approach",
                    "color": "white", "vehicle": {"type": "saloon car", "color": "white", "brand": "x", "model": "y"}},
          "face": {"age": "middleAged", "sex": "male", "glasses": false, "mask": false},
          "objects": [{"type": "human", "id": "17", "bbox": [0.1, 0.2, 0.3, 0.5], "confidence": 0.93}],
          "counts": {"enter": 3, "exit": 1},
          "data": {"a": 1},
          "images": [{"role": "source", "path": "images/2026/11/21/x-source.jpg", "bytes": 37211, "sha256": "ab"}],
          "schedule": "Concierto A"
        }"#;
        let e: Event = serde_json::from_str(json).unwrap();
        assert_eq!(e.kind, Kind::Motion);
        assert_eq!(e.channel.map(NonZeroU32::get), Some(1));
        assert_eq!(e.plate.as_ref().unwrap().vehicle.as_ref().unwrap().kind.as_deref(), Some("saloon car"));
        let back: serde_json::Value = serde_json::to_value(&e).unwrap();
        let orig: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, orig, "serialising must reproduce the same JSON");
    }

    #[test]
    fn channel_zero_is_rejected() {
        let json = r#"{"id":"01932c1e-6c4e-7a3b-8f6e-0123456789ab","key":"k","source":"s","vendor":"generic","kind":"other","channel":0,"received_at":"2026-11-21T15:33:41Z"}"#;
        assert!(serde_json::from_str::<Event>(json).is_err());
    }

    #[test]
    fn kind_names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!("Motion".parse::<Kind>().is_err());
    }

    #[test]
    fn ids_are_v7_and_time_ordered() {
        let a = EventId::new();
        let b = EventId::new();
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b);
    }

    #[test]
    fn dahua_box_normalises() {
        let b = normalise_bbox([819.1, 1638.2, 4095.5, 8191.0], 8191.0, 8191.0);
        assert!((b[0] - 0.1).abs() < 1e-3 && (b[3] - 1.0).abs() < 1e-9);
        assert!(bbox_is_valid(&b));
    }

    proptest! {
        #[test]
        fn normalised_boxes_are_always_valid(raw in proptest::array::uniform4(-1e6f64..1e6), mx in 0.0f64..1e5, my in 0.0f64..1e5) {
            prop_assert!(bbox_is_valid(&normalise_bbox(raw, mx, my)));
        }
    }
}
