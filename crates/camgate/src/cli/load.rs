//! Finding, reading and describing the configuration.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use camgate_core::config::{CameraConfig, Config, ConfigError, DahuaCamera, Dur, SinkConfig};

use super::env_mode::{self, EnvOrigin};

/// The file `run` and `check` read when no `-c` is given.
pub const DEFAULT_CONFIG: &str = "camgate.toml";

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    File(PathBuf),
    /// No `-c` and no `camgate.toml`: every default applies.
    Defaults,
    /// No `-c` and no `camgate.toml`, but `CAM_IP` in the environment or `./.env`: the
    /// original Dahua listener's variables configure one camera (see `env_mode`).
    Environment(EnvOrigin),
}

/// Read and validate the configuration. An explicit path that does not exist is an error;
/// without one, a missing `camgate.toml` means "use the defaults", or, when `CAM_IP` is set
/// in the environment or `./.env`, the environment-variable mode of the original listener.
pub fn load(path: Option<&Path>) -> Result<(Config, ConfigOrigin), ConfigError> {
    let (path, explicit) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            if let Some((config, env)) = env_mode::from_process_env(Path::new("."))? {
                return Ok((config, ConfigOrigin::Environment(env)));
            }
            let config = Config::from_toml("", "<defaults>")?;
            return Ok((config, ConfigOrigin::Defaults));
        }
        Err(e) => {
            return Err(ConfigError { file, line: None, key: None, message: format!("cannot read the file: {e}") });
        }
    };
    let config = Config::from_toml(&text, &file)?;
    // What only this crate can check.
    if let Err(message) = crate::logging::filter(&config.log.level) {
        return Err(ConfigError::for_key(&text, &file, "log.level", message));
    }
    Ok((config, ConfigOrigin::File(path)))
}

/// One line: what runs with this configuration.
pub fn summary(c: &Config) -> String {
    let mut parts = Vec::new();
    if c.webhook.enabled {
        parts.push(format!("webhook listener on {}", c.webhook.listen));
    }
    for cam in &c.camera {
        if let CameraConfig::Dahua(d) = cam {
            parts.push(format!("Dahua camera {} at {}", d.name, dahua_url(d)));
        }
    }
    parts.push(format!("SQLite store {}", c.database_path().display()));
    if c.http.enabled {
        parts.push(format!("HTTP API on {}", c.http.listen));
    }
    let sinks: Vec<String> = c.sinks().iter().map(|s| format!("`{}` sink", s.name())).collect();
    parts.push(sinks.join(", "));
    parts.join(", ")
}

/// What would run, for `camgate check`. Secrets are shown as set or not, never by value.
pub fn describe(c: &Config, origin: &ConfigOrigin) -> String {
    let mut s = String::new();
    let _ = match origin {
        ConfigOrigin::File(p) => writeln!(s, "config:   {}", p.display()),
        ConfigOrigin::Defaults => writeln!(s, "config:   none ({DEFAULT_CONFIG} not found): defaults"),
        ConfigOrigin::Environment(env) => writeln!(
            s,
            "config:   environment variables ({DEFAULT_CONFIG} not found{}): {}",
            if env.dotenv { format!("; {} read", env_mode::DOTENV) } else { String::new() },
            env.sources()
        ),
    };
    if let ConfigOrigin::Environment(env) = origin {
        for note in &env.notes {
            let _ = writeln!(s, "note:     {note}");
        }
    }
    let _ = writeln!(s, "site:     timezone {}, data in {}", c.site.timezone, c.site.data_dir.display());
    let _ = writeln!(
        s,
        "store:    SQLite {} (batch {} events or {}, synchronous {:?}{})",
        c.database_path().display(),
        c.store.batch_max,
        c.store.batch_linger,
        c.store.synchronous,
        c.store.max_size.map(|m| format!(", at most {m}")).unwrap_or_default()
    );
    let file = if c.log.file.as_os_str().is_empty() {
        "no file".to_string()
    } else {
        format!("file {} (rotated at {}, {} kept)", c.log.file.display(), c.log.max_size, c.log.keep)
    };
    let _ = writeln!(s, "log:      level {}, {:?} format, {}", c.log.level, c.log.format, file);
    if c.http.enabled {
        let _ = writeln!(s, "http:     API, live stream and metrics on http://{}", c.http.listen);
    } else {
        let _ = writeln!(s, "http:     off");
    }
    if c.webhook.enabled {
        let auth = match (&c.webhook.token, &c.webhook.token_env) {
            (Some(_), _) => "token required (set in the file)".to_string(),
            (None, Some(var)) => format!("token required (from ${var})"),
            (None, None) => "no token".to_string(),
        };
        let _ = writeln!(
            s,
            "webhook:  {} (max body {}, header timeout {}, body timeout {}, at most {} connections)",
            c.webhook.listen,
            c.webhook.max_body,
            c.webhook.header_timeout,
            c.webhook.body_timeout,
            c.webhook.max_connections
        );
        let _ = writeln!(s, "source:   ingest: POST /api/ingest, camgate's JSON event model, {auth}");
        let unknown = if c.webhook.accept_unknown { "accepted, named by address" } else { "refused (403)" };
        let _ = writeln!(
            s,
            "source:   viewtron: POST any other path; unknown devices {unknown}; traject {:?}",
            c.webhook.traject
        );
        for cam in &c.camera {
            let CameraConfig::Viewtron(v) = cam else { continue };
            let auth = if v.username.is_some() { ", Basic credentials required" } else { "" };
            let channels = if v.channels.is_empty() { String::new() } else { format!(", channels {:?}", v.channels) };
            let tz = v.timezone.as_deref().unwrap_or(&c.site.timezone);
            let _ = writeln!(s, "camera:   {} (viewtron) from {}, time zone {tz}{channels}{auth}", v.name, v.address);
        }
    } else {
        let _ = writeln!(s, "webhook:  off (no push sources)");
    }
    for cam in &c.camera {
        if let CameraConfig::Dahua(d) = cam {
            let _ = writeln!(s, "camera:   {}", describe_dahua(d));
        }
    }
    for a in &c.avigilon {
        let cameras = match (&a.cameras, &a.cameras_file) {
            (Some(ids), _) => format!("{} camera(s)", ids.len()),
            (None, Some(path)) => format!("the cameras of {}", path.display()),
            (None, None) => "every camera (GET /cameras)".to_string(),
        };
        let url = a.api_base().map(|u| u.to_string()).unwrap_or_default();
        let tls = if url.starts_with("https") && !a.verify_tls() { ", certificate NOT checked" } else { "" };
        let _ = writeln!(
            s,
            "avigilon: {} at {url}: {cameras}, topics {:?}, every {} (lookback {}, {} at a time per server), active {:?}{tls}",
            a.name, a.topics, a.poll_interval, a.lookback, a.concurrency, a.active
        );
        let _ = writeln!(s, "history:  {}: {}", a.name, describe_history(a.history.as_deref(), !c.zone.is_empty()));
    }
    for z in &c.zone {
        let _ = writeln!(s, "zone:     {}", crate::occupancy::describe(z));
    }
    s.push_str(&describe_schedule(c, jiff::Timestamp::now()));
    for sink in c.sinks() {
        let d = sink.delivery();
        let what = match &sink {
            SinkConfig::Log { .. } => "one log line per event".to_string(),
            SinkConfig::Jsonl { path, .. } if path == Path::new("-") => "JSON lines to standard output".to_string(),
            SinkConfig::Jsonl { path, .. } => format!("JSON lines to {}", path.display()),
        };
        let _ = writeln!(
            s,
            "sink:     {} ({}): {what}; batches of {}, retry {}..{}",
            sink.name(),
            sink.type_name(),
            d.batch,
            d.retry_initial,
            d.retry_max
        );
    }
    s
}

/// Which events of an `[[avigilon]]` site are kept as history.
fn describe_history(filter: Option<&[camgate_core::config::matcher::Matcher]>, zones: bool) -> String {
    let others = if zones {
        "the others are only counted by the zones"
    } else {
        "the others are kept for de-duplication only (no [[zone]] counts them)"
    };
    match filter {
        None => "every event".to_string(),
        Some([]) => format!("no event (history = []); {others}"),
        Some(list) => {
            let any: Vec<String> = list.iter().map(|m| format!("({m})")).collect();
            format!("events matching {}; {others}", any.join(" or "))
        }
    }
}

/// Windows listed one by one: those open now or starting from today (local) on, within
/// this many days, at most [`SCHEDULE_LINES`] of them.
const SCHEDULE_DAYS: i16 = 7;
const SCHEDULE_LINES: usize = 10;

/// The `[schedule]`, for `camgate check` (nothing without one): how many windows, the time
/// zone, the sources polled only inside windows, and the windows of the coming days.
fn describe_schedule(c: &Config, now: jiff::Timestamp) -> String {
    use camgate_core::config::ActiveMode;
    let mut s = String::new();
    if c.schedule.file.is_none() && c.schedule.window.is_empty() {
        return s;
    }
    let schedule = match c.schedule() {
        Ok(schedule) => schedule,
        Err(e) => {
            let _ = writeln!(s, "schedule: cannot be read: {e}");
            return s;
        }
    };
    let tz = schedule.timezone().clone();
    let zone = tz.iana_name().unwrap_or("UTC").to_owned();
    let total = schedule.len();
    let mut from = Vec::new();
    if let Some(path) = &c.schedule.file {
        from.push(format!("{} from {}", total - c.schedule.window.len(), path.display()));
    }
    if !c.schedule.window.is_empty() {
        from.push(format!("{} from [[schedule.window]]", c.schedule.window.len()));
    }
    let gated: Vec<&str> =
        c.avigilon.iter().filter(|a| a.active == ActiveMode::Schedule).map(|a| a.name.as_str()).collect();
    let gated = if gated.is_empty() {
        "no source is active = \"schedule\" (windows only tag events)".to_string()
    } else {
        format!("polled only inside a window: {}", gated.join(", "))
    };
    let _ = writeln!(
        s,
        "schedule: {total} window{} ({}), local times in {zone}; {gated}",
        if total == 1 { "" } else { "s" },
        from.join(", ")
    );
    // From the start of today (local) to the end of the horizon's last day.
    let today = now.to_zoned(tz.clone()).date();
    let day_start = |d: jiff::civil::Date| {
        tz.to_ambiguous_timestamp(d.to_datetime(jiff::civil::Time::midnight())).compatible().unwrap_or(now)
    };
    let horizon_day = today.checked_add(jiff::Span::new().days(i64::from(SCHEDULE_DAYS))).unwrap_or(today);
    let (start, horizon) = (day_start(today), day_start(horizon_day));
    let windows = schedule.windows();
    // Every window of today (also one that ended this morning, or is open since yesterday)
    // and of the next days up to the horizon.
    let shown: Vec<&camgate_core::schedule::Window> =
        windows.iter().filter(|w| w.end > start && w.start < horizon).collect();
    let later: Vec<&camgate_core::schedule::Window> = windows.iter().filter(|w| w.start >= horizon).collect();
    let earlier = windows.iter().filter(|w| w.end <= start).count();
    for w in shown.iter().take(SCHEDULE_LINES) {
        let _ = writeln!(s, "window:   {}", describe_window(w, &tz, now));
    }
    let mut rest = Vec::new();
    if shown.len() > SCHEDULE_LINES {
        rest.push(format!("{} more before {horizon_day}", shown.len() - SCHEDULE_LINES));
    }
    if let Some(next) = later.first() {
        let local = next.start.to_zoned(tz.clone());
        rest.push(format!("{} from {horizon_day} on (the next: {:?} on {})", later.len(), next.name, local.date()));
    }
    if earlier > 0 {
        rest.push(format!("{earlier} ended before today"));
    }
    if shown.is_empty() {
        rest.insert(0, format!("none today or in the next {} days", SCHEDULE_DAYS - 1));
    }
    if !rest.is_empty() {
        let _ = writeln!(s, "window:   ... {}", rest.join("; "));
    }
    s
}

/// `Concierto A: Sun 2026-05-17 18:00 - 02:00 next day (open now)`, in the schedule's zone.
fn describe_window(w: &camgate_core::schedule::Window, tz: &jiff::tz::TimeZone, now: jiff::Timestamp) -> String {
    use camgate_core::schedule::hhmm;
    let (start, end) = (w.start.to_zoned(tz.clone()), w.end.to_zoned(tz.clone()));
    let end_text = if end.date() == start.date() {
        hhmm(end.time())
    } else if start.date().tomorrow().is_ok_and(|d| d == end.date()) {
        format!("{} next day", hhmm(end.time()))
    } else {
        format!("{} {}", end.date(), hhmm(end.time()))
    };
    let state = if w.contains(now) {
        " (open now)"
    } else if w.end <= now {
        " (ended)"
    } else {
        ""
    };
    format!("{}: {} {} {} - {end_text}{state}", w.name, start.strftime("%a"), start.date(), hhmm(start.time()))
}

/// `http://host:port`, with an IPv6 address in brackets.
fn dahua_url(d: &DahuaCamera) -> String {
    let scheme = if d.https { "https" } else { "http" };
    if d.host.contains(':') {
        format!("{scheme}://[{}]:{}", d.host, d.port())
    } else {
        format!("{scheme}://{}:{}", d.host, d.port())
    }
}

/// One line about a Dahua camera; the password is shown as set or not, never by value.
fn describe_dahua(d: &DahuaCamera) -> String {
    let password = match (&d.password, &d.password_env) {
        (Some(p), _) if p.is_empty() => "empty password".to_string(),
        (Some(_), _) => "password set".to_string(),
        (None, Some(var)) => format!("password from ${var}"),
        (None, None) => "no password".to_string(),
    };
    let tls = match (d.https, d.verify_tls, &d.ca_bundle) {
        (false, _, _) => String::new(),
        (true, false, _) => ", certificate not checked".to_string(),
        (true, true, Some(ca)) => format!(", certificate checked against {}", ca.display()),
        (true, true, None) => ", certificate checked against the system's CAs".to_string(),
    };
    format!(
        "{} (dahua) at {}, user {}, {password}{tls}; codes {}, heartbeat {} (stalled after {}), \
         reconnect back-off {}..{}",
        d.name,
        dahua_url(d),
        d.username,
        d.codes_param(),
        d.heartbeat,
        Dur(d.stall_timeout()),
        d.backoff_base,
        d.backoff_max
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_shows_the_token() {
        let c = Config::from_toml("[webhook]\ntoken = \"hunter2-secret\"\n", "t.toml").unwrap();
        let d = describe(&c, &ConfigOrigin::File("t.toml".into()));
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("token required"), "{d}");
    }

    const SITE: &str = "[[avigilon]]\nname = \"estadio\"\nurl = \"https://192.0.2.60\"\nusername = \"u\"\npassword = \"p\"\nuser_nonce = \"n\"\nuser_key = \"k\"\ncameras = [\"c1\"]\n";

    #[test]
    fn describe_shows_each_sites_history_filter() {
        let c = Config::from_toml(SITE, "t.toml").unwrap();
        let d = describe(&c, &ConfigOrigin::File("t.toml".into()));
        assert!(d.contains("history:  estadio: every event\n"), "{d}");
        let text = format!(
            "{SITE}history = [{{ name = {{ contains = \"PUERTA\" }} }}, {{ area = {{ regex = \"^sur$\" }}, activity = {{ equals = \"OBJECT_COUNTING_ENTER\" }} }}]\n"
        );
        let c = Config::from_toml(&text, "t.toml").unwrap();
        let d = describe(&c, &ConfigOrigin::File("t.toml".into()));
        assert!(
            d.contains(
                "history:  estadio: events matching (name contains \"PUERTA\") or (area matches \"^sur$\" and activity \
                 equals \"OBJECT_COUNTING_ENTER\"); the others are kept for de-duplication only (no [[zone]] counts them)\n"
            ),
            "{d}"
        );
        let zone = "[[zone]]\nname = \"Norte\"\nenter = [{ name = { contains = \"ENTRADA\" } }]\n";
        let c = Config::from_toml(&format!("{SITE}history = []\n{zone}"), "t.toml").unwrap();
        let d = describe(&c, &ConfigOrigin::File("t.toml".into()));
        assert!(
            d.contains("history:  estadio: no event (history = []); the others are only counted by the zones\n"),
            "{d}"
        );
    }

    /// Daily windows `first..=last` of May 2026, 18:00 to 02:00 the next day.
    fn may_windows(first: u32, last: u32) -> String {
        (first..=last)
            .map(|d| {
                format!("[[schedule.window]]\ndate = \"2026-05-{d:02}\"\nname = \"Evento {d}\"\nstart = \"18:00\"\nend = \"02:00\"\n")
            })
            .collect()
    }

    #[test]
    fn the_schedule_shows_the_coming_week_and_counts_the_rest() {
        let text =
            format!("[site]\ntimezone = \"America/Bogota\"\n{}active = \"schedule\"\n{}", SITE, may_windows(1, 31));
        let c = Config::from_toml(&text, "t.toml").unwrap();
        // 2026-05-17 19:00 in Bogota (UTC-5), a Sunday.
        let now: jiff::Timestamp = "2026-05-18T00:00:00Z".parse().unwrap();
        let d = describe_schedule(&c, now);
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(
            lines[0],
            "schedule: 31 windows (31 from [[schedule.window]]), local times in America/Bogota; \
             polled only inside a window: estadio"
        );
        // The one that ended this morning (02:00) is today's too.
        assert_eq!(lines[1], "window:   Evento 16: Sat 2026-05-16 18:00 - 02:00 next day (ended)");
        assert_eq!(lines[2], "window:   Evento 17: Sun 2026-05-17 18:00 - 02:00 next day (open now)");
        assert_eq!(lines[3], "window:   Evento 18: Mon 2026-05-18 18:00 - 02:00 next day");
        assert_eq!(lines[8], "window:   Evento 23: Sat 2026-05-23 18:00 - 02:00 next day");
        assert_eq!(
            lines[9],
            "window:   ... 8 from 2026-05-24 on (the next: \"Evento 24\" on 2026-05-24); 15 ended before today"
        );
        assert_eq!(lines.len(), 10, "{d}");

        // Open since yesterday, past midnight.
        let d = describe_schedule(&c, "2026-05-18T06:30:00Z".parse().unwrap());
        assert!(d.contains("\nwindow:   Evento 17: Sun 2026-05-17 18:00 - 02:00 next day (open now)\n"), "{d}");

        // Long after the last window.
        let now: jiff::Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        let d = describe_schedule(&c, now);
        assert!(d.ends_with("window:   ... none today or in the next 6 days; 31 ended before today\n"), "{d}");

        // Busy days: at most SCHEDULE_LINES windows, the rest counted.
        let mut text = String::from("[site]\ntimezone = \"UTC\"\n");
        for h in 0..24 {
            text.push_str(&format!(
                "[[schedule.window]]\ndate = \"2026-05-17\"\nname = \"Hora {h}\"\nstart = \"{h:02}:00\"\nend = \"{h:02}:30\"\n"
            ));
        }
        let c = Config::from_toml(&text, "t.toml").unwrap();
        let d = describe_schedule(&c, "2026-05-17T00:10:00Z".parse().unwrap());
        assert!(d.starts_with("schedule: 24 windows (24 from [[schedule.window]]), local times in UTC; no source is active = \"schedule\""), "{d}");
        assert_eq!(d.lines().filter(|l| l.starts_with("window:   Hora")).count(), SCHEDULE_LINES, "{d}");
        assert!(d.contains("window:   Hora 0: Sun 2026-05-17 00:00 - 00:30 (open now)\n"), "{d}");
        assert!(d.ends_with("window:   ... 14 more before 2026-05-24\n"), "{d}");
        // Nothing without a schedule.
        assert_eq!(describe_schedule(&Config::from_toml("", "t.toml").unwrap(), now), "");
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/camgate.toml"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/camgate.toml"), "{e}");
    }
}
