//! One record → one event-ready value: kind, state, channel, rule, device time, objects,
//! plate, counts, the payload as JSON and the idempotency-key pieces (dahua.md §4-§5).

use std::num::NonZeroU32;

use camgate_core::event::{BBox, bbox_is_valid, normalise_bbox};
use camgate_core::{Counts, Kind, Object, Plate, State, Vehicle};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use super::body::{Data, DataRef, Record, RecordRef, index_number, state_of};
use super::codes::{CodeFilter, kind_for_code};
use crate::key::{KeyBuilder, clip};

/// Dahua's normalised coordinate space (`BoundingBox`, `Rect`, ...): 0..8191 on both axes.
pub const COORD_MAX: f64 = 8191.0;
/// Most objects kept per event; the rest stay in `data`.
pub const MAX_OBJECTS: usize = 256;
/// Longest text copied from the payload into a field (rule, ids, plate, ...).
const MAX_TEXT: usize = 256;

/// How records become events.
#[derive(Debug, Clone)]
pub struct NormaliseOptions {
    /// The device's time zone, for `LocaleTime` (a wall-clock time with no zone).
    pub timezone: TimeZone,
    /// The camera's `codes` list, applied locally too (§1: devices that refuse a list are
    /// attached with `[All]`).
    pub codes: CodeFilter,
    /// Keep `VideoMotionInfo` (`action=State` about once a second while motion lasts).
    /// Dropped by default unless `codes` names it.
    pub keep_video_motion_info: bool,
}

impl Default for NormaliseOptions {
    fn default() -> Self {
        NormaliseOptions { timezone: TimeZone::UTC, codes: CodeFilter::All, keep_video_motion_info: false }
    }
}

impl NormaliseOptions {
    /// Whether a record with this code is kept.
    pub fn accepts(&self, code: &str) -> bool {
        if !self.codes.accepts(code) {
            return false;
        }
        self.keep_video_motion_info || !code.eq_ignore_ascii_case("VideoMotionInfo") || self.codes.names(code)
    }
}

/// What was wrong with `data=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataError {
    /// The JSON ended in the middle of a value (or the part itself was cut short, V5).
    Truncated,
    /// The JSON is complete but malformed.
    Invalid,
}

/// One record, ready to become a camgate [`Event`](camgate_core::Event): the source adds id,
/// source, vendor, receive time and images, and prefixes `key` with the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    pub kind: Kind,
    /// The device's `Code`, whole.
    pub code: String,
    /// `action` as sent.
    pub action: Option<String>,
    pub state: Option<State>,
    /// `index` as sent (0-based).
    pub index: Option<u32>,
    /// `index + 1`: the 1-based channel (for `AlarmLocal` the 1-based alarm input).
    pub channel: Option<NonZeroU32>,
    /// The rule, zone or line: `RuleName`, `Name` or the first `RegionName`.
    pub rule: Option<String>,
    /// The device time as a UTC instant: `UTC` (+`UTCMS`), else `LocaleTime` in the device's
    /// zone. (`PTS` is a stream clock, not a date: it only goes into the key.)
    pub occurred_at: Option<Timestamp>,
    /// A device time that was present but unusable, verbatim.
    pub time_error: Option<String>,
    /// `EventID` (IVS), or `RecNo` (access control).
    pub event_id: Option<String>,
    pub plate: Option<Plate>,
    pub objects: Vec<Object>,
    pub counts: Option<Counts>,
    /// The whole record as JSON: `{"Code", "action", "index" (raw, 0-based), other head keys,
    /// "data"}`, where `data` is the payload, `null`, or the raw text when it is not JSON.
    pub data: Value,
    pub data_error: Option<DataError>,
    /// Idempotency key from what the device said:
    /// `code[/chN][/eEVENT][/tOBJECTS][/rRULE][/state][/@TIME]`.
    pub key: String,
    /// Whether the key holds an event id or a device time. When not (plain `VideoMotion`
    /// carries neither), the source must add a per-connection sequence to keep repeated
    /// events apart.
    pub key_unique: bool,
}

/// Turns a record into an event; `None` when `opts` filters the code out.
///
/// ```
/// use camgate_protocols::dahua::{normalise, parse_body, NormaliseOptions};
///
/// let body = parse_body(b"Code=VideoMotion;action=Start;index=0;data={\"RegionName\" : [ \"Region1\" ]}");
/// let r = body.records.into_iter().next().unwrap();
/// let e = normalise(r, &NormaliseOptions::default()).unwrap();
/// assert_eq!((e.kind, e.channel.map(|c| c.get()), e.rule.as_deref()), (camgate_core::Kind::Motion, Some(1), Some("Region1")));
/// assert_eq!(e.data["index"], 0);
/// assert_eq!(e.key, "VideoMotion/ch1/rRegion1/start");
/// ```
pub fn normalise(record: Record, opts: &NormaliseOptions) -> Option<Normalised> {
    if !opts.accepts(&record.code) {
        return None;
    }
    let Record { code, action, index, extra, data } = record;
    let invalid_raw;
    let data = match data {
        Data::Absent => DataRef::Absent,
        Data::Null => DataRef::Null,
        Data::Json(v) => DataRef::Json(v),
        Data::Invalid { raw, truncated } => {
            invalid_raw = raw;
            DataRef::Invalid { raw: &invalid_raw, truncated }
        }
    };
    let record = RecordRef {
        code: &code,
        action: action.as_deref(),
        index: index.as_deref(),
        extra: extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        data,
    };
    Some(normalise_ref(record, opts))
}

/// [`normalise`] of a record read in place, whatever `opts` accepts (the caller checks
/// [`NormaliseOptions::accepts`]).
pub(super) fn normalise_ref(record: RecordRef<'_>, opts: &NormaliseOptions) -> Normalised {
    let RecordRef { code, action, index: raw_index, extra, data } = record;
    let kind = kind_for_code(code);
    let state = state_for(code, action.and_then(state_of));
    let index = raw_index.and_then(index_number);
    let channel = index.and_then(|i| i.checked_add(1)).and_then(NonZeroU32::new);
    let data_error = match &data {
        DataRef::Invalid { truncated: true, .. } => Some(DataError::Truncated),
        DataRef::Invalid { truncated: false, .. } => Some(DataError::Invalid),
        _ => None,
    };
    // Everything read from the payload; a record without a JSON object has none of it.
    let mut read = PayloadRead::default();
    if let DataRef::Json(Value::Object(m)) = &data {
        read = read_payload(m, code, kind, &opts.timezone);
    }
    let PayloadRead { rule, time, event_id, objects, plate, counts } = read;
    let mut target_ids: Vec<&str> = Vec::new();
    for id in objects.iter().filter_map(|o| o.id.as_deref()) {
        if !target_ids.contains(&id) {
            target_ids.push(id);
        }
    }
    let key = key(&KeyParts {
        code,
        channel,
        event_id: event_id.as_deref(),
        target_ids: &target_ids,
        rule: rule.as_deref(),
        state,
        time: time.raw.as_deref(),
    });
    let key_unique = event_id.is_some() || time.raw.is_some();
    let data = record_json(code, action, raw_index, &extra, data);
    Normalised {
        kind,
        code: code.to_owned(),
        action: action.map(str::to_owned),
        state,
        index,
        channel,
        rule,
        occurred_at: time.at,
        time_error: time.error,
        event_id,
        plate,
        objects,
        counts,
        data,
        data_error,
        key,
        key_unique,
    }
}

/// What normalisation reads from a JSON payload.
#[derive(Default)]
struct PayloadRead {
    rule: Option<String>,
    time: DeviceTime,
    event_id: Option<String>,
    objects: Vec<Object>,
    plate: Option<Plate>,
    counts: Option<Counts>,
}

fn read_payload(m: &Map<String, Value>, code: &str, kind: Kind, tz: &TimeZone) -> PayloadRead {
    let p = PayloadMembers::of(m);
    let objects = objects(&p, default_object_type(code));
    let plate = if kind == Kind::Plate || p.traffic_car.is_some() { plate(&p) } else { None };
    PayloadRead {
        rule: [p.rule_name, p.name, p.region_name].into_iter().find_map(|v| v.and_then(first_text)),
        time: payload_time(&p, tz),
        event_id: p.event_id.or(p.rec_no).and_then(text),
        objects,
        plate,
        counts: if kind == Kind::Counting { counts(&p) } else { None },
    }
}

/// The record's state; `CallNoAnswered` `Start` is a pulse (it can stay "on" for an hour,
/// §5).
fn state_for(code: &str, state: Option<State>) -> Option<State> {
    match state {
        Some(State::Start) if code.eq_ignore_ascii_case("CallNoAnswered") => Some(State::Pulse),
        s => s,
    }
}

fn record_json(code: &str, action: Option<&str>, index: Option<&str>, extra: &[(&str, &str)], data: DataRef) -> Value {
    // The fixed keys go in from the greatest (`data`, `index`, `action`, `Code`) down: a map
    // this small is one node, searched from its first key, so each insert compares one key.
    let mut m = Map::new();
    match data {
        DataRef::Absent => {}
        DataRef::Null => {
            m.insert("data".to_owned(), Value::Null);
        }
        DataRef::Json(v) => {
            m.insert("data".to_owned(), v);
        }
        DataRef::Invalid { raw, .. } => {
            m.insert("data".to_owned(), Value::from(raw));
        }
    }
    if let Some(i) = index {
        let v = i.parse::<u64>().map_or_else(|_| Value::from(i), Value::from);
        m.insert("index".to_owned(), v);
    }
    if let Some(a) = action {
        m.insert("action".to_owned(), Value::from(a));
    }
    m.insert("Code".to_owned(), Value::from(code));
    for &(k, v) in extra {
        // The first of a repeated key wins (an extra key is never `data`: that key ends the
        // head).
        if !m.contains_key(k) {
            m.insert(k.to_owned(), Value::from(v));
        }
    }
    Value::Object(m)
}

/// Declares a struct of the members of a JSON object that normalisation reads, found in one
/// pass over the object by [`of`](PayloadMembers::of): each the member of exactly that name,
/// else the first (in the object's order) whose name matches without case, as [`get`] finds
/// it, but without one lookup and one scan of the object per name.
macro_rules! members {
    ($(#[$meta:meta])* struct $name:ident { $($field:ident: $key:literal,)* }) => {
        $(#[$meta])*
        #[derive(Default, Clone, Copy)]
        struct $name<'v> {
            $($field: Option<&'v Value>,)*
        }

        impl<'v> $name<'v> {
            /// The names, in field order (no two equal without case: a member matches one).
            #[cfg(test)]
            const NAMES: &'static [&'static str] = &[$($key),*];

            /// The members found, in field order.
            #[cfg(test)]
            fn values(&self) -> Vec<Option<&'v Value>> {
                vec![$(self.$field),*]
            }

            fn of(m: &'v Map<String, Value>) -> Self {
                let mut exact = Self::default();
                let mut loose = Self::default();
                for (k, v) in m {
                    $(
                        if k.len() == $key.len() && k.eq_ignore_ascii_case($key) {
                            if k == $key {
                                exact.$field = Some(v);
                            } else if loose.$field.is_none() {
                                loose.$field = Some(v);
                            }
                            continue;
                        }
                    )*
                }
                Self { $($field: exact.$field.or(loose.$field),)* }
            }
        }
    };
}

members! {
    /// The members of a payload (`data=`) that normalisation reads.
    struct PayloadMembers {
        rule_name: "RuleName",
        name: "Name",
        region_name: "RegionName",
        utc: "UTC",
        utc_ms: "UTCMS",
        locale_time: "LocaleTime",
        pts: "PTS",
        event_id: "EventID",
        rec_no: "RecNo",
        object: "Object",
        objects: "Objects",
        faces: "Faces",
        vehicle: "Vehicle",
        bounding_box: "BoundingBox",
        traffic_car: "TrafficCar",
        current_plate_info: "CurrentPlateInfo",
        plate_number: "PlateNumber",
        entered_number: "EnteredNumber",
        entered_subtotal: "EnteredSubtotal",
        exited_number: "ExitedNumber",
        exited_subtotal: "ExitedSubtotal",
        number: "Number",
    }
}

members! {
    /// The members of one target (`Object`, `Objects[i]`, `Faces[i]`, `Vehicle`) that
    /// normalisation reads.
    struct ObjectMembers {
        object_type: "ObjectType",
        object_id: "ObjectID",
        humam_id: "HumamID",
        human_id: "HumanID",
        vehicle_id: "VehicleID",
        face_id: "FaceID",
        id: "ID",
        bounding_box: "BoundingBox",
        rect: "Rect",
        confidence: "Confidence",
    }
}

/// A member by name: exact first, then without case (`trafficCar/plateNumber` vary, §5).
fn get<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A non-empty string (trimmed, clipped) or a number, as text.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(clip(s.trim(), MAX_TEXT)).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A finite number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// A string, or the first string of an array (`RegionName: ["Region1"]`).
fn first_text(v: &Value) -> Option<String> {
    match v {
        Value::Array(a) => a.iter().find_map(text),
        v => text(v),
    }
}

/// The device time read from the payload.
#[derive(Debug, Default)]
struct DeviceTime {
    /// The text as sent (part of the key).
    raw: Option<String>,
    at: Option<Timestamp>,
    error: Option<String>,
}

/// `UTC` (Unix seconds, with `UTCMS` milliseconds) where non-zero; else `LocaleTime` in the
/// device's zone; else only `PTS` for the key.
fn payload_time(m: &PayloadMembers<'_>, tz: &TimeZone) -> DeviceTime {
    if let Some(v) = m.utc
        && let Some(secs) = number(v).filter(|s| *s != 0.0)
    {
        let ms = m.utc_ms.and_then(number).filter(|ms| (0.0..1000.0).contains(ms)).unwrap_or(0.0);
        let raw = text(v).map(|t| if ms > 0.0 { format!("{t}.{:03}", ms as u32) } else { t });
        let total = (secs * 1000.0 + ms).round();
        let at = (secs > 0.0 && total < 9.0e15).then(|| Timestamp::from_millisecond(total as i64).ok()).flatten();
        let error = at.is_none().then(|| raw.clone().unwrap_or_default());
        return DeviceTime { raw, at, error };
    }
    if let Some(raw) = m.locale_time.and_then(text) {
        let at = local_time(&raw, tz);
        let error = at.is_none().then(|| raw.clone());
        return DeviceTime { raw: Some(raw), at, error };
    }
    DeviceTime { raw: m.pts.and_then(text), at: None, error: None }
}

/// [`payload_time`] of a payload.
#[cfg(test)]
fn device_time(m: &Map<String, Value>, tz: &TimeZone) -> DeviceTime {
    payload_time(&PayloadMembers::of(m), tz)
}

/// `YYYY-MM-DD hh:mm:ss` (and the `MM-DD-YYYY` and `/` variants some firmware uses, §4), a
/// wall-clock time in `tz`.
pub(super) fn local_time(raw: &str, tz: &TimeZone) -> Option<Timestamp> {
    const FORMATS: [&str; 5] =
        ["%Y-%m-%d %H:%M:%S", "%m-%d-%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S"];
    let raw = raw.trim();
    if raw.len() > 64 {
        return None;
    }
    FORMATS.iter().find_map(|f| {
        let dt = jiff::fmt::strtime::parse(f, raw).ok()?.to_datetime().ok()?;
        tz.to_ambiguous_timestamp(dt).compatible().ok()
    })
}

/// The object type an entry without `ObjectType` gets, by code.
fn default_object_type(code: &str) -> Option<&'static str> {
    let is = |c: &str| code.eq_ignore_ascii_case(c);
    if is("SmartMotionHuman") {
        Some("human")
    } else if is("SmartMotionVehicle") {
        Some("vehicle")
    } else if is("FaceDetection") || is("FaceRecognition") {
        Some("face")
    } else {
        None
    }
}

/// camgate's word for a Dahua `ObjectType`, in lower case.
fn object_type(raw: &str) -> Option<String> {
    let lower = raw.trim().to_ascii_lowercase();
    let known = match lower.as_str() {
        "" => return None,
        "human" | "person" | "pedestrian" => "human",
        "vehicle" | "motorvehicle" | "car" => "vehicle",
        "nonmotor" | "non-motor" | "nonmotorvehicle" => "non_motor",
        "plate" => "plate",
        "face" | "humanface" => "face",
        other => return Some(clip(other, 32).to_owned()),
    };
    Some(known.to_owned())
}

/// `[x1, y1, x2, y2]` in 0..8191 → 0..1. `None` for anything else, values beyond the space
/// and boxes with no area (devices send zeros for "no box").
fn bbox(v: &Value) -> Option<BBox> {
    let a = v.as_array().filter(|a| a.len() == 4)?;
    let mut raw = [0.0; 4];
    for (r, v) in raw.iter_mut().zip(a) {
        *r = number(v).filter(|n| (0.0..=COORD_MAX + 1.0).contains(n))?;
    }
    if raw[0] == raw[2] || raw[1] == raw[3] {
        return None;
    }
    Some(normalise_bbox(raw, COORD_MAX, COORD_MAX)).filter(bbox_is_valid)
}

/// A confidence as 0..1 from Dahua's 0..100 (0 means "not given").
fn confidence(v: &Value) -> Option<f64> {
    let c = number(v)?;
    if c <= 0.0 || c > 100.0 {
        None
    } else if c <= 1.0 {
        Some(c)
    } else {
        Some(c / 100.0)
    }
}

fn object(entry: &Map<String, Value>, default_type: Option<&str>) -> Option<Object> {
    let e = ObjectMembers::of(entry);
    let kind = e.object_type.and_then(Value::as_str).and_then(object_type);
    // The first id member present is the id, even when it is not usable.
    let id = [e.object_id, e.humam_id, e.human_id, e.vehicle_id, e.face_id, e.id].into_iter().find_map(|v| v);
    let id = id.and_then(text);
    let bbox = e.bounding_box.or(e.rect).and_then(bbox);
    if kind.is_none() && id.is_none() && bbox.is_none() {
        return None;
    }
    Some(Object {
        kind: kind.or_else(|| default_type.map(str::to_owned)).unwrap_or_else(|| "unknown".to_owned()),
        id,
        bbox,
        confidence: e.confidence.and_then(confidence),
    })
}

/// The targets: `Object` (IVS, one or a list), `object` (SMD), `Objects` (WizMind), `Faces`,
/// the ANPR `Vehicle`, else a top-level `BoundingBox`.
fn objects(m: &PayloadMembers<'_>, default_type: Option<&str>) -> Vec<Object> {
    let mut out = Vec::new();
    let sources =
        [(m.object, default_type), (m.objects, default_type), (m.faces, Some("face")), (m.vehicle, Some("vehicle"))];
    for (value, default) in sources {
        let entries: &[Value] = match value {
            Some(Value::Object(o)) => {
                let room = MAX_OBJECTS - out.len();
                out.extend(object(o, default).into_iter().take(room));
                continue;
            }
            Some(Value::Array(a)) => a,
            _ => continue,
        };
        let room = MAX_OBJECTS - out.len();
        out.extend(entries.iter().filter_map(Value::as_object).filter_map(|e| object(e, default)).take(room));
    }
    if out.is_empty()
        && let Some(b) = m.bounding_box.and_then(bbox)
    {
        out.push(Object {
            kind: default_type.unwrap_or("unknown").to_owned(),
            id: None,
            bbox: Some(b),
            confidence: None,
        });
    }
    out
}

/// The plate read: `TrafficCar.PlateNumber`, the `Plate` object's `Text`, or
/// `CurrentPlateInfo[0].Text`; vehicle attributes from `TrafficCar` and `Vehicle`.
fn plate(m: &PayloadMembers<'_>) -> Option<Plate> {
    let car = m.traffic_car.and_then(Value::as_object);
    let car_text = |k: &str| car.and_then(|c| get(c, k)).and_then(text);
    let plate_object = match m.object {
        Some(Value::Object(o)) => Some(o),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_object)
            .find(|o| get(o, "ObjectType").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("Plate"))),
        _ => None,
    };
    let current = m.current_plate_info.and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_object);
    let plate_number = car_text("PlateNumber")
        .or_else(|| plate_object.and_then(|o| get(o, "Text")).and_then(text))
        .or_else(|| current.and_then(|c| get(c, "Text")).and_then(text))
        .or_else(|| m.plate_number.and_then(text))?;
    let confidence = plate_object
        .and_then(|o| get(o, "Confidence"))
        .or_else(|| car.and_then(|c| get(c, "Confidence")))
        .and_then(number)
        .filter(|c| *c > 0.0 && *c <= 100.0);
    let vehicle_obj = m.vehicle.and_then(Value::as_object);
    let vehicle_text = |k: &str| vehicle_obj.and_then(|v| get(v, k)).and_then(text);
    let vehicle = Vehicle {
        kind: car_text("VehicleType").or_else(|| vehicle_text("Category")),
        color: car_text("VehicleColor").or_else(|| vehicle_text("MainColor")),
        brand: car_text("Brand").or_else(|| vehicle_text("Text")),
        model: car_text("SubBrand"),
    };
    let has_vehicle =
        vehicle.kind.is_some() || vehicle.color.is_some() || vehicle.brand.is_some() || vehicle.model.is_some();
    Some(Plate {
        number: plate_number,
        list: None,
        confidence,
        direction: car_text("Direction"),
        color: car_text("PlateColor").or_else(|| plate_object.and_then(|o| get(o, "Color")).and_then(text)),
        vehicle: has_vehicle.then_some(vehicle),
    })
}

/// People-counting totals (`NumberStat`, `ManNumDetection`; no public capture, §5 (u)):
/// `EnteredNumber`/`EnteredSubtotal.Total`, `ExitedNumber`/`ExitedSubtotal.Total`, `Number`.
fn counts(m: &PayloadMembers<'_>) -> Option<Counts> {
    let count = |v: &Value| number(v).filter(|n| *n >= 0.0 && *n < 1e15).map(|n| n as u64);
    let sub = |flat: Option<&Value>, nested: Option<&Value>| {
        flat.and_then(count).or_else(|| nested.and_then(Value::as_object).and_then(|s| get(s, "Total")).and_then(count))
    };
    let c = Counts {
        enter: sub(m.entered_number, m.entered_subtotal),
        exit: sub(m.exited_number, m.exited_subtotal),
        total: m.number.and_then(count),
    };
    (!c.is_empty()).then_some(c)
}

/// The pieces of an idempotency key.
struct KeyParts<'k> {
    code: &'k str,
    channel: Option<NonZeroU32>,
    event_id: Option<&'k str>,
    target_ids: &'k [&'k str],
    rule: Option<&'k str>,
    state: Option<State>,
    time: Option<&'k str>,
}

/// `code[/chN][/e..][/t..][/r..][/state][/@time]`; `/` and `%` in parts are percent-escaped
/// so parts cannot run into each other, control characters dropped.
fn key(p: &KeyParts<'_>) -> String {
    let mut k = KeyBuilder::new();
    k.part("", p.code);
    if let Some(ch) = p.channel {
        k.channel_number(ch.get());
    }
    if let Some(e) = p.event_id {
        k.part("e", e);
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
    k.into_key()
}

#[cfg(test)]
mod unit_tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn boxes() {
        assert_eq!(bbox(&json!([0, 0, 0, 0])), None);
        assert_eq!(bbox(&json!([1, 2, 3])), None);
        assert_eq!(bbox(&json!([1, 2, 9000, 4])), None);
        assert_eq!(bbox(&json!([1, 2, -3, 4])), None);
        assert_eq!(bbox(&json!(["x", 2, 3, 4])), None);
        let b = bbox(&json!([8191, 8191, 0, 0])).unwrap();
        assert_eq!(b, [0.0, 0.0, 1.0, 1.0]);
        let b = bbox(&json!([819.1, "1638.2", 4095.5, 8192])).unwrap();
        assert!((b[0] - 0.1).abs() < 1e-9 && (b[1] - 0.2).abs() < 1e-9 && b[3] == 1.0);
    }

    #[test]
    fn confidences() {
        assert_eq!(confidence(&json!(0)), None);
        assert_eq!(confidence(&json!(0.5)), Some(0.5));
        assert_eq!(confidence(&json!(87)), Some(0.87));
        assert_eq!(confidence(&json!(101)), None);
    }

    #[test]
    fn times() {
        let t = device_time(&map(json!({"UTC": 1660425993, "UTCMS": 250})), &TimeZone::UTC);
        assert_eq!(t.at.unwrap().to_string(), "2022-08-13T21:26:33.25Z");
        assert_eq!(t.raw.as_deref(), Some("1660425993.250"));
        let t = device_time(&map(json!({"UTC": 1e300})), &TimeZone::UTC);
        assert_eq!((t.at, t.error.as_deref()), (None, Some("1e+300")));
        let bogota = TimeZone::get("America/Bogota").unwrap();
        let t = device_time(&map(json!({"UTC": 0, "LocaleTime": "2022-08-13 21:26:33"})), &bogota);
        assert_eq!(t.at.unwrap().to_string(), "2022-08-14T02:26:33Z");
        let t = device_time(&map(json!({"LocaleTime": "05-09-2023 11:32:22"})), &TimeZone::UTC);
        assert_eq!(t.at.unwrap().to_string(), "2023-05-09T11:32:22Z");
        let t = device_time(&map(json!({"LocaleTime": "yesterday"})), &TimeZone::UTC);
        assert_eq!((t.at, t.error.as_deref()), (None, Some("yesterday")));
        let t = device_time(&map(json!({"PTS": 43332082110.0})), &TimeZone::UTC);
        assert_eq!((t.at, t.raw.as_deref()), (None, Some("43332082110.0")));
    }

    #[test]
    fn member_names_are_distinct_without_case() {
        for names in [PayloadMembers::NAMES, ObjectMembers::NAMES] {
            for (i, a) in names.iter().enumerate() {
                assert!(!names[i + 1..].iter().any(|b| a.eq_ignore_ascii_case(b)), "{a} twice");
            }
        }
    }

    #[test]
    fn members_are_found_as_get_finds_them() {
        let maps = [
            json!({}),
            json!({"name": 1, "NAME": 2, "Name": 3, "utc": 4, "UTc": 5, "objects": 6, "Rulename": 7, "x": 8}),
            json!({"nAme": 1, "NAME": 2, "OBJECT": 3, "Object": 4, "objecT": 5, "rect": 6, "Id": 7, "iD": 8}),
            json!({"BoundingBox": 1, "boundingbox": 2, "ObjectType": 3, "Confidence": 4, "humamid": 5, "FaceId": 6}),
        ];
        for m in maps {
            let m = map(m);
            let want: Vec<_> = PayloadMembers::NAMES.iter().map(|n| get(&m, n)).collect();
            assert_eq!(PayloadMembers::of(&m).values(), want, "{m:?}");
            let want: Vec<_> = ObjectMembers::NAMES.iter().map(|n| get(&m, n)).collect();
            assert_eq!(ObjectMembers::of(&m).values(), want, "{m:?}");
        }
    }

    #[test]
    fn keys_are_bounded_and_escaped() {
        let parts = |code: &'static str, rule: Option<&'static str>| KeyParts {
            code,
            channel: NonZeroU32::new(2),
            event_id: Some("9"),
            target_ids: &["1", "2"],
            rule,
            state: Some(State::Start),
            time: Some("17"),
        };
        assert_eq!(key(&parts("a/b", Some("50%"))), "a%2Fb/ch2/e9/t1,2/r50%25/start/@17");
        let long: &'static str = Box::leak("x".repeat(1000).into_boxed_str());
        let k = key(&parts("c", Some(long)));
        assert!(k.len() <= crate::key::MAX_KEY && k.contains('~'), "{k}");
        assert_eq!(k, key(&parts("c", Some(long))));
        let bare = KeyParts {
            code: "\u{1}",
            channel: None,
            event_id: None,
            target_ids: &[],
            rule: None,
            state: None,
            time: None,
        };
        assert_eq!(key(&bare), "-");
    }
}
