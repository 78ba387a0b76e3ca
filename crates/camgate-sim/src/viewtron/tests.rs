//! Bodies (well-formed, images, keys) and the runner against a tiny in-test HTTP server.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use camgate_core::{Kind, State};
use quick_xml::events::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::http::find;
use super::jpeg::tests::check_jpeg;
use super::*;

// ---- XML helpers -----------------------------------------------------------------------

/// Well-formedness with quick-xml: matching end tags, attributes that parse, one root,
/// nothing left open at the end.
fn well_formed(body: &[u8]) -> Result<(), String> {
    let mut r = quick_xml::Reader::from_reader(body);
    r.config_mut().check_end_names = true;
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        match r.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) | Event::Empty(e) if depth == 0 && roots > 0 => {
                return Err(format!("second root <{}>", e.name().0));
            }
            Event::Start(e) => {
                e.attributes().collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
                roots += usize::from(depth == 0);
                depth += 1;
            }
            Event::Empty(e) => {
                e.attributes().collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
                roots += usize::from(depth == 0);
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) if depth == 0 && !t.trim().is_empty() => {
                return Err("text outside the root".into());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match (depth, roots) {
        (0, 1) => Ok(()),
        (0, n) => Err(format!("{n} roots")),
        (d, _) => Err(format!("{d} elements left open")),
    }
}

/// Text of every element named `name` (text or CDATA), in document order.
fn texts(body: &[u8], name: &str) -> Vec<String> {
    let mut r = quick_xml::Reader::from_reader(body);
    let mut out = Vec::new();
    let mut inside = false;
    loop {
        match r.read_event().expect("well-formed") {
            Event::Start(e) if e.name().0 == name => {
                inside = true;
                out.push(String::new());
            }
            Event::Empty(e) if e.name().0 == name => out.push(String::new()),
            Event::End(e) if e.name().0 == name => inside = false,
            Event::Text(t) if inside => out.last_mut().unwrap().push_str(&t),
            Event::CData(t) if inside => out.last_mut().unwrap().push_str(&t),
            Event::Eof => return out,
            _ => {}
        }
    }
}

/// Images in a body: (declared `*Base64Length`, decoded bytes), in document order; checks
/// each length element equals its base64 text length.
fn body_images(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for prefix in ["source", "target"] {
        let lens = texts(body, &format!("{prefix}Base64Length"));
        let data = texts(body, &format!("{prefix}Base64Data"));
        assert_eq!(lens.len(), data.len(), "{prefix} length and data elements pair up");
        for (len, b64) in lens.iter().zip(&data) {
            assert_eq!(len.parse::<usize>().unwrap(), b64.len(), "{prefix}Base64Length");
            assert!(!b64.contains(['\n', '\r', ' ']), "base64 on one line");
            if !b64.is_empty() {
                out.push((find_pos(body, b64), STANDARD.decode(b64).expect("valid base64")));
            }
        }
    }
    out.sort_by_key(|(pos, _)| *pos);
    out.into_iter().map(|(_, b)| b).collect()
}

fn find_pos(body: &[u8], s: &str) -> usize {
    find(body, s.as_bytes()).expect("text is in the body")
}

fn all_specs(family: Family) -> Vec<PostSpec> {
    let mut specs = vec![
        PostSpec::Keepalive(KeepaliveShape::Empty),
        PostSpec::Keepalive(KeepaliveShape::DeviceInfo),
        PostSpec::Keepalive(KeepaliveShape::Config17),
        PostSpec::Keepalive(KeepaliveShape::Nvr),
        PostSpec::Traject { targets: 2, fresh: true },
        PostSpec::Traject { targets: 2, fresh: false },
    ];
    for alarm in [Alarm::Lpr, Alarm::Face, Alarm::Perimeter, Alarm::Tripwire, Alarm::PassLine, Alarm::Motion] {
        specs.push(PostSpec::AlarmStatus { alarm, on: true });
        specs.push(PostSpec::AlarmStatus { alarm, on: false });
    }
    for e in EventType::ALL {
        if e.code(family).is_some() {
            specs.push(PostSpec::Event(e));
        }
        if family == Family::Ipc && e.has_smart_status() {
            specs.push(PostSpec::EventStop(e));
        }
    }
    specs
}

// ---- bodies ----------------------------------------------------------------------------

#[test]
fn every_body_is_well_formed_with_valid_images() {
    for family in [Family::Ipc, Family::Nvr] {
        for firmware in [Firmware::V1x, Firmware::V53] {
            let mut f = PostFactory::new(family, 11).with_firmware(firmware);
            for spec in all_specs(family) {
                let post = f.build(spec).unwrap();
                if spec == PostSpec::Keepalive(KeepaliveShape::Empty) {
                    assert!(post.body.is_empty());
                    continue;
                }
                well_formed(&post.body).unwrap_or_else(|e| panic!("{family} {spec:?}: {e}\n{}", post.text()));
                let decoded = body_images(&post.body);
                let raw: Vec<&Vec<u8>> = post.images.iter().map(|i| &i.bytes).collect();
                assert_eq!(decoded.iter().collect::<Vec<_>>(), raw, "{family} {spec:?}: images in document order");
                for img in &post.images {
                    check_jpeg(&img.bytes);
                    let range = match img.role {
                        "source" => ImageSizes::default().source,
                        "plate" => ImageSizes::default().plate,
                        _ => ImageSizes::default().crop,
                    };
                    assert!(range.contains(&img.bytes.len()), "{} image of {} bytes", img.role, img.bytes.len());
                }
                if let Some(ev) = &post.event {
                    let expect: Vec<(String, String, usize)> =
                        post.images.iter().map(|i| (i.role.to_owned(), i.sha256(), i.bytes.len())).collect();
                    assert_eq!(ev.images, expect);
                }
            }
        }
    }
}

#[test]
fn shapes_follow_the_samples() {
    let mut ipc = PostFactory::new(Family::Ipc, 5).with_firmware(Firmware::V1x);
    let lpr = ipc.build(PostSpec::Event(EventType::Lpr)).unwrap();
    let text = lpr.text();
    assert!(text.contains("<smartType type=\"openAlarmObj\">VEHICE</smartType>"));
    for el in ["mac", "sn", "deviceName", "channelId", "plateCount"] {
        assert_eq!(texts(&lpr.body, el).len(), 1, "{el}");
    }
    let plates = texts(&lpr.body, "plateNumber").len() - 1;
    assert_eq!(texts(&lpr.body, "vehicleDirect").len(), plates);
    assert_eq!(texts(&lpr.body, "carAttr").len(), plates);
    assert!(text.contains("<PlateConfidence type=\"uint32\" count=\""));
    assert_eq!(lpr.images[0].role, "source");
    assert_eq!(lpr.images[1].role, "plate");
    assert_eq!(lpr.event.as_ref().unwrap().plates, texts(&lpr.body, "plateNumber")[1..].to_vec());

    let pea = ipc.build(PostSpec::Event(EventType::Intrusion)).unwrap();
    assert!(pea.text().contains("<smartType type=\"openAlramObj\">PEA</smartType>"));
    assert!(pea.text().contains("<perimeter><perInfo type=\"list\" count=\"1\">"));
    assert_eq!(texts(&pea.body, "status"), ["SMART_START"]);
    assert!(texts(&pea.body, "mac").is_empty(), "v1.x events carry no identity");
    let stop = ipc.build(PostSpec::EventStop(EventType::Intrusion)).unwrap();
    assert_eq!(texts(&stop.body, "status"), ["SMART_STOP"]);
    assert_eq!(texts(&stop.body, "eventId"), texts(&pea.body, "eventId"));
    assert_eq!(stop.event.as_ref().unwrap().state, Some(State::Stop));
    let line = ipc.build(PostSpec::Event(EventType::LineCrossing)).unwrap();
    assert!(line.text().contains("<tripwire><tripInfo"));
    assert_eq!(line.event.as_ref().unwrap().kind, Kind::LineCrossing);

    let traject = ipc.build(PostSpec::Traject { targets: 3, fresh: true }).unwrap();
    assert!(traject.text().contains("<traject type=\"list\" count=\"3\">"));
    for t in texts(&traject.body, "targetType") {
        assert!(["person", "car", "motor"].contains(&t.as_str()), "{t}");
    }
    let moved = ipc.build(PostSpec::Traject { targets: 3, fresh: false }).unwrap();
    assert_eq!(texts(&moved.body, "targetId"), texts(&traject.body, "targetId"), "tracks continue");

    let status = ipc.build(PostSpec::AlarmStatus { alarm: Alarm::Lpr, on: true }).unwrap();
    assert!(status.text().contains("<vehiceAlarm type=\"boolean\" id=\"1\">true</vehiceAlarm>"));
    let data_time = &texts(&status.body, "dataTime")[0];
    let parsed = jiff::civil::DateTime::strptime("%m-%d-%Y %I:%M:%S %p", data_time).unwrap();
    let us = parsed.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_microsecond();
    assert_eq!(us, status.event.as_ref().unwrap().device_time_us);
    assert!(data_time.ends_with(" AM") || data_time.ends_with(" PM"), "{data_time}");

    let ka = ipc.build(PostSpec::Keepalive(KeepaliveShape::Config17)).unwrap();
    assert!(ka.text().starts_with("<config version=\"1.7\""), "fw 5.3 keepalive has no declaration");
    let di = ipc.build(PostSpec::Keepalive(KeepaliveShape::DeviceInfo)).unwrap();
    assert_eq!(texts(&di.body, "SN"), [ipc.identity().serial.clone()]);

    let mut nvr = PostFactory::new(Family::Nvr, 5);
    nvr.set_channel(3);
    let v = nvr.build(PostSpec::Event(EventType::Lpr)).unwrap();
    assert_eq!(texts(&v.body, "smartType"), ["vehicle"]);
    assert_eq!(texts(&v.body, "channelId"), ["3"]);
    assert_eq!(texts(&v.body, "licensePlateNumber"), v.event.as_ref().unwrap().plates);
    let face = nvr.build(PostSpec::Event(EventType::Face)).unwrap();
    for el in ["age", "sex", "glasses", "mask"] {
        assert_eq!(texts(&face.body, el).len(), 1, "{el}");
    }
    assert_eq!(face.images.iter().map(|i| i.role).collect::<Vec<_>>(), ["source", "face"]);
    let count = nvr.build(PostSpec::Event(EventType::CountingByLine)).unwrap();
    assert_eq!(texts(&count.body, "boundary"), ["tripwire"]);
    assert_eq!(count.event.as_ref().unwrap().kind, Kind::Counting);
    let ns = nvr.build(PostSpec::AlarmStatus { alarm: Alarm::Perimeter, on: true }).unwrap();
    assert_eq!(texts(&ns.body, "messageType"), ["alarmStatus"]);
    assert!(ns.text().contains("<perimeterAlarm><item id=\"1\">true</item></perimeterAlarm>"));
    let nk = nvr.build(PostSpec::Keepalive(KeepaliveShape::Nvr)).unwrap();
    assert!(texts(&nk.body, "channelId").is_empty(), "NVR keepalives carry no channel");
    assert!(nvr.build(PostSpec::Event(EventType::RegionEntry)).is_err());
    assert!(nvr.build(PostSpec::EventStop(EventType::Intrusion)).is_err());
}

#[test]
fn idempotency_keys_differ() {
    for family in [Family::Ipc, Family::Nvr] {
        let mut f = PostFactory::new(family, 3).with_image_sizes(ImageSizes::none());
        let specs = all_specs(family);
        let mut keys = HashSet::new();
        let mut last_time = 0;
        let mut seqs = HashSet::new();
        for round in 0..40 {
            for &spec in &specs {
                let post = f.build(spec).unwrap();
                assert!(seqs.insert(post.seq));
                let Some(ev) = post.event else { continue };
                let key = (ev.code.clone(), ev.state, ev.rule, ev.event_id, ev.target_ids.clone(), ev.device_time_us);
                assert!(keys.insert(key.clone()), "{family} round {round}: repeated key {key:?}");
                if post.kind != PostKind::AlarmStatus {
                    assert!(ev.device_time_us > last_time, "currentTime strictly increases");
                    last_time = ev.device_time_us;
                    let body_time = texts(&post.body, "currentTime");
                    assert_eq!(body_time, [ev.device_time_us.to_string()]);
                    if family == Family::Nvr {
                        assert_eq!(ev.device_time_us % 1000, 0, "NVR times are whole milliseconds");
                    }
                }
            }
        }
    }
}

#[test]
fn malformed_bodies_are_not_well_formed() {
    let mut f = PostFactory::new(Family::Ipc, 9).with_image_sizes(ImageSizes::small());
    for i in 0..50 {
        let base = f.build(all_specs(Family::Ipc)[i % 20]).unwrap();
        let bad = f.malformed(&base);
        assert!(well_formed(&bad.body).is_err(), "still well-formed:\n{}", bad.text());
        assert!(bad.event.is_none());
    }
}

#[test]
fn same_seed_same_bodies() {
    let build = || {
        let mut f = PostFactory::new(Family::Nvr, 42).with_image_sizes(ImageSizes::small());
        let p = f.build(PostSpec::Event(EventType::Lpr)).unwrap();
        (p.images, p.event.unwrap().plates, f.identity().clone())
    };
    assert_eq!(build(), build());
}

// ---- a tiny server ---------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Seen {
    conn: usize,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
    /// Bytes of later requests already received when this one was complete.
    pipelined_bytes: usize,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct ServerOptions {
    send_continue: bool,
    authorization: Option<String>,
    max_body: usize,
    /// Close after each reply without saying so (a server's idle timeout).
    drop_after_reply: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { send_continue: true, authorization: None, max_body: 1 << 20, drop_after_reply: false }
    }
}

#[derive(Debug, Default)]
struct Log {
    seen: Vec<Seen>,
    connections: usize,
    truncated: usize,
}

async fn server(opts: ServerOptions) -> (SocketAddr, Arc<Mutex<Log>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let l = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let conn = {
                let mut g = l.lock().unwrap();
                g.connections += 1;
                g.connections
            };
            tokio::spawn(serve(stream, conn, opts.clone(), l.clone()));
        }
    });
    (addr, log)
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    s.read_buf(buf).await.unwrap_or(0)
}

async fn serve(mut s: TcpStream, conn: usize, opts: ServerOptions, log: Arc<Mutex<Log>>) {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if fill(&mut s, &mut buf).await == 0 {
                if !buf.is_empty() {
                    log.lock().unwrap().truncated += 1;
                }
                return;
            }
        };
        let head = String::from_utf8(buf.drain(..end).collect()).unwrap();
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap().split(' ');
        let (method, target, version) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(method, "POST");
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        let mut seen =
            Seen { conn, target: target.to_owned(), version: version.to_owned(), headers, ..Seen::default() };
        let length: usize = seen.header("content-length").map_or(0, |v| v.parse().unwrap());
        seen.chunked = seen.header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        if length > opts.max_body {
            let _ =
                s.write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            // Lingering close: drain until the client hangs up, so the 413 is not lost to a reset.
            let _ = s.shutdown().await;
            let mut sink = [0u8; 65536];
            while matches!(tokio::time::timeout(Duration::from_secs(2), s.read(&mut sink)).await, Ok(Ok(n)) if n > 0) {}
            return;
        }
        if seen.header("expect").is_some() && opts.send_continue {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
        }
        if seen.chunked {
            loop {
                let i = loop {
                    if let Some(i) = find(&buf, b"\r\n") {
                        break i;
                    }
                    if fill(&mut s, &mut buf).await == 0 {
                        return;
                    }
                };
                let size = usize::from_str_radix(std::str::from_utf8(&buf[..i]).unwrap(), 16).unwrap();
                buf.drain(..i + 2);
                while buf.len() < size + 2 {
                    if fill(&mut s, &mut buf).await == 0 {
                        return;
                    }
                }
                seen.body.extend(buf.drain(..size));
                buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while buf.len() < length {
                if fill(&mut s, &mut buf).await == 0 {
                    log.lock().unwrap().truncated += 1;
                    return;
                }
            }
            seen.body = buf.drain(..length).collect();
        }
        seen.pipelined_bytes = buf.len();
        let close = version == "HTTP/1.0" || seen.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let authorized = opts.authorization.as_deref().is_none_or(|a| seen.header("authorization") == Some(a));
        log.lock().unwrap().seen.push(seen);
        let reply = if authorized {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{}\r\n{SUCCESS_REPLY}",
                SUCCESS_REPLY.len(),
                if close { "Connection: close\r\n" } else { "" }
            )
        } else {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"camgate\"\r\nContent-Length: 0\r\n\r\n"
                .to_owned()
        };
        s.write_all(reply.as_bytes()).await.unwrap();
        if close || opts.drop_after_reply {
            return;
        }
    }
}

fn camera(addr: SocketAddr) -> Camera {
    Camera::new(addr).image_sizes(ImageSizes::small()).reply_timeout(Duration::from_secs(5))
}

fn nvr(addr: SocketAddr) -> Nvr {
    Nvr::new(addr).image_sizes(ImageSizes::small()).reply_timeout(Duration::from_secs(5))
}

/// Every acknowledged event's images are exactly those in the body the server received.
fn assert_events_match(report: &Report, log: &Log) {
    let received: Vec<Vec<(String, usize)>> = log
        .seen
        .iter()
        .map(|s| {
            body_images(&s.body)
                .into_iter()
                .map(|b| (hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b)), b.len()))
                .collect()
        })
        .collect();
    for ev in &report.events {
        let want: Vec<(String, usize)> = ev.images.iter().map(|(_, h, n)| (h.clone(), *n)).collect();
        assert!(received.contains(&want), "images of {ev:?} were not received");
    }
}

// ---- runner ----------------------------------------------------------------------------

#[tokio::test]
async fn camera_reuses_one_keep_alive_connection() {
    let (addr, log) = server(ServerOptions::default()).await;
    let script = Script::new(1)
        .send(PostSpec::Keepalive(KeepaliveShape::Empty))
        .send(PostSpec::Event(EventType::Lpr))
        .send(PostSpec::AlarmStatus { alarm: Alarm::Lpr, on: true })
        .send(PostSpec::Traject { targets: 1, fresh: true })
        .send(PostSpec::Event(EventType::Face))
        .send(PostSpec::Keepalive(KeepaliveShape::DeviceInfo));
    let mut cam = camera(addr).credentials("cam", "secret");
    let report = cam.run_script(&script).await.unwrap();
    assert_eq!(report.ok, 6, "{report}");
    assert_eq!(report.bad_reply_body, 0);
    assert_eq!(report.connections, 1);
    assert_eq!(report.connection_errors, 0);
    assert_eq!(report.events.len(), 4);
    let kinds: Vec<Kind> = report.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Kind::Plate, Kind::Plate, Kind::Track, Kind::Face]);
    let log = log.lock().unwrap();
    assert_eq!(log.connections, 1);
    let auth = format!("Basic {}", STANDARD.encode("cam:secret"));
    for s in &log.seen {
        assert_eq!(s.target, "/API");
        assert_eq!(s.version, "HTTP/1.1");
        assert_eq!(s.header("content-type"), Some("application/xml; charset=utf-8"));
        assert_eq!(s.header("connection"), Some("keep-alive"));
        assert_eq!(s.header("authorization"), Some(auth.as_str()));
    }
    assert_eq!(log.seen[0].header("content-length"), Some("0"));
    assert_events_match(&report, &log);
    let text = report.to_string();
    assert!(text.contains("6 posts") && text.contains("6 × 200") && text.contains("4 events acknowledged"), "{text}");
}

#[tokio::test]
async fn nvr_uses_absolute_form_and_a_connection_per_post() {
    let (addr, log) = server(ServerOptions::default()).await;
    let script = Script::new(2)
        .send(PostSpec::Keepalive(KeepaliveShape::Nvr))
        .step(Step::Channel(2))
        .send(PostSpec::AlarmStatus { alarm: Alarm::Perimeter, on: true })
        .send(PostSpec::Event(EventType::Intrusion))
        .send(PostSpec::AlarmStatus { alarm: Alarm::Perimeter, on: false });
    let report = nvr(addr).run_script(&script).await.unwrap();
    assert_eq!((report.ok, report.connections, report.events.len()), (4, 4, 3), "{report}");
    assert!(report.events.iter().all(|e| e.channel == 2 && e.family == Family::Nvr));
    assert_eq!(report.events[0].state, Some(State::Start));
    assert_eq!(report.events[2].state, Some(State::Stop));
    let log = log.lock().unwrap();
    assert_eq!(log.connections, 4);
    for s in &log.seen {
        assert_eq!(s.target, format!("http://{addr}/API"));
        assert_eq!(s.header("content-type"), Some("application/soap+xml; charset=utf-8"));
        assert_eq!(s.header("connection"), Some("close"));
    }
    assert_events_match(&report, &log);
}

#[tokio::test]
async fn chunked_pipelined_and_http10_shapes() {
    let (addr, log) = server(ServerOptions::default()).await;
    let script = Script::new(3)
        .step(Step::send(PostSpec::Event(EventType::Intrusion)).with_shape(Shape::Chunked { chunks: 4 }))
        .step(Step::send(PostSpec::Keepalive(KeepaliveShape::Empty)).with_shape(Shape::Chunked { chunks: 4 }))
        .step(Step::send(PostSpec::Event(EventType::RegionEntry)).with_shape(Shape::Pipelined(3)))
        .step(Step::send(PostSpec::Event(EventType::CountingByLine)).with_shape(Shape::Http10))
        .step(Step::send(PostSpec::Event(EventType::Metadata)).with_shape(Shape::Http10));
    let report = camera(addr).run_script(&script).await.unwrap();
    assert_eq!(report.ok, 7, "{report}");
    assert_eq!(report.connection_errors, 0);
    assert_eq!(report.events.len(), 6);
    // Chunked and pipelined posts share the first connection; each HTTP/1.0 post closes.
    assert_eq!(report.connections, 3);
    let log = log.lock().unwrap();
    assert!(log.seen[0].chunked && log.seen[1].chunked);
    assert!(log.seen[1].body.is_empty());
    assert!(log.seen[2..5].iter().all(|s| s.conn == log.seen[0].conn && !s.chunked));
    assert!(log.seen[2].pipelined_bytes > 0, "the pipelined requests arrived before the first reply");
    assert_eq!(log.seen[5].version, "HTTP/1.0");
    assert_eq!(log.seen[5].header("connection"), None);
    assert_ne!(log.seen[5].conn, log.seen[6].conn);
    for s in &log.seen[..1] {
        well_formed(&s.body).unwrap();
    }
    assert_events_match(&report, &log);
}

#[tokio::test]
async fn expect_100_continue_with_and_without_the_interim_reply() {
    let (addr, log) = server(ServerOptions::default()).await;
    let script = Script::new(4).step(Step::send(PostSpec::Event(EventType::Lpr)).with_shape(Shape::Expect100));
    let report = camera(addr).run_script(&script).await.unwrap();
    assert_eq!((report.ok, report.continues, report.continue_timeouts), (1, 1, 0), "{report}");
    assert_eq!(log.lock().unwrap().seen[0].header("expect"), Some("100-continue"));

    let (addr, _log) = server(ServerOptions { send_continue: false, ..ServerOptions::default() }).await;
    let mut cam = camera(addr).expect_timeout(Duration::from_millis(50));
    let report = cam.run_script(&script).await.unwrap();
    assert_eq!((report.ok, report.continues, report.continue_timeouts), (1, 0, 1), "{report}");
    assert_eq!(report.events.len(), 1);
}

#[tokio::test]
async fn faults_are_injected_and_counted() {
    let opts = ServerOptions {
        authorization: Some(format!("Basic {}", STANDARD.encode("cam:secret"))),
        max_body: 1 << 20,
        ..ServerOptions::default()
    };
    let (addr, log) = server(opts).await;
    let script = Script::new(5)
        .step(Step::send(PostSpec::Event(EventType::Face)).with_fault(Fault::Duplicate))
        .step(Step::send(PostSpec::Event(EventType::Lpr)).with_fault(Fault::WrongCredentials))
        .step(Step::send(PostSpec::Event(EventType::Intrusion)).with_fault(Fault::Malformed))
        .step(Step::send(PostSpec::Event(EventType::Lpr)).with_fault(Fault::Truncated))
        .step(Step::send(PostSpec::Event(EventType::Lpr)).with_fault(Fault::Oversized))
        .send(PostSpec::Keepalive(KeepaliveShape::Empty));
    let mut cam = camera(addr).credentials("cam", "secret");
    let report = cam.run_script(&script).await.unwrap();
    assert_eq!(report.connection_errors, 0, "{report}");
    assert_eq!(report.ok, 4, "face, its resend, the malformed post and the keepalive: {report}");
    assert_eq!(report.status_count(401), 1);
    assert_eq!(report.status_count(413), 1);
    assert_eq!(report.events.len(), 1, "the face event, once");
    assert_eq!(report.duplicates_acked, 1);
    for f in Fault::ALL {
        assert_eq!(report.faults.get(&f), Some(&1), "{f}");
    }
    assert_eq!(report.posts(), 7);
    // Truncated and oversized posts cost their connection.
    assert_eq!(report.connections, 3);
    // Let the server notice the truncated body.
    for _ in 0..100 {
        if log.lock().unwrap().truncated > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = log.lock().unwrap();
    assert_eq!(log.truncated, 1);
    assert_eq!(log.seen[0].body, log.seen[1].body, "the duplicate is byte for byte the same");
    assert!(well_formed(&log.seen[3].body).is_err(), "malformed body");
}

#[tokio::test]
async fn a_connection_closed_by_the_server_is_replaced() {
    let (addr, log) = server(ServerOptions { drop_after_reply: true, ..ServerOptions::default() }).await;
    let mut script = Script::new(6);
    for _ in 0..4 {
        script = script.send(PostSpec::Event(EventType::Face)).step(Step::Pause(Duration::from_millis(20)));
    }
    let report = camera(addr).run_script(&script).await.unwrap();
    assert_eq!((report.ok, report.connection_errors, report.connections), (4, 0, 4), "{report}");
    assert_eq!(log.lock().unwrap().connections, 4);
}

#[tokio::test]
async fn run_posts_a_realistic_stream() {
    let (addr, log) = server(ServerOptions::default()).await;
    let mut cam = camera(addr).seed(8);
    let report = cam.run(500.0, Until::Posts(200), CancellationToken::new()).await.unwrap();
    assert_eq!(report.posts(), 200, "{report}");
    assert_eq!(report.ok, 200);
    assert_eq!(report.connections, 1);
    let keepalives: u64 = report.sent.iter().filter(|(k, _)| matches!(k, PostKind::Keepalive(_))).map(|(_, n)| n).sum();
    assert!(keepalives > 20, "{report}");
    assert!(report.sent_of(PostKind::Traject) > 0, "{report}");
    assert!(report.sent_of(PostKind::AlarmStatus) > 0, "{report}");
    let kinds: HashSet<Kind> = report.events.iter().map(|e| e.kind).collect();
    assert!(kinds.len() >= 5, "{kinds:?}");
    assert_events_match(&report, &log.lock().unwrap());

    let (addr, log) = server(ServerOptions::default()).await;
    let mut box_ = nvr(addr).seed(9).shapes(vec![Shape::ContentLength, Shape::Chunked { chunks: 3 }, Shape::Expect100]);
    let report = box_.run(500.0, Until::Posts(60), CancellationToken::new()).await.unwrap();
    assert_eq!((report.posts(), report.ok, report.connections), (60, 60, 60), "{report}");
    assert_eq!(report.sent_of(PostKind::Traject), 0);
    assert!(report.events.iter().all(|e| (1..=4).contains(&e.channel)));
    assert_eq!(log.lock().unwrap().seen.len(), 60);
}

#[tokio::test]
async fn run_with_faults_and_pipelining_stops_on_time_or_token() {
    let (addr, _log) = server(ServerOptions::default()).await;
    let mut cam = camera(addr)
        .seed(10)
        .shapes(vec![Shape::Pipelined(4), Shape::ContentLength])
        .faults(0.2, vec![Fault::Duplicate, Fault::Malformed, Fault::Truncated]);
    let report = cam.run(1000.0, Until::Posts(150), CancellationToken::new()).await.unwrap();
    assert_eq!(report.posts(), 150, "{report}");
    assert_eq!(report.connection_errors, 0, "{report}");
    assert!(report.faults.values().sum::<u64>() > 0, "{report}");

    let stop = CancellationToken::new();
    stop.cancel();
    let report = cam.run(1.0, Until::Stopped, stop).await.unwrap();
    assert_eq!(report.posts(), 0);
    let report = cam.run(1000.0, Until::Elapsed(Duration::from_millis(50)), CancellationToken::new()).await.unwrap();
    assert!(report.posts() > 0, "{report}");
    assert!(matches!(cam.run(0.0, Until::Stopped, CancellationToken::new()).await, Err(Error::Rate(_))));
}

#[tokio::test]
async fn unsupported_script_steps_are_refused_before_sending() {
    let (addr, log) = server(ServerOptions::default()).await;
    let script =
        Script::new(1).send(PostSpec::Keepalive(KeepaliveShape::Nvr)).send(PostSpec::Event(EventType::RegionExit));
    assert!(matches!(nvr(addr).run_script(&script).await, Err(Error::Unsupported(_))));
    assert_eq!(log.lock().unwrap().connections, 0);
}

#[test]
fn alarm_status_spreads_over_rules_and_pairs_on_with_off() {
    let mut f = PostFactory::new(Family::Nvr, 12);
    let mut rules = Vec::new();
    for _ in 0..3 {
        let on = f.build(PostSpec::AlarmStatus { alarm: Alarm::Face, on: true }).unwrap().event.unwrap();
        let off = f.build(PostSpec::AlarmStatus { alarm: Alarm::Face, on: false }).unwrap().event.unwrap();
        assert_eq!(on.rule, off.rule, "the end reports the rule that started");
        assert!(off.device_time_us >= on.device_time_us);
        rules.push(on.rule.unwrap());
    }
    assert!(rules.iter().all(|r| (1..=4).contains(r)));
    let now = jiff::Timestamp::now().as_microsecond();
    for _ in 0..40 {
        let ev = f.build(PostSpec::AlarmStatus { alarm: Alarm::Motion, on: true }).unwrap().event.unwrap();
        assert!(ev.device_time_us - now < 15_000_000, "alarm times stay near the wall clock");
    }
}

#[test]
fn run_futures_can_be_spawned() {
    fn spawnable<T: Send + 'static>(_: &T) {}
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut cam = Camera::new(addr);
    let mut box_ = Nvr::new(addr);
    // Only the type is checked: the futures are never polled.
    let a = async move { cam.run(1.0, Until::Posts(1), CancellationToken::new()).await };
    let b = async move { box_.run_script(&Script::new(1)).await };
    spawnable(&a);
    spawnable(&b);
}
