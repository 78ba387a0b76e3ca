//! The environment-variable mode of the original Dahua listener, with the real binary: no
//! `camgate.toml`, only `CAM_IP`, `CAM_USER`, `CAM_PASS`, ... in the environment or in
//! `./.env`, and the `log` sink prints one line per event the (simulated) camera sent.
//!
//! The `run` tests need the Dahua source (`src/sources/dahua/`) wired into the gateway; the
//! `check` tests need only the configuration.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use camgate_sim::dahua::{AuthMode, DahuaServer, EventCode, SentEvent, Stats};
use common::*;
use nix::sys::signal::Signal;

const USER: &str = "operator";
const PASSWORD: &str = "Sim-pw-4d2f";
/// The codes asked for; the simulated camera also has `SmartMotionHuman`, which must not show.
const CODES: &str = "VideoMotion,CrossLineDetection";

/// In this mode the HTTP API keeps its default address (127.0.0.1:8080): one daemon at a time.
static ONE_DAEMON_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn camera() -> DahuaServer {
    DahuaServer::builder()
        .credentials(USER, PASSWORD)
        .auth(AuthMode::digest())
        .channels(2)
        .events(&[EventCode::VideoMotion, EventCode::CrossLineDetection, EventCode::SmartMotionHuman])
        // Far enough apart that no two events with the same code, state and channel fall in
        // one second of device time: the source takes those for one event sent twice.
        .event_interval(Some(Duration::from_millis(400)))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

/// (code, state, channel): what a log line shows of an event.
type Key = (String, String, u32);

fn count(keys: impl IntoIterator<Item = Key>) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_default() += 1;
    }
    m
}

fn sent_keys(events: &[SentEvent]) -> BTreeMap<Key, usize> {
    count(events.iter().map(|e| (e.code.clone(), e.action.to_ascii_lowercase(), e.index + 1)))
}

/// The `EVENT <code> [<state>] source=<source> ch=<n> ...` lines of the `log` sink for `source`.
fn logged_keys(output: &str, source: &str) -> BTreeMap<Key, usize> {
    count(output.lines().filter_map(|line| {
        let rest = &line[line.find("EVENT ")? + "EVENT ".len()..];
        let mut words = rest.split_whitespace();
        let code = words.next()?.to_owned();
        let state = words.next()?.strip_prefix('[')?.strip_suffix(']')?.to_owned();
        let mut src = None;
        let mut ch = None;
        for w in words {
            if let Some(s) = w.strip_prefix("source=") {
                src = Some(s);
            } else if let Some(c) = w.strip_prefix("ch=") {
                ch = c.parse().ok();
            }
        }
        (src? == source).then_some((code, state, ch?))
    }))
}

fn covers(have: &BTreeMap<Key, usize>, want: &BTreeMap<Key, usize>) -> bool {
    want.iter().all(|(k, n)| have.get(k).copied().unwrap_or(0) >= *n)
}

/// Run until the log shows every event of a snapshot of at least ten sent events, stop the
/// daemon, and hold it to one line per sent event: nothing missing up to the snapshot,
/// nothing the camera did not send, nothing twice.
async fn expect_one_line_per_event(mut daemon: Daemon, stats: &Stats, source: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let snapshot = loop {
        let sent = stats.events();
        if sent.len() >= 10 && covers(&logged_keys(&daemon.output(), source), &sent_keys(&sent)) {
            break sent;
        }
        assert!(Instant::now() < deadline, "{} events sent, not all logged:\n{}", sent.len(), daemon.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    daemon.signal(Signal::SIGTERM);
    let (status, _) = daemon.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let out = daemon.output();
    let logged = logged_keys(&out, source);
    let sent = sent_keys(&stats.events());
    assert!(covers(&logged, &sent_keys(&snapshot)), "missing lines:\n{out}");
    assert!(covers(&sent, &logged), "lines for events the camera did not send, or twice:\n{logged:?}\n{sent:?}");
    assert!(logged.keys().all(|(code, _, _)| CODES.split(',').any(|c| c == code)), "CODES not applied: {logged:?}");
    assert!(!out.contains(PASSWORD), "the password reached the log:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_alone_configure_one_camera() {
    let _one = ONE_DAEMON_AT_A_TIME.lock().await;
    let cam = camera().await;
    let dir = temp();
    let addr = cam.local_addr().to_string();
    let daemon = Daemon::start_with(
        dir.path(),
        &["run"],
        &[
            ("CAM_IP", &addr),
            ("CAM_USER", USER),
            ("CAM_PASS", PASSWORD),
            ("CODES", CODES),
            ("HEARTBEAT", "2"),
            ("BACKOFF_BASE", "0.2"),
            ("BACKOFF_MAX", "2"),
            ("LOG_LEVEL", "INFO"),
        ],
    );
    let out = daemon.output();
    assert!(out.contains("configured from environment variables"), "{out}");
    assert_eq!(daemon.webhook.port(), 0, "no webhook listener in this mode: {out}");
    assert!(!dir.path().join("camgate.toml").exists());
    let stats = cam.stats();
    expect_one_line_per_event(daemon, &stats, "127.0.0.1").await;
    assert_eq!(Stats::get(&stats.auth_failed), 0);
    cam.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dotenv_file_configures_it_and_the_environment_wins() {
    let _one = ONE_DAEMON_AT_A_TIME.lock().await;
    let cam = camera().await;
    let dir = temp();
    // The file's password is wrong: only the environment's lets camgate in.
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "# the original listener's settings\nCAM_IP={}\nCAM_USER={USER}\nCAM_PASS=wrong-password\nCODES=[{CODES}]\nHEARTBEAT=2\nBACKOFF_BASE=0.2\nLOG_LEVEL=info\n",
            cam.local_addr()
        ),
    )
    .unwrap();
    let daemon = Daemon::start_with(dir.path(), &["run"], &[("CAM_PASS", PASSWORD)]);
    let out = daemon.output();
    assert!(out.contains("configured from environment variables"), "{out}");
    assert!(out.contains("with ./.env"), "{out}");
    assert!(out.contains("CAM_PASS is set both in the environment and in .env"), "{out}");
    assert!(!out.contains("wrong-password"), "{out}");
    let stats = cam.stats();
    expect_one_line_per_event(daemon, &stats, "127.0.0.1").await;
    assert_eq!(Stats::get(&stats.auth_failed), 0, "the .env password was used");
    cam.shutdown().await;
}

fn check_in(dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let (status, out, err) = run_cli(&["check"], dir, env);
    (status.code().unwrap(), out, err)
}

#[test]
fn check_prints_what_would_run_without_the_password() {
    let dir = temp();
    let (code, out, err) = check_in(
        dir.path(),
        &[("CAM_IP", "192.0.2.7:8081"), ("CAM_PASS", PASSWORD), ("CODES", "VideoMotion"), ("HEARTBEAT", "10")],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("config:   environment variables (camgate.toml not found): CAM_IP (environment)"), "{out}");
    assert!(
        out.contains("camera:   192.0.2.7 (dahua) at http://192.0.2.7:8081, user admin, password set; codes [VideoMotion], heartbeat 10s"),
        "{out}"
    );
    assert!(out.contains("webhook:  off"), "{out}");
    assert!(out.contains("sink:     log (log): one log line per event"), "{out}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{out}{err}");
}

#[test]
fn a_bad_value_in_dotenv_is_a_config_error_with_its_line() {
    let dir = temp();
    std::fs::write(dir.path().join(".env"), format!("CAM_IP=192.0.2.7\nCAM_PASS={PASSWORD}\nHEARTBEAT=abc\n")).unwrap();
    let (code, out, err) = check_in(dir.path(), &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(".env:3: HEARTBEAT: \"abc\" is not a whole number of seconds from 1 to 60"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    let (code, _, err) = check_in(dir.path(), &[("HEARTBEAT", "5"), ("USE_HTTPS", "sometimes")]);
    assert_eq!(code, 2);
    assert!(err.contains("environment: USE_HTTPS: \"sometimes\" is not a boolean"), "{err}");
}

#[test]
fn a_config_file_turns_the_mode_off() {
    let dir = temp();
    std::fs::write(dir.path().join("camgate.toml"), "[webhook]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let (code, out, err) = check_in(dir.path(), &[("CAM_IP", "192.0.2.7"), ("CAM_PASS", PASSWORD)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("config:   camgate.toml"), "{out}");
    assert!(!out.contains("dahua"), "{out}");
}
