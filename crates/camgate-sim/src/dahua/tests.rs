//! Loopback tests: the real camgate clients (`dahua_auth::Authenticator`, `dahua::Decoder`)
//! against the simulated server. Every wait is bounded; no timing asserts beyond "arrives".

use std::net::SocketAddr;
use std::time::Duration;

use camgate_core::config::Secret;
use camgate_protocols::dahua::{Decoder, Limits, NormaliseOptions, Output, boundary_from_content_type};
use camgate_protocols::dahua_auth::{AuthPolicy, Authenticator, Credentials, Decision, Exchange, Refusal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::*;

const ATTACH: &str = "/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=1";
const DEADLINE: Duration = Duration::from_secs(20);

/// A response head: status, `WWW-Authenticate` values, `Content-Type`, and the bytes after it.
struct Head {
    status: u16,
    www_authenticate: Vec<String>,
    content_type: Option<String>,
    rest: Vec<u8>,
}

async fn send(addr: SocketAddr, target: &str, authorization: Option<&str>) -> (TcpStream, Head) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n");
    if let Some(a) = authorization {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let head = timeout(DEADLINE, read_head(&mut s)).await.expect("response head in time");
    (s, head)
}

async fn read_head(s: &mut TcpStream) -> Head {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the head: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut head = Head { status, www_authenticate: vec![], content_type: None, rest: buf[end + 4..].to_vec() };
    for l in lines {
        let (k, v) = l.split_once(':').unwrap();
        if k.eq_ignore_ascii_case("www-authenticate") {
            head.www_authenticate.push(v.trim().to_string());
        } else if k.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(v.trim().to_string());
        }
    }
    head
}

fn authenticator(user: &str, password: &str) -> Authenticator {
    Authenticator::new(
        Credentials::new(user, Secret::new(password)),
        AuthPolicy { max_failures: 100, ..Default::default() },
    )
}

/// One request driven by the real client state machine, a new connection per attempt.
async fn attach(addr: SocketAddr, auth: &mut Authenticator, target: &str) -> (Decision, Option<(TcpStream, Head)>) {
    let mut exchange = Exchange::default();
    let mut rng = rand::rng();
    loop {
        let header = auth.authorization(&mut exchange, "GET", target, &mut rng);
        let (s, head) = send(addr, target, header.as_ref().map(|h| h.expose())).await;
        let decision = auth.on_response(&mut exchange, head.status, head.www_authenticate.iter().map(String::as_str));
        match decision {
            Decision::Retry => continue,
            Decision::Authenticated => return (decision, Some((s, head))),
            d => return (d, None),
        }
    }
}

/// Read and decode until `done` says so; panics past the deadline.
async fn decode_until(s: &mut TcpStream, head: &Head, mut done: impl FnMut(&[Output]) -> bool) -> (Vec<Output>, bool) {
    let boundary = head.content_type.as_deref().and_then(boundary_from_content_type);
    let mut d = Decoder::new(boundary.as_deref(), Limits::default(), NormaliseOptions::default());
    let mut out = Vec::new();
    d.push(&head.rest, |o| out.push(o));
    let mut buf = [0u8; 4096];
    let mut eof = false;
    timeout(DEADLINE, async {
        while !done(&out) {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    eof = true;
                    while let Some(o) = d.finish() {
                        out.push(o);
                    }
                    return;
                }
                Ok(n) => d.push(&buf[..n], |o| out.push(o)),
            }
        }
    })
    .await
    .expect("stream outputs in time");
    (out, eof)
}

fn events(out: &[Output]) -> Vec<&camgate_protocols::dahua::Normalised> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(&**e),
            _ => None,
        })
        .collect()
}

fn heartbeats(out: &[Output]) -> usize {
    out.iter().filter(|o| matches!(o, Output::Heartbeat { .. })).count()
}

async fn auth_roundtrip(mode: AuthMode) {
    let server = DahuaServer::builder()
        .credentials("admin", "s3cret")
        .auth(mode)
        .event_interval(None)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut auth = authenticator("admin", "s3cret");
    let (decision, conn) = attach(server.local_addr(), &mut auth, ATTACH).await;
    assert_eq!(decision, Decision::Authenticated, "{mode:?}");
    let (mut s, head) = conn.unwrap();
    assert_eq!(head.status, 200);
    let (out, _) = decode_until(&mut s, &head, |o| heartbeats(o) >= 1).await;
    assert_eq!(heartbeats(&out), 1);
    let stats = server.stats();
    assert_eq!((Stats::get(&stats.auth_ok), Stats::get(&stats.auth_failed), Stats::get(&stats.challenges)), (1, 0, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn digest_md5_with_qop() {
    auth_roundtrip(AuthMode::digest()).await;
}

#[tokio::test]
async fn digest_md5_without_qop() {
    auth_roundtrip(AuthMode::Digest {
        qop: false,
        algorithm: DigestAlgorithm::Md5,
        nonce_per_request: false,
        stale_after: None,
    })
    .await;
}

#[tokio::test]
async fn digest_sha256() {
    auth_roundtrip(AuthMode::Digest {
        qop: true,
        algorithm: DigestAlgorithm::Sha256,
        nonce_per_request: false,
        stale_after: None,
    })
    .await;
}

#[tokio::test]
async fn basic_only() {
    auth_roundtrip(AuthMode::Basic).await;
}

#[tokio::test]
async fn stale_nonce_is_recovered() {
    let mode =
        AuthMode::Digest { qop: true, algorithm: DigestAlgorithm::Md5, nonce_per_request: false, stale_after: Some(1) };
    let server = DahuaServer::builder().auth(mode).event_interval(None).bind("127.0.0.1:0").await.unwrap();
    let mut auth = authenticator("admin", "admin");
    let (d1, _) = attach(server.local_addr(), &mut auth, ATTACH).await;
    // The second request signs pre-emptively with the remembered, now stale, nonce.
    let (d2, _) = attach(server.local_addr(), &mut auth, ATTACH).await;
    assert_eq!((d1, d2), (Decision::Authenticated, Decision::Authenticated));
    let stats = server.stats();
    assert_eq!(Stats::get(&stats.auth_stale), 1);
    assert_eq!(Stats::get(&stats.auth_failed), 0);
    assert_eq!(Stats::get(&stats.auth_ok), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn nonce_per_request_refuses_a_cached_nonce() {
    let mode =
        AuthMode::Digest { qop: true, algorithm: DigestAlgorithm::Md5, nonce_per_request: true, stale_after: None };
    let server = DahuaServer::builder().auth(mode).event_interval(None).bind("127.0.0.1:0").await.unwrap();
    let mut auth = authenticator("admin", "admin");
    let (d1, _) = attach(server.local_addr(), &mut auth, ATTACH).await;
    let (d2, _) = attach(server.local_addr(), &mut auth, ATTACH).await;
    assert_eq!((d1, d2), (Decision::Authenticated, Decision::Authenticated));
    let stats = server.stats();
    assert_eq!((Stats::get(&stats.auth_ok), Stats::get(&stats.auth_failed)), (2, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_password_counts_and_locks_out() {
    let server = DahuaServer::builder()
        .credentials("admin", "right")
        .lockout(3, Duration::from_millis(400))
        .event_interval(None)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    for _ in 0..3 {
        // A fresh client each time: bare request, challenge, one wrong answer.
        let mut wrong = authenticator("admin", "wrong");
        let (d, _) = attach(addr, &mut wrong, ATTACH).await;
        assert!(matches!(d, Decision::Failed { attempts: 1, .. }), "{d:?}");
    }
    let stats = server.stats();
    assert_eq!(Stats::get(&stats.auth_failed), 3);
    // Locked: even the right password is refused.
    let mut right = authenticator("admin", "right");
    let (d, _) = attach(addr, &mut right, ATTACH).await;
    assert!(matches!(d, Decision::Failed { .. }), "{d:?}");
    assert!(Stats::get(&stats.auth_locked) >= 2);
    assert_eq!(Stats::get(&stats.auth_ok), 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut right = authenticator("admin", "right");
    let (d, _) = attach(addr, &mut right, ATTACH).await;
    assert_eq!(d, Decision::Authenticated);
    server.shutdown().await;
}

#[tokio::test]
async fn too_many_connections_is_a_bare_401() {
    let server = DahuaServer::builder()
        .auth(AuthMode::None)
        .max_connections(1)
        .event_interval(None)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let (_first, head) = send(server.local_addr(), ATTACH, None).await;
    assert_eq!(head.status, 200);
    let mut auth = authenticator("admin", "admin");
    let (d, _) = attach(server.local_addr(), &mut auth, ATTACH).await;
    assert_eq!(d, Decision::Refused(Refusal::NoChallenge));
    assert_eq!(Stats::get(&server.stats().connections_refused), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn long_code_list_is_400_and_all_works() {
    let server = DahuaServer::builder().auth(AuthMode::None).max_codes(2).bind("127.0.0.1:0").await.unwrap();
    let long = "/cgi-bin/eventManager.cgi?action=attach&codes=[VideoMotion,AlarmLocal,NumberStat]&heartbeat=1";
    let (_, head) = send(server.local_addr(), long, None).await;
    assert_eq!(head.status, 400);
    let (_, head) = send(server.local_addr(), ATTACH, None).await;
    assert_eq!(head.status, 200);
    assert_eq!(Stats::get(&server.stats().bad_requests), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn short_code_list_filters() {
    let server = DahuaServer::builder()
        .auth(AuthMode::None)
        .channels(2)
        .event_interval(Some(Duration::from_millis(20)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let target = "/cgi-bin/eventManager.cgi?action=attach&codes=[VideoMotion,AlarmLocal]&heartbeat=5";
    let (mut s, head) = send(server.local_addr(), target, None).await;
    let (out, _) = decode_until(&mut s, &head, |o| events(o).len() >= 8).await;
    assert!(events(&out).iter().all(|e| e.code() == "VideoMotion" || e.code() == "AlarmLocal"));
    let by_code = server.stats().events_by_code();
    assert!(by_code.keys().all(|c| c == "VideoMotion" || c == "AlarmLocal"), "{by_code:?}");
    server.shutdown().await;
}

/// Streams of one framing variant decode into exactly the events the server reports.
async fn framing_roundtrip(framing: Framing) {
    let server = DahuaServer::builder()
        .auth(AuthMode::None)
        .channels(3)
        .framings(&[framing])
        .event_interval(Some(Duration::from_millis(30)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let (mut s, head) = send(server.local_addr(), ATTACH, None).await;
    assert_eq!(head.status, 200, "{framing:?}");
    let (out, _) = decode_until(&mut s, &head, |o| events(o).len() >= 16 && heartbeats(o) >= 1).await;
    let got = events(&out);
    let sent = server.stats().events_on(0);
    assert!(sent.len() >= got.len(), "{framing:?}");
    for (g, e) in got.iter().zip(&sent) {
        assert_eq!(g.code(), e.code, "{framing:?}");
        assert_eq!(g.action(), Some(e.action.as_str()), "{framing:?}");
        assert_eq!(g.index, Some(e.index), "{framing:?}");
        assert_eq!(g.occurred_at.map(|t| t.as_second()), Some(e.utc), "{framing:?}");
        assert_eq!(g.data_error, None, "{framing:?}");
    }
    let codes: std::collections::BTreeSet<&str> = got.iter().map(|e| e.code()).collect();
    assert_eq!(codes.len(), EventCode::ALL.len(), "{framing:?}: {codes:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::Unrecognised { .. })), "{framing:?}: {out:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn every_framing_variant_decodes() {
    let tasks: Vec<_> = Framing::ALL.iter().map(|f| tokio::spawn(framing_roundtrip(*f))).collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn heartbeats_arrive_at_the_requested_interval() {
    let server = DahuaServer::builder().auth(AuthMode::None).event_interval(None).bind("127.0.0.1:0").await.unwrap();
    let (mut s, head) = send(server.local_addr(), ATTACH, None).await;
    let (out, _) = decode_until(&mut s, &head, |o| heartbeats(o) >= 3).await;
    assert_eq!(heartbeats(&out), 3);
    assert!(Stats::get(&server.stats().heartbeats) >= 3);
    server.shutdown().await;
}

#[tokio::test]
async fn stall_sends_nothing_after_t() {
    let server = DahuaServer::builder()
        .auth(AuthMode::None)
        .event_interval(Some(Duration::from_millis(20)))
        .fault(Some(Fault::StallAfter(Duration::from_millis(200))))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let (mut s, _head) = send(server.local_addr(), ATTACH, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut buf = [0u8; 65536];
    // Drain what was sent before the stall.
    while let Ok(Ok(n)) = timeout(Duration::from_millis(50), s.read(&mut buf)).await {
        assert!(n > 0, "closed instead of stalling");
    }
    let bytes = Stats::get(&server.stats().bytes_sent);
    assert!(bytes > 0);
    // Longer than the heartbeat period: still nothing, and not closed.
    assert!(timeout(Duration::from_millis(1500), s.read(&mut buf)).await.is_err());
    assert_eq!(Stats::get(&server.stats().bytes_sent), bytes);
    assert_eq!(Stats::get(&server.stats().connections_open), 1);
    // The marks a client's reconnect timing is measured against: the head, and the last byte.
    let (started, stalled) = (server.stats().streams_started(), server.stats().streams_stalled());
    assert_eq!((started.len(), stalled.len()), (1, 1));
    assert_eq!(stalled[0].connection, started[0].connection);
    let quiet_after = stalled[0].at.duration_since(started[0].at);
    // (An event due at the stall instant itself may still go out.)
    assert!(quiet_after > Duration::ZERO && quiet_after <= Duration::from_millis(250), "{quiet_after:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn abrupt_close_mid_part() {
    let server = DahuaServer::builder()
        .auth(AuthMode::None)
        .event_interval(Some(Duration::from_millis(20)))
        .fault(Some(Fault::CloseMidPart { after_events: 2 }))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let (mut s, head) = send(server.local_addr(), ATTACH, None).await;
    let (out, eof) = decode_until(&mut s, &head, |_| false).await;
    assert!(eof);
    // The two complete parts, then the cut one, which the decoder flags as truncated.
    let got = events(&out);
    assert_eq!(got.iter().filter(|e| e.data_error.is_none()).count(), 2, "{out:?}");
    assert!(got[2..].iter().all(|e| e.data_error == Some(camgate_protocols::dahua::DataError::Truncated)), "{out:?}");
    assert_eq!(server.stats().events().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn close_right_after_the_head() {
    let server = DahuaServer::builder()
        .auth(AuthMode::None)
        .fault(Some(Fault::CloseAfterHead))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let (mut s, head) = send(server.local_addr(), ATTACH, None).await;
    assert_eq!(head.status, 200);
    assert!(head.rest.is_empty());
    let mut buf = [0u8; 64];
    let n = timeout(DEADLINE, s.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_streams_heartbeat() {
    const N: usize = 1000;
    // Both ends of every stream are in this process: make room for them.
    rlimit::increase_nofile_limit(8192).unwrap();
    let server = DahuaServer::builder().auth(AuthMode::None).event_interval(None).bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    let mut sockets = Vec::with_capacity(N);
    for _ in 0..N {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {ATTACH} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
        sockets.push(s);
    }
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 512];
                while !seen.windows(9).any(|w| w == b"Heartbeat") {
                    let n = s.read(&mut buf).await.unwrap();
                    assert!(n > 0);
                    seen.extend_from_slice(&buf[..n]);
                }
                s
            })
        })
        .collect();
    let mut open = Vec::with_capacity(N);
    for t in tasks {
        open.push(timeout(Duration::from_secs(30), t).await.expect("heartbeat in time").unwrap());
    }
    let stats = server.stats();
    assert_eq!(Stats::get(&stats.connections_open), N as u64);
    assert!(Stats::get(&stats.heartbeats) >= N as u64);
    drop(open);
    server.shutdown().await;
}

#[tokio::test]
async fn stamp_puts_the_send_time_in_every_event() {
    for stamp in [false, true] {
        let server = DahuaServer::builder()
            .auth(AuthMode::None)
            .stamp(stamp)
            .event_interval(Some(Duration::from_millis(10)))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let before = jiff::Timestamp::now().as_millisecond();
        let (mut s, head) = send(server.local_addr(), ATTACH, None).await;
        // Every code of the mix once, so that every body shape is checked.
        let (out, _) = decode_until(&mut s, &head, |o| events(o).len() >= EventCode::ALL.len()).await;
        let after = jiff::Timestamp::now().as_millisecond();
        for e in events(&out) {
            let data = e.data();
            assert_eq!(e.data_error, None, "{stamp}: {data:?}");
            let sent = &data["data"][SENT_MS_FIELD];
            if stamp {
                let ms = sent.as_i64().unwrap_or_else(|| panic!("{data:?}"));
                assert!((before..=after).contains(&ms), "{before} <= {ms} <= {after}");
            } else {
                assert!(sent.is_null(), "{data:?}");
            }
        }
        server.shutdown().await;
    }
}
