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

/// `camgate check` shows each Avigilon site's history filter and the schedule: the windows
/// of today and the next six days (local times, past midnight noted), the sources that poll
/// only inside windows, and a count of the rest (a legacy file may hold years of dates).
#[test]
fn check_prints_the_history_filters_and_the_schedule() {
    let dir = temp();
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let day = |n: i64| today.checked_add(jiff::Span::new().days(n)).unwrap();
    // One window a day from 10 days ago to 30 days ahead, 18:00 to 02:00 the next day.
    let entries: Vec<String> = (-10..=30)
        .map(|n| {
            format!(
                "  \"{}\": {{\"nombre\": \"Evento {n}\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"02:00\"}}",
                day(n)
            )
        })
        .collect();
    std::fs::write(dir.path().join("eventos_programados.json"), format!("{{\n{}\n}}\n", entries.join(",\n"))).unwrap();
    let text = "[site]\ntimezone = \"UTC\"\n\n[schedule]\nfile = \"eventos_programados.json\"\n\n\
        [[avigilon]]\nname = \"estadio\"\nurl = \"https://192.0.2.60\"\nusername = \"camgate\"\n\
        password_env = \"CAMGATE_TEST_ACC_PASSWORD\"\nuser_nonce = \"n\"\nuser_key = \"k\"\ncameras = [\"c1\"]\n\
        active = \"schedule\"\nhistory = [\n  { name = { contains = \"PUERTA\" } },\n  { name = { equals = \"INGRESO PERSONAS ENTRADA MARATON\" } },\n]\n\n\
        [[zone]]\nname = \"Norte\"\nreset = \"schedule\"\nenter = [{ name = { contains = \"AFORO ENTRADA PARQUEADERO NORTE\" } }]\n";
    std::fs::write(dir.path().join("camgate.toml"), text).unwrap();
    let (status, out, err) =
        run_cli(&["check", "-c", "camgate.toml"], dir.path(), &[("CAMGATE_TEST_ACC_PASSWORD", "acc-pw-5e1f")]);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!out.contains("acc-pw-5e1f"), "{out}");
    assert!(
        out.contains(
            "history:  estadio: events matching (name contains \"PUERTA\") or (name equals \"INGRESO PERSONAS ENTRADA \
             MARATON\"); the others are only counted by the zones\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "schedule: 41 windows (41 from eventos_programados.json), local times in UTC; polled only inside a window: estadio\n"
        ),
        "{out}"
    );
    let windows: Vec<&str> = out.lines().filter(|l| l.starts_with("window:   Evento")).collect();
    // Yesterday's (it ends at 02:00 today), today's and the next six days'.
    assert_eq!(windows.len(), 8, "{out}");
    assert!(windows[0].starts_with("window:   Evento -1: "), "{out}");
    let weekday = |d: jiff::civil::Date| d.to_zoned(jiff::tz::TimeZone::UTC).unwrap().strftime("%a").to_string();
    assert!(
        windows[1].starts_with(&format!("window:   Evento 0: {} {} 18:00 - 02:00 next day", weekday(today), today)),
        "{out}"
    );
    assert!(
        windows[7].starts_with(&format!("window:   Evento 6: {} {} 18:00 - 02:00 next day", weekday(day(6)), day(6))),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "window:   ... 24 from {} on (the next: \"Evento 7\" on {}); 9 ended before today\n",
            day(7),
            day(7)
        )),
        "{out}"
    );
    assert!(out.ends_with("configuration OK\n"), "{out}");
}
