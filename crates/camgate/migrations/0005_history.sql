-- camgate store, schema version 5: events kept for counting only.
-- An [[avigilon]] site's `history` filter decides which of its events are history; the
-- others are still inserted (their key makes a re-fetch a duplicate, and zones count them
-- in the same transaction, exactly once) with history = 0, and every reader of events
-- (the API, `camgate events`, the live stream, sinks, the head seq) skips them.
-- Adding a column with a constant default does not rewrite the table.

ALTER TABLE events ADD COLUMN history INTEGER NOT NULL DEFAULT 1;
