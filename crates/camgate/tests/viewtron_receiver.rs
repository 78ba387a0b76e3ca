//! The Viewtron receiver on the webhook listener, driven with raw HTTP the way cameras and
//! NVRs send it, against a gateway running in-process.

use std::path::PathBuf;
use std::time::Duration;

use camgate::app::Gateway;
use camgate::store::EventFilter;
use camgate_core::Kind;
use camgate_core::config::Config;
use camgate_protocols::viewtron::SUCCESS_REPLY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn sample(rel: &str) -> Vec<u8> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples/viewtron");
    std::fs::read(shared.join(rel)).unwrap_or_else(|e| panic!("sample {rel} under {}: {e}", shared.display()))
}

async fn gateway(dir: &std::path::Path, extra: &str) -> Gateway {
    let text = format!(
        "[site]\ndata_dir = \"{}\"\n[log]\nfile = \"\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [webhook]\nlisten = \"127.0.0.1:0\"\n{extra}",
        dir.display()
    );
    Gateway::start(&Config::from_toml(&text, "test.toml").unwrap()).await.unwrap()
}

fn post(path: &str, body: &[u8], extra_headers: &str) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: camgate\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{extra_headers}\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Read one HTTP response (head and Content-Length body) from the stream.
async fn response(s: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, String, Vec<u8>) {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return (status, head, body);
            }
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await.expect("a reply").unwrap();
        assert!(n > 0, "connection closed before a full reply; have {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn events(gw: &Gateway) -> Vec<camgate_core::Event> {
    gw.store().read_after(0, 1000, &EventFilter::default()).await.unwrap().into_iter().map(|e| e.event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_posts_on_one_keep_alive_connection() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "").await;
    let mut s = TcpStream::connect(gw.webhook_addr().unwrap()).await.unwrap();
    let mut buf = Vec::new();
    // Keepalive first: answered, not stored as an event, but the device is now connected.
    s.write_all(&post("/API", b"", "")).await.unwrap();
    let (status, head, body) = response(&mut s, &mut buf).await;
    assert_eq!(status, 200);
    assert_eq!(body, SUCCESS_REPLY.as_bytes());
    assert_eq!(body.len(), 126);
    assert!(head.to_ascii_lowercase().contains("content-type: application/xml"), "{head}");
    for file in
        ["ipc-v1x/lpr.xml", "ipc-v1x/perimeter-intrusion.xml", "ipc-v1x/keepalive.xml", "ipc-v1x/alarm-status.xml"]
    {
        s.write_all(&post("/API", &sample(file), "")).await.unwrap();
        let (status, _, body) = response(&mut s, &mut buf).await;
        assert_eq!((status, body.as_slice()), (200, SUCCESS_REPLY.as_bytes()), "{file}");
    }
    let stored = events(&gw).await;
    let kinds: Vec<Kind> = stored.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Kind::Device, Kind::Plate, Kind::Intrusion, Kind::Plate], "{stored:#?}");
    assert_eq!(stored[0].code.as_deref(), Some("connected"));
    assert_eq!(stored[1].plate.as_ref().unwrap().number, "ABC1234");
    assert_eq!(stored[1].source, "127.0.0.1", "unknown devices are named by address");
    assert_eq!(stored[2].state, Some(camgate_core::State::Start));
    assert_eq!(stored[3].code.as_deref(), Some("vehiceAlarm"), "alarm status is a state event");
    // The same post again (a camera retrying) is not stored twice.
    s.write_all(&post("/API", &sample("ipc-v1x/lpr.xml"), "")).await.unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    assert_eq!(events(&gw).await.len(), 4);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nvr_absolute_form_close_chunked_pipelined_continue_and_http10() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "").await;
    let addr = gw.webhook_addr().unwrap();

    // NVR: absolute-form target, Connection: close, one connection per post.
    for file in ["nvr-v2/keepalive.xml", "nvr-v2/vehicle-lpr.xml", "nvr-v2/face-detection.xml"] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = post(&format!("http://{addr}/API"), &sample(file), "Connection: close\r\n");
        s.write_all(&req).await.unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all)).await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&all);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with(SUCCESS_REPLY), "{text}");
    }

    // Chunked body.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = sample("nvr-v2/region-intrusion.xml");
    let mut req = b"POST /API HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(700) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);

    // Two pipelined posts, answered in order.
    let mut both = post("/API", &sample("nvr-v2/line-crossing.xml"), "");
    both.extend_from_slice(&post("/API", &sample("nvr-v2/target-counting-by-line.xml"), ""));
    s.write_all(&both).await.unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    assert_eq!(response(&mut s, &mut buf).await.0, 200);

    // Expect: 100-continue.
    let body = sample("nvr-v2/target-counting-by-area.xml");
    s.write_all(
        format!("POST /API HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n", body.len())
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut first = [0u8; 25];
    s.read_exact(&mut first).await.unwrap();
    assert!(first.starts_with(b"HTTP/1.1 100 Continue"), "{:?}", String::from_utf8_lossy(&first));
    s.write_all(&body).await.unwrap();
    buf.clear();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);

    // HTTP/1.0.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = sample("nvr-v2/video-metadata.xml");
    let mut req = format!("POST /API HTTP/1.0\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    req.extend_from_slice(&body);
    s.write_all(&req).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&all).ends_with(SUCCESS_REPLY));

    let stored = events(&gw).await;
    let mut kinds: Vec<Kind> = stored.iter().map(|e| e.kind).collect();
    kinds.sort();
    let mut expected = vec![
        Kind::Device,
        Kind::Plate,
        Kind::Face,
        Kind::Intrusion,
        Kind::LineCrossing,
        Kind::Counting,
        Kind::Counting,
        Kind::Metadata,
    ];
    expected.sort();
    assert_eq!(kinds, expected);
    let plate = stored.iter().find(|e| e.kind == Kind::Plate).unwrap();
    assert_eq!(plate.plate.as_ref().unwrap().number, "JP116D");
    assert_eq!(plate.channel.map(|c| c.get()), Some(2));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_dead_letters_and_still_answered_with_success() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "").await;
    let mut s = TcpStream::connect(gw.webhook_addr().unwrap()).await.unwrap();
    let mut buf = Vec::new();
    let bad: [&[u8]; 3] =
        [b"<config version=\"1.7\"><smartType>VEHICE", b"{\"not\": \"xml\"}", b"<html><body>hi</body></html>"];
    for body in bad {
        s.write_all(&post("/API", body, "")).await.unwrap();
        let (status, _, reply) = response(&mut s, &mut buf).await;
        assert_eq!((status, reply.as_slice()), (200, SUCCESS_REPLY.as_bytes()));
    }
    let letters = gw.store().dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 3);
    assert_eq!(letters[2].payload, bad[0]);
    assert!(letters.iter().all(|l| l.source == "127.0.0.1"));
    assert!(events(&gw).await.iter().all(|e| e.kind == Kind::Device), "no event from bad bodies");
    // Valid XML without the declaration is parsed, not dropped.
    let text = String::from_utf8(sample("nvr-v2/region-intrusion.xml")).unwrap();
    let without = text.split_once("?>").unwrap().1.trim_start().to_owned();
    s.write_all(&post("/API", without.as_bytes(), "")).await.unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    assert!(events(&gw).await.iter().any(|e| e.kind == Kind::Intrusion));
    let metrics = gw.metrics().render();
    assert!(metrics.contains(r#"camgate_viewtron_posts_total{kind="unparsed"} 3"#), "{metrics}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_unknown_devices_and_size_limits() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        dir.path(),
        "max_body = \"64KB\"\naccept_unknown = false\n[[camera]]\nname = \"gate\"\nvendor = \"viewtron\"\n\
         address = \"127.0.0.1\"\nusername = \"cam\"\npassword = \"pa55\"\nchannels = [\"Lane in\"]\n",
    )
    .await;
    let addr = gw.webhook_addr().unwrap();
    let body = sample("nvr-v2/region-intrusion.xml");
    // A refused request's body is not read, so each attempt gets its own connection.
    let attempt = |auth: &'static str| {
        let req = post("/API", &body, auth);
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&req).await.unwrap();
            response(&mut s, &mut Vec::new()).await
        }
    };
    let (status, head, _) = attempt("").await;
    assert_eq!(status, 401);
    assert!(head.to_ascii_lowercase().contains("www-authenticate: basic"), "{head}");
    assert_eq!(attempt("Authorization: Basic Y2FtOndyb25n\r\n").await.0, 401, "cam:wrong");
    assert_eq!(attempt("Authorization: Basic Y2FtOnBhNTU=\r\n").await.0, 200, "cam:pa55");
    let stored = events(&gw).await;
    let intrusion = stored.iter().find(|e| e.kind == Kind::Intrusion).unwrap();
    assert_eq!(intrusion.source, "Lane in", "channel 1 has a configured name");
    // Over max_body: 413 from the header alone.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /API HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Y2FtOnBhNTU=\r\nContent-Length: 64000000\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    assert_eq!(response(&mut s, &mut buf).await.0, 413);
    gw.shutdown().await;

    // An address no camera has, with accept_unknown = false: 403.
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "accept_unknown = false\n").await;
    let mut s = TcpStream::connect(gw.webhook_addr().unwrap()).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(&post("/API", &sample("ipc-v1x/lpr.xml"), "")).await.unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 403);
    assert_eq!(gw.store().head(), 0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_keep_a_device_connected_and_silence_disconnects_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        dir.path(),
        "device_timeout = \"400ms\"\n[[camera]]\nname = \"nvr\"\nvendor = \"viewtron\"\naddress = \"127.0.0.1\"\n",
    )
    .await;
    let state = |gw: &Gateway| gw.sources().snapshot().into_iter().find(|s| s.name == "nvr").map(|s| s.state).unwrap();
    assert_eq!(state(&gw), camgate::sources::SourceState::Listening, "configured, never heard from");
    let mut s = TcpStream::connect(gw.webhook_addr().unwrap()).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(&post("/API", &sample("nvr-v2/keepalive.xml"), "")).await.unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    assert_eq!(state(&gw), camgate::sources::SourceState::Connected);
    let codes = |events: Vec<camgate_core::Event>| -> Vec<String> {
        events.into_iter().filter(|e| e.kind == Kind::Device).map(|e| e.code.unwrap()).collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while codes(events(&gw).await) != ["connected", "disconnected"] {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", codes(events(&gw).await));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state(&gw), camgate::sources::SourceState::Disconnected);
    // It comes back.
    s.write_all(&post("/API", b"", "")).await.unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    assert_eq!(codes(events(&gw).await), ["connected", "disconnected", "connected"]);
    assert_eq!(events(&gw).await[0].source, "nvr");
    gw.shutdown().await;
}
