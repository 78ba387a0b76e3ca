//! The Avigilon Web Endpoint parsers must never panic, and what they return must satisfy the
//! invariants the poller relies on: every entry of a page comes back (an event or an error
//! item that keeps it whole), keys are `avigilon:<server>:<thisId>` and bounded, errors never
//! pass as results.
//!
//! The first byte picks the HTTP status (and, by its top bit, a server clock offset); the rest
//! is the body. A body that is JSON is also tried as one event inside a page.
#![no_main]

use camgate_protocols::avigilon::{
    MAX_ID, MAX_OBJECTS, MAX_TEXT, NormaliseOptions, ResponseError, normalise, parse_camera_ids, parse_cameras,
    parse_events, parse_login, parse_servers,
};
use jiff::SignedDuration;
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 8] = [200, 204, 400, 401, 403, 404, 500, 503];

fn check_page(status: u16, body: &[u8], opts: &NormaliseOptions) {
    match parse_events(status, body) {
        Ok(page) => {
            assert!((200..300).contains(&status), "a result from HTTP {status}");
            assert!(page.token.as_deref().is_none_or(|t| !t.trim().is_empty()), "a blank token");
            let n = page.events.len();
            let items: Vec<_> = page.normalise(opts).collect();
            assert_eq!(items.len(), n, "an entry went missing");
            for (item, raw) in items.iter().zip(&page.events) {
                match item {
                    Ok(e) => {
                        assert_eq!(&e.data, raw, "data is not the whole event");
                        assert!(e.key.starts_with("avigilon:") && e.key.len() <= 9 + 6 * MAX_ID + 1, "key {:?}", e.key);
                        assert_eq!(e.key.matches(':').count(), 2, "key {:?}", e.key);
                        assert!(!e.server_id.is_empty() && !e.this_id.is_empty());
                        assert!(e.objects.len() <= MAX_OBJECTS);
                        assert!(e.trigger_time.is_none() || e.occurred_at.is_some());
                        for s in [&e.rule, &e.area, &e.activity, &e.camera_id, &e.code].into_iter().flatten() {
                            assert!(!s.is_empty() && s.len() <= MAX_TEXT, "field {s:?}");
                        }
                    }
                    Err(err) => assert_eq!(&err.event, raw, "the error item lost its entry"),
                }
            }
        }
        Err(ResponseError::Api(e)) => {
            assert!(e.message.as_ref().is_none_or(|m| m.len() <= MAX_TEXT && !m.is_empty()));
            let _ = e.to_string();
        }
        Err(ResponseError::Invalid { what }) => assert!(!what.is_empty()),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, body)) = input.split_first() else { return };
    let status = STATUSES[usize::from(first & 7)];
    let offset =
        if first & 0x80 != 0 { SignedDuration::from_secs(-i64::from(first & 0x78)) } else { SignedDuration::ZERO };
    let opts = NormaliseOptions { server_clock_offset: offset };
    check_page(status, body, &opts);
    if let Ok(s) = parse_login(status, body) {
        assert!(!s.session.expose().is_empty() && format!("{:?}", s.session) == "Secret(***)");
    }
    if let Ok(l) = parse_servers(status, body) {
        assert!(l.items.iter().all(|s| !s.id.is_empty()));
    }
    if let Ok(l) = parse_cameras(status, body) {
        assert!(l.items.iter().all(|c| !c.id.is_empty()));
    }
    if let Ok(ids) = parse_camera_ids(body) {
        assert!(ids.iter().all(|id| !id.is_empty() && id.trim() == id));
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        match normalise(v.clone(), &opts) {
            Ok(e) => assert_eq!(e.data, v),
            Err(e) => assert_eq!(e.event, v),
        }
        let page = serde_json::json!({"status": "success", "result": {"events": [v]}}).to_string();
        check_page(200, page.as_bytes(), &opts);
    }
});
