//! Reading the counts: `GET /api/zones`, `camgate zones`, the `/metrics` gauges.

use jiff::Timestamp;
use serde::Serialize;

use super::{Occupancy, percent, period};
use crate::metrics::{Metrics, ZoneLabels};
use crate::store::{Store, StoreError};

/// One zone in one period, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneStatus {
    pub zone: String,
    /// `never`, `schedule` or `daily HH:MM`.
    pub reset: String,
    /// The period shown: the one asked for, else the current one. `null` for a `schedule`
    /// zone that has counted nothing yet.
    pub period: Option<String>,
    pub count: i64,
    pub entries: i64,
    pub exits: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// `count` in percent of `capacity`, to one decimal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Between `capacity_exceeded` and `capacity_recovered`.
    pub over_capacity: bool,
    /// When the period's row last changed; `null` when nothing was counted in it yet.
    pub updated_at: Option<Timestamp>,
    /// The seq of the last event counted in the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

type DbRow = (String, i64, i64, i64, bool, i64, i64);

const COLUMNS: &str = "period, count, entries, exits, alarm, updated_at_us, last_seq";

fn status(zone: &camgate_core::config::ZoneConfig, period: Option<String>, row: Option<DbRow>) -> ZoneStatus {
    let (count, entries, exits, alarm, updated, last) = match &row {
        Some((_, c, en, ex, a, u, l)) => (*c, *en, *ex, *a, Timestamp::from_microsecond(*u).ok(), Some(*l as u64)),
        None => (0, 0, 0, false, None, None),
    };
    ZoneStatus {
        zone: zone.name.clone(),
        reset: zone.reset.to_string(),
        period: row.map(|r| r.0).or(period),
        count,
        entries,
        exits,
        capacity: zone.capacity,
        percent: zone.capacity.map(|c| percent(count, c)),
        over_capacity: alarm,
        updated_at: updated,
        last_seq: last,
    }
}

impl Store {
    /// Every configured zone (or the one named `zone`) in `period`, or in its current period
    /// at `now`: for `never` zones `all`, for daily zones the period `now` falls in, for
    /// `schedule` zones the period counted in last. A period without counts shows zeros.
    pub async fn zones(
        &self,
        period: Option<&str>,
        zone: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<ZoneStatus>, StoreError> {
        let Some(occ) = self.occupancy() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for z in occ.zones().iter().filter(|z| zone.is_none_or(|n| n == z.name)) {
            let wanted = period.map(str::to_owned).or_else(|| period::current(z.reset, now, occ.timezone()));
            let row: Option<DbRow> = match &wanted {
                Some(p) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM zone_counts WHERE zone = ? AND period = ?"
                )))
                .bind(&z.name)
                .bind(p)
                .fetch_optional(self.pool())
                .await
                .map_err(StoreError::from_sqlx)?,
                None => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM zone_counts WHERE zone = ? ORDER BY updated_at_us DESC, last_seq DESC LIMIT 1"
                )))
                .bind(&z.name)
                .fetch_optional(self.pool())
                .await
                .map_err(StoreError::from_sqlx)?,
            };
            out.push(status(z, wanted, row));
        }
        Ok(out)
    }

    /// Every stored period of the configured zones (or of `zone`), the latest first.
    pub async fn zone_history(&self, zone: Option<&str>, limit: u32) -> Result<Vec<ZoneStatus>, StoreError> {
        let Some(occ) = self.occupancy() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for z in occ.zones().iter().filter(|z| zone.is_none_or(|n| n == z.name)) {
            let rows: Vec<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM zone_counts WHERE zone = ? ORDER BY updated_at_us DESC, last_seq DESC LIMIT ?"
            )))
            .bind(&z.name)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::from_sqlx)?;
            out.extend(rows.into_iter().map(|r| status(z, None, Some(r))));
        }
        Ok(out)
    }
}

/// Set the per-zone gauges to the current periods' counts (called when `/metrics` is
/// scraped, so a daily reset shows even before the first event of the new day).
pub async fn refresh_metrics(store: &Store, metrics: &Metrics) -> Result<(), StoreError> {
    for z in store.zones(None, None, Timestamp::now()).await? {
        let labels = ZoneLabels { zone: z.zone };
        metrics.zone_count.get_or_create(&labels).set(z.count);
        metrics.zone_entries.get_or_create(&labels).set(z.entries);
        metrics.zone_exits.get_or_create(&labels).set(z.exits);
        metrics.zone_over_capacity.get_or_create(&labels).set(i64::from(z.over_capacity));
        if let Some(c) = z.capacity {
            metrics.zone_capacity.get_or_create(&labels).set(c as i64);
        }
    }
    Ok(())
}

impl Occupancy {
    /// The zone called `name`.
    pub fn zone(&self, name: &str) -> Option<&camgate_core::config::ZoneConfig> {
        self.zones.iter().find(|z| z.name == name)
    }
}
