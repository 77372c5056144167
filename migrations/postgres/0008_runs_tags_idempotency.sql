-- weft schema, version 8 (PostgreSQL): run tags and idempotency keys. The
-- same columns and meaning as migrations/sqlite/0008_runs_tags_idempotency.sql.
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
