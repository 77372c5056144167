-- weft schema, version 9 (sched): run priorities and learned step
-- durations. A run's priority orders its ready steps and, while queued
-- behind a concurrency limit, its admission; recovery reads it back.
-- step_durations holds, per definition version and step, the count and
-- sum of every success's duration and the last 64 durations (a JSON
-- array, oldest first) the p50 and p95 are taken from; the engine
-- writes the changed rows with its group commit.
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE TABLE step_durations (
  definition TEXT NOT NULL,
  version    BIGINT NOT NULL,
  step_id    TEXT NOT NULL,
  count      BIGINT NOT NULL,
  sum_ms     BIGINT NOT NULL,
  samples    TEXT NOT NULL,
  PRIMARY KEY (definition, version, step_id)
);
