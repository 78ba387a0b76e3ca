//! Occupancy ("aforo"): live counts per zone, kept in the store's write transaction.
//!
//! Each `[[zone]]` has `enter` and `exit` matchers. The store's writer calls [`apply`] in
//! the transaction that inserts a batch, with the events of the batch whose key was new:
//! an event that is a duplicate (a re-fetch, an overlapping poll window, a device retry, a
//! replay after a restart) is never counted, and a count is never applied without its
//! event, or the other way round, since both commit or fail together.
//!
//! Per zone and *period* (see [`period`]) one row of `zone_counts` holds
//! `count`, `entries`, `exits`, `capacity`, the alarm state and `updated_at`. Per event
//! that matches a zone: `entries += enter`, `exits += exit`,
//! `count = max(0, count + enter - exit)` (without the `max` when `clamp_at_zero = false`).
//! An event that matches both lists counts as an entry and an exit (net 0).
//!
//! **Capacity.** When `count` reaches `capacity` a `counting` event with code
//! `capacity_exceeded` (state `start`) is stored; once it falls below `recover_below` % of
//! `capacity`, `capacity_recovered` (state `stop`). The alarm state is part of the row, so
//! hovering around the capacity stores one event per crossing of the hysteresis band, not
//! one per event, and a restart neither repeats nor loses one. These events are inserted in
//! the same transaction as the event that caused them: they are durable exactly when the
//! count they report is, and their key (`zone:<zone>:<period>:<code>:<seq of the cause>`)
//! makes them unique. Their source is the zone's name; they are never counted themselves.
//!
//! **Cost.** Without zones (and without the legacy mirror) the writer holds no
//! [`Occupancy`] and does nothing more than before. With zones, per batch: the matchers
//! run in memory (each field normalised once per event), then one read and one upsert per
//! (zone, period) the batch touched.

mod legacy;
pub mod period;
mod query;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use camgate_core::config::matcher::{EventView, any_matches};
use camgate_core::config::{Config, OccupancyConfig, Reset, ZoneConfig};
use camgate_core::{Counts, Event, Kind, State, Vendor};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use sqlx::SqliteConnection;

pub use query::{ZoneStatus, refresh_metrics};

/// The `code` of the event stored when a zone reaches its capacity.
pub const CAPACITY_EXCEEDED: &str = "capacity_exceeded";
/// The `code` of the event stored when it falls below `recover_below` again.
pub const CAPACITY_RECOVERED: &str = "capacity_recovered";

/// The zones and how to count them.
#[derive(Debug)]
pub struct Occupancy {
    zones: Vec<ZoneConfig>,
    timezone: TimeZone,
    legacy: Option<OccupancyConfig>,
}

impl Occupancy {
    /// `timezone` decides local days (`reset = "daily HH:MM"`).
    pub fn new(zones: Vec<ZoneConfig>, timezone: TimeZone, settings: OccupancyConfig) -> Self {
        let legacy = settings.legacy_tables.then_some(settings);
        Occupancy { zones, timezone, legacy }
    }

    /// The occupancy of a configuration; `None` when it has no zone and no legacy mirror,
    /// and the writer then skips all of this.
    pub fn from_config(c: &Config) -> Option<Arc<Occupancy>> {
        if c.zone.is_empty() && !c.occupancy.legacy_tables {
            return None;
        }
        let tz = TimeZone::get(&c.site.timezone).unwrap_or(TimeZone::UTC);
        Some(Arc::new(Occupancy::new(c.zone.clone(), tz, c.occupancy.clone())))
    }

    pub fn zones(&self) -> &[ZoneConfig] {
        &self.zones
    }

    pub fn timezone(&self) -> &TimeZone {
        &self.timezone
    }

    /// Whether the legacy tables are kept.
    pub fn legacy_tables(&self) -> bool {
        self.legacy.is_some()
    }
}

/// One `zone_counts` row while a batch is applied.
#[derive(Debug, Clone, Default)]
struct Row {
    count: i64,
    entries: i64,
    exits: i64,
    alarm: bool,
    last_seq: i64,
}

/// What a matching event does to a zone.
#[derive(Debug, Clone, Copy)]
struct Step {
    enter: bool,
    exit: bool,
}

impl Row {
    /// Apply one event; returns the capacity event code it caused, if any.
    fn step(&mut self, zone: &ZoneConfig, s: Step, seq: i64) -> Option<&'static str> {
        let (enter, exit) = (i64::from(s.enter), i64::from(s.exit));
        self.entries += enter;
        self.exits += exit;
        self.count += enter - exit;
        if zone.clamp_at_zero {
            self.count = self.count.max(0);
        }
        self.last_seq = seq;
        let capacity = zone.capacity? as f64;
        let count = self.count as f64;
        if !self.alarm && count >= capacity {
            self.alarm = true;
            Some(CAPACITY_EXCEEDED)
        } else if self.alarm && count * 100.0 < capacity * zone.recover_percent() {
            self.alarm = false;
            Some(CAPACITY_RECOVERED)
        } else {
            None
        }
    }
}

/// Rows per statement when loading or saving `zone_counts` (9 binds per saved row).
const ROWS_PER_STATEMENT: usize = 64;

/// Count `fresh` (events of the batch just inserted, with their seq, in seq order) in the
/// zones, inside the writer's transaction. Returns the capacity events to insert in the
/// same transaction.
///
/// Three steps, so that a batch costs a few statements however many zones and events it
/// touches: match every event in memory; read the (zone, period) rows concerned in one
/// query; apply the steps in seq order and write the changed rows back in one upsert.
pub(crate) async fn apply(
    occ: &Occupancy,
    conn: &mut SqliteConnection,
    fresh: &[(u64, &Event)],
    now: Timestamp,
) -> Result<Vec<Event>, sqlx::Error> {
    // (index in `fresh`, zone, period, step), in seq order.
    let mut steps: Vec<(usize, usize, String, Step)> = Vec::new();
    for (i, &(seq, event)) in fresh.iter().enumerate() {
        let view = EventView::new(event);
        for (zi, zone) in occ.zones.iter().enumerate() {
            let step = Step { enter: any_matches(&zone.enter, &view), exit: any_matches(&zone.exit, &view) };
            if !step.enter && !step.exit {
                continue;
            }
            match period::of_event(zone.reset, event, &occ.timezone) {
                Some(period) => steps.push((i, zi, period, step)),
                None => {
                    tracing::debug!(zone = %zone.name, key = %event.key, "event outside every scheduled window; not counted")
                }
            }
        }
        if let Some(legacy) = &occ.legacy
            && any_matches(&legacy.legacy_events, &view)
        {
            legacy::analysis_row(conn, event, seq, &occ.timezone).await?;
        }
    }
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: BTreeMap<(usize, String), Row> =
        steps.iter().map(|(_, zi, period, _)| ((*zi, period.clone()), Row::default())).collect();
    load(conn, occ, &mut rows).await?;
    let mut alarms = Vec::new();
    for (i, zi, period, step) in steps {
        let (seq, event) = fresh[i];
        let zone = &occ.zones[zi];
        let key = (zi, period);
        let row = rows.get_mut(&key).expect("every key was collected");
        if let Some(code) = row.step(zone, step, seq as i64) {
            alarms.push(capacity_event(zone, &key.1, row, code, event, seq, now));
        }
    }
    save(conn, occ, &rows, now).await?;
    if occ.legacy.is_some() {
        for ((zi, period), row) in &rows {
            if let Some(table) = &occ.zones[*zi].legacy_table {
                legacy::zone_row(conn, table, period, row.count).await?;
            }
        }
    }
    Ok(alarms)
}

/// Fill `rows` with what `zone_counts` holds for their keys (missing rows stay zero).
async fn load(
    conn: &mut SqliteConnection,
    occ: &Occupancy,
    rows: &mut BTreeMap<(usize, String), Row>,
) -> Result<(), sqlx::Error> {
    let keys: Vec<(usize, String)> = rows.keys().cloned().collect();
    let index: std::collections::HashMap<&str, usize> =
        occ.zones.iter().enumerate().map(|(i, z)| (z.name.as_str(), i)).collect();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "SELECT zone, period, count, entries, exits, alarm, last_seq FROM zone_counts WHERE (zone, period) IN (VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?,?)" } else { ",(?,?)" });
        }
        sql.push(')');
        let mut q = sqlx::query_as::<_, (String, String, i64, i64, i64, bool, i64)>(sqlx::AssertSqlSafe(sql));
        for (zi, period) in chunk {
            q = q.bind(occ.zones[*zi].name.as_str()).bind(period.as_str());
        }
        for (zone, period, count, entries, exits, alarm, last_seq) in q.fetch_all(&mut *conn).await? {
            if let Some(&zi) = index.get(zone.as_str())
                && let Some(row) = rows.get_mut(&(zi, period))
            {
                *row = Row { count, entries, exits, alarm, last_seq };
            }
        }
    }
    Ok(())
}

/// Write `rows` back to `zone_counts`.
async fn save(
    conn: &mut SqliteConnection,
    occ: &Occupancy,
    rows: &BTreeMap<(usize, String), Row>,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    let rows: Vec<_> = rows.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO zone_counts (zone, period, count, entries, exits, capacity, alarm, updated_at_us, last_seq) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?,?,?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?,?,?)" });
        }
        sql.push_str(
            " ON CONFLICT (zone, period) DO UPDATE SET count = excluded.count, entries = excluded.entries, \
             exits = excluded.exits, capacity = excluded.capacity, alarm = excluded.alarm, \
             updated_at_us = excluded.updated_at_us, last_seq = excluded.last_seq",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((zi, period), row) in chunk {
            let zone = &occ.zones[*zi];
            q = q
                .bind(zone.name.as_str())
                .bind(period.as_str())
                .bind(row.count)
                .bind(row.entries)
                .bind(row.exits)
                .bind(zone.capacity.map(|c| c as i64))
                .bind(row.alarm)
                .bind(now.as_microsecond())
                .bind(row.last_seq);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The `capacity_exceeded` / `capacity_recovered` event `cause` (stored under `seq`) led to.
fn capacity_event(
    zone: &ZoneConfig,
    period: &str,
    row: &Row,
    code: &'static str,
    cause: &Event,
    seq: u64,
    now: Timestamp,
) -> Event {
    let capacity = zone.capacity.unwrap_or(0);
    let mut e =
        Event::new(format!("zone:{}:{period}:{code}:{seq}", zone.name), &zone.name, Vendor::Generic, Kind::Counting);
    e.code = Some(code.to_owned());
    e.state = Some(if code == CAPACITY_EXCEEDED { State::Start } else { State::Stop });
    e.occurred_at = Some(period::event_time(cause));
    e.received_at = now.round(jiff::Unit::Millisecond).unwrap_or(now);
    e.counts = Some(Counts {
        enter: Some(row.entries.max(0) as u64),
        exit: Some(row.exits.max(0) as u64),
        total: Some(row.count.max(0) as u64),
    });
    e.data = Some(serde_json::json!({
        "zone": zone.name,
        "period": period,
        "count": row.count,
        "entries": row.entries,
        "exits": row.exits,
        "capacity": capacity,
        "percent": percent(row.count, capacity),
        "recover_below": zone.recover_percent(),
        "cause": { "seq": seq, "key": cause.key, "source": cause.source },
    }));
    e.schedule = match zone.reset {
        Reset::Schedule => Some(period.to_owned()),
        _ => cause.schedule.clone(),
    };
    e
}

/// One line about a zone, for `camgate check`.
pub fn describe(z: &ZoneConfig) -> String {
    let list = |m: &[camgate_core::config::matcher::Matcher]| {
        if m.is_empty() {
            "nothing".to_string()
        } else {
            m.iter().map(|m| format!("({m})")).collect::<Vec<_>>().join(" or ")
        }
    };
    let capacity =
        z.capacity.map_or_else(String::new, |c| format!(", capacity {c} (recovered below {}%)", z.recover_percent()));
    let clamp = if z.clamp_at_zero { "" } else { ", may go below 0" };
    let legacy = z.legacy_table.as_deref().map_or_else(String::new, |t| format!(", mirrored to {t}"));
    format!("{}: reset {}{capacity}{clamp}{legacy}; enter {}; exit {}", z.name, z.reset, list(&z.enter), list(&z.exit))
}

/// `count` in percent of `capacity`, to one decimal.
pub fn percent(count: i64, capacity: u64) -> f64 {
    if capacity == 0 {
        return 0.0;
    }
    (count as f64 * 1000.0 / capacity as f64).round() / 10.0
}

/// Create the legacy tables when they are kept (at store start, before the writer runs).
pub(crate) async fn prepare(occ: &Occupancy, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    if occ.legacy.is_some() {
        legacy::create_tables(conn, occ.zones.iter().filter_map(|z| z.legacy_table.as_deref())).await?;
    }
    Ok(())
}
