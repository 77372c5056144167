-- weft schema, version 4: the database's identity. One row, a random id
-- drawn when the schema is made. The coordinator records path -> id in
-- $WEFT_HOME/databases, and refuses a recorded path that is missing or
-- holds another database, instead of silently starting an empty one.
CREATE TABLE weft_database (
  id         TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
INSERT INTO weft_database (id, created_ms) VALUES (lower(hex(randomblob(16))),
  CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
