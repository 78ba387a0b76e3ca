-- camgate store, schema version 2: occupancy counts per zone and period.
-- Written by the store's writer in the same transaction as the events counted
-- (crates/camgate/src/occupancy), only for events whose key was new.

CREATE TABLE zone_counts (
    zone          TEXT    NOT NULL,            -- [[zone]] name
    period        TEXT    NOT NULL,            -- schedule window name, local date (daily) or 'all'
    count         INTEGER NOT NULL,            -- current occupancy (clamped at 0 unless configured otherwise)
    entries       INTEGER NOT NULL,            -- events that matched `enter` in this period
    exits         INTEGER NOT NULL,            -- events that matched `exit` in this period
    capacity      INTEGER,                     -- the capacity configured at the last update
    alarm         INTEGER NOT NULL DEFAULT 0,  -- 1 between capacity_exceeded and capacity_recovered
    updated_at_us INTEGER NOT NULL,            -- when the row last changed
    last_seq      INTEGER NOT NULL,            -- seq of the last event counted
    PRIMARY KEY (zone, period)
) WITHOUT ROWID;
CREATE INDEX zone_counts_zone_updated ON zone_counts (zone, updated_at_us);
