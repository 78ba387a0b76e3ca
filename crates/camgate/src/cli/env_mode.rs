//! The environment-variable mode of the original Dahua listener.
//!
//! With no `-c`, no `camgate.toml`, and `CAM_IP` set in the environment or in `./.env`, the
//! variables of the original single-camera script configure one Dahua camera (one
//! `[[camera]] vendor = "dahua"`) on top of the defaults, and the default `log` sink prints
//! one line per event. Every variable, its default and its meaning are in `.env.example`
//! and in `docs/dahua.md` ("Environment-variable mode"); in short:
//!
//! | variable | camera key | default |
//! |---|---|---|
//! | `CAM_IP` | `host` (and `port` with `host:port`), also the camera's `name` | required |
//! | `CAM_PORT` (camgate extension) | `port` | 80, or 443 with HTTPS |
//! | `CAM_USER` | `username` | `admin` |
//! | `CAM_PASS` | `password` | required (may be empty) |
//! | `USE_HTTPS` | `https` | false |
//! | `VERIFY_TLS` | `verify_tls` | true |
//! | `TLS_CA_BUNDLE` | `ca_bundle` (HTTPS only) | none |
//! | `HEARTBEAT` | `heartbeat` (whole seconds) | 5 |
//! | `CODES` | `codes` (comma-separated) | `All` |
//! | `BACKOFF_BASE`, `BACKOFF_MAX` | `backoff_base`, `backoff_max` (seconds) | 1.5, 60 |
//! | `LOG_LEVEL` | `log.level` (Python names) | `INFO` |
//!
//! A real environment variable wins over the same one in `.env` (python-dotenv's default);
//! inside `.env` the last assignment wins. The process environment is never modified: the
//! `.env` pairs are read into a map. The webhook listener is off in this mode (the original
//! listened on nothing); the HTTP API, the store and the log file keep their defaults.
//!
//! The built configuration goes through [`Config::validate_built`], the checks a
//! `camgate.toml` gets, so the limits are the same; errors name the variable and where it
//! was set (`environment` or `.env:LINE`) and never show `CAM_PASS`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use camgate_core::config::{CameraConfig, Config, ConfigError, DahuaCamera, Dur, Secret, parse_duration};

/// The file read beside the environment, in the working directory.
pub const DOTENV: &str = ".env";

/// The `file` of errors about real environment variables.
const ENVIRONMENT: &str = "environment";

/// Every variable this mode reads, in the order `camgate check` lists them.
pub const VARIABLES: [&str; 12] = [
    "CAM_IP",
    "CAM_PORT",
    "CAM_USER",
    "CAM_PASS",
    "USE_HTTPS",
    "VERIFY_TLS",
    "TLS_CA_BUNDLE",
    "HEARTBEAT",
    "CODES",
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "LOG_LEVEL",
];

/// The user name when `CAM_USER` is not set (the factory account of Dahua devices).
pub const DEFAULT_USER: &str = "admin";

/// Where one variable was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarSource {
    /// The process environment.
    Environment,
    /// `./.env`, at this line when it could be found.
    DotEnv { line: Option<usize> },
}

impl fmt::Display for VarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarSource::Environment => f.write_str(ENVIRONMENT),
            VarSource::DotEnv { line: Some(n) } => write!(f, "{DOTENV}:{n}"),
            VarSource::DotEnv { line: None } => f.write_str(DOTENV),
        }
    }
}

/// How the configuration was made in this mode, for `camgate check` and the start-up log.
/// Holds names and places, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOrigin {
    /// Whether `./.env` was read.
    pub dotenv: bool,
    /// The variables that were set, and where.
    pub variables: Vec<(&'static str, VarSource)>,
    /// Worth a warning: settings ignored or overridden, likely mistakes. No secrets.
    pub notes: Vec<String>,
}

impl EnvOrigin {
    /// `CAM_IP (environment), CAM_PASS (.env:3), ...`
    pub fn sources(&self) -> String {
        self.variables.iter().map(|(name, from)| format!("{name} ({from})")).collect::<Vec<_>>().join(", ")
    }
}

/// One variable's value and where it came from.
#[derive(Clone)]
struct Var {
    value: String,
    from: VarSource,
}

/// The variables that were set. No `Debug`: it holds `CAM_PASS`.
struct Vars(BTreeMap<&'static str, Var>);

/// The variables this mode knows, as read from `.env`.
type FileVars = BTreeMap<&'static str, Var>;

impl Vars {
    /// The value when set and not blank: a blank value means "the default".
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.value.trim()).filter(|v| !v.is_empty())
    }

    /// An error about `name`, located where it was set.
    fn err(&self, name: &str, message: impl fmt::Display) -> ConfigError {
        let (file, line) = match self.0.get(name).map(|v| v.from) {
            Some(VarSource::DotEnv { line }) => (DOTENV, line),
            _ => (ENVIRONMENT, None),
        };
        ConfigError { file: file.into(), line, key: None, message: format!("{name}: {message}") }
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.get(name) else { return Ok(default) };
        match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.err(name, format!("{v:?} is not a boolean (true/false, 1/0, yes/no, on/off)"))),
        }
    }

    fn seconds(&self, name: &str) -> Result<Option<Dur>, ConfigError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        parse_duration(v)
            .map(|d| Some(Dur(d)))
            .map_err(|_| self.err(name, format!("{v:?} is not a number of seconds (e.g. 1.5)")))
    }
}

/// The configuration from the process environment and `dir/.env`, or `None` when `CAM_IP`
/// is set in neither (the mode is off).
pub fn from_process_env(dir: &Path) -> Result<Option<(Config, EnvOrigin)>, ConfigError> {
    from_sources(&|name| std::env::var_os(name), dir)
}

/// [`from_process_env`] with the environment given as a lookup (tests inject a map).
/// `${NAME}` references inside `.env` are still expanded from the process environment.
pub fn from_sources(
    env: &dyn Fn(&str) -> Option<OsString>,
    dir: &Path,
) -> Result<Option<(Config, EnvOrigin)>, ConfigError> {
    let mut vars = BTreeMap::new();
    for name in VARIABLES {
        if let Some(value) = env(name) {
            let value = value.into_string().map_err(|_| ConfigError {
                file: ENVIRONMENT.into(),
                line: None,
                key: None,
                message: format!("{name}: the value is not valid UTF-8"),
            })?;
            vars.insert(name, Var { value, from: VarSource::Environment });
        }
    }
    let mut notes = Vec::new();
    let dotenv = read_dotenv(&dir.join(DOTENV), vars.contains_key("CAM_IP"))?;
    if let Some((file_vars, text)) = &dotenv {
        for (name, var) in file_vars {
            if vars.contains_key(name) {
                notes.push(format!(
                    "{name} is set both in the environment and in {DOTENV}; the environment's value is used"
                ));
            } else {
                vars.insert(name, var.clone());
                if *name == "CAM_PASS"
                    && let VarSource::DotEnv { line: Some(n) } = var.from
                    && dollar_unquoted(text, n)
                {
                    notes.push(format!(
                        "CAM_PASS in {DOTENV}:{n} holds a `$`, which dotenv syntax expands ($NAME, ${{NAME}}); if the `$` is part of the password, put the value in single quotes"
                    ));
                }
            }
        }
    }
    if !vars.contains_key("CAM_IP") {
        return Ok(None);
    }
    let vars = Vars(vars);
    let config = build(&vars, &mut notes)?;
    let variables = VARIABLES.iter().filter_map(|n| vars.0.get(n).map(|v| (*n, v.from))).collect();
    Ok(Some((config, EnvOrigin { dotenv: dotenv.is_some(), variables, notes })))
}

/// The variables this mode knows from `path`, with the file's text; `None` without the file.
/// A `.env` that cannot be read or parsed is an error only when it is meant for camgate:
/// `CAM_IP` is set in the environment or assigned in the file. Otherwise it belongs to some
/// other tool and is ignored.
fn read_dotenv(path: &Path, cam_ip_in_env: bool) -> Result<Option<(FileVars, String)>, ConfigError> {
    let file_error = |message: String| ConfigError { file: DOTENV.into(), line: None, key: None, message };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if cam_ip_in_env => return Err(file_error(format!("cannot read the file: {e}"))),
        Err(_) => return Ok(None),
    };
    let lossy = String::from_utf8_lossy(&bytes);
    let text = lossy.strip_prefix('\u{feff}').unwrap_or(&lossy);
    let ours = cam_ip_in_env || assignment_line(text, "CAM_IP").is_some();
    if std::str::from_utf8(&bytes).is_err() {
        return if ours { Err(file_error("the file is not UTF-8 text".into())) } else { Ok(None) };
    }
    match parse_dotenv(text) {
        Ok(vars) => Ok(Some((vars, text.to_owned()))),
        Err(e) if ours => Err(e),
        Err(_) => Ok(None),
    }
}

/// Parse `.env` text with dotenvy (comments, quotes, `export`, `$NAME`/`${NAME}` expansion),
/// keeping the variables this mode knows. python-dotenv also takes an unquoted value with
/// spaces (`CODES=[VideoMotion, CrossLineDetection]`), which dotenvy refuses: such a line is
/// quoted and parsed again. Errors never quote the line: it may hold the password.
fn parse_dotenv(text: &str) -> Result<FileVars, ConfigError> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut requoted = vec![false; lines.len()];
    loop {
        let current = lines.join("\n");
        let line = match parse_dotenv_once(&current)? {
            Ok(vars) => return Ok(vars),
            Err(line) => line,
        };
        if let Some(n) = line
            && !requoted[n - 1]
            && let Some(fixed) = requote(&lines[n - 1])
        {
            lines[n - 1] = fixed;
            requoted[n - 1] = true;
            continue;
        }
        let key = line.and_then(|n| leading_key(&lines[n - 1])).map(|k| format!("{k}: ")).unwrap_or_default();
        return Err(ConfigError {
            file: DOTENV.into(),
            line,
            key: None,
            message: format!(
                "{key}cannot parse this line; write NAME=value, and quote a value that holds quotes, `#` or `\\`"
            ),
        });
    }
}

/// One dotenvy pass: the variables, or the (1-based) line it could not parse.
fn parse_dotenv_once(text: &str) -> Result<Result<FileVars, Option<usize>>, ConfigError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeMap::new();
    // dotenvy goes through the lines in order: the next item is at or after `cursor`.
    let mut cursor = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                if let Some(i) = (cursor..lines.len()).find(|&i| leading_key(lines[i]) == Some(key.as_str())) {
                    cursor = i + 1;
                }
                if let Some(name) = VARIABLES.iter().find(|n| **n == key) {
                    // The last assignment is the one that counts.
                    let from = VarSource::DotEnv { line: assignment_line(text, name) };
                    out.insert(*name, Var { value, from });
                }
            }
            Err(dotenvy::Error::LineParse(fragment, _)) => {
                // The fragment is the line, or only its value part.
                let first = fragment.lines().next().unwrap_or("").trim();
                let at = (cursor..lines.len()).find(|&i| !first.is_empty() && lines[i].contains(first));
                return Ok(Err(at.or((cursor < lines.len()).then_some(cursor)).map(|i| i + 1)));
            }
            Err(dotenvy::Error::Io(e)) => {
                return Err(ConfigError {
                    file: DOTENV.into(),
                    line: None,
                    key: None,
                    message: format!("cannot read the file: {e}"),
                });
            }
            Err(_) => return Ok(Err(None)),
        }
    }
    Ok(Ok(out))
}

/// `NAME=a value with spaces # comment` as `NAME="a value with spaces"`, the way
/// python-dotenv reads an unquoted value; `None` for a line that is not of that form.
fn requote(line: &str) -> Option<String> {
    leading_key(line)?;
    let (name, value) = line.split_once('=')?;
    let value = value.trim();
    if value.is_empty() || value.starts_with(['"', '\'']) || !value.contains(char::is_whitespace) {
        return None;
    }
    let value = value.find(" #").or_else(|| value.find("\t#")).map_or(value, |i| &value[..i]).trim_end();
    Some(format!("{name}=\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// The name a `.env` line assigns (`NAME=...` or `export NAME=...`), if it looks like one.
fn leading_key(line: &str) -> Option<&str> {
    let l = line.trim_start();
    let l = l.strip_prefix("export").filter(|r| r.starts_with([' ', '\t'])).map(str::trim_start).unwrap_or(l);
    let end = l.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(l.len());
    let (key, rest) = l.split_at(end);
    (!key.is_empty() && rest.trim_start().starts_with('=')).then_some(key)
}

/// The last line of `text` that assigns `name` (the one that counts), 1-based.
fn assignment_line(text: &str, name: &str) -> Option<usize> {
    text.lines().enumerate().filter(|(_, l)| leading_key(l) == Some(name)).map(|(n, _)| n + 1).last()
}

/// Whether the value on line `n` has a `$` outside single quotes (dotenv then expands it).
fn dollar_unquoted(text: &str, n: usize) -> bool {
    let Some(line) = text.lines().nth(n - 1) else { return false };
    let value = line.split_once('=').map(|(_, v)| v.trim_start()).unwrap_or("");
    value.contains('$') && !value.starts_with('\'')
}

/// `CAM_IP` as `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn split_host_port(raw: &str) -> Result<(String, Option<u16>), String> {
    if raw.contains("://") || raw.contains('/') {
        return Err(format!(
            "{raw:?} is not a host name or IP address: write the address alone (e.g. 192.168.1.108, or \
             192.168.1.108:8080 with a port) and set USE_HTTPS=true for HTTPS"
        ));
    }
    let port = |p: &str| parse_port(p).map_err(|m| format!("{raw:?}: {m}"));
    if let Some(rest) = raw.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!("{raw:?}: `[` without `]`; write an IPv6 address with a port as [address]:port"));
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{raw:?}: {addr:?} is not an IPv6 address"));
        }
        let p = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(port(p)?),
                None => return Err(format!("{raw:?}: write an IPv6 address with a port as [address]:port")),
            },
        };
        return Ok((addr.to_owned(), p));
    }
    let not_a_host = || format!("{raw:?} is not a host name or IP address");
    match raw.split_once(':') {
        None => Ok((raw.to_owned(), None)),
        Some((host, _)) if host.trim().is_empty() => Err(not_a_host()),
        Some((host, p)) if !p.contains(':') => Ok((host.to_owned(), Some(port(p)?))),
        Some(_) if raw.parse::<Ipv6Addr>().is_ok() => Ok((raw.to_owned(), None)),
        Some(_) => Err(format!("{raw:?} is not an address; write an IPv6 address with a port as [address]:port")),
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.trim().parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| format!("{p:?} is not a port number (1 to 65535)"))
}

/// `CODES`: `VideoMotion,CrossLineDetection`, `[VideoMotion, CrossLineDetection]`, `All`...
/// Blank items are dropped; `all` in any case means every code.
fn parse_codes(raw: &str) -> Vec<String> {
    let inner = raw.trim().trim_start_matches('[').trim_end_matches(']');
    let codes: Vec<String> = inner
        .split(',')
        .map(|c| c.trim().trim_matches(|q| q == '"' || q == '\'').trim())
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if codes.iter().any(|c| c.eq_ignore_ascii_case("All")) { vec!["All".to_owned()] } else { codes }
}

/// Python `logging` level names (and tracing's) to a tracing level.
fn parse_level(raw: &str) -> Option<&'static str> {
    Some(match raw.to_ascii_uppercase().as_str() {
        "NOTSET" | "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

/// The configuration the variables describe, validated as a `camgate.toml` would be.
fn build(vars: &Vars, notes: &mut Vec<String>) -> Result<Config, ConfigError> {
    let Some(ip) = vars.get("CAM_IP") else {
        return Err(vars.err(
            "CAM_IP",
            "is empty; set it to the camera's address (e.g. 192.168.1.108), or unset it to run without a camera",
        ));
    };
    let (host, ip_port) = split_host_port(ip).map_err(|m| vars.err("CAM_IP", m))?;
    let port = match vars.get("CAM_PORT") {
        None => ip_port,
        Some(p) => {
            let p = parse_port(p).map_err(|m| vars.err("CAM_PORT", m))?;
            if let Some(ip_port) = ip_port
                && ip_port != p
            {
                return Err(vars.err(
                    "CAM_PORT",
                    format!("{p} disagrees with the port in CAM_IP ({ip_port}); give the port once"),
                ));
            }
            Some(p)
        }
    };
    // Credentials are taken literally (no trimming); a blank user name means the default.
    let username = match vars.0.get("CAM_USER") {
        Some(v) if !v.value.trim().is_empty() => v.value.clone(),
        _ => DEFAULT_USER.to_owned(),
    };
    let password = match vars.0.get("CAM_PASS") {
        Some(v) => Secret::new(v.value.clone()),
        None => {
            return Err(vars.err(
                "CAM_PASS",
                format!(
                    "is not set; set it to the password of the camera's user {username:?} \
                     (`CAM_PASS=` with nothing after it for a camera without authentication)"
                ),
            ));
        }
    };
    if password.is_empty() {
        notes.push("CAM_PASS is empty: camgate connects without a password".into());
    }
    let https = vars.bool("USE_HTTPS", false)?;
    let verify_tls = vars.bool("VERIFY_TLS", true)?;
    let ca_bundle = match vars.get("TLS_CA_BUNDLE") {
        Some(path) if https => Some(PathBuf::from(path)),
        Some(_) => {
            notes.push("TLS_CA_BUNDLE is ignored: USE_HTTPS is not true, so there is no certificate to check".into());
            None
        }
        None => None,
    };
    let heartbeat = match vars.get("HEARTBEAT") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| vars.err("HEARTBEAT", format!("{v:?} is not a whole number of seconds from 1 to 60")))?,
        ),
    };
    let codes = vars.get("CODES").map(parse_codes);
    let backoff_base = vars.seconds("BACKOFF_BASE")?;
    let backoff_max = vars.seconds("BACKOFF_MAX")?;
    let level = match vars.get("LOG_LEVEL") {
        None => None,
        Some(v) => Some(parse_level(v).ok_or_else(|| {
            vars.err("LOG_LEVEL", format!("{v:?} is not a level (DEBUG, INFO, WARNING, ERROR, CRITICAL)"))
        })?),
    };

    let mut cam = DahuaCamera::new(host.clone(), host, username);
    cam.port = port;
    cam.https = https;
    cam.verify_tls = verify_tls;
    cam.ca_bundle = ca_bundle;
    cam.password = Some(password);
    if let Some(hb) = heartbeat {
        cam.heartbeat = Dur::secs(hb);
    }
    if let Some(codes) = codes {
        cam.codes = codes;
    }
    if let Some(d) = backoff_base {
        cam.backoff_base = d;
    }
    if let Some(d) = backoff_max {
        cam.backoff_max = d;
    }

    let mut config = Config::default();
    // The original listened on nothing; an open, unauthenticated listener on every
    // interface is not something these settings asked for.
    config.webhook.enabled = false;
    if let Some(level) = level {
        config.log.level = level.into();
    }
    config.camera.push(CameraConfig::Dahua(cam.clone()));
    config.validate_built(ENVIRONMENT).map_err(|e| validation_error(vars, e, &cam))?;
    if let Err(message) = crate::logging::filter(&config.log.level) {
        // Only RUST_LOG can be wrong here: LOG_LEVEL was mapped to a level.
        return Err(ConfigError { file: ENVIRONMENT.into(), line: None, key: None, message });
    }
    Ok(config)
}

/// A validation error about `camera[0].<key>`, told in terms of the variable that set it.
fn validation_error(vars: &Vars, e: ConfigError, cam: &DahuaCamera) -> ConfigError {
    let Some(field) = e.key.as_deref().and_then(|k| k.strip_prefix("camera[0].")) else {
        return e;
    };
    let message = e.message.replace("backoff_max", "BACKOFF_MAX").replace("https = true", "USE_HTTPS=true");
    // The variable, and how the validator shows the value (its message may start with it).
    let (var, shown) = match field {
        "name" | "host" => ("CAM_IP", format!("{:?}", cam.host)),
        "port" if vars.get("CAM_PORT").is_some() => ("CAM_PORT", String::new()),
        "port" => ("CAM_IP", String::new()),
        "username" => ("CAM_USER", format!("{:?}", cam.username)),
        "codes" => ("CODES", String::new()),
        "heartbeat" => ("HEARTBEAT", cam.heartbeat.to_string()),
        "backoff_base" if vars.get("BACKOFF_BASE").is_none() && vars.get("BACKOFF_MAX").is_some() => {
            let max = vars.get("BACKOFF_MAX").unwrap_or_default();
            return vars.err(
                "BACKOFF_MAX",
                format!("{max:?} is below BACKOFF_BASE, which is {} when not set", cam.backoff_base),
            );
        }
        "backoff_base" => ("BACKOFF_BASE", String::new()),
        "ca_bundle" => ("TLS_CA_BUNDLE", cam.ca_bundle.as_deref().map(|p| p.display().to_string()).unwrap_or_default()),
        _ => return e,
    };
    let body = match vars.get(var) {
        Some(raw) if !shown.is_empty() && message.starts_with(&shown) => format!("{raw:?}{}", &message[shown.len()..]),
        // The validator already quoted the offending item (a code).
        _ if message.starts_with('"') => message,
        Some(raw) => format!("{raw:?}: {message}"),
        None => message,
    };
    vars.err(var, body)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cli::{ConfigOrigin, describe};

    const PASSWORD: &str = "pw-7c1e9a$secret";

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        move |name| map.get(name).map(OsString::from)
    }

    /// Build from `pairs` as the environment and `dotenv` as `./.env` (none when `None`).
    fn build_with(pairs: &[(&str, &str)], dotenv: Option<&str>) -> Result<Option<(Config, EnvOrigin)>, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = dotenv {
            std::fs::write(dir.path().join(DOTENV), text).unwrap();
        }
        from_sources(&env_of(pairs), dir.path())
    }

    fn ok(pairs: &[(&str, &str)]) -> (Config, EnvOrigin) {
        build_with(pairs, None).unwrap().expect("the mode is on")
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        let e = build_with(pairs, None).map(|_| ()).unwrap_err();
        let s = e.to_string();
        assert!(!s.contains(PASSWORD), "{s}");
        s
    }

    fn cam(c: &Config) -> &DahuaCamera {
        match &c.camera[..] {
            [CameraConfig::Dahua(d)] => d,
            other => panic!("{other:?}"),
        }
    }

    fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![("CAM_IP", "192.0.2.7"), ("CAM_PASS", PASSWORD)];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn without_cam_ip_the_mode_is_off() {
        assert!(build_with(&[], None).unwrap().is_none());
        assert!(build_with(&[("CAM_USER", "x"), ("HEARTBEAT", "abc")], None).unwrap().is_none());
        assert!(build_with(&[], Some("CAM_USER=x\nCAM_PASS=y\n")).unwrap().is_none());
    }

    #[test]
    fn minimal_settings_take_every_default() {
        let (c, origin) = ok(&with(&[]));
        let d = cam(&c);
        assert_eq!(
            (d.name.as_str(), d.host.as_str(), d.port(), d.username.as_str()),
            ("192.0.2.7", "192.0.2.7", 80, "admin")
        );
        assert_eq!(d.password().expose(), PASSWORD);
        assert!(!d.https && d.verify_tls && d.ca_bundle.is_none());
        assert_eq!((d.codes_param().as_str(), d.heartbeat.get().as_secs()), ("[All]", 5));
        assert_eq!((d.backoff_base.get().as_millis(), d.backoff_max.get().as_secs()), (1500, 60));
        assert_eq!(c.log.level, "info");
        assert!(!c.webhook.enabled, "the original had no listener");
        assert!(c.http.enabled);
        assert_eq!(c.sinks().len(), 1);
        assert_eq!(c.sinks()[0].type_name(), "log");
        assert!(!origin.dotenv);
        assert_eq!(origin.variables, vec![("CAM_IP", VarSource::Environment), ("CAM_PASS", VarSource::Environment)]);
        assert!(origin.notes.is_empty(), "{:?}", origin.notes);
    }

    #[test]
    fn every_variable_is_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let (c, origin) = ok(&with(&[
            ("CAM_IP", "cam.example"),
            ("CAM_PORT", "8443"),
            ("CAM_USER", "operator"),
            ("USE_HTTPS", "Yes"),
            ("VERIFY_TLS", "off"),
            ("TLS_CA_BUNDLE", ca.to_str().unwrap()),
            ("HEARTBEAT", "10"),
            ("CODES", "VideoMotion,CrossLineDetection"),
            ("BACKOFF_BASE", "2.5"),
            ("BACKOFF_MAX", "120"),
            ("LOG_LEVEL", "DEBUG"),
        ]));
        let d = cam(&c);
        assert_eq!(
            (d.name.as_str(), d.host.as_str(), d.port(), d.username.as_str()),
            ("cam.example", "cam.example", 8443, "operator")
        );
        assert!(d.https && !d.verify_tls);
        assert_eq!(d.ca_bundle.as_deref(), Some(ca.as_path()));
        assert_eq!(d.heartbeat.get().as_secs(), 10);
        assert_eq!(d.codes_param(), "[VideoMotion,CrossLineDetection]");
        assert_eq!((d.backoff_base.get().as_millis(), d.backoff_max.get().as_secs()), (2500, 120));
        assert_eq!(c.log.level, "debug");
        assert_eq!(origin.variables.len(), 12);
        assert!(origin.notes.is_empty(), "{:?}", origin.notes);
    }

    #[test]
    fn addresses_and_ports() {
        let port = |pairs: &[(&str, &str)]| {
            let (c, _) = ok(&with(pairs));
            let d = cam(&c);
            (d.host.clone(), d.port())
        };
        assert_eq!(port(&[("CAM_IP", "192.0.2.7:8080")]), ("192.0.2.7".into(), 8080));
        assert_eq!(port(&[("CAM_IP", " 192.0.2.7 ")]), ("192.0.2.7".into(), 80));
        assert_eq!(port(&[("USE_HTTPS", "1")]), ("192.0.2.7".into(), 443));
        assert_eq!(port(&[("CAM_IP", "[2001:db8::7]:8081")]), ("2001:db8::7".into(), 8081));
        assert_eq!(port(&[("CAM_IP", "2001:db8::7")]), ("2001:db8::7".into(), 80));
        assert_eq!(port(&[("CAM_IP", "192.0.2.7:8080"), ("CAM_PORT", "8080")]), ("192.0.2.7".into(), 8080));
        assert_eq!(port(&[("CAM_PORT", "")]), ("192.0.2.7".into(), 80), "blank means the default");
        for (pairs, want) in [
            (vec![("CAM_IP", "")], "environment: CAM_IP: is empty"),
            (vec![("CAM_IP", "http://192.0.2.7/")], "environment: CAM_IP: \"http://192.0.2.7/\" is not a host name"),
            (vec![("CAM_IP", "192.0.2.7:http")], "environment: CAM_IP: \"192.0.2.7:http\": \"http\" is not a port"),
            (vec![("CAM_IP", "192.0.2.7:0")], "is not a port number (1 to 65535)"),
            (vec![("CAM_IP", "[2001:db8::7")], "CAM_IP: \"[2001:db8::7\": `[` without `]`"),
            (vec![("CAM_IP", "fe80:zz::1")], "CAM_IP: \"fe80:zz::1\" is not an address"),
            (vec![("CAM_IP", "cam one")], "environment: CAM_IP: \"cam one\" is not a host name or IP address"),
            (vec![("CAM_IP", ":8080")], "environment: CAM_IP: \":8080\" is not a host name or IP address"),
            (vec![("CAM_PORT", "99999")], "environment: CAM_PORT: \"99999\" is not a port number"),
            (
                vec![("CAM_IP", "192.0.2.7:81"), ("CAM_PORT", "82")],
                "CAM_PORT: 82 disagrees with the port in CAM_IP (81)",
            ),
        ] {
            let e = err(&with(&pairs));
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn booleans() {
        for (v, want) in [("true", true), ("TRUE", true), ("1", true), ("yes", true), ("On", true)] {
            assert_eq!(cam(&ok(&with(&[("USE_HTTPS", v)])).0).https, want, "{v}");
        }
        for (v, want) in [("false", false), ("0", false), ("NO", false), ("off", false), ("", false)] {
            assert_eq!(cam(&ok(&with(&[("USE_HTTPS", v)])).0).https, want, "{v}");
        }
        assert!(!cam(&ok(&with(&[("VERIFY_TLS", "False")])).0).verify_tls);
        assert!(cam(&ok(&with(&[("VERIFY_TLS", " ")])).0).verify_tls);
        let e = err(&with(&[("VERIFY_TLS", "maybe")]));
        assert_eq!(e, "environment: VERIFY_TLS: \"maybe\" is not a boolean (true/false, 1/0, yes/no, on/off)");
    }

    #[test]
    fn codes() {
        let codes = |v: &str| cam(&ok(&with(&[("CODES", v)])).0).codes_param();
        assert_eq!(codes("VideoMotion"), "[VideoMotion]");
        assert_eq!(codes("[VideoMotion, CrossLineDetection]"), "[VideoMotion,CrossLineDetection]");
        assert_eq!(codes(" VideoMotion , CrossLineDetection, "), "[VideoMotion,CrossLineDetection]");
        assert_eq!(codes("[\"VideoMotion\",'AlarmLocal']"), "[VideoMotion,AlarmLocal]");
        assert_eq!(codes("all"), "[All]");
        assert_eq!(codes("[All]"), "[All]");
        assert_eq!(codes("VideoMotion,All"), "[All]");
        assert_eq!(codes(""), "[All]", "blank means the default");
        let e = err(&with(&[("CODES", "Video Motion")]));
        assert!(e.starts_with("environment: CODES: \"Video Motion\" is not an event code"), "{e}");
        let e = err(&with(&[("CODES", "[]")]));
        assert!(e.starts_with("environment: CODES: \"[]\": list at least one code"), "{e}");
    }

    #[test]
    fn heartbeat_limits_are_those_of_the_config_file() {
        for hb in 0..=61u64 {
            let toml = format!(
                "[[camera]]\nname = \"d\"\nvendor = \"dahua\"\nhost = \"h\"\nusername = \"u\"\nheartbeat = {hb}\n"
            );
            let file_ok = Config::from_toml(&toml, "camgate.toml").is_ok();
            let v = hb.to_string();
            let env = build_with(&with(&[("HEARTBEAT", &v)]), None);
            assert_eq!(env.is_ok(), file_ok, "HEARTBEAT={hb}");
            if let Ok(Some((c, _))) = env {
                assert_eq!(cam(&c).heartbeat.get().as_secs(), hb);
            }
        }
        assert_eq!(
            err(&with(&[("HEARTBEAT", "abc")])),
            "environment: HEARTBEAT: \"abc\" is not a whole number of seconds from 1 to 60"
        );
        assert_eq!(
            err(&with(&[("HEARTBEAT", "1.5")])),
            "environment: HEARTBEAT: \"1.5\" is not a whole number of seconds from 1 to 60"
        );
        assert_eq!(
            err(&with(&[("HEARTBEAT", "61")])),
            "environment: HEARTBEAT: \"61\" is not a whole number of seconds from 1 to 60"
        );
        assert_eq!(
            err(&with(&[("HEARTBEAT", "0")])),
            "environment: HEARTBEAT: \"0\" is not a whole number of seconds from 1 to 60"
        );
    }

    #[test]
    fn backoff() {
        let c = ok(&with(&[("BACKOFF_BASE", "0.25"), ("BACKOFF_MAX", "5")])).0;
        assert_eq!((cam(&c).backoff_base.get().as_millis(), cam(&c).backoff_max.get().as_secs()), (250, 5));
        let c = ok(&with(&[("BACKOFF_BASE", "2s"), ("BACKOFF_MAX", "2m")])).0;
        assert_eq!((cam(&c).backoff_base.get().as_secs(), cam(&c).backoff_max.get().as_secs()), (2, 120));
        assert_eq!(
            err(&with(&[("BACKOFF_BASE", "abc")])),
            "environment: BACKOFF_BASE: \"abc\" is not a number of seconds (e.g. 1.5)"
        );
        assert!(err(&with(&[("BACKOFF_MAX", "-1")])).starts_with("environment: BACKOFF_MAX: \"-1\" is not"));
        assert_eq!(
            err(&with(&[("BACKOFF_BASE", "0")])),
            "environment: BACKOFF_BASE: \"0\": must be above zero and not above BACKOFF_MAX"
        );
        assert_eq!(
            err(&with(&[("BACKOFF_BASE", "120")])),
            "environment: BACKOFF_BASE: \"120\": must be above zero and not above BACKOFF_MAX"
        );
        assert_eq!(
            err(&with(&[("BACKOFF_MAX", "1")])),
            "environment: BACKOFF_MAX: \"1\" is below BACKOFF_BASE, which is 1s 500ms when not set"
        );
    }

    #[test]
    fn log_levels() {
        for (v, want) in [
            ("DEBUG", "debug"),
            ("info", "info"),
            ("WARNING", "warn"),
            ("ERROR", "error"),
            ("CRITICAL", "error"),
            ("NOTSET", "trace"),
            ("", "info"),
        ] {
            assert_eq!(ok(&with(&[("LOG_LEVEL", v)])).0.log.level, want, "{v}");
        }
        assert_eq!(
            err(&with(&[("LOG_LEVEL", "LOUD")])),
            "environment: LOG_LEVEL: \"LOUD\" is not a level (DEBUG, INFO, WARNING, ERROR, CRITICAL)"
        );
    }

    #[test]
    fn credentials() {
        let c = ok(&with(&[("CAM_USER", "  ")])).0;
        assert_eq!(cam(&c).username, "admin", "blank means the default");
        let e = err(&[("CAM_IP", "192.0.2.7"), ("CAM_USER", "op")]);
        assert!(
            e.starts_with("environment: CAM_PASS: is not set; set it to the password of the camera's user \"op\""),
            "{e}"
        );
        let (c, origin) = ok(&[("CAM_IP", "192.0.2.7"), ("CAM_PASS", "")]);
        assert!(cam(&c).password().is_empty());
        assert!(origin.notes.iter().any(|n| n.contains("CAM_PASS is empty")), "{:?}", origin.notes);
    }

    #[test]
    fn ca_bundle() {
        let e = err(&with(&[("USE_HTTPS", "true"), ("TLS_CA_BUNDLE", "/nonexistent/ca.pem")]));
        assert_eq!(e, "environment: TLS_CA_BUNDLE: \"/nonexistent/ca.pem\" is not a readable file");
        let (c, origin) = ok(&with(&[("TLS_CA_BUNDLE", "/nonexistent/ca.pem")]));
        assert!(cam(&c).ca_bundle.is_none(), "without HTTPS there is no certificate to check");
        assert!(origin.notes.iter().any(|n| n.contains("TLS_CA_BUNDLE is ignored")), "{:?}", origin.notes);
    }

    #[test]
    fn dotenv_values_and_lines() {
        let text = "# the camera\nexport CAM_IP=192.0.2.9\nCAM_USER = 'op'\nCAM_PASS=\"pw with spaces\" # comment\n\nHEARTBEAT=7\nOTHER_TOOL=1\nHEARTBEAT=9\n";
        let (c, origin) = build_with(&[], Some(text)).unwrap().unwrap();
        let d = cam(&c);
        assert_eq!(
            (d.host.as_str(), d.username.as_str(), d.password().expose()),
            ("192.0.2.9", "op", "pw with spaces")
        );
        assert_eq!(d.heartbeat.get().as_secs(), 9, "the last assignment wins, as in python-dotenv");
        assert!(origin.dotenv);
        assert_eq!(origin.sources(), "CAM_IP (.env:2), CAM_USER (.env:3), CAM_PASS (.env:4), HEARTBEAT (.env:8)");
        // A byte-order mark is not part of the first name.
        let (c, _) = build_with(&[], Some("\u{feff}CAM_IP=192.0.2.9\nCAM_PASS=x\n")).unwrap().unwrap();
        assert_eq!(cam(&c).host, "192.0.2.9");
    }

    #[test]
    fn the_environment_wins_over_dotenv() {
        let text = "CAM_IP=192.0.2.9\nCAM_PASS=from-file\nHEARTBEAT=7\nCODES=VideoMotion\n";
        let (c, origin) = build_with(&[("CAM_PASS", PASSWORD), ("HEARTBEAT", "3")], Some(text)).unwrap().unwrap();
        let d = cam(&c);
        assert_eq!(d.password().expose(), PASSWORD);
        assert_eq!(d.heartbeat.get().as_secs(), 3);
        assert_eq!(d.codes_param(), "[VideoMotion]", "variables only in the file still count");
        assert_eq!(d.host, "192.0.2.9");
        assert_eq!(
            origin.sources(),
            "CAM_IP (.env:1), CAM_PASS (environment), HEARTBEAT (environment), CODES (.env:4)"
        );
        assert!(origin.notes.iter().any(|n| n.contains("HEARTBEAT is set both")), "{:?}", origin.notes);
        // CAM_IP in the environment turns the mode on; the rest may come from the file.
        let (c, _) = build_with(&[("CAM_IP", "192.0.2.10")], Some(text)).unwrap().unwrap();
        assert_eq!((cam(&c).host.as_str(), cam(&c).password().expose()), ("192.0.2.10", "from-file"));
    }

    #[test]
    fn dotenv_errors_name_the_line_and_the_variable() {
        let text = "CAM_IP=192.0.2.9\nCAM_PASS=x\nHEARTBEAT=abc\n";
        let e = build_with(&[], Some(text)).map(|_| ()).unwrap_err();
        assert_eq!(e.to_string(), ".env:3: HEARTBEAT: \"abc\" is not a whole number of seconds from 1 to 60");
        let e = build_with(&[], Some("CAM_IP=192.0.2.9\nCAM_PASS=x\n\nHEARTBEAT=99\n")).map(|_| ()).unwrap_err();
        assert_eq!(e.to_string(), ".env:4: HEARTBEAT: \"99\" is not a whole number of seconds from 1 to 60");
        let e = build_with(&[], Some("CAM_IP=http://cam/\nCAM_PASS=x\n")).map(|_| ()).unwrap_err();
        assert!(e.to_string().starts_with(".env:1: CAM_IP: \"http://cam/\" is not a host name"), "{e}");
        // The environment's value is the one blamed.
        let e = build_with(&[("HEARTBEAT", "0")], Some(text)).map(|_| ()).unwrap_err();
        assert!(e.to_string().starts_with("environment: HEARTBEAT: \"0\""), "{e}");
    }

    #[test]
    fn a_broken_dotenv_is_an_error_only_when_it_is_for_camgate() {
        let broken = format!("CAM_IP=192.0.2.9\nCAM_PASS=\"{PASSWORD}\nHEARTBEAT=5\n");
        let e = build_with(&[], Some(&broken)).map(|_| ()).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with(".env:2: CAM_PASS: cannot parse this line"), "{s}");
        assert!(!s.contains("pw-7c1e9a") && !s.contains("secret"), "the line is never echoed: {s}");
        let e = build_with(&[("CAM_IP", "192.0.2.9")], Some("NAME=ok\n1BAD LINE\n")).map(|_| ()).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        // Another tool's .env, and no CAM_IP anywhere: not camgate's business.
        assert!(build_with(&[], Some("NAME=ok\n1BAD LINE\n")).unwrap().is_none());
    }

    #[test]
    fn unquoted_values_with_spaces_are_read_as_python_dotenv_reads_them() {
        let text = "CAM_IP=192.0.2.9\nCODES=[VideoMotion, CrossLineDetection]   # two codes\nCAM_PASS=a b\\c\"d\nHEARTBEAT=7 # seconds\n";
        let (c, origin) = build_with(&[], Some(text)).unwrap().unwrap();
        let d = cam(&c);
        assert_eq!(d.codes_param(), "[VideoMotion,CrossLineDetection]");
        assert_eq!(d.password().expose(), "a b\\c\"d");
        assert_eq!(d.heartbeat.get().as_secs(), 7);
        assert_eq!(origin.sources(), "CAM_IP (.env:1), CAM_PASS (.env:3), HEARTBEAT (.env:4), CODES (.env:2)");
        // A quoted value that is broken stays an error, at its own line.
        let e = build_with(&[], Some("CAM_IP=192.0.2.9\nCODES=Video Motion\nCAM_PASS='abc\n")).map(|_| ()).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.starts_with("CAM_PASS: cannot parse"), "{e}");
    }

    #[test]
    fn the_example_file_is_valid_and_documents_every_variable() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example");
        let text = std::fs::read_to_string(&path).unwrap();
        for name in VARIABLES {
            assert!(text.contains(&format!("{name}=")), "{name} is not in .env.example");
        }
        let (c, origin) = build_with(&[], Some(&text)).unwrap().unwrap();
        let d = cam(&c);
        assert_eq!((d.host.as_str(), d.port(), d.username.as_str()), ("192.168.1.108", 80, "admin"));
        assert_eq!((d.codes_param().as_str(), d.heartbeat.get().as_secs()), ("[All]", 5));
        let names: Vec<&str> = origin.variables.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["CAM_IP", "CAM_USER", "CAM_PASS"], "the others are commented out, at their defaults");
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dahua.md")).unwrap();
        for name in VARIABLES {
            assert!(doc.contains(&format!("| `{name}` |")), "{name} is not in docs/dahua.md");
        }
    }

    #[test]
    fn a_dollar_in_the_password_gets_a_note() {
        let (_, origin) = build_with(&[], Some("CAM_IP=192.0.2.9\nCAM_PASS=ab$cd\n")).unwrap().unwrap();
        assert!(origin.notes.iter().any(|n| n.contains(".env:2") && n.contains("single quotes")), "{:?}", origin.notes);
        assert!(origin.notes.iter().all(|n| !n.contains("ab")), "{:?}", origin.notes);
        let (c, origin) = build_with(&[], Some("CAM_IP=192.0.2.9\nCAM_PASS='ab$cd'\n")).unwrap().unwrap();
        assert_eq!(cam(&c).password().expose(), "ab$cd");
        assert!(origin.notes.is_empty(), "{:?}", origin.notes);
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_utf8_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let env = |name: &str| match name {
            "CAM_IP" => Some(OsString::from("192.0.2.7")),
            "CAM_PASS" => Some(OsString::from_vec(vec![b'p', 0xff])),
            _ => None,
        };
        let dir = tempfile::tempdir().unwrap();
        let e = from_sources(&env, dir.path()).map(|_| ()).unwrap_err();
        assert_eq!(e.to_string(), "environment: CAM_PASS: the value is not valid UTF-8");
    }

    #[test]
    fn the_password_is_never_shown() {
        let (c, origin) = ok(&with(&[("USE_HTTPS", "true"), ("VERIFY_TLS", "false")]));
        let debug = format!("{c:?} {origin:?}");
        let described = describe(&c, &ConfigOrigin::Environment(origin));
        let serialized = serde_json::to_string(&c).unwrap();
        for text in [&debug, &described, &serialized] {
            assert!(!text.contains(PASSWORD) && !text.contains("7c1e9a"), "{text}");
        }
        assert!(described.contains("environment variables"), "{described}");
        assert!(described.contains("192.0.2.7 (dahua) at https://192.0.2.7:443"), "{described}");
        assert!(described.contains("password set"), "{described}");
        assert!(described.contains("webhook:  off"), "{described}");
    }
}
