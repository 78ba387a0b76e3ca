//! The configuration file (`camgate.toml`): types, defaults, parsing and validation.
//!
//! Every key is documented in `docs/config.md`. Unknown keys are errors. Parsing is pure:
//! the caller reads the file; [`Config::from_toml`] returns a [`ConfigError`] that names
//! the file, the line and the key of the problem.

mod avigilon;
mod camera;
pub mod matcher;
mod schedule;
mod values;
mod zone;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use avigilon::{
    AVIGILON_API_ROOT, AVIGILON_DEFAULT_PORT, AVIGILON_MAX_LIMIT, ActiveMode, AvigilonConfig, SignedDur,
    parse_signed_duration,
};
pub use camera::{CameraConfig, DahuaCamera, TrajectMode, ViewtronCamera};
pub use schedule::{ScheduleConfig, WindowConfig};
pub use values::{Dur, EnvString, Secret, Size, expand_env, parse_duration};
pub use zone::{OccupancyConfig, Reset, ZoneConfig};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub site: SiteConfig,
    pub log: LogConfig,
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub webhook: WebhookConfig,
    /// The devices camgate knows by name.
    pub camera: Vec<CameraConfig>,
    /// Avigilon Control Center sites polled for analytic events (`[[avigilon]]`).
    pub avigilon: Vec<AvigilonConfig>,
    /// Scheduled event windows (`[schedule]`, `[[schedule.window]]`).
    pub schedule: ScheduleConfig,
    /// Settings for all occupancy zones (the legacy table mirror).
    pub occupancy: OccupancyConfig,
    /// Occupancy counters (`docs/config.md`, `[[zone]]`).
    pub zone: Vec<ZoneConfig>,
    /// Where events go. When the file names none, one `log` sink is used.
    pub sink: Vec<SinkConfig>,
}

/// `[site]`: things that hold for the whole installation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// IANA time zone that decides local days and schedule windows.
    pub timezone: String,
    /// Where the SQLite store and the images live.
    pub data_dir: PathBuf,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig { timezone: "UTC".into(), data_dir: PathBuf::from("./data") }
    }
}

/// Console and file log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a full filter (`info,camgate=debug`).
    /// `RUST_LOG`, when set, wins.
    pub level: String,
    /// The log file; `""` turns file logging off.
    pub file: PathBuf,
    /// Rotate the file when it grows past this size.
    pub max_size: Size,
    /// How many rotated files to keep beside the current one.
    pub keep: usize,
    pub format: LogFormat,
    /// Also log to the console (standard error).
    pub console: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            file: PathBuf::from("logs/camgate.log"),
            max_size: Size::mb(10),
            keep: 5,
            format: LogFormat::Text,
            console: true,
        }
    }
}

/// How hard SQLite syncs to disk at each commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Committed transactions survive a crash of camgate (even `kill -9`); the last ones may be
    /// lost if the machine loses power.
    Normal,
    /// Committed transactions also survive power loss, at a cost in throughput.
    Full,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH`; by default `sqlite://<data_dir>/camgate.db`.
    pub url: Option<EnvString>,
    /// A write batch closes when it holds this many events...
    pub batch_max: usize,
    /// ...or this long after its first event arrived, or as soon as no more writes are
    /// waiting, whichever comes first.
    pub batch_linger: Dur,
    /// How many writes may wait for the writer before producers are slowed down.
    pub queue: usize,
    pub synchronous: Synchronous,
    /// Refuse writes (HTTP 503) once the database file would grow past this size.
    pub max_size: Option<Size>,
    /// When the write-ahead log has grown past this size, writes are held for a moment
    /// while it is checkpointed completely, so that it starts over from its beginning.
    pub wal_max: Size,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            batch_max: 1000,
            batch_linger: Dur::millis(2),
            queue: 16_384,
            synchronous: Synchronous::Normal,
            max_size: None,
            wal_max: Size::mb(128),
        }
    }
}

/// `[http]`: REST API, live stream and metrics.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 8080)) }
    }
}

/// `[webhook]`: the listener devices and scripts push events to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Larger bodies get 413 without being read whole.
    pub max_body: Size,
    /// A shared token `POST /api/ingest` must carry (`Authorization: Bearer <token>`).
    pub token: Option<Secret>,
    /// The name of an environment variable that holds the token.
    pub token_env: Option<String>,
    /// Time a client has to send a request's headers, counted from the moment the server
    /// waits for them; on a keep-alive connection that includes the idle time between
    /// requests, so it is also the idle limit.
    pub header_timeout: Dur,
    /// Time a client has to send a request's body.
    pub body_timeout: Dur,
    /// Open connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// Accept Viewtron posts from addresses no `[[camera]]` names (their `source` is the
    /// address); when false they get 403.
    pub accept_unknown: bool,
    /// What to do with Viewtron traject (tracking) posts.
    pub traject: TrajectMode,
    /// A push device that posts nothing (not even a keepalive) for this long is
    /// disconnected: its health says so and a `device` event is stored.
    pub device_timeout: Dur,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 5050)),
            max_body: Size::mb(16),
            token: None,
            token_env: None,
            header_timeout: Dur::secs(30),
            body_timeout: Dur::secs(30),
            max_connections: 4096,
            accept_unknown: true,
            traject: TrajectMode::Live,
            device_timeout: Dur::secs(300),
        }
    }
}

/// Delivery settings every sink has.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Events read from the store and delivered at a time.
    pub batch: usize,
    /// First retry delay after a failed delivery; it doubles up to `retry_max`, with jitter.
    pub retry_initial: Dur,
    pub retry_max: Dur,
    /// The sink's cursor is saved in the store at most this often (and when it stops); `0s`
    /// saves it after every batch, before the next one is delivered.
    pub cursor_interval: Dur,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            batch: 256,
            retry_initial: Dur::millis(500),
            retry_max: Dur::secs(60),
            cursor_interval: Dur::secs(1),
        }
    }
}

/// `[[sink]]`: one destination of events, chosen by `type`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// One human-readable log line per event.
    Log {
        /// Unique name; defaults to the type. Its cursor is stored under this name.
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        delivery: DeliveryConfig,
    },
    /// One event JSON per line, to a file or standard output (`path = "-"`).
    Jsonl {
        #[serde(default)]
        name: Option<String>,
        path: PathBuf,
        #[serde(default)]
        delivery: DeliveryConfig,
    },
}

impl SinkConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Log { .. } => "log",
            SinkConfig::Jsonl { .. } => "jsonl",
        }
    }
    /// The configured name, or the type.
    pub fn name(&self) -> &str {
        match self {
            SinkConfig::Log { name, .. } | SinkConfig::Jsonl { name, .. } => {
                name.as_deref().unwrap_or(self.type_name())
            }
        }
    }
    pub fn delivery(&self) -> &DeliveryConfig {
        match self {
            SinkConfig::Log { delivery, .. } | SinkConfig::Jsonl { delivery, .. } => delivery,
        }
    }
}

/// What went wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, or `<defaults>` when there was none.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path (`webhook.max_body`, `sink[1].path`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error about `key` (a dotted path such as `log.level`) found by a later check;
    /// `text` is the file's content, used to find the key's line.
    pub fn for_key(text: &str, file: &str, key: &str, message: impl Into<String>) -> Self {
        ConfigError { file: file.into(), line: line_of_key(text, key), key: Some(key.into()), message: message.into() }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Find the line where `key` (the last segment of a dotted path) is assigned, inside the
/// table the path names. Good enough to point a person at the right line.
fn line_of_key(text: &str, path: &str) -> Option<usize> {
    let segments: Vec<&str> = path.split('.').collect();
    let (last, tables) = segments.split_last()?;
    let last = last.split('[').next().unwrap_or(last);
    let table: Vec<String> = tables.iter().map(|t| t.split('[').next().unwrap_or(t).to_string()).collect();
    let index: Option<usize> =
        tables.last().and_then(|t| t.split_once('[')).and_then(|(_, i)| i.trim_end_matches(']').parse().ok());
    let header = table.join(".");
    let mut in_table = header.is_empty();
    let mut seen = 0usize;
    for (n, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if let Some(h) = l.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            in_table = h.trim() == header && {
                seen += 1;
                index.is_none_or(|i| i + 1 == seen)
            };
            continue;
        }
        if let Some(h) = l.strip_prefix('[').and_then(|h| h.split(']').next()) {
            in_table = h.trim() == header;
            continue;
        }
        if in_table
            && let Some((k, _)) = l.split_once('=')
            && k.trim().trim_matches('"') == last
        {
            return Some(n + 1);
        }
    }
    None
}

impl Config {
    /// Parse and validate a configuration file's text. `file` is used in error messages.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
            file: file.into(),
            line: e.span().map(|s| line_of(text, s.start)),
            key: None,
            message: e.message().to_string(),
        })?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let key = (path != "." && !path.is_empty()).then_some(path);
            // Inside `[[sink]]` (an internally tagged enum) serde loses the position of an
            // unknown field; find the field's own line from its name.
            let unknown = inner
                .message()
                .strip_prefix("unknown field `")
                .and_then(|m| m.split('`').next())
                .and_then(|field| key.as_deref().map(|k| format!("{k}.{field}")));
            // Otherwise an error inside a sink points at that sink's `type` line.
            let in_table = key.as_deref().filter(|k| k.ends_with(']'));
            let line = unknown
                .as_deref()
                .and_then(|k| line_of_key(text, k))
                .or_else(|| in_table.and_then(|k| line_of_key(text, &format!("{k}.type"))))
                .or_else(|| in_table.and_then(|k| line_of_key(text, &format!("{k}.vendor"))))
                .or_else(|| inner.span().map(|s| line_of(text, s.start)))
                .or_else(|| key.as_deref().and_then(|k| line_of_key(text, k)));
            ConfigError { file: file.into(), line, key, message: inner.message().to_string() }
        })?;
        config.validate(text, file)?;
        Ok(config)
    }

    /// Check a configuration built in code rather than read from a file (the
    /// environment-variable mode), with exactly the checks [`Config::from_toml`] applies.
    /// `origin` names where it came from in errors; they carry the key but no line.
    pub fn validate_built(&self, origin: &str) -> Result<(), ConfigError> {
        self.validate("", origin)
    }

    /// Resolve `*_env` references and check what serde cannot.
    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: file.into(),
            line: line_of_key(text, key),
            key: Some(key.into()),
            message,
        };
        if jiff::tz::TimeZone::get(&self.site.timezone).is_err() {
            return Err(err(
                "site.timezone",
                format!(
                    "unknown time zone {:?}; use an IANA name such as \"America/Bogota\" or \"UTC\"",
                    self.site.timezone
                ),
            ));
        }
        if self.webhook.token.is_some() && self.webhook.token_env.is_some() {
            return Err(err("webhook.token_env", "set either `token` or `token_env`, not both".into()));
        }
        if let Some(var) = &self.webhook.token_env {
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => {}
                Ok(_) => return Err(err("webhook.token_env", format!("environment variable {var} is empty"))),
                Err(_) => {
                    return Err(err("webhook.token_env", format!("environment variable {var} is not set")));
                }
            }
        }
        if self.webhook.token.as_ref().is_some_and(Secret::is_empty) {
            return Err(err("webhook.token", "the token is empty; remove the key to turn auth off".into()));
        }
        for (key, v) in [("store.batch_max", self.store.batch_max), ("store.queue", self.store.queue)] {
            if v == 0 {
                return Err(err(key, "must be at least 1".into()));
            }
        }
        if self.store.wal_max.get() < 1_000_000 {
            return Err(err("store.wal_max", format!("{} is too small; use at least 1MB", self.store.wal_max)));
        }
        if self.webhook.max_connections == 0 {
            return Err(err("webhook.max_connections", "must be at least 1".into()));
        }
        if self.log.max_size.get() < 1000 {
            return Err(err("log.max_size", format!("{} is too small; use at least 1KB", self.log.max_size)));
        }
        if self.log.keep == 0 {
            return Err(err("log.keep", "must be at least 1 (rotated files to keep)".into()));
        }
        for (key, d) in [
            ("webhook.header_timeout", self.webhook.header_timeout),
            ("webhook.body_timeout", self.webhook.body_timeout),
            ("webhook.device_timeout", self.webhook.device_timeout),
        ] {
            if d.get().is_zero() {
                return Err(err(key, "must be above zero".into()));
            }
        }
        if let Some(url) = &self.store.url {
            if !url.starts_with("sqlite:") {
                return Err(err(
                    "store.url",
                    format!("unsupported store {:?}: this version stores events in SQLite only (sqlite://PATH)", url.0),
                ));
            }
            if url.contains('?') {
                return Err(err(
                    "store.url",
                    "options in the URL (`?...`) are not supported; use the [store] keys instead".into(),
                ));
            }
        }
        self.validate_cameras(text, file)?;
        avigilon::validate(self, text, file)?;
        self.build_schedule(text, file)?;
        zone::validate(self, &|k, m| ConfigError::for_key(text, file, k, m))?;
        let mut names = HashSet::new();
        for (i, s) in self.sink.iter().enumerate() {
            if !names.insert(s.name()) {
                return Err(ConfigError {
                    file: file.into(),
                    line: line_of_key(text, &format!("sink[{i}].type")),
                    key: Some(format!("sink[{i}].name")),
                    message: format!(
                        "two sinks are named {:?}; give each sink of the same type a unique `name`",
                        s.name()
                    ),
                });
            }
            let d = s.delivery();
            if d.batch == 0 {
                return Err(err(&format!("sink[{i}].delivery.batch"), "must be at least 1".into()));
            }
            if d.retry_initial.get().is_zero() || d.retry_initial > d.retry_max {
                return Err(err(
                    &format!("sink[{i}].delivery.retry_initial"),
                    "must be above zero and not above retry_max".into(),
                ));
            }
        }
        Ok(())
    }

    fn validate_cameras(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let err = |key: String, message: String| ConfigError::for_key(text, file, &key, message);
        let mut names = HashSet::new();
        let mut addresses = HashSet::new();
        for (i, cam) in self.camera.iter().enumerate() {
            let name = cam.name();
            if name.trim().is_empty() {
                return Err(err(format!("camera[{i}].name"), "must not be empty".into()));
            }
            for n in std::iter::once(name).chain(cam.channels().iter().map(String::as_str).filter(|n| !n.is_empty())) {
                if !names.insert(n) {
                    return Err(err(
                        format!("camera[{i}].name"),
                        format!(
                            "the name {n:?} is used twice; camera and channel names are event sources and must be unique"
                        ),
                    ));
                }
            }
            if let Some(tz) = cam.timezone()
                && jiff::tz::TimeZone::get(tz).is_err()
            {
                return Err(err(format!("camera[{i}].timezone"), format!("unknown time zone {tz:?}")));
            }
            let (password, password_env) = match cam {
                CameraConfig::Viewtron(c) => (&c.password, &c.password_env),
                CameraConfig::Dahua(c) => (&c.password, &c.password_env),
            };
            if password.is_some() && password_env.is_some() {
                return Err(err(format!("camera[{i}].password_env"), "set either `password` or `password_env`".into()));
            }
            if let Some(var) = password_env
                && std::env::var(var).is_err()
            {
                return Err(err(format!("camera[{i}].password_env"), format!("environment variable {var} is not set")));
            }
            match cam {
                CameraConfig::Viewtron(c) => {
                    if !addresses.insert(c.address) {
                        return Err(err(
                            format!("camera[{i}].address"),
                            format!(
                                "{} is the address of another camera; posts are matched to cameras by address",
                                c.address
                            ),
                        ));
                    }
                    if c.username.is_some() != (c.password.is_some() || c.password_env.is_some()) {
                        return Err(err(
                            format!("camera[{i}].username"),
                            "give both `username` and `password` (or `password_env`), or neither".into(),
                        ));
                    }
                }
                CameraConfig::Dahua(c) => validate_dahua(c, &|k, m| err(format!("camera[{i}].{k}"), m))?,
            }
        }
        Ok(())
    }

    /// The shared ingest token, from `token` or `token_env`.
    pub fn ingest_token(&self) -> Option<Secret> {
        self.webhook
            .token
            .clone()
            .or_else(|| self.webhook.token_env.as_ref().and_then(|v| std::env::var(v).ok()).map(Secret::new))
    }

    /// The sinks that run: the configured ones, or a single `log` sink.
    pub fn sinks(&self) -> Vec<SinkConfig> {
        if self.sink.is_empty() {
            vec![SinkConfig::Log { name: None, delivery: DeliveryConfig::default() }]
        } else {
            self.sink.clone()
        }
    }

    /// The SQLite database path.
    pub fn database_path(&self) -> PathBuf {
        match &self.store.url {
            Some(url) => {
                let p = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                PathBuf::from(p)
            }
            None => self.site.data_dir.join("camgate.db"),
        }
    }
}

/// What serde cannot check in a `[[camera]] vendor = "dahua"`; `err(key, message)` builds the
/// error for a key of this camera.
fn validate_dahua(c: &DahuaCamera, err: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
    if c.host.trim().is_empty() || c.host.contains(['/', '?', '#', '@', ' ']) {
        return Err(err("host", format!("{:?} is not a host name or IP address", c.host)));
    }
    if c.port == Some(0) {
        return Err(err("port", "must be 1 to 65535".into()));
    }
    if c.username.is_empty() {
        return Err(err("username", "must not be empty".into()));
    }
    if c.codes.is_empty() {
        return Err(err("codes", "list at least one code, or [\"All\"]".into()));
    }
    if let Some(bad) = c.codes.iter().find(|code| {
        code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    }) {
        return Err(err("codes", format!("{bad:?} is not an event code (letters, digits, `_`, `-`, `.`)")));
    }
    let hb = c.heartbeat.get();
    if hb.subsec_nanos() != 0 || !(1..=60).contains(&hb.as_secs()) {
        return Err(err("heartbeat", format!("{} is not a whole number of seconds from 1 to 60", c.heartbeat)));
    }
    if c.stall_timeout.is_some_and(|s| s.get() <= hb) {
        return Err(err("stall_timeout", "must be longer than the heartbeat".into()));
    }
    if c.recycle.get() < std::time::Duration::from_secs(60) {
        return Err(err("recycle", "must be at least 1 minute".into()));
    }
    if c.backoff_base.get().is_zero() || c.backoff_base > c.backoff_max {
        return Err(err("backoff_base", "must be above zero and not above backoff_max".into()));
    }
    if c.auth_failures == 0 {
        return Err(err("auth_failures", "must be at least 1".into()));
    }
    if c.connect_timeout.get().is_zero() {
        return Err(err("connect_timeout", "must be above zero".into()));
    }
    if let Some(ca) = &c.ca_bundle {
        if !c.https {
            return Err(err("ca_bundle", "only used with https = true".into()));
        }
        if !ca.is_file() {
            return Err(err("ca_bundle", format!("{} is not a readable file", ca.display())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::from_toml(t, "camgate.toml")
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.webhook.listen.port(), 5050);
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.webhook.max_body, Size(16_000_000));
        assert_eq!(c.log.keep, 5);
        assert_eq!(c.sinks().len(), 1);
        assert_eq!(c.sinks()[0].name(), "log");
        assert_eq!(c.database_path(), PathBuf::from("./data/camgate.db"));
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            r#"
[site]
timezone = "America/Bogota"
data_dir = "/var/lib/camgate"
[log]
level = "debug"
max_size = "1MB"
keep = 2
format = "json"
[store]
batch_max = 64
batch_linger = "5ms"
[webhook]
listen = "127.0.0.1:0"
max_body = "1MiB"
header_timeout = 20
[[sink]]
type = "jsonl"
path = "-"
[[sink]]
type = "jsonl"
name = "archive"
path = "events.jsonl"
delivery = { batch = 10, retry_initial = "1s", retry_max = "10s" }
"#,
        )
        .unwrap();
        assert_eq!(c.webhook.max_body, Size(1 << 20));
        assert_eq!(c.store.batch_linger.get().as_millis(), 5);
        assert_eq!(c.sinks()[1].name(), "archive");
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = parse("[webhook]\nlisten = \"127.0.0.1:1\"\nmax_bdy = 5\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("max_bdy"), "{e}");
        assert!(e.to_string().starts_with("camgate.toml:3"), "{e}");
    }

    #[test]
    fn bad_type_names_key() {
        let e = parse("[log]\nkeep = \"five\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("log.keep"), "{e}");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn bad_duration_names_key() {
        let e = parse("[store]\n\nbatch_linger = \"5 parsecs\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("store.batch_linger"), "{e}");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("5 parsecs"));
    }

    #[test]
    fn bad_size_names_key() {
        let e = parse("[webhook]\nmax_body = \"lots\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("webhook.max_body"), "{e}");
    }

    #[test]
    fn missing_secret_env_names_key() {
        let e = parse("[webhook]\ntoken_env = \"CAMGATE_TEST_SURELY_UNSET_VAR\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("webhook.token_env"), "{e}");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("CAMGATE_TEST_SURELY_UNSET_VAR"));
        let e = parse("[webhook]\ntoken = \"${CAMGATE_TEST_SURELY_UNSET_VAR}\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("webhook.token"), "{e}");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn sink_errors_name_the_sink() {
        let e = parse("[[sink]]\ntype = \"log\"\n\n[[sink]]\ntype = \"jsonl\"\n").unwrap_err();
        assert!(e.message.contains("path"), "{e}");
        assert_eq!(e.line, Some(5), "the second sink's type line: {e}");
        let e = parse("[[sink]]\ntype = \"carrier-pigeon\"\n").unwrap_err();
        assert!(e.message.contains("carrier-pigeon"), "{e}");
        let e = parse("[[sink]]\ntype = \"log\"\n[[sink]]\ntype = \"log\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sink[1].name"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
    }

    #[test]
    fn unknown_key_inside_a_sink_points_at_its_line() {
        let e = parse("[[sink]]\ntype = \"log\"\n\nbatch = 5\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("batch"), "{e}");
    }

    #[test]
    fn zero_limits_are_refused() {
        assert_eq!(parse("[log]\nkeep = 0\n").unwrap_err().key.as_deref(), Some("log.keep"));
        assert_eq!(parse("[webhook]\nbody_timeout = 0\n").unwrap_err().key.as_deref(), Some("webhook.body_timeout"));
        assert!(parse("[store]\nurl = \"sqlite://x.db?mode=ro\"\n").is_err());
        assert_eq!(parse("[store]\nwal_max = \"64KB\"\n").unwrap_err().key.as_deref(), Some("store.wal_max"));
    }

    #[test]
    fn store_and_delivery_defaults_and_overrides() {
        let c = parse("").unwrap();
        assert_eq!(c.store.wal_max, Size(128_000_000));
        assert_eq!(c.sinks()[0].delivery().cursor_interval.get(), std::time::Duration::from_secs(1));
        let c =
            parse("[store]\nwal_max = \"256MiB\"\n[[sink]]\ntype = \"log\"\ndelivery = { cursor_interval = \"0s\" }\n")
                .unwrap();
        assert_eq!(c.store.wal_max, Size(256 << 20));
        assert!(c.sinks()[0].delivery().cursor_interval.get().is_zero());
    }

    #[test]
    fn viewtron_cameras() {
        let c = parse(
            "[[camera]]\nname = \"gate\"\nvendor = \"viewtron\"\naddress = \"192.0.2.5\"\nchannels = [\"Lane in\", \"\"]\n",
        )
        .unwrap();
        let CameraConfig::Viewtron(v) = &c.camera[0] else { panic!("{:?}", c.camera[0]) };
        assert_eq!(v.source_for(Some(1)), "Lane in");
        assert_eq!(v.source_for(Some(2)), "gate");
        assert_eq!(v.source_for(None), "gate");
        assert_eq!(c.webhook.traject, TrajectMode::Live);
        let e = parse("[[camera]]\nname = \"a\"\nvendor = \"viewtron\"\naddress = \"192.0.2.5\"\n[[camera]]\nname = \"b\"\nvendor = \"viewtron\"\naddress = \"192.0.2.5\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("camera[1].address"), "{e}");
        assert_eq!(e.line, Some(8), "{e}");
        let e = parse("[[camera]]\nname = \"a\"\nvendor = \"viewtron\"\naddress = \"192.0.2.5\"\nusername = \"u\"\n")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("camera[0].username"), "{e}");
        let e = parse("[[camera]]\nname = \"a\"\nvendor = \"axis\"\naddress = \"192.0.2.5\"\n").unwrap_err();
        assert!(e.message.contains("axis"), "{e}");
        let e = parse("[[camera]]\nname = \"a\"\nvendor = \"viewtron\"\naddress = \"nope\"\n").unwrap_err();
        assert!(e.to_string().contains("camera"), "{e}");
    }

    #[test]
    fn dahua_cameras() {
        let c = parse("[[camera]]\nname = \"door\"\nvendor = \"dahua\"\nhost = \"192.0.2.7\"\nusername = \"admin\"\npassword = \"pw\"\n").unwrap();
        let CameraConfig::Dahua(d) = &c.camera[0] else { panic!("{:?}", c.camera[0]) };
        assert_eq!((d.port(), d.heartbeat.get().as_secs(), d.stall_timeout().as_secs()), (80, 5, 15));
        assert_eq!(d.codes_param(), "[All]");
        assert_eq!((d.backoff_base.get().as_millis(), d.backoff_max.get().as_secs()), (1500, 60));
        assert_eq!((d.auth_failures, d.auth_lockout.get().as_secs()), (3, 1800));
        let c = parse("[[camera]]\nname = \"d\"\nvendor = \"dahua\"\nhost = \"cam.local\"\nhttps = true\nusername = \"u\"\ncodes = [\"VideoMotion\", \"CrossLineDetection\"]\n").unwrap();
        let CameraConfig::Dahua(d) = &c.camera[0] else { panic!() };
        assert_eq!(
            (d.port(), d.codes_param().as_str(), d.all_codes()),
            (443, "[VideoMotion,CrossLineDetection]", false)
        );
        for (extra, key) in [
            ("heartbeat = 0", "camera[0].heartbeat"),
            ("heartbeat = 61", "camera[0].heartbeat"),
            ("heartbeat = \"1.5s\"", "camera[0].heartbeat"),
            ("codes = []", "camera[0].codes"),
            ("codes = [\"A,B\"]", "camera[0].codes"),
            ("stall_timeout = \"2s\"", "camera[0].stall_timeout"),
            ("backoff_base = \"2m\"", "camera[0].backoff_base"),
            ("auth_failures = 0", "camera[0].auth_failures"),
            ("ca_bundle = \"/nonexistent.pem\"", "camera[0].ca_bundle"),
            ("port = 0", "camera[0].port"),
        ] {
            let text =
                format!("[[camera]]\nname = \"d\"\nvendor = \"dahua\"\nhost = \"h\"\nusername = \"u\"\n{extra}\n");
            let e = parse(&text).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{extra}: {e}");
            assert_eq!(e.line, Some(6), "{extra}: {e}");
        }
        let e = parse("[[camera]]\nname = \"d\"\nvendor = \"dahua\"\nhost = \"h\"\n").unwrap_err();
        assert!(e.message.contains("username"), "{e}");
        let e = parse("[[camera]]\nname = \"d\"\nvendor = \"dahua\"\nhost = \"http://h/\"\nusername = \"u\"\n")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("camera[0].host"), "{e}");
    }

    #[test]
    fn bad_timezone() {
        let e = parse("[site]\ntimezone = \"Mars/Olympus\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("site.timezone"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn syntax_error_has_line() {
        let e = parse("[webhook]\nlisten = \n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}
