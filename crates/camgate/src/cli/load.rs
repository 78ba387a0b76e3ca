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
            "avigilon: {} at {url}: {cameras}, topics {:?}, every {} (lookback {}, {} at a time), active {:?}{tls}",
            a.name, a.topics, a.poll_interval, a.lookback, a.concurrency, a.active
        );
    }
    for z in &c.zone {
        let _ = writeln!(s, "zone:     {}", crate::occupancy::describe(z));
    }
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

    #[test]
    fn explicit_missing_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/camgate.toml"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/camgate.toml"), "{e}");
    }
}
