//! `[[zone]]` (occupancy counters) and `[occupancy]` (the legacy table mirror).
//!
//! The counting itself happens in the store's write transaction (the daemon's
//! `occupancy` module); these are the types, defaults and checks.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Time;
use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::matcher::Matcher;

/// The default `recover_below`, in percent of `capacity`.
pub const DEFAULT_RECOVER_BELOW: f64 = 95.0;

/// `[[zone]]`: an area whose occupancy camgate counts from the events that enter and leave it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Unique name; the source of the zone's own `capacity_*` events.
    pub name: String,
    /// How many the zone holds; reaching it stores a `capacity_exceeded` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// Events that add one (any matcher of the list).
    #[serde(default)]
    pub enter: Vec<Matcher>,
    /// Events that take one away.
    #[serde(default)]
    pub exit: Vec<Matcher>,
    /// When the count starts again from zero.
    #[serde(default)]
    pub reset: Reset,
    /// Never let the count go below zero (exits seen without their entry).
    #[serde(default = "yes")]
    pub clamp_at_zero: bool,
    /// After `capacity_exceeded`, `capacity_recovered` is stored once the count falls below
    /// this percentage of `capacity` (hysteresis). Default 95.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_below: Option<f64>,
    /// With `[occupancy] legacy_tables = true`: the legacy table (`evento`, `aforo`) that
    /// mirrors this zone's counts, e.g. `Aforo_parqueadero`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_table: Option<String>,
}

fn yes() -> bool {
    true
}

impl ZoneConfig {
    /// `recover_below` or its default, in percent.
    pub fn recover_percent(&self) -> f64 {
        self.recover_below.unwrap_or(DEFAULT_RECOVER_BELOW)
    }
}

/// When a zone's count starts again from zero. Each reset opens a new *period*; the
/// counts of every period are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reset {
    /// One period forever (`"all"`).
    #[default]
    Never,
    /// One period per scheduled window: the event's `schedule` name. Events outside every
    /// window (without `schedule`) are not counted in such a zone.
    Schedule,
    /// A new period every day at this local time, in the site's time zone.
    Daily(Time),
}

impl FromStr for Reset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("reset {s:?} is not \"never\", \"schedule\" or \"daily HH:MM\" (e.g. \"daily 06:00\")");
        match s {
            "never" => Ok(Reset::Never),
            "schedule" => Ok(Reset::Schedule),
            "daily" => Ok(Reset::Daily(Time::midnight())),
            _ => {
                let hhmm = s.strip_prefix("daily ").ok_or_else(bad)?.trim();
                let (h, m) = hhmm.split_once(':').ok_or_else(bad)?;
                let ok = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit());
                if !ok(h) || !ok(m) {
                    return Err(bad());
                }
                let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
                Time::new(h, m, 0, 0).map(Reset::Daily).map_err(|_| bad())
            }
        }
    }
}

impl fmt::Display for Reset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reset::Never => f.write_str("never"),
            Reset::Schedule => f.write_str("schedule"),
            Reset::Daily(t) => write!(f, "daily {:02}:{:02}", t.hour(), t.minute()),
        }
    }
}

impl<'de> Deserialize<'de> for Reset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Reset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `[occupancy]`: settings for all zones.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OccupancyConfig {
    /// Also keep the legacy monitor's tables, in the same transaction: each zone's
    /// `legacy_table` (`evento TEXT PRIMARY KEY, aforo INTEGER`) and `eventos_Analisis`.
    pub legacy_tables: bool,
    /// With `legacy_tables`: which new events get a row in `eventos_Analisis` (any matcher).
    pub legacy_events: Vec<Matcher>,
}

/// Table names camgate uses itself.
const RESERVED_TABLES: [&str; 8] = [
    "events",
    "dead_letters",
    "sink_cursors",
    "zone_counts",
    "zone_steps",
    "source_cursors",
    "eventos_analisis",
    "_sqlx_migrations",
];

/// Check what serde cannot in `[[zone]]` and `[occupancy]`. `err(key, message)` builds the
/// error for a dotted key. Zone names must differ from camera and channel names: both are
/// event sources.
pub(super) fn validate(config: &super::Config, err: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
    let (zones, occupancy) = (&config.zone, &config.occupancy);
    let taken: HashSet<&str> = config
        .camera
        .iter()
        .flat_map(|c| std::iter::once(c.name()).chain(c.channels().iter().map(String::as_str)))
        .collect();
    let mut names = HashSet::new();
    let mut tables = HashSet::new();
    for (i, z) in zones.iter().enumerate() {
        let key = |k: &str| format!("zone[{i}].{k}");
        if z.name.trim().is_empty() || z.name.trim() != z.name {
            return Err(err(&key("name"), format!("{:?} is not a zone name (empty or padded with spaces)", z.name)));
        }
        if !names.insert(z.name.as_str()) {
            return Err(err(&key("name"), format!("two zones are named {:?}; zone names must be unique", z.name)));
        }
        if taken.contains(z.name.as_str()) {
            return Err(err(
                &key("name"),
                format!(
                    "{:?} is also a camera or channel name; zone names are the source of the zone's own events \
                     and must differ",
                    z.name
                ),
            ));
        }
        if z.enter.is_empty() {
            return Err(err(
                &key("enter"),
                "list at least one matcher for the events that enter the zone, \
                 e.g. enter = [{ name = { contains = \"ENTRADA\" } }]"
                    .into(),
            ));
        }
        if z.capacity == Some(0) {
            return Err(err(&key("capacity"), "must be at least 1; remove the key for no capacity".into()));
        }
        if let Some(p) = z.recover_below {
            if z.capacity.is_none() {
                return Err(err(&key("recover_below"), "only used with `capacity`".into()));
            }
            if !(p > 0.0 && p <= 100.0) {
                return Err(err(&key("recover_below"), format!("{p} is not a percentage above 0 and at most 100")));
            }
        }
        if let Some(t) = &z.legacy_table {
            if !occupancy.legacy_tables {
                return Err(err(&key("legacy_table"), "only used with [occupancy] legacy_tables = true".into()));
            }
            let ident = t.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let lower = t.to_ascii_lowercase();
            if !ident || lower.starts_with("sqlite_") || RESERVED_TABLES.contains(&lower.as_str()) {
                return Err(err(
                    &key("legacy_table"),
                    format!(
                        "{t:?} is not a usable table name (letters, digits and `_`, not starting with a digit, \
                         not one of camgate's own tables)"
                    ),
                ));
            }
            if !tables.insert(lower) {
                return Err(err(&key("legacy_table"), format!("two zones use the legacy table {t:?}")));
            }
        }
    }
    if !occupancy.legacy_tables && !occupancy.legacy_events.is_empty() {
        return Err(err("occupancy.legacy_events", "only used with legacy_tables = true".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::from_toml(t, "camgate.toml")
    }

    const ZONE: &str = "[[zone]]\nname = \"Norte\"\nenter = [{ name = { contains = \"ENTRADA\" } }]\n";

    #[test]
    fn a_zone_with_defaults() {
        let c = parse(ZONE).unwrap();
        let z = &c.zone[0];
        assert_eq!((z.name.as_str(), z.capacity, z.reset, z.clamp_at_zero), ("Norte", None, Reset::Never, true));
        assert_eq!((z.enter.len(), z.exit.len(), z.recover_percent()), (1, 0, 95.0));
        assert!(!c.occupancy.legacy_tables);
    }

    #[test]
    fn zone_errors_name_key_and_line() {
        for (extra, key, line) in [
            ("capacity = 0", "zone[0].capacity", Some(4)),
            ("recover_below = 90", "zone[0].recover_below", Some(4)),
            ("capacity = 10\nrecover_below = 0", "zone[0].recover_below", Some(5)),
            ("capacity = 10\nrecover_below = 101", "zone[0].recover_below", Some(5)),
            ("reset = \"weekly\"", "zone[0].reset", Some(4)),
            ("legacy_table = \"Aforo\"", "zone[0].legacy_table", Some(4)),
            ("exit = [{ nombre = { contains = \"X\" } }]", "zone[0].exit[0].nombre", Some(4)),
            ("exit = [{ name = { regex = \"(\" } }]", "zone[0].exit[0].name", Some(4)),
            ("clamp_at_zero = \"yes\"", "zone[0].clamp_at_zero", Some(4)),
        ] {
            let e = parse(&format!("{ZONE}{extra}\n")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{extra}: {e}");
            assert_eq!(e.line, line, "{extra}: {e}");
        }
        let e = parse("[[zone]]\nname = \"Norte\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("zone[0].enter"), "{e}");
        let e = parse(&format!("{ZONE}{ZONE}")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("zone[1].name"), Some(5)), "{e}");
        let e = parse(&format!("[[camera]]\nname = \"Norte\"\nvendor = \"viewtron\"\naddress = \"192.0.2.1\"\n{ZONE}"))
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("zone[0].name"), "{e}");
        let e = parse("[occupancy]\nlegacy_events = [{ name = { contains = \"PUERTA\" } }]\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("occupancy.legacy_events"), Some(2)), "{e}");
    }

    #[test]
    fn legacy_tables() {
        let ok = format!("[occupancy]\nlegacy_tables = true\n{ZONE}legacy_table = \"Aforo_parqueadero\"\n");
        assert_eq!(parse(&ok).unwrap().zone[0].legacy_table.as_deref(), Some("Aforo_parqueadero"));
        for bad in ["1abc", "a-b", "events", "SQLITE_x", "eventos_Analisis", "Zone_Steps", "source_cursors", ""] {
            let t = format!("[occupancy]\nlegacy_tables = true\n{ZONE}legacy_table = \"{bad}\"\n");
            let e = parse(&t).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("zone[0].legacy_table"), "{bad}: {e}");
        }
    }

    #[test]
    fn reset_parses() {
        assert_eq!("never".parse::<Reset>(), Ok(Reset::Never));
        assert_eq!(" schedule ".parse::<Reset>(), Ok(Reset::Schedule));
        assert_eq!("daily".parse::<Reset>(), Ok(Reset::Daily(Time::midnight())));
        assert_eq!("daily 06:30".parse::<Reset>(), Ok(Reset::Daily(Time::constant(6, 30, 0, 0))));
        assert_eq!("daily 06:30".parse::<Reset>().unwrap().to_string(), "daily 06:30");
        for bad in ["weekly", "daily 6:30", "daily 24:00", "daily 06:60", "daily06:30", "daily 06:30:00", ""] {
            assert!(bad.parse::<Reset>().is_err(), "{bad:?}");
        }
    }
}
