//! Logging: `tracing` to the console (standard error) and to a size-rotated file.
//!
//! The level comes from `[log] level`; `RUST_LOG`, when set, wins. Secrets never reach a
//! log line because they are [`Secret`](camgate_core::config::Secret)s, whose formatting
//! prints `***`, and because request headers and bodies are never logged.

use std::io;
use std::path::Path;

use camgate_core::config::{LogConfig, LogFormat};
use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// UTC timestamps to the second, as in `2026-11-21T15:33:42Z`.
#[derive(Debug, Clone, Copy)]
struct UtcSeconds;

impl FormatTime for UtcSeconds {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let now = jiff::Timestamp::now();
        write!(w, "{}", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    }
}

/// Keeps the file writer alive; drop it last to flush the file.
#[must_use = "dropping the guard stops file logging"]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// The filter the configuration and `RUST_LOG` ask for.
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => {
            EnvFilter::try_new(&env).map_err(|e| format!("RUST_LOG={env:?} is not a valid log filter: {e}"))
        }
        _ => {
            let bad = || {
                format!(
                    "log.level {level:?} is not a level (off, error, warn, info, debug, trace) or a filter such as \"info,camgate=debug\""
                )
            };
            // EnvFilter takes a bare word as a target name; in the config a bare word must be a level.
            for part in level.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if !part.contains('=') && part.parse::<tracing_subscriber::filter::LevelFilter>().is_err() {
                    return Err(bad());
                }
            }
            EnvFilter::try_new(level).map_err(|e| format!("{}: {e}", bad()))
        }
    }
}

/// A writer that appends to `path` and rotates it past `max_size` bytes, keeping `keep`
/// rotated files (`camgate.log.1` is the newest).
pub fn rotating_file(path: &Path, max_size: usize, keep: usize) -> io::Result<FileRotate<AppendCount>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Open once here so that a path we cannot write is an error at start-up, not a silent
    // loss of every later line.
    std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok(FileRotate::new(
        path,
        AppendCount::new(keep.max(1)),
        ContentLimit::BytesSurpassed(max_size.max(1)),
        Compression::None,
        None,
    ))
}

/// Install the global subscriber.
pub fn init(config: &LogConfig) -> Result<LogGuard, String> {
    let console = config.console.then(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_timer(UtcSeconds)
            .with_target(false)
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()));
        match config.format {
            LogFormat::Text => layer.boxed(),
            LogFormat::Json => layer.json().flatten_event(true).boxed(),
        }
    });
    let (file, guard) = if config.file.as_os_str().is_empty() {
        (None, None)
    } else {
        let writer = rotating_file(&config.file, config.max_size.as_usize(), config.keep)
            .map_err(|e| format!("cannot write the log file {}: {e}", config.file.display()))?;
        let (nb, guard) = tracing_appender::non_blocking(writer);
        let layer =
            tracing_subscriber::fmt::layer().with_writer(nb).with_timer(UtcSeconds).with_target(false).with_ansi(false);
        let layer = match config.format {
            LogFormat::Text => layer.boxed(),
            LogFormat::Json => layer.json().flatten_event(true).boxed(),
        };
        (Some(layer), Some(guard))
    };
    tracing_subscriber::registry()
        .with(filter(&config.level)?)
        .with(console)
        .with(file)
        .try_init()
        .map_err(|e| format!("logging was already set up: {e}"))?;
    Ok(LogGuard { _file: guard })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rotation_keeps_at_most_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/camgate.log");
        let mut w = rotating_file(&path, 1024, 3).unwrap();
        let line = [b'x'; 99];
        for _ in 0..100 {
            w.write_all(&line).unwrap();
            w.write_all(b"\n").unwrap();
        }
        w.flush().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["camgate.log", "camgate.log.1", "camgate.log.2", "camgate.log.3"]);
        for n in &names {
            let size = std::fs::metadata(path.parent().unwrap().join(n)).unwrap().len();
            assert!(size <= 1024 + 100, "{n} is {size} bytes");
        }
    }

    #[test]
    fn rotation_through_tracing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("camgate.log");
        let writer = rotating_file(&path, 2048, 2).unwrap();
        let (nb, guard) = tracing_appender::non_blocking(writer);
        let subscriber = tracing_subscriber::fmt().with_writer(nb).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..500 {
                tracing::info!(i, "a line long enough to fill the file quickly, padding padding padding");
            }
        });
        drop(guard);
        let count = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(count, 3, "the current file and 2 rotated ones");
        let newest = std::fs::read_to_string(&path).unwrap();
        assert!(newest.contains("i=499"), "the newest line is in the current file");
    }

    #[test]
    fn bad_level_is_an_error() {
        // RUST_LOG may be set by whoever runs the tests; only check when it is not.
        if std::env::var_os("RUST_LOG").is_none() {
            assert!(filter("loud").is_err());
            assert!(filter("info,camgate=debug").is_ok());
        }
    }
}
