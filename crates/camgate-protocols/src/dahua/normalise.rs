//! One record → one event-ready value: kind, state, channel, rule, device time, objects,
//! plate, counts and the idempotency-key pieces (dahua.md §4-§5), with the record itself as
//! sent (its JSON checked, read only for the members used here: [`super::json`]).

use std::borrow::Cow;
use std::num::NonZeroU32;

use camgate_core::event::{BBox, bbox_is_valid, normalise_bbox};
use camgate_core::{Counts, Kind, Object, Plate, State, Vehicle};
use jiff::Timestamp;
use jiff::tz::TimeZone;
#[cfg(test)]
use serde_json::Map;
use serde_json::Value;

use super::body::{DataAt, Record, RecordRef, index_number, state_of};
use super::codes::{CodeFilter, kind_for_code};
#[cfg(test)]
use super::json::quick_read;
use super::json::{Json, NameFilter, Pick, entries_of, quick_read_with};
#[cfg(test)]
use super::json::{RawJson, quick_check};
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
    /// The record as the device sent it: `Code` ([`code`](Self::code)), `action`, `index`,
    /// other head keys and `data=`, the payload JSON checked but kept as text. The record as
    /// a JSON value, what a camgate event's `data` holds: [`data`](Self::data).
    pub record: Record,
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
    /// The plate read (boxed: rare, and large).
    pub plate: Option<Box<Plate>>,
    pub objects: Vec<Object>,
    pub counts: Option<Counts>,
    /// What was wrong with `data=`, when it held something but not JSON.
    pub data_error: Option<DataError>,
    /// Idempotency key from what the device said:
    /// `code[/chN][/eEVENT][/tOBJECTS][/rRULE][/state][/@TIME]`.
    pub key: String,
    /// Whether the key holds an event id or a device time. When not (plain `VideoMotion`
    /// carries neither), the source must add a per-connection sequence to keep repeated
    /// events apart.
    pub key_unique: bool,
}

impl Normalised {
    /// The device's `Code`, whole.
    pub fn code(&self) -> &str {
        self.record.code()
    }

    /// `action` as sent.
    pub fn action(&self) -> Option<&str> {
        self.record.action()
    }

    /// The whole record as JSON ([`Record::to_json`]): `{"Code", "action", "index" (raw,
    /// 0-based), other head keys, "data"}`, where `data` is the payload, `null`, or the raw
    /// text when it is not JSON. Built on each call: the decoder does not build it.
    pub fn data(&self) -> Value {
        self.record.to_json()
    }
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
/// assert_eq!(e.data()["index"], 0);
/// assert_eq!(e.key, "VideoMotion/ch1/rRegion1/start");
/// ```
pub fn normalise(record: Record, opts: &NormaliseOptions) -> Option<Normalised> {
    if !opts.accepts(record.code()) {
        return None;
    }
    Some(*normalise_ref(record.as_ref(), opts))
}

/// [`normalise`] of a record read in place, whatever `opts` accepts (the caller checks
/// [`NormaliseOptions::accepts`]). Its JSON, unchecked or not, is checked here, in the pass
/// that reads the members normalisation needs. Boxed where it is built: the decoder hands
/// events out boxed, and the event is large.
pub(super) fn normalise_ref(mut record: RecordRef<'_>, opts: &NormaliseOptions) -> Box<Normalised> {
    let text = record.text;
    let code = record.at.code(text);
    let action = record.at.action(text);
    let raw_index = record.at.index(text);
    let kind = kind_for_code(code);
    let state = state_for(code, action.and_then(state_of));
    let index = raw_index.and_then(index_number);
    let channel = index.and_then(|i| i.checked_add(1)).and_then(NonZeroU32::new);
    // Everything read from the payload; a record without a JSON object has none of it.
    let mut read = PayloadRead::default();
    if let DataAt::Json(span) = record.at.data {
        let raw = span.of(text);
        let mut pick = Pick::new();
        if let Some(object) = quick_read_with(raw, &PayloadMembers::NAMES, &PayloadMembers::FILTER, &mut pick) {
            // The members read from the checked text, no value built.
            if object {
                read = read_payload(&PayloadMembers::from(pick.finish()), code, kind, &opts.timezone);
            }
        } else {
            // What the quick check leaves (exponents, `\u` escapes, errors, ...): `serde_json`.
            match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(m)) => {
                    read = read_payload(&PayloadMembers::of(entries_of(&m)), code, kind, &opts.timezone);
                }
                Ok(_) => {}
                Err(e) => record.at.data = DataAt::Invalid { raw: span, truncated: e.is_eof() },
            }
        }
    }
    let data_error = match record.at.data {
        DataAt::Invalid { truncated: true, .. } => Some(DataError::Truncated),
        DataAt::Invalid { truncated: false, .. } => Some(DataError::Invalid),
        _ => None,
    };
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
    Box::new(Normalised {
        kind,
        record: record.into_owned(),
        state,
        index,
        channel,
        rule,
        occurred_at: time.at,
        time_error: time.error,
        event_id,
        plate: plate.map(Box::new),
        objects,
        counts,
        data_error,
        key,
        key_unique,
    })
}

/// What normalisation reads from a JSON payload.
#[derive(Debug, Default, PartialEq)]
struct PayloadRead {
    rule: Option<String>,
    time: DeviceTime,
    event_id: Option<String>,
    objects: Vec<Object>,
    plate: Option<Plate>,
    counts: Option<Counts>,
}

fn read_payload<'a, J: Json<'a>>(p: &PayloadMembers<J>, code: &str, kind: Kind, tz: &TimeZone) -> PayloadRead {
    let objects = objects(p, default_object_type(code));
    let plate = if kind == Kind::Plate || p.traffic_car.is_some() { plate(p) } else { None };
    PayloadRead {
        rule: [p.rule_name, p.name, p.region_name].into_iter().find_map(|v| v.and_then(first_text)),
        time: payload_time(p, tz),
        event_id: p.event_id.or(p.rec_no).and_then(text),
        objects,
        plate,
        counts: if kind == Kind::Counting { counts(p) } else { None },
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

/// Declares a struct of the members of a JSON object that normalisation reads, found in one
/// pass over the object by [`of`](PayloadMembers::of): each the member of exactly that name,
/// else the first (in the object's order) whose name matches without case, as [`get`] finds
/// it ([`Pick`]), but without one lookup and one scan of the object per name.
macro_rules! members {
    ($(#[$meta:meta])* struct $name:ident[$n:literal] { $($field:ident: $key:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        struct $name<J> {
            $($field: Option<J>,)*
        }

        impl $name<()> {
            /// The names, in field order (no two equal without case: a member matches one).
            const NAMES: [&'static str; $n] = [$($key),*];

            /// Their [`NameFilter`], built once.
            const FILTER: NameFilter = NameFilter::new(&Self::NAMES);
        }

        impl<'a, J: Json<'a>> $name<J> {
            /// The members found, in field order.
            #[cfg(test)]
            fn values(&self) -> Vec<Option<J>> {
                vec![$(self.$field),*]
            }

            /// The members of an object ([`Json::entries`]).
            fn of(entries: impl Iterator<Item = (Cow<'a, str>, J)>) -> Self {
                let mut pick = Pick::new();
                pick.offer_all_with(&$name::NAMES, &$name::FILTER, entries);
                Self::from(pick.finish())
            }

            /// The members found by name, in [`NAMES`]($name::NAMES) order.
            fn from(found: [Option<J>; $n]) -> Self {
                let [$($field),*] = found;
                Self { $($field,)* }
            }
        }
    };
}

members! {
    /// The members of a payload (`data=`) that normalisation reads.
    struct PayloadMembers[22] {
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
    struct ObjectMembers[10] {
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

/// A member by name: exact first, then without case (`trafficCar/plateNumber` vary, §5), as
/// a lookup in the object's `serde_json::Map` finds it ([`Pick`]).
fn get<'a, J: Json<'a>>(m: J, key: &'static str) -> Option<J> {
    let mut pick = Pick::new();
    // One name: `offer` rules a key out as fast as a name filter would.
    for (k, v) in m.entries()? {
        pick.offer(&[key], k, v);
    }
    let [found] = pick.finish();
    found
}

/// A non-empty string (trimmed, clipped) or a number, as text.
fn text<'a, J: Json<'a>>(v: J) -> Option<String> {
    if let Some(s) = v.as_str() {
        return Some(clip(s.trim(), MAX_TEXT)).filter(|s| !s.is_empty()).map(str::to_owned);
    }
    v.number_text().map(Cow::into_owned)
}

/// A finite number, or a string holding one.
fn number<'a, J: Json<'a>>(v: J) -> Option<f64> {
    match v.as_number() {
        Some(n) => n.as_f64(),
        None => v.as_str().and_then(|s| s.trim().parse().ok()),
    }
    .filter(|f: &f64| f.is_finite())
}

/// A string, or the first string of an array (`RegionName: ["Region1"]`).
fn first_text<'a, J: Json<'a>>(v: J) -> Option<String> {
    match v.elements() {
        Some(mut a) => a.find_map(text),
        None => text(v),
    }
}

/// The device time read from the payload.
#[derive(Debug, Default, PartialEq)]
struct DeviceTime {
    /// The text as sent (part of the key).
    raw: Option<String>,
    at: Option<Timestamp>,
    error: Option<String>,
}

/// `UTC` (Unix seconds, with `UTCMS` milliseconds) where non-zero; else `LocaleTime` in the
/// device's zone; else only `PTS` for the key.
fn payload_time<'a, J: Json<'a>>(m: &PayloadMembers<J>, tz: &TimeZone) -> DeviceTime {
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
    payload_time(&PayloadMembers::of(entries_of(m)), tz)
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
fn bbox<'a, J: Json<'a>>(v: J) -> Option<BBox> {
    let mut elements = v.elements()?;
    let mut corners = [v; 4];
    for c in &mut corners {
        *c = elements.next()?;
    }
    if elements.next().is_some() {
        return None;
    }
    let mut raw = [0.0; 4];
    for (r, v) in raw.iter_mut().zip(corners) {
        *r = number(v).filter(|n| (0.0..=COORD_MAX + 1.0).contains(n))?;
    }
    if raw[0] == raw[2] || raw[1] == raw[3] {
        return None;
    }
    Some(normalise_bbox(raw, COORD_MAX, COORD_MAX)).filter(bbox_is_valid)
}

/// A confidence as 0..1 from Dahua's 0..100 (0 means "not given").
fn confidence<'a, J: Json<'a>>(v: J) -> Option<f64> {
    let c = number(v)?;
    if c <= 0.0 || c > 100.0 {
        None
    } else if c <= 1.0 {
        Some(c)
    } else {
        Some(c / 100.0)
    }
}

/// One target (an object: `Object`, an element of `Objects`, ...).
fn object<'a, J: Json<'a>>(
    entries: impl Iterator<Item = (Cow<'a, str>, J)>,
    default_type: Option<&str>,
) -> Option<Object> {
    let e = ObjectMembers::of(entries);
    let kind = e.object_type.and_then(J::as_str).and_then(|t| object_type(&t));
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
fn objects<'a, J: Json<'a>>(m: &PayloadMembers<J>, default_type: Option<&str>) -> Vec<Object> {
    let mut out = Vec::new();
    let sources =
        [(m.object, default_type), (m.objects, default_type), (m.faces, Some("face")), (m.vehicle, Some("vehicle"))];
    for (value, default) in sources {
        let Some(value) = value else { continue };
        if let Some(entries) = value.entries() {
            let room = MAX_OBJECTS - out.len();
            out.extend(object(entries, default).into_iter().take(room));
            continue;
        }
        // The objects of an array, up to the limit (the others are not read).
        value.for_each_object_element(|entries| {
            if out.len() == MAX_OBJECTS {
                return false;
            }
            out.extend(object(entries, default));
            out.len() < MAX_OBJECTS
        });
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
fn plate<'a, J: Json<'a>>(m: &PayloadMembers<J>) -> Option<Plate> {
    let car = m.traffic_car.filter(|c| c.is_object());
    let car_text = |k: &'static str| car.and_then(|c| get(c, k)).and_then(text);
    let plate_object = match m.object {
        Some(o) if o.is_object() => Some(o),
        Some(a) => a.elements().and_then(|mut a| {
            a.find(|o| {
                o.is_object()
                    && get(*o, "ObjectType").and_then(J::as_str).is_some_and(|t| t.eq_ignore_ascii_case("Plate"))
            })
        }),
        None => None,
    };
    let current = m.current_plate_info.and_then(J::elements).and_then(|mut a| a.next()).filter(|c| c.is_object());
    let plate_number = car_text("PlateNumber")
        .or_else(|| plate_object.and_then(|o| get(o, "Text")).and_then(text))
        .or_else(|| current.and_then(|c| get(c, "Text")).and_then(text))
        .or_else(|| m.plate_number.and_then(text))?;
    let confidence = plate_object
        .and_then(|o| get(o, "Confidence"))
        .or_else(|| car.and_then(|c| get(c, "Confidence")))
        .and_then(number)
        .filter(|c| *c > 0.0 && *c <= 100.0);
    let vehicle_obj = m.vehicle.filter(|v| v.is_object());
    let vehicle_text = |k: &'static str| vehicle_obj.and_then(|v| get(v, k)).and_then(text);
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
fn counts<'a, J: Json<'a>>(m: &PayloadMembers<J>) -> Option<Counts> {
    let count = |v: J| number(v).filter(|n| *n >= 0.0 && *n < 1e15).map(|n| n as u64);
    let sub = |flat: Option<J>, nested: Option<J>| {
        flat.and_then(count).or_else(|| nested.and_then(|s| get(s, "Total")).and_then(count))
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
        k.list_part("t", p.target_ids);
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
    use proptest::prelude::*;
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
        for names in [&PayloadMembers::NAMES[..], &ObjectMembers::NAMES[..]] {
            for (i, a) in names.iter().enumerate() {
                assert!(!names[i + 1..].iter().any(|b| a.eq_ignore_ascii_case(b)), "{a} twice");
            }
        }
    }

    /// What normalisation reads from a payload: from its text as the decoder reads it (`None`
    /// when the quick check leaves it to `serde_json`), and from the `serde_json::Value`.
    fn read_both(raw: &str, code: &str) -> (Option<Option<PayloadRead>>, Result<Option<PayloadRead>, bool>) {
        let tz = TimeZone::get("America/Bogota").unwrap();
        let kind = kind_for_code(code);
        let mut pick = Pick::new();
        let quick = quick_read(raw, &PayloadMembers::NAMES, &mut pick)
            .map(|object| object.then(|| read_payload(&PayloadMembers::from(pick.finish()), code, kind, &tz)));
        if let Some(quick) = &quick {
            // The members read in the check, as a second pass over the object reads them.
            let again = quick_check(raw)
                .then(|| RawJson(raw).entries().map(|e| read_payload(&PayloadMembers::of(e), code, kind, &tz)));
            assert_eq!(again.as_ref(), Some(quick));
        }
        let value = serde_json::from_str::<Value>(raw).map_err(|e| e.is_eof());
        let whole =
            value.map(|v| v.as_object().map(|m| read_payload(&PayloadMembers::of(entries_of(m)), code, kind, &tz)));
        (quick, whole)
    }

    /// Payloads made of the names normalisation reads (in several cases), repeated names and
    /// values of every shape, pretty-printed or not.
    fn payload() -> impl Strategy<Value = String> {
        let names: Vec<String> = PayloadMembers::NAMES
            .iter()
            .chain(&ObjectMembers::NAMES)
            .chain(&["Text", "Color", "Category", "MainColor", "Total", "Other"])
            .chain(&["PlateNumber", "VehicleType", "VehicleColor", "Brand", "SubBrand", "Direction", "PlateColor"])
            .flat_map(|n| [n.to_string(), n.to_ascii_lowercase(), n.to_ascii_uppercase()])
            .collect();
        let name = proptest::sample::select(names);
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("0".to_owned()),
            Just("-0".to_owned()),
            Just("87".to_owned()),
            Just("-3.5".to_owned()),
            Just("1e3".to_owned()),
            Just("1660425993".to_owned()),
            Just("43332082110.0".to_owned()),
            Just("\"Plate\"".to_owned()),
            Just("\"Human\"".to_owned()),
            Just("\" 12 \"".to_owned()),
            Just("\"a\\/b\\\"c\"".to_owned()),
            Just("\"\\u0041\"".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"2022-08-13 21:26:33\"".to_owned()),
            Just("[1000, 2000, 3000, 4000]".to_owned()),
            any::<u16>().prop_map(|n| n.to_string()),
        ];
        let value = leaf.prop_recursive(3, 32, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((name.clone(), inner), 0..6).prop_map(|m| {
                    let m: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\" : {v}")).collect();
                    format!("{{\n   {}\n}}", m.join(",\n   "))
                }),
            ]
        });
        value.prop_map(|v| if v.starts_with('{') { v } else { format!("{{\"Object\":{v}}}") })
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn payloads_read_from_text_as_from_values(raw in payload()) {
            for code in ["TrafficJunction", "NumberStat", "SmartMotionHuman", "FaceDetection", "X"] {
                let (quick, whole) = read_both(&raw, code);
                if let Some(quick) = quick {
                    proptest::prop_assert_eq!(Ok(quick), whole, "{}", code);
                }
            }
        }
    }

    #[test]
    fn sample_payloads_are_read_from_text() {
        for raw in [
            "{\n   \"Id\" : [ 0 ],\n   \"RegionName\" : [ \"Region1\" ],\n   \"SmartMotionEnable\" : true\n}",
            "{\n   \"RegionName\" : [ \"Region1\" ],\n   \"WindowId\" : [ 0 ],\n   \"object\" : [\n      {\n         \"HumamID\" : 52599,\n         \"Rect\" : [ 2304, 736, 2752, 2944 ]\n      }\n   ]\n}",
            "{ \"Objects\" : [ { \"BoundingBox\" : [ 2624, 4760, 3024, 6240 ], \"ObjectID\" : 42840, \"ObjectType\" : \"Human\", \"Source\" : 0.0 } ], \"PTS\" : 43332082110.0, \"UTC\" : 1660425993, \"UTCMS\" : 0 }",
        ] {
            let (quick, whole) = read_both(raw, "SmartMotionHuman");
            assert_eq!(Ok(quick.expect("read from text")), whole);
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
            let map = map(m.clone());
            let lookup =
                |n: &str| map.get(n).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v));
            let want: Vec<_> = PayloadMembers::NAMES.iter().map(|n| lookup(n)).collect();
            assert_eq!(PayloadMembers::of(entries_of(&map)).values(), want, "{m:?}");
            assert_eq!(PayloadMembers::NAMES.map(|n| get(&m, n)).to_vec(), want, "{m:?}");
            let want: Vec<_> = ObjectMembers::NAMES.iter().map(|n| lookup(n)).collect();
            assert_eq!(ObjectMembers::of(entries_of(&map)).values(), want, "{m:?}");
            // Read from the text too, every member repeated (a map keeps the last).
            let text = m.to_string();
            let doubled = format!("{}, {}", text.trim_end_matches('}'), text.trim_start_matches('{'));
            let doubled = if map.is_empty() { text.clone() } else { doubled };
            for raw in [&text, &doubled] {
                let got: Vec<_> = PayloadMembers::of(RawJson(raw).entries().unwrap()).values();
                let got: Vec<_> =
                    got.into_iter().map(|v| v.map(|v| serde_json::from_str::<Value>(v.0).unwrap())).collect();
                let want: Vec<_> = PayloadMembers::NAMES.iter().map(|n| lookup(n).cloned()).collect();
                assert_eq!(got, want, "{raw}");
            }
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
