-- weft schema, version 10: the steps projection keyed by its primary key
-- alone. A rowid table with a TEXT primary key is two b-trees (the rows,
-- and an index from (run_id, step_id) to the rowid), so every upsert of
-- a step's row at each group commit sought and wrote both; WITHOUT ROWID
-- stores the rows in the primary key's b-tree. Measured with weft-bench
-- W1 (10,002 steps, ~40,000 events, 10,002 rows written 2-3 times each):
-- the store thread's time per run ~375 -> ~345 ms. A step's output is
-- stored inline up to 64 KiB (larger ones are blobs), so rows stay small
-- enough for this layout. The upgrade copies the table once.
CREATE TABLE steps_new (
  run_id     TEXT NOT NULL,
  step_id    TEXT NOT NULL,
  status     TEXT NOT NULL,
  attempt    INTEGER NOT NULL DEFAULT 0,
  node       TEXT,
  output     TEXT,
  error      TEXT,
  started_ms INTEGER,
  ended_ms   INTEGER,
  PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
INSERT INTO steps_new (run_id, step_id, status, attempt, node, output,
  error, started_ms, ended_ms)
  SELECT run_id, step_id, status, attempt, node, output, error,
         started_ms, ended_ms FROM steps;
DROP TABLE steps;
ALTER TABLE steps_new RENAME TO steps;
