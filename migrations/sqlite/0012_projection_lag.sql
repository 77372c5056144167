-- weft schema, version 12: the projection lag (coordinator/store/store.c).
-- steps_from is the first event whose step row the coordinator may hold
-- back unwritten (0: none); a coordinator that starts projects the step
-- events from there again before it recovers the runs.
ALTER TABLE weft_database ADD COLUMN steps_from INTEGER NOT NULL DEFAULT 0;
