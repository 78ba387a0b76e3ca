//! Loopback tests of the simulated WEP with a plain reqwest client written from the doc (the
//! emulator is the oracle here, so the client side is deliberately minimal and explicit).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

const USER: &str = "operator";
const PASSWORD: &str = "s3cret";
const NONCE: &str = "FO#12345678";
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn client() -> reqwest::Client {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn builder() -> AcsServerBuilder {
    AcsServer::builder().credentials(USER, PASSWORD).nonce_key(NONCE, KEY)
}

fn token_at(ts: i64) -> String {
    authorization_token(NONCE, KEY, ts, None)
}

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn post_login(c: &reqwest::Client, s: &AcsServer, body: Value) -> (u16, Value) {
    let r = c.post(format!("{}/login", s.base_url())).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn login_body(token: &str) -> Value {
    serde_json::json!({"username": USER, "password": PASSWORD, "clientName": "camgate-test", "authorizationToken": token})
}

async fn login(c: &reqwest::Client, s: &AcsServer) -> String {
    let (status, v) = post_login(c, s, login_body(&token_at(now_s()))).await;
    assert_eq!(status, 200, "{v}");
    v["result"]["session"].as_str().unwrap().to_owned()
}

/// GET `path?query` with the session in the header; (status, JSON or Null).
async fn get(c: &reqwest::Client, s: &AcsServer, session: &str, path_and_query: &str) -> (u16, Value) {
    let r = c.get(format!("{}{path_and_query}", s.base_url())).header("x-avg-session", session).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_envelope(v: &Value, status: u16) {
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["statusCode"], status, "{v}");
    assert!(v["message"].is_string(), "{v}");
    assert!(v["meta"]["code"].is_i64() && v["meta"]["name"].is_string(), "{v}");
}

fn iso(ms: i64) -> String {
    format_ms(ms)
}

/// TIME_RANGE then CONTINUE until no token, an empty page, or a short page; every page.
#[allow(clippy::too_many_arguments)]
async fn search_pages(
    c: &reqwest::Client,
    s: &AcsServer,
    session: &str,
    server_id: &str,
    from_ms: i64,
    to_ms: i64,
    extra: &str,
    limit: usize,
) -> Vec<Vec<Value>> {
    let mut q = format!(
        "/events/search?queryType=TIME_RANGE&serverId={}&from={}&to={}&limit={limit}{extra}",
        enc(server_id),
        enc(&iso(from_ms)),
        enc(&iso(to_ms))
    );
    let mut pages = Vec::new();
    for _ in 0..10_000 {
        let (status, v) = get(c, s, session, &q).await;
        assert_eq!(status, 200, "{v}");
        let events = v["result"]["events"].as_array().unwrap().clone();
        let n = events.len();
        pages.push(events);
        match v["result"]["token"].as_str() {
            Some(t) if !t.is_empty() && n > 0 && n == limit => {
                q = format!("/events/search?queryType=CONTINUE&token={}", enc(t));
            }
            _ => return pages,
        }
    }
    panic!("too many pages");
}

fn ts_ms(e: &Value) -> i64 {
    e["timestamp"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn key(e: &Value) -> (String, u64) {
    (e["originatingServerId"].as_str().unwrap().to_owned(), e["thisId"].as_str().unwrap().parse().unwrap())
}

#[tokio::test]
async fn login_token_verification() {
    let s = builder().token_skew(Duration::from_secs(300)).bind("127.0.0.1:0").await.unwrap();
    let c = client();
    let stats = s.stats();

    // Good: 3 parts, 4 parts, a timestamp inside the skew.
    for token in
        [token_at(now_s()), authorization_token(NONCE, KEY, now_s(), Some("integration-1")), token_at(now_s() - 250)]
    {
        let (status, v) = post_login(&c, &s, login_body(&token)).await;
        assert_eq!(status, 200, "{token}: {v}");
        assert_eq!(v["status"], "success");
        let session = v["result"]["session"].as_str().unwrap();
        assert!(session.len() >= 160 && session.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(v["result"]["externalUserId"].as_str().unwrap().len(), 22);
        assert_eq!(v["result"]["domainId"].as_str().unwrap().len(), 22);
    }
    assert_eq!(Stats::get(&stats.logins), 3);

    // Bad tokens: 403 with the envelope.
    let ts = now_s();
    let bad = [
        // Wrong key.
        authorization_token(NONCE, "not-the-key", ts, None),
        // Unknown nonce.
        authorization_token("FO#00000000", KEY, ts, None),
        // Whole token lowercased (breaks the nonce, §1.1).
        token_at(ts).to_lowercase(),
        // Uppercase digest.
        {
            let t = token_at(ts);
            let (head, digest) = t.rsplit_once(':').unwrap();
            format!("{head}:{}", digest.to_uppercase())
        },
        // Skewed both ways.
        token_at(ts - 301 - 5),
        token_at(ts + 301 + 5),
        // Malformed.
        format!("{NONCE}:{ts}"),
        "garbage".to_owned(),
    ];
    for token in &bad {
        let (status, v) = post_login(&c, &s, login_body(token)).await;
        assert_eq!(status, 403, "{token}: {v}");
        assert_envelope(&v, 403);
    }
    assert_eq!(Stats::get(&stats.sent_403), bad.len() as u64);

    // Wrong credentials with a good token: 401.
    let mut body = login_body(&token_at(now_s()));
    body["password"] = "wrong".into();
    let (status, v) = post_login(&c, &s, body).await;
    assert_eq!(status, 401);
    assert_envelope(&v, 401);

    // Missing fields, bad JSON, wrong content type.
    for missing in ["username", "password", "clientName", "authorizationToken"] {
        let mut body = login_body(&token_at(now_s()));
        body.as_object_mut().unwrap().remove(missing);
        let (status, v) = post_login(&c, &s, body).await;
        assert_eq!(status, 400, "{missing}");
        assert_envelope(&v, 400);
    }
    let r = c
        .post(format!("{}/login", s.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .post(format!("{}/login", s.base_url()))
        .body(login_body(&token_at(now_s())).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(Stats::get(&stats.logins), 3);

    // Clock skew fault: the server's clock runs 10 minutes ahead, a fresh token is refused,
    // and `Date` shows the server's clock.
    s.update_faults(|f| f.clock_offset_secs = 600);
    let r = c.post(format!("{}/login", s.base_url())).json(&login_body(&token_at(now_s()))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let date = r.headers()["date"].to_str().unwrap().to_owned();
    let server_clock = jiff::fmt::rfc2822::parse(&date).unwrap().timestamp().as_second();
    assert!((server_clock - now_s() - 600).abs() <= 2, "{date}");
    // A client that compensates (timestamp offset) gets in.
    let (status, _) = post_login(&c, &s, login_body(&token_at(now_s() + 600))).await;
    assert_eq!(status, 200);
    s.update_faults(|f| f.clock_offset_secs = 0);
    let (status, _) = post_login(&c, &s, login_body(&token_at(now_s()))).await;
    assert_eq!(status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn sessions_header_query_expiry_and_logout() {
    let s = builder().session_idle(Duration::from_millis(600)).bind("127.0.0.1:0").await.unwrap();
    let c = client();
    let stats = s.stats();
    let session = login(&c, &s).await;

    // Header, query, none, unknown.
    let (status, v) = get(&c, &s, &session, "/server/ids").await;
    assert_eq!(status, 200, "{v}");
    let r = c.get(format!("{}/server/ids?session={}", s.base_url(), enc(&session))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c.get(format!("{}/server/ids", s.base_url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_envelope(&r.json().await.unwrap(), 401);
    let (status, v) = get(&c, &s, "bogus", "/cameras").await;
    assert_eq!(status, 401);
    assert_envelope(&v, 401);

    // Activity keeps it alive; idleness ends it.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(get(&c, &s, &session, "/server/ids").await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, v) = get(&c, &s, &session, "/server/ids").await;
    assert_eq!(status, 401);
    assert_eq!(v["meta"]["name"], "SESSION_EXPIRED");
    assert_eq!(Stats::get(&stats.sessions_expired), 1);
    // Re-login works.
    let session = login(&c, &s).await;
    assert_eq!(get(&c, &s, &session, "/server/ids").await.0, 200);

    // Mid-run expiry: every session ended by the test, then by a lifetime fault.
    assert_eq!(s.expire_sessions(), 1);
    assert_eq!(get(&c, &s, &session, "/server/ids").await.0, 401);
    s.update_faults(|f| f.session_lifetime = Some(Duration::from_millis(300)));
    let session = login(&c, &s).await;
    assert_eq!(get(&c, &s, &session, "/server/ids").await.0, 200);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _ = get(&c, &s, &session, "/server/ids").await;
    }
    assert_eq!(get(&c, &s, &session, "/server/ids").await.0, 401);
    s.update_faults(|f| f.session_lifetime = None);

    // Logout with the body; the session is gone afterwards.
    let session = login(&c, &s).await;
    let r =
        c.post(format!("{}/logout", s.base_url())).json(&serde_json::json!({"session": session})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), serde_json::json!({"status": "success"}));
    assert_eq!(get(&c, &s, &session, "/server/ids").await.0, 401);
    assert_eq!(Stats::get(&stats.logouts), 1);
    s.shutdown().await;

    // A pre-7.12 server: header alone refused on GET, the query works.
    let s = builder().require_query_session(true).bind("127.0.0.1:0").await.unwrap();
    let session = login(&c, &s).await;
    let (status, v) = get(&c, &s, &session, "/server/ids").await;
    assert_eq!(status, 401, "{v}");
    let (status, v) = get(&c, &s, &session, &format!("/wep-capabilities?session={}", enc(&session))).await;
    assert_eq!(status, 200);
    assert!(!v["result"]["capabilities"].as_array().unwrap().iter().any(|c| c == "QUERY_SESSION_OPTIONAL"));
    let log = s.stats().requests_log();
    assert!(log.iter().all(|r| r.path.starts_with(API_PREFIX)));
    assert!(log.iter().filter(|r| r.method == "GET").all(|r| r.header_session));
    s.shutdown().await;
}

/// One server, one camera: a lone event, then a burst of 1000 STOPs on one millisecond, then
/// 5 more. With limit 1000 the page boundary falls inside the burst.
fn burst_scenario() -> Scenario {
    Scenario::builder()
        .start_offset_ms(-600_000)
        .server("c2VydmVyLW9uZS0wMDAwMQ", "ARCHER")
        .camera("cam-1", "Entrada", "c2VydmVyLW9uZS0wMDAwMQ")
        .zone_rule("cam-1", "AFORO ENTRADA NORTE", "Norte", OBJECT_COUNTING_ENTER, "NORTE")
        .occurrence(0, 1_000)
        .burst(0, 2_000, 1000)
        .occurrence(0, 3_000)
        .occurrence(0, 3_000)
        .occurrence(0, 4_000)
        .occurrence(0, 5_000)
        .occurrence(0, 6_000)
        .build()
        .unwrap()
}

#[tokio::test]
async fn continue_paging_returns_every_event_once_across_an_equal_timestamp_boundary() {
    let s = builder().scenario(burst_scenario()).bind("127.0.0.1:0").await.unwrap();
    let c = client();
    let session = login(&c, &s).await;
    let server = s.server_ids()[0].clone();
    let start = s.start().as_millisecond();
    assert_eq!(s.truth().largest_equal_timestamp_stops, 1000);

    let stop_topic = format!("&eventTopics={TOPIC_STOP}");
    let pages = search_pages(&c, &s, &session, &server, start, start + 10_000, &stop_topic, 1000).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![1000, 6]);
    let all: Vec<&Value> = pages.iter().flatten().collect();
    let ids: HashSet<(String, u64)> = all.iter().map(|e| key(e)).collect();
    assert_eq!(ids.len(), 1006, "every STOP exactly once");
    assert_eq!(all.len(), 1006);
    assert!(all.windows(2).all(|w| ts_ms(w[0]) <= ts_ms(w[1])), "ascending timestamps");
    assert!(all.iter().all(|e| e["type"] == TOPIC_STOP));
    // The boundary is inside the burst: the last event of page 1 and the first of page 2
    // share the millisecond.
    assert_eq!(ts_ms(pages[0].last().unwrap()), ts_ms(&pages[1][0]));

    // The legacy "+1 ms" pager loses the burst's tail (the fault bites).
    let (status, v) = get(
        &c,
        &s,
        &session,
        &format!(
            "/events/search?queryType=TIME_RANGE&serverId={}&from={}&to={}&limit=1000{stop_topic}",
            enc(&server),
            enc(&iso(ts_ms(pages[0].last().unwrap()) + 1)),
            enc(&iso(start + 10_000))
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["events"].as_array().unwrap().len(), 5);

    // Both topics: 2012 events, START before STOP per pair, linked ids.
    let pages = search_pages(&c, &s, &session, &server, start - 5_000, start + 10_000, "", 333).await;
    let all: Vec<&Value> = pages.iter().flatten().collect();
    assert_eq!(all.len(), 2012);
    assert_eq!(all.iter().map(|e| key(e)).collect::<HashSet<_>>().len(), 2012);
    let by_id: HashMap<u64, &Value> = all.iter().map(|e| (key(e).1, *e)).collect();
    for e in &all {
        if e["type"] == TOPIC_STOP {
            let start_ev = by_id[&e["linkedEventId"].as_str().unwrap().parse::<u64>().unwrap()];
            assert_eq!(start_ev["type"], TOPIC_START);
            assert_eq!(start_ev["linkedEventId"], "-1");
            assert!(key(start_ev).1 < key(e).1);
            assert_eq!(start_ev["classifiedObjects"], e["classifiedObjects"]);
        }
    }
    assert_eq!(Stats::get(&s.stats().events_served), 1006 + 5 + 2012);
    s.shutdown().await;
}

#[tokio::test]
async fn continuation_tokens_and_search_errors() {
    let s = builder().scenario(burst_scenario()).bind("127.0.0.1:0").await.unwrap();
    let c = client();
    let session = login(&c, &s).await;
    let server = s.server_ids()[0].clone();
    let start = s.start().as_millisecond();
    let range = format!("serverId={}&from={}&to={}", enc(&server), enc(&iso(start)), enc(&iso(start + 10_000)));

    let (status, v) = get(&c, &s, &session, &format!("/events/search?queryType=TIME_RANGE&{range}&limit=10")).await;
    assert_eq!(status, 200);
    let token = v["result"]["token"].as_str().unwrap().to_owned();
    assert!(token.contains('+') && token.contains('/') && token.ends_with('='), "{token}");
    // Reusable (a retry after a 5xx), URL-encoded only.
    for _ in 0..2 {
        let (status, v) =
            get(&c, &s, &session, &format!("/events/search?queryType=CONTINUE&token={}", enc(&token))).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["result"]["events"].as_array().unwrap().len(), 10);
    }
    let errors: Vec<(String, u16)> = vec![
        (format!("queryType=CONTINUE&token={token}"), 400),
        ("queryType=CONTINUE&token=AAAA".into(), 400),
        ("queryType=CONTINUE".into(), 400),
        (format!("queryType=CONTINUE&token={}&limit=10", enc(&token)), 400),
        (format!("queryType=CONTINUE&token={}&serverId={}", enc(&token), enc(&server)), 400),
        (format!("queryType=TIME_RANGE&serverId={}&from={}", enc(&server), enc(&iso(start))), 400),
        (format!("queryType=TIME_RANGE&from={}&to={}", enc(&iso(start)), enc(&iso(start + 1))), 400),
        (format!("queryType=TIME_RANGE&{range}&limit=0"), 400),
        (format!("queryType=TIME_RANGE&{range}&limit=ten"), 400),
        (format!("queryType=TIME_RANGE&serverId={}&from=yesterday&to=today", enc(&server)), 400),
        (
            format!(
                "queryType=TIME_RANGE&serverId={}&from={}&to={}",
                enc(&server),
                enc(&iso(start + 1)),
                enc(&iso(start))
            ),
            400,
        ),
        (format!("queryType=TIME_RANGE&serverId=nope&from={}&to={}", enc(&iso(start)), enc(&iso(start + 1))), 404),
        (range.clone(), 400),
        (format!("queryType=SOMETHING&{range}"), 400),
    ];
    for (q, expected) in errors {
        let (status, v) = get(&c, &s, &session, &format!("/events/search?{q}")).await;
        assert_eq!(status, expected, "{q}: {v}");
        assert_envelope(&v, expected);
    }

    // Lenient CONTINUE; token on the last page; expired tokens.
    s.shutdown().await;
    let s = builder()
        .scenario(burst_scenario())
        .strict_continue(false)
        .continuation_ttl(Duration::from_millis(300))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    s.update_faults(|f| f.token_on_last_page = true);
    let session = login(&c, &s).await;
    let start = s.start().as_millisecond();
    let range = format!("serverId={}&from={}&to={}", enc(&server), enc(&iso(start)), enc(&iso(start + 10_000)));
    let (_, v) =
        get(&c, &s, &session, &format!("/events/search?queryType=TIME_RANGE&{range}&eventTopics={TOPIC_STOP}")).await;
    assert_eq!(v["result"]["events"].as_array().unwrap().len(), 1000);
    let t1 = v["result"]["token"].as_str().unwrap().to_owned();
    let (_, v) =
        get(&c, &s, &session, &format!("/events/search?queryType=CONTINUE&token={}&limit=1000", enc(&t1))).await;
    assert_eq!(v["result"]["events"].as_array().unwrap().len(), 6);
    let t2 = v["result"]["token"].as_str().expect("token on the last page").to_owned();
    let (_, v) = get(&c, &s, &session, &format!("/events/search?queryType=CONTINUE&token={}", enc(&t2))).await;
    assert_eq!(v["result"]["events"].as_array().unwrap().len(), 0);
    assert!(v["result"]["token"].is_string(), "an empty page with a token: the client must stop");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = get(&c, &s, &session, &format!("/events/search?queryType=CONTINUE&token={}", enc(&t2))).await;
    assert_eq!(status, 400, "expired token");
    s.shutdown().await;
}

#[tokio::test]
async fn window_bounds_are_from_inclusive_to_exclusive_by_default() {
    let scenario = Scenario::builder()
        .start_offset_ms(-60_000)
        .server("srv", "S")
        .camera("cam", "C", "srv")
        .rule("cam", "PUERTA 1", "", OBJECT_PRESENT)
        .occurrence(0, 1_000)
        .occurrence(0, 2_000)
        .build()
        .unwrap();
    let c = client();
    for ((from_inc, to_inc), expected) in
        [((true, false), 1), ((true, true), 2), ((false, true), 1), ((false, false), 0)]
    {
        let s = builder().scenario(scenario.clone()).inclusivity(from_inc, to_inc).bind("127.0.0.1:0").await.unwrap();
        let session = login(&c, &s).await;
        let start = s.start().as_millisecond();
        let pages = search_pages(
            &c,
            &s,
            &session,
            "srv",
            start + 1_000,
            start + 2_000,
            &format!("&eventTopics={TOPIC_STOP}"),
            1000,
        )
        .await;
        assert_eq!(pages[0].len(), expected, "{from_inc} {to_inc}");
        s.shutdown().await;
    }
}

fn backfill_spec() -> CountingSpec {
    CountingSpec {
        entries: 2_000,
        exits: 1_700,
        zones: 3,
        cameras: 12,
        servers: 2,
        disconnected_cameras: 2,
        start_offset_ms: -3_600_000,
        span_ms: 600_000,
        seed: 42,
        noise: 150,
        ..CountingSpec::default()
    }
}

#[tokio::test]
async fn device_ids_filter_and_cameras() {
    let scenario = Scenario::counting(&backfill_spec()).unwrap();
    let s = builder().scenario(scenario).bind("127.0.0.1:0").await.unwrap();
    let c = client();
    let session = login(&c, &s).await;
    let truth = s.truth().clone();
    let start = s.start().as_millisecond();

    // Cameras: spread over both servers, verbosity honoured.
    let (status, v) = get(&c, &s, &session, "/cameras").await;
    assert_eq!(status, 200);
    let cams = v["result"]["cameras"].as_array().unwrap();
    assert_eq!(cams.len(), 14);
    assert!(cams.iter().all(|c| c["links"].is_array() && c["capabilities"].is_object()));
    let servers: HashSet<&str> = cams.iter().map(|c| c["serverId"].as_str().unwrap()).collect();
    assert_eq!(servers.len(), 2);
    assert_eq!(cams.iter().filter(|c| c["connectionState"] == "DISCONNECTED" && c["connected"] == false).count(), 2);
    for field in ["id", "name", "serverId", "connectionState", "connectionStatus", "available", "connected", "active"] {
        assert!(cams.iter().all(|c| !c[field].is_null()), "{field}");
    }
    let (_, v) = get(&c, &s, &session, "/cameras?verbosity=MEDIUM").await;
    assert!(
        v["result"]["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["links"].is_null() && c["capabilities"].is_object())
    );
    let (_, v) = get(&c, &s, &session, "/cameras?verbosity=LOW").await;
    assert!(
        v["result"]["cameras"].as_array().unwrap().iter().all(|c| c["links"].is_null() && c["capabilities"].is_null())
    );
    assert_eq!(get(&c, &s, &session, "/cameras?verbosity=LOUD").await.0, 400);
    let (_, v) = get(&c, &s, &session, "/server/ids").await;
    let ids: Vec<&str> = v["result"]["servers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, s.server_ids());

    // Two cameras of server 0 in one query (repeated deviceIds): exactly their STOPs.
    let server0 = s.server_ids()[0].clone();
    let picked: Vec<&str> = cams
        .iter()
        .filter(|c| c["serverId"] == server0.as_str() && c["connected"] == true)
        .take(2)
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let extra = format!("&eventTopics={TOPIC_STOP}&deviceIds={}&deviceIds={}", enc(picked[0]), enc(picked[1]));
    let pages = search_pages(&c, &s, &session, &server0, start - 10_000, start + 700_000, &extra, 500).await;
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for e in pages.iter().flatten() {
        *got.entry(e["cameraId"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let by_cam = truth.stops_by_camera();
    let want: BTreeMap<String, u64> = picked.iter().map(|id| (id.to_string(), by_cam[*id])).collect();
    assert_eq!(got, want);
    assert!(want.values().all(|&n| n > 0));
    // A camera of the other server, asked on server 0: nothing.
    let other = cams.iter().find(|c| c["serverId"] != server0.as_str()).unwrap()["id"].as_str().unwrap();
    let pages = search_pages(
        &c,
        &s,
        &session,
        &server0,
        start - 10_000,
        start + 700_000,
        &format!("&deviceIds={}", enc(other)),
        500,
    )
    .await;
    assert_eq!(pages[0].len(), 0);
    // Only START events with the START topic; ALL = everything.
    let pages = search_pages(
        &c,
        &s,
        &session,
        &server0,
        start - 10_000,
        start + 700_000,
        &format!("&eventTopics={TOPIC_START}&deviceIds={}", enc(picked[0])),
        1000,
    )
    .await;
    assert!(pages.iter().flatten().all(|e| e["type"] == TOPIC_START));
    assert_eq!(pages.iter().flatten().count() as u64, by_cam[picked[0]]);
    s.shutdown().await;
}

#[test]
fn counting_truth_is_consistent_and_fast() {
    let t0 = Instant::now();
    let spec = CountingSpec {
        entries: 10_000,
        exits: 9_400,
        zones: 3,
        cameras: 40,
        servers: 2,
        seed: 7,
        late_fraction: 0.05,
        duplicate_fraction: 0.02,
        equal_timestamp_burst: 1001,
        noise: 500,
        ..CountingSpec::default()
    };
    let scenario = Scenario::counting(&spec).unwrap();
    let truth = scenario.truth();
    let store = store::Store::build(&scenario, 1_800_000_000_000);
    assert!(t0.elapsed() < Duration::from_secs(5), "generation took {:?}", t0.elapsed());
    assert_eq!(Scenario::counting(&spec).unwrap(), scenario, "deterministic");

    assert_eq!(truth.zones.len(), 3);
    assert_eq!(truth.zones.iter().map(|z| z.entries).sum::<u64>(), 10_000);
    assert_eq!(truth.zones.iter().map(|z| z.exits).sum::<u64>(), 9_400);
    assert_eq!(truth.stops, 10_000 + 9_400 + 500);
    assert_eq!(truth.largest_equal_timestamp_stops, 1001);
    assert!(truth.late_stops > 0 && truth.duplicate_copies > 0);
    for z in &truth.zones {
        assert!(z.net() >= 0);
        assert_eq!(z.entry_names, vec![format!("AFORO ENTRADA {}", z.zone)]);
        assert_eq!(z.exit_names, vec![format!("AFORO SALIDA {}", z.zone)]);
        assert_eq!(z.areas, vec![z.zone.clone()]);
    }
    // Names are messy, yet normalise to the canonical ones.
    let raw: HashSet<&str> = scenario.rules.iter().map(|r| r.name.as_str()).collect();
    assert!(raw.len() > 10, "many spellings");
    assert!(scenario.rules.iter().any(|r| r.name != r.name.trim() || r.name.contains("  ")));
    assert!(scenario.rules.iter().any(|r| r.name.chars().any(|c| c.is_lowercase())));
    // Zones span both servers; every counting camera has both rules.
    let truth_servers: HashSet<(&str, &str)> =
        truth.rules.iter().filter_map(|r| r.zone.as_deref().map(|z| (z, r.server_id.as_str()))).collect();
    assert_eq!(truth_servers.len(), 6);

    // Recount from the materialised events: unique STOPs by (server, thisId), per zone, and
    // check the running count in timestamp order never goes below 0.
    let zone_of: HashMap<String, (String, i64)> = truth
        .zones
        .iter()
        .flat_map(|z| {
            z.entry_names
                .iter()
                .map(|n| (n.clone(), (z.zone.clone(), 1)))
                .chain(z.exit_names.iter().map(|n| (n.clone(), (z.zone.clone(), -1))))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut seen = HashSet::new();
    let mut stops: Vec<(i64, String, i64)> = Vec::new();
    let mut total = 0;
    for (si, srv) in store.servers.iter().enumerate() {
        let mut last_id_by_visibility: Vec<(i64, u64)> = Vec::new();
        for e in &srv.events {
            total += 1;
            let v: Value = serde_json::from_str(&e.json).unwrap();
            assert_eq!(v["thisId"].as_str().unwrap().parse::<u64>().unwrap(), e.this_id);
            assert_eq!(v["originatingEventId"], v["thisId"]);
            if !e.duplicate {
                last_id_by_visibility.push((e.visible_ms, e.this_id));
            }
            if e.stop && seen.insert((si, e.this_id)) {
                let name = normalize_name(v["analyticEventName"].as_str().unwrap());
                if let Some((zone, sign)) = zone_of.get(&name) {
                    stops.push((ts_ms(&v), zone.clone(), *sign));
                }
            }
        }
        // thisId increases with visibility.
        last_id_by_visibility.sort();
        assert!(last_id_by_visibility.windows(2).all(|w| w[0].1 < w[1].1));
    }
    assert_eq!(total as u64, 2 * truth.stops + truth.duplicate_copies);
    stops.sort_by_key(|s| s.0);
    let mut running: BTreeMap<String, i64> = BTreeMap::new();
    for (_, zone, sign) in &stops {
        let n = running.entry(zone.clone()).or_default();
        *n += sign;
        assert!(*n >= 0);
    }
    for z in &truth.zones {
        assert_eq!(running[&z.zone], z.net());
    }
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
}

#[tokio::test]
async fn full_backfill_over_http_matches_truth_with_duplicates_and_faults() {
    let spec = CountingSpec {
        entries: 10_000,
        exits: 9_400,
        zones: 3,
        cameras: 40,
        servers: 2,
        start_offset_ms: -3_600_000,
        span_ms: 1_200_000,
        seed: 9,
        late_fraction: 0.05,
        duplicate_fraction: 0.02,
        equal_timestamp_burst: 1001,
        noise: 300,
        ..CountingSpec::default()
    };
    let scenario = Scenario::counting(&spec).unwrap();
    let s = builder().scenario(scenario).seed(3).bind("127.0.0.1:0").await.unwrap();
    s.update_faults(|f| f.repeat_last_on_continue = true);
    let c = client();
    let session = login(&c, &s).await;
    let truth = s.truth().clone();
    let start = s.start().as_millisecond();
    let t0 = Instant::now();
    let mut seen = HashSet::new();
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut served = 0u64;
    let names: HashMap<&str, &ZoneTruth> = truth
        .zones
        .iter()
        .flat_map(|z| z.entry_names.iter().chain(&z.exit_names).map(move |n| (n.as_str(), z)))
        .collect();
    for server in s.server_ids() {
        // Back-to-back 5-minute windows, as a poller would do.
        let mut from = start - 60_000;
        while from < start + 1_400_000 {
            let to = from + 300_000;
            let pages =
                search_pages(&c, &s, &session, &server, from, to, &format!("&eventTopics={TOPIC_STOP}"), 1000).await;
            for e in pages.iter().flatten() {
                served += 1;
                if !seen.insert(key(e)) {
                    continue;
                }
                let name = normalize_name(e["analyticEventName"].as_str().unwrap());
                if let Some(z) = names.get(name.as_str()) {
                    let entry = counts.entry(z.zone.clone()).or_default();
                    match e["activity"].as_str().unwrap() {
                        OBJECT_COUNTING_ENTER => entry.0 += 1,
                        OBJECT_COUNTING_EXIT => entry.1 += 1,
                        other => panic!("{other}"),
                    }
                }
            }
            from = to;
        }
    }
    let want: BTreeMap<String, (u64, u64)> =
        truth.zones.iter().map(|z| (z.zone.clone(), (z.entries, z.exits))).collect();
    assert_eq!(counts, want);
    assert_eq!(seen.len() as u64, truth.stops);
    let stats = s.stats();
    assert!(served > truth.stops, "duplicates were served");
    assert_eq!(Stats::get(&stats.events_served), served);
    assert!(Stats::get(&stats.duplicates_served) > 0);
    assert!(t0.elapsed() < Duration::from_secs(20), "took {:?}", t0.elapsed());
    s.shutdown().await;
}

#[tokio::test]
async fn late_events_appear_inside_an_already_polled_window_and_duplicates_in_a_later_one() {
    let scenario = Scenario::builder()
        .start_offset_ms(-2_000)
        .duplicate_shift_ms(10_000)
        .server("srv", "S")
        .camera("cam", "C", "srv")
        .zone_rule("cam", "aforo salida  NORTE ", "norte", OBJECT_COUNTING_EXIT, "NORTE")
        .occurrence(0, 500)
        .late(0, 1_000, 1_800)
        .duplicated(0, 1_200)
        .build()
        .unwrap();
    let s = builder().scenario(scenario).bind("127.0.0.1:0").await.unwrap();
    let c = client();
    let session = login(&c, &s).await;
    let start = s.start().as_millisecond();
    let topic = format!("&eventTopics={TOPIC_STOP}");
    let pages = search_pages(&c, &s, &session, "srv", start, start + 2_000, &topic, 1000).await;
    assert_eq!(pages[0].len(), 2, "the late one is not there yet");
    let deadline = s.all_visible_at().unwrap();
    assert_eq!(deadline.as_millisecond(), start + 1_200 + 10_000);
    let wait = start + 1_000 + 1_800 - jiff::Timestamp::now().as_millisecond() + 100;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let pages = search_pages(&c, &s, &session, "srv", start, start + 2_000, &topic, 1000).await;
    assert_eq!(pages[0].len(), 3, "the late one landed in the old window");
    let late = pages[0].iter().find(|e| ts_ms(e) == start + 1_000).unwrap();
    let others_max = pages[0].iter().filter(|e| ts_ms(e) != start + 1_000).map(|e| key(e).1).max().unwrap();
    assert!(key(late).1 > others_max, "thisId follows arrival, not timestamp");
    // The duplicate is listed 10 s later; it exists only then.
    let later = search_pages(&c, &s, &session, "srv", start + 2_000, start + 20_000, &topic, 1000).await;
    assert_eq!(later[0].len(), 0);
    s.shutdown().await;
}

#[tokio::test]
async fn injected_errors_latency_health_and_active() {
    let scenario = Scenario::builder()
        .start_offset_ms(-1_000)
        .server("srv", "S")
        .camera("cam", "C", "srv")
        .rule("cam", "Presencia", "", OBJECT_PRESENT)
        .occurrence_spec(Occurrence {
            rule: 0,
            at_ms: 600_000,
            dwell_ms: 600_500,
            delay_ms: 0,
            count: 1,
            duplicate: false,
        })
        .occurrence(0, -100)
        .build()
        .unwrap();
    let s = builder().scenario(scenario).seed(11).bind("127.0.0.1:0").await.unwrap();
    let c = client();
    let stats = s.stats();
    let session = login(&c, &s).await;

    s.fail_next(3, 503);
    for _ in 0..3 {
        let (status, v) = get(&c, &s, &session, "/server/ids").await;
        assert_eq!(status, 503);
        assert_envelope(&v, 503);
    }
    assert_eq!(get(&c, &s, &session, "/server/ids").await.0, 200);

    s.update_faults(|f| f.error_rate = 0.3);
    let mut codes: BTreeMap<u16, u32> = BTreeMap::new();
    for _ in 0..200 {
        *codes.entry(get(&c, &s, &session, "/server/ids").await.0).or_default() += 1;
    }
    let failed: u32 = codes.iter().filter(|(k, _)| **k >= 500).map(|(_, v)| *v).sum();
    assert!((30..=90).contains(&failed), "{codes:?}");
    assert!(codes.contains_key(&500) && codes.contains_key(&503) && codes.contains_key(&504), "{codes:?}");
    assert_eq!(Stats::get(&stats.faults_injected), 3 + u64::from(failed));
    // Health is never failed by error_rate, but can be switched.
    s.update_faults(|f| f.error_rate = 1.0);
    let r = c.get(format!("{}/health", s.base_url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "GOOD");
    s.update_faults(|f| {
        f.error_rate = 0.0;
        f.health = Health::Bad;
        f.latency = Duration::from_millis(120);
    });
    let t0 = Instant::now();
    let r = c.get(format!("{}/health", s.base_url())).send().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(120));
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(r.text().await.unwrap(), "BAD");
    s.update_faults(|f| f.latency = Duration::ZERO);

    // ACTIVE: the detection whose STOP is 10 minutes away is active, the finished one is not.
    let (status, v) = get(&c, &s, &session, "/events/search?queryType=ACTIVE&serverId=srv").await;
    assert_eq!(status, 200, "{v}");
    let active = v["result"]["events"].as_array().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["type"], TOPIC_START);
    // Unknown route: the 404 envelope.
    let (status, v) = get(&c, &s, &session, "/nothing/here").await;
    assert_eq!(status, 404);
    assert_eq!(v["meta"]["code"], -25);
    s.shutdown().await;
}

#[tokio::test]
async fn https_with_a_pinned_self_signed_certificate() {
    let s = builder().tls(true).bind("127.0.0.1:0").await.unwrap();
    assert!(s.base_url().starts_with("https://127.0.0.1:"));
    let pem = s.cert_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!s.cert_der().unwrap().is_empty());
    let _ = client();
    let pinned = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let (status, v) = post_login(&pinned, &s, login_body(&token_at(now_s()))).await;
    assert_eq!(status, 200, "{v}");
    let session = v["result"]["session"].as_str().unwrap();
    assert_eq!(get(&pinned, &s, session, "/server/ids").await.0, 200);
    // Not pinned, default roots: the handshake fails.
    let unpinned = reqwest::Client::builder().tls_backend_rustls().tls_certs_only([]).build().unwrap();
    assert!(unpinned.get(format!("{}/health", s.base_url())).send().await.is_err());
    s.shutdown().await;
}

#[test]
fn scenario_json_round_trip_and_errors() {
    let s = burst_scenario();
    assert_eq!(Scenario::from_json(&s.to_json()).unwrap(), s);
    let text = r#"{"start_offset_ms": -60000,
        "servers": [{"id": "srv", "name": "ARCHER"}],
        "cameras": [{"id": "cam-1", "name": "Puerta", "server_id": "srv"}],
        "rules": [{"camera_id": "cam-1", "name": " aforo  Entrada NORTE", "area": "Norte",
                   "activity": "OBJECT_COUNTING_ENTER", "zone": "NORTE"}],
        "timeline": [{"rule": 0, "at_ms": 1000}, {"rule": 0, "at_ms": 5000, "count": 3, "delay_ms": 200, "duplicate": true}]}"#;
    let s = Scenario::from_json(text).unwrap();
    let t = s.truth();
    assert_eq!(t.zone("NORTE").unwrap().entries, 4);
    assert_eq!(t.zone("NORTE").unwrap().entry_names, vec!["AFORO ENTRADA NORTE".to_owned()]);
    assert_eq!(t.duplicate_copies, 3);
    assert_eq!(t.stops_by_name()["AFORO ENTRADA NORTE"], 4);
    let c =
        Scenario::from_json(r#"{"counting": {"entries": 50, "exits": 20, "zones": 2, "cameras": 3, "servers": 1}}"#)
            .unwrap();
    assert_eq!(c.truth().stops, 70);
    for bad in [
        r#"{"servers": []}"#,
        r#"{"servers": [{"id": "a", "name": "A"}], "cameras": [{"id": "c", "name": "C", "server_id": "b"}]}"#,
        r#"{"servers": [{"id": "a", "name": "A"}], "timeline": [{"rule": 0, "at_ms": 0}]}"#,
        r#"{"servers": [{"id": "a", "name": "A"}], "typo": 1}"#,
        r#"{"counting": {"entries": 1, "exits": 2}}"#,
        r#"{"counting": {"zones": 3, "cameras": 2}}"#,
        "not json",
    ] {
        assert!(Scenario::from_json(bad).is_err(), "{bad}");
    }
}
