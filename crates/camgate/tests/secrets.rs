//! No secret reaches a log line, the console or an error message.

mod common;

use common::*;
use serde_json::json;

const TOKEN: &str = "s3cr3t-ingest-token-5b1e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_token_never_reaches_the_logs() {
    let dir = temp();
    // Trace level: the chattiest the daemon gets.
    let cfg = config(dir.path(), "token = \"${CAMGATE_TEST_INGEST_TOKEN}\"\n")
        .replace("level = \"info\"", "level = \"trace\"");
    let daemon = Daemon::start(dir.path(), &cfg, &[("CAMGATE_TEST_INGEST_TOKEN", TOKEN)]);
    let http = client();
    let body = json!({"source": "door", "kind": "access"});
    let ok = http.post(daemon.ingest_url()).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = http.post(daemon.ingest_url()).bearer_auth(format!("{TOKEN}x")).json(&body).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong_text = wrong.text().await.unwrap();
    assert!(!wrong_text.contains(TOKEN));
    let missing = http.post(daemon.ingest_url()).json(&body).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let alt = http.post(daemon.ingest_url()).header("x-camgate-token", TOKEN).json(&body).send().await.unwrap();
    assert_eq!(alt.status(), 200);
    for path in ["/api/sources", "/metrics", "/api/events", "/api/sinks", "/healthz"] {
        let text = http.get(daemon.api(path)).send().await.unwrap().text().await.unwrap();
        assert!(!text.contains(TOKEN), "{path} shows the token");
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let mut daemon = daemon;
    daemon.wait(std::time::Duration::from_secs(10));
    let console = daemon.output();
    assert!(console.contains("TRACE") || console.contains("DEBUG"), "trace logging is on");
    assert!(console.contains("missing or wrong token"), "{console}");
    assert!(!console.contains(TOKEN), "the console shows the token");
    let mut logs = String::new();
    for e in std::fs::read_dir(dir.path().join("logs")).unwrap() {
        logs.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    assert!(logs.contains("missing or wrong token"));
    assert!(!logs.contains(TOKEN), "the log file shows the token");
}
