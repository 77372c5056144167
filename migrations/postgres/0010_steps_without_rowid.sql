-- weft schema, version 10: SQLite's steps table became WITHOUT ROWID (one
-- b-tree instead of two, see migrations/sqlite/0010). A PostgreSQL table
-- is a heap with its primary key index either way: nothing changes here;
-- the version stays the same on both backends.
SELECT 1;
