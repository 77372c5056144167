-- weft schema, version 7: delayed starts and cron schedules.
-- runs.start_at_ms: when a run in status 'scheduled' starts (run_scheduled;
-- recovery re-arms its timer from it). schedules: one row per cron
-- schedule, written only by the projections of the schedule_* events;
-- last_fire_ms is the last fire time decided (fired or skipped), written
-- in the same transaction as the fired run's run_queued, so a restart
-- never fires that time again.
ALTER TABLE runs ADD COLUMN start_at_ms INTEGER;
CREATE TABLE schedules (
  name         TEXT PRIMARY KEY,
  definition   TEXT NOT NULL,
  cron         TEXT NOT NULL,
  timezone     TEXT NOT NULL DEFAULT 'UTC',
  input        TEXT NOT NULL DEFAULT '{}',
  params       TEXT NOT NULL DEFAULT '{}',
  overlap      TEXT NOT NULL DEFAULT 'skip',
  catchup      TEXT NOT NULL DEFAULT 'one',
  paused       INTEGER NOT NULL DEFAULT 0,
  created_ms   INTEGER NOT NULL,
  last_fire_ms INTEGER,
  last_run_id  TEXT
);
