-- weft schema, version 3: retention. A run keeps its definition's "retain"
-- (NULL: the coordinator's --retain applies), and once it ends, when that
-- runs out (expire_ms = ended_ms + retain_ms). Both indexes let the
-- retention sweep and `weft runs delete --before` find the ended runs to
-- delete by a range scan instead of reading every run.
ALTER TABLE runs ADD COLUMN retain_ms INTEGER;
ALTER TABLE runs ADD COLUMN expire_ms INTEGER;
CREATE INDEX runs_ended ON runs(ended_ms) WHERE ended_ms IS NOT NULL;
CREATE INDEX runs_expire ON runs(expire_ms) WHERE expire_ms IS NOT NULL;
