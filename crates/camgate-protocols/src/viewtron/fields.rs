//! Field readers shared by every post shape: device identity, device time, numbers, boxes,
//! target types and the idempotency key.

use std::num::NonZeroU32;

use camgate_core::State;
use camgate_core::event::{BBox, bbox_is_valid, normalise_bbox};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::Device;
use super::xml::El;
use crate::key::KeyBuilder;

/// Longest raw value copied into an error field or message.
pub(super) const MAX_RAW: usize = 256;

pub(super) use crate::key::clip;

/// The device identity: `deviceInfo/*` (NVR, alarm status, keepalives) first, then the
/// top-level fields of IPC fw 5.3 posts (`mac`, `sn`, `deviceName`, `channelId`) and of the
/// `<DeviceInfo>` keepalive root (`DeviceName`, `DeviceNo.`, `SN`, `ipAddress`, `macAddress`).
/// Values longer than 256 bytes are cut (they are copied into every event of a post).
pub(super) fn device(root: El<'_, '_>) -> Device {
    let info = root.child("deviceInfo");
    let get = |names: &[&str]| -> Option<String> {
        let v = info.and_then(|i| i.child_value_any(names)).or_else(|| root.child_value_any(names))?;
        Some(clip(v, MAX_RAW).to_owned())
    };
    Device {
        name: get(&["deviceName"]),
        ip: get(&["ip", "ipAddress"]),
        mac: get(&["mac", "macAddress"]),
        serial: get(&["sn", "serialNumber"]),
        number: get(&["deviceNo.", "deviceNo"]),
        channel: get(&["channelId", "channel"]).and_then(|c| channel(&c)),
    }
}

/// A 1-based channel number; `0` and anything unreadable are no channel.
pub(super) fn channel(s: &str) -> Option<NonZeroU32> {
    s.trim().parse::<u32>().ok().and_then(NonZeroU32::new)
}

/// An unsigned integer field.
pub(super) fn uint(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A finite, non-negative number.
pub(super) fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// The time the device put in the post.
#[derive(Debug, Default)]
pub(super) struct DeviceTime<'d> {
    /// The text as sent (part of the key).
    pub raw: Option<&'d str>,
    pub at: Option<Timestamp>,
    /// The raw text when it could not be read.
    pub error: Option<String>,
}

/// `currentTime` (epoch in µs, ms or s) or else `dataTime` (a local time string in `tz`).
pub(super) fn device_time<'d>(root: El<'d, '_>, tz: &TimeZone) -> DeviceTime<'d> {
    let (raw, at) = if let Some(raw) = root.child_value("currentTime") {
        (raw, epoch(raw))
    } else if let Some(raw) = root.child_value("dataTime") {
        (raw, local_time(raw, tz))
    } else {
        return DeviceTime::default();
    };
    DeviceTime { raw: Some(raw), at, error: at.is_none().then(|| clip(raw, MAX_RAW).to_owned()) }
}

/// An epoch integer: ≥ 1e15 is microseconds, ≥ 1e12 milliseconds, else seconds. Zero (an
/// unset clock), out-of-range and non-integer values are unusable.
pub(super) fn epoch(raw: &str) -> Option<Timestamp> {
    let v = i64::try_from(uint(raw)?).ok()?;
    let ts = if v >= 1_000_000_000_000_000 {
        Timestamp::from_microsecond(v)
    } else if v >= 1_000_000_000_000 {
        Timestamp::from_millisecond(v)
    } else if v > 0 {
        Timestamp::from_second(v)
    } else {
        return None;
    };
    ts.ok()
}

/// IPC alarm-status `dataTime`: `MM-DD-YYYY hh:mm:ss AM` or `YYYY-MM-DD hh:mm:ss` (and the
/// obvious variants), a wall-clock time in the device's zone.
pub(super) fn local_time(raw: &str, tz: &TimeZone) -> Option<Timestamp> {
    const FORMATS: [&str; 6] = [
        "%Y-%m-%d %H:%M:%S",
        "%m-%d-%Y %I:%M:%S %p",
        "%m-%d-%Y %H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%m/%d/%Y %I:%M:%S %p",
        "%Y-%m-%dT%H:%M:%S",
    ];
    let raw = raw.trim();
    if raw.len() > 64 {
        return None;
    }
    FORMATS.iter().find_map(|f| {
        let dt = jiff::fmt::strtime::parse(f, raw).ok()?.to_datetime().ok()?;
        tz.to_ambiguous_timestamp(dt).compatible().ok()
    })
}

/// A box from `x1,y1,x2,y2` children in `0..=max` units. `None` when a coordinate is missing,
/// beyond the scale, or the box has no area (devices send all zeros for "no box").
pub(super) fn rect(el: El<'_, '_>, max_x: f64, max_y: f64) -> Option<BBox> {
    let c = |n: &str| el.child_value(n).and_then(number);
    corners([c("x1")?, c("y1")?, c("x2")?, c("y2")?], max_x, max_y)
}

/// A box from the four corner points `leftTop`, `rightTop`, `leftBottom`, `rightBottom`
/// (IPC fw 5.3 LPR, 0..10000).
pub(super) fn corner_points(item: El<'_, '_>, max: f64) -> Option<BBox> {
    let mut xs = Vec::with_capacity(4);
    let mut ys = Vec::with_capacity(4);
    for name in ["leftTop", "rightTop", "leftBottom", "rightBottom"] {
        let p = item.child(name)?;
        xs.push(p.child_value("x").and_then(number)?);
        ys.push(p.child_value("y").and_then(number)?);
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max_of = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    corners([min(&xs), min(&ys), max_of(&xs), max_of(&ys)], max, max)
}

/// A box from `x`, `y`, `width`, `height` children in pixels of a `w` × `h` frame; an empty
/// coordinate element reads as 0 (fw 5.3 writes `<y type="uint32"/>` for a car at the top).
pub(super) fn pixel_rect(el: El<'_, '_>, w: f64, h: f64) -> Option<BBox> {
    let c = |n: &str| el.child(n).map(|e| if e.text().is_empty() { Some(0.0) } else { number(e.text()) });
    let (x, y) = (c("x")??, c("y")??);
    let (bw, bh) = (c("width")??, c("height")??);
    corners([x, y, x + bw, y + bh], w, h)
}

fn corners(raw: [f64; 4], max_x: f64, max_y: f64) -> Option<BBox> {
    let [x1, y1, x2, y2] = raw;
    if !(max_x > 0.0 && max_y > 0.0) || x1 == x2 || y1 == y2 {
        return None;
    }
    if raw.iter().any(|v| !v.is_finite() || *v < 0.0) || x1.max(x2) > max_x || y1.max(y2) > max_y {
        return None;
    }
    Some(normalise_bbox(raw, max_x, max_y)).filter(bbox_is_valid)
}

/// camgate's word for a target type: IPC numbers (1 person, 2 car, 4 bike) and the
/// NVR/traject words (`person`, `car`, `motor`). Unknown words are kept in lower case,
/// unknown numbers and empty values give `None`.
pub(super) fn target_kind(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let known = match raw.to_ascii_lowercase().as_str() {
        "" => return None,
        "1" | "person" | "human" | "pedestrian" => "human",
        "2" | "car" | "vehicle" => "vehicle",
        "4" | "bike" | "bicycle" => "bicycle",
        "motor" | "motorcycle" | "motorbike" => "motorcycle",
        "face" => "face",
        "plate" => "plate",
        other if other.bytes().all(|b| b.is_ascii_digit()) => return None,
        other => return Some(clip(other, 32).to_owned()),
    };
    Some(known.to_owned())
}

/// A confidence as 0..1, from 0..1, a percentage or 0..10000.
pub(super) fn unit_confidence(v: f64) -> Option<f64> {
    let c = if v <= 1.0 {
        v
    } else if v <= 100.0 {
        v / 100.0
    } else if v <= 10_000.0 {
        v / 10_000.0
    } else {
        return None;
    };
    Some(c).filter(|c| c.is_finite())
}

/// `SMART_START` / `SMART_STOP` / `SMART_PROCEDURE` (`SMART_NONE` and others: none).
pub(super) fn smart_status(raw: &str) -> Option<State> {
    match raw.trim().to_ascii_uppercase().as_str() {
        "SMART_START" | "START" => Some(State::Start),
        "SMART_STOP" | "STOP" => Some(State::Stop),
        "SMART_PROCEDURE" | "PROCEDURE" => Some(State::State),
        _ => None,
    }
}

/// The parts of an idempotency key.
pub(super) struct KeyParts<'k> {
    pub device: &'k Device,
    pub code: &'k str,
    pub event_ids: &'k [&'k str],
    pub target_ids: &'k [&'k str],
    pub rule: Option<&'k str>,
    pub state: Option<State>,
    pub time: Option<&'k str>,
}

/// `device/code[/chN][/e..][/t..][/r..][/state][/@time]`. The device is its MAC (lower
/// case; all-zero MACs are placeholders), else serial, IP, name, else `-`. `/` and `%` in
/// parts are percent-escaped so parts cannot run into each other.
pub(super) fn key(p: &KeyParts<'_>) -> String {
    let d = p.device;
    let mac = d.mac.as_deref().filter(|m| m.bytes().any(|b| b.is_ascii_alphanumeric() && b != b'0'));
    let id = mac
        .map(str::to_ascii_lowercase)
        .or_else(|| d.serial.clone())
        .or_else(|| d.ip.clone())
        .or_else(|| d.name.clone())
        .unwrap_or_else(|| "-".to_owned());
    let mut k = KeyBuilder::new();
    k.part("", &id).part("", p.code);
    if let Some(ch) = d.channel {
        k.channel(ch);
    }
    if !p.event_ids.is_empty() {
        k.part("e", &p.event_ids.join(","));
    }
    if !p.target_ids.is_empty() {
        k.part("t", &p.target_ids.join(","));
    }
    if let Some(r) = p.rule {
        k.part("r", r);
    }
    if let Some(s) = p.state {
        k.part("", s.as_str());
    }
    if let Some(t) = p.time {
        k.part("@", t);
    }
    k.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_units() {
        let at = |s: &str| epoch(s).map(|t| t.to_string());
        assert_eq!(at("1772056914604000").as_deref(), Some("2026-02-25T22:01:54.604Z"));
        assert_eq!(at("1772056914604").as_deref(), Some("2026-02-25T22:01:54.604Z"));
        assert_eq!(at("1772056914").as_deref(), Some("2026-02-25T22:01:54Z"));
        for bad in ["17722102684730000000", "99999999999999999999", "-1", "0", "12a", "", " "] {
            assert_eq!(epoch(bad), None, "{bad}");
        }
    }

    #[test]
    fn local_times_in_the_device_zone() {
        let bogota = TimeZone::get("America/Bogota").unwrap();
        let t = local_time("11-19-2025 12:15:11 PM", &bogota).unwrap();
        assert_eq!(t.to_string(), "2025-11-19T17:15:11Z");
        let t = local_time("10-07-2026 05:24:48 AM", &TimeZone::UTC).unwrap();
        assert_eq!(t.to_string(), "2026-10-07T05:24:48Z");
        let t = local_time("2026-03-29 09:58:21", &TimeZone::UTC).unwrap();
        assert_eq!(t.to_string(), "2026-03-29T09:58:21Z");
        assert_eq!(local_time("13-45-2026 99:00:00 PM", &TimeZone::UTC), None);
    }

    #[test]
    fn keys_are_bounded_and_escaped() {
        let d = Device { mac: Some("58:5B:69:40:F4:0D".into()), channel: NonZeroU32::new(2), ..Default::default() };
        let k = key(&KeyParts {
            device: &d,
            code: "a/b",
            event_ids: &["9"],
            target_ids: &["1", "2"],
            rule: Some("1"),
            state: Some(State::Start),
            time: Some("17"),
        });
        assert_eq!(k, "58:5b:69:40:f4:0d/a%2Fb/ch2/e9/t1,2/r1/start/@17");
        let zero = Device { mac: Some("00:00:00:00:00:00".into()), serial: Some("SN1".into()), ..Default::default() };
        let long = "x".repeat(1000);
        let parts = |t: &'static str| KeyParts {
            device: &zero,
            code: "c",
            event_ids: &[],
            target_ids: &[],
            rule: None,
            state: None,
            time: Some(t),
        };
        assert!(key(&parts("1")).starts_with("SN1/c/@1"));
        let long: &'static str = Box::leak(long.into_boxed_str());
        let a = key(&parts(long));
        assert!(a.len() <= crate::key::MAX_KEY, "{}", a.len());
        assert_eq!(a, key(&parts(long)));
    }

    #[test]
    fn boxes() {
        assert_eq!(corners([0.0, 0.0, 0.0, 0.0], 10000.0, 10000.0), None);
        assert_eq!(corners([1.0, 2.0, 20000.0, 3.0], 10000.0, 10000.0), None);
        assert_eq!(corners([1000.0, 2000.0, 3000.0, 4000.0], 10000.0, 10000.0), Some([0.1, 0.2, 0.3, 0.4]));
        assert_eq!(corners([1.0, 2.0, 3.0, 4.0], 0.0, 0.0), None);
    }
}
