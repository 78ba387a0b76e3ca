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
//! that matches a zone: `entries += enter`, `exits += exit` (plain sums), and the count
//! moves by `enter - exit`. An event that matches both lists counts as an entry and an
//! exit (net 0).
//!
//! **The clamp, in event-time order.** With `clamp_at_zero = false`, `count = entries -
//! exits`, whatever the order events are stored in. With the clamp (the default) the count
//! is `count = max(0, count + enter - exit)` folded in *event-time* order:
//! [`period::event_time`] (device time, else received time), equal times by seq, whatever
//! order events arrive in. A poller can store an exit before the entry that preceded it (a
//! window fetched a cycle late after an error, the `lookback` overlap); folding in arrival
//! order would let the clamp swallow that exit and leave the count above the truth for
//! good. So clamped zones keep their steps in `zone_steps`, one row per counted event:
//! `(zone, period, at_us, seq)`, its `delta` and `count_after`, the count after it in that
//! order; the `zone_counts` row keeps the `(at_us, seq)` of its latest step. A step at or
//! after the latest is applied as it comes (fast path). Steps before it are *late*: the
//! batch's steps of the (zone, period) are sorted, and from the earliest late one on
//! everything is folded again, starting from the `count_after` of the step before it (0 if
//! none), rewriting the `count_after` that changed; the count is the last one. A row that
//! has counts but no steps (counted before these were kept, or while the zone had no
//! clamp) first gets a *baseline* step before every event holding its count, so counts
//! made then stay as they were.
//!
//! **Capacity.** When `count` reaches `capacity` a `counting` event with code
//! `capacity_exceeded` (state `start`) is stored; once it falls below `recover_below` % of
//! `capacity`, `capacity_recovered` (state `stop`). The alarm state is part of the row, so
//! hovering around the capacity stores one event per crossing of the hysteresis band, not
//! one per event, and a restart neither repeats nor loses one. It is decided on the row's
//! count as it changes: after each step that comes in order, and once after the late steps
//! of a batch, on the count they led to (the cause then being the late step stored last).
//! These events are inserted in the same transaction as the event that caused them: they
//! are durable exactly when the count they report is, and their key
//! (`zone:<zone>:<period>:<code>:<seq of the cause>`) makes them unique. Their source is the
//! zone's name; they are never counted themselves.
//!
//! **Cost.** Without zones (and without the legacy mirror) the writer holds no
//! [`Occupancy`] and does nothing more than before. With zones, per batch: the matchers
//! run in memory (each field normalised once per event), then one read and one upsert of
//! the (zone, period) rows the batch touched, and for clamped zones one multi-row upsert of
//! steps. A (zone, period) that got late steps costs one more read, of its steps from the
//! one before the earliest late step on, and a rewrite of those whose count changed: late
//! events are usually minutes late, so that is a short suffix, but an event whose device
//! clock is far behind rewrites every later step of its period. `zone_steps` grows by one
//! row (a few dozen bytes with the zone and period names) per counted event per clamped
//! zone, as `events` grows by one row per event, and is never pruned: a step can only be
//! dropped once no event can arrive before it, which nothing guarantees.

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
    /// `(at_us, seq)` of the latest step in event-time order, for a zone with the clamp;
    /// `None` without the clamp, and for a row counted before steps were kept.
    latest: Option<(i64, i64)>,
    /// Whether the row was in `zone_counts` before this batch.
    stored: bool,
}

/// What a matching event does to a zone.
#[derive(Debug, Clone, Copy)]
struct Step {
    enter: bool,
    exit: bool,
}

impl Step {
    fn delta(self) -> i64 {
        i64::from(self.enter) - i64::from(self.exit)
    }
}

/// A step of the batch: the event (`fresh[i]`), its time and seq.
#[derive(Debug, Clone, Copy)]
struct Counted {
    i: usize,
    at_us: i64,
    seq: i64,
    step: Step,
}

impl Counted {
    fn order(&self) -> (i64, i64) {
        (self.at_us, self.seq)
    }
}

impl Row {
    /// Add one event to the plain sums (whose order does not matter).
    fn tally(&mut self, c: &Counted) {
        self.entries += i64::from(c.step.enter);
        self.exits += i64::from(c.step.exit);
        self.last_seq = self.last_seq.max(c.seq);
    }

    /// The capacity event code the current count causes, if any, updating the alarm state.
    fn alarm_change(&mut self, zone: &ZoneConfig) -> Option<&'static str> {
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

/// A `zone_steps` row to insert, or whose `count_after` changed.
#[derive(Debug)]
struct StepRow<'a> {
    zone: &'a str,
    period: &'a str,
    at_us: i64,
    seq: i64,
    delta: i64,
    count_after: i64,
}

/// The time of the baseline step a clamped row gets when it has counts but no steps (counted
/// before schema version 4, or while the zone had no clamp): before every event.
const BASELINE_AT: i64 = i64::MIN;

/// Rows per statement when loading or saving `zone_counts` (11 binds per saved row).
const ROWS_PER_STATEMENT: usize = 64;
/// Rows per statement when writing `zone_steps` (6 binds per row).
const STEPS_PER_STATEMENT: usize = 256;

/// Count `fresh` (events of the batch just inserted, with their seq, in seq order) in the
/// zones, inside the writer's transaction. Returns the capacity events to insert in the
/// same transaction: per (zone, period), in the order the count went through them.
///
/// So that a batch costs a few statements however many zones and events it touches: match
/// every event in memory; read the (zone, period) rows concerned in one query; apply the
/// steps per (zone, period), reading stored steps only for the clamped ones that got a late
/// step; write the changed rows back in one upsert and the steps in another.
pub(crate) async fn apply(
    occ: &Occupancy,
    conn: &mut SqliteConnection,
    fresh: &[(u64, &Event)],
    now: Timestamp,
) -> Result<Vec<Event>, sqlx::Error> {
    // Per (zone, period), its steps in seq order.
    let mut by_key: BTreeMap<(usize, String), Vec<Counted>> = BTreeMap::new();
    for (i, &(seq, event)) in fresh.iter().enumerate() {
        let view = EventView::new(event);
        for (zi, zone) in occ.zones.iter().enumerate() {
            let step = Step { enter: any_matches(&zone.enter, &view), exit: any_matches(&zone.exit, &view) };
            if !step.enter && !step.exit {
                continue;
            }
            match period::of_event(zone.reset, event, &occ.timezone) {
                Some(period) => by_key.entry((zi, period)).or_default().push(Counted {
                    i,
                    at_us: period::event_time(event).as_microsecond(),
                    seq: seq as i64,
                    step,
                }),
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
    if by_key.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: BTreeMap<(usize, String), Row> = by_key.keys().map(|k| (k.clone(), Row::default())).collect();
    load(conn, occ, &mut rows).await?;
    let mut alarms: Vec<Event> = Vec::new();
    let mut steps: Vec<StepRow> = Vec::new();
    for (key, list) in &mut by_key {
        let zone = &occ.zones[key.0];
        let period = key.1.as_str();
        let row = rows.get_mut(key).expect("every key was collected");
        let mut alarm = |row: &mut Row, c: &Counted| {
            if let Some(code) = row.alarm_change(zone) {
                let (seq, event) = fresh[c.i];
                alarms.push(capacity_event(zone, period, row, code, event, seq, now));
            }
        };
        if !zone.clamp_at_zero {
            // count = entries - exits: the order does not matter; seq order for the alarms.
            row.latest = None;
            for c in list.iter() {
                row.tally(c);
                row.count += c.step.delta();
                alarm(row, c);
            }
            continue;
        }
        list.sort_unstable_by_key(Counted::order);
        if row.stored && row.latest.is_none() {
            // Counts without steps: they stay as they are, a baseline before every event.
            sqlx::query("DELETE FROM zone_steps WHERE zone = ? AND period = ?")
                .bind(zone.name.as_str())
                .bind(period)
                .execute(&mut *conn)
                .await?;
            steps.push(StepRow {
                zone: &zone.name,
                period,
                at_us: BASELINE_AT,
                seq: 0,
                delta: 0,
                count_after: row.count,
            });
            row.latest = Some((BASELINE_AT, 0));
        }
        // The steps before the row's latest one: late.
        let late = list.partition_point(|c| row.latest.is_some_and(|l| c.order() < l));
        if late > 0 {
            let (late, _) = list.split_at(late);
            refold(conn, &zone.name, period, late, row, &mut steps).await?;
            late.iter().for_each(|c| row.tally(c));
            // Decided once, on the count the late steps led to; the cause is the one that
            // arrived last.
            alarm(row, late.iter().max_by_key(|c| c.seq).expect("not empty"));
        }
        for c in &list[late..] {
            row.tally(c);
            row.count = (row.count + c.step.delta()).max(0);
            row.latest = Some(c.order());
            steps.push(StepRow {
                zone: &zone.name,
                period,
                at_us: c.at_us,
                seq: c.seq,
                delta: c.step.delta(),
                count_after: row.count,
            });
            alarm(row, c);
        }
    }
    save(conn, occ, &rows, now).await?;
    save_steps(conn, &steps).await?;
    if occ.legacy.is_some() {
        for ((zi, period), row) in &rows {
            if let Some(table) = &occ.zones[*zi].legacy_table {
                legacy::zone_row(conn, table, period, row.count).await?;
            }
        }
    }
    Ok(alarms)
}

/// Fold a clamped (zone, period) again from its earliest late step. `late` are the batch's
/// steps before the row's latest stored one, in (at_us, seq) order. Reads the stored steps
/// from the one before the first late step on (one query), pushes the late steps and the
/// stored ones whose `count_after` changed to `steps`, and sets `row.count` to the count
/// after the row's latest step.
async fn refold<'a>(
    conn: &mut SqliteConnection,
    zone: &'a str,
    period: &'a str,
    late: &[Counted],
    row: &mut Row,
    steps: &mut Vec<StepRow<'a>>,
) -> Result<(), sqlx::Error> {
    let first = late[0].order();
    // From the last step before `first` (or from `first` when there is none), ties included.
    let stored: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT at_us, seq, delta, count_after FROM zone_steps WHERE zone = ? AND period = ? AND at_us >= \
         COALESCE((SELECT at_us FROM zone_steps WHERE zone = ? AND period = ? AND at_us < ? \
         ORDER BY at_us DESC, seq DESC LIMIT 1), ?) ORDER BY at_us, seq",
    )
    .bind(zone)
    .bind(period)
    .bind(zone)
    .bind(period)
    .bind(first.0)
    .bind(first.0)
    .fetch_all(&mut *conn)
    .await?;
    let last_count = stored.last().map(|s| s.3);
    let mut old = stored.into_iter().peekable();
    let mut count = 0;
    while let Some((.., after)) = old.next_if(|s| (s.0, s.1) < first) {
        count = after;
    }
    let mut new = late.iter().peekable();
    loop {
        let take_new = match (new.peek(), old.peek()) {
            (None, None) => break,
            (Some(n), Some(o)) => n.order() < (o.0, o.1),
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if take_new {
            let n = new.next().expect("peeked");
            count = (count + n.step.delta()).max(0);
            steps.push(StepRow { zone, period, at_us: n.at_us, seq: n.seq, delta: n.step.delta(), count_after: count });
        } else {
            let (at_us, seq, delta, after) = old.next().expect("peeked");
            count = (count + delta).max(0);
            if count == after && new.peek().is_none() {
                // From here on the stored steps are folded from the same count as before.
                count = last_count.expect("an old step was read");
                break;
            }
            if count != after {
                steps.push(StepRow { zone, period, at_us, seq, delta, count_after: count });
            }
        }
    }
    row.count = count;
    Ok(())
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
    type Loaded = (String, String, i64, i64, i64, bool, i64, Option<i64>, Option<i64>);
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "SELECT zone, period, count, entries, exits, alarm, last_seq, step_at_us, step_seq FROM zone_counts \
             WHERE (zone, period) IN (VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?,?)" } else { ",(?,?)" });
        }
        sql.push(')');
        let mut q = sqlx::query_as::<_, Loaded>(sqlx::AssertSqlSafe(sql));
        for (zi, period) in chunk {
            q = q.bind(occ.zones[*zi].name.as_str()).bind(period.as_str());
        }
        for (zone, period, count, entries, exits, alarm, last_seq, at, seq) in q.fetch_all(&mut *conn).await? {
            if let Some(&zi) = index.get(zone.as_str())
                && let Some(row) = rows.get_mut(&(zi, period))
            {
                let latest = at.zip(seq);
                *row = Row { count, entries, exits, alarm, last_seq, latest, stored: true };
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
            "INSERT INTO zone_counts (zone, period, count, entries, exits, capacity, alarm, updated_at_us, last_seq, \
             step_at_us, step_seq) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?,?,?,?,?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?,?,?,?,?)" });
        }
        sql.push_str(
            " ON CONFLICT (zone, period) DO UPDATE SET count = excluded.count, entries = excluded.entries, \
             exits = excluded.exits, capacity = excluded.capacity, alarm = excluded.alarm, \
             updated_at_us = excluded.updated_at_us, last_seq = excluded.last_seq, \
             step_at_us = excluded.step_at_us, step_seq = excluded.step_seq",
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
                .bind(row.last_seq)
                .bind(row.latest.map(|l| l.0))
                .bind(row.latest.map(|l| l.1));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Insert the new steps into `zone_steps` and rewrite the `count_after` of the refolded ones.
async fn save_steps(conn: &mut SqliteConnection, steps: &[StepRow<'_>]) -> Result<(), sqlx::Error> {
    for chunk in steps.chunks(STEPS_PER_STATEMENT) {
        let mut sql = String::from("INSERT INTO zone_steps (zone, period, at_us, seq, delta, count_after) VALUES ");
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?)" });
        }
        sql.push_str(" ON CONFLICT (zone, period, at_us, seq) DO UPDATE SET count_after = excluded.count_after");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind(s.zone).bind(s.period).bind(s.at_us).bind(s.seq).bind(s.delta).bind(s.count_after);
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
