//! The legacy monitor's tables, kept up to date for the reports and dashboards that read
//! them (`[occupancy] legacy_tables = true`; shapes from the Avigilon doc §6.3):
//!
//! - one table per zone with a `legacy_table` name, e.g.
//!   `Aforo_parqueadero (evento TEXT PRIMARY KEY, aforo INTEGER NOT NULL)`: one row per
//!   period (`evento`: the schedule window's name for `reset = "schedule"`, as the legacy
//!   monitor keyed it; the local date for daily zones; `all` otherwise) with the zone's
//!   current count (`aforo`, clamped as configured);
//! - `eventos_Analisis`: one row per new event that matches `[occupancy] legacy_events`,
//!   with the legacy columns (`analyticEventName`, `area`, `activity`, `cameraId`,
//!   `timestamp` as local site time `YYYY-MM-DD HH:MM:SS.fff`, `nombre_evento` = the
//!   schedule window) and `event_seq`, the event's seq in camgate's store.
//!
//! Both are written in the store's transaction, only for events whose key was new. The
//! tables are created at start when missing (their names come from the configuration, so
//! they are not part of the migrations). camgate overwrites `aforo`; nothing else should
//! write these tables.

use camgate_core::Event;
use camgate_core::config::matcher::Field;
use jiff::tz::TimeZone;
use sqlx::SqliteConnection;

/// `name` as a quoted SQL identifier (validated as `[A-Za-z_][A-Za-z0-9_]*` by the config).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(super) async fn create_tables<'a>(
    conn: &mut SqliteConnection,
    zone_tables: impl Iterator<Item = &'a str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS eventos_Analisis (\
            id                INTEGER PRIMARY KEY AUTOINCREMENT,\
            analyticEventName TEXT,\
            area              TEXT,\
            activity          TEXT,\
            cameraId          TEXT,\
            timestamp         TEXT NOT NULL,\
            nombre_evento     TEXT,\
            event_seq         INTEGER NOT NULL UNIQUE)",
    )
    .execute(&mut *conn)
    .await?;
    for t in zone_tables {
        let sql = format!("CREATE TABLE IF NOT EXISTS {} (evento TEXT PRIMARY KEY, aforo INTEGER NOT NULL)", ident(t));
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn zone_row(
    conn: &mut SqliteConnection,
    table: &str,
    evento: &str,
    aforo: i64,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO {} (evento, aforo) VALUES (?, ?) ON CONFLICT (evento) DO UPDATE SET aforo = excluded.aforo",
        ident(table)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(evento).bind(aforo).execute(&mut *conn).await?;
    Ok(())
}

pub(super) async fn analysis_row(
    conn: &mut SqliteConnection,
    e: &Event,
    seq: u64,
    tz: &TimeZone,
) -> Result<(), sqlx::Error> {
    let data = |k: &str| e.data.as_ref().and_then(|d| d.get(k)).and_then(|v| v.as_str());
    let local = super::period::event_time(e).to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S%.3f").to_string();
    sqlx::query(
        "INSERT INTO eventos_Analisis (analyticEventName, area, activity, cameraId, timestamp, nombre_evento, event_seq) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_seq) DO NOTHING",
    )
    .bind(Field::Name.raw(e))
    .bind(Field::Area.raw(e))
    .bind(Field::Activity.raw(e))
    .bind(data("cameraId").unwrap_or(&e.source))
    .bind(local)
    .bind(e.schedule.as_deref())
    .bind(seq as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
