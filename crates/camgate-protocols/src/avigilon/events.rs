//! `GET events/search` (§2): the query string, the answer, and each event normalised.

use camgate_core::config::Secret;
use camgate_core::{Kind, Object, State};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};
use url::form_urlencoded;

use super::response::{ResponseError, result_object};
use super::{json_type, text};
use crate::key::clip;

/// Most objects kept per event; the rest stay in `data`.
pub const MAX_OBJECTS: usize = 256;
/// Longest `originatingServerId` or `thisId` accepted, in bytes (real ones are 22 and ~10).
pub const MAX_ID: usize = 64;

/// One `events/search` request (§2.1, §2.2). [`query`](Self::query) is the query string
/// without the session: safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSearch<'a> {
    /// Events whose time is in `from..to` (times by the **server's** clock: see
    /// [`to_server_time`]), sent as ISO 8601 UTC with milliseconds (sub-millisecond digits are
    /// cut).
    TimeRange {
        /// The ACC server the events came from (`/server/ids`); each server is queried apart.
        server_id: &'a str,
        from: Timestamp,
        to: Timestamp,
        /// `eventTopics`, the key repeated per topic; none: the server's default.
        topics: &'a [String],
        /// `deviceIds` (camera ids), the key repeated per id; none: every device.
        device_ids: &'a [String],
        /// `limit`; `None` leaves the server's default (1000).
        limit: Option<u32>,
    },
    /// Events active now (a START without its STOP yet).
    Active { server_id: &'a str, topics: &'a [String], device_ids: &'a [String], limit: Option<u32> },
    /// The next page: only the token is sent (`serverId` and `limit` are refused on
    /// continuation by some servers, §2.2).
    Continue { token: &'a str },
}

impl EventSearch<'_> {
    /// The query string (no leading `?`), percent-encoded (`application/x-www-form-urlencoded`:
    /// `+`, `/`, `=` and `:` escaped, so base-64 tokens and times survive).
    pub fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::with_capacity(160));
        match *self {
            EventSearch::TimeRange { server_id, from, to, topics, device_ids, limit } => {
                q.append_pair("queryType", "TIME_RANGE");
                q.append_pair("serverId", server_id);
                q.append_pair("from", &iso_millis(from));
                q.append_pair("to", &iso_millis(to));
                filters(&mut q, topics, device_ids, limit);
            }
            EventSearch::Active { server_id, topics, device_ids, limit } => {
                q.append_pair("queryType", "ACTIVE");
                q.append_pair("serverId", server_id);
                filters(&mut q, topics, device_ids, limit);
            }
            EventSearch::Continue { token } => {
                q.append_pair("queryType", "CONTINUE");
                q.append_pair("token", token);
            }
        }
        q.finish()
    }

    /// The query string with `session=` added, for servers older than ACC 7.12 that do not
    /// take the session from the header alone (`query_session` in the configuration, §1.3).
    /// A [`Secret`]: never log the URL it goes into.
    pub fn query_with_session(&self, session: &Secret) -> Secret {
        let mut q = self.query();
        q.push('&');
        q.push_str(&form_urlencoded::Serializer::new(String::new()).append_pair("session", session.expose()).finish());
        Secret::new(q)
    }
}

fn filters(
    q: &mut form_urlencoded::Serializer<'_, String>,
    topics: &[String],
    device_ids: &[String],
    limit: Option<u32>,
) {
    for t in topics {
        q.append_pair("eventTopics", t);
    }
    for d in device_ids {
        q.append_pair("deviceIds", d);
    }
    if let Some(l) = limit {
        q.append_pair("limit", &l.to_string());
    }
}

/// `2020-01-27T19:00:00.000Z`: the form the guide's examples use.
pub fn iso_millis(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A time by this machine's clock as the server's clock shows it: `ts + offset`, where
/// `offset` is how far the ACC server's clock is ahead of ours (`timestamp_offset`).
/// Saturates at the ends of the time range.
pub fn to_server_time(ts: Timestamp, server_clock_offset: SignedDuration) -> Timestamp {
    ts.checked_add(server_clock_offset).unwrap_or(if server_clock_offset.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// A time the server sent, by our clock: `ts − offset`. `None` when out of range.
pub fn from_server_time(ts: Timestamp, server_clock_offset: SignedDuration) -> Option<Timestamp> {
    ts.checked_sub(server_clock_offset).ok()
}

/// One answer of `events/search`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventsPage {
    /// `result.events`, each kept whole as the server sent it (normalise with
    /// [`normalise`]; an entry that is not an event becomes an [`EventError`] there).
    pub events: Vec<Value>,
    /// `result.token`, the continuation token; `None` when absent or empty.
    pub token: Option<String>,
}

impl EventsPage {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The token to ask for the next page with ([`EventSearch::Continue`]), or `None` when this
    /// page is the last (§2.2's robust loop): no token, an empty page, or fewer events than
    /// the `limit` the query asked for (`0`: the server's default, 1000). The caller still
    /// caps the number of pages.
    pub fn continuation(&self, limit: u32) -> Option<&str> {
        let limit = if limit == 0 { 1000 } else { limit };
        let full = u32::try_from(self.events.len()).map_or(true, |n| n >= limit);
        self.token.as_deref().filter(|_| full)
    }

    /// Every event normalised, in page order (copies each event; see
    /// [`into_normalised`](Self::into_normalised)).
    pub fn normalise<'a>(
        &'a self,
        opts: &'a NormaliseOptions,
    ) -> impl Iterator<Item = Result<Normalised, EventError>> + 'a {
        self.events.iter().map(move |e| normalise(e.clone(), opts))
    }

    /// Every event normalised, in page order, moving the JSON into `data`.
    pub fn into_normalised(self, opts: &NormaliseOptions) -> impl Iterator<Item = Result<Normalised, EventError>> + '_ {
        self.events.into_iter().map(move |e| normalise(e, opts))
    }
}

/// Read the answer of `events/search`. A success whose `result` has no `events` (or `null`)
/// is an empty page: the server said success. Anything else that is not the documented shape
/// is an error, never an empty page.
pub fn parse_events(http_status: u16, body: &[u8]) -> Result<EventsPage, ResponseError> {
    let mut result = result_object(http_status, body)?;
    let events = match result.remove("events") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(ResponseError::invalid(format!("`result.events` is {}, not an array", json_type(&other))));
        }
    };
    let token = match result.remove("token") {
        Some(Value::String(s)) => Some(s).filter(|s| !s.trim().is_empty()),
        Some(Value::Number(n)) => Some(n.to_string()),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(ResponseError::invalid(format!("`result.token` is {}, not a string", json_type(&other))));
        }
    };
    Ok(EventsPage { events, token })
}

/// How events are normalised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NormaliseOptions {
    /// How far the ACC server's clock is ahead of this machine's (negative: behind);
    /// `timestamp_offset` in the configuration. Subtracted from the times events carry.
    pub server_clock_offset: SignedDuration,
}

/// One event, ready to become a camgate [`Event`](camgate_core::Event): the poller adds id,
/// source, vendor (`avigilon`), receive time and schedule. `key` is the whole idempotency
/// key, not to be prefixed: the same ACC event has the same key whichever `[[avigilon]]`
/// entry fetched it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    /// See [`kind_for`].
    pub kind: Kind,
    /// `type`, the topic (`DEVICE_ANALYTICS_STOP`, ...).
    pub code: Option<String>,
    /// See [`state_for_topic`].
    pub state: Option<State>,
    /// `analyticEventName`: the name the integrator gave the rule in the ACC Client. Trimmed,
    /// otherwise as sent (zone rules normalise case and spaces).
    pub rule: Option<String>,
    /// `area`: the occupancy area of `Enter/Exit occupancy area` rules.
    pub area: Option<String>,
    /// `activity` (`OBJECT_COUNTING_ENTER`, `OBJECT_COUNTING_EXIT`, `OBJECT_PRESENT`, ...).
    pub activity: Option<String>,
    /// `cameraId` (the `id` of `/cameras`), or the single entry of `cameraIds`.
    pub camera_id: Option<String>,
    /// `originatingServerId`.
    pub server_id: String,
    /// `originatingServerName`.
    pub server_name: Option<String>,
    /// `thisId`.
    pub this_id: String,
    /// `linkedEventId` (a STOP's START); `None` for `-1`.
    pub linked_event_id: Option<String>,
    /// `timestamp` (else `eventTriggerTime`) as a UTC instant by our clock.
    pub occurred_at: Option<Timestamp>,
    /// `eventTriggerTime` as a UTC instant by our clock.
    pub trigger_time: Option<Timestamp>,
    /// A time that was present but unreadable or out of range, verbatim (clipped).
    pub time_error: Option<String>,
    /// `classifiedObjects`: `subclass` → `type` ([`object_type`]), `objectId` → `id`.
    pub objects: Vec<Object>,
    /// The whole event as the server sent it.
    pub data: Value,
    /// `avigilon:<originatingServerId>:<thisId>` (`%` and `:` inside an id escaped as `%25`
    /// and `%3A`).
    pub key: String,
}

/// Why an entry of `result.events` is not an event camgate can store. It keeps the entry, for
/// the dead-letter table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{problem}")]
pub struct EventError {
    pub problem: EventProblem,
    /// The entry as sent.
    pub event: Value,
}

/// What is wrong with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventProblem {
    /// The entry is not a JSON object.
    #[error("an entry of `result.events` is not a JSON object")]
    NotAnObject,
    /// `originatingServerId` or `thisId` is absent, null or empty: the event has no
    /// idempotency key.
    #[error("an event without `{0}` has no idempotency key (originatingServerId + thisId)")]
    MissingId(&'static str),
    /// The id is not a string or an integer, holds spaces or control characters, or is longer
    /// than [`MAX_ID`] bytes.
    #[error("an event whose `{0}` is not an id (a string or integer without spaces, at most 64 bytes)")]
    InvalidId(&'static str),
}

impl EventProblem {
    /// A short label for metrics and dead letters.
    pub fn as_str(self) -> &'static str {
        match self {
            EventProblem::NotAnObject => "not-an-object",
            EventProblem::MissingId(_) => "missing-id",
            EventProblem::InvalidId(_) => "invalid-id",
        }
    }
}

/// Normalise one entry of [`EventsPage::events`].
pub fn normalise(event: Value, opts: &NormaliseOptions) -> Result<Normalised, EventError> {
    let Value::Object(m) = &event else {
        return Err(EventError { problem: EventProblem::NotAnObject, event });
    };
    let ids = id_of(m, "originatingServerId").and_then(|s| Ok((s, id_of(m, "thisId")?)));
    let (server_id, this_id) = match ids {
        Ok(ids) => ids,
        Err(problem) => return Err(EventError { problem, event }),
    };
    let field = |k: &str| m.get(k).and_then(Value::as_str).and_then(text);
    let code = field("type");
    let activity = field("activity");
    let camera_id = field("cameraId").or_else(|| match m.get("cameraIds").and_then(Value::as_array) {
        Some(ids) if ids.len() == 1 => ids[0].as_str().and_then(text),
        _ => None,
    });
    let linked_event_id = m.get("linkedEventId").and_then(loose_id).filter(|l| l != "-1");
    let mut time_errors = Vec::new();
    let mut time = |k: &'static str| match m.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => {
            let at = v.as_str().and_then(parse_time).and_then(|t| from_server_time(t, opts.server_clock_offset));
            if at.is_none() {
                let raw = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                time_errors.push(format!("{k}: {}", clip(&raw, 64)));
            }
            at
        }
    };
    let timestamp = time("timestamp");
    let trigger_time = time("eventTriggerTime");
    let objects = objects(m.get("classifiedObjects"));
    let kind = kind_for(code.as_deref(), activity.as_deref(), &objects);
    let key = format!("avigilon:{}:{}", escape(&server_id), escape(&this_id));
    Ok(Normalised {
        kind,
        state: code.as_deref().and_then(state_for_topic),
        rule: field("analyticEventName"),
        area: field("area"),
        activity,
        camera_id,
        server_name: field("originatingServerName"),
        linked_event_id,
        occurred_at: timestamp.or(trigger_time),
        trigger_time,
        time_error: (!time_errors.is_empty()).then(|| time_errors.join("; ")),
        objects,
        code,
        server_id,
        this_id,
        key,
        data: event,
    })
}

/// An id as a string: a string (trimmed) or an integer.
fn loose_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => text(s),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A required id of the key.
fn id_of(m: &Map<String, Value>, k: &'static str) -> Result<String, EventProblem> {
    match m.get(k) {
        None | Some(Value::Null) => Err(EventProblem::MissingId(k)),
        Some(Value::String(s)) if s.trim().is_empty() => Err(EventProblem::MissingId(k)),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.len() > MAX_ID || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(EventProblem::InvalidId(k));
            }
            Ok(s.to_owned())
        }
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(_) => Err(EventProblem::InvalidId(k)),
    }
}

/// `%` → `%25`, `:` → `%3A`, so the two ids cannot run into each other.
fn escape(id: &str) -> std::borrow::Cow<'_, str> {
    if !id.contains(['%', ':']) {
        return id.into();
    }
    id.replace('%', "%25").replace(':', "%3A").into()
}

/// An ISO 8601 time: with `Z` or an offset; without one it is taken as UTC (the Web
/// Endpoint sends UTC).
fn parse_time(raw: &str) -> Option<Timestamp> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 64 {
        return None;
    }
    raw.parse::<Timestamp>().ok().or_else(|| {
        raw.parse::<jiff::civil::DateTime>().ok()?.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
    })
}

/// `classifiedObjects` → objects. Entries that are not objects are skipped.
fn objects(v: Option<&Value>) -> Vec<Object> {
    let Some(Value::Array(a)) = v else { return Vec::new() };
    a.iter()
        .filter_map(Value::as_object)
        .take(MAX_OBJECTS)
        .map(|o| Object {
            kind: object_type(o.get("subclass").and_then(Value::as_str).unwrap_or("")),
            id: o.get("objectId").and_then(loose_id).map(|id| clip(&id, 64).to_owned()),
            bbox: None,
            confidence: None,
        })
        .collect()
}

/// camgate's object type for an Avigilon `subclass` (case-insensitive):
///
/// | subclass | type |
/// |---|---|
/// | `PERSON`, `PERSON_BODY` | `human` |
/// | `PERSON_FACE` | `face` |
/// | `VEHICLE`, `VEHICLE_CAR`, `VEHICLE_TRUCK`, `VEHICLE_BUS`, `VEHICLE_MOTORCYLE` (sic), `VEHICLE_MOTORCYCLE` | `vehicle` |
/// | `VEHICLE_BICYCLE` | `bicycle` |
/// | absent or empty | `unknown` |
/// | anything else | the subclass in lower case |
///
/// The subclass itself stays in `data`.
pub fn object_type(subclass: &str) -> String {
    let s = subclass.trim();
    let known = [
        ("PERSON", "human"),
        ("PERSON_BODY", "human"),
        ("PERSON_FACE", "face"),
        ("VEHICLE", "vehicle"),
        ("VEHICLE_CAR", "vehicle"),
        ("VEHICLE_TRUCK", "vehicle"),
        ("VEHICLE_BUS", "vehicle"),
        ("VEHICLE_MOTORCYLE", "vehicle"),
        ("VEHICLE_MOTORCYCLE", "vehicle"),
        ("VEHICLE_BICYCLE", "bicycle"),
    ];
    if let Some((_, t)) = known.iter().find(|(k, _)| k.eq_ignore_ascii_case(s)) {
        return (*t).to_owned();
    }
    match text(s) {
        Some(t) => clip(&t, 32).to_ascii_lowercase(),
        None => "unknown".to_owned(),
    }
}

/// The event's state from its topic (case-insensitive):
///
/// * `…_START`, `…_STARTED`, `…_ON` and `DEVICE_LPR_PLATE_FOUND`: start;
/// * `…_STOP`, `…_STOPPED`, `…_OFF` and `DEVICE_LPR_PLATE_LOST`: stop;
/// * `DEVICE_LPR_PLATE_UPDATE`: state;
/// * any other topic (`DEVICE_TAMPERING`, `DEVICE_LPR_MATCH`, `USER_LOGIN`, ...): pulse;
/// * no topic: `None`.
pub fn state_for_topic(topic: &str) -> Option<State> {
    let t = topic.trim().to_ascii_uppercase();
    if t.is_empty() {
        return None;
    }
    let ends = |s: &str| t.ends_with(s);
    Some(if t == "DEVICE_LPR_PLATE_FOUND" || ends("_START") || ends("_STARTED") || ends("_ON") {
        State::Start
    } else if t == "DEVICE_LPR_PLATE_LOST" || ends("_STOP") || ends("_STOPPED") || ends("_OFF") {
        State::Stop
    } else if t == "DEVICE_LPR_PLATE_UPDATE" {
        State::State
    } else {
        State::Pulse
    })
}

/// The event's kind, first by `activity`, then by topic, then by the classified objects
/// (all case-insensitive):
///
/// | rule | kind |
/// |---|---|
/// | activity `OBJECT_COUNTING_ENTER`, `OBJECT_COUNTING_EXIT` | `counting` |
/// | activity `OBJECTS_CROSSED_BEAM` | `line_crossing` |
/// | activity `OBJECT_ENTERS` / `OBJECT_LEAVES` | `region_entry` / `region_exit` |
/// | activity `OBJECT_LOITERING` | `loitering` |
/// | topic `DEVICE_MOTION_*` | `motion` |
/// | topic `DEVICE_LPR_*` | `plate` |
/// | topic `DEVICE_DIGITAL_INPUT_*` | `alarm_input` |
/// | topic `DEVICE_TAMPERING` | `tamper` |
/// | topic `DEVICE_VIDEO_SIGNAL_LOST` | `video_loss` |
/// | any other activity (`OBJECT_PRESENT`, `OBJECT_NOT_PRESENT`, `OBJECT_STOPPED`, `PROHIBITED_DIRECTION`, ...) or topic: a `human` object | `human` |
/// | ... else a `vehicle` or `bicycle` object | `vehicle` |
/// | ... else a `face` object | `face` |
/// | ... else topic `DEVICE_CLASSIFIED_OBJECT_MOTION_*` | `motion` |
/// | otherwise | `other` |
pub fn kind_for(topic: Option<&str>, activity: Option<&str>, objects: &[Object]) -> Kind {
    let activity = activity.unwrap_or("").trim();
    let is = |a: &str| activity.eq_ignore_ascii_case(a);
    if is("OBJECT_COUNTING_ENTER") || is("OBJECT_COUNTING_EXIT") {
        return Kind::Counting;
    }
    if is("OBJECTS_CROSSED_BEAM") {
        return Kind::LineCrossing;
    }
    if is("OBJECT_ENTERS") {
        return Kind::RegionEntry;
    }
    if is("OBJECT_LEAVES") {
        return Kind::RegionExit;
    }
    if is("OBJECT_LOITERING") {
        return Kind::Loitering;
    }
    let topic = topic.unwrap_or("").trim().to_ascii_uppercase();
    let by_topic = [
        ("DEVICE_MOTION_", Kind::Motion),
        ("DEVICE_LPR_", Kind::Plate),
        ("DEVICE_DIGITAL_INPUT_", Kind::AlarmInput),
        ("DEVICE_TAMPERING", Kind::Tamper),
        ("DEVICE_VIDEO_SIGNAL_LOST", Kind::VideoLoss),
    ];
    if let Some((_, k)) = by_topic.iter().find(|(p, _)| topic.starts_with(p)) {
        return *k;
    }
    let has = |t: &[&str]| objects.iter().any(|o| t.contains(&o.kind.as_str()));
    if has(&["human"]) {
        Kind::Human
    } else if has(&["vehicle", "bicycle"]) {
        Kind::Vehicle
    } else if has(&["face"]) {
        Kind::Face
    } else if topic.starts_with("DEVICE_CLASSIFIED_OBJECT_MOTION_") {
        Kind::Motion
    } else {
        Kind::Other
    }
}
