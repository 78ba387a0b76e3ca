//! Avigilon Control Center (ACC) **Web Endpoint** REST API (`https://<server>:8443/mt/api/rest/v1`):
//! the pure half of the polling source. Protocol facts: `docs/protocols/avigilon.md` of the
//! shared folder (section numbers below refer to it).
//!
//! Nothing here does I/O, reads a clock or draws randomness: the poller sends the requests,
//! passes `(HTTP status, body bytes)` in and gets typed values out.
//!
//! * [`auth`]: the login authorization token (§1.1, [`authorization_token`]), the login and
//!   logout bodies ([`LoginRequest`], [`logout_body`]) and the login answer ([`parse_login`] →
//!   [`Session`]). Secrets (password, user key, token, session) are [`Secret`]s, so they never
//!   reach `Debug`/`Display` output.
//! * [`response`]: the `{"status", "result"}` envelope every route answers with, and the error
//!   envelope (§1.5) as a typed [`ApiError`] (HTTP status, `statusCode`, `meta.code`,
//!   `meta.name`, `message`). An error is never mistaken for an empty result (legacy bug 3).
//! * [`events`]: the `/events/search` query string ([`EventSearch`], §2.1-§2.2), the answer
//!   ([`parse_events`] → [`EventsPage`]: events kept whole as JSON, continuation token) and
//!   normalisation ([`normalise`] → [`Normalised`], §2.3): state from the topic, rule, area,
//!   activity, objects, kind, UTC times and the idempotency key
//!   `avigilon:<originatingServerId>:<thisId>`.
//! * [`cameras`]: `/server/ids` and `/cameras` ([`parse_servers`], [`parse_cameras`], §3), and
//!   the legacy allowed-camera file ([`parse_camera_ids`], §6.1).
//!
//! Routes are relative to the API root (`/mt/api/rest/v1/`, see [`API_ROOT`]); send the
//! session in the [`SESSION_HEADER`] header (and, for servers older than ACC 7.12, in the
//! query too: [`EventSearch::query_with_session`]).
//!
//! ```
//! use camgate_core::config::Secret;
//! use camgate_protocols::avigilon::{EventSearch, NormaliseOptions, authorization_token, parse_events};
//!
//! let token = authorization_token("myusernonce", 1647903125, &Secret::new("123456"), None);
//! assert_eq!(
//!     token.expose(),
//!     "myusernonce:1647903125:458cfdb4e2e840423aff977cd1a0080a799531fa12fda6d3b05b8230e64b1b25"
//! );
//!
//! let topics = ["DEVICE_ANALYTICS_STOP".to_owned()];
//! let search = EventSearch::TimeRange {
//!     server_id: "srv1",
//!     from: "2026-05-17T19:00:00Z".parse().unwrap(),
//!     to: "2026-05-17T19:01:00Z".parse().unwrap(),
//!     topics: &topics,
//!     device_ids: &[],
//!     limit: Some(1000),
//! };
//! assert_eq!(
//!     search.query(),
//!     "queryType=TIME_RANGE&serverId=srv1&from=2026-05-17T19%3A00%3A00.000Z\
//!      &to=2026-05-17T19%3A01%3A00.000Z&eventTopics=DEVICE_ANALYTICS_STOP&limit=1000"
//! );
//!
//! let body = br#"{"status":"success","result":{"events":[{"type":"DEVICE_ANALYTICS_STOP",
//!   "thisId":"88123","linkedEventId":"88120","originatingServerId":"srv1",
//!   "timestamp":"2026-05-17T19:00:12.345Z","cameraId":"cam1","activity":"OBJECT_COUNTING_ENTER",
//!   "analyticEventName":"AFORO ENTRADA PARQUEADERO NORTE","area":"",
//!   "classifiedObjects":[{"subclass":"VEHICLE_CAR","objectId":17}]}]}}"#;
//! let page = parse_events(200, body).unwrap();
//! assert_eq!(page.continuation(1000), None, "no token: the last page");
//! let e = page.normalise(&NormaliseOptions::default()).next().unwrap().unwrap();
//! assert_eq!(e.key, "avigilon:srv1:88123");
//! assert_eq!((e.kind, e.state), (camgate_core::Kind::Counting, Some(camgate_core::State::Stop)));
//! assert_eq!(e.rule.as_deref(), Some("AFORO ENTRADA PARQUEADERO NORTE"));
//! assert_eq!(e.objects[0].kind, "vehicle");
//! ```
//!
//! [`Secret`]: camgate_core::config::Secret

pub mod auth;
pub mod cameras;
pub mod events;
pub mod response;

#[cfg(test)]
mod tests;

pub use auth::{LoginRequest, Session, authorization_token, logout_body, parse_login, parse_logout, token_timestamp};
pub use cameras::{
    Camera, CameraFileError, Listing, Server, Verbosity, cameras_query, parse_camera_ids, parse_cameras, parse_servers,
};
pub use events::{
    EventError, EventProblem, EventSearch, EventsPage, MAX_ID, MAX_OBJECTS, NormaliseOptions, Normalised,
    from_server_time, iso_millis, kind_for, normalise, object_type, parse_events, state_for_topic, to_server_time,
};
pub use response::{ApiError, ResponseError};

/// The API root on the Web Endpoint; routes below are relative to it.
pub const API_ROOT: &str = "/mt/api/rest/v1/";
/// The Web Endpoint's default HTTPS port (appliances use 443, §4).
pub const DEFAULT_PORT: u16 = 8443;
/// The header that carries the session on every authenticated request (§1.3).
pub const SESSION_HEADER: &str = "x-avg-session";

/// `POST`, body [`LoginRequest::body`]; answer [`parse_login`].
pub const LOGIN_PATH: &str = "login";
/// `POST`, body [`logout_body`]; answer [`parse_logout`].
pub const LOGOUT_PATH: &str = "logout";
/// `GET`, query [`EventSearch::query`]; answer [`parse_events`].
pub const EVENTS_SEARCH_PATH: &str = "events/search";
/// `GET`; answer [`parse_servers`].
pub const SERVER_IDS_PATH: &str = "server/ids";
/// `GET`, query [`cameras_query`]; answer [`parse_cameras`].
pub const CAMERAS_PATH: &str = "cameras";
/// `GET`, no session: `text/plain` `GOOD`, `WARN` or `BAD` (200 or 500).
pub const HEALTH_PATH: &str = "health";

/// Longest text copied from a response into a field (names, rules, ids, messages).
pub const MAX_TEXT: usize = 256;

/// `s` trimmed, cut to [`MAX_TEXT`] bytes, control characters dropped; `None` when nothing is
/// left (fields that do not apply are absent, not empty).
pub(crate) fn text(s: &str) -> Option<String> {
    let s = crate::key::clip(s.trim(), MAX_TEXT);
    let out: String = s.chars().filter(|c| !c.is_control()).collect();
    let out = out.trim();
    (!out.is_empty()).then(|| out.to_owned())
}

/// A JSON value's name for messages.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
