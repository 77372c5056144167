-- weft schema, version 2 (PostgreSQL): the secret values of runs, sealed.
-- The same table and meaning as migrations/sqlite/0002_run_secrets.sql.
CREATE TABLE run_secrets (
  run_id     TEXT PRIMARY KEY,
  box        TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);
