//! `[schedule]`: scheduled event windows, from `[[schedule.window]]` tables and from the
//! legacy `eventos_programados.json` named by `file`.

use std::path::{Path, PathBuf};

use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, line_of_key};
use crate::schedule::{self, LocalWindow, Schedule, ScheduleError, serde_local};

/// `[schedule]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// The legacy schedule file (`{"YYYY-MM-DD": {"nombre", "hora_inicio", "hora_fin"}}`),
    /// read and checked when the configuration is loaded.
    pub file: Option<PathBuf>,
    /// Windows written in the configuration file; used together with `file`'s.
    pub window: Vec<WindowConfig>,
}

/// `[[schedule.window]]`: one window, as in the legacy file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// The local date the window starts on (`"YYYY-MM-DD"`).
    #[serde(with = "serde_local::date")]
    pub date: Date,
    /// What events in the window are tagged with.
    pub name: String,
    /// Local start (`"HH:MM"`).
    #[serde(with = "serde_local::time")]
    pub start: Time,
    /// Local end (`"HH:MM"`); a time not after `start` is on the next day.
    #[serde(with = "serde_local::time")]
    pub end: Time,
}

impl WindowConfig {
    pub fn to_local(&self) -> LocalWindow {
        LocalWindow { date: self.date, name: self.name.clone(), start: self.start, end: self.end }
    }
}

impl Config {
    /// The schedule: the windows of `schedule.file` (read now) and of
    /// `[[schedule.window]]`, resolved in `site.timezone`.
    ///
    /// [`Config::from_toml`] has already done the same once, so this fails only when the
    /// legacy file changed since.
    pub fn schedule(&self) -> Result<Schedule, ConfigError> {
        self.build_schedule("", "<configuration>")
    }

    /// Build the schedule; `text` and `file` are the configuration's, for error messages.
    pub(super) fn build_schedule(&self, text: &str, file: &str) -> Result<Schedule, ConfigError> {
        let s = &self.schedule;
        if s.file.is_none() && s.window.is_empty() {
            return Ok(Schedule::default());
        }
        let tz = jiff::tz::TimeZone::get(&self.site.timezone).map_err(|_| {
            ConfigError::for_key(text, file, "site.timezone", format!("unknown time zone {:?}", self.site.timezone))
        })?;
        let legacy = match &s.file {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(ConfigError::for_key(text, file, "schedule.file", "must not be empty"));
            }
            Some(path) => {
                // The one read of the file; parsing it is pure.
                let content = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::for_key(
                        text,
                        file,
                        "schedule.file",
                        format!("cannot read the schedule file {}: {e}", path.display()),
                    )
                })?;
                schedule::parse_legacy(&content).map_err(|e| ConfigError {
                    file: path.display().to_string(),
                    line: e.line,
                    key: e.key,
                    message: e.message,
                })?
            }
            None => Vec::new(),
        };
        let windows: Vec<LocalWindow> =
            legacy.iter().map(|e| e.window.clone()).chain(s.window.iter().map(WindowConfig::to_local)).collect();
        Schedule::new(&windows, &tz).map_err(|e| {
            // Where window `i` was written, and the key that the error is about.
            let at = |i: usize, field: &str| -> ConfigError {
                match legacy.get(i) {
                    Some(entry) => {
                        let legacy_field = match field {
                            "name" => Some("nombre"),
                            "start" => Some("hora_inicio"),
                            "end" => Some("hora_fin"),
                            _ => None,
                        };
                        ConfigError {
                            file: s.file.as_deref().unwrap_or(Path::new("")).display().to_string(),
                            line: entry.line,
                            key: Some(match legacy_field {
                                Some(f) => format!("{}.{f}", entry.key),
                                None => entry.key.clone(),
                            }),
                            message: String::new(),
                        }
                    }
                    None => {
                        let key = format!("schedule.window[{}].{field}", i - legacy.len());
                        ConfigError {
                            file: file.into(),
                            line: line_of_key(text, &key),
                            key: Some(key),
                            message: String::new(),
                        }
                    }
                }
            };
            let describe = |i: usize| -> String {
                let e = at(i, "date");
                match e.line {
                    Some(l) => format!("{}:{l}", e.file),
                    None => format!("{}: {}", e.file, e.key.unwrap_or_default()),
                }
            };
            let field = match &e {
                ScheduleError::NoName { .. } => "name",
                ScheduleError::Empty { .. } | ScheduleError::EmptyAfterDst { .. } => "end",
                ScheduleError::OutOfRange { .. } => "date",
                ScheduleError::Overlap { .. } => "start",
            };
            let mut out = at(e.index(), field);
            out.message = match &e {
                ScheduleError::Overlap { other, .. } => format!("{e}, written at {}", describe(*other)),
                _ => e.to_string(),
            };
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::from_toml(t, "camgate.toml")
    }

    fn legacy_file(json: &str) -> tempfile_lite::File {
        tempfile_lite::File::new(json)
    }

    /// A temporary file without a dev-dependency on `tempfile`.
    mod tempfile_lite {
        use super::*;

        pub struct File(pub PathBuf);

        impl File {
            pub fn new(content: &str) -> File {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!("camgate-schedule-{}-{n}.json", std::process::id()));
                std::fs::File::create(&path).and_then(|mut f| f.write_all(content.as_bytes())).unwrap();
                File(path)
            }
            pub fn toml_path(&self) -> String {
                self.0.display().to_string().replace('\\', "/")
            }
        }

        impl Drop for File {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn no_schedule_by_default() {
        let c = parse("").unwrap();
        assert!(c.schedule.file.is_none() && c.schedule.window.is_empty());
        assert!(c.schedule().unwrap().is_empty());
    }

    #[test]
    fn toml_windows() {
        let c = parse(
            "[site]\ntimezone = \"America/Bogota\"\n\n[[schedule.window]]\ndate = \"2026-05-17\"\nname = \"Concierto A\"\nstart = \"18:00\"\nend = \"02:00\"\n\n[[schedule.window]]\ndate = 2026-05-18\nname = \"Partido\"\nstart = 14:30:00\nend = \"17:00\"\n",
        )
        .unwrap();
        assert_eq!(c.schedule.window[1].start, Time::constant(14, 30, 0, 0));
        let s = c.schedule().unwrap();
        assert_eq!(s.len(), 2);
        // Bogota is UTC-5 all year.
        assert_eq!(s.windows()[0].start.to_string(), "2026-05-17T23:00:00Z");
        assert_eq!(s.windows()[0].end.to_string(), "2026-05-18T07:00:00Z");
        assert_eq!(s.windows()[1].start.to_string(), "2026-05-18T19:30:00Z");
    }

    #[test]
    fn toml_window_errors_name_key_and_line() {
        let head = "[site]\ntimezone = \"America/Bogota\"\n[[schedule.window]]\ndate = \"2026-05-17\"\nname = \"A\"\nstart = \"18:00\"\nend = \"20:00\"\n";
        for (window, key, line, needle) in [
            (
                "date = \"2026-02-30\"\nname = \"B\"\nstart = \"10:00\"\nend = \"11:00\"\n",
                "schedule.window[1].date",
                9,
                "2026-02-30",
            ),
            (
                "date = \"17/05/2026\"\nname = \"B\"\nstart = \"10:00\"\nend = \"11:00\"\n",
                "schedule.window[1].date",
                9,
                "YYYY-MM-DD",
            ),
            (
                "date = \"2026-05-18\"\nname = \"B\"\nstart = \"25:00\"\nend = \"11:00\"\n",
                "schedule.window[1].start",
                11,
                "25:00",
            ),
            (
                "date = \"2026-05-18\"\nname = \"B\"\nstart = \"10:00\"\nend = \"10h\"\n",
                "schedule.window[1].end",
                12,
                "10h",
            ),
            (
                "date = \"2026-05-18\"\nname = \"B\"\nstart = \"10:00\"\nend = \"24:00\"\n",
                "schedule.window[1].end",
                12,
                "00:00",
            ),
            (
                "date = \"2026-05-18\"\nname = \"B\"\nstart = \"10:00\"\nend = \"10:00\"\n",
                "schedule.window[1].end",
                12,
                "empty",
            ),
            (
                "date = \"2026-05-18\"\nname = \" \"\nstart = \"10:00\"\nend = \"11:00\"\n",
                "schedule.window[1].name",
                10,
                "name",
            ),
            (
                "date = \"2026-05-17\"\nname = \"B\"\nstart = \"19:00\"\nend = \"21:00\"\n",
                "schedule.window[1].start",
                11,
                "overlaps",
            ),
            // A window running past midnight overlaps one early the next day.
            (
                "date = \"2026-05-16\"\nname = \"B\"\nstart = \"23:00\"\nend = \"18:30\"\n",
                "schedule.window[1].start",
                11,
                "overlaps",
            ),
        ] {
            let text = format!("{head}[[schedule.window]]\n{window}");
            let e = parse(&text).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{window}: {e}");
            assert_eq!(e.line, Some(line), "{window}: {e}");
            assert!(e.message.contains(needle), "{window}: {e}");
        }
        let e = parse("[[schedule.window]]\ndate = \"2026-05-17\"\nname = \"A\"\nstart = \"18:00\"\n").unwrap_err();
        assert!(e.message.contains("end"), "{e}");
        let e = parse("[schedule]\nfiles = \"x.json\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        // Touching windows are fine.
        parse(&format!(
            "{head}[[schedule.window]]\ndate = \"2026-05-17\"\nname = \"B\"\nstart = \"20:00\"\nend = \"22:00\"\n"
        ))
        .unwrap();
    }

    #[test]
    fn the_overlap_message_names_both_windows() {
        let e = parse("[[schedule.window]]\ndate = \"2026-05-17\"\nname = \"A\"\nstart = \"18:00\"\nend = \"20:00\"\n[[schedule.window]]\ndate = \"2026-05-17\"\nname = \"B\"\nstart = \"19:00\"\nend = \"21:00\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "camgate.toml:9: key `schedule.window[1].start`: the window \"B\" (2026-05-17 19:00 - 2026-05-17 21:00) overlaps the window \"A\" (2026-05-17 18:00 - 2026-05-17 20:00), written at camgate.toml:2"
        );
    }

    #[test]
    fn legacy_file_is_read_and_checked_at_load() {
        let f = legacy_file(
            r#"{
  "2026-05-17": {"nombre": "Concierto A", "hora_inicio": "18:00", "hora_fin": "02:00"},
  "2026-05-19": {"nombre": "Partido", "hora_inicio": "14:00", "hora_fin": "17:00"}
}"#,
        );
        let text = format!(
            "[site]\ntimezone = \"America/Bogota\"\n[schedule]\nfile = \"{}\"\n[[schedule.window]]\ndate = \"2026-05-18\"\nname = \"Feria\"\nstart = \"09:00\"\nend = \"12:00\"\n",
            f.toml_path()
        );
        let c = parse(&text).unwrap();
        let s = c.schedule().unwrap();
        let names: Vec<&str> = s.windows().iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["Concierto A", "Feria", "Partido"]);

        // A TOML window overlapping a file entry: the error is at the TOML window and
        // names the file entry.
        let text = text.replace("09:00", "01:00");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("schedule.window[0].start"), "{e}");
        assert!(e.message.contains(&format!("written at {}:2", f.0.display())), "{e}");
    }

    #[test]
    fn legacy_file_errors_name_the_file_and_the_date() {
        let cases = [
            (
                "{\n  \"2026-05-17\": {\"nombre\": \"A\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"25:00\"}\n}",
                Some("2026-05-17.hora_fin"),
                Some(2),
                "25:00",
            ),
            (
                "{\n  \"2026-5-17\": {\"nombre\": \"A\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"20:00\"}\n}",
                Some("2026-5-17"),
                Some(2),
                "YYYY-MM-DD",
            ),
            (
                "{\n  \"2026-05-17\": {\"nombre\": \"A\", \"hora_inicio\": \"18:00\"}\n}",
                Some("2026-05-17"),
                Some(2),
                "hora_fin",
            ),
            (
                "{\n  \"2026-05-17\": {\"nombre\": \"A\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"18:00\"}\n}",
                Some("2026-05-17.hora_fin"),
                Some(2),
                "empty",
            ),
            (
                "{\n  \"2026-05-17\": {\"nombre\": \"A\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"03:00\"},\n  \"2026-05-18\": {\"nombre\": \"B\", \"hora_inicio\": \"02:00\", \"hora_fin\": \"05:00\"}\n}",
                Some("2026-05-18.hora_inicio"),
                Some(3),
                "overlaps",
            ),
            (
                "{\n  \"2026-05-17\": {\"nombre\": \"A\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"20:00\"\n}",
                None,
                Some(3),
                "EOF",
            ),
            ("[]", None, Some(1), "object keyed by date"),
        ];
        for (json, key, line, needle) in cases {
            let f = legacy_file(json);
            let e = parse(&format!("[schedule]\nfile = \"{}\"\n", f.toml_path())).unwrap_err();
            assert_eq!(e.file, f.0.display().to_string(), "{json}: {e}");
            assert_eq!(e.key.as_deref(), key, "{json}: {e}");
            assert_eq!(e.line, line, "{json}: {e}");
            assert!(e.message.contains(needle), "{json}: {e}");
        }
    }

    #[test]
    fn a_missing_legacy_file_points_at_the_key() {
        let e = parse("[site]\ntimezone = \"UTC\"\n[schedule]\nfile = \"/nonexistent/eventos_programados.json\"\n")
            .unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.key.as_deref()),
            ("camgate.toml", Some(4), Some("schedule.file")),
            "{e}"
        );
        assert!(e.message.contains("/nonexistent/eventos_programados.json"), "{e}");
    }
}
