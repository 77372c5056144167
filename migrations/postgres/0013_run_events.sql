-- weft schema, version 13: a run's events are found through run_events
-- (coordinator/store/store.c, "the run index"), not an index on events.
-- The constraint events_run_seq (run_id, seq) was an index entry per
-- event, written in every transaction that had the run's events.
-- run_events is written in bulk instead, sorted by run, once the events
-- are older than the projection lag; run_events_from is the first event
-- not yet in it, and a query for a run reads run_events below it and the
-- events from it on.
CREATE TABLE run_events (
  run_id TEXT NOT NULL,
  id     BIGINT NOT NULL,               -- events.id
  PRIMARY KEY (run_id, id)
);
INSERT INTO run_events (run_id, id)
  SELECT run_id, id FROM events WHERE run_id IS NOT NULL
  ORDER BY run_id, id;  -- key order (SQLite: ~4x faster on 300,000 events)
ALTER TABLE weft_database ADD COLUMN run_events_from BIGINT NOT NULL DEFAULT 0;
UPDATE weft_database SET run_events_from =
  (SELECT COALESCE(MAX(id), 0) + 1 FROM events);
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_run_seq;
