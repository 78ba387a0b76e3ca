-- camgate store, schema version 1.
-- Times are integer microseconds since the Unix epoch, UTC.

-- Every event, once per idempotency key. `seq` only grows (AUTOINCREMENT never reuses a value),
-- so sinks and API clients can page with "after this seq".
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    key            TEXT    NOT NULL UNIQUE,
    id             TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    vendor         TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    occurred_at_us INTEGER,
    received_at_us INTEGER NOT NULL,
    body           TEXT    NOT NULL  -- the event JSON, as consumers see it
);
CREATE INDEX events_received_at ON events (received_at_us);
CREATE INDEX events_source_seq ON events (source, seq);
CREATE INDEX events_kind_seq ON events (kind, seq);

-- Input that could not be parsed, kept verbatim.
CREATE TABLE dead_letters (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    source         TEXT    NOT NULL,
    received_at_us INTEGER NOT NULL,
    reason         TEXT    NOT NULL,
    payload        BLOB    NOT NULL
);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at_us);

-- The last seq each sink confirmed delivering.
CREATE TABLE sink_cursors (
    sink          TEXT    PRIMARY KEY,
    seq           INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL
);
