use super::*;
use proptest::prelude::*;

#[test]
fn minimal_event() {
    let e = parse_ingest(br#"{"source":"front","kind":"motion"}"#).unwrap();
    assert_eq!(e.source, "front");
    assert_eq!(e.kind, Kind::Motion);
    assert_eq!(e.vendor, Vendor::Generic);
    assert!(e.key.is_none() && e.images.is_empty());
}

#[test]
fn full_event_with_image() {
    let body = br#"{
        "key": "gate:42", "source": "gate-lpr", "vendor": "viewtron", "kind": "plate",
        "code": "VEHICE", "state": "pulse", "channel": 2, "rule": "",
        "occurred_at": "2026-11-21T15:33:41Z",
        "plate": {"number": " ABC1234 ", "confidence": 99.0, "vehicle": {"type": "car"}},
        "objects": [{"type": "vehicle", "bbox": [0.1, 0.2, 0.3, 0.5], "confidence": 0.9}],
        "counts": {},
        "data": {"raw": true},
        "images": [{"role": "plate", "data": "/9j/4AAQ\nSkZJRg=="}]
    }"#;
    let e = parse_ingest(body).unwrap();
    assert_eq!(e.key.as_deref(), Some("gate:42"));
    assert_eq!(e.channel.unwrap().get(), 2);
    assert_eq!(e.rule, None, "empty strings are absent");
    assert_eq!(e.counts, None, "empty objects are absent");
    assert_eq!(e.plate.unwrap().number, "ABC1234");
    assert_eq!(e.images[0].bytes[..4], [0xff, 0xd8, 0xff, 0xe0]);
}

#[test]
fn blank_nested_strings_are_absent() {
    let e = parse_ingest(
        br#"{"source":"a","kind":"plate","plate":{"number":"X1","list":" ","vehicle":{"type":""}},
            "face":{"age":"","sex":""},"objects":[{"type":" Human ","id":""}]}"#,
    )
    .unwrap();
    let p = e.plate.unwrap();
    assert_eq!((p.list, p.vehicle), (None, None));
    assert_eq!(e.face, None, "a face with nothing left is absent");
    assert_eq!(e.objects[0].kind, "human");
    assert_eq!(e.objects[0].id, None);
}

#[test]
fn errors_name_the_field() {
    let cases: &[(&[u8], &str)] = &[
        (br#"{"source":"a","kind":"motion","channel":0}"#, "channel"),
        (br#"{"source":"a","kind":"teleport"}"#, "kind"),
        (br#"{"source":"a"}"#, "kind"),
        (br#"{"source":"a","kind":"motion","colour":"red"}"#, "colour"),
        (br#"{"source":"a","kind":"motion","objects":[{"type":"human","bbox":[0.5,0,0.1,1]}]}"#, "objects[0].bbox"),
        (br#"{"source":"a","kind":"motion","objects":[{"type":"human","bbox":[0,0,1]}]}"#, "objects[0].bbox"),
        (br#"{"source":"a","kind":"motion","images":[{"role":"source","data":"%%%"}]}"#, "images[0].data"),
        (br#"{"source":"a","kind":"motion","images":[{"role":"../x","data":"AAAA"}]}"#, "images[0].role"),
        (br#"{"source":"a","kind":"motion","images":[{"role":"x","path":"/etc/passwd","data":"AA"}]}"#, "path"),
        (br#"{"source":" ","kind":"motion"}"#, "source"),
        (br#"{"source":"a","kind":"motion","occurred_at":"yesterday"}"#, "occurred_at"),
        (br#"{"source":"a","kind":"plate","plate":{"number":""}}"#, "plate.number"),
        (br#"{"source":"a","kind":"motion"} trailing"#, "trailing"),
        (br#"not json"#, "expected"),
    ];
    for (body, needle) in cases {
        let err = parse_ingest(body).unwrap_err().to_string();
        assert!(err.contains(needle), "{}: {err}", String::from_utf8_lossy(body));
    }
}

proptest! {
    #[test]
    fn never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_ingest(&body);
    }

    #[test]
    fn valid_events_round_trip(source in "[a-z][a-z0-9-]{0,20}", ch in 1u32..64, conf in 0.0f64..=1.0,
                               x in 0.0f64..0.5, w in 0.0f64..0.5, kind in proptest::sample::select(Kind::ALL.to_vec())) {
        let body = serde_json::json!({
            "source": source, "kind": kind, "channel": ch,
            "objects": [{"type": "human", "bbox": [x, x, x + w, x + w], "confidence": conf}],
        });
        let e = parse_ingest(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(e.source, source);
        prop_assert_eq!(e.kind, kind);
        prop_assert_eq!(e.channel.unwrap().get(), ch);
        prop_assert_eq!(e.objects[0].confidence, Some(conf));
    }
}
