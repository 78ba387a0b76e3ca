-- camgate store, schema version 4: the counted steps of zones with clamp_at_zero = true, so
-- that their count is max(0, ...) folded in event-time order whatever order events arrive in
-- (crates/camgate/src/occupancy). Written in the same transaction as the events counted.
-- One row per counted event per clamped zone; never pruned (like `events`).

CREATE TABLE zone_steps (
    zone        TEXT    NOT NULL,  -- [[zone]] name
    period      TEXT    NOT NULL,  -- as in zone_counts
    at_us       INTEGER NOT NULL,  -- the event's time (occurred_at, else received_at)
    seq         INTEGER NOT NULL,  -- the event's seq: orders steps of equal at_us
    delta       INTEGER NOT NULL,  -- enter - exit: 1, -1 or 0
    count_after INTEGER NOT NULL,  -- the clamped count after this step, in (at_us, seq) order
    PRIMARY KEY (zone, period, at_us, seq)
) WITHOUT ROWID;

-- The (at_us, seq) of the row's latest step. NULL when the row has no steps: a zone without
-- the clamp, or a row counted before this version (given a baseline step when next counted).
ALTER TABLE zone_counts ADD COLUMN step_at_us INTEGER;
ALTER TABLE zone_counts ADD COLUMN step_seq INTEGER;
