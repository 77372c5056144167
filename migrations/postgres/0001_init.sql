-- weft schema, version 1 (PostgreSQL): the append-only event log and its
-- projections. The same tables and meaning as migrations/sqlite/0001_init.sql.
CREATE TABLE events (
  id      BIGINT PRIMARY KEY,           -- global, consecutive, set by the engine
  run_id  TEXT,                         -- NULL for cluster events
  seq     BIGINT NOT NULL,              -- per-run sequence (0 for cluster events)
  ts_ms   BIGINT NOT NULL,              -- wall clock, ms since the epoch
  type    TEXT NOT NULL,
  step_id TEXT,
  attempt INTEGER NOT NULL DEFAULT 0,
  node    TEXT,
  data    TEXT NOT NULL DEFAULT '{}',   -- JSON object, as the engine wrote it
  -- NULL run ids (cluster events) never collide: NULLs are distinct.
  CONSTRAINT events_run_seq UNIQUE (run_id, seq)
);
CREATE INDEX events_type_ts ON events (type, ts_ms);
CREATE INDEX events_ts ON events (ts_ms);
CREATE INDEX events_step ON events (step_id);
CREATE INDEX events_node ON events (node);

CREATE TABLE definitions (
  name       TEXT NOT NULL,
  version    BIGINT NOT NULL,
  body       TEXT NOT NULL,               -- the definition JSON
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (name, version)
);

CREATE TABLE runs (
  id          TEXT PRIMARY KEY,
  definition  TEXT NOT NULL,
  version     BIGINT NOT NULL,
  status      TEXT NOT NULL,
  input       TEXT NOT NULL DEFAULT '{}',
  params      TEXT NOT NULL DEFAULT '{}',
  output      TEXT,
  error       TEXT,
  created_ms  BIGINT NOT NULL,
  started_ms  BIGINT,
  ended_ms    BIGINT,
  steps_total INTEGER NOT NULL DEFAULT 0,
  steps_done  INTEGER NOT NULL DEFAULT 0,
  last_seq    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX runs_status ON runs (status, id);
CREATE INDEX runs_definition ON runs (definition, id);

CREATE TABLE steps (
  run_id     TEXT NOT NULL,
  step_id    TEXT NOT NULL,
  status     TEXT NOT NULL,
  attempt    INTEGER NOT NULL DEFAULT 0,
  node       TEXT,
  output     TEXT,
  error      TEXT,
  started_ms BIGINT,
  ended_ms   BIGINT,
  PRIMARY KEY (run_id, step_id)
);

CREATE TABLE workers (
  name       TEXT PRIMARY KEY,
  address    TEXT NOT NULL,
  step_types TEXT NOT NULL DEFAULT '[]',  -- JSON array
  slots      INTEGER NOT NULL DEFAULT 0,
  state      TEXT NOT NULL,
  joined_ms  BIGINT NOT NULL,
  seen_ms    BIGINT NOT NULL
);
