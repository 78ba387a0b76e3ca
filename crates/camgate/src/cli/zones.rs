//! `camgate zones`: print occupancy from the store, without the daemon (or beside it).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::occupancy::ZoneStatus;

#[derive(Debug, clap::Args)]
pub struct ZonesArgs {
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Show this period (a schedule window's name, a local date YYYY-MM-DD for daily
    /// zones, `all` for zones that never reset) instead of the current one.
    #[arg(long, conflicts_with = "history")]
    period: Option<String>,
    /// Only this zone.
    #[arg(long)]
    zone: Option<String>,
    /// Every stored period, the latest first (at most --limit per zone).
    #[arg(long)]
    history: bool,
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn zones(args: ZonesArgs) -> ExitCode {
    let (config, _) = match super::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if config.zone.is_empty() {
        eprintln!("error: the configuration has no [[zone]]; see docs/config.md");
        return ExitCode::from(2);
    }
    if let Some(z) = &args.zone
        && !config.zone.iter().any(|c| &c.name == z)
    {
        let names: Vec<&str> = config.zone.iter().map(|z| z.name.as_str()).collect();
        eprintln!("error: no zone named {z:?}; the configured zones are {names:?}");
        return ExitCode::from(2);
    }
    let rt = match super::store_runtime(&config) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let (store, writer) = match super::open_store(&config).await {
            Ok(s) => s,
            Err(code) => return code,
        };
        let zone = args.zone.as_deref();
        let rows = if args.history {
            store.zone_history(zone, args.limit).await
        } else {
            store.zones(args.period.as_deref(), zone, jiff::Timestamp::now()).await
        };
        writer.close().await;
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let mut out = std::io::stdout().lock();
        let text = if args.json {
            rows.iter().map(|r| serde_json::to_string(r).unwrap_or_default() + "\n").collect()
        } else {
            table(&rows)
        };
        // A reader that went away (a pipe to `head`) is not an error.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        ExitCode::SUCCESS
    })
}

/// The human table: one line per zone and period.
pub fn table(rows: &[ZoneStatus]) -> String {
    let head = ["zone", "period", "count", "entries", "exits", "capacity", "percent", "updated"];
    let lines: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.zone.clone(),
                r.period.clone().unwrap_or_else(|| "-".into()),
                r.count.to_string(),
                r.entries.to_string(),
                r.exits.to_string(),
                r.capacity.map_or_else(|| "-".into(), |c| c.to_string()),
                r.percent
                    .map_or_else(|| "-".into(), |p| format!("{p:.1}%{}", if r.over_capacity { " FULL" } else { "" })),
                r.updated_at.map_or_else(|| "never".into(), |t| t.to_string()),
            ]
        })
        .collect();
    let mut widths = head.map(str::len);
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |cells: &[String]| {
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let last = i + 1 == cells.len();
            let pad = if last { 0 } else { w - c.chars().count() };
            // Text columns left, numbers right.
            let line = if matches!(i, 0 | 1 | 7) {
                format!("{c}{}", " ".repeat(pad))
            } else {
                format!("{}{c}", " ".repeat(pad))
            };
            out.push_str(&line);
            out.push_str(if last { "\n" } else { "  " });
        }
    };
    push(&head.map(String::from));
    for l in &lines {
        push(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let row = ZoneStatus {
            zone: "Parqueadero Norte".into(),
            reset: "schedule".into(),
            period: Some("Concierto A".into()),
            count: 12,
            entries: 20,
            exits: 8,
            capacity: Some(500),
            percent: Some(2.4),
            over_capacity: false,
            updated_at: Some("2026-05-17T20:01:02Z".parse().unwrap()),
            last_seq: Some(7),
        };
        let empty = ZoneStatus {
            zone: "Sur".into(),
            period: None,
            count: 0,
            entries: 0,
            exits: 0,
            capacity: None,
            percent: None,
            updated_at: None,
            last_seq: None,
            ..row.clone()
        };
        let t = table(&[row, empty]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "zone               period       count  entries  exits  capacity  percent  updated");
        assert_eq!(
            lines[1],
            "Parqueadero Norte  Concierto A     12       20      8       500     2.4%  2026-05-17T20:01:02Z"
        );
        assert_eq!(lines[2], "Sur                -                0        0      0         -        -  never");
    }
}
