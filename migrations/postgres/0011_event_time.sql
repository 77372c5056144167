-- weft schema, version 11 (PostgreSQL): the same change as
-- migrations/sqlite/0011_event_time.sql, whose notes follow.
--
-- Every event paid for three secondary indexes; weft-store-bench on
-- 200,000 events (batches of 1,500) measured each at ~1 us of ~4 us of
-- store CPU per event. Two of them change here (README: "The store at
-- 1,000,000 events"):
--
-- * events_ts (ts_ms) goes. A time range now starts from event_time, one
--   row per 1,024 consecutive event ids (bucket = id / 1024) holding the
--   earliest and latest ts_ms among them, written once per bucket per
--   group commit. A query reads the buckets that overlap its range (a
--   thousand rows per million events), turns them into an id range and
--   still tests each event's ts_ms: exact also when the wall clock was set
--   back, as events_ts was. A bucket whose events retention deleted only
--   widens that id range.
-- * events_type_ts indexes the rare types only. step_ready,
--   step_dispatched, step_started and step_succeeded are ~all of a busy
--   log (four per step) and a query for one of them finds a page of
--   matches quickly in id order; every other type (failures, run and
--   cluster events) keeps its index. The WHERE below is the text
--   WEFT_EVENTS_TYPE_INDEXED in coordinator/store/store.h: a query must
--   repeat it for the planner to take the index (store_test checks it).
DROP INDEX IF EXISTS events_ts;
DROP INDEX IF EXISTS events_type_ts;
CREATE INDEX events_type_ts ON events (type, ts_ms) WHERE type <> 'step_ready' AND type <> 'step_dispatched' AND type <> 'step_started' AND type <> 'step_succeeded';
CREATE TABLE event_time (
  bucket BIGINT PRIMARY KEY,    -- id / 1024
  min_ts BIGINT NOT NULL,       -- earliest ts_ms of its events
  max_ts BIGINT NOT NULL        -- latest ts_ms of its events
);
INSERT INTO event_time (bucket, min_ts, max_ts)
  SELECT id / 1024, MIN(ts_ms), MAX(ts_ms) FROM events GROUP BY id / 1024;
