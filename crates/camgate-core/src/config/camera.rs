//! `[[camera]]`: the devices camgate knows by name.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Dur, Secret};

/// `[[camera]]`: one device, chosen by `vendor`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "vendor", rename_all = "lowercase", deny_unknown_fields)]
pub enum CameraConfig {
    /// A Viewtron IP camera or NVR that POSTs events to the webhook listener; matched by
    /// the address it connects from.
    Viewtron(ViewtronCamera),
    /// A Dahua camera or NVR (or a white-label: Amcrest, Lorex, EmpireTech, IMOU, ...) whose
    /// event stream camgate attaches to.
    Dahua(DahuaCamera),
}

impl CameraConfig {
    pub fn name(&self) -> &str {
        match self {
            CameraConfig::Viewtron(c) => &c.name,
            CameraConfig::Dahua(c) => &c.name,
        }
    }

    /// Names of channels 1, 2, ... (event sources of their own).
    pub fn channels(&self) -> &[String] {
        match self {
            CameraConfig::Viewtron(c) => &c.channels,
            CameraConfig::Dahua(c) => &c.channels,
        }
    }

    /// The configured time zone of the device clock, if any.
    pub fn timezone(&self) -> Option<&str> {
        match self {
            CameraConfig::Viewtron(c) => c.timezone.as_deref(),
            CameraConfig::Dahua(c) => c.timezone.as_deref(),
        }
    }
}

/// The `source` of an event on 1-based `channel`: the channel's name when it has one.
fn source_for<'a>(name: &'a str, channels: &'a [String], channel: Option<u32>) -> &'a str {
    channel
        .and_then(|c| channels.get((c as usize).checked_sub(1)?))
        .map(String::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(name)
}

/// A Viewtron camera or NVR.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ViewtronCamera {
    /// The `source` of its events.
    pub name: String,
    /// The IP address its posts come from.
    pub address: IpAddr,
    /// IANA zone of the device clock, for times it sends without a zone; default: the site's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Names of channels 1, 2, ...: events of a named channel get that name as `source`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// HTTP Basic credentials the device is configured to send; without them it is not asked.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The name of an environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

impl ViewtronCamera {
    /// The password, from `password` or `password_env`.
    pub fn password(&self) -> Option<Secret> {
        self.password
            .clone()
            .or_else(|| self.password_env.as_ref().and_then(|v| std::env::var(v).ok()).map(Secret::new))
    }

    /// The `source` of an event on `channel`.
    pub fn source_for(&self, channel: Option<u32>) -> &str {
        source_for(&self.name, &self.channels, channel)
    }
}

/// A Dahua-compatible camera or NVR: camgate keeps one event stream
/// (`/cgi-bin/eventManager.cgi?action=attach`) open to it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DahuaCamera {
    /// The `source` of its events.
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port; default 80, or 443 with `https`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Connect with HTTPS.
    #[serde(default)]
    pub https: bool,
    /// Check the device's certificate (HTTPS). Most cameras have a self-signed one: either
    /// give its CA in `ca_bundle` or set this to `false`.
    #[serde(default = "yes")]
    pub verify_tls: bool,
    /// PEM file of the certificate authorities to trust for this device (HTTPS).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    pub username: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The name of an environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Event codes to attach to (`["All"]`: every code the firmware knows). Also applied
    /// locally, as some firmware refuses long lists and is then attached with `[All]`.
    #[serde(default = "all_codes")]
    pub codes: Vec<String>,
    /// How often the device sends a heartbeat part (whole seconds, 1 to 60).
    #[serde(default = "default_heartbeat")]
    pub heartbeat: Dur,
    /// A stream silent this long is dead and is reconnected; default 3 heartbeats.
    #[serde(default)]
    pub stall_timeout: Option<Dur>,
    /// A stream is closed and attached again after about this long (±10 %), so a stream that
    /// heartbeats but stopped reporting events cannot last.
    #[serde(default = "default_recycle")]
    pub recycle: Dur,
    /// First wait before reconnecting after a failure; doubles (with jitter) per failure.
    #[serde(default = "default_backoff_base")]
    pub backoff_base: Dur,
    /// Longest wait between reconnection attempts.
    #[serde(default = "default_backoff_max")]
    pub backoff_max: Dur,
    /// Refused logins in a row before camgate stops trying for `auth_lockout` (the device
    /// would otherwise lock camgate's address out).
    #[serde(default = "default_auth_failures")]
    pub auth_failures: u32,
    /// How long camgate waits after `auth_failures` refused logins.
    #[serde(default = "default_auth_lockout")]
    pub auth_lockout: Dur,
    /// Connection (TCP + TLS) timeout.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// Keep `VideoMotionInfo` (a state report about once a second while motion lasts).
    #[serde(default)]
    pub video_motion_info: bool,
    /// IANA zone of the device clock, for `LocaleTime`; default: the site's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Names of channels 1, 2, ...: events of a named channel get that name as `source`.
    #[serde(default)]
    pub channels: Vec<String>,
}

fn yes() -> bool {
    true
}
fn all_codes() -> Vec<String> {
    vec!["All".to_owned()]
}
fn default_heartbeat() -> Dur {
    Dur::secs(5)
}
fn default_recycle() -> Dur {
    Dur::secs(3600)
}
fn default_backoff_base() -> Dur {
    Dur::millis(1500)
}
fn default_backoff_max() -> Dur {
    Dur::secs(60)
}
fn default_auth_failures() -> u32 {
    3
}
fn default_auth_lockout() -> Dur {
    Dur::secs(30 * 60)
}
fn default_connect_timeout() -> Dur {
    Dur::secs(10)
}

impl DahuaCamera {
    /// A camera with every default, as the environment-variable mode builds it.
    pub fn new(name: impl Into<String>, host: impl Into<String>, username: impl Into<String>) -> Self {
        DahuaCamera {
            name: name.into(),
            host: host.into(),
            port: None,
            https: false,
            verify_tls: true,
            ca_bundle: None,
            username: username.into(),
            password: None,
            password_env: None,
            codes: all_codes(),
            heartbeat: default_heartbeat(),
            stall_timeout: None,
            recycle: default_recycle(),
            backoff_base: default_backoff_base(),
            backoff_max: default_backoff_max(),
            auth_failures: default_auth_failures(),
            auth_lockout: default_auth_lockout(),
            connect_timeout: default_connect_timeout(),
            video_motion_info: false,
            timezone: None,
            channels: Vec::new(),
        }
    }

    /// The password, from `password` or `password_env` (empty when neither is set).
    pub fn password(&self) -> Secret {
        self.password
            .clone()
            .or_else(|| self.password_env.as_ref().and_then(|v| std::env::var(v).ok()).map(Secret::new))
            .unwrap_or_else(|| Secret::new(""))
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(if self.https { 443 } else { 80 })
    }

    /// How long a silent stream may last.
    pub fn stall_timeout(&self) -> std::time::Duration {
        self.stall_timeout.map(Dur::get).unwrap_or(self.heartbeat.get() * 3)
    }

    /// `codes` as the request sends it: `[A,B]`, brackets literal.
    pub fn codes_param(&self) -> String {
        format!("[{}]", self.codes.join(","))
    }

    /// Whether `codes` asks for every code.
    pub fn all_codes(&self) -> bool {
        self.codes.iter().any(|c| c.eq_ignore_ascii_case("All"))
    }

    /// The `source` of an event on `channel`.
    pub fn source_for(&self, channel: Option<u32>) -> &str {
        source_for(&self.name, &self.channels, channel)
    }
}

/// What happens to Viewtron traject (tracking) posts, which come 6-12 times a second
/// while a target moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrajectMode {
    /// Answered and counted, nothing else.
    Drop,
    /// On the live bus (SSE stream, library callbacks) but not stored.
    Live,
    /// Stored like any event (and so delivered to sinks).
    Store,
}
