//! `[[avigilon]]`: an Avigilon Control Center site whose Web Endpoint camgate polls for
//! analytic events (`docs/protocols/avigilon.md` of the shared folder).

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::SignedDuration;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

use super::matcher::{EventView, Matcher, any_matches};
use super::{Config, ConfigError, Dur, EnvString, Secret, parse_duration};

/// The Web Endpoint's port when the URL names none.
pub const AVIGILON_DEFAULT_PORT: u16 = 8443;
/// The API root, used when the URL has no path.
pub const AVIGILON_API_ROOT: &str = "/mt/api/rest/v1/";
/// The largest `limit` accepted (the server's own maximum is undocumented).
pub const AVIGILON_MAX_LIMIT: u32 = 10_000;

/// `[[avigilon]]`: one ACC site (one Web Endpoint, one or more ACC servers behind it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AvigilonConfig {
    /// The `source` of its events; unique among `[[camera]]` and `[[avigilon]]` names.
    pub name: String,
    /// The Web Endpoint: `https://10.0.0.5` (port 8443 when none is given; appliances use
    /// `:443`). A path, when given, is the API root (default `/mt/api/rest/v1/`).
    pub url: EnvString,
    /// The ACC user camgate logs in as.
    pub username: EnvString,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The name of an environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The integration's user nonce (from the Avigilon Technology Partner Program).
    #[serde(default)]
    pub user_nonce: Option<Secret>,
    #[serde(default)]
    pub user_nonce_env: Option<String>,
    /// The integration's user key (64 hex characters).
    #[serde(default)]
    pub user_key: Option<Secret>,
    #[serde(default)]
    pub user_key_env: Option<String>,
    /// The integration identifier, for keys issued with one (the token's fourth part).
    #[serde(default)]
    pub integration_id: Option<Secret>,
    #[serde(default)]
    pub integration_id_env: Option<String>,
    /// How camgate's session shows in ACC (`clientName`).
    #[serde(default = "default_client_name")]
    pub client_name: String,
    /// Check the server's certificate. Default: only when `ca_bundle` is given (the Web
    /// Endpoint's certificate is self-signed and rarely names the address).
    #[serde(default)]
    pub verify_tls: Option<bool>,
    /// PEM file of the certificate (authority) to trust for this server; turns verification on.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// The camera ids to poll (the `id` of `GET /cameras`).
    #[serde(default)]
    pub cameras: Option<Vec<String>>,
    /// A JSON file holding the camera ids to poll, as an array (the legacy
    /// `ids_camaras_permitidas.json`).
    #[serde(default)]
    pub cameras_file: Option<PathBuf>,
    /// Ask the server for its cameras (`GET /cameras`) to learn their names and servers; with
    /// no `cameras` or `cameras_file`, poll every camera.
    #[serde(default)]
    pub discover_cameras: bool,
    /// Event topics to fetch (`eventTopics`).
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    /// Time between the starts of two poll cycles (100ms to 1 day; default 60s).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: Dur,
    /// Events per page (`limit`), 1 to 10000.
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Each poll window starts this long before the end of the last one, so late events are
    /// fetched; events are de-duplicated by key.
    #[serde(default = "default_lookback")]
    pub lookback: Dur,
    /// Also send the session as a `session=` query parameter (servers older than ACC 7.12).
    #[serde(default)]
    pub query_session: bool,
    /// How far the ACC server's clock is ahead of this machine's (negative: behind), e.g.
    /// `"-3s"`. Added to the login token's timestamp and to the query windows, subtracted
    /// from the times events carry.
    #[serde(default)]
    pub timestamp_offset: SignedDur,
    /// Requests in flight to each ACC server of the site at most (every request asks one
    /// server, `serverId`): a site's cameras are polled this many at a time per server.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Time limit of one request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Dur,
    /// When to poll.
    #[serde(default)]
    pub active: ActiveMode,
    /// Which events are kept as **history** (shown by `/api/events`, `camgate events`, the
    /// live stream and the sinks): those any matcher of the list matches. Absent: every
    /// event. The others are still stored, once, so that zones count them exactly once,
    /// but marked as not history: nothing reads them back. `[]`: no event is history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Matcher>>,
}

/// When an `[[avigilon]]` site is polled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveMode {
    /// All the time.
    #[default]
    Always,
    /// Only inside the windows of the `[schedule]`.
    Schedule,
}

fn default_client_name() -> String {
    "camgate".to_owned()
}
fn default_topics() -> Vec<String> {
    vec!["DEVICE_ANALYTICS_STOP".to_owned()]
}
fn default_poll_interval() -> Dur {
    Dur::secs(60)
}
fn default_limit() -> u32 {
    1000
}
fn default_lookback() -> Dur {
    Dur::secs(120)
}
fn default_concurrency() -> usize {
    16
}
fn default_request_timeout() -> Dur {
    Dur::secs(30)
}

impl AvigilonConfig {
    /// The API root URL, ending in `/`: routes (`login`, `events/search`) join onto it.
    pub fn api_base(&self) -> Result<Url, String> {
        api_base(&self.url)
    }

    /// The password, from `password` or `password_env` (empty when neither is set).
    pub fn password(&self) -> Secret {
        secret(&self.password, &self.password_env).unwrap_or_else(|| Secret::new(""))
    }

    /// The user nonce, from `user_nonce` or `user_nonce_env` (empty when neither is set).
    pub fn user_nonce(&self) -> Secret {
        secret(&self.user_nonce, &self.user_nonce_env).unwrap_or_else(|| Secret::new(""))
    }

    /// The user key, from `user_key` or `user_key_env` (empty when neither is set).
    pub fn user_key(&self) -> Secret {
        secret(&self.user_key, &self.user_key_env).unwrap_or_else(|| Secret::new(""))
    }

    /// The integration identifier, when one is configured.
    pub fn integration_id(&self) -> Option<Secret> {
        secret(&self.integration_id, &self.integration_id_env).filter(|s| !s.is_empty())
    }

    /// Whether the server's certificate is checked.
    pub fn verify_tls(&self) -> bool {
        self.verify_tls.unwrap_or(self.ca_bundle.is_some())
    }

    /// Whether the `history` filter keeps the event as history (always, without a filter).
    pub fn is_history(&self, event: &EventView<'_>) -> bool {
        self.history.as_deref().is_none_or(|m| any_matches(m, event))
    }
}

fn secret(value: &Option<Secret>, env: &Option<String>) -> Option<Secret> {
    value.clone().or_else(|| env.as_ref().and_then(|v| std::env::var(v).ok()).map(Secret::new))
}

/// The API root of a configured `url`, see [`AvigilonConfig::url`].
fn api_base(raw: &str) -> Result<Url, String> {
    let raw = raw.trim();
    let example = "write it as \"https://10.0.0.5\" or \"https://acc.example.com:8443\"";
    let mut url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL ({e}); {example}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("{raw:?} is not an http(s) URL; {example}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} has no host; {example}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL holds credentials; put them in `username` and `password` (or `password_env`)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?} has a query or fragment; give the server address only"));
    }
    if !has_explicit_port(raw) {
        url.set_port(Some(AVIGILON_DEFAULT_PORT)).map_err(|()| format!("{raw:?} cannot take a port"))?;
    }
    if matches!(url.path(), "" | "/") {
        url.set_path(AVIGILON_API_ROOT);
    } else if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Whether the authority of `raw` (`scheme://[user@]host[:port]/...`) names a port: the
/// parsed URL cannot tell `https://h` from `https://h:443`.
fn has_explicit_port(raw: &str) -> bool {
    let Some((_, rest)) = raw.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, after)| after),
        None => host_port.find(':').map_or("", |i| &host_port[i..]),
    };
    after_host.strip_prefix(':').is_some_and(|p| !p.is_empty())
}

/// A signed duration: `"-3s"`, `"+250ms"`, `"1.5s"`, or a whole number of seconds (`-3`).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignedDur(pub SignedDuration);

impl SignedDur {
    pub fn get(self) -> SignedDuration {
        self.0
    }
}

impl fmt::Debug for SignedDur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SignedDur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0.is_negative() { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}", humantime::format_duration(abs))
    }
}

/// Parse a [`SignedDur`] written as text.
pub fn parse_signed_duration(s: &str) -> Result<SignedDuration, String> {
    let t = s.trim();
    let (negative, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let d = parse_duration(body).map_err(|_| {
        format!("invalid duration {s:?}; write a signed value with a unit, e.g. \"-3s\", \"+500ms\", \"1.5s\"")
    })?;
    let d = SignedDuration::try_from(d).map_err(|_| format!("duration {s:?} is too large"))?;
    Ok(if negative { -d } else { d })
}

impl<'de> Deserialize<'de> for SignedDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SignedDur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signed duration: a number of seconds or a string such as \"-3s\", \"+500ms\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SignedDur, E> {
                Ok(SignedDur(SignedDuration::from_secs(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SignedDur, E> {
                i64::try_from(v)
                    .map(|s| SignedDur(SignedDuration::from_secs(s)))
                    .map_err(|_| E::custom(format!("duration {v} s is too large")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SignedDur, E> {
                SignedDuration::try_from_secs_f64(v)
                    .map(SignedDur)
                    .map_err(|_| E::custom(format!("invalid duration {v}: must be a finite number of seconds")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SignedDur, E> {
                parse_signed_duration(v).map(SignedDur).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for SignedDur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What serde cannot check in the `[[avigilon]]` tables: names unique among themselves and
/// the `[[camera]]` sources, the URL, every secret set exactly once, the camera list, limits.
pub(super) fn validate(config: &Config, text: &str, file: &str) -> Result<(), ConfigError> {
    let mut names: HashSet<&str> = HashSet::new();
    for cam in &config.camera {
        names.insert(cam.name());
        names.extend(cam.channels().iter().map(String::as_str).filter(|n| !n.is_empty()));
    }
    for (i, a) in config.avigilon.iter().enumerate() {
        let err =
            |key: &str, message: String| ConfigError::for_key(text, file, &format!("avigilon[{i}].{key}"), message);
        if a.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        if !names.insert(a.name.as_str()) {
            return Err(err(
                "name",
                format!(
                    "the name {:?} is used twice; camera, channel and avigilon names are event sources and must be unique",
                    a.name
                ),
            ));
        }
        validate_one(a, &err)?;
        if a.active == ActiveMode::Schedule && config.schedule.file.is_none() && config.schedule.window.is_empty() {
            return Err(err(
                "active",
                "\"schedule\" polls only inside scheduled windows, but there is no [schedule] (file or windows)".into(),
            ));
        }
    }
    Ok(())
}

fn validate_one(a: &AvigilonConfig, err: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
    let url = api_base(&a.url).map_err(|m| err("url", m))?;
    if a.username.trim().is_empty() {
        return Err(err("username", "must not be empty".into()));
    }
    for (key, value, env, required) in [
        ("password", &a.password, &a.password_env, true),
        ("user_nonce", &a.user_nonce, &a.user_nonce_env, true),
        ("user_key", &a.user_key, &a.user_key_env, true),
        ("integration_id", &a.integration_id, &a.integration_id_env, false),
    ] {
        let env_key = format!("{key}_env");
        match (value, env) {
            (Some(_), Some(_)) => return Err(err(&env_key, format!("set either `{key}` or `{key}_env`, not both"))),
            (Some(v), None) if v.is_empty() && required => {
                return Err(err(key, "is empty".into()));
            }
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) if !v.is_empty() || !required => {}
                Ok(_) => return Err(err(&env_key, format!("environment variable {var} is empty"))),
                Err(_) => return Err(err(&env_key, format!("environment variable {var} is not set"))),
            },
            (None, None) if required => {
                return Err(err(
                    key,
                    format!("missing; set `{key}` or `{key}_env` (the name of an environment variable)"),
                ));
            }
            _ => {}
        }
    }
    if a.client_name.trim().is_empty() {
        return Err(err("client_name", "must not be empty".into()));
    }
    if let Some(ca) = &a.ca_bundle {
        if url.scheme() != "https" {
            return Err(err("ca_bundle", "only used with an https:// url".into()));
        }
        if a.verify_tls == Some(false) {
            return Err(err("ca_bundle", "a CA bundle with verify_tls = false would not be used; remove one".into()));
        }
        if !ca.is_file() {
            return Err(err("ca_bundle", format!("{} is not a readable file", ca.display())));
        }
    }
    match (&a.cameras, &a.cameras_file) {
        (Some(_), Some(_)) => {
            return Err(err("cameras_file", "set either `cameras` or `cameras_file`, not both".into()));
        }
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(err(
                    "cameras",
                    "the list is empty; list camera ids, or remove the key and set discover_cameras = true".into(),
                ));
            }
            let mut seen = HashSet::new();
            for id in ids {
                if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(err("cameras", format!("{id:?} is not a camera id (the `id` of GET /cameras)")));
                }
                if !seen.insert(id) {
                    return Err(err("cameras", format!("camera id {id:?} is listed twice")));
                }
            }
        }
        (None, Some(path)) => {
            if !path.is_file() {
                return Err(err("cameras_file", format!("{} is not a readable file", path.display())));
            }
        }
        (None, None) if !a.discover_cameras => {
            return Err(err(
                "cameras",
                "no cameras: set `cameras`, `cameras_file`, or discover_cameras = true (every camera)".into(),
            ));
        }
        (None, None) => {}
    }
    if a.topics.is_empty() {
        return Err(err("topics", "list at least one topic, e.g. [\"DEVICE_ANALYTICS_STOP\"] (or [\"ALL\"])".into()));
    }
    let mut seen = HashSet::new();
    for t in &a.topics {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(err("topics", format!("{t:?} is not an event topic (letters, digits and `_`)")));
        }
        if !seen.insert(t) {
            return Err(err("topics", format!("{t:?} is listed twice")));
        }
    }
    let day = Duration::from_secs(86_400);
    if a.poll_interval.get() < Duration::from_millis(100) || a.poll_interval.get() > day {
        return Err(err("poll_interval", format!("{} is not between 100ms and 1 day", a.poll_interval)));
    }
    if !(1..=AVIGILON_MAX_LIMIT).contains(&a.limit) {
        return Err(err("limit", format!("{} is not between 1 and {AVIGILON_MAX_LIMIT}", a.limit)));
    }
    if a.lookback.get() > day {
        return Err(err("lookback", format!("{} is over 1 day", a.lookback)));
    }
    if a.timestamp_offset.get().unsigned_abs() > day {
        return Err(err("timestamp_offset", format!("{} is over 1 day either way", a.timestamp_offset)));
    }
    if !(1..=64).contains(&a.concurrency) {
        return Err(err("concurrency", format!("{} is not between 1 and 64", a.concurrency)));
    }
    if a.request_timeout.get().is_zero() {
        return Err(err("request_timeout", "must be above zero".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::from_toml(t, "camgate.toml")
    }

    const MINIMAL: &str = "[[avigilon]]\nname = \"acc\"\nurl = \"https://10.0.0.5\"\nusername = \"u\"\npassword = \"p\"\nuser_nonce = \"FO#12345678\"\nuser_key = \"k\"\ncameras = [\"cam1\"]\n";

    /// The minimal table with `extra` lines added (the 9th line onwards).
    fn with(extra: &str) -> Result<Config, ConfigError> {
        parse(&format!("{MINIMAL}{extra}\n"))
    }

    #[test]
    fn defaults() {
        let c = parse(MINIMAL).unwrap();
        let a = &c.avigilon[0];
        assert_eq!(a.api_base().unwrap().as_str(), "https://10.0.0.5:8443/mt/api/rest/v1/");
        assert_eq!(a.topics, ["DEVICE_ANALYTICS_STOP"]);
        assert_eq!((a.poll_interval, a.limit, a.lookback), (Dur::secs(60), 1000, Dur::secs(120)));
        assert_eq!((a.query_session, a.discover_cameras, a.verify_tls()), (false, false, false));
        assert_eq!(
            (a.timestamp_offset.get(), a.concurrency, a.request_timeout),
            (SignedDuration::ZERO, 16, Dur::secs(30))
        );
        assert_eq!((a.active, a.client_name.as_str()), (ActiveMode::Always, "camgate"));
        assert_eq!((a.user_nonce().expose(), a.user_key().expose(), a.password().expose()), ("FO#12345678", "k", "p"));
        assert_eq!(a.integration_id(), None);
        assert!(a.history.is_none(), "no filter: every event is history");
        let any = camgate_event("anything", "");
        assert!(a.is_history(&EventView::new(&any)));
        let shown = format!("{a:?}");
        assert!(!shown.contains("FO#1") && !shown.contains("\"p\""), "secrets never format: {shown}");
    }

    #[test]
    fn full_table() {
        let c = parse(
            r#"
[[camera]]
name = "front"
vendor = "viewtron"
address = "192.0.2.5"

[[avigilon]]
name = "estadio"
url = "https://acc.example.com:443"
username = "operador"
password = "p"
user_nonce = "n"
user_key = "k"
integration_id = "acme"
client_name = "camgate-estadio"
ca_bundle = "Cargo.toml"
cameras_file = "Cargo.toml"
discover_cameras = true
topics = ["DEVICE_ANALYTICS_STOP", "DEVICE_ANALYTICS_START"]
poll_interval = "30s"
limit = 500
lookback = "5m"
query_session = true
timestamp_offset = "-3s"
concurrency = 2
request_timeout = "1m"
active = "schedule"

[[schedule.window]]
date = "2026-05-17"
name = "Concierto A"
start = "18:00"
end = "23:00"
"#,
        )
        .unwrap();
        let a = &c.avigilon[0];
        assert_eq!(a.api_base().unwrap().as_str(), "https://acc.example.com/mt/api/rest/v1/", "443 stays 443");
        assert!(a.verify_tls(), "a CA bundle turns verification on");
        assert_eq!(a.integration_id().map(|s| s.expose().to_owned()).as_deref(), Some("acme"));
        assert_eq!(a.timestamp_offset.get(), SignedDuration::from_secs(-3));
        assert_eq!((a.active, a.limit, a.concurrency), (ActiveMode::Schedule, 500, 2));
        assert_eq!(a.timestamp_offset.to_string(), "-3s");
    }

    #[test]
    fn urls() {
        for (raw, want) in [
            ("https://10.0.0.5", "https://10.0.0.5:8443/mt/api/rest/v1/"),
            ("https://10.0.0.5/", "https://10.0.0.5:8443/mt/api/rest/v1/"),
            ("http://127.0.0.1:18443", "http://127.0.0.1:18443/mt/api/rest/v1/"),
            ("https://[::1]", "https://[::1]:8443/mt/api/rest/v1/"),
            ("https://[::1]:9443", "https://[::1]:9443/mt/api/rest/v1/"),
            ("https://acc:443", "https://acc/mt/api/rest/v1/"),
            ("https://proxy/acc/mt/api/rest/v1", "https://proxy:8443/acc/mt/api/rest/v1/"),
            (" https://acc:8443/mt/api/rest/v1/ ", "https://acc:8443/mt/api/rest/v1/"),
        ] {
            assert_eq!(api_base(raw).unwrap().as_str(), want, "{raw}");
        }
        for (raw, why) in [
            ("10.0.0.5", "not a URL"),
            ("acc.local:8443", "not an http(s) URL"),
            ("ftp://acc", "not an http(s) URL"),
            ("https://u:p@acc", "credentials"),
            ("https://acc/?x=1", "query"),
        ] {
            let e = api_base(raw).unwrap_err();
            assert!(e.contains(why), "{raw}: {e}");
        }
        let e = parse(&MINIMAL.replace("https://10.0.0.5", "10.0.0.5")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("avigilon[0].url"), Some(3)), "{e}");
    }

    #[test]
    fn signed_durations() {
        for (raw, want) in [("-3s", -3000), ("+250ms", 250), ("1.5s", 1500), ("0", 0), ("-1m", -60_000)] {
            assert_eq!(parse_signed_duration(raw).unwrap(), SignedDuration::from_millis(want), "{raw}");
        }
        assert!(parse_signed_duration("--3s").is_err());
        assert!(parse_signed_duration("soon").unwrap_err().contains("soon"));
        let c = with("timestamp_offset = -5").unwrap();
        assert_eq!(c.avigilon[0].timestamp_offset.get(), SignedDuration::from_secs(-5));
        let c = with("timestamp_offset = 2.5").unwrap();
        assert_eq!(c.avigilon[0].timestamp_offset.get(), SignedDuration::from_millis(2500));
        assert_eq!(SignedDur(SignedDuration::from_millis(-1500)).to_string(), "-1s 500ms");
    }

    #[test]
    fn each_bad_value_names_its_key_and_line() {
        for (extra, key) in [
            ("limit = 0", "limit"),
            ("limit = 10001", "limit"),
            ("poll_interval = 0", "poll_interval"),
            ("lookback = \"2d\"", "lookback"),
            ("timestamp_offset = \"-2d\"", "timestamp_offset"),
            ("concurrency = 0", "concurrency"),
            ("request_timeout = 0", "request_timeout"),
            ("topics = []", "topics"),
            ("topics = [\"DEVICE ANALYTICS\"]", "topics"),
            ("topics = [\"A\", \"A\"]", "topics"),
            ("cameras_file = \"Cargo.toml\"", "cameras_file"),
            ("password_env = \"CAMGATE_TEST_AVIGILON_UNSET\"", "password_env"),
            ("integration_id_env = \"CAMGATE_TEST_AVIGILON_UNSET\"", "integration_id_env"),
            ("ca_bundle = \"/nonexistent.pem\"", "ca_bundle"),
            ("ca_bundle = \"Cargo.toml\"\nverify_tls = false", "ca_bundle"),
            ("client_name = \" \"", "client_name"),
        ] {
            let e = with(extra).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(format!("avigilon[0].{key}").as_str()), "{extra}: {e}");
            assert_eq!(e.line, Some(9), "{extra}: {e}");
        }
        let e = with("active = \"schedule\"").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("avigilon[0].active"), Some(9)), "no [schedule]: {e}");
        let e = with("active = \"sometimes\"").unwrap_err();
        assert!(e.message.contains("sometimes"), "{e}");
        let e = with("cameras_dir = \"x\"").unwrap_err();
        assert!(e.message.contains("cameras_dir"), "{e}");
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn secrets_and_cameras() {
        for (drop_line, key) in [("password = \"p\"\n", "password"), ("user_key = \"k\"\n", "user_key")] {
            let e = parse(&MINIMAL.replace(drop_line, "")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(format!("avigilon[0].{key}").as_str()), "{e}");
            assert!(e.message.contains(&format!("{key}_env")), "{e}");
        }
        let e = parse(&MINIMAL.replace("user_nonce = \"FO#12345678\"", "user_nonce = \"\"")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("avigilon[0].user_nonce"), "{e}");
        let e = parse(&MINIMAL.replace("cameras = [\"cam1\"]\n", "")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("avigilon[0].cameras"), "{e}");
        let c = parse(&MINIMAL.replace("cameras = [\"cam1\"]\n", "discover_cameras = true\n")).unwrap();
        assert!(c.avigilon[0].cameras.is_none() && c.avigilon[0].discover_cameras);
        for list in ["[]", "[\"a\", \"a\"]", "[\"a b\"]", "[\"\"]"] {
            let e = parse(&MINIMAL.replace("[\"cam1\"]", list)).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("avigilon[0].cameras"), "{list}: {e}");
            assert_eq!(e.line, Some(8), "{list}: {e}");
        }
        let e = with("user_key_env = \"HOME\"").unwrap_err();
        assert!(e.message.contains("not both"), "{e}");
    }

    #[test]
    fn names_are_unique_across_cameras_and_sites() {
        let e =
            parse(&format!("[[camera]]\nname = \"acc\"\nvendor = \"viewtron\"\naddress = \"192.0.2.5\"\n{MINIMAL}"))
                .unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("avigilon[0].name"), Some(6)), "{e}");
        let e = parse(&format!("{MINIMAL}{MINIMAL}")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("avigilon[1].name"), Some(10)), "{e}");
        let c = parse(&format!("{MINIMAL}{}", MINIMAL.replace("\"acc\"", "\"acc2\""))).unwrap();
        assert_eq!(c.avigilon.len(), 2);
    }

    /// An Avigilon STOP event of rule `name` in occupancy area `area`.
    fn camgate_event(name: &str, area: &str) -> crate::Event {
        let mut e = crate::Event::new("k", "Camara 01", crate::Vendor::Avigilon, crate::Kind::Counting);
        e.rule = Some(name.into());
        e.code = Some("DEVICE_ANALYTICS_STOP".into());
        e.data =
            Some(serde_json::json!({ "analyticEventName": name, "area": area, "activity": "OBJECT_COUNTING_ENTER" }));
        e
    }

    #[test]
    fn history_filters_use_the_zone_matchers() {
        // The legacy monitor's filter (shared avigilon.md §6.3), spread over several lines.
        let c = with(
            "history = [\n  { name = { contains = \"PUERTA\" } },\n  { name = { contains = \"aforo entrada sencia\" } },\n  { name = { equals = \"INGRESO PERSONAS ENTRADA MARATON\" } },\n  { area = { regex = \"^tribuna (norte|sur)$\" } },\n]",
        )
        .unwrap();
        let a = &c.avigilon[0];
        assert_eq!(a.history.as_ref().map(Vec::len), Some(4));
        let kept = |name: &str, area: &str| a.is_history(&EventView::new(&camgate_event(name, area)));
        assert!(kept("Presencia  Puerta 3", ""), "contains, case-insensitive, spaces collapsed");
        assert!(kept("  AFORO ENTRADA   SENCIA 2", ""));
        assert!(kept("ingreso personas entrada maraton ", ""), "equals, trimmed");
        assert!(!kept("INGRESO PERSONAS ENTRADA MARATON 2", ""), "equals needs the whole name");
        assert!(kept("Regla 7", " Tribuna  SUR"), "regex on the trimmed, collapsed area");
        assert!(!kept("AFORO ENTRADA PARQUEADERO NORTE", "Parqueadero Norte"), "not history; zones still count it");
        // `[]`: nothing is history (zones count every event).
        let c = with("history = []").unwrap();
        assert!(!c.avigilon[0].is_history(&EventView::new(&camgate_event("PUERTA 1", ""))));
        // Shown back in the file's own words (for `camgate check`).
        let c = with("history = [{ name = { contains = \"PUERTA\" }, code = { equals = \"DEVICE_ANALYTICS_STOP\" } }]")
            .unwrap();
        let shown: Vec<String> = c.avigilon[0].history.iter().flatten().map(ToString::to_string).collect();
        assert_eq!(shown, [r#"name contains "PUERTA" and code equals "DEVICE_ANALYTICS_STOP""#]);
    }

    #[test]
    fn bad_history_filters_name_key_and_line() {
        for (extra, key, line, needle) in [
            ("history = \"PUERTA\"", "avigilon[0].history", 9, "sequence"),
            ("history = [{ nombre = { contains = \"X\" } }]", "avigilon[0].history[0].nombre", 9, "nombre"),
            ("history = [{ name = { regex = \"(\" } }]", "avigilon[0].history[0].name", 9, "invalid regex"),
            ("history = [{ name = { contains = \" \" } }]", "avigilon[0].history[0].name", 9, "empty"),
            ("history = [{ name = { starts = \"A\" } }]", "avigilon[0].history[0].name.starts", 9, "unknown field"),
            ("history = [{}]", "avigilon[0].history[0]", 9, "at least one condition"),
            (
                "history = [\n  { name = { contains = \"PUERTA\" } },\n  { area = { equals = \"A\", regex = \"B\" } },\n]",
                "avigilon[0].history[1].area",
                11,
                "exactly one",
            ),
        ] {
            let e = with(extra).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{extra}: {e}");
            assert_eq!(e.line, Some(line), "{extra}: {e}");
            assert!(e.message.contains(needle), "{extra}: {e}");
            assert!(e.to_string().starts_with(&format!("camgate.toml:{line}: key `{key}`")), "{e}");
        }
    }

    #[test]
    fn serialises_without_secrets() {
        let c = parse(MINIMAL).unwrap();
        let v = serde_json::to_value(&c.avigilon[0]).unwrap();
        assert_eq!((v["password"].as_str(), v["user_key"].as_str()), (Some("***"), Some("***")));
        assert_eq!(v["timestamp_offset"], "0s");
    }
}
