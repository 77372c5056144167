// store: backend-independent parts of the store: opening by URL,
// migrations, the projections each event implies, and the queries.
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "jsonx.h"
#include "log.h"
#include "map.h"
#include "migrations.h"

// ---- opening and migrations ----

static int
store_version_row(void *arg, int ncols, const char **cols)
{
	int *v = arg;
	if (ncols > 0 && cols[0] != NULL) {
		*v = atoi(cols[0]);
	}
	return (0);
}

static weft_err
store_migrate(weft_store *s, const weft_migration *list, char *err,
    size_t errlen)
{
	int      have = 0, known = 0;
	weft_err rv;

	if ((rv = s->ops->lock_schema(s, true)) != WEFT_OK) {
		goto fail;
	}
	rv = s->ops->script(s,
	    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER "
	    "PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)");
	if (rv != WEFT_OK ||
	    (rv = s->ops->query(s,
	         "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
	         NULL, 0, store_version_row, &have)) != WEFT_OK) {
		goto fail;
	}
	for (const weft_migration *m = list; m->sql != NULL; m++) {
		known = m->version;
	}
	if (have > known) {
		s->ops->lock_schema(s, false);
		snprintf(err, errlen,
		    "database schema version %d is newer than this binary "
		    "knows (%d): upgrade weft",
		    have, known);
		return (WEFT_ESCHEMA);
	}
	for (const weft_migration *m = list; m->sql != NULL; m++) {
		char        ver[16], now[24];
		const char *p[3] = { ver, m->name, now };
		if (m->version <= have) {
			continue;
		}
		snprintf(ver, sizeof(ver), "%d", m->version);
		snprintf(now, sizeof(now), "%" PRId64, weft_clock_wall_ms());
		// Look again inside the transaction: SQLite has no schema
		// lock, its write transaction is the lock, so another
		// coordinator may have applied this one since we looked.
		if ((rv = s->ops->begin(s)) != WEFT_OK ||
		    (rv = s->ops->query(s,
		         "SELECT COALESCE(MAX(version), 0) FROM "
		         "schema_migrations",
		         NULL, 0, store_version_row, &have)) != WEFT_OK) {
			s->ops->rollback(s);
			goto fail;
		}
		if (m->version <= have) {
			s->ops->rollback(s);
			continue;
		}
		if ((rv = s->ops->script(s, m->sql)) != WEFT_OK ||
		    (rv = s->ops->exec(s,
		         "INSERT INTO schema_migrations (version, name, "
		         "applied_ms) VALUES (?, ?, ?)",
		         p, 3)) != WEFT_OK ||
		    (rv = s->ops->commit(s)) != WEFT_OK) {
			s->ops->rollback(s);
			goto fail;
		}
		weft_log_notice("DB-MIGRATE", "applied migration %04d_%s to %s",
		    m->version, m->name, s->url);
	}
	s->ops->lock_schema(s, false);
	return (WEFT_OK);
fail:
	snprintf(err, errlen, "migration failed: %s", s->error);
	s->ops->lock_schema(s, false);
	return (rv);
}

bool
weft_store_is_pg(const char *url)
{
	const char *p = url;

	if (strncmp(url, "postgres://", 11) == 0 ||
	    strncmp(url, "postgresql://", 13) == 0) {
		return (true);
	}
	if (strncmp(url, "sqlite:", 7) == 0) {
		return (false);
	}
	// A libpq conninfo starts with "keyword =".
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	if (!((*p >= 'a' && *p <= 'z') || *p == '_')) {
		return (false);
	}
	while ((*p >= 'a' && *p <= 'z') || *p == '_') {
		p++;
	}
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	return (*p == '=');
}

void
weft_store_redact(const char *url, char *out, size_t len)
{
	if (!weft_store_is_pg(url)) {
		snprintf(out, len, "%s", url);
	} else if (weft_store_pg_redact(url, out, len) != WEFT_OK) {
		snprintf(out, len, "postgres (unreadable conninfo)");
	}
}

// store_index_mark_read reads weft_database.run_events_from, as stored.
static weft_err
store_index_mark_read(weft_store *s, uint64_t *mark)
{
	return (s->ops->query(s, "SELECT run_events_from FROM weft_database",
	    NULL, 0, weft_store_u64_row, mark));
}

// store_index_load reads where the run index stands (store_run_index)
// and copies into it what a coordinator before us left waiting.
static weft_err
store_index_load(weft_store *s, char *err, size_t errlen)
{
	uint64_t max = 0;
	weft_err rv;

	if ((rv = store_index_mark_read(s, &s->index_from)) != WEFT_OK ||
	    (rv = weft_store_max_event_id(s, &max)) != WEFT_OK) {
		snprintf(err, errlen, "reading the run index's mark: %s",
		    s->error);
		return (rv);
	}
	if (max < s->index_from) {
		return (WEFT_OK);
	}
	// What a coordinator before us left waiting goes in now, before
	// recovery reads the runs: it reads each unfinished run's last
	// event, and a scan of the waiting events per run would be slow.
	uint64_t to;
	if ((rv = s->ops->begin(s)) != WEFT_OK ||
	    (rv = weft_store_index_copy(s, &to)) != WEFT_OK ||
	    (rv = s->ops->commit(s)) != WEFT_OK) {
		s->ops->rollback(s);
		snprintf(err, errlen, "copying the events that wait for the run "
		    "index: %s", s->error);
		return (rv);
	}
	weft_store_index_moved(s, to);
	return (WEFT_OK);
}

weft_err
weft_store_open(weft_store **out, const char *url, const char *migrations_dir,
    bool readonly, char *err, size_t errlen)
{
	weft_store           *s = NULL;
	weft_err              rv;
	const weft_migration *list = weft_migrations_sqlite;

	(void) migrations_dir; // migrations are compiled in
	*out = NULL;
	if (weft_store_is_pg(url)) {
		list = weft_migrations_postgres;
		rv   = weft_store_pg_open(&s, url, readonly, err, errlen);
	} else {
		if (strncmp(url, "sqlite:", 7) == 0) {
			url += 7;
		}
		if (*url == '\0') {
			snprintf(err, errlen, "empty database path");
			return (WEFT_EINVAL);
		}
		rv = weft_store_sqlite_open(&s, url, readonly, err, errlen);
	}
	if (rv != WEFT_OK) {
		return (rv);
	}
	if (!readonly &&
	    ((rv = store_migrate(s, list, err, errlen)) != WEFT_OK ||
	        (rv = store_index_load(s, err, errlen)) != WEFT_OK)) {
		weft_store_close(s);
		return (rv);
	}
	*out = s;
	return (WEFT_OK);
}

typedef struct lag_row lag_row;
typedef struct lag_plan lag_plan;
static void lag_row_free(lag_row *h);
static void lag_plan_drop(lag_plan *pl);

void
weft_store_close(weft_store *s)
{
	const char *key;
	void       *v;

	if (s != NULL) {
		// Held rows not written: the next start replays them.
		lag_plan_drop(s->unsure_plan);
		for (size_t i = 0; weft_map_each(&s->lag, &i, &key, &v);) {
			lag_row_free(v);
		}
		weft_map_fini(&s->lag);
		s->ops->close(s);
	}
}

// ---- the write path ----

// store_num writes v in decimal into buf (at least 21 bytes) and returns
// buf: snprintf's format parsing was ~5% of the write path, run four
// times per event.
static const char *
store_num(char *buf, int64_t v)
{
	char     tmp[24];
	size_t   n = 0, o = 0;
	uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;

	do {
		tmp[n++] = (char) ('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0) {
		buf[o++] = '-';
	}
	while (n > 0) {
		buf[o++] = tmp[--n];
	}
	buf[o] = '\0';
	return (buf);
}

// One step's projection row, merged over the events of one batch so each
// touched step costs one upsert however many events it had.
typedef struct step_row {
	const char *run_id, *step_id; // borrowed from the events
	const char *status, *node;    // status: weft_event_step_status
	char       *output, *error;   // owned
	uint32_t    attempt;
	int64_t     started_ms, ended_ms; // 0 = unchanged
	int         done_delta;       // terminal transitions in this batch
	bool        terminal;         // the last event applied ended the step
	uint64_t    first_id;         // its first event not yet projected
	int64_t     since_ms;         // monotonic: first held (the lag)
	struct lag_row *held;         // the held row it took over, if any
} step_row;

// A step row held back by the projection lag (store.h): the merged state
// of the step's events since first_id, written later in one upsert.
// Only the states on the way are held (ready, dispatched, running,
// retry_wait): rows that carry no output, no error and no change to
// steps_done.
typedef struct lag_row {
	const char *key;                     // "run/step", in buf
	const char *run_id, *step_id, *node; // in buf (node may be NULL)
	const char *status;                  // weft_event_step_status
	uint32_t    attempt;
	int64_t     started_ms;
	uint64_t    first_id;
	int64_t     since_ms;
	char        buf[];
} lag_row;

// What one transaction does to the held rows, applied to s->lag only
// once it commits (lag_commit): a batch that fails and is given again
// must find them as they were. Arrays, not maps: each key is once in a
// batch's rows, and W1 holds 10,000 rows at a time.
struct lag_plan {
	lag_row **put;   // held from this transaction on (owned)
	size_t    nput, capput;
	lag_row **wrote; // held rows this transaction wrote (s->lag's)
	size_t    nwrote, capwrote;
	weft_map  ended; // run ids this batch ends: their rows are written
	bool      all;   // every held row is written (cleared)
	bool      everything; // write every row now (run_retried, a flush)
	bool      replay; // weft_store_lag_replay: terminal rows are in
	int64_t   now;    // monotonic ms
	uint64_t  mark;   // steps_from once committed (0: nothing held)
	int64_t   oldest; // the oldest since_ms held once committed
	// The run index once committed (an append's plan only).
	bool      index_set;
	bool      index_copied; // this transaction moves the mark
	uint64_t  index_from;
	int64_t   index_oldest;
	uint64_t  index_pending;
};

static void
lag_row_free(lag_row *h)
{
	free(h);
}

static void
lag_push(lag_row ***v, size_t *n, size_t *cap, lag_row *h)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v   = weft_xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = h;
}

static void
lag_plan_init(lag_plan *pl, int64_t now)
{
	memset(pl, 0, sizeof(*pl));
	weft_map_init(&pl->ended);
	pl->now = now;
}

// lag_plan_fini frees what pl still owns: the rows it would have held
// when its transaction did not commit.
static void
lag_plan_fini(lag_plan *pl)
{
	for (size_t i = 0; i < pl->nput; i++) {
		lag_row_free(pl->put[i]);
	}
	free(pl->put);
	free(pl->wrote);
	weft_map_fini(&pl->ended);
}

// lag_plan_drop finis and frees pl, a plan kept on the heap (NULL is fine).
static void
lag_plan_drop(lag_plan *pl)
{
	if (pl != NULL) {
		lag_plan_fini(pl);
		free(pl);
	}
}

// lag_commit applies pl, whose transaction committed, to s->lag.
static void
lag_commit(weft_store *s, lag_plan *pl)
{
	const char *key;
	void       *v;

	if (pl->all) {
		for (size_t i = 0; weft_map_each(&s->lag, &i, &key, &v);) {
			lag_row_free(v);
		}
		weft_map_fini(&s->lag);
		weft_map_init(&s->lag);
	} else {
		for (size_t i = 0; i < pl->nwrote; i++) {
			lag_row *h = pl->wrote[i];
			weft_map_del(&s->lag, h->key);
			lag_row_free(h);
		}
	}
	for (size_t i = 0; i < pl->nput; i++) {
		lag_row *h = pl->put[i];
		lag_row_free(weft_map_put(&s->lag, h->key, h));
	}
	pl->nput      = 0;
	s->lag_mark   = pl->mark;
	s->lag_oldest = pl->oldest;
	atomic_store(&s->lag_held, s->lag.count);
	if (pl->index_set) {
		s->index_from    = pl->index_from;
		s->index_oldest  = pl->index_oldest;
		s->index_pending = pl->index_pending;
	}
}

// lag_holds tells whether merged row r may be held rather than written.
static bool
lag_holds(const weft_store *s, const lag_plan *pl, const step_row *r)
{
	return (s->lag_ms > 0 && !pl->everything && !pl->replay &&
	    !r->terminal && r->done_delta == 0 && r->output == NULL &&
	    r->error == NULL && pl->now - r->since_ms < s->lag_ms &&
	    s->lag.count + pl->nput < WEFT_STORE_LAG_MAX &&
	    weft_map_get(&pl->ended, r->run_id) == NULL);
}

// lag_hold holds r (key) from pl's commit on.
static void
lag_hold(lag_plan *pl, const char *key, const step_row *r)
{
	size_t   lk = strlen(key) + 1, lr = strlen(r->run_id) + 1,
	       ls = strlen(r->step_id) + 1,
	       ln = r->node != NULL ? strlen(r->node) + 1 : 0;
	lag_row *h = weft_xalloc(sizeof(*h) + lk + lr + ls + ln);
	char    *b = h->buf;

	h->key     = memcpy(b, key, lk);
	h->run_id  = memcpy(b + lk, r->run_id, lr);
	h->step_id = memcpy(b + lk + lr, r->step_id, ls);
	h->node = ln > 0 ? memcpy(b + lk + lr + ls, r->node, ln) : NULL;
	h->status     = r->status;
	h->attempt    = r->attempt;
	h->started_ms = r->started_ms;
	h->first_id   = r->first_id;
	h->since_ms   = r->since_ms;
	lag_push(&pl->put, &pl->nput, &pl->capput, h);
}

// lag_seed makes r, a merged row, start from held row h (borrowed: a
// held row lives until its transaction commits).
static void
lag_seed(step_row *r, lag_row *h)
{
	r->run_id     = h->run_id;
	r->step_id    = h->step_id;
	r->status     = h->status;
	r->node       = h->node;
	r->attempt    = h->attempt;
	r->started_ms = h->started_ms;
	r->first_id   = h->first_id;
	r->since_ms   = h->since_ms;
	r->held       = h;
}

// lag_keep counts h, held after pl commits, in pl's mark and oldest.
static void
lag_keep(lag_plan *pl, const lag_row *h)
{
	if (pl->mark == 0 || h->first_id < pl->mark) {
		pl->mark = h->first_id;
	}
	if (pl->oldest == 0 || h->since_ms < pl->oldest) {
		pl->oldest = h->since_ms;
	}
}

// step_row_apply merges e, a step event with a step status, into r.
static void
step_row_apply(step_row *r, const weft_event *e)
{
	bool was = r->terminal;

	r->status   = weft_event_step_status(e->type);
	r->terminal = weft_event_terminal(e->type);
	r->attempt  = e->attempt;
	if (e->node != NULL) {
		r->node = e->node;
	}
	if (e->type == WEFT_EV_STEP_DISPATCHED) {
		r->started_ms = e->ts_ms;
	}
	if (e->type == WEFT_EV_STEP_STARTED && e->node == NULL &&
	    r->started_ms == 0) {
		// A step the coordinator holds (wait, delay, sleep_until) is
		// never dispatched: it starts here.
		r->started_ms = e->ts_ms;
	}
	if (e->type == WEFT_EV_STEP_SUCCEEDED) {
		free(r->output);
		r->output = weft_json_dump_field(e->data, "output");
	}
	if (e->type == WEFT_EV_STEP_FAILED ||
	    e->type == WEFT_EV_STEP_UPSTREAM_FAILED) {
		// upstream_failed names the failed upstream as its error.
		json_t *m = json_object_get(e->data, "error");
		free(r->error);
		r->error = weft_xstrdup(json_is_string(m) ? json_string_value(m)
		                                           : "failed");
	}
	if (r->terminal) {
		r->ended_ms = e->ts_ms;
	}
	// Map items ("step[k]") are not steps of the definition: only the
	// map step itself counts towards steps_done.
	if (strchr(r->step_id, '[') == NULL) {
		r->done_delta += (int) r->terminal - (int) was;
	}
}

// Rows go STORE_ROWS to a statement (events, steps): one statement per
// row was most of a row's cost on PostgreSQL (a parse-bind-execute each)
// and a good part of it on SQLite.
#define STORE_ROWS 64
#define STORE_SQL_MAX 4096

// store_rows_text writes into sql (STORE_SQL_MAX) head, k rows of ncols
// placeholders, and tail.
static void
store_rows_text(char *sql, const char *head, size_t k, size_t ncols,
    const char *tail)
{
	size_t o = strlen(head), t = strlen(tail);

	memcpy(sql, head, o);
	for (size_t i = 0; i < k; i++) {
		sql[o++] = i > 0 ? ',' : ' ';
		sql[o++] = '(';
		for (size_t c = 0; c < ncols; c++) {
			if (c > 0) {
				sql[o++] = ',';
			}
			sql[o++] = '?';
		}
		sql[o++] = ')';
	}
	WEFT_ASSERT(o + t < STORE_SQL_MAX);
	memcpy(sql + o, tail, t + 1);
}

// steps_writer gathers step rows STORE_ROWS to an upsert.
typedef struct steps_writer {
	weft_store *s;
	char        sql[STORE_SQL_MAX];
	const char *p[STORE_ROWS * 9];
	char        num[STORE_ROWS][3][24];
	step_row   *batch[STORE_ROWS];
	size_t      k, built;
	weft_err    rv;
} steps_writer;

static void
steps_writer_exec(steps_writer *w)
{
	static const char head[] =
	    "INSERT INTO steps (run_id, step_id, status, attempt, node, output, "
	    "error, started_ms, ended_ms) VALUES";
	static const char tail[] =
	    " ON CONFLICT (run_id, step_id) DO UPDATE SET status = "
	    "excluded.status, attempt = excluded.attempt, node = "
	    "COALESCE(excluded.node, steps.node), output = "
	    "COALESCE(excluded.output, steps.output), error = "
	    // Not "IN (...)": SQLite builds a temporary b-tree for the
	    // list on every run of the statement (~5% of W1's coordinator).
	    "CASE excluded.status WHEN 'ready' THEN NULL WHEN 'dispatched' "
	    "THEN NULL WHEN 'running' THEN NULL ELSE "
	    "COALESCE(excluded.error, steps.error) END, "
	    "started_ms = COALESCE(excluded.started_ms, steps.started_ms), "
	    "ended_ms = excluded.ended_ms";

	if (w->k == 0) {
		return;
	}
	if (w->k != w->built) {
		store_rows_text(w->sql, head, w->k, 9, tail);
		w->built = w->k;
	}
	if (w->rv == WEFT_OK) {
		w->rv = w->s->ops->exec(w->s, w->sql, w->p, (int) (w->k * 9));
		w->s->lag_writes += w->k;
	}
	for (size_t j = 0; j < w->k; j++) {
		free(w->batch[j]->output);
		free(w->batch[j]->error);
		free(w->batch[j]);
	}
	w->k = 0;
}

// steps_writer_add writes r (taken: freed once written).
static void
steps_writer_add(steps_writer *w, step_row *r)
{
	const char **q = &w->p[w->k * 9];
	char(*num)[24] = w->num[w->k];

	q[0]              = r->run_id;
	q[1]              = r->step_id;
	q[2]              = r->status;
	q[3]              = store_num(num[0], r->attempt);
	q[4]              = r->node;
	q[5]              = r->output;
	q[6]              = r->error;
	q[7]              = r->started_ms ? store_num(num[1], r->started_ms) : NULL;
	q[8]              = r->ended_ms ? store_num(num[2], r->ended_ms) : NULL;
	w->batch[w->k++] = r;
	if (w->k == STORE_ROWS) {
		steps_writer_exec(w);
	}
}

// store_rows_free frees the merged rows in rows, unwritten.
static void
store_rows_free(weft_map *rows)
{
	const char *key;
	void       *v;

	for (size_t i = 0; weft_map_each(rows, &i, &key, &v);) {
		step_row *r = v;
		free(r->output);
		free(r->error);
		free(r);
	}
}

// store_lag_due writes the held rows pl makes due (all, those of runs
// the batch ends, those older than the lag) and that rows, the batch's
// merged rows, did not take over; and finds pl's mark and oldest among
// those it keeps.
static void
store_lag_due(weft_store *s, steps_writer *w, weft_map *rows, lag_plan *pl)
{
	const char *key;
	void       *v;

	for (size_t i = 0; !pl->all && weft_map_each(&s->lag, &i, &key, &v);) {
		lag_row *h = v;
		if (weft_map_get(rows, key) != NULL) {
			continue; // the batch's row took its place
		}
		if (pl->everything || pl->now - h->since_ms >= s->lag_ms ||
		    weft_map_get(&pl->ended, h->run_id) != NULL) {
			step_row *r = weft_xalloc(sizeof(*r));
			lag_seed(r, h);
			lag_push(&pl->wrote, &pl->nwrote, &pl->capwrote, h);
			steps_writer_add(w, r);
			continue;
		}
		lag_keep(pl, h);
	}
	if (pl->everything) {
		pl->all = true; // every held row is written from here on
	}
}

// store_steps_done adds done's deltas (run id -> int *) to the runs'
// steps_done: one counter update per run, not per step (a wide fan-out
// would rewrite the same runs row hundreds of times a batch), and
// STORE_ROWS runs to a statement: W3 ends steps of ~1,000 runs a batch,
// and a statement per run was ~3,000 of its ~7,000 statements.
static weft_err
store_steps_done(weft_store *s, const weft_map *done)
{
	static const char head[] =
	    "UPDATE runs SET steps_done = steps_done + CAST(d.column2 AS "
	    "INTEGER) FROM (VALUES";
	static const char tail[] = ") AS d WHERE runs.id = d.column1";
	char        sql[STORE_SQL_MAX];
	const char *p[STORE_ROWS * 2];
	char        num[STORE_ROWS][24];
	size_t      k = 0, built = 0, left = done->count;
	const char *key;
	void       *v;
	weft_err    rv = WEFT_OK;

	for (size_t i = 0; rv == WEFT_OK && weft_map_each(done, &i, &key, &v);) {
		left--;
		if (*(int *) v != 0) {
			p[k * 2]     = key;
			p[k * 2 + 1] = store_num(num[k], *(int *) v);
			k++;
		}
		if (k == 0 || (k < STORE_ROWS && left > 0)) {
			continue;
		}
		if (k != built) {
			store_rows_text(sql, head, k, 2, tail);
			built = k;
		}
		rv = s->ops->exec(s, sql, p, (int) (k * 2));
		k  = 0;
	}
	return (rv);
}

// store_flush_steps writes rows, the batch's merged step rows, or holds
// them (pl, the projection lag), writes the held rows that are due, and
// the steps_done counters and steps_from mark that follow.
static weft_err
store_flush_steps(weft_store *s, weft_map *rows, lag_plan *pl)
{
	steps_writer *w = weft_xalloc(sizeof(*w));
	const char   *key;
	void         *v;
	weft_err      rv;
	weft_map      done; // run id -> int * (steps_done delta)

	w->s  = s;
	w->rv = WEFT_OK;
	// Each key is once in rows, so a statement never updates a row
	// twice (PostgreSQL refuses that).
	weft_map_init(&done);
	for (size_t i = 0; weft_map_each(rows, &i, &key, &v);) {
		step_row *r = v;
		if (r->done_delta != 0 && !pl->replay) {
			int *d = weft_map_get(&done, r->run_id);
			if (d == NULL) {
				d = weft_xalloc(sizeof(*d));
				weft_map_put(&done, r->run_id, d);
			}
			*d += r->done_delta;
		}
		if (lag_holds(s, pl, r)) {
			lag_hold(pl, key, r);
			free(r);
			continue;
		}
		if (r->held != NULL) {
			lag_push(&pl->wrote, &pl->nwrote, &pl->capwrote, r->held);
		}
		if (pl->replay && r->terminal) {
			// Written with its ending, in its own batch.
			free(r->output);
			free(r->error);
			free(r);
			continue;
		}
		steps_writer_add(w, r);
	}
	if (s->lag.count > 0 && !pl->all &&
	    (pl->everything || pl->ended.count > 0 ||
	        pl->now - s->lag_oldest >= s->lag_ms)) {
		store_lag_due(s, w, rows, pl);
	} else if (s->lag.count > 0 && !pl->all) {
		// Nothing held is due: no scan of them all (W1 holds 10,000
		// at once). The mark and the oldest stay where they were,
		// which is early enough: a replay from before the first held
		// event writes the same rows, and the next scan makes both
		// exact again.
		pl->mark   = s->lag_mark;
		pl->oldest = s->lag_oldest;
	}
	steps_writer_exec(w);
	rv = w->rv;
	free(w);
	for (size_t i = 0; i < pl->nput; i++) {
		lag_keep(pl, pl->put[i]);
	}
	if (rv == WEFT_OK) {
		rv = store_steps_done(s, &done);
	}
	for (size_t i = 0; weft_map_each(&done, &i, &key, &v);) {
		free(v);
	}
	weft_map_fini(&done);
	return (rv);
}

// store_lag_mark records pl's mark in weft_database when it changed: the
// first event a restart must project again (weft_store_lag_replay).
static weft_err
store_lag_mark(weft_store *s, const lag_plan *pl)
{
	char        m[24];
	const char *p[1] = { m };

	if (pl->mark == s->lag_mark) {
		return (WEFT_OK);
	}
	store_num(m, (int64_t) pl->mark);
	return (s->ops->exec(s, "UPDATE weft_database SET steps_from = ?", p, 1));
}

// store_schedule_fired records a cron fire (schedule_fired, a
// coordinator event naming the run): the schedule's last fire time and
// run, in the transaction that creates the run (run_queued is in the same
// batch), so a restart never fires that time again.
static weft_err
store_schedule_fired(weft_store *s, const weft_event *e)
{
	char at[24];

	json_t *f = json_object_get(e->data, "fire_ms");

	// A manual trigger has no fire time: the cadence stays.
	snprintf(at, sizeof(at), "%" JSON_INTEGER_FORMAT, json_integer_value(f));
	const char *p[3] = { json_is_integer(f) ? at : NULL,
		json_string_value(json_object_get(e->data, "run_id")),
		json_string_value(json_object_get(e->data, "schedule")) };
	return (s->ops->exec(s,
	    "UPDATE schedules SET last_fire_ms = COALESCE(?, last_fire_ms), "
	    "last_run_id = ? WHERE name = ?",
	    p, 3));
}

// store_project_schedule applies the schedule events (engine/cron.c) to
// the schedules table: created (the whole schedule), paused, resumed,
// deleted, skipped (a fire time passed without a run: last_fire_ms).
static weft_err
store_project_schedule(weft_store *s, const weft_event *e)
{
	const char *name = json_string_value(json_object_get(e->data, "name"));
	char        ts[24], last[24];

	snprintf(ts, sizeof(ts), "%" PRId64, e->ts_ms);
	snprintf(last, sizeof(last), "%" JSON_INTEGER_FORMAT,
	    json_integer_value(json_object_get(e->data, "fire_ms")));
	if (e->type == WEFT_EV_SCHEDULE_CREATED) {
		char *input  = weft_json_dump_field(e->data, "input");
		char *params = weft_json_dump_field(e->data, "params");
		const char *p[10] = { name,
			json_string_value(json_object_get(e->data, "definition")),
			json_string_value(json_object_get(e->data, "cron")),
			json_string_value(json_object_get(e->data, "timezone")),
			input, params,
			json_string_value(json_object_get(e->data, "overlap")),
			json_string_value(json_object_get(e->data, "catchup")), ts,
			ts };
		weft_err rv = s->ops->exec(s,
		    "INSERT INTO schedules (name, definition, cron, timezone, "
		    "input, params, overlap, catchup, created_ms, last_fire_ms) "
		    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		    p, 10);
		free(input);
		free(params);
		return (rv);
	}
	if (e->type == WEFT_EV_SCHEDULE_DELETED) {
		const char *p[1] = { name };
		return (s->ops->exec(s, "DELETE FROM schedules WHERE name = ?",
		    p, 1));
	}
	if (e->type == WEFT_EV_SCHEDULE_SKIPPED) {
		const char *p[2] = { last, name };
		return (s->ops->exec(s,
		    "UPDATE schedules SET last_fire_ms = ? WHERE name = ?", p,
		    2));
	}
	if (e->type == WEFT_EV_SCHEDULE_RESUMED) {
		// Counting starts again from the resume: the paused time's
		// fires are not made up after a restart either.
		const char *p[2] = { last, name };
		return (s->ops->exec(s,
		    "UPDATE schedules SET paused = 0, last_fire_ms = ? WHERE "
		    "name = ?",
		    p, 2));
	}
	const char *p[1] = { name };
	return (s->ops->exec(s,
	    "UPDATE schedules SET paused = 1 WHERE name = ?", p, 1));
}

// store_project_tags writes a new run's tags (at most WEFT_TAGS_MAX, so
// a statement each costs little) as run_tags rows, the index the tag
// filters read.
static weft_err
store_project_tags(weft_store *s, const char *run_id, json_t *tags)
{
	const char *k;
	json_t     *v;
	weft_err    rv = WEFT_OK;

	json_object_foreach (tags, k, v) {
		const char *p[3] = { run_id, k, json_string_value(v) };
		if (p[2] == NULL || (rv = s->ops->exec(s,
		         "INSERT INTO run_tags (run_id, key, value) VALUES "
		         "(?, ?, ?)",
		         p, 3)) != WEFT_OK) {
			break;
		}
	}
	return (rv);
}

static char *store_field_text(const weft_event *e, const char *key);

// store_project_rerun puts the steps a retry from a step reset (its
// run_retried's "steps") back to pending, keeping their attempt numbers,
// and drops the rows of their map items: recovery must find them pending,
// not in the end they had (which would end the run again). The list may
// be a blob reference (a wide DAG): it is read as its value.
static weft_err
store_project_rerun(weft_store *s, const weft_event *e)
{
	char    *text = store_field_text(e, "steps");
	json_t  *ids  = text != NULL ? json_loads(text, 0, NULL) : NULL;
	json_t  *v;
	size_t   i;
	weft_err rv = WEFT_OK;

	free(text);
	json_array_foreach (ids, i, v) {
		char        prefix[300];
		const char *p[3] = { e->run_id, json_string_value(v), prefix };
		if (p[1] == NULL) {
			continue;
		}
		snprintf(prefix, sizeof(prefix), "%s[", p[1]);
		if ((rv = s->ops->exec(s,
		         "UPDATE steps SET status = 'pending', node = NULL, "
		         "output = NULL, error = NULL, started_ms = NULL, "
		         "ended_ms = NULL WHERE run_id = ? AND step_id = ?",
		         p, 2)) != WEFT_OK) {
			break;
		}
		const char *q[3] = { e->run_id, prefix, prefix };
		if ((rv = s->ops->exec(s,
		         "DELETE FROM steps WHERE run_id = ? AND "
		         "substr(step_id, 1, length(CAST(? AS TEXT))) = ?",
		         q, 3)) != WEFT_OK) {
			break;
		}
	}
	json_decref(ids);
	return (rv);
}

// store_run_start_folds returns the event after evs[i] when evs[i] is a
// run_queued and that next event starts the same run: a run admitted at
// once (most) is inserted already started, one statement instead of two.
static const weft_event *
store_run_start_folds(const weft_event *evs, size_t n, size_t i)
{
	const weft_event *q = &evs[i], *st = i + 1 < n ? &evs[i + 1] : NULL;

	if (q->type != WEFT_EV_RUN_QUEUED || st == NULL ||
	    st->type != WEFT_EV_RUN_STARTED || st->step_id != NULL ||
	    st->run_id == NULL || strcmp(st->run_id, q->run_id) != 0) {
		return (NULL);
	}
	return (st);
}

// store_project_run applies a run-level event to the runs table: the
// status is the one the event list gives it. For a run_queued, started is
// its run_started when the same batch holds it right after
// (store_run_start_folds): the row is inserted as that event leaves it.
static weft_err
store_project_run(weft_store *s, const weft_event *e,
    const weft_event *started)
{
	char        ts[24], st_ts[24];
	const char *status = weft_event_run_status(e->type);

	snprintf(ts, sizeof(ts), "%" PRId64, e->ts_ms);
	if (e->type == WEFT_EV_RUN_QUEUED) {
		char *input  = weft_json_dump_field(e->data, "input");
		char *params = weft_json_dump_field(e->data, "params");
		char  ver[24], n[24], keep[24];
		snprintf(ver, sizeof(ver), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(e->data, "version")));
		snprintf(n, sizeof(n), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(e->data, "steps")));
		// The definition's "retain", if any (store_retain.c).
		json_t *rt = json_object_get(e->data, "retain_ms");
		snprintf(keep, sizeof(keep), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(rt));
		// Tags and the idempotency key (migration 0008), if given.
		json_t *tags = json_object_get(e->data, "tags");
		char   *tagtext = json_object_size(tags) > 0
		      ? weft_json_dump_field(e->data, "tags")
		      : NULL;
		if (started != NULL) {
			status = weft_event_run_status(started->type);
			snprintf(st_ts, sizeof(st_ts), "%" PRId64,
			    started->ts_ms);
		}
		const char *p[12] = { e->run_id,
			json_string_value(json_object_get(e->data, "definition")),
			ver, status, input, params, ts, n,
			json_is_integer(rt) ? keep : NULL,
			started != NULL ? st_ts : NULL, tagtext,
			json_string_value(
			    json_object_get(e->data, "idempotency_key")) };
		// A run with neither (most) takes the statement it always
		// did.
		weft_err rv = p[10] == NULL && p[11] == NULL
		    ? s->ops->exec(s,
		          "INSERT INTO runs (id, definition, version, status, "
		          "input, params, created_ms, steps_total, retain_ms, "
		          "started_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		          p, 10)
		    : s->ops->exec(s,
		          "INSERT INTO runs (id, definition, version, status, "
		          "input, params, created_ms, steps_total, retain_ms, "
		          "started_ms, tags, idempotency_key) VALUES (?, ?, ?, "
		          "?, ?, ?, ?, ?, ?, ?, ?, ?)",
		          p, 12);
		if (rv == WEFT_OK && tagtext != NULL) {
			rv = store_project_tags(s, e->run_id, tags);
		}
		free(tagtext);
		// Same transaction as the run: a run recovered from the
		// store always finds its secrets.
		if (rv == WEFT_OK && e->secrets != NULL) {
			const char *q[3] = { e->run_id, e->secrets, ts };
			rv = s->ops->exec(s,
			    "INSERT INTO run_secrets (run_id, box, created_ms) "
			    "VALUES (?, ?, ?)",
			    q, 3);
		}
		free(input);
		free(params);
		// Its priority (sched), when not 0: a statement of its own
		// keeps the common INSERT as it was.
		json_t *prio = json_object_get(e->data, "priority");
		if (rv == WEFT_OK && json_integer_value(prio) != 0) {
			char        pr[24];
			const char *q[2] = { pr, e->run_id };
			snprintf(pr, sizeof(pr), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(prio));
			rv = s->ops->exec(s,
			    "UPDATE runs SET priority = ? WHERE id = ?", q, 2);
		}
		return (rv);
	}
	if (e->type == WEFT_EV_RUN_STARTED || e->type == WEFT_EV_RUN_RESUMED ||
	    e->type == WEFT_EV_RUN_PAUSED) {
		const char *p[3] = { status, ts, e->run_id };
		return (s->ops->exec(s,
		    "UPDATE runs SET status = ?, started_ms = "
		    "COALESCE(started_ms, ?) WHERE id = ?",
		    p, 3));
	}
	if (e->type == WEFT_EV_RUN_SCHEDULED) {
		char at[24];
		snprintf(at, sizeof(at), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(e->data, "start_at_ms")));
		const char *p[3] = { status, at, e->run_id };
		return (s->ops->exec(s,
		    "UPDATE runs SET status = ?, start_at_ms = ? WHERE id = ?",
		    p, 3));
	}
	if (e->type == WEFT_EV_RUN_RETRIED) {
		weft_err    rv = store_project_rerun(s, e);
		const char *p[3] = { status, e->run_id, e->run_id };
		if (rv != WEFT_OK) {
			return (rv);
		}
		return (s->ops->exec(s,
		    "UPDATE runs SET status = ?, ended_ms = NULL, expire_ms = "
		    "NULL, error = NULL, output = NULL, steps_done = (SELECT COUNT(*) FROM "
		    "steps WHERE run_id = ? AND status = 'succeeded') WHERE id = ?",
		    p, 3));
	}
	if (!weft_event_terminal(e->type) || status == NULL) {
		return (WEFT_OK); // a run event with nothing to project
	}
	// The endings: succeeded, failed, cancelled, timed_out. An ending
	// without an error message records its status as the error.
	char       *out = weft_json_dump_field(e->data, "output");
	const char *p[6] = { status, out, NULL, ts, ts, e->run_id };
	json_t     *m    = json_object_get(e->data, "error");
	p[2]             = json_is_string(m) ? json_string_value(m) : NULL;
	if (p[2] == NULL && e->type != WEFT_EV_RUN_SUCCEEDED) {
		p[2] = status;
	}
	weft_err rv = s->ops->exec(s,
	    "UPDATE runs SET status = ?, output = ?, error = ?, ended_ms = ?, "
	    "expire_ms = ? + retain_ms WHERE id = ?",
	    p, 6);
	free(out);
	return (rv);
}

// store_field_text returns obj[key] of event e as JSON text (malloc'd),
// with a blob reference replaced by the value it names when e carries it:
// for projections that must hold the value itself (a definition's body).
static char *
store_field_text(const weft_event *e, const char *key)
{
	const char *h = weft_blob_ref_hash(json_object_get(e->data, key));

	for (size_t i = 0; h != NULL && i < e->nblobs; i++) {
		if (strcmp(e->blobs[i].hash, h) == 0) {
			return (weft_xstrdup(e->blobs[i].text));
		}
	}
	return (weft_json_dump_field(e->data, key));
}

// store_put_blob writes b once (nothing when its hash is there already)
// and notes that run (NULL: no run) refers to it.
static weft_err
store_put_blob(weft_store *s, const weft_blob *b, const char *run)
{
	uint64_t    have = 0;
	const char *h[1] = { b->hash };
	const char *r[2] = { b->hash, run != NULL ? run : "" };
	weft_err    rv;

	if ((rv = s->ops->query(s, "SELECT COUNT(*) FROM blobs WHERE hash = ?",
	         h, 1, weft_store_u64_row, &have)) != WEFT_OK) {
		return (rv);
	}
	if (have == 0) {
		char     size[24], nch[16], now[24], idx[16];
		uint32_t k = 0;
		for (size_t off = 0; off < b->len && rv == WEFT_OK; k++) {
			size_t n = weft_blob_cut(b->text + off, b->len - off,
			    WEFT_BLOB_CHUNK);
			char  *part = weft_xstrndup(b->text + off, n);
			snprintf(idx, sizeof(idx), "%u", k);
			const char *c[3] = { b->hash, idx, part };
			rv = s->ops->exec(s,
			    "INSERT INTO blob_chunks (hash, n, body) VALUES (?, ?, "
			    "?)",
			    c, 3);
			free(part);
			off += n;
		}
		snprintf(size, sizeof(size), "%zu", b->len);
		snprintf(nch, sizeof(nch), "%u", k);
		snprintf(now, sizeof(now), "%" PRId64, weft_clock_wall_ms());
		const char *p[4] = { b->hash, size, nch, now };
		if (rv == WEFT_OK) {
			rv = s->ops->exec(s,
			    "INSERT INTO blobs (hash, size, chunks, created_ms) "
			    "VALUES (?, ?, ?, ?)",
			    p, 4);
		}
	}
	if (rv == WEFT_OK) {
		rv = s->ops->exec(s,
		    "INSERT INTO blob_refs (hash, run_id) VALUES (?, ?) ON "
		    "CONFLICT (hash, run_id) DO NOTHING",
		    r, 2);
	}
	return (rv);
}

// store_project_other applies definition and worker events.
static weft_err
store_project_other(weft_store *s, const weft_event *e)
{
	char ts[24];

	snprintf(ts, sizeof(ts), "%" PRId64, e->ts_ms);
	if (e->type == WEFT_EV_DEFINITION_REGISTERED) {
		char  ver[24];
		char *body = store_field_text(e, "definition");
		snprintf(ver, sizeof(ver), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(e->data, "version")));
		const char *p[4] = { json_string_value(
			                 json_object_get(e->data, "name")),
			ver, body, ts };
		weft_err rv = s->ops->exec(s,
		    "INSERT INTO definitions (name, version, body, created_ms) "
		    "VALUES (?, ?, ?, ?)",
		    p, 4);
		free(body);
		return (rv);
	}
	if (e->type == WEFT_EV_WORKER_JOINED) {
		char *types = weft_json_dump_field(e->data, "step_types");
		char  slots[16];
		snprintf(slots, sizeof(slots), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(e->data, "slots")));
		const char *p[6] = { e->node,
			json_string_value(json_object_get(e->data, "address")),
			types, slots, ts, ts };
		weft_err rv = s->ops->exec(s,
		    "INSERT INTO workers (name, address, step_types, slots, "
		    "state, joined_ms, seen_ms) VALUES (?, ?, ?, ?, 'alive', ?, "
		    "?) ON CONFLICT (name) DO UPDATE SET address = "
		    "excluded.address, step_types = excluded.step_types, slots = "
		    "excluded.slots, state = 'alive', seen_ms = excluded.seen_ms",
		    p, 6);
		free(types);
		return (rv);
	}
	if (e->type == WEFT_EV_SCHEDULE_FIRED) {
		return (store_schedule_fired(s, e));
	}
	if (e->type >= WEFT_EV_SCHEDULE_CREATED &&
	    e->type <= WEFT_EV_SCHEDULE_SKIPPED) {
		return (store_project_schedule(s, e));
	}
	if (e->type == WEFT_EV_WORKER_LOST) {
		const char *p[1] = { e->node };
		return (s->ops->exec(s,
		    "UPDATE workers SET state = 'lost' WHERE name = ?", p, 1));
	}
	return (WEFT_OK);
}

// store_project_expansion: an expand step's step_expanded grew the run;
// its "steps_total" (the run's steps with its expansions) becomes the
// runs row's, so that progress reads done/total of the run as it is.
static weft_err
store_project_expansion(weft_store *s, const weft_event *e)
{
	json_t *n = json_object_get(e->data, "steps_total");
	char    buf[24];

	if (e->type != WEFT_EV_STEP_EXPANDED || !json_is_integer(n)) {
		return (WEFT_OK); // a map's: its items are not steps
	}
	snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
	    json_integer_value(n));
	const char *p[2] = { buf, e->run_id };
	return (s->ops->exec(s, "UPDATE runs SET steps_total = ? WHERE id = ?",
	    p, 2));
}

#define STORE_EVENT_COLS 9

// store_event_time widens the event_time rows (migration 0011) of the
// buckets evs fall in to their times: one upsert per bucket, where
// events_ts was an index entry per event. A batch's ids are consecutive,
// so its buckets come one after the other.
static weft_err
store_event_time(weft_store *s, const weft_event *evs, size_t n)
{
	static const char sql[] =
	    "INSERT INTO event_time (bucket, min_ts, max_ts) VALUES (?, ?, ?) "
	    "ON CONFLICT (bucket) DO UPDATE SET min_ts = CASE WHEN "
	    "excluded.min_ts < event_time.min_ts THEN excluded.min_ts ELSE "
	    "event_time.min_ts END, max_ts = CASE WHEN excluded.max_ts > "
	    "event_time.max_ts THEN excluded.max_ts ELSE event_time.max_ts END";
	weft_err rv = WEFT_OK;

	for (size_t i = 0; i < n && rv == WEFT_OK;) {
		uint64_t    bucket = evs[i].id / WEFT_EVENT_TIME_BUCKET;
		int64_t     lo = evs[i].ts_ms, hi = evs[i].ts_ms;
		char        num[3][24];
		const char *p[3];
		for (i++; i < n && evs[i].id / WEFT_EVENT_TIME_BUCKET == bucket;
		     i++) {
			lo = evs[i].ts_ms < lo ? evs[i].ts_ms : lo;
			hi = evs[i].ts_ms > hi ? evs[i].ts_ms : hi;
		}
		p[0] = store_num(num[0], (int64_t) bucket);
		p[1] = store_num(num[1], lo);
		p[2] = store_num(num[2], hi);
		rv   = s->ops->exec(s, sql, p, 3);
	}
	return (rv);
}

// store_insert_events inserts evs (n) in rows of STORE_ROWS.
static weft_err
store_insert_events(weft_store *s, const weft_event *evs, size_t n)
{
	static const char head[] = "INSERT INTO events (id, run_id, seq, "
	                           "ts_ms, type, step_id, attempt, node, data) "
	                           "VALUES";
	char        sql[STORE_SQL_MAX];
	const char *p[STORE_ROWS * STORE_EVENT_COLS];
	char        num[STORE_ROWS][4][24];
	size_t      built = 0; // rows the text in sql has
	weft_err    rv    = WEFT_OK;

	for (size_t off = 0; off < n && rv == WEFT_OK;) {
		size_t k = n - off < STORE_ROWS ? n - off : STORE_ROWS;
		if (k != built) {
			store_rows_text(sql, head, k, STORE_EVENT_COLS, "");
			built = k;
		}
		for (size_t i = 0; i < k; i++) {
			const weft_event *e = &evs[off + i];
			const char      **q = &p[i * STORE_EVENT_COLS];
			// Ids and sequences are below 2^63 (int64 columns).
			q[0] = store_num(num[i][0], (int64_t) e->id);
			q[1] = e->run_id;
			q[2] = store_num(num[i][1], (int64_t) e->seq);
			q[3] = store_num(num[i][2], e->ts_ms);
			q[4] = weft_event_name(e->type);
			q[5] = e->step_id;
			q[6] = store_num(num[i][3], e->attempt);
			q[7] = e->node;
			q[8] = e->data_text;
		}
		rv = s->ops->exec(s, sql, p, (int) (k * STORE_EVENT_COLS));
		off += k;
	}
	return (rv == WEFT_OK ? store_event_time(s, evs, n) : rv);
}

// store_step_row returns the merged row of e's step in rows, made on
// first use from the row held for it, if any (pl), or empty.
static step_row *
store_step_row(weft_store *s, weft_map *rows, const lag_plan *pl,
    const weft_event *e)
{
	char      key[256];
	step_row *r;
	lag_row  *h;
	bool      added;

	snprintf(key, sizeof(key), "%s/%s", e->run_id, e->step_id);
	// One hash for both maps, one probe to find or add (perf: these
	// lookups were most of this function, W1's 10,000 held rows).
	uint64_t hash = weft_map_hash(key);
	void   **slot = weft_map_slot_h(rows, key, hash, &added);
	if (!added) {
		return (*slot);
	}
	r           = weft_xalloc(sizeof(*r));
	r->run_id   = e->run_id;
	r->step_id  = e->step_id;
	r->first_id = e->id;
	r->since_ms = pl->now;
	if (!pl->all && (h = weft_map_get_h(&s->lag, key, hash)) != NULL) {
		lag_seed(r, h);
	}
	*slot = r;
	return (r);
}

static weft_err
store_append_all(weft_store *s, const weft_event *evs, size_t n,
    weft_map *rows, lag_plan *pl)
{
	weft_err rv = WEFT_OK;
	size_t   folded = SIZE_MAX; // a run_started its run_queued projected

	// The events first, then what they imply: nothing below reads the
	// events table, and one transaction holds it all.
	rv = store_insert_events(s, evs, n);
	for (size_t i = 0; i < n && rv == WEFT_OK; i++) {
		const weft_event *e = &evs[i];
		for (size_t b = 0; b < e->nblobs && rv == WEFT_OK; b++) {
			rv = store_put_blob(s, &e->blobs[b], e->run_id);
		}
		if (rv != WEFT_OK) {
			break;
		}
		if (e->step_id != NULL &&
		    weft_event_step_status(e->type) != NULL) {
			step_row_apply(store_step_row(s, rows, pl, e), e);
			rv = store_project_expansion(s, e);
		} else if (e->step_id == NULL && e->run_id != NULL &&
		    weft_event_scope(e->type) == WEFT_EV_SCOPE_RUN) {
			// Steps touched so far must land before a run update
			// that counts them (run_retried reads the steps
			// table); the others do not read it, so the rows keep
			// gathering (flushed once for the whole batch, where
			// a flush per run event made W3's 1,000 interleaved
			// runs ~3,000 statements of a row or two). The rows a
			// run's end leaves held are written with it.
			if (e->type == WEFT_EV_RUN_RETRIED) {
				pl->everything = true;
				rv = store_flush_steps(s, rows, pl);
				pl->everything = false;
				weft_map_fini(rows);
				weft_map_init(rows);
			} else if (weft_event_terminal(e->type)) {
				weft_map_put(&pl->ended, e->run_id, pl);
			}
			if (rv == WEFT_OK && i != folded) {
				const weft_event *st =
				    store_run_start_folds(evs, n, i);
				rv = store_project_run(s, e, st);
				folded = st != NULL ? i + 1 : folded;
			}
		} else {
			rv = store_project_other(s, e);
		}
	}
	return (rv);
}

// store_index_plan_copy copies the waiting events into the run index in
// pl's transaction; lag_commit applies the new mark once it commits.
static weft_err
store_index_plan_copy(weft_store *s, lag_plan *pl)
{
	uint64_t to = 0;
	weft_err rv;

	if ((rv = weft_store_index_copy(s, &to)) != WEFT_OK) {
		return (rv);
	}
	pl->index_set     = true;
	pl->index_copied  = true;
	pl->index_from    = to;
	pl->index_oldest  = 0;
	pl->index_pending = 0;
	return (WEFT_OK);
}

// store_run_index plans the run index (migration 0013) for a batch of n
// events in pl's transaction. Its events wait, with those before them
// since index_from, until the store is idle (weft_store_lag_flush), or
// the first of them is older than WEFT_STORE_INDEX_LAGS lags, or
// WEFT_STORE_INDEX_MAX wait, or no lag is set; then one statement copies
// them all into run_events, sorted by run, so that each run's entries go
// in together: W3's 1,000 runs at once rewrote most of an index on
// events in each of their 16 commits, where this writes it once. Waiting
// holds nothing back: the events are written, and a query for a run
// scans those from run_events_from on (store_query.c). The copy costs
// ~1.5 us an event (sort and insert; 60,000 took ~90 ms): in a batch it
// delays that batch's effects, done idle it delays nothing.
static weft_err
store_run_index(weft_store *s, lag_plan *pl, size_t n)
{
	pl->index_set     = true;
	pl->index_from    = s->index_from;
	pl->index_pending = s->index_pending + n;
	pl->index_oldest  = s->index_oldest != 0 || n == 0 ? s->index_oldest
	                                                   : pl->now;
	if (pl->index_pending == 0 ||
	    (s->lag_ms > 0 && pl->index_pending < WEFT_STORE_INDEX_MAX &&
	        pl->now - pl->index_oldest <
	            s->lag_ms * WEFT_STORE_INDEX_LAGS)) {
		return (WEFT_OK);
	}
	return (store_index_plan_copy(s, pl));
}

weft_err
weft_store_index_copy(weft_store *s, uint64_t *to)
{
	char        num[24];
	const char *p[1] = { num };
	weft_err    rv;

	// Every event there is, appended or written beside the appends
	// (weft_store_write_events): ids only grow, and batches commit in
	// id order, so nothing is ever written below the mark.
	*to = 0;
	if ((rv = s->ops->query(s, "SELECT COALESCE(MAX(id), 0) FROM events",
	         NULL, 0, weft_store_u64_row, to)) != WEFT_OK) {
		return (rv);
	}
	(*to)++;
	store_num(num, (int64_t) *to);
	// From the mark as stored, not as this process last knew it: a
	// coordinator that wrote this database after us moved it too.
	if ((rv = s->ops->exec(s,
	         "INSERT INTO run_events (run_id, id) SELECT run_id, id FROM "
	         "events WHERE id >= (SELECT run_events_from FROM "
	         "weft_database) AND id < ? AND run_id IS NOT NULL ORDER BY "
	         "run_id, id",
	         p, 1)) != WEFT_OK) {
		return (rv);
	}
	return (s->ops->exec(s, "UPDATE weft_database SET run_events_from = ?",
	    p, 1));
}

weft_err
weft_store_index_mark(weft_store *s, char mark[24])
{
	uint64_t v  = 0;
	weft_err rv = store_index_mark_read(s, &v);

	store_num(mark, (int64_t) v);
	return (rv);
}

void
weft_store_index_moved(weft_store *s, uint64_t to)
{
	s->index_from    = to;
	s->index_oldest  = 0;
	s->index_pending = 0;
}

// store_unsure keeps pl, whose transaction's COMMIT got no answer, until
// store_settle knows whether it committed: a batch starting with event
// id, or (id 0) a flush of the held rows.
static void
store_unsure(weft_store *s, lag_plan *pl, uint64_t id)
{
	s->unsure_id    = id;
	s->unsure_flush = id == 0;
	s->unsure_plan  = weft_xalloc(sizeof(*pl));
	*s->unsure_plan = *pl;
	lag_plan_init(pl, 0);
}

// store_settle finds out what became of the transaction whose commit
// answer was lost (store_unsure), before anything else is written. A
// batch committed has its first event stored; a flush committed has
// set steps_from to 0 (it is never 0 while rows are held, and a flush
// runs only with rows held or a mark to clear). Found committed, its
// plan for the held rows is applied, as its commit would have: the rows
// it wrote are no longer held, those it held are, the mark is what it
// wrote. Not found, the plan is dropped and the batch, when given again,
// is written anew. (Without this, a held row that a lost batch wrote
// over with an ending stayed held, and a later write put it back over
// that ending: a restart then took the step's result twice. A lost
// flush left the mark in memory stale, so later batches did not write
// theirs.) A batch found committed is remembered (s->found_id) so that,
// given again, it is not written twice; with the store still away, its
// error, and the question stays open.
static weft_err
store_settle(weft_store *s)
{
	char        ids[24];
	const char *p[1]  = { ids };
	uint64_t    found = 0, mark = UINT64_MAX;
	weft_err    rv;

	if (s->unsure_id == 0 && !s->unsure_flush) {
		return (WEFT_OK);
	}
	if (s->unsure_flush && s->unsure_plan->index_copied) {
		// A flush that copied the run index moved its mark forward;
		// one without held rows leaves steps_from 0 either way.
		rv    = store_index_mark_read(s, &mark);
		found = mark == s->unsure_plan->index_from;
	} else if (s->unsure_flush) {
		rv = s->ops->query(s, "SELECT steps_from FROM weft_database",
		    NULL, 0, weft_store_u64_row, &mark);
		found = mark == 0;
	} else {
		store_num(ids, (int64_t) s->unsure_id);
		rv = s->ops->query(s, "SELECT COUNT(*) FROM events WHERE id = ?",
		    p, 1, weft_store_u64_row, &found);
	}
	if (rv != WEFT_OK) {
		return (rv);
	}
	if (found > 0) {
		if (s->unsure_flush) {
			weft_log_notice("DB-COMMIT-FOUND", "the flush of the "
			    "held step rows was committed before the "
			    "connection broke");
		} else {
			weft_log_notice("DB-COMMIT-FOUND",
			    "batch from event %" PRIu64 " was committed before "
			    "the connection broke", s->unsure_id);
			s->found_id = s->unsure_id;
		}
		lag_commit(s, s->unsure_plan);
	}
	lag_plan_drop(s->unsure_plan);
	s->unsure_plan  = NULL;
	s->unsure_id    = 0;
	s->unsure_flush = false;
	return (WEFT_OK);
}

// store_put_durations upserts learned step durations (sched) inside the
// batch's transaction, STORE_ROWS to a statement: a row per statement was
// ~13% of W1's store thread (each of its 10,002 steps learns once). The
// rows are one per (definition, version, step) (learn.c keeps a step
// dirty once), so a statement never updates a row twice.
static weft_err
store_put_durations(weft_store *s, const weft_dur_rows *rows)
{
	static const char head[] =
	    "INSERT INTO step_durations (definition, version, step_id, count, "
	    "sum_ms, samples) VALUES";
	static const char tail[] =
	    " ON CONFLICT (definition, version, step_id) DO UPDATE SET count "
	    "= excluded.count, sum_ms = excluded.sum_ms, samples = "
	    "excluded.samples";
	char        sql[STORE_SQL_MAX];
	const char *p[STORE_ROWS * 6];
	char        num[STORE_ROWS][3][24];
	size_t      built = 0;
	weft_err    rv    = WEFT_OK;

	for (size_t off = 0; off < rows->n && rv == WEFT_OK;) {
		size_t k = rows->n - off < STORE_ROWS ? rows->n - off : STORE_ROWS;
		if (k != built) {
			store_rows_text(sql, head, k, 6, tail);
			built = k;
		}
		for (size_t i = 0; i < k; i++) {
			const weft_dur_row *r = &rows->rows[off + i];
			const char        **q = &p[i * 6];
			q[0] = r->definition;
			q[1] = store_num(num[i][0], r->version);
			q[2] = r->step;
			// Counts stay far below 2^63.
			q[3] = store_num(num[i][1], (int64_t) r->count);
			q[4] = store_num(num[i][2], r->sum_ms);
			q[5] = r->samples;
		}
		rv = s->ops->exec(s, sql, p, (int) (k * 6));
		off += k;
	}
	return (rv);
}

void
weft_dur_rows_free(weft_dur_rows *rows)
{
	if (rows == NULL) {
		return;
	}
	for (size_t k = 0; k < rows->n; k++) {
		free(rows->rows[k].definition);
		free(rows->rows[k].step);
		free(rows->rows[k].samples);
	}
	free(rows->rows);
	free(rows);
}

weft_err
weft_store_load_durations(weft_store *s, weft_store_row_fn fn, void *arg)
{
	return (s->ops->query(s,
	    "SELECT definition, version, step_id, count, sum_ms, samples FROM "
	    "step_durations",
	    NULL, 0, fn, arg));
}

weft_err
weft_store_append(weft_store *s, const weft_event *evs, size_t n)
{
	return (weft_store_append_with(s, evs, n, NULL));
}

weft_err
weft_store_append_with(weft_store *s, const weft_event *evs, size_t n,
    const weft_dur_rows *durations)
{
	weft_map rows;
	lag_plan pl;
	weft_err rv;
	int64_t  t0 = weft_clock_mono_us();

	if ((rv = store_settle(s)) != WEFT_OK) {
		s->ok = false;
		return (rv);
	}
	if (n > 0 && s->found_id != 0 && s->found_id == evs[0].id) {
		s->found_id = 0;
		goto done;
	}
	s->found_id = 0;
	weft_map_init(&rows);
	weft_map_reserve(&rows, n); // at most a row per event
	lag_plan_init(&pl, t0 / 1000);
	if ((rv = s->ops->begin(s)) != WEFT_OK) {
		weft_map_fini(&rows);
		lag_plan_fini(&pl);
		return (rv);
	}
	rv = store_append_all(s, evs, n, &rows, &pl);
	// Flush also frees the merged rows, on failure too.
	weft_err frv = store_flush_steps(s, &rows, &pl);
	weft_map_fini(&rows);
	if (rv == WEFT_OK) {
		rv = frv;
	}
	if (rv == WEFT_OK) {
		rv = store_lag_mark(s, &pl);
	}
	if (rv == WEFT_OK) {
		rv = store_run_index(s, &pl, n);
	}
	if (rv == WEFT_OK && durations != NULL) {
		rv = store_put_durations(s, durations);
	}
	if (rv == WEFT_OK && s->ops->notify != NULL) {
		rv = s->ops->notify(s, evs, n);
	}
	if (rv == WEFT_OK && (rv = s->ops->commit(s)) == WEFT_EUNAVAIL &&
	    n > 0) {
		// The server may have committed and then lost us: the plan
		// waits for the answer (store_settle).
		store_unsure(s, &pl, evs[0].id);
	}
	if (rv != WEFT_OK) {
		s->ops->rollback(s);
		s->ok = false;
		lag_plan_fini(&pl);
		return (rv);
	}
	lag_commit(s, &pl);
	lag_plan_fini(&pl);
done:
	s->ok             = true;
	s->last_append_ms = weft_clock_mono_ms();
	s->commits++;
	s->events += n;
	s->commit_us_sum += (uint64_t) (weft_clock_mono_us() - t0);
	return (WEFT_OK);
}

// ---- the projection lag (store.h) ----

void
weft_store_lag_set(weft_store *s, int64_t lag_ms)
{
	s->lag_ms = lag_ms > 0 ? lag_ms : 0;
}

// store_index_due_at returns when the run index's waiting events are due
// (monotonic ms): ten lags after the first, or once the store has been
// idle a while.
static int64_t
store_index_due_at(const weft_store *s)
{
	int64_t lag  = s->index_oldest + s->lag_ms * WEFT_STORE_INDEX_LAGS;
	int64_t idle = s->last_append_ms + WEFT_STORE_IDLE_MS;

	return (idle < lag ? idle : lag);
}

bool
weft_store_lag_due(const weft_store *s, int64_t now_ms, int64_t *next_ms)
{
	int64_t rows = s->lag.count > 0 ? s->lag_oldest + s->lag_ms : 0;
	int64_t at   = rows;

	if (s->index_pending > 0) {
		int64_t i = store_index_due_at(s);
		at        = at == 0 || i < at ? i : at;
	}
	*next_ms = at;
	return (rows != 0 && now_ms >= rows);
}

bool
weft_store_index_due(const weft_store *s, int64_t now_ms)
{
	return (s->index_pending > 0 && now_ms >= store_index_due_at(s));
}

// store_flush writes, in a transaction of its own, every held row (rows
// true) and the run index's waiting events when they are due.
static weft_err
store_flush(weft_store *s, bool rows)
{
	weft_map merged;
	lag_plan pl;
	weft_err rv;

	if ((rv = store_settle(s)) != WEFT_OK) {
		return (rv);
	}
	int64_t now   = weft_clock_mono_ms();
	bool    index = weft_store_index_due(s, now);
	rows          = rows && (s->lag.count > 0 || s->lag_mark != 0);
	if (!rows && !index) {
		return (WEFT_OK);
	}
	weft_map_init(&merged);
	lag_plan_init(&pl, now);
	pl.everything = true;
	if (!rows) {
		// The held rows stay as they are (lag_commit keeps them).
		pl.mark   = s->lag_mark;
		pl.oldest = s->lag_oldest;
	}
	if ((rv = s->ops->begin(s)) == WEFT_OK &&
	    (!rows || ((rv = store_flush_steps(s, &merged, &pl)) == WEFT_OK &&
	                  (rv = store_lag_mark(s, &pl)) == WEFT_OK)) &&
	    (!index || (rv = store_index_plan_copy(s, &pl)) == WEFT_OK) &&
	    (rv = s->ops->commit(s)) == WEFT_EUNAVAIL) {
		store_unsure(s, &pl, 0); // committed or not: store_settle
	}
	weft_map_fini(&merged);
	if (rv != WEFT_OK) {
		s->ops->rollback(s);
		lag_plan_fini(&pl);
		return (rv);
	}
	lag_commit(s, &pl);
	lag_plan_fini(&pl);
	return (WEFT_OK);
}

weft_err
weft_store_lag_flush(weft_store *s)
{
	return (store_flush(s, true));
}

weft_err
weft_store_index_flush(weft_store *s)
{
	return (store_flush(s, false));
}

// The replay's merged rows, and the strings they borrow (the cells of a
// row last only for its callback).
typedef struct lag_replay {
	weft_store *s;
	weft_map    rows;
	lag_plan    pl;
	char      **own;
	size_t      nown, cap;
	char        bad[160]; // an event that cannot be read, and why
} lag_replay;

static const char *
lag_replay_keep(lag_replay *rp, const char *text)
{
	if (text == NULL) {
		return (NULL);
	}
	if (rp->nown == rp->cap) {
		rp->cap = rp->cap ? rp->cap * 2 : 256;
		rp->own = weft_xrealloc(rp->own, rp->cap * sizeof(*rp->own));
	}
	return (rp->own[rp->nown++] = weft_xstrdup(text));
}

// lag_replay_row merges one step event (id, run_id, step_id, type,
// attempt, node, ts_ms, data) into its step's row.
static int
lag_replay_row(void *arg, int ncols, const char **c)
{
	lag_replay *rp = arg;
	weft_event  e  = { 0 };

	if (ncols < 8 || c[0] == NULL || c[1] == NULL || c[2] == NULL ||
	    !weft_event_from_name(c[3], &e.type)) {
		snprintf(rp->bad, sizeof(rp->bad), "event %s: no run, no step "
		    "or an unknown type (%s)", c[0] != NULL ? c[0] : "?",
		    ncols > 3 && c[3] != NULL ? c[3] : "none");
		return (1);
	}
	if (weft_event_step_status(e.type) == NULL) {
		return (0); // progress, signals, ...: no row of their own
	}
	e.id      = strtoull(c[0], NULL, 10);
	e.run_id  = lag_replay_keep(rp, c[1]);
	e.step_id = lag_replay_keep(rp, c[2]);
	e.attempt = (uint32_t) strtoul(c[4] != NULL ? c[4] : "0", NULL, 10);
	e.node    = lag_replay_keep(rp, c[5]);
	e.ts_ms   = strtoll(c[6] != NULL ? c[6] : "0", NULL, 10);
	// Only an ending or a failure reads its data (output, error).
	if (weft_event_terminal(e.type)) {
		e.data = weft_json_parse_cell(c[7]);
	}
	step_row_apply(store_step_row(rp->s, &rp->rows, &rp->pl, &e), &e);
	json_decref(e.data);
	return (0);
}

weft_err
weft_store_lag_replay(weft_store *s, size_t *nrows)
{
	lag_replay  rp = { .s = s };
	uint64_t    from = 0;
	char        f[24];
	const char *p[1] = { f };
	weft_err    rv;
	uint64_t    before = s->lag_writes;

	if (nrows != NULL) {
		*nrows = 0;
	}
	// Its commit clears s->lag: nothing may wait on it (a fresh store
	// has nothing to settle; one that had, settles first).
	if ((rv = store_settle(s)) != WEFT_OK) {
		return (rv);
	}
	if ((rv = s->ops->query(s, "SELECT steps_from FROM weft_database",
	         NULL, 0, weft_store_u64_row, &from)) != WEFT_OK ||
	    from == 0) {
		return (rv);
	}
	weft_map_init(&rp.rows);
	lag_plan_init(&rp.pl, weft_clock_mono_ms());
	rp.pl.replay = true;
	rp.pl.all    = true; // nothing held in this process yet
	store_num(f, (int64_t) from);
	if ((rv = s->ops->begin(s)) == WEFT_OK) {
		rv = s->ops->query(s,
		    "SELECT id, run_id, step_id, type, attempt, node, ts_ms, data "
		    "FROM events WHERE id >= ? AND step_id IS NOT NULL ORDER BY id",
		    p, 1, lag_replay_row, &rp);
	}
	if (rv == WEFT_OK && rp.bad[0] != '\0') {
		snprintf(s->error, sizeof(s->error),
		    "replaying the step events from %" PRIu64 ": %s", from,
		    rp.bad);
		rv = WEFT_ESTORE;
	}
	if (rv == WEFT_OK) {
		rv = store_flush_steps(s, &rp.rows, &rp.pl);
	} else {
		store_rows_free(&rp.rows);
	}
	weft_map_fini(&rp.rows);
	if (rv == WEFT_OK) {
		s->lag_mark = from; // so that the mark is written: 0
		rv = store_lag_mark(s, &rp.pl);
	}
	if (rv == WEFT_OK) {
		rv = s->ops->commit(s);
	}
	if (rv != WEFT_OK) {
		s->ops->rollback(s);
	} else {
		lag_commit(s, &rp.pl);
		weft_log_notice("DB-REPLAY", "projected %" PRIu64 " step rows "
		    "again from event %" PRIu64 " (held when the last "
		    "coordinator stopped)", s->lag_writes - before, from);
		if (nrows != NULL) {
			*nrows = (size_t) (s->lag_writes - before);
		}
	}
	lag_plan_fini(&rp.pl);
	for (size_t i = 0; i < rp.nown; i++) {
		free(rp.own[i]);
	}
	free(rp.own);
	return (rv);
}

weft_err
weft_store_check(weft_store *s)
{
	weft_err rv;

	if (s->ops->check == NULL) {
		return (WEFT_OK);
	}
	if ((rv = s->ops->check(s)) != WEFT_OK) {
		s->ok = false;
	}
	return (rv);
}

static int
store_text_row(void *arg, int ncols, const char **cols)
{
	char *out = arg;
	if (ncols > 0 && cols[0] != NULL) {
		snprintf(out, 64, "%s", cols[0]);
	}
	return (1);
}

weft_err
weft_store_id(weft_store *s, char *out, size_t len)
{
	char     id[64] = "";
	weft_err rv;

	if ((rv = s->ops->query(s, "SELECT id FROM weft_database", NULL, 0,
	         store_text_row, id)) != WEFT_OK) {
		return (rv);
	}
	if (id[0] == '\0') {
		snprintf(s->error, sizeof(s->error),
		    "the database has no id (table weft_database is empty)");
		return (WEFT_ESTORE);
	}
	snprintf(out, len, "%s", id);
	return (WEFT_OK);
}

int
weft_store_u64_row(void *arg, int ncols, const char **cols)
{
	uint64_t *v = arg;
	if (ncols > 0 && cols[0] != NULL) {
		*v = strtoull(cols[0], NULL, 10);
	}
	return (0);
}

weft_err
weft_store_max_event_id(weft_store *s, uint64_t *out)
{
	*out = 0;
	return (s->ops->query(s, "SELECT COALESCE(MAX(id), 0) FROM events",
	    NULL, 0, weft_store_u64_row, out));
}

weft_err
weft_store_write_events(weft_store *s, const weft_event *evs, size_t n)
{
	weft_err rv = store_insert_events(s, evs, n);

	if (rv == WEFT_OK && n > 0 && s->ops->notify != NULL) {
		rv = s->ops->notify(s, evs, n);
	}
	return (rv);
}
