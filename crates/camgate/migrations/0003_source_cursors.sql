-- camgate store, schema version 3: where each polling source has got to.
-- One row per (source, key): the Avigilon source keeps one per camera, the value being the
-- end of the last poll window whose events are committed (ISO 8601, the ACC server's clock).
-- Written by the store's writer only after the window's events were committed, so a crash
-- never moves a cursor past events that are not stored.

CREATE TABLE source_cursors (
    source        TEXT    NOT NULL,   -- the configured source name ([[avigilon]] name)
    key           TEXT    NOT NULL,   -- what the cursor is for (a camera id)
    value         TEXT    NOT NULL,   -- the position, in the source's own terms
    updated_at_us INTEGER NOT NULL,   -- when it last changed
    PRIMARY KEY (source, key)
) WITHOUT ROWID;
