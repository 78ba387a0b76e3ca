//! `camgate check` and `camgate run` on bad configuration: exit 2 and a message that names
//! the file, the line and the key.

mod common;

use common::*;

fn check(text: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = temp();
    let path = dir.path().join("camgate.toml");
    std::fs::write(&path, text).unwrap();
    let (status, out, err) = run_cli(&["check", "-c", path.to_str().unwrap()], dir.path(), env);
    (status.code().unwrap(), out, err)
}

#[test]
fn unknown_key() {
    let (code, _, err) = check("[webhook]\nlisten = \"127.0.0.1:5050\"\nmax_bodyy = \"1MB\"\n", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("camgate.toml:3") && err.contains("max_bodyy"), "{err}");
}

#[test]
fn bad_type() {
    let (code, _, err) = check("[log]\nkeep = \"many\"\n", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("camgate.toml:2") && err.contains("log.keep"), "{err}");
}

#[test]
fn bad_duration() {
    let (code, _, err) = check("[webhook]\nheader_timeout = \"ten seconds\"\n", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("camgate.toml:2") && err.contains("webhook.header_timeout"), "{err}");
    assert!(err.contains("ten seconds"), "{err}");
}

#[test]
fn missing_secret_env() {
    let (code, _, err) = check("[webhook]\n\ntoken_env = \"CAMGATE_TEST_NO_SUCH_VAR\"\n", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("camgate.toml:3") && err.contains("webhook.token_env"), "{err}");
    assert!(err.contains("CAMGATE_TEST_NO_SUCH_VAR"), "{err}");
    let (code, _, err) = check("[webhook]\ntoken = \"${CAMGATE_TEST_NO_SUCH_VAR}\"\n", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("webhook.token") && err.contains("not set"), "{err}");
}

#[test]
fn bad_log_level() {
    let (code, _, err) = check("[log]\nlevel = \"loud\"\n", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("camgate.toml:2") && err.contains("log.level"), "{err}");
}

#[test]
fn valid_file_prints_what_would_run_without_secrets() {
    let (code, out, err) = check(
        "[webhook]\nlisten = \"127.0.0.1:5051\"\ntoken_env = \"CAMGATE_TEST_TOKEN\"\n[[sink]]\ntype = \"jsonl\"\npath = \"-\"\n",
        &[("CAMGATE_TEST_TOKEN", "tok-9f8e7d6c-secret")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("127.0.0.1:5051"), "{out}");
    assert!(out.contains("JSON lines to standard output"), "{out}");
    assert!(out.contains("token required (from $CAMGATE_TEST_TOKEN)"), "{out}");
    assert!(!out.contains("tok-9f8e7d6c") && !err.contains("tok-9f8e7d6c"));
    assert!(out.contains("configuration OK"));
}

#[test]
fn run_with_a_missing_explicit_file_exits_2() {
    let dir = temp();
    let (status, _, err) = run_cli(&["run", "-c", "nope.toml"], dir.path(), &[]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn run_with_a_bad_file_exits_2_before_starting() {
    let dir = temp();
    std::fs::write(dir.path().join("camgate.toml"), "[store]\nbatch_max = 0\n").unwrap();
    let (status, _, err) = run_cli(&["run"], dir.path(), &[]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("store.batch_max"), "{err}");
}

#[test]
fn bad_usage_exits_2() {
    let dir = temp();
    let (status, _, _) = run_cli(&["frobnicate"], dir.path(), &[]);
    assert_eq!(status.code(), Some(2));
}
