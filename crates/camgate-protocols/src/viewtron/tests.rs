//! The 18 vendor samples field by field, synthetic vectors for what they do not cover
//! (fw 5.3.x LPR and keepalive, traject, odd times, unknown codes, hostile XML), and
//! property tests.

use base64::Engine as _;
use camgate_core::Vehicle;
use camgate_core::event::bbox_is_valid;
use proptest::prelude::*;

use super::*;

macro_rules! sample {
    ($path:literal) => {
        include_bytes!(concat!("../../../../../shared/samples/viewtron/", $path))
    };
}

const IPC_ALARM_STATUS: &[u8] = sample!("ipc-v1x/alarm-status.xml");
const IPC_FACE: &[u8] = sample!("ipc-v1x/face-detection.xml");
const IPC_KEEPALIVE: &[u8] = sample!("ipc-v1x/keepalive.xml");
const IPC_LINE: &[u8] = sample!("ipc-v1x/line-crossing.xml");
const IPC_LPR: &[u8] = sample!("ipc-v1x/lpr.xml");
const IPC_PERIMETER: &[u8] = sample!("ipc-v1x/perimeter-intrusion.xml");
const IPC_VSD: &[u8] = sample!("ipc-v1x/video-metadata.xml");
const IPC_ZONE_ENTRY: &[u8] = sample!("ipc-v1x/zone-entry.xml");
const IPC_ZONE_EXIT: &[u8] = sample!("ipc-v1x/zone-exit.xml");
const NVR_ALARM_STATUS: &[u8] = sample!("nvr-v2/alarm-status.xml");
const NVR_FACE: &[u8] = sample!("nvr-v2/face-detection.xml");
const NVR_KEEPALIVE: &[u8] = sample!("nvr-v2/keepalive.xml");
const NVR_LINE: &[u8] = sample!("nvr-v2/line-crossing.xml");
const NVR_REGION: &[u8] = sample!("nvr-v2/region-intrusion.xml");
const NVR_COUNT_AREA: &[u8] = sample!("nvr-v2/target-counting-by-area.xml");
const NVR_COUNT_LINE: &[u8] = sample!("nvr-v2/target-counting-by-line.xml");
const NVR_LPR: &[u8] = sample!("nvr-v2/vehicle-lpr.xml");
const NVR_VSD: &[u8] = sample!("nvr-v2/video-metadata.xml");

const SAMPLES: [&[u8]; 18] = [
    IPC_ALARM_STATUS,
    IPC_FACE,
    IPC_KEEPALIVE,
    IPC_LINE,
    IPC_LPR,
    IPC_PERIMETER,
    IPC_VSD,
    IPC_ZONE_ENTRY,
    IPC_ZONE_EXIT,
    NVR_ALARM_STATUS,
    NVR_FACE,
    NVR_KEEPALIVE,
    NVR_LINE,
    NVR_REGION,
    NVR_COUNT_AREA,
    NVR_COUNT_LINE,
    NVR_LPR,
    NVR_VSD,
];

fn opts() -> ParseOptions {
    ParseOptions::default()
}

/// The single event of a smart-event post.
fn one(body: &[u8]) -> Parsed {
    match parse(body, &opts()) {
        Ok(Post::Events(mut v)) if v.len() == 1 => v.remove(0),
        other => panic!("expected one event, got {other:?}"),
    }
}

fn keepalive(body: &[u8]) -> Device {
    match parse(body, &opts()) {
        Ok(Post::Keepalive(d)) => d,
        other => panic!("expected a keepalive, got {other:?}"),
    }
}

fn reason(body: &[u8]) -> Reason {
    match parse(body, &opts()) {
        Err(e) => {
            assert!(!e.message.is_empty());
            e.reason
        }
        Ok(p) => panic!("expected an error, got {p:?}"),
    }
}

fn at(p: &Parsed) -> String {
    p.occurred_at.expect("occurred_at").to_string()
}

fn obj(kind: &str, id: &str, bbox: Option<[f64; 4]>) -> Object {
    Object { kind: kind.into(), id: Some(id.into()), bbox, confidence: None }
}

fn ch(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

fn assert_bbox(actual: Option<[f64; 4]>, expected: [f64; 4]) {
    let a = actual.expect("bbox");
    for (x, y) in a.iter().zip(expected) {
        assert!((x - y).abs() < 1e-9, "{a:?} != {expected:?}");
    }
}

/// Image errors (placeholder words are not base64), one per role, in document order.
fn error_roles(p: &Parsed) -> Vec<&str> {
    p.image_errors.iter().map(|e| e.split_once(' ').map_or("", |(r, _)| r)).collect()
}

fn nvr_device(name: &str, ip: &str, mac: &str, channel: u32) -> Device {
    Device {
        name: Some(name.into()),
        ip: Some(ip.into()),
        mac: Some(mac.into()),
        serial: None,
        number: None,
        channel: ch(channel),
    }
}

// ---------------------------------------------------------------------------------------
// The samples
// ---------------------------------------------------------------------------------------

#[test]
fn ipc_lpr_sample() {
    let p = one(IPC_LPR);
    assert_eq!((p.family, p.category, p.kind, p.code.as_str()), (Family::Ipc, "lpr", Kind::Plate, "VEHICE"));
    assert_eq!(p.config_version.as_deref(), Some("1.7"));
    assert_eq!(p.state, Some(State::Pulse));
    assert_eq!(at(&p), "2024-11-19T19:40:34.584193Z");
    let plate = p.plate.as_ref().unwrap();
    assert_eq!(plate.number, "ABC1234");
    assert_eq!(plate.list.as_deref(), Some("white"));
    assert_eq!((plate.confidence, plate.direction.as_deref(), plate.vehicle.as_ref()), (None, None, None));
    assert_eq!(p.objects, [Object { kind: "plate".into(), ..Default::default() }]);
    assert_eq!(p.face, None);
    assert_eq!(p.device, Device::default());
    assert_eq!(p.channel, None);
    // The placeholder in sourceDataInfo does not decode, so item[0]'s overview copy is tried
    // as the source too (and fails the same way).
    assert!(p.images.is_empty());
    assert_eq!(error_roles(&p), ["source", "source", "plate"]);
    assert!(p.image_errors[0].contains("<sourceDataInfo>"), "{:?}", p.image_errors);
    assert!(p.image_errors[1].contains("<targetImageData>"), "{:?}", p.image_errors);
    let c = &p.data["config"];
    assert_eq!(c["listInfo"]["@count"], "2");
    assert_eq!(c["listInfo"]["item"][1]["plateNumber"], "ABC1234");
    assert_eq!(c["listInfo"]["item"][1]["vehicleListType"], "whiteList");
    assert_eq!(c["sourceDataInfo"]["sourceBase64Data"]["omitted_base64_chars"], 24);
    assert_eq!(c["sourceDataInfo"]["sourceBase64Length"], "161438");
    assert_eq!(c["types"]["targetType"], "1,2,4");
    assert_eq!(p.key, "-/VEHICE/pulse/@1732045234584193");
}

#[test]
fn ipc_lpr_overview_is_not_taken_twice() {
    let body = std::str::from_utf8(IPC_LPR)
        .unwrap()
        .replace("BASE64_JPEG_SOURCE_IMAGE", "U09VUkNF")
        .replace("BASE64_JPEG_OVERVIEW_IMAGE", "T1ZFUlZJRVc=")
        .replace("BASE64_JPEG_PLATE_CROP", "UExBVEU=");
    let p = one(body.as_bytes());
    let images: Vec<_> = p.images.iter().map(|i| (i.role.as_str(), i.bytes.as_slice(), i.width, i.height)).collect();
    assert_eq!(
        images,
        [("source", &b"SOURCE"[..], Some(1920), Some(1080)), ("plate", &b"PLATE"[..], Some(150), Some(50))]
    );
    assert!(p.image_errors.is_empty());
}

#[test]
fn ipc_face_sample() {
    let p = one(IPC_FACE);
    assert_eq!((p.family, p.category, p.kind, p.code.as_str()), (Family::Ipc, "face", Kind::Face, "VFD"));
    assert_eq!(p.state, Some(State::Pulse));
    assert_eq!(at(&p), "2024-11-19T19:40:34.584193Z");
    assert_eq!(p.objects, [obj("face", "15", Some([0.42, 0.15, 0.58, 0.42]))]);
    assert_eq!(p.face, None, "IPC face posts carry no attributes");
    assert!(p.images.is_empty());
    assert_eq!(error_roles(&p), ["source", "face"]);
    assert_eq!(p.data["config"]["listInfo"]["item"]["targetImageData"]["Width"], "200");
    assert_eq!(p.key, "-/VFD/t15/pulse/@1732045234584193");
}

#[test]
fn ipc_perimeter_sample() {
    let p = one(IPC_PERIMETER);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("intrusion", Kind::Intrusion, "PEA"));
    assert_eq!(p.state, Some(State::Start), "SMART_START");
    assert_eq!(p.event_id.as_deref(), Some("220"));
    assert_eq!(at(&p), "2019-07-19T09:21:46.584193Z");
    assert_eq!(p.objects.len(), 1);
    assert_eq!((p.objects[0].kind.as_str(), p.objects[0].id.as_deref()), ("human", Some("20")));
    assert_bbox(p.objects[0].bbox, [0.0113, 0.0, 0.5511, 0.8472]);
    assert_eq!(error_roles(&p), ["source", "target"]);
    let boundary = &p.data["config"]["perimeter"]["perInfo"]["item"]["boundary"];
    assert_eq!(boundary["@count"], "4");
    assert_eq!(boundary["item"][2]["point"], serde_json::json!({"x": "7900", "y": "8900"}));
    assert_eq!(p.key, "-/PEA/e220/t20/start/@1563528106584193");
}

#[test]
fn ipc_line_crossing_sample() {
    let p = one(IPC_LINE);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("intrusion", Kind::LineCrossing, "PEA"));
    assert_eq!(p.state, Some(State::Start));
    assert_eq!(p.event_id.as_deref(), Some("320"));
    assert_eq!(p.objects, [obj("human", "30", Some([0.32, 0.21, 0.48, 0.85]))]);
    assert_eq!(error_roles(&p), ["source", "target"]);
    let line = &p.data["config"]["tripwire"]["tripInfo"]["item"]["line"];
    assert_eq!(line["startPoint"], serde_json::json!({"x": "5000", "y": "1000"}));
    assert_eq!(line["endPoint"], serde_json::json!({"x": "5000", "y": "9000"}));
}

#[test]
fn ipc_zone_samples() {
    let p = one(IPC_ZONE_ENTRY);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("intrusion", Kind::RegionEntry, "AOIENTRY"));
    assert_eq!(p.state, Some(State::Pulse));
    assert_eq!(p.objects, [obj("human", "40", Some([0.2, 0.3, 0.4, 0.8]))]);
    assert_eq!(error_roles(&p), ["source", "target"]);
    let p = one(IPC_ZONE_EXIT);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("intrusion", Kind::RegionExit, "AOILEAVE"));
    assert_eq!(p.objects, [obj("vehicle", "45", Some([0.6, 0.3, 0.8, 0.8]))]);
    assert_eq!(error_roles(&p), ["source", "target"]);
}

#[test]
fn ipc_video_metadata_sample() {
    let p = one(IPC_VSD);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("metadata", Kind::Metadata, "VSD"));
    assert!(p.objects.is_empty());
    assert_eq!(error_roles(&p), ["source", "target"]);
    assert_eq!(p.data["config"]["vsd"]["targetImageData"]["targetBase64Length"], "50000");
}

#[test]
fn ipc_keepalive_sample() {
    assert_eq!(
        keepalive(IPC_KEEPALIVE),
        Device {
            name: Some("Device Name".into()),
            ip: Some("192.168.1.192".into()),
            mac: Some("58:5b:69:5a:84:bb".into()),
            serial: Some("NF40D099BCM0".into()),
            number: Some("1".into()),
            channel: None,
        }
    );
}

#[test]
fn ipc_alarm_status_sample() {
    let Ok(Post::Events(v)) = parse(IPC_ALARM_STATUS, &opts()) else { panic!() };
    assert_eq!(v.len(), 1);
    let p = &v[0];
    assert_eq!((p.family, p.category, p.kind, p.code.as_str()), (Family::Ipc, "status", Kind::Plate, "vehiceAlarm"));
    assert_eq!((p.state, p.rule.as_deref()), (Some(State::Start), Some("1")));
    assert_eq!(at(p), "2025-11-19T12:15:11Z", "dataTime read in the default zone (UTC)");
    assert_eq!(
        p.device,
        Device {
            name: Some("Viewtron IPC".into()),
            ip: Some("192.168.1.57".into()),
            mac: Some("58:5b:69:5a:84:bb".into()),
            serial: Some("I84BB0A8D59C".into()),
            number: Some("1".into()),
            channel: None,
        }
    );
    assert!(p.images.is_empty() && p.image_errors.is_empty() && p.objects.is_empty());
    assert_eq!(p.data["config"]["alarmStatusInfo"]["vehiceAlarm"], serde_json::json!({"@id": "1", "#text": "true"}));
    assert_eq!(p.key, "58:5b:69:5a:84:bb/vehiceAlarm/r1/start/@11-19-2025 12:15:11 PM");
    // In the device's zone.
    let bogota = ParseOptions { timezone: jiff::tz::TimeZone::get("America/Bogota").unwrap(), ..opts() };
    let Ok(Post::Events(v)) = parse(IPC_ALARM_STATUS, &bogota) else { panic!() };
    assert_eq!(at(&v[0]), "2025-11-19T17:15:11Z");
}

#[test]
fn nvr_region_intrusion_sample() {
    let p = one(NVR_REGION);
    assert_eq!(
        (p.family, p.category, p.kind, p.code.as_str()),
        (Family::Nvr, "intrusion", Kind::Intrusion, "regionIntrusion")
    );
    assert_eq!(p.config_version.as_deref(), Some("2.0.0"));
    assert_eq!(p.state, Some(State::Pulse));
    assert_eq!(p.event_id.as_deref(), Some("916"));
    assert_eq!(at(&p), "2026-02-25T22:01:54.604Z");
    assert_eq!(p.channel, ch(1));
    assert_eq!(p.device, nvr_device("Device Name", "192.168.0.60", "58:5B:69:40:F4:0D", 1));
    assert_eq!(p.objects, [obj("human", "716", Some([0.3096, 0.3715, 0.4005, 0.9861]))]);
    assert_eq!(error_roles(&p), ["source", "target"]);
    assert_eq!(p.data["config"]["eventInfo"]["item"]["pointGroup"]["item"].as_array().unwrap().len(), 4);
    assert_eq!(p.key, "58:5b:69:40:f4:0d/regionIntrusion/ch1/e916/t716/pulse/@1772056914604000");
}

#[test]
fn nvr_line_crossing_sample() {
    let p = one(NVR_LINE);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("intrusion", Kind::LineCrossing, "lineCrossing"));
    assert_eq!(p.event_id.as_deref(), Some("1409"));
    assert_eq!(p.objects, [obj("human", "1309", Some([0.3494, 0.4409, 0.4261, 0.9791]))]);
    assert_eq!(p.data["config"]["eventInfo"]["item"]["directionLine"]["endPoint"]["y"], "9797");
    assert_eq!(error_roles(&p), ["source", "target"]);
}

#[test]
fn nvr_counting_samples() {
    let p = one(NVR_COUNT_LINE);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("counting", Kind::Counting, "targetCountingByLine"));
    assert_eq!(p.event_id.as_deref(), Some("1080"));
    assert_eq!(p.objects, [obj("human", "480", None)], "an all-zero rect is no box");
    assert_eq!(p.counts, None, "counting posts carry no counters");
    assert_eq!(at(&p), "2026-02-26T21:23:11.308Z");
    let p = one(NVR_COUNT_AREA);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("counting", Kind::Counting, "targetCountingByArea"));
    assert_eq!(p.event_id.as_deref(), Some("2904"));
    assert_eq!(p.objects, [obj("human", "2204", Some([0.4431, 0.4409, 0.4971, 0.9791]))]);
}

#[test]
fn nvr_video_metadata_sample() {
    let p = one(NVR_VSD);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("metadata", Kind::Metadata, "videoMetadata"));
    assert_eq!(p.event_id.as_deref(), Some("3215"));
    assert_eq!(p.objects, [obj("human", "2215", Some([0.5284, 0.4513, 0.6079, 0.9479]))]);
    assert_eq!(error_roles(&p), ["source", "target"]);
}

#[test]
fn nvr_vehicle_lpr_sample() {
    let p = one(NVR_LPR);
    assert_eq!((p.family, p.category, p.kind, p.code.as_str()), (Family::Nvr, "lpr", Kind::Plate, "vehicle"));
    assert_eq!(p.channel, ch(2));
    assert_eq!(p.device, nvr_device("Device Name", "192.168.0.60", "58:5B:69:40:F4:0D", 2));
    assert_eq!(at(&p), "2026-02-27T16:37:48.473Z");
    assert_eq!(
        p.plate,
        Some(Plate {
            number: "JP116D".into(),
            list: None,
            confidence: None,
            direction: None,
            color: Some("white".into()),
            vehicle: Some(Vehicle {
                kind: Some("mpv".into()),
                color: Some("white".into()),
                brand: Some("GMC".into()),
                model: Some("GMC_SAVANA".into()),
            }),
        })
    );
    // The rect is in pixels and the source picture says 0x0: no box rather than a wrong one.
    assert_eq!(p.objects, [obj("plate", "104", None)]);
    assert_eq!(error_roles(&p), ["source", "plate"]);
    assert_eq!(p.key, "58:5b:69:40:f4:0d/vehicle/ch2/t104/pulse/@1772210268473000");
}

#[test]
fn nvr_face_sample() {
    let p = one(NVR_FACE);
    assert_eq!((p.category, p.kind, p.code.as_str()), ("face", Kind::Face, "videoFaceDetect"));
    assert_eq!(
        p.face,
        Some(Face { age: Some("middleAged".into()), sex: Some("male".into()), glasses: None, mask: None })
    );
    assert_eq!(p.objects, [obj("face", "50", Some([0.0854, 0.0176, 0.0978, 0.03]))]);
    assert_eq!(p.device, nvr_device("Office", "192.168.0.50", "58:5B:69:12:F0:79", 1));
    assert_eq!(error_roles(&p), ["source", "face"]);
    assert_eq!(at(&p), "2026-02-27T17:17:22.929Z");
}

#[test]
fn nvr_keepalive_sample() {
    assert_eq!(
        keepalive(NVR_KEEPALIVE),
        Device {
            name: Some("Office".into()),
            ip: Some("192.168.0.50".into()),
            mac: Some("58:5B:69:12:F0:79".into()),
            ..Default::default()
        }
    );
}

#[test]
fn nvr_alarm_status_sample() {
    let Ok(Post::Events(v)) = parse(NVR_ALARM_STATUS, &opts()) else { panic!() };
    assert_eq!(v.len(), 1);
    let p = &v[0];
    assert_eq!(
        (p.family, p.category, p.kind, p.code.as_str()),
        (Family::Nvr, "status", Kind::Intrusion, "perimeterAlarm")
    );
    assert_eq!((p.state, p.rule.as_deref(), p.channel), (Some(State::Start), Some("1"), ch(1)));
    assert_eq!(at(p), "2026-02-25T22:01:54Z");
    assert_eq!(p.device, nvr_device("Device Name", "192.168.0.60", "58:5B:69:40:F4:0D", 1));
    assert_eq!(p.key, "58:5b:69:40:f4:0d/perimeterAlarm/ch1/r1/start/@1772056914000000");
}

#[test]
fn every_sample_satisfies_the_invariants() {
    for body in SAMPLES {
        let post = parse(body, &opts()).unwrap();
        check(&post, &opts());
        assert_eq!(parse(body, &opts()).unwrap(), post, "deterministic");
    }
}

// ---------------------------------------------------------------------------------------
// Synthetic vectors
// ---------------------------------------------------------------------------------------

/// A real (8×8, mid-grey, baseline) JPEG: one block whose DC difference and AC run are both
/// coded with one-symbol Huffman tables; `comment` goes into a COM segment to make it bigger.
fn jpeg(comment: &[u8]) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    j.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
    for chunk in comment.chunks(65_000) {
        j.extend_from_slice(&[0xFF, 0xFE]);
        j.extend_from_slice(&((chunk.len() + 2) as u16).to_be_bytes());
        j.extend_from_slice(chunk);
    }
    j.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
    j.extend_from_slice(&[1; 64]);
    j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00]);
    for class in [0x00, 0x10] {
        j.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, class, 1]);
        j.extend_from_slice(&[0; 15]);
        j.push(0x00);
    }
    j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    j.extend_from_slice(&[0x3F, 0xFF, 0xD9]);
    j
}

/// Deterministic filler bytes.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An IPC LPR-IP4 post as fw 5.3.x sends it (config 1.7, `openAlarmObj` with `enum`
/// children, top-level identity, two `listInfo` items, no `sourceDataInfo`).
fn fw53_lpr(overview: &str, plate: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<config version="1.7" xmlns="http://www.ipc.com/ver10">
<types><openAlarmObj><enum>MOTION</enum><enum>SENSOR</enum><enum>PEA</enum><enum>AVD</enum><enum>VFD</enum><enum>VEHICE</enum><enum>AOIENTRY</enum><enum>AOILEAVE</enum><enum>PASSLINECOUNT</enum><enum>TRAFFIC</enum><enum>VSD</enum><enum>PVD</enum><enum>LOITER</enum></openAlarmObj><subscribeRelationV1><enum>ALARM</enum><enum>FEATURE_RESULT</enum></subscribeRelationV1><perStatus><enum>SMART_NONE</enum><enum>SMART_START</enum><enum>SMART_STOP</enum><enum>SMART_PROCEDURE</enum></perStatus><targetType><enum>person</enum><enum>car</enum><enum>motor</enum></targetType></types>
<smartType type="openAlarmObj">VEHICE</smartType>
<subscribeOption type="subscribeRelationV1">FEATURE_RESULT</subscribeOption>
<currentTime type="tint64">1791471201542438</currentTime>
<mac type="string"><![CDATA[58:5B:69:AA:BB:CC]]></mac>
<sn type="string"><![CDATA[LPRSN0001]]></sn>
<deviceName type="string"><![CDATA[Gate LPR]]></deviceName>
<channelId type="uint32">1</channelId>
<plateCount type="uint32">1</plateCount>
<listInfo type="list" count="2">
<item><image type="uint32">0</image><vehiceId type="uint32">0</vehiceId><plateNumber type="string"><![CDATA[]]></plateNumber><plateCharCount type="uint32">0</plateCharCount><SourceImageWidth type="uint32">2688</SourceImageWidth><SourceImageHeight type="uint32">1776</SourceImageHeight><leftTop><x type="uint32">0</x><y type="uint32">0</y></leftTop><rightTop><x type="uint32">0</x><y type="uint32">0</y></rightTop><leftBottom><x type="uint32">0</x><y type="uint32">0</y></leftBottom><rightBottom><x type="uint32">0</x><y type="uint32">0</y></rightBottom><PlateConfidence type="uint32" count="0"/><plateColor type="uint32" count="0"/><targetImageData><dataType type="uint32">0</dataType><targetType type="targetType"></targetType><width type="uint32">0</width><height type="uint32">0</height><targetBase64Length type="uint32">{}</targetBase64Length><targetBase64Data type="string">{overview}</targetBase64Data></targetImageData></item>
<item><image type="uint32">1</image><vehiceId type="uint32">12</vehiceId><plateNumber type="string"><![CDATA[XYZ987]]></plateNumber><plateCharCount type="uint32">6</plateCharCount><vehicleDirect type="vehicleDirectType">away</vehicleDirect><vehicleListType type="vehileMatchAlarmList">blackList</vehicleListType><PlateWidth type="uint32">188</PlateWidth><PlateHeight type="uint32">107</PlateHeight><SourceImageWidth type="uint32">2688</SourceImageWidth><SourceImageHeight type="uint32">1776</SourceImageHeight><leftTop><x type="uint32">7500</x><y type="uint32">2000</y></leftTop><rightTop><x type="uint32">8200</x><y type="uint32">2000</y></rightTop><leftBottom><x type="uint32">7500</x><y type="uint32">2600</y></leftBottom><rightBottom><x type="uint32">8200</x><y type="uint32">2600</y></rightBottom><PlateConfidence type="uint32" count="9900"/><plateColor type="uint32" count="3"/><plateStyle type="uint32" count="1"/><vehiceColor type="uint32" count="0"/><province type="string"></province><carAttr><color type="vsdCarAttrColorType">white</color><type type="vsdCarAttrTypeType">saloon car</type><brand type="vsdCarAttrBrandType">Ford</brand><model type="vsdCarAttrModelType">Ford_Focus</model></carAttr><carRect><x type="uint32">1344</x><y type="uint32"/><width type="uint32">672</width><height type="uint32">888</height></carRect><targetImageData><dataType type="uint32">0</dataType><targetType type="targetType">car</targetType><width type="uint32">176</width><height type="uint32">100</height><targetBase64Length type="uint32">{}</targetBase64Length><targetBase64Data type="string">{plate}</targetBase64Data></targetImageData></item>
</listInfo>
</config>
"#,
        overview.len(),
        plate.len()
    )
}

#[test]
fn fw53_lpr_with_real_images() {
    let overview = jpeg(&noise(30_000, 1));
    let crop = jpeg(b"plate");
    // Real posts carry one long line; some clients wrap base64: both decode.
    let wrapped: String =
        b64(&overview).as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\r\n");
    let body = fw53_lpr(&wrapped, &b64(&crop));
    let p = one(body.as_bytes());
    assert_eq!((p.family, p.category, p.kind, p.code.as_str()), (Family::Ipc, "lpr", Kind::Plate, "VEHICE"));
    assert_eq!(p.config_version.as_deref(), Some("1.7"));
    assert_eq!(at(&p), "2026-10-08T14:53:21.542438Z");
    assert_eq!(
        p.device,
        Device {
            name: Some("Gate LPR".into()),
            ip: None,
            mac: Some("58:5B:69:AA:BB:CC".into()),
            serial: Some("LPRSN0001".into()),
            number: None,
            channel: ch(1),
        }
    );
    assert_eq!(p.channel, ch(1));
    assert_eq!(
        p.plate,
        Some(Plate {
            number: "XYZ987".into(),
            list: Some("black".into()),
            confidence: Some(99.0),
            direction: Some("leave".into()),
            color: None,
            vehicle: Some(Vehicle {
                kind: Some("saloon car".into()),
                color: Some("white".into()),
                brand: Some("Ford".into()),
                model: Some("Ford_Focus".into()),
            }),
        })
    );
    assert_eq!(p.objects.len(), 2);
    assert_eq!((p.objects[0].kind.as_str(), p.objects[0].id.as_deref()), ("plate", Some("12")));
    assert_bbox(p.objects[0].bbox, [0.75, 0.2, 0.82, 0.26]);
    assert_eq!(p.objects[0].confidence, Some(0.99));
    assert_eq!((p.objects[1].kind.as_str(), p.objects[1].id.as_deref()), ("vehicle", Some("12")));
    assert_bbox(p.objects[1].bbox, [0.5, 0.0, 0.75, 0.5]);
    // The overview of item[0] is the source picture (there is no sourceDataInfo).
    assert_eq!(p.image_errors, Vec::<String>::new());
    assert_eq!(p.images.len(), 2);
    assert_eq!((p.images[0].role.as_str(), p.images[0].width, p.images[0].height), ("source", None, None));
    assert!(p.images[0].bytes == overview, "overview decoded to different bytes");
    assert_eq!((p.images[1].role.as_str(), p.images[1].width, p.images[1].height), ("plate", Some(176), Some(100)));
    assert_eq!(p.images[1].bytes, crop);
    assert!(p.images[1].bytes.starts_with(&[0xFF, 0xD8]) && p.images[1].bytes.ends_with(&[0xFF, 0xD9]));
    let c = &p.data["config"];
    assert_eq!(c["plateCount"], "1");
    assert_eq!(c["types"]["openAlarmObj"]["enum"].as_array().unwrap().len(), 13);
    assert_eq!(c["types"]["openAlarmObj"]["enum"][5], "VEHICE");
    assert_eq!(c["listInfo"]["item"][1]["PlateConfidence"], serde_json::json!({"@count": "9900"}));
    assert_eq!(c["listInfo"]["item"][1]["carRect"]["y"], serde_json::Value::Null);
    assert_eq!(c["listInfo"]["item"][0]["targetImageData"]["targetBase64Data"]["omitted_base64_chars"], wrapped.len());
    assert_eq!(p.key, "58:5b:69:aa:bb:cc/VEHICE/ch1/t12/pulse/@1791471201542438");
}

#[test]
fn fw53_lpr_directions_and_lists() {
    let body = fw53_lpr("", "").replace(">away<", ">approach<").replace(">blackList<", ">temporaryList<");
    let p = one(body.as_bytes());
    let plate = p.plate.unwrap();
    assert_eq!((plate.direction.as_deref(), plate.list.as_deref()), (Some("approach"), Some("temporary")));
    assert!(p.images.is_empty() && p.image_errors.is_empty(), "empty image elements are no image");
    let body = fw53_lpr("", "")
        .replace(">away<", ">leave<")
        .replace("<vehicleListType type=\"vehileMatchAlarmList\">blackList</vehicleListType>", "");
    let plate = one(body.as_bytes()).plate.unwrap();
    assert_eq!((plate.direction.as_deref(), plate.list), (Some("leave"), None));
}

#[test]
fn image_budget_is_per_post() {
    let overview = jpeg(&noise(3000, 2));
    let crop = jpeg(&noise(500, 3));
    let body = fw53_lpr(&b64(&overview), &b64(&crop));
    let tight = ParseOptions { max_image_bytes: overview.len() + 10, ..opts() };
    let Ok(Post::Events(v)) = parse(body.as_bytes(), &tight) else { panic!() };
    assert_eq!(v[0].images.len(), 1);
    assert_eq!(v[0].images[0].bytes, overview);
    assert_eq!(v[0].image_errors.len(), 1);
    assert!(v[0].image_errors[0].contains("limit"), "{:?}", v[0].image_errors);
    assert!(v[0].plate.is_some(), "an image over the limit costs only the image");
    let none = ParseOptions { max_image_bytes: 0, ..opts() };
    let Ok(Post::Events(v)) = parse(body.as_bytes(), &none) else { panic!() };
    assert!(v[0].images.is_empty());
    assert_eq!(v[0].image_errors.len(), 2);
}

#[test]
fn a_bad_image_costs_only_itself() {
    let crop = jpeg(b"ok");
    let body = fw53_lpr("!!!notbase64!!!", &b64(&crop));
    let p = one(body.as_bytes());
    assert_eq!(p.images.len(), 1);
    assert_eq!(p.images[0].role, "plate");
    assert_eq!(p.image_errors.len(), 1);
    assert!(p.image_errors[0].starts_with("source image"), "{:?}", p.image_errors);
    // A declared length of 0 means no image, whatever the data element holds.
    let body = NVR_REGION_WITH_IMAGE.replace("<sourceBase64Length>400924", "<sourceBase64Length>0");
    let roles: Vec<_> = one(body.as_bytes()).images.into_iter().map(|i| i.role).collect();
    assert_eq!(roles, ["target", "target"]);
}

const NVR_REGION_WITH_IMAGE: &str = r#"<config version="2.0.0" xmlns="http://www.ipc.com/ver10">
<messageType>alarmData</messageType>
<deviceInfo><deviceName><![CDATA[Yard]]></deviceName><ip><![CDATA[10.0.0.9]]></ip><mac><![CDATA[58:5B:69:40:F4:0D]]></mac><channelId>3</channelId></deviceInfo>
<smartType>regionIntrusion</smartType><currentTime>1772056914604000</currentTime>
<eventInfo><item><eventId>1</eventId><targetId>7</targetId><boundary>area</boundary><rect><x1>1000</x1><y1>1000</y1><x2>2000</x2><y2>3000</y2></rect></item>
<item><eventId>2</eventId><targetId>8</targetId><boundary>area</boundary><rect><x1>5000</x1><y1>5000</y1><x2>6000</x2><y2>7000</y2></rect></item></eventInfo>
<sourceDataInfo><dataType>0</dataType><width>1280</width><height>720</height><sourceBase64Length>400924</sourceBase64Length><sourceBase64Data>QUJD</sourceBase64Data></sourceDataInfo>
<targetListInfo><item><targetId>7</targetId><targetType>person</targetType><targetImageData><width>336</width><height>448</height><targetBase64Length>4</targetBase64Length><targetBase64Data>REVG</targetBase64Data></targetImageData></item>
<item><targetId>8</targetId><targetType>motor</targetType><targetImageData><width>100</width><height>50</height><targetBase64Length>4</targetBase64Length><targetBase64Data>R0hJ</targetBase64Data></targetImageData></item></targetListInfo>
</config>"#;

#[test]
fn nvr_event_with_every_image_and_two_targets() {
    let p = one(NVR_REGION_WITH_IMAGE.as_bytes());
    assert_eq!(p.channel, ch(3));
    assert_eq!(p.event_id.as_deref(), Some("1"));
    assert_eq!(
        p.objects,
        [obj("human", "7", Some([0.1, 0.1, 0.2, 0.3])), obj("motorcycle", "8", Some([0.5, 0.5, 0.6, 0.7]))]
    );
    let images: Vec<_> = p.images.iter().map(|i| (i.role.as_str(), i.bytes.as_slice(), i.width, i.height)).collect();
    assert_eq!(
        images,
        [
            ("source", &b"ABC"[..], Some(1280), Some(720)),
            ("target", &b"DEF"[..], Some(336), Some(448)),
            ("target", &b"GHI"[..], Some(100), Some(50)),
        ]
    );
    assert_eq!(p.key, "58:5b:69:40:f4:0d/regionIntrusion/ch3/e1,2/t7,8/pulse/@1772056914604000");
}

#[test]
fn nvr_lpr_pixel_rect_with_a_known_frame_and_groups() {
    let body = std::str::from_utf8(NVR_LPR)
        .unwrap()
        .replace("<width>0</width>", "<width>1920</width>")
        .replace("<height>0</height>", "<height>1080</height>")
        .replace(
            "</carAttribute>",
            "</carAttribute><licensePlateMatchInfo><groupName><![CDATA[whiteList]]></groupName>\
             <carOwner><![CDATA[J. Doe]]></carOwner></licensePlateMatchInfo>",
        );
    let p = one(body.as_bytes());
    assert_eq!(p.objects.len(), 1, "the all-zero carRect is no vehicle box");
    assert_bbox(p.objects[0].bbox, [1104.0 / 1920.0, 546.0 / 1080.0, 1232.0 / 1920.0, 610.0 / 1080.0]);
    assert_eq!(p.plate.as_ref().unwrap().list.as_deref(), Some("white"));
    let m = &p.data["config"]["licensePlateListInfo"]["item"]["licensePlateMatchInfo"];
    assert_eq!((m["groupName"].as_str(), m["carOwner"].as_str()), (Some("whiteList"), Some("J. Doe")));
    let custom = body.replace("<![CDATA[whiteList]]>", "<![CDATA[Staff]]>");
    assert_eq!(one(custom.as_bytes()).plate.unwrap().list.as_deref(), Some("Staff"));
}

#[test]
fn nvr_face_attributes() {
    let body = std::str::from_utf8(NVR_FACE)
        .unwrap()
        .replace("<glasses>unknown</glasses>", "<glasses>yes</glasses>")
        .replace("<mask>unknown</mask>", "<mask>no</mask>")
        .replace("<age>middleAged</age>", "<age>unknown</age>");
    let f = one(body.as_bytes()).face.unwrap();
    assert_eq!(f, Face { age: None, sex: Some("male".into()), glasses: Some(true), mask: Some(false) });
}

#[test]
fn twenty_digit_current_time_is_flagged_not_replaced() {
    let body = std::str::from_utf8(NVR_LPR).unwrap().replace("1772210268473000", "17722102684730000000");
    let p = one(body.as_bytes());
    assert_eq!(p.occurred_at, None);
    assert_eq!(p.time_error.as_deref(), Some("17722102684730000000"));
    assert_eq!(p.plate.unwrap().number, "JP116D", "the event survives");
    for (raw, ok) in [("1772210268473", true), ("1772210268", true), ("abc", false), ("-5", false), ("0", false)] {
        let body = std::str::from_utf8(NVR_LPR).unwrap().replace("1772210268473000", raw);
        let p = one(body.as_bytes());
        assert_eq!(p.occurred_at.is_some(), ok, "{raw}");
        assert_eq!(p.time_error.is_some(), !ok, "{raw}");
    }
    let p = one(std::str::from_utf8(NVR_LPR)
        .unwrap()
        .replace("<currentTime>1772210268473000</currentTime>", "")
        .as_bytes());
    assert_eq!((p.occurred_at, p.time_error), (None, None), "no time is no error");
}

#[test]
fn fw53_keepalive_without_declaration() {
    let body = "<config version=\"1.7\" xmlns=\"http://www.ipc.com/ver10\">\n<messageType>keepalive</messageType>\n\
                <deviceInfo>\n<deviceName><![CDATA[Viewtron IPC]]></deviceName>\n<ip><![CDATA[192.168.1.50]]></ip>\n\
                <mac><![CDATA[58:5B:69:01:02:03]]></mac>\n</deviceInfo>\n</config>\n";
    assert_eq!(
        keepalive(body.as_bytes()),
        Device {
            name: Some("Viewtron IPC".into()),
            ip: Some("192.168.1.50".into()),
            mac: Some("58:5B:69:01:02:03".into()),
            ..Default::default()
        }
    );
}

#[test]
fn empty_bodies_are_keepalives() {
    for body in [&b""[..], b"   \r\n\t", b"\xEF\xBB\xBF"] {
        assert_eq!(keepalive(body), Device::default());
    }
}

#[test]
fn fw53_alarm_status_off_and_on_have_different_keys() {
    let status = |value: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<config version=\"1.7\" xmlns=\"http://www.ipc.com/ver10\">\n\
             <alarmStatusInfo>\n<vehiceAlarm type=\"boolean\" id=\"1\">{value}</vehiceAlarm>\n</alarmStatusInfo>\n\
             <dataTime><![CDATA[10-07-2026 05:24:50 PM]]></dataTime>\n<deviceInfo>\n\
             <deviceName><![CDATA[Viewtron IPC]]></deviceName>\n<deviceNo.><![CDATA[1]]></deviceNo.>\n\
             <sn><![CDATA[FIXTURESN]]></sn>\n<ipAddress><![CDATA[192.168.1.50]]></ipAddress>\n\
             <macAddress><![CDATA[00:00:00:00:00:00]]></macAddress>\n</deviceInfo>\n</config>\n"
        )
    };
    let on = one(status("true").as_bytes());
    let off = one(status("false").as_bytes());
    assert_eq!((on.state, off.state), (Some(State::Start), Some(State::Stop)));
    assert_eq!(at(&off), "2026-10-07T17:24:50Z");
    assert_ne!(on.key, off.key);
    assert_eq!(off.key, "FIXTURESN/vehiceAlarm/r1/stop/@10-07-2026 05:24:50 PM", "an all-zero MAC is no identity");
    assert_eq!(on.key, one(status("true").as_bytes()).key, "the same post gives the same key");
}

#[test]
fn nvr_alarm_status_with_several_alarms_and_rules() {
    let body = r#"<config version="2.0.0"><messageType>alarmStatus</messageType>
        <deviceInfo><deviceName>NVR</deviceName><ip>10.0.0.2</ip><mac>AA:BB:CC:DD:EE:FF</mac><channelId>4</channelId></deviceInfo>
        <currentTime>1772140991000000</currentTime>
        <alarmStatusInfo><passlineAlarm><item id="1">true</item><item id="2">false</item></passlineAlarm>
        <vfdAlarm><item id="1">true</item></vfdAlarm><chlOfflineAlarm><item id="1">true</item></chlOfflineAlarm>
        <motionAlarm><item id="1">false</item></motionAlarm><oscAlarm><item id="3">true</item></oscAlarm></alarmStatusInfo></config>"#;
    let Ok(Post::Events(v)) = parse(body.as_bytes(), &opts()) else { panic!() };
    let got: Vec<_> =
        v.iter().map(|p| (p.code.as_str(), p.kind, p.rule.as_deref().unwrap(), p.state.unwrap())).collect();
    assert_eq!(
        got,
        [
            ("passlineAlarm", Kind::Counting, "1", State::Start),
            ("passlineAlarm", Kind::Counting, "2", State::Stop),
            ("vfdAlarm", Kind::Face, "1", State::Start),
            ("chlOfflineAlarm", Kind::VideoLoss, "1", State::Start),
            ("motionAlarm", Kind::Motion, "1", State::Stop),
            ("oscAlarm", Kind::Other, "3", State::Start),
        ]
    );
    let keys: std::collections::HashSet<_> = v.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys.len(), v.len(), "different alarms, different keys");
    assert!(v.iter().all(|p| p.channel == ch(4) && p.family == Family::Nvr && p.category == "status"));
    assert!(v.iter().all(|p| at(p) == "2026-02-26T21:23:11Z"));
}

#[test]
fn big_alarm_status_posts_stay_linear() {
    let items: String = (1..=300).map(|i| format!("<item id=\"{i}\">true</item>")).collect();
    let body = format!(
        "<config version=\"2.0.0\"><messageType>alarmStatus</messageType>\
         <deviceInfo><deviceName>{}</deviceName><mac>AA:BB:CC:DD:EE:FF</mac></deviceInfo>\
         <alarmStatusInfo><motionAlarm>{items}</motionAlarm></alarmStatusInfo></config>",
        "n".repeat(100_000)
    );
    let Ok(Post::Events(v)) = parse(body.as_bytes(), &opts()) else { panic!() };
    assert_eq!(v.len(), status::MAX_STATUS_EVENTS);
    assert_eq!(v[0].data["config"]["alarmStatusInfo"]["motionAlarm"]["item"].as_array().unwrap().len(), 300);
    assert_eq!(
        v[1].data,
        serde_json::json!({"config": {"alarmStatusInfo": {"motionAlarm": {"item": {"@id": "2", "#text": "true"}}}}})
    );
    assert_eq!(v[1].rule.as_deref(), Some("2"));
    assert_eq!(v[1].device.name.as_ref().map(String::len), Some(256), "device strings are cut");
}

#[test]
fn ipc_alarm_status_sensor() {
    let body = r#"<config version="1.7"><alarmStatusInfo><sensorAlarm type="boolean" id="2">true</sensorAlarm>
        <VFDAlarm type="boolean" id="1">false</VFDAlarm></alarmStatusInfo><dataTime>2026-03-29 09:58:21</dataTime></config>"#;
    let Ok(Post::Events(v)) = parse(body.as_bytes(), &opts()) else { panic!() };
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].kind, v[0].rule.as_deref(), v[0].state), (Kind::AlarmInput, Some("2"), Some(State::Start)));
    assert_eq!((v[1].kind, v[1].state), (Kind::Face, Some(State::Stop)));
    assert_eq!(at(&v[0]), "2026-03-29T09:58:21Z");
}

#[test]
fn traject_with_count_before_type() {
    let body = r#"<?xml version="1.0" encoding="UTF-8" ?>
<config version="1.7" xmlns="http://www.ipc.com/ver10">
  <types><targetType><enum>person</enum><enum>car</enum><enum>motor</enum></targetType></types>
  <subscribeOption type="subscribeRelation">FEATURE_RESULT</subscribeOption>
  <currentTime type="tint64">1774646121524166</currentTime>
  <mac type="string"><![CDATA[58:5b:69:5f:42:1b]]></mac>
  <sn type="string"><![CDATA[I421B0Z1173Q]]></sn>
  <deviceName type="string"><![CDATA[FaceCam]]></deviceName>
  <traject count="3" type="list">
    <item><targetId type="uint32">434</targetId><point><x type="uint32">0</x><y type="uint32">0</y></point>
      <rect><x1 type="uint32">6534</x1><y1 type="uint32">2708</y1><x2 type="uint32">7585</x2><y2 type="uint32">6388</y2></rect>
      <velocity type="uint32">12</velocity><direction type="uint32">90</direction>
      <targetType type="targetType">person</targetType><trajectlength type="list" count="0"/></item>
    <item><targetId type="uint32">435</targetId><rect><x1>100</x1><y1>200</y1><x2>300</x2><y2>400</y2></rect>
      <velocity type="uint32"/><direction type="uint32"/><targetType>car</targetType></item>
    <item><targetId type="uint32">436</targetId><rect><x1>0</x1><y1>0</y1><x2>0</x2><y2>0</y2></rect><targetType>motor</targetType></item>
  </traject>
</config>"#;
    let Ok(Post::Traject(p)) = parse(body.as_bytes(), &opts()) else { panic!("not a traject") };
    assert_eq!((p.family, p.category, p.kind, p.code.as_str()), (Family::Ipc, "traject", Kind::Track, "traject"));
    assert_eq!(p.state, Some(State::State));
    assert_eq!(at(&p), "2026-03-27T21:15:21.524166Z");
    assert_eq!(p.device.name.as_deref(), Some("FaceCam"));
    assert_eq!(p.device.serial.as_deref(), Some("I421B0Z1173Q"));
    assert_eq!(p.objects.len(), 3);
    assert_eq!((p.objects[0].kind.as_str(), p.objects[0].id.as_deref()), ("human", Some("434")));
    assert_bbox(p.objects[0].bbox, [0.6534, 0.2708, 0.7585, 0.6388]);
    assert_eq!(p.objects[1], obj("vehicle", "435", Some([0.01, 0.02, 0.03, 0.04])));
    assert_eq!(p.objects[2], obj("motorcycle", "436", None));
    let items = &p.data["config"]["traject"]["item"];
    assert_eq!((items[0]["velocity"].as_str(), items[0]["direction"].as_str()), (Some("12"), Some("90")));
    assert_eq!(items[1]["velocity"], serde_json::Value::Null, "empty typed elements are null, not a type dict");
    assert_eq!(p.data["config"]["traject"]["@count"], "3");
    assert_eq!(p.key, "58:5b:69:5f:42:1b/traject/t434,435,436/state/@1774646121524166");
}

#[test]
fn codes_without_a_layout_are_events_and_unknown_codes_are_refused() {
    for code in ["XYZZY", "NOT_A_CODE", ""] {
        let body = format!("<config version=\"1.7\"><smartType>{code}</smartType></config>");
        match parse(body.as_bytes(), &ParseOptions::default()) {
            Err(e) if !code.is_empty() => assert_eq!(e.reason, Reason::UnknownSmartType, "{code}"),
            Err(e) => assert_eq!(e.reason, Reason::NoEvent, "an empty smartType is no event"),
            Ok(p) => panic!("{code}: {p:?}"),
        }
    }
    for (code, kind) in [
        ("MOTION", Kind::Motion),
        ("SENSOR", Kind::AlarmInput),
        ("AVD", Kind::Tamper),
        ("OSC", Kind::Other),
        ("CDD", Kind::Other),
        ("EA", Kind::Vehicle),
        ("FALLING", Kind::Other),
        ("asd", Kind::Audio),
    ] {
        let body = format!(
            "<config version=\"1.7\"><smartType type=\"openAlramObj\">{code}</smartType>\
             <currentTime type=\"tint64\">1732045234584193</currentTime></config>"
        );
        let p = one(body.as_bytes());
        assert_eq!((p.kind, p.category, p.code.as_str(), p.state), (kind, "other", code, Some(State::Pulse)));
        assert_eq!(p.data["config"]["smartType"], code);
    }
}

#[test]
fn smart_types_are_case_insensitive() {
    for (code, kind, category) in [
        ("vehicle", Kind::Plate, "lpr"),
        ("VEHICLE", Kind::Plate, "lpr"),
        ("Vehice", Kind::Plate, "lpr"),
        ("vfd_match", Kind::Face, "face"),
        ("aoientry", Kind::RegionEntry, "intrusion"),
        ("LOITER", Kind::Loitering, "intrusion"),
        ("PVD", Kind::Parking, "intrusion"),
        ("PASSLINECOUNT", Kind::Counting, "counting"),
        ("traffic", Kind::Counting, "counting"),
        ("REGIONINTRUSION", Kind::Intrusion, "intrusion"),
        ("videometadata", Kind::Metadata, "metadata"),
    ] {
        let body = format!("<config version=\"1.7\"><smartType>{code}</smartType></config>");
        let p = one(body.as_bytes());
        assert_eq!((p.kind, p.category), (kind, category), "{code}");
        assert_eq!(p.code, code);
    }
}

#[test]
fn families() {
    let body = |v: &str, extra: &str| format!("<config version=\"{v}\">{extra}<smartType>PEA</smartType></config>");
    assert_eq!(one(body("1.0", "").as_bytes()).family, Family::Ipc);
    assert_eq!(one(body("2.0.0", "").as_bytes()).family, Family::Ipc, "IPC code, no messageType");
    assert_eq!(one(body("2.0.0", "<messageType>alarmData</messageType>").as_bytes()).family, Family::Nvr);
    let nvr = "<config version=\"2.0.0\"><smartType>regionIntrusion</smartType></config>";
    assert_eq!(one(nvr.as_bytes()).family, Family::Nvr);
}

#[test]
fn errors_have_reasons() {
    assert_eq!(
        reason(b"<config version=\"2.0.0\"><messageType>heartbeatV9</messageType></config>"),
        Reason::UnknownMessageType
    );
    assert_eq!(reason(b"<config version=\"1.7\"><status>success</status></config>"), Reason::NoEvent);
    assert_eq!(reason(b"<config version=\"1.7\"><smartType type=\"x\"/></config>"), Reason::NoEvent);
    assert_eq!(reason(b"<config version=\"2.0.0\"><messageType>alarmStatus</messageType></config>"), Reason::NoEvent);
    assert_eq!(reason(b"<config><alarmStatusInfo/></config>"), Reason::NoEvent);
    assert_eq!(reason(b"<html><body>hi</body></html>"), Reason::WrongRoot);
    assert_eq!(reason(b"{\"json\": true}"), Reason::Malformed);
    assert_eq!(reason(b"<config><smartType>VEHICE</config>"), Reason::Malformed);
    assert_eq!(reason(b"<config><smartType>\xff\xfe</smartType></config>"), Reason::Malformed);
    assert_eq!(reason(&IPC_LPR[..IPC_LPR.len() / 2]), Reason::Malformed);
    let e = parse(b"<config><smartType>\xff</smartType></config>", &opts()).unwrap_err();
    assert!(e.to_string().starts_with("parse-error: the body is not UTF-8"), "{e}");
}

#[test]
fn dtd_entities_are_never_expanded() {
    let lol = "<?xml version=\"1.0\"?>\n<!DOCTYPE config [\n <!ENTITY lol \"lol\">\n \
               <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n \
               <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n]>\n\
               <config version=\"1.7\"><smartType>&lol3;</smartType></config>";
    assert_eq!(reason(lol.as_bytes()), Reason::Malformed);
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE config [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
               <config version=\"1.7\"><smartType>VEHICE</smartType><deviceName>&xxe;</deviceName></config>";
    assert_eq!(reason(xxe.as_bytes()), Reason::Malformed);
    // A DTD that declares nothing used is harmless and skipped; the five XML entities work.
    let ok = "<!DOCTYPE config><config version=\"1.7\"><smartType>VFD</smartType>\
              <deviceName>A &amp; B &lt;1&gt; &#x41;&#66;</deviceName></config>";
    assert_eq!(one(ok.as_bytes()).device.name.as_deref(), Some("A & B <1> AB"));
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("<config>{}{}</config>", "<a>".repeat(100), "</a>".repeat(100));
    assert_eq!(reason(deep.as_bytes()), Reason::Malformed);
    let deeper = "<a>".repeat(1_000_000);
    assert_eq!(reason(deeper.as_bytes()), Reason::Malformed);
    let wide = format!("<config>{}</config>", "<i/>".repeat(200_000));
    assert_eq!(reason(wide.as_bytes()), Reason::Malformed);
}

#[test]
fn namespaces_prefixes_and_whitespace_are_tolerated() {
    let body = "\n\n<?xml version=\"1.0\"?>\n<v:config version=\"1.7\" xmlns:v=\"http://www.ipc.com/ver10\">\
                <v:smartType>VFD</v:smartType><v:currentTime>  1732045234584193 </v:currentTime></v:config>\n\0";
    let p = one(body.as_bytes());
    assert_eq!((p.kind, at(&p).as_str()), (Kind::Face, "2024-11-19T19:40:34.584193Z"));
}

#[test]
fn channel_zero_is_no_channel() {
    let body = std::str::from_utf8(NVR_REGION).unwrap().replace("<channelId>1</channelId>", "<channelId>0</channelId>");
    let p = one(body.as_bytes());
    assert_eq!((p.channel, p.device.channel), (None, None));
    assert_eq!(p.data["config"]["deviceInfo"]["channelId"], "0", "the raw value stays in data");
}

#[test]
fn counters_when_present() {
    let body = "<config version=\"1.7\"><smartType>PASSLINECOUNT</smartType>\
                <entranceCount><person>3</person><car>1</car><bike>0</bike></entranceCount>\
                <exitCount><person>2</person></exitCount></config>";
    assert_eq!(one(body.as_bytes()).counts, Some(Counts { enter: Some(4), exit: Some(2), total: None }));
}

#[test]
fn keys_tell_events_apart() {
    let a = one(NVR_REGION);
    let b = one(std::str::from_utf8(NVR_REGION).unwrap().replace("<eventId>916", "<eventId>917").as_bytes());
    let c = one(std::str::from_utf8(NVR_REGION).unwrap().replace("1772056914604000", "1772056914605000").as_bytes());
    let d = one(std::str::from_utf8(NVR_REGION).unwrap().replace("<channelId>1", "<channelId>2").as_bytes());
    let keys: std::collections::HashSet<_> = [&a.key, &b.key, &c.key, &d.key].into_iter().collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(a.key, one(NVR_REGION).key);
}

// ---------------------------------------------------------------------------------------
// Invariants and properties
// ---------------------------------------------------------------------------------------

/// What every accepted post must satisfy, whatever the input.
fn check(post: &Post, o: &ParseOptions) {
    let events: Vec<&Parsed> = match post {
        Post::Keepalive(_) => return,
        Post::Events(v) => v.iter().collect(),
        Post::Traject(p) => vec![p],
    };
    for p in events {
        assert!(!p.key.is_empty() && p.key.len() <= 200, "key {:?}", p.key);
        assert!(!p.code.is_empty());
        assert_eq!(p.channel, p.device.channel);
        for ob in &p.objects {
            if let Some(b) = &ob.bbox {
                assert!(bbox_is_valid(b), "invalid bbox {b:?}");
            }
            if let Some(c) = ob.confidence {
                assert!((0.0..=1.0).contains(&c), "object confidence {c}");
            }
            assert!(!ob.kind.is_empty());
        }
        if let Some(c) = p.plate.as_ref().and_then(|pl| pl.confidence) {
            assert!((0.0..=100.0).contains(&c), "plate confidence {c}");
        }
        let total: usize = p.images.iter().map(|i| i.bytes.len()).sum();
        assert!(total <= o.max_image_bytes, "{total} image bytes > {}", o.max_image_bytes);
        assert!(p.images.iter().all(|i| !i.bytes.is_empty() && !i.role.is_empty()));
        assert!(p.occurred_at.is_none() || p.time_error.is_none(), "a time and a time error");
        assert!(p.data.is_object());
    }
}

fn mutate(sample: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut b = sample.to_vec();
    for &(pos, op, byte) in edits {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let i = pos % b.len();
        match op % 4 {
            0 => b[i] = byte,
            1 => b.insert(i, byte),
            2 => {
                b.remove(i);
            }
            _ => b.truncate(i),
        }
    }
    b
}

/// Fragments that make random bodies reach deep into the parser.
const TOKENS: [&str; 40] = [
    "<config version=\"1.7\">",
    "<config version=\"2.0.0\">",
    "</config>",
    "<messageType>alarmData</messageType>",
    "<messageType>alarmStatus</messageType>",
    "<smartType>VEHICE</smartType>",
    "<smartType>PEA</smartType>",
    "<smartType>vehicle</smartType>",
    "<smartType>videoFaceDetect</smartType>",
    "<alarmStatusInfo>",
    "</alarmStatusInfo>",
    "<perimeterAlarm><item id=\"1\">true</item></perimeterAlarm>",
    "<traject count=\"1\" type=\"list\">",
    "</traject>",
    "<listInfo>",
    "</listInfo>",
    "<licensePlateListInfo>",
    "</licensePlateListInfo>",
    "<faceListInfo>",
    "</faceListInfo>",
    "<item>",
    "</item>",
    "<targetId>7</targetId>",
    "<plateNumber>AB1</plateNumber>",
    "<rect><x1>10</x1><y1>20</y1><x2>9999</x2><y2>10001</y2></rect>",
    "<rect><x1>-1</x1><y1>NaN</y1><x2>1e308</x2><y2>inf</y2></rect>",
    "<carRect><x>5</x><y/><width>1e300</width><height>2</height></carRect>",
    "<SourceImageWidth>0</SourceImageWidth><SourceImageHeight>1</SourceImageHeight>",
    "<PlateConfidence count=\"1e999\"/>",
    "<targetImageData><targetBase64Data>QUJD</targetBase64Data></targetImageData>",
    "<sourceDataInfo><width>4294967296</width><sourceBase64Data>%%%</sourceBase64Data></sourceDataInfo>",
    "<currentTime>18446744073709551616</currentTime>",
    "<dataTime>02-30-2026 13:61:00 PM</dataTime>",
    "<deviceInfo><channelId>4294967295</channelId><mac>/%/</mac></deviceInfo>",
    "<eventId>1</eventId><status>SMART_STOP</status>",
    "<![CDATA[x]]>",
    "&amp;",
    "&#x10FFFF;",
    " ",
    "<vsd><sourceDataInfo><sourceBase64Data>QQ==</sourceBase64Data></sourceDataInfo></vsd>",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(post) = parse(&body, &opts()) {
            check(&post, &opts());
        }
    }

    #[test]
    fn mutated_samples_never_panic(
        which in 0..SAMPLES.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
        budget in 0usize..64,
    ) {
        let body = mutate(SAMPLES[which], &edits);
        let o = ParseOptions { max_image_bytes: budget, ..opts() };
        if let Ok(post) = parse(&body, &o) {
            check(&post, &o);
            prop_assert_eq!(parse(&body, &o).unwrap(), post, "same body, same result (keys included)");
        }
    }

    #[test]
    fn token_soup_never_panics_and_keeps_invariants(tokens in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
        let body: String = tokens.iter().map(|&i| TOKENS[i]).collect();
        for body in [body.clone(), format!("<config version=\"1.7\">{body}</config>")] {
            if let Ok(post) = parse(body.as_bytes(), &opts()) {
                check(&post, &opts());
                prop_assert_eq!(parse(body.as_bytes(), &opts()).unwrap(), post);
            }
        }
    }

    #[test]
    fn boxes_from_any_rect_are_valid(x1 in any::<u32>(), y1 in any::<u32>(), x2 in any::<u32>(), y2 in any::<u32>()) {
        let body = format!(
            "<config version=\"1.7\"><smartType>AOIENTRY</smartType><listInfo><item><targetId>1</targetId>\
             <rect><x1>{x1}</x1><y1>{y1}</y1><x2>{x2}</x2><y2>{y2}</y2></rect></item></listInfo></config>"
        );
        let p = one(body.as_bytes());
        let inside = [x1, y1, x2, y2].iter().all(|v| *v <= 10_000) && x1 != x2 && y1 != y2;
        prop_assert_eq!(p.objects[0].bbox.is_some(), inside);
        if let Some(b) = p.objects[0].bbox {
            prop_assert!(bbox_is_valid(&b));
        }
    }
}
