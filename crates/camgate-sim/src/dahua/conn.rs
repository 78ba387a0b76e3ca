//! Accept loop and one task per connection: hand-written HTTP request parsing, auth,
//! then the event stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use tokio_util::sync::CancellationToken;

use super::auth::{Auth, Refused, Verdict};
use super::frame::event_body;
use super::{DahuaServerBuilder, EventCode, Fault, SentEvent, Stats, StreamMark};

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// State shared by every connection of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    cfg: DahuaServerBuilder,
    auth: Auth,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    next_conn: AtomicU64,
    event_seq: AtomicU64,
}

impl Shared {
    pub(crate) fn new(cfg: DahuaServerBuilder, stats: Arc<Stats>, cancel: CancellationToken) -> Self {
        Shared { auth: Auth::new(&cfg), cfg, stats, cancel, next_conn: AtomicU64::new(0), event_seq: AtomicU64::new(0) }
    }
}

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((socket, _)) = accepted else {
            // EMFILE and the like: back off a little instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        Stats::add(&shared.stats.connections_accepted, 1);
        let open = shared.stats.connections_open.fetch_add(1, Ordering::Relaxed) + 1;
        let shared = shared.clone();
        tokio::spawn(async move {
            let over = open > shared.cfg.max_connections as u64;
            let _ = tokio::select! {
                _ = shared.cancel.cancelled() => Ok(()),
                r = serve(socket, id, over, &shared) => r,
            };
            shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// A parsed request head.
struct Request {
    method: String,
    target: String,
    authorization: Option<String>,
}

async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let end = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if let Some(p) = buf.windows(2).position(|w| w == b"\n\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let authorization = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("authorization").then(|| value.trim().to_string())
    });
    Ok(Some(Request { method, target, authorization }))
}

async fn respond(socket: &mut TcpStream, stats: &Stats, status: &str, extra: &str, body: &str) -> std::io::Result<()> {
    let msg = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    Stats::add(&stats.bytes_sent, msg.len() as u64);
    socket.write_all(msg.as_bytes()).await?;
    socket.shutdown().await
}

/// Query parameter `name` (raw, not percent-decoded).
fn query<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let (_, q) = target.split_once('?')?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

/// `codes` value → `None` for `[All]`, else the names; brackets literal or percent-encoded.
fn parse_codes(raw: &str) -> Option<Vec<String>> {
    let raw = raw.replace("%5B", "[").replace("%5b", "[").replace("%5D", "]").replace("%5d", "]").replace("%2C", ",");
    let inner = raw.trim_start_matches('[').trim_end_matches(']');
    let codes: Vec<String> = inner.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect();
    if codes.iter().any(|c| c.eq_ignore_ascii_case("All")) { None } else { Some(codes) }
}

async fn serve(mut socket: TcpStream, id: u64, over_limit: bool, shared: &Shared) -> std::io::Result<()> {
    let stats = &*shared.stats;
    let Some(req) = read_request(&mut socket).await? else { return Ok(()) };
    if over_limit {
        Stats::add(&stats.connections_refused, 1);
        return respond(&mut socket, stats, "401 Unauthorized", "", "Exceeded maximum number of connections\r\n").await;
    }
    match shared.auth.check(&req.method, &req.target, req.authorization.as_deref()) {
        Verdict::Ok => Stats::add(&stats.auth_ok, 1),
        Verdict::Challenge { header, kind } => {
            let counter = match kind {
                Refused::Bare => &stats.challenges,
                Refused::Failed => &stats.auth_failed,
                Refused::Stale => &stats.auth_stale,
                Refused::Locked => &stats.auth_locked,
            };
            Stats::add(counter, 1);
            let extra = format!("WWW-Authenticate: {header}\r\n");
            return respond(&mut socket, stats, "401 Unauthorized", &extra, "Error\r\nUnauthorized!\r\n").await;
        }
    }
    let path = req.target.split('?').next().unwrap_or("");
    if req.method != "GET" || path != "/cgi-bin/eventManager.cgi" {
        return respond(&mut socket, stats, "404 Not Found", "", "Error\r\nNot Found!\r\n").await;
    }
    let codes = query(&req.target, "codes").map(parse_codes);
    let bad = query(&req.target, "action") != Some("attach")
        || match &codes {
            None => true,
            Some(Some(list)) => list.len() > shared.cfg.max_codes || list.is_empty(),
            Some(None) => false,
        };
    if bad {
        Stats::add(&stats.bad_requests, 1);
        return respond(&mut socket, stats, "400 Bad Request", "", "Error\r\nBad Request!\r\n").await;
    }
    let mix: Vec<EventCode> = match codes.flatten() {
        None => shared.cfg.events.clone(),
        Some(list) => shared
            .cfg
            .events
            .iter()
            .copied()
            .filter(|e| list.iter().any(|c| c.eq_ignore_ascii_case(e.code())))
            .collect(),
    };
    let heartbeat = query(&req.target, "heartbeat").and_then(|h| h.parse::<u64>().ok()).filter(|h| *h > 0);
    stream(socket, id, mix, heartbeat.map(Duration::from_secs), shared).await
}

async fn stream(
    mut socket: TcpStream,
    id: u64,
    mix: Vec<EventCode>,
    heartbeat: Option<Duration>,
    shared: &Shared,
) -> std::io::Result<()> {
    let cfg = &shared.cfg;
    let stats = &*shared.stats;
    let framing = cfg.framings[(id % cfg.framings.len() as u64) as usize];
    let head = framing.head();
    socket.write_all(head.as_bytes()).await?;
    Stats::add(&stats.bytes_sent, head.len() as u64);
    Stats::add(&stats.streams, 1);
    let mut last_write = std::time::Instant::now();
    stats.stream_started(StreamMark { connection: id, at: last_write });
    if cfg.fault == Some(Fault::CloseAfterHead) {
        return socket.shutdown().await;
    }
    let start = Instant::now();
    let far = start + Duration::from_secs(86_400 * 365);
    let stall_at = match cfg.fault {
        Some(Fault::StallAfter(t)) => start + t,
        _ => far,
    };
    let mut hb = heartbeat.map(|p| {
        let mut i = interval_at(start + p, p);
        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        i
    });
    let mut ev = cfg.event_interval.filter(|_| !mix.is_empty()).map(|p| {
        let mut i = interval_at(start + p, p);
        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        i
    });
    // Start/Stop state per (code position, channel).
    let mut active = vec![false; mix.len() * cfg.channels as usize];
    let mut sent_events: u32 = 0;
    let mut part_no: u64 = 0;
    let mut turn: usize = 0;
    let mut out = Vec::with_capacity(256);
    let mut sink = [0u8; 64];
    let mut stalled = false;
    loop {
        enum Tick {
            Heartbeat,
            Event,
            Stall,
            Read(usize),
        }
        let tick = tokio::select! {
            _ = async { hb.as_mut().unwrap().tick().await }, if hb.is_some() && !stalled => Tick::Heartbeat,
            _ = async { ev.as_mut().unwrap().tick().await }, if ev.is_some() && !stalled => Tick::Event,
            _ = sleep_until(stall_at), if !stalled && stall_at < far => Tick::Stall,
            r = socket.read(&mut sink) => Tick::Read(r?),
        };
        out.clear();
        match tick {
            Tick::Read(0) => return Ok(()),
            Tick::Read(_) => continue,
            Tick::Stall => {
                stalled = true;
                stats.stream_stalled(StreamMark { connection: id, at: last_write });
                continue;
            }
            Tick::Heartbeat => {
                framing.part(&mut out, "Heartbeat", true, part_no);
                part_no += 1;
                socket.write_all(&out).await?;
                last_write = std::time::Instant::now();
                Stats::add(&stats.bytes_sent, out.len() as u64);
                Stats::add(&stats.heartbeats, 1);
            }
            Tick::Event => {
                let pos = turn % mix.len();
                let channel = (turn / mix.len()) as u32 % cfg.channels;
                turn += 1;
                let code = mix[pos];
                let index = if code == EventCode::AlarmLocal { channel + 1 } else { channel };
                let action = if code.paired() {
                    let slot = &mut active[pos * cfg.channels as usize + channel as usize];
                    *slot = !*slot;
                    if *slot { "Start" } else { "Stop" }
                } else {
                    "Pulse"
                };
                let now = jiff::Timestamp::now();
                let utc = now.as_second();
                let seq = shared.event_seq.fetch_add(1, Ordering::Relaxed);
                let body = event_body(code, action, index, utc, seq, cfg.stamp.then(|| now.as_millisecond()));
                framing.part(&mut out, &body, false, part_no);
                part_no += 1;
                if let Some(Fault::CloseMidPart { after_events }) = cfg.fault
                    && sent_events >= after_events
                {
                    let half = out.len() / 2;
                    socket.write_all(&out[..half]).await?;
                    Stats::add(&stats.bytes_sent, half as u64);
                    // Abrupt: no FIN handshake wait, the socket is dropped.
                    let _ = socket.set_zero_linger();
                    return Ok(());
                }
                socket.write_all(&out).await?;
                last_write = std::time::Instant::now();
                Stats::add(&stats.bytes_sent, out.len() as u64);
                sent_events += 1;
                stats.record(SentEvent {
                    connection: id,
                    code: code.code().to_string(),
                    action: action.into(),
                    index,
                    utc,
                });
            }
        }
        if out.capacity() > 4096 {
            out = Vec::with_capacity(256);
        }
    }
}
