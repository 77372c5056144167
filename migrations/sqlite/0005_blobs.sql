-- weft schema, version 5: large values stored once. A value over 64 KiB of
-- JSON (a step's output, a run's input...) is kept here under the sha256 of
-- its text, in chunks of at most 1 MiB (whole UTF-8 characters); events and
-- projections hold a reference {"$blob": "sha256:HEX", "size", "preview"}.
-- blob_refs says which runs refer to which blobs ('' for cluster events),
-- so deleting runs deletes the blobs nothing else refers to.
CREATE TABLE blobs (
  hash       TEXT PRIMARY KEY,      -- "sha256:" + hex of the JSON text
  size       INTEGER NOT NULL,      -- bytes of the JSON text
  chunks     INTEGER NOT NULL,      -- rows in blob_chunks
  created_ms INTEGER NOT NULL
);
CREATE TABLE blob_chunks (
  hash TEXT NOT NULL,
  n    INTEGER NOT NULL,            -- 0, 1, ... in order
  body TEXT NOT NULL,
  PRIMARY KEY (hash, n)
);
CREATE TABLE blob_refs (
  hash   TEXT NOT NULL,
  run_id TEXT NOT NULL,             -- '' for events of no run
  PRIMARY KEY (hash, run_id)
);
CREATE INDEX blob_refs_run ON blob_refs(run_id);
