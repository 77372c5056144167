-- weft schema, version 4: the database's identity. One row, a random id
-- drawn when the schema is made. The coordinator records URL -> id in
-- $WEFT_HOME/databases, and refuses a recorded URL that leads to another
-- database (dropped and made again, another server) instead of silently
-- starting on an empty one.
CREATE TABLE weft_database (
  id         TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);
INSERT INTO weft_database (id, created_ms)
  VALUES (replace(gen_random_uuid()::text, '-', ''),
          (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
