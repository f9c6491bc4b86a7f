-- Retention by age reads the log in seq order up to the first event young enough to keep; the index on
-- created_at, written with every event at ingest, goes.
DROP INDEX `events_created_idx`;
