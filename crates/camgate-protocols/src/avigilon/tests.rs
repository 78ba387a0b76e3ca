//! The shapes of avigilon.md: the token vectors of §1.1, the login answer of §1.2, the error
//! envelope of §1.5, the event captures of §2.3, the server and camera lists of §3 and the
//! allowed-camera file of §6.1; the query strings of §2.1-§2.2; and properties: no input
//! panics, tokens and keys keep their format, query strings decode back to what was asked.

use camgate_core::config::Secret;
use camgate_core::{Kind, Object, State};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};
use url::form_urlencoded;

use super::*;

/// The DEVICE_ANALYTICS_START capture of §2.3 (awi, ACC 7.x), ids as in the guide.
const START: &str = r#"{"targetIdsDeprecated":[],
 "classifiedObjects":[{"subclass":"PERSON_BODY","objectId":32775346}],
 "analyticEventName":"Puerta Norte personas",
 "area":"", "activity":"OBJECT_PRESENT",
 "eventTriggerTime":"2022-01-17T09:35:55.429Z",
 "cameraId":"4xIx1DMwMLSwtncAAA",
 "thisId":"32732","linkedEventId":"-1","timestamp":"2022-01-17T09:35:55.048Z",
 "originatingEventId":"32732","originatingServerName":"ARCHER","location":"Unknown",
 "type":"DEVICE_ANALYTICS_START","originatingServerId":"UMooFPEhRpayellyz_q3iA",
 "cameraIds":[],"entityIds":[]}"#;

/// Its STOP, as the legacy system reads them: same rule, area and activity; no objects.
const STOP: &str = r#"{"analyticEventName":"Puerta Norte personas","area":"","activity":"OBJECT_PRESENT",
 "cameraId":"4xIx1DMwMLSwtncAAA","thisId":"32740","linkedEventId":"32732",
 "timestamp":"2022-01-17T09:36:10.000Z","originatingEventId":"32740","originatingServerName":"ARCHER",
 "type":"DEVICE_ANALYTICS_STOP","originatingServerId":"UMooFPEhRpayellyz_q3iA"}"#;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn event(json: &str) -> Normalised {
    normalise(serde_json::from_str(json).unwrap(), &NormaliseOptions::default()).unwrap()
}

fn page(events: &[&str], token: Option<&str>) -> Vec<u8> {
    let events: Vec<Value> = events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let mut result = json!({ "events": events });
    if let Some(t) = token {
        result["token"] = json!(t);
    }
    json!({ "status": "success", "result": result }).to_string().into_bytes()
}

/// The pairs of a query string, decoded.
fn pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

// §1.1

#[test]
fn token_vectors_of_the_guide() {
    let t = authorization_token("myusernonce", 1647903125, &Secret::new("123456"), None);
    assert_eq!(t.expose(), "myusernonce:1647903125:458cfdb4e2e840423aff977cd1a0080a799531fa12fda6d3b05b8230e64b1b25");
    let t = authorization_token("myusernonce", 1624125615, &Secret::new("myuserkey"), None);
    assert_eq!(t.expose(), "myusernonce:1624125615:373a0ed810b2a2266e7fac093f8fd03d16f271c1816f0fd3d97739e19db62232");
}

#[test]
fn token_keeps_the_nonce_and_adds_the_integration_id_only_when_given() {
    let key = Secret::new("myuserkey");
    let t = authorization_token("FO#12345678", 1624125615, &key, Some("Integr-ABC"));
    assert_eq!(
        t.expose(),
        "FO#12345678:1624125615:373a0ed810b2a2266e7fac093f8fd03d16f271c1816f0fd3d97739e19db62232:Integr-ABC",
        "the nonce is not hashed and never lower-cased; the integration id is appended as given"
    );
    let bare = authorization_token("FO#12345678", 1624125615, &key, Some(""));
    assert_eq!(bare.expose().split(':').count(), 3, "an empty integration id adds no fourth part");
    assert!(!format!("{t:?} {t}").contains("373a0ed8"), "the token never formats");
}

#[test]
fn token_timestamp_is_the_servers_clock() {
    let now = ts("2026-05-17T12:00:00.900Z");
    assert_eq!(token_timestamp(now, SignedDuration::ZERO), now.as_second());
    assert_eq!(token_timestamp(now, SignedDuration::from_secs(-300)), now.as_second() - 300);
    assert_eq!(token_timestamp(Timestamp::MAX, SignedDuration::from_secs(10)), Timestamp::MAX.as_second());
}

// §1.2-§1.4

#[test]
fn login_body_has_the_four_fields_and_stays_secret() {
    let (password, token) = (Secret::new("pa\"ss"), Secret::new("n:1:abc"));
    let req =
        LoginRequest { username: "operador", password: &password, client_name: "camgate", authorization_token: &token };
    let body = req.body();
    let v: Value = serde_json::from_str(body.expose()).unwrap();
    assert_eq!(
        v,
        json!({"username": "operador", "password": "pa\"ss", "clientName": "camgate", "authorizationToken": "n:1:abc"})
    );
    let shown = format!("{req:?} {body:?} {body}");
    assert!(!shown.contains("pa\\\"ss") && !shown.contains("n:1:abc"), "{shown}");
}

#[test]
fn login_answer() {
    let body = br#"{"status":"success","result":{"session":"c2Vzc2lvbi10b2tlbg-_AbC","externalUserId":"dXNlci1pZC0wMDAwMDAwMA","domainId":"ZG9tYWluLWlkLTAwMDAwMDAw"}}"#;
    let s = parse_login(200, body).unwrap();
    assert_eq!(s.session.expose(), "c2Vzc2lvbi10b2tlbg-_AbC");
    assert_eq!(s.external_user_id.as_deref(), Some("dXNlci1pZC0wMDAwMDAwMA"));
    assert_eq!(s.domain_id.as_deref(), Some("ZG9tYWluLWlkLTAwMDAwMDAw"));
    assert!(!format!("{s:?}").contains("c2Vzc2lvbi10b2tlbg"), "the session never formats");
    // Only the session is required.
    let s = parse_login(200, br#"{"status":"success","result":{"session":"abc"}}"#).unwrap();
    assert_eq!((s.session.expose(), s.domain_id), ("abc", None));
    for (body, what) in [
        (&br#"{"status":"success","result":{}}"#[..], "result.session"),
        (br#"{"status":"success","result":{"session":""}}"#, "empty"),
        (br#"{"status":"success","result":{"session":42}}"#, "a number"),
        (br#"{"status":"success"}"#, "without `result`"),
        (br#"{"status":"success","result":[]}"#, "an array"),
    ] {
        let e = parse_login(200, body).unwrap_err();
        assert!(matches!(e, ResponseError::Invalid { .. }) && e.to_string().contains(what), "{what}: {e}");
    }
}

#[test]
fn refused_logins_are_auth_errors() {
    let body =
        br#"{"status":"error","statusCode":401,"message":"Unauthorized","meta":{"code":-3,"name":"NOT_AUTHORIZED"}}"#;
    let e = parse_login(401, body).unwrap_err();
    assert!(e.is_auth(), "{e}");
    let api = e.api().unwrap();
    assert_eq!(
        (api.http_status, api.status_code, api.code, api.name.as_deref()),
        (401, Some(401), Some(-3), Some("NOT_AUTHORIZED"))
    );
    // A bad token: 403 with whatever body, even none.
    let e = parse_login(403, b"").unwrap_err();
    assert!(e.is_auth() && e.to_string().contains("timestamp_offset"), "{e}");
}

#[test]
fn logout() {
    let body = logout_body(&Secret::new("sess"));
    assert_eq!(serde_json::from_str::<Value>(body.expose()).unwrap(), json!({"session": "sess"}));
    assert!(!format!("{body:?}").contains("sess"));
    assert_eq!(parse_logout(200, br#"{"status":"success"}"#), Ok(()));
    assert_eq!(parse_logout(204, b""), Ok(()));
    assert!(parse_logout(401, br#"{"status":"error","statusCode":401}"#).unwrap_err().is_auth());
}

// §1.5

#[test]
fn error_envelope_of_the_guide() {
    let body =
        br#"{"status":"error","statusCode":404,"message":"camera not found.","meta":{"code":-25,"name":"NOT_FOUND"}}"#;
    let e = parse_events(404, body).unwrap_err();
    let ResponseError::Api(api) = &e else { panic!("{e:?}") };
    assert_eq!(
        api,
        &ApiError {
            http_status: 404,
            status_code: Some(404),
            code: Some(-25),
            name: Some("NOT_FOUND".into()),
            message: Some("camera not found.".into()),
        }
    );
    assert_eq!(
        e.to_string(),
        "Avigilon Web Endpoint answered HTTP 404, NOT_FOUND (-25): camera not found. (not found)"
    );
    assert!(!api.is_auth() && !api.is_transient());
}

#[test]
fn errors_are_never_empty_pages() {
    // "status":"error" with HTTP 200: the body decides.
    let e = parse_events(200, br#"{"status":"error","statusCode":401,"message":"session expired"}"#).unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert_eq!(e.api().unwrap().status(), 401);
    // An HTTP error with a success-looking body: the status decides.
    let e = parse_events(503, &page(&[], None)).unwrap_err();
    assert!(e.api().unwrap().is_transient(), "{e}");
    // A proxy's HTML page.
    let e = parse_events(504, b"<html>\n<body>Gateway   Timeout</body></html>").unwrap_err();
    let api = e.api().unwrap();
    assert_eq!((api.status(), api.message.as_deref()), (504, Some("<html> <body>Gateway Timeout</body></html>")));
    assert!(api.is_transient());
    // A success status with a body that is not the envelope.
    for (body, what) in [
        (&b"<html>ok</html>"[..], "not JSON"),
        (b"[]", "an array"),
        (br#"{"status":"pending","result":{}}"#, "\"pending\""),
        (br#"{"status":7,"result":{}}"#, "a number"),
        (br#"{"status":"success","result":{"events":{}}}"#, "`result.events` is an object"),
        (br#"{"status":"success","result":{"events":[],"token":[1]}}"#, "`result.token` is an array"),
        (br#"{"status":"success"}"#, "without `result`"),
    ] {
        let e = parse_events(200, body).unwrap_err();
        assert!(matches!(e, ResponseError::Invalid { .. }) && e.to_string().contains(what), "{what}: {e}");
    }
}

#[test]
fn error_messages_are_clipped_and_flattened() {
    let long = "x".repeat(5000);
    let body = json!({"status": "error", "statusCode": 500, "message": format!("bad\n\u{1}{long}")}).to_string();
    let e = parse_events(500, body.as_bytes()).unwrap_err();
    let m = e.api().unwrap().message.clone().unwrap();
    assert!(m.len() <= MAX_TEXT && m.starts_with("badxxx"), "{m}");
    let e = parse_events(400, br#"{"status":"error","message":{"detail":"from is required"}}"#).unwrap_err();
    assert!(e.to_string().contains("from is required"), "{e}");
}

// §2.1-§2.2

#[test]
fn time_range_query() {
    let topics = ["DEVICE_ANALYTICS_STOP".to_owned(), "DEVICE_ANALYTICS_START".to_owned()];
    let devices = ["4xIx1DMwMLSw+a/b=".to_owned(), "cam 2".to_owned()];
    let q = EventSearch::TimeRange {
        server_id: "UMooFPEhRpayellyz_q3iA",
        from: ts("2020-01-27T19:00:00Z"),
        to: ts("2020-01-27T19:01:00.123987Z"),
        topics: &topics,
        device_ids: &devices,
        limit: Some(1000),
    }
    .query();
    assert_eq!(
        q,
        "queryType=TIME_RANGE&serverId=UMooFPEhRpayellyz_q3iA&from=2020-01-27T19%3A00%3A00.000Z\
         &to=2020-01-27T19%3A01%3A00.123Z&eventTopics=DEVICE_ANALYTICS_STOP&eventTopics=DEVICE_ANALYTICS_START\
         &deviceIds=4xIx1DMwMLSw%2Ba%2Fb%3D&deviceIds=cam+2&limit=1000"
    );
    let back = pairs(&q);
    assert_eq!(back.iter().filter(|(k, _)| k == "eventTopics").count(), 2, "the key is repeated per topic");
    assert!(back.contains(&("deviceIds".into(), "4xIx1DMwMLSw+a/b=".into())));
    // No filters: no keys.
    let q = EventSearch::TimeRange {
        server_id: "s",
        from: ts("2020-01-27T19:00:00Z"),
        to: ts("2020-01-27T19:01:00Z"),
        topics: &[],
        device_ids: &[],
        limit: None,
    }
    .query();
    assert_eq!(q, "queryType=TIME_RANGE&serverId=s&from=2020-01-27T19%3A00%3A00.000Z&to=2020-01-27T19%3A01%3A00.000Z");
}

#[test]
fn continue_query_sends_only_the_token() {
    let token = "AAAB+/c3Rh=="; // base 64: `+`, `/` and `=` must be escaped
    let q = EventSearch::Continue { token }.query();
    assert_eq!(q, "queryType=CONTINUE&token=AAAB%2B%2Fc3Rh%3D%3D");
    assert_eq!(pairs(&q), [("queryType".into(), "CONTINUE".into()), ("token".into(), token.into())]);
    let with = EventSearch::Continue { token }.query_with_session(&Secret::new("s+1/="));
    assert_eq!(with.expose(), "queryType=CONTINUE&token=AAAB%2B%2Fc3Rh%3D%3D&session=s%2B1%2F%3D");
    assert!(!format!("{with:?}").contains("s%2B1"), "a query with the session never formats");
    let q = EventSearch::Active { server_id: "s", topics: &["ALL".into()], device_ids: &[], limit: Some(5) }.query();
    assert_eq!(q, "queryType=ACTIVE&serverId=s&eventTopics=ALL&limit=5");
}

#[test]
fn server_clock_offset_round_trips() {
    let t = ts("2026-05-17T12:00:00Z");
    let ahead = SignedDuration::from_secs(3);
    assert_eq!(to_server_time(t, ahead), ts("2026-05-17T12:00:03Z"));
    assert_eq!(from_server_time(to_server_time(t, ahead), ahead), Some(t));
    assert_eq!(to_server_time(Timestamp::MIN, SignedDuration::from_secs(-1)), Timestamp::MIN, "saturates");
    assert_eq!(from_server_time(Timestamp::MIN, SignedDuration::from_secs(1)), None);
}

#[test]
fn pages_and_their_end() {
    let p = parse_events(200, &page(&[START, STOP], Some("dG9rZW4+Lw=="))).unwrap();
    assert_eq!((p.len(), p.token.as_deref()), (2, Some("dG9rZW4+Lw==")));
    assert_eq!(p.continuation(2), Some("dG9rZW4+Lw=="), "a full page with a token goes on");
    assert_eq!(p.continuation(1000), None, "fewer than the limit: the last page");
    assert_eq!(p.continuation(0), None, "0 is the server's default limit, 1000");
    let p = parse_events(200, &page(&[], Some("dG9rZW4="))).unwrap();
    assert_eq!(p.continuation(1), None, "an empty page ends even with a token");
    let p = parse_events(200, &page(&[START], Some(" "))).unwrap();
    assert_eq!((p.token, p.events.len()), (None, 1), "a blank token is no token");
    // A success without events is an empty page; a numeric token is kept as text.
    let p = parse_events(200, br#"{"status":"success","result":{"token":12}}"#).unwrap();
    assert_eq!((p.events.len(), p.token.as_deref()), (0, Some("12")));
    let p = parse_events(200, br#"{"status":"success","result":{"events":null,"token":null}}"#).unwrap();
    assert!(p.is_empty() && p.token.is_none());
    // A byte-order mark and unknown fields are fine.
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(br#"{"status":"success","extra":1,"result":{"events":[],"more":true}}"#);
    assert!(parse_events(200, &body).unwrap().is_empty());
}

// §2.3

#[test]
fn analytics_start_capture() {
    let e = event(START);
    assert_eq!(e.code.as_deref(), Some("DEVICE_ANALYTICS_START"));
    assert_eq!((e.kind, e.state), (Kind::Human, Some(State::Start)));
    assert_eq!(e.rule.as_deref(), Some("Puerta Norte personas"));
    assert_eq!((e.area, e.activity.as_deref()), (None, Some("OBJECT_PRESENT")), "an empty area is absent");
    assert_eq!(e.camera_id.as_deref(), Some("4xIx1DMwMLSwtncAAA"));
    assert_eq!((e.server_id.as_str(), e.server_name.as_deref()), ("UMooFPEhRpayellyz_q3iA", Some("ARCHER")));
    assert_eq!((e.this_id.as_str(), e.linked_event_id), ("32732", None), "linkedEventId -1 is none");
    assert_eq!(e.occurred_at, Some(ts("2022-01-17T09:35:55.048Z")), "timestamp, not the trigger time");
    assert_eq!(e.trigger_time, Some(ts("2022-01-17T09:35:55.429Z")));
    assert_eq!(e.time_error, None);
    assert_eq!(e.objects, [Object { kind: "human".into(), id: Some("32775346".into()), bbox: None, confidence: None }]);
    assert_eq!(e.key, "avigilon:UMooFPEhRpayellyz_q3iA:32732");
    assert_eq!(e.data, serde_json::from_str::<Value>(START).unwrap(), "data is the whole event");
}

#[test]
fn analytics_stop_without_objects() {
    let e = event(STOP);
    assert_eq!((e.kind, e.state), (Kind::Other, Some(State::Stop)), "no objects, no counting activity");
    assert_eq!(e.linked_event_id.as_deref(), Some("32732"), "the START it closes");
    assert_eq!(e.rule.as_deref(), Some("Puerta Norte personas"));
    assert!(e.objects.is_empty() && e.trigger_time.is_none());
    assert_eq!(e.occurred_at, Some(ts("2022-01-17T09:36:10Z")));
    assert_eq!(e.key, "avigilon:UMooFPEhRpayellyz_q3iA:32740");
}

#[test]
fn occupancy_counting_events() {
    for (activity, subclass) in [("OBJECT_COUNTING_ENTER", "PERSON"), ("object_counting_exit", "VEHICLE_CAR")] {
        let e = event(&format!(
            r#"{{"type":"DEVICE_ANALYTICS_STOP","thisId":9,"originatingServerId":"srv","activity":"{activity}",
               "analyticEventName":"  AFORO ENTRADA   SENCIA ","area":"Tribuna Occidental",
               "classifiedObjects":[{{"subclass":"{subclass}","objectId":"5"}}, 3, {{}}]}}"#
        ));
        assert_eq!(e.kind, Kind::Counting, "{activity}: counting wins over the object class");
        assert_eq!(e.rule.as_deref(), Some("AFORO ENTRADA   SENCIA"), "trimmed, inner spaces as sent");
        assert_eq!(e.area.as_deref(), Some("Tribuna Occidental"));
        assert_eq!(e.activity.as_deref(), Some(activity));
        assert_eq!(e.this_id, "9", "a numeric thisId");
        let kinds: Vec<&str> = e.objects.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds.len(), 2, "entries that are not objects are skipped");
        assert_eq!(kinds[1], "unknown");
        assert_eq!(e.objects[0].id.as_deref(), Some("5"));
    }
}

#[test]
fn events_without_identity_are_error_items() {
    let body = page(
        &[
            START,
            r#"{"type":"DEVICE_ANALYTICS_STOP","thisId":"1"}"#,
            r#"{"type":"DEVICE_ANALYTICS_STOP","originatingServerId":"s","thisId":""}"#,
            r#"{"originatingServerId":"s","thisId":1.5}"#,
            r#"{"originatingServerId":"a b","thisId":"1"}"#,
            r#""not an event""#,
            STOP,
        ],
        None,
    );
    let p = parse_events(200, &body).unwrap();
    let items: Vec<_> = p.normalise(&NormaliseOptions::default()).collect();
    assert_eq!(items.len(), 7, "nothing is dropped");
    let problems: Vec<Option<EventProblem>> = items.iter().map(|i| i.as_ref().err().map(|e| e.problem)).collect();
    assert_eq!(
        problems,
        [
            None,
            Some(EventProblem::MissingId("originatingServerId")),
            Some(EventProblem::MissingId("thisId")),
            Some(EventProblem::InvalidId("thisId")),
            Some(EventProblem::InvalidId("originatingServerId")),
            Some(EventProblem::NotAnObject),
            None,
        ]
    );
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(
        err.event,
        json!({"type": "DEVICE_ANALYTICS_STOP", "thisId": "1"}),
        "the entry is kept for the dead letter"
    );
    assert!(err.to_string().contains("originatingServerId"), "{err}");
    assert_eq!(err.problem.as_str(), "missing-id");
    let moved: Vec<_> = p.clone().into_normalised(&NormaliseOptions::default()).collect();
    assert_eq!(moved, items);
}

#[test]
fn times_offset_naive_and_bad() {
    let opts = NormaliseOptions { server_clock_offset: SignedDuration::from_secs(-3) };
    let e = normalise(serde_json::from_str(START).unwrap(), &opts).unwrap();
    assert_eq!(e.occurred_at, Some(ts("2022-01-17T09:35:58.048Z")), "a server 3 s behind: its times move 3 s later");
    assert_eq!(e.trigger_time, Some(ts("2022-01-17T09:35:58.429Z")));
    let e = event(
        r#"{"thisId":"1","originatingServerId":"s","timestamp":"2026-05-17T10:00:00.123456","eventTriggerTime":"2026-05-17T05:00:01-05:00"}"#,
    );
    assert_eq!(e.occurred_at, Some(ts("2026-05-17T10:00:00.123456Z")), "no zone: UTC");
    assert_eq!(e.trigger_time, Some(ts("2026-05-17T10:00:01Z")));
    let e = event(
        r#"{"thisId":"1","originatingServerId":"s","timestamp":"yesterday","eventTriggerTime":"2026-05-17T10:00:01Z"}"#,
    );
    assert_eq!(e.occurred_at, Some(ts("2026-05-17T10:00:01Z")), "the trigger time stands in");
    assert_eq!(e.time_error.as_deref(), Some("timestamp: yesterday"));
    let e = event(r#"{"thisId":"1","originatingServerId":"s","timestamp":17,"eventTriggerTime":""}"#);
    assert_eq!((e.occurred_at, e.time_error.as_deref()), (None, Some("timestamp: 17")));
}

#[test]
fn keys_escape_their_separator() {
    let a = event(r#"{"thisId":"c","originatingServerId":"a:b"}"#);
    let b = event(r#"{"thisId":"b:c","originatingServerId":"a"}"#);
    assert_eq!((a.key.as_str(), b.key.as_str()), ("avigilon:a%3Ab:c", "avigilon:a:b%3Ac"));
    assert_eq!(event(r#"{"thisId":"1%","originatingServerId":" s "}"#).key, "avigilon:s:1%25");
    let long = "x".repeat(MAX_ID + 1);
    let err = normalise(json!({"thisId": "1", "originatingServerId": long}), &NormaliseOptions::default()).unwrap_err();
    assert_eq!(err.problem, EventProblem::InvalidId("originatingServerId"));
}

#[test]
fn camera_id_falls_back_to_a_single_camera_ids_entry() {
    assert_eq!(
        event(r#"{"thisId":"1","originatingServerId":"s","cameraIds":["c9"]}"#).camera_id.as_deref(),
        Some("c9")
    );
    assert_eq!(event(r#"{"thisId":"1","originatingServerId":"s","cameraIds":["a","b"]}"#).camera_id, None);
}

#[test]
fn kind_and_state_tables() {
    let obj = |t: &str| Object { kind: t.into(), ..Object::default() };
    /// Topic, activity, object types, the kind.
    type Case<'a> = (Option<&'a str>, Option<&'a str>, &'a [&'a str], Kind);
    let cases: &[Case] = &[
        (Some("DEVICE_ANALYTICS_STOP"), Some("OBJECT_COUNTING_ENTER"), &["human"], Kind::Counting),
        (Some("DEVICE_ANALYTICS_STOP"), Some("OBJECTS_CROSSED_BEAM"), &["vehicle"], Kind::LineCrossing),
        (Some("DEVICE_ANALYTICS_START"), Some("OBJECT_ENTERS"), &[], Kind::RegionEntry),
        (Some("DEVICE_ANALYTICS_START"), Some("OBJECT_LEAVES"), &[], Kind::RegionExit),
        (Some("DEVICE_ANALYTICS_START"), Some("OBJECT_LOITERING"), &["human"], Kind::Loitering),
        (Some("DEVICE_ANALYTICS_START"), Some("OBJECT_PRESENT"), &["vehicle", "human"], Kind::Human),
        (Some("DEVICE_ANALYTICS_START"), Some("OBJECT_STOPPED"), &["bicycle"], Kind::Vehicle),
        (Some("DEVICE_ANALYTICS_START"), Some("OBJECT_PRESENT"), &["face"], Kind::Face),
        (Some("DEVICE_ANALYTICS_START"), Some("OBJECT_PRESENT"), &["unknown"], Kind::Other),
        (Some("DEVICE_MOTION_START"), None, &[], Kind::Motion),
        (Some("DEVICE_CLASSIFIED_OBJECT_MOTION_START"), None, &["vehicle"], Kind::Vehicle),
        (Some("DEVICE_CLASSIFIED_OBJECT_MOTION_STOP"), None, &[], Kind::Motion),
        (Some("DEVICE_LPR_PLATE_FOUND"), None, &["vehicle"], Kind::Plate),
        (Some("device_digital_input_on"), None, &[], Kind::AlarmInput),
        (Some("DEVICE_TAMPERING"), None, &[], Kind::Tamper),
        (Some("DEVICE_VIDEO_SIGNAL_LOST"), None, &[], Kind::VideoLoss),
        (Some("USER_LOGIN"), None, &[], Kind::Other),
        (None, None, &[], Kind::Other),
    ];
    for (topic, activity, objects, want) in cases {
        let objects: Vec<Object> = objects.iter().map(|t| obj(t)).collect();
        assert_eq!(kind_for(*topic, *activity, &objects), *want, "{topic:?} {activity:?} {objects:?}");
    }
    for (topic, want) in [
        ("DEVICE_ANALYTICS_START", Some(State::Start)),
        ("DEVICE_ANALYTICS_STOP", Some(State::Stop)),
        ("DEVICE_RECORDING_STARTED", Some(State::Start)),
        ("DEVICE_RECORDING_STOPPED", Some(State::Stop)),
        ("DEVICE_DIGITAL_INPUT_ON", Some(State::Start)),
        ("DEVICE_DIGITAL_INPUT_OFF", Some(State::Stop)),
        ("DEVICE_LPR_PLATE_FOUND", Some(State::Start)),
        ("DEVICE_LPR_PLATE_UPDATE", Some(State::State)),
        ("DEVICE_LPR_PLATE_LOST", Some(State::Stop)),
        ("DEVICE_LPR_MATCH", Some(State::Pulse)),
        ("DEVICE_VIDEO_SIGNAL_LOST", Some(State::Pulse)),
        ("DEVICE_TAMPERING", Some(State::Pulse)),
        ("device_motion_stop", Some(State::Stop)),
        (" ", None),
    ] {
        assert_eq!(state_for_topic(topic), want, "{topic}");
    }
    for (subclass, want) in [
        ("PERSON", "human"),
        ("person_body", "human"),
        ("PERSON_FACE", "face"),
        ("VEHICLE_MOTORCYLE", "vehicle"),
        ("VEHICLE_BUS", "vehicle"),
        ("VEHICLE_BICYCLE", "bicycle"),
        ("ANIMAL_DOG", "animal_dog"),
        ("", "unknown"),
    ] {
        assert_eq!(object_type(subclass), want, "{subclass}");
    }
}

// §3

#[test]
fn server_ids() {
    let body = br#"{"status":"success","result":{"servers":[{"id":"VMmIOIGVQquTfY041DFWeg","name":"ACC-1"},{"id":"X2"},{"name":"no id"},5]}}"#;
    let l = parse_servers(200, body).unwrap();
    assert_eq!(
        l.items,
        [
            Server { id: "VMmIOIGVQquTfY041DFWeg".into(), name: Some("ACC-1".into()) },
            Server { id: "X2".into(), name: None }
        ]
    );
    assert_eq!(l.rejected, ["servers[2] has no `id` string", "servers[3] is a number, not an object"]);
    let e = parse_servers(200, br#"{"status":"success","result":{}}"#).unwrap_err();
    assert!(e.to_string().contains("result.servers"), "{e}");
}

#[test]
fn cameras_list() {
    let body = br#"{"status":"success","result":{"cameras":[
      {"id":"4xIx1DMwMLSwNIAAA","name":"Puerta 1","serverId":"VMmIOIGVQquTfY041DFWeg","apiType":"ONVIF_SOAP",
       "available":true,"connected":true,"connectionState":"CONNECTED","active":true,"logicalId":4294967295,
       "connectionStatus":{"isConnectable":true,"state":"CONNECTED","errorFlags":[],"startTime":"2026-01-01T00:00:00.000Z"},
       "manufacturer":"Avigilon","model":"H5A","location":"Norte","capabilities":{"general":[]},"links":[]},
      {"id":"cam2","serverId":"S2","connectionStatus":{"state":"LONG_FAILED"}},
      {"id":""}
    ]}}"#;
    let l = parse_cameras(200, body).unwrap();
    assert_eq!(l.items.len(), 2);
    let c = &l.items[0];
    assert_eq!(
        (c.id.as_str(), c.name.as_deref(), c.server_id.as_deref()),
        ("4xIx1DMwMLSwNIAAA", Some("Puerta 1"), Some("VMmIOIGVQquTfY041DFWeg"))
    );
    assert_eq!(
        (c.connected, c.available, c.active, c.is_connected()),
        (Some(true), Some(true), Some(true), Some(true))
    );
    assert_eq!(
        (c.manufacturer.as_deref(), c.model.as_deref(), c.location.as_deref()),
        (Some("Avigilon"), Some("H5A"), Some("Norte"))
    );
    let c = &l.items[1];
    assert_eq!((c.connection_state.as_deref(), c.is_connected()), (Some("LONG_FAILED"), Some(false)));
    assert_eq!(l.rejected, ["cameras[2] has no `id` string"]);
    assert_eq!(cameras_query(Verbosity::Low), "verbosity=LOW");
    assert!(parse_cameras(401, br#"{"status":"error","statusCode":401}"#).unwrap_err().is_auth());
}

// §6.1

#[test]
fn allowed_camera_file() {
    assert_eq!(parse_camera_ids(br#"["a1", " b2 ", "a1"]"#).unwrap(), ["a1", "b2"], "trimmed, repeats kept once");
    assert_eq!(parse_camera_ids(b"\xEF\xBB\xBF[\"a\"]\n").unwrap(), ["a"], "a byte-order mark is skipped");
    assert_eq!(parse_camera_ids(b"[]").unwrap(), Vec::<String>::new());
    let cases: [(&[u8], CameraFileError); 5] = [
        (b"[\"a\",\n  \"b\"", CameraFileError::Json { line: 2, column: 5, message: "EOF while parsing a list".into() }),
        (br#"{"ids":["a"]}"#, CameraFileError::NotAnArray { found: "an object" }),
        (br#"["a", 17]"#, CameraFileError::NotAString { index: 1, found: "a number" }),
        (br#"["a", "  "]"#, CameraFileError::Empty { index: 1 }),
        (br#"["a b"]"#, CameraFileError::Invalid { index: 0 }),
    ];
    for (text, want) in cases {
        assert_eq!(parse_camera_ids(text).unwrap_err(), want, "{}", String::from_utf8_lossy(text));
    }
    let e = parse_camera_ids(br#"{"ids":["a"]}"#).unwrap_err().to_string();
    assert!(e.contains("JSON array of camera ids"), "{e}");
}

// Properties.

/// Field names of the API, so random JSON reaches the interesting paths.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "status", "result", "events", "token", "statusCode", "message", "meta", "code", "name", "session",
            "thisId", "originatingServerId", "timestamp", "eventTriggerTime", "type", "activity", "area",
            "analyticEventName", "classifiedObjects", "subclass", "objectId", "cameraId", "cameraIds",
            "linkedEventId", "servers", "cameras", "id", "serverId", "connectionStatus", "state",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "success",
            "error",
            "DEVICE_ANALYTICS_START",
            "OBJECT_COUNTING_EXIT",
            "PERSON",
            "VEHICLE_BICYCLE",
            "2022-01-17T09:35:55.048Z",
            "-1",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((field(), inner), 0..10).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Unescape one id of a key.
fn unescape(s: &str) -> String {
    s.replace("%3A", ":").replace("%25", "%")
}

fn check_event(e: &Normalised) -> Result<(), TestCaseError> {
    prop_assert!(e.key.starts_with("avigilon:"));
    let rest = &e.key["avigilon:".len()..];
    let parts: Vec<&str> = rest.split(':').collect();
    prop_assert_eq!(parts.len(), 2, "key {:?}", e.key);
    prop_assert_eq!(unescape(parts[0]), e.server_id.clone());
    prop_assert_eq!(unescape(parts[1]), e.this_id.clone());
    prop_assert!(e.key.len() <= 9 + 2 * 3 * MAX_ID + 1);
    prop_assert!(e.objects.len() <= MAX_OBJECTS);
    prop_assert!(e.occurred_at.is_some() || e.trigger_time.is_none(), "a trigger time always stands in");
    for s in [&e.rule, &e.area, &e.activity, &e.camera_id, &e.code, &e.server_name].into_iter().flatten() {
        prop_assert!(!s.is_empty() && s.len() <= MAX_TEXT && s.trim() == s.as_str());
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), status in prop::sample::select(vec![200u16, 204, 400, 401, 403, 404, 500, 503])) {
        let _ = parse_login(status, &body);
        let _ = parse_logout(status, &body);
        let _ = parse_servers(status, &body);
        let _ = parse_cameras(status, &body);
        let _ = parse_camera_ids(&body);
        if let Ok(p) = parse_events(status, &body) {
            for e in p.normalise(&NormaliseOptions::default()).flatten() {
                check_event(&e)?;
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value(), status in prop::sample::select(vec![200u16, 403, 500]), offset in -86_400i64..86_400) {
        let body = serde_json::to_vec(&v).unwrap();
        let opts = NormaliseOptions { server_clock_offset: SignedDuration::from_secs(offset) };
        let _ = parse_login(status, &body);
        let _ = parse_servers(status, &body);
        let _ = parse_cameras(status, &body);
        let _ = parse_camera_ids(&body);
        if let Err(ResponseError::Api(e)) = parse_events(status, &body) {
            prop_assert!(e.message.as_ref().is_none_or(|m| m.len() <= MAX_TEXT));
            let _ = e.to_string();
        }
        // The value as one event, and inside a page.
        match normalise(v.clone(), &opts) {
            Ok(e) => { check_event(&e)?; prop_assert_eq!(&e.data, &v); }
            Err(e) => prop_assert_eq!(&e.event, &v, "the entry is kept whole"),
        }
        let wrapped = json!({"status": "success", "result": {"events": [v]}}).to_string();
        let p = parse_events(200, wrapped.as_bytes()).unwrap();
        prop_assert_eq!(p.normalise(&opts).count(), 1);
    }

    #[test]
    fn events_with_ids_always_normalise(server in "[A-Za-z0-9_:%-]{1,64}", this in any::<u64>(), fields in prop::collection::vec((field(), json_value()), 0..8)) {
        let mut m: serde_json::Map<String, Value> = fields.into_iter().collect();
        m.insert("originatingServerId".into(), json!(server));
        m.insert("thisId".into(), json!(this.to_string()));
        let e = normalise(Value::Object(m), &NormaliseOptions::default()).unwrap();
        check_event(&e)?;
        prop_assert_eq!(e.this_id, this.to_string());
    }

    #[test]
    fn tokens_keep_their_format(nonce in "\\PC{1,30}", ts in any::<i64>(), key in "\\PC{0,70}", id in proptest::option::of("[A-Za-z0-9-]{0,20}")) {
        let t = authorization_token(&nonce, ts, &Secret::new(key.clone()), id.as_deref());
        let t = t.expose();
        let head = format!("{nonce}:{ts}:");
        prop_assert!(t.starts_with(&head), "the nonce and timestamp lead, as given");
        let rest = &t[head.len()..];
        let (hex, tail) = rest.split_at(64);
        prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "lower-case hex");
        use sha2::Digest;
        prop_assert_eq!(hex, hex::encode(sha2::Sha256::digest(format!("{ts}{key}"))));
        match id.filter(|i| !i.is_empty()) {
            Some(id) => prop_assert_eq!(tail, format!(":{id}")),
            None => prop_assert_eq!(tail, ""),
        }
    }

    #[test]
    fn queries_decode_to_what_was_asked(server in "\\PC{1,30}", topics in prop::collection::vec("\\PC{1,20}", 0..4), devices in prop::collection::vec("\\PC{1,40}", 0..4), from in 0i64..253_402_300_799, len in 0i64..86_400_000, limit in proptest::option::of(1u32..=10_000), token in "\\PC{1,80}") {
        let from = Timestamp::from_second(from).unwrap();
        let to = from.checked_add(SignedDuration::from_millis(len)).unwrap_or(from);
        let q = EventSearch::TimeRange { server_id: &server, from, to, topics: &topics, device_ids: &devices, limit }.query();
        prop_assert!(q.bytes().all(|b| b.is_ascii_graphic() && b != b'#'), "{}", q);
        let got = pairs(&q);
        let mut want = vec![
            ("queryType".to_owned(), "TIME_RANGE".to_owned()),
            ("serverId".to_owned(), server.clone()),
            ("from".to_owned(), events::iso_millis(from)),
            ("to".to_owned(), events::iso_millis(to)),
        ];
        want.extend(topics.iter().map(|t| ("eventTopics".to_owned(), t.clone())));
        want.extend(devices.iter().map(|d| ("deviceIds".to_owned(), d.clone())));
        want.extend(limit.map(|l| ("limit".to_owned(), l.to_string())));
        prop_assert_eq!(got, want);
        let from_back: Timestamp = events::iso_millis(from).parse().unwrap();
        prop_assert_eq!(from_back, from, "whole seconds survive the format");
        let c = EventSearch::Continue { token: &token }.query_with_session(&Secret::new("s"));
        prop_assert_eq!(pairs(c.expose()), vec![("queryType".to_owned(), "CONTINUE".to_owned()), ("token".to_owned(), token.clone()), ("session".to_owned(), "s".to_owned())]);
    }
}
