// store: the durable event log and its projections, behind an ops table.
//
// A backend (store_sqlite.c, store_pg.c) supplies transactions,
// cached prepared statements and row iteration. Everything above that —
// migrations, the projections each event implies, the queries — lives once
// in store.c, so both backends behave the same by construction.
#ifndef WEFT_STORE_H
#define WEFT_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "blob.h"
#include "err.h"
#include "event.h"
#include "map.h"

// One audit event as stored. Strings are borrowed for the call.
typedef struct weft_event {
	uint64_t             id;      // global, consecutive
	const char          *run_id;  // NULL for cluster events
	uint64_t             seq;     // per-run sequence, 0 for cluster events
	int64_t              ts_ms;   // wall clock
	enum weft_event_type type;    // stored as weft_event_name(type)
	const char          *step_id; // NULL when none
	uint32_t             attempt;
	const char          *node;      // NULL when none
	json_t              *data;      // object (borrowed); NULL when empty
	const char          *data_text; // data as compact JSON (borrowed)
	// run_queued only: the run's clear input and params, sealed
	// (common/seal.h), kept in run_secrets; NULL when it has no secret.
	const char          *secrets;
	// The values data refers to by {"$blob": ...} (blob.h), written in
	// the event's transaction (borrowed); NULL when none.
	const weft_blob     *blobs;
	size_t               nblobs;
} weft_event;

typedef struct weft_store weft_store;

// weft_store_row_fn receives one result row: ncols text cells (NULL = SQL
// NULL). Return non-zero to stop early.
typedef int (*weft_store_row_fn)(void *arg, int ncols, const char **cols);

typedef struct weft_store_ops {
	const char *name; // "sqlite" or "postgres"
	// '?' placeholders; the backend rewrites them as it needs.
	weft_err (*exec)(weft_store *s, const char *sql, const char **params,
	    int nparams);
	weft_err (*query)(weft_store *s, const char *sql, const char **params,
	    int nparams, weft_store_row_fn fn, void *arg);
	// Runs a whole script (no params), for migrations.
	weft_err (*script)(weft_store *s, const char *sql);
	weft_err (*begin)(weft_store *s);
	weft_err (*commit)(weft_store *s);
	void (*rollback)(weft_store *s);
	// Serializes schema changes between coordinators (no-op for sqlite).
	weft_err (*lock_schema)(weft_store *s, bool lock);
	// Optional: announces a batch to listeners inside its transaction,
	// just before commit (postgres: NOTIFY weft_events).
	weft_err (*notify)(weft_store *s, const weft_event *evs, size_t n);
	// Optional: the condition "events.data contains the text ?" in this
	// backend's dialect, case-insensitive; NULL = "data LIKE ?".
	const char *data_like;
	// Optional: checks, without a transaction, that the store is still
	// the one opened (sqlite: the path leads to the same file);
	// WEFT_EUNAVAIL with error set when not.
	weft_err (*check)(weft_store *s);
	void (*close)(weft_store *s);
} weft_store_ops;

// Embedded first in every backend's struct.
struct weft_store {
	const weft_store_ops *ops;
	char                  error[512]; // last backend error text
	char                  url[256];   // for logs, without secrets
	bool                  ok;         // the last operation worked
	// Statistics (engine thread only).
	uint64_t commits;       // batches committed
	uint64_t events;        // events committed
	uint64_t commit_us_sum; // total commit time
	// The first event id of a batch whose commit failed without an
	// answer (the connection broke): it may be durable after all. Its
	// plan for the held rows (store.c) waits for the answer: applied if
	// the batch is found committed, dropped if not.
	uint64_t         unsure_id;
	bool             unsure_flush; // the same for a flush of held rows
	struct lag_plan *unsure_plan;
	uint64_t         found_id; // such a batch found committed, not yet
	                           // given again: not written twice
	// The projection lag (store.c): step rows held back, "run/step" ->
	// row. Writers only, one thread at a time, as the appends.
	weft_map      lag;
	int64_t       lag_ms;     // 0 (the default): no row is held
	int64_t       lag_oldest; // monotonic ms the oldest held row was held
	uint64_t      lag_mark;   // weft_database.steps_from as committed
	uint64_t      lag_writes; // step rows written (statistics)
	atomic_size_t lag_held;   // rows held, for other threads to read
	// The run index (store.c): run_events has a run's events below
	// index_from; from there on a query for a run scans the events.
	// The entries are written in bulk once the store has been idle a
	// while, or by an append once the first event not in it is older
	// than WEFT_STORE_INDEX_LAGS lags (or WEFT_STORE_INDEX_MAX wait).
	uint64_t index_from;    // weft_database.run_events_from as committed
	int64_t  index_oldest;  // monotonic ms the first waiting event was
	                        // written (0: none waits)
	uint64_t index_pending; // events from index_from on (about)
	int64_t  last_append_ms; // monotonic ms the last append committed
};

// The ids of a run's events, as SQL taking the run id, the mark
// (weft_store_index_mark) and the run id again: those in run_events, and
// those from the mark on that name the run.
#define WEFT_RUN_EVENT_IDS                                                 \
	"(SELECT id FROM run_events WHERE run_id = ? UNION ALL SELECT id "  \
	"FROM events WHERE id >= ? AND run_id = ?)"

// The ids of a run's last event (at most one below the mark, and those
// waiting), with the same three parameters: a run's ids and sequence
// numbers grow together, so the largest seq among them is its last.
#define WEFT_RUN_LAST_EVENT_IDS                                            \
	"(SELECT MAX(id) FROM run_events WHERE run_id = ? UNION ALL SELECT " \
	"id FROM events WHERE id >= ? AND run_id = ?)"

// weft_store_index_mark reads weft_database.run_events_from, as stored,
// into mark (decimal, for the queries above; an older mark than the
// latest only makes a query scan more). A parameter, not a subquery:
// PostgreSQL's planner guessed a subquery's mark at a third of the log
// and planned a parallel scan for the events after it, ~10 ms of worker
// start-up on every query for a run (a run's 403 events on a 1,000,000
// event store: 14.4 -> 5.1 ms).
weft_err weft_store_index_mark(weft_store *s, char mark[24]);

// weft_store_index_copy copies the events that wait for the run index
// into run_events and moves weft_database.run_events_from past them, in
// the caller's transaction; *to is the new mark. Once that transaction
// has committed, weft_store_index_moved(s, to) tells s.
weft_err weft_store_index_copy(weft_store *s, uint64_t *to);
void     weft_store_index_moved(weft_store *s, uint64_t to);

// The most events that wait for the run index: a query for a run scans
// at most about this many events beyond run_events.
#define WEFT_STORE_INDEX_MAX 100000

// Under load with no idle moment, events wait for the run index up to
// this many projection lags (10 s by default): the copy is maintenance,
// done when the store is idle, and a copy in a busy batch delays it.
#define WEFT_STORE_INDEX_LAGS 10

// weft_store_open opens url: "sqlite:PATH" (or a bare path, or
// "sqlite::memory:"), or PostgreSQL: "postgres://...", "postgresql://..."
// or a libpq conninfo ("host=... dbname=..."). Applies the migrations
// compiled in unless readonly (migrations_dir is unused). A readonly
// PostgreSQL store is a second connection to the same database whose
// transactions are read-only. On failure *out is NULL and err (errlen)
// says why; err and s->url never hold a password.
weft_err weft_store_open(weft_store **out, const char *url,
    const char *migrations_dir, bool readonly, char *err, size_t errlen);

// weft_store_close closes s (NULL is fine).
void weft_store_close(weft_store *s);

// weft_store_append writes events (n, borrowed) and their projections in
// one transaction. On failure nothing is written, and the same batch may be
// given again: WEFT_EUNAVAIL means the database is out of reach for now
// (the backend reconnects on the next call). A batch whose commit was cut
// off is looked up before it is written again, so retrying never doubles.
// On PostgreSQL every committed batch also sends, in its transaction,
// NOTIFY weft_events with the payload {"first": first event id, "last":
// last event id, "runs": [the batch's distinct run ids, in order]} and
// "truncated": true when the run list was cut to keep it under 8000 bytes.
weft_err weft_store_append(weft_store *s, const weft_event *evs, size_t n);

// Learned step durations to write (sched, engine/learn.c): one row per
// (definition, version, step), its count, sum and last durations (a JSON
// array of integers, oldest first). The strings are the rows' own.
typedef struct weft_dur_row {
	char    *definition;
	int64_t  version;
	char    *step;
	uint64_t count;
	int64_t  sum_ms;
	char    *samples;
} weft_dur_row;

typedef struct weft_dur_rows {
	weft_dur_row *rows;
	size_t        n;
} weft_dur_rows;

// weft_dur_rows_free frees rows and what they own (NULL is fine).
void weft_dur_rows_free(weft_dur_rows *rows);

// weft_store_append_with is weft_store_append that also upserts, in the
// same transaction, the learned step durations rows (borrowed; NULL none)
// into step_durations.
weft_err weft_store_append_with(weft_store *s, const weft_event *evs,
    size_t n, const weft_dur_rows *durations);

// The projection lag: a step's row in the steps table is written in the
// transaction of the event that ends it, always; with a lag set, the
// transitions on the way (ready, dispatched, running, retry_wait) may be
// held back up to lag_ms and merged, so that a step that goes ready, dispatched,
// running, succeeded over four batches costs one row write, not four.
// The events are written at once as ever: a held row is a late copy of
// what they say. An append writes the held rows older than the lag,
// those of the runs it ends, and all of them when it retries a run or
// more than WEFT_STORE_LAG_MAX are held. Each append records in
// weft_database.steps_from the first event whose step row may be held.
#define WEFT_STORE_LAG_MAX 100000

// weft_store_lag_set sets s's lag (0: none; rows held stay held until the
// next append or flush).
void weft_store_lag_set(weft_store *s, int64_t lag_ms);

// The events waiting for the run index are also due once no append has
// committed for this long (ms): an idle store catches up then, rather
// than in the first batch of the next burst. (Held step rows wait for
// their lag: a step still running would be written twice.)
#define WEFT_STORE_IDLE_MS 50

// weft_store_lag_due tells whether a held row is older than the lag at
// monotonic time now_ms, and sets *next_ms to when the next held row or
// the run index's waiting events come due (monotonic; 0 when nothing
// waits).
bool weft_store_lag_due(const weft_store *s, int64_t now_ms, int64_t *next_ms);

// weft_store_index_due tells whether the run index's waiting events are
// due at monotonic time now_ms: idle for WEFT_STORE_IDLE_MS, or the first
// older than WEFT_STORE_INDEX_LAGS lags.
bool weft_store_index_due(const weft_store *s, int64_t now_ms);

// weft_store_lag_flush writes every held row, and copies the run index's
// waiting events when they are due, in a transaction of its own (nothing
// held or due: nothing done). For a reader that must see every step event
// so far, for an idle engine past the lag, and before a stop.
weft_err weft_store_lag_flush(weft_store *s);

// weft_store_index_flush copies the run index's waiting events, when they
// are due, in a transaction of its own; held rows stay held. For an idle
// engine.
weft_err weft_store_index_flush(weft_store *s);

// weft_store_lag_replay projects again, from the events, the step rows a
// previous process held when it stopped without writing them (its
// steps_from; a crash): call it before reading the steps table for
// recovery. *rows (may be NULL) is set to the rows it wrote.
weft_err weft_store_lag_replay(weft_store *s, size_t *rows);

// weft_store_load_durations calls fn for every stored step_durations row:
// definition, version, step_id, count, sum_ms, samples (text cells).
weft_err weft_store_load_durations(weft_store *s, weft_store_row_fn fn,
    void *arg);

// weft_store_check tells whether s is still the database it opened (a
// SQLite file deleted or replaced under us is not): WEFT_EUNAVAIL with
// s->error saying what happened when not. Cheap (a stat); call it from
// the thread that owns s, periodically.
weft_err weft_store_check(weft_store *s);

// weft_store_id copies the database's identity (a random id drawn by
// migration 0004, 32 hex characters) into out (len >= 33).
weft_err weft_store_id(weft_store *s, char *out, size_t len);

// weft_store_max_event_id returns the largest event id (0 when empty).
weft_err weft_store_max_event_id(weft_store *s, uint64_t *out);

// weft_store_run_last_seq returns the last per-run sequence number of run
// id (0 when it has no event).
weft_err weft_store_run_last_seq(weft_store *s, const char *id, uint64_t *out);

// weft_store_runs_by_status calls fn(arg, 2, {status, count}) for each run
// status the store holds.
weft_err weft_store_runs_by_status(
    weft_store *s, weft_store_row_fn fn, void *arg);

// Queries; each returns a new JSON value in *out (the control reply body).
//
// Every page is bounded in rows (limit, at most WEFT_QUERY_MAX_LIMIT) and
// in bytes (about WEFT_QUERY_BYTES of JSON, at least one row): a reply
// always fits the wire's 16 MiB. A page cut short of what matches says
// where the next one starts (next: the cursor, "" when this is the last).
#define WEFT_QUERY_MAX_LIMIT 10000u
#define WEFT_QUERY_BYTES (8u * 1024u * 1024u)
#define WEFT_EVENTS_DEFAULT_LIMIT 1000u
#define WEFT_RUNS_DEFAULT_LIMIT 100u
#define WEFT_STEPS_DEFAULT_LIMIT 1000u
// A run listing's error is cut to this many bytes (whole characters).
#define WEFT_RUNS_ERROR_MAX 200u
// A status answer leaves the definition's body out above this size.
#define WEFT_STATUS_DEF_MAX (4u * 1024u * 1024u)

// The event log's time index (migration 0011): event_time holds, per
// WEFT_EVENT_TIME_BUCKET consecutive event ids, their earliest and latest
// ts_ms; a time range is read as the id range of the buckets it overlaps.
#define WEFT_EVENT_TIME_BUCKET 1024

// The types events_type_ts indexes (migration 0011's partial index): not
// the four every step has. A query repeats this text, exactly, for the
// planners to take the index.
#define WEFT_EVENTS_TYPE_INDEXED                                     \
	"type <> 'step_ready' AND type <> 'step_dispatched' AND type <> " \
	"'step_started' AND type <> 'step_succeeded'"

typedef struct weft_events_filter {
	const char  *run_id, *step_id, *node, *text; // NULL = any
	const char **types; // NULL or ntypes names
	size_t       ntypes;
	uint64_t     after;  // id cursor
	int64_t      since_ms, until_ms; // 0 = open
	uint32_t     limit;  // 0 = default 1000; above the maximum: the maximum
	char        *next;   // out, or NULL: the next page's after ("" = none)
	size_t       next_len;
} weft_events_filter;

// Most tag filters one query takes (each is "key=value", all must match).
#define WEFT_RUNS_TAGS_MAX 8

typedef struct weft_runs_filter {
	const char *status, *definition, *before; // NULL = any
	uint32_t    limit;                        // 0 = default 100
	int64_t     since_ms, until_ms;           // created; 0 = open
	// Tags the runs must all carry: ntags (at most WEFT_RUNS_TAGS_MAX)
	// keys and their values (borrowed).
	const char *const *tag_keys;
	const char *const *tag_values;
	size_t      ntags;
	char       *next; // out, or NULL: the next page's before ("" = none)
	size_t      next_len;
} weft_runs_filter;

// Which steps a status answer carries: the definition's steps in order,
// those after the step named after, at most limit of them and about bytes
// of JSON.
typedef struct weft_steps_page {
	const char *after;  // a step id; NULL = from the first step
	uint32_t    limit;  // 0 = WEFT_STEPS_DEFAULT_LIMIT
	size_t      bytes;  // 0 = no byte bound
	char       *next;   // out, or NULL: the next page's after ("" = none)
	size_t      next_len;
	// out, or NULL: a new object {step id: status} of every step of the
	// run, on the page or not (what "waiting_for" reads of dependencies).
	json_t    **statuses;
} weft_steps_page;

// weft_store_get_run sets *out to run id with every step (internal use:
// retry). WEFT_ENOENT when there is no such run.
weft_err weft_store_get_run(weft_store *s, const char *id, json_t **out);

// weft_store_get_run_page is weft_store_get_run with one page (pg,
// borrowed) of the steps. WEFT_EINVAL (s->error says) when pg->after
// names no step of the run's definition.
weft_err weft_store_get_run_page(
    weft_store *s, const char *id, weft_steps_page *pg, json_t **out);

// weft_store_last_step_data sets *out (new object) to {step_id: data} of
// the last event of type (a name, borrowed) per step of run id: what
// waiting_for reads of step_retry_scheduled (until_ms).
weft_err weft_store_last_step_data(
    weft_store *s, const char *id, const char *type, json_t **out);
weft_err weft_store_list_runs(
    weft_store *s, const weft_runs_filter *f, json_t **out);
weft_err weft_store_list_events(
    weft_store *s, const weft_events_filter *f, json_t **out);

// weft_store_match_runs sets *out to a new array of {id, status} of at
// most limit runs matching f (its status, definition, times and tags; not
// its before, limit or next) whose ids sort after `after` ("" or NULL:
// from the first), in id order (oldest first): one chunk of a bulk
// action (engine/bulk.c).
weft_err weft_store_match_runs(weft_store *s, const weft_runs_filter *f,
    const char *after, uint32_t limit, json_t **out);

// weft_store_find_idempotent copies into id (WEFT_ID_LEN + 1 bytes) the
// newest run created at or after since_ms with the idempotency key `key`
// (borrowed), and its creation time into *created_ms. WEFT_ENOENT when
// there is none. An indexed lookup (runs_idempotency, migration 0008).
weft_err weft_store_find_idempotent(weft_store *s, const char *key,
    int64_t since_ms, char *id, size_t idlen, int64_t *created_ms);

// weft_store_definition_versions sets *out to {"name", "versions":
// [{"version", "created_ms", "hash"}]} (oldest first) for the definition
// called name; with version > 0, to {"name", "version", "created_ms",
// "hash", "definition"} of that version. "hash" is "sha256:HEX" of the
// stored body. WEFT_ENOENT (s->error says what) when there is no such
// name or version.
weft_err weft_store_definition_versions(
    weft_store *s, const char *name, uint32_t version, json_t **out);
weft_err weft_store_list_definitions(weft_store *s, json_t **out);

// weft_store_get_definition returns the body text (malloc'd) of name at
// version (0 = latest) and the version found.
weft_err weft_store_get_definition(weft_store *s, const char *name,
    int64_t version, char **body, int64_t *found);

// weft_store_get_secrets sets *box to the sealed secrets of run id
// (malloc'd; free()), or NULL when the run has none.
weft_err weft_store_get_secrets(weft_store *s, const char *id, char **box);

// weft_store_unfinished_runs returns, for recovery, an array of at most
// limit runs not in a terminal state whose ids sort after `after`
// (borrowed; "" from the start), in id order: {id, definition, version,
// status, input, params, created_ms, last_seq, steps: [{step_id, status,
// attempt, node, output, error}]}. The next page starts after the last
// id; an array shorter than limit is the last page. It writes: the
// events that wait for the run index are copied in first (the writer's
// store only).
weft_err weft_store_unfinished_runs(
    weft_store *s, const char *after, size_t limit, json_t **out);

// weft_store_list_schedules sets *out (new array) to every cron schedule
// (engine/cron.c), by name: {name, definition, cron, timezone, input,
// params, overlap, catchup, paused, created_ms, last_fire_ms,
// last_run_id}. Read at open: the engine keeps them in memory.
weft_err weft_store_list_schedules(weft_store *s, json_t **out);

// weft_store_u64_row is a row function storing the first cell as a number
// into the uint64_t at arg.
int weft_store_u64_row(void *arg, int ncols, const char **cols);

// Backend constructors (store_sqlite.c, store_pg.c).
weft_err weft_store_sqlite_open(weft_store **out, const char *path,
    bool readonly, char *err, size_t errlen);
weft_err weft_store_pg_open(weft_store **out, const char *conninfo,
    bool readonly, char *err, size_t errlen);

// weft_store_sqlite_class maps a SQLite result code (extended or not):
// WEFT_EUNAVAIL for what the environment causes and time may fix (a full
// disk, I/O errors, a read-only file, a lock, a file that cannot be
// opened or is not a database any more), WEFT_ESTORE for a refusal of
// the statement itself (a constraint, a type, SQL).
weft_err weft_store_sqlite_class(int rc);

// weft_store_is_pg reports whether url names a PostgreSQL database.
bool weft_store_is_pg(const char *url);

// weft_store_redact writes url (borrowed) into out (len) as it may be
// logged: PostgreSQL as postgres://user@host:port/db, never a password.
void weft_store_redact(const char *url, char *out, size_t len);
weft_err weft_store_pg_redact(const char *conninfo, char *out, size_t len);

// ---- large values (store_blob.c, blob.h) ----

// weft_store_blob_get sets *text (malloc'd; free()) and *len to the JSON
// text of the blob hash ("sha256:HEX"). WEFT_ENOENT when there is none.
weft_err weft_store_blob_get(
    weft_store *s, const char *hash, char **text, size_t *len);

// weft_store_blob_chunk sets *text (malloc'd; free()) to chunk n of the
// blob hash, *size to the blob's whole size in bytes and *nchunks to its
// number of chunks (each at most WEFT_BLOB_CHUNK bytes). WEFT_ENOENT when
// there is no such blob or chunk.
weft_err weft_store_blob_chunk(weft_store *s, const char *hash, uint32_t n,
    char **text, uint64_t *size, uint32_t *nchunks);

// weft_store_blob_resolve replaces obj[key] (obj borrowed), when it is a
// blob reference, with the value it names. WEFT_OK when there is nothing
// to replace; WEFT_ENOENT / WEFT_ESTORE (s->error says) when the blob is
// missing or unreadable. Recovery calls it wherever it restores a value.
weft_err weft_store_blob_resolve(weft_store *s, json_t *obj, const char *key);

// weft_store_output sets *out (a new reference) to the output the steps
// projection holds for step_id of run_id, or, with step_id NULL, the run's
// own output: the value, a blob reference, or null when there is none yet.
// WEFT_ENOENT (s->error says which) when there is no such run or step.
weft_err weft_store_output(
    weft_store *s, const char *run_id, const char *step_id, json_t **out);

// ---- retention (store_retain.c) ----

// Which ended runs weft_store_delete_runs deletes: those that ended before
// before_ms, and those whose own retain (the definition's "retain") ran
// out before expire_ms. Only runs in a terminal state are ever deleted.
typedef struct weft_delete_filter {
	int64_t     before_ms;  // ended before this, wall ms; 0 = none by age
	bool        own_retain; // before_ms spares runs with their own retain
	int64_t     expire_ms;  // whose own retain ran out by then; 0 = none
	const char *status;     // one terminal status, or NULL for all
	// skip (NULL = none) says a run must stay: the engine holds it.
	bool (*skip)(void *arg, const char *id);
	void       *skip_arg;
	uint32_t    max_runs;   // most runs per call; 0 = 500
	uint32_t    max_events; // most events per call, estimated; 0 = 2500
} weft_delete_filter;

// weft_store_delete_runs deletes, in one transaction, a batch of the runs
// f selects (oldest first) with their steps, events and sealed secrets,
// and when it deleted any, writes audit (borrowed; its data object gets
// "count") in the same transaction. audit's id must be above every id in
// the store: the audit event, never deleted itself (it has no run), keeps
// the store's largest event id at or above every id ever used, so the
// engine's next id after a restart (weft_store_max_event_id) never reuses
// the id of a deleted event. *count is how many runs went; *more says a
// next call may find more. A run bigger than max_events goes alone in its
// call. Engine thread only (the write connection).
weft_err weft_store_delete_runs(weft_store *s, const weft_delete_filter *f,
    weft_event *audit, uint32_t *count, bool *more);

// weft_store_status_ended says whether status names a terminal run state
// (succeeded, failed, cancelled, timed_out: the run statuses the event
// list gives a run's ending events).
bool weft_store_status_ended(const char *status);

// weft_store_write_events inserts evs (n) inside the caller's transaction,
// without their projections, and announces them like an append (NOTIFY
// on PostgreSQL). For events that project nothing (runs_deleted).
weft_err weft_store_write_events(
    weft_store *s, const weft_event *evs, size_t n);

#endif
