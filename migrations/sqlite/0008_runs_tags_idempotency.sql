-- weft schema, version 8: run tags and idempotency keys (issue 14).
-- A run's tags are kept twice: as a JSON object on its row (what listings
-- show) and one row per tag in run_tags, indexed by (key, value), which
-- the filters `weft runs --tag k=v` and the bulk actions read. The
-- idempotency key of a run is looked up by key and creation time, newest
-- first, within the coordinator's --idempotency-window.
ALTER TABLE runs ADD COLUMN tags TEXT;
ALTER TABLE runs ADD COLUMN idempotency_key TEXT;
CREATE INDEX runs_idempotency ON runs (idempotency_key, created_ms)
  WHERE idempotency_key IS NOT NULL;
CREATE TABLE run_tags (
  run_id TEXT NOT NULL,
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE INDEX run_tags_kv ON run_tags (key, value, run_id);
