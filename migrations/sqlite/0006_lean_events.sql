-- weft schema, version 6: fewer indexes on the event log. Every event
-- paid for five secondary indexes; the two on step_id and on node were
-- the dearest (scattered inserts: ~6 of ~21 us of store CPU per event on
-- a 1,000,000-event store, weft-store-bench) and served only
-- `events --step S` / `--node N` without --run or --type. Those now
-- scan the log by id like `--text` does (they stop at a page of matches;
-- a filter that matches nothing reads the whole log: ~0.15 s (SQLite)
-- to ~0.35 s (PostgreSQL) per 1,000,000 events). A run's events
-- (events_run_seq), a type (events_type_ts) and a time range
-- (events_ts) keep their indexes.
DROP INDEX IF EXISTS events_step;
DROP INDEX IF EXISTS events_node;
