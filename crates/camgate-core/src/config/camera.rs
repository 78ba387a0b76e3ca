//! `[[camera]]`: the devices camgate knows by name.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Secret;

/// `[[camera]]`: one device, chosen by `vendor`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "vendor", rename_all = "lowercase", deny_unknown_fields)]
pub enum CameraConfig {
    /// A Viewtron IP camera or NVR that POSTs events to the webhook listener; matched by
    /// the address it connects from.
    Viewtron(ViewtronCamera),
}

impl CameraConfig {
    pub fn name(&self) -> &str {
        match self {
            CameraConfig::Viewtron(c) => &c.name,
        }
    }
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
        channel
            .and_then(|c| self.channels.get((c as usize).checked_sub(1)?))
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.name)
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
