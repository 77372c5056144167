-- weft schema, version 3 (PostgreSQL): retention. The same columns and
-- meaning as migrations/sqlite/0003_retention.sql.
ALTER TABLE runs ADD COLUMN retain_ms BIGINT;
ALTER TABLE runs ADD COLUMN expire_ms BIGINT;
CREATE INDEX runs_ended ON runs (ended_ms) WHERE ended_ms IS NOT NULL;
CREATE INDEX runs_expire ON runs (expire_ms) WHERE expire_ms IS NOT NULL;
