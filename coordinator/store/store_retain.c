// store_retain: deleting ended runs, with their steps, events and secrets,
// in batches small enough that the engine, whose thread runs them between
// its own commits, never waits long (--retain, "retain", weft runs delete).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "jsonx.h"
#include "log.h"
#include "store.h"

// The run statuses that end a run, from the event list: the run status of
// every run event that is terminal. NULL for every other type.
#define RETAIN_ENDED(sfx, name, scope, term, step_st, run_st) \
	(WEFT_EV_SCOPE_##scope == WEFT_EV_SCOPE_RUN && (term)) ? (run_st) : NULL,
static const char *const retain_ended[] = { WEFT_EVENT_TYPES(RETAIN_ENDED) };
#undef RETAIN_ENDED

#define RETAIN_MAX_RUNS 500
#define RETAIN_MAX_EVENTS 2500

bool
weft_store_status_ended(const char *status)
{
	for (size_t i = 0; status != NULL && i < WEFT_EV_COUNT; i++) {
		if (retain_ended[i] != NULL &&
		    strcmp(retain_ended[i], status) == 0) {
			return (true);
		}
	}
	return (false);
}

// retain_in_ended writes "status IN ('succeeded', ...)" into buf.
static void
retain_in_ended(char *buf, size_t len)
{
	size_t o = (size_t) snprintf(buf, len, "status IN (");

	for (size_t i = 0; i < WEFT_EV_COUNT && o < len; i++) {
		if (retain_ended[i] != NULL) {
			o += (size_t) snprintf(buf + o, len - o, "%s'%s'",
			    buf[o - 1] == '(' ? "" : ", ", retain_ended[i]);
		}
	}
	if (o < len) {
		snprintf(buf + o, len - o, ")");
	}
}

// One batch being chosen: run ids in order, and what they cost.
typedef struct retain_pick {
	const weft_delete_filter *f;
	char                    **ids;   // owned
	size_t                    n, cap;
	uint64_t                  cost;  // estimated events of the picked
	uint32_t                  max_runs;
	uint64_t                  max_events;
	uint32_t                  rows;  // rows the query returned
	bool                      full;  // a run was left for the next call
} retain_pick;

static int
retain_row(void *arg, int ncols, const char **cols)
{
	retain_pick *p = arg;
	uint64_t     cost;

	p->rows++;
	if (ncols < 2 || cols[0] == NULL) {
		return (0);
	}
	if (p->f->skip != NULL && p->f->skip(p->f->skip_arg, cols[0])) {
		return (0);
	}
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->ids[i], cols[0]) == 0) {
			return (0); // both queries found it
		}
	}
	// A run's events: about four per step (ready, dispatched, started,
	// ended) plus its own. The first run is taken whatever it costs.
	cost = (cols[1] != NULL ? strtoull(cols[1], NULL, 10) : 0) * 4 + 4;
	if (p->n >= p->max_runs ||
	    (p->n > 0 && p->cost + cost > p->max_events)) {
		p->full = true;
		return (1);
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->ids = weft_xrealloc(p->ids, p->cap * sizeof(*p->ids));
	}
	p->ids[p->n++] = weft_xstrdup(cols[0]);
	p->cost += cost;
	return (0);
}

// retain_choose picks the batch: runs whose own retain ran out first,
// then runs that ended before the cutoff, oldest first.
static weft_err
retain_choose(weft_store *s, const weft_delete_filter *f, retain_pick *p)
{
	char        ended[160], sql[512], lim[16], at[24];
	const char *q[3];
	weft_err    rv;
	int         nq;

	retain_in_ended(ended, sizeof(ended));
	// One row more than fits, so a full batch knows more are waiting.
	snprintf(lim, sizeof(lim), "%u", p->max_runs + 1);
	if (f->expire_ms > 0) {
		snprintf(at, sizeof(at), "%" PRId64, f->expire_ms);
		snprintf(sql, sizeof(sql),
		    "SELECT id, steps_total FROM runs WHERE expire_ms IS NOT "
		    "NULL AND expire_ms < ? AND %s ORDER BY expire_ms LIMIT ?",
		    ended);
		q[0] = at;
		q[1] = lim;
		p->rows = 0;
		if ((rv = s->ops->query(s, sql, q, 2, retain_row, p)) !=
		    WEFT_OK) {
			return (rv);
		}
		p->full = p->full || p->rows > p->max_runs;
	}
	if (f->before_ms <= 0 || p->full) {
		return (WEFT_OK);
	}
	snprintf(at, sizeof(at), "%" PRId64, f->before_ms);
	snprintf(sql, sizeof(sql),
	    "SELECT id, steps_total FROM runs WHERE ended_ms IS NOT NULL AND "
	    "ended_ms < ? AND %s%s%s ORDER BY ended_ms LIMIT ?",
	    ended, f->status != NULL ? " AND status = ?" : "",
	    f->own_retain ? " AND retain_ms IS NULL" : "");
	nq      = 0;
	q[nq++] = at;
	if (f->status != NULL) {
		q[nq++] = f->status;
	}
	q[nq++] = lim;
	p->rows = 0;
	if ((rv = s->ops->query(s, sql, q, nq, retain_row, p)) != WEFT_OK) {
		return (rv);
	}
	p->full = p->full || p->rows > p->max_runs;
	return (WEFT_OK);
}

// retain_delete_one deletes run id and everything that hangs off it.
static weft_err
retain_delete_one(weft_store *s, const char *id, const char *mark)
{
	// The run's row goes last; on PostgreSQL these are pipelined, so
	// the order costs nothing.
	static const char *const sql[] = {
		"DELETE FROM run_events WHERE run_id = ?",
		"DELETE FROM steps WHERE run_id = ?",
		"DELETE FROM run_secrets WHERE run_id = ?",
		"DELETE FROM run_tags WHERE run_id = ?",
		"DELETE FROM runs WHERE id = ?",
	};
	// The blobs only this run refers to go with it; a blob another run
	// (or a cluster event, run_id '') refers to stays.
	static const char *const blobs[] = {
		"DELETE FROM blob_chunks WHERE hash IN (SELECT r.hash FROM "
		"blob_refs r WHERE r.run_id = ? AND NOT EXISTS (SELECT 1 FROM "
		"blob_refs o WHERE o.hash = r.hash AND o.run_id <> ?))",
		"DELETE FROM blobs WHERE hash IN (SELECT r.hash FROM blob_refs r "
		"WHERE r.run_id = ? AND NOT EXISTS (SELECT 1 FROM blob_refs o "
		"WHERE o.hash = r.hash AND o.run_id <> ?))",
	};
	const char *p[2]     = { id, id };
	const char *three[3] = { id, mark, id };
	weft_err    rv;

	// Its events first, found through the run index (store.h).
	rv = s->ops->exec(s,
	    "DELETE FROM events WHERE id IN " WEFT_RUN_EVENT_IDS, three, 3);
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && rv == WEFT_OK;
	     i++) {
		rv = s->ops->exec(s, sql[i], p, 1);
	}
	for (size_t i = 0;
	     i < sizeof(blobs) / sizeof(blobs[0]) && rv == WEFT_OK; i++) {
		rv = s->ops->exec(s, blobs[i], p, 2);
	}
	if (rv == WEFT_OK) {
		rv = s->ops->exec(s, "DELETE FROM blob_refs WHERE run_id = ?",
		    p, 1);
	}
	return (rv);
}

weft_err
weft_store_delete_runs(weft_store *s, const weft_delete_filter *f,
    weft_event *audit, uint32_t *count, bool *more)
{
	retain_pick p;
	weft_err    rv;
	char       *text = NULL;
	uint64_t    to   = 0; // the run index's mark, once copied

	*count = 0;
	*more  = false;
	memset(&p, 0, sizeof(p));
	p.f          = f;
	p.max_runs   = f->max_runs > 0 ? f->max_runs : RETAIN_MAX_RUNS;
	p.max_events = f->max_events > 0 ? f->max_events : RETAIN_MAX_EVENTS;
	if ((rv = s->ops->begin(s)) != WEFT_OK) {
		return (rv);
	}
	// Chosen inside the transaction that deletes them: on SQLite it
	// holds the write lock, so what was chosen is what is deleted.
	if ((rv = retain_choose(s, f, &p)) != WEFT_OK) {
		goto done;
	}
	// The events that wait for the run index go in first: each run's
	// delete then finds its events in run_events, not by a scan of
	// them all per run.
	if (p.n > 0 && (rv = weft_store_index_copy(s, &to)) != WEFT_OK) {
		goto done;
	}
	// Nothing waits after that copy: the mark is where it put it.
	char mark[24];
	snprintf(mark, sizeof(mark), "%" PRIu64, to);
	for (size_t i = 0; i < p.n && rv == WEFT_OK; i++) {
		rv = retain_delete_one(s, p.ids[i], mark);
	}
	if (rv == WEFT_OK && p.n > 0) {
		// The time index's buckets wholly before the oldest event
		// left describe nothing any more (the others only widen).
		char        b[24];
		const char *q[1] = { b };
		snprintf(b, sizeof(b), "%d", WEFT_EVENT_TIME_BUCKET);
		rv = s->ops->exec(s,
		    "DELETE FROM event_time WHERE bucket < (SELECT "
		    "COALESCE(MIN(id), 0) FROM events) / ?",
		    q, 1);
	}
	if (rv == WEFT_OK && p.n > 0) {
		weft_event ev = *audit;
		json_object_set_new(
		    audit->data, "count", json_integer((json_int_t) p.n));
		text         = weft_json_dump(audit->data);
		ev.data_text = text;
		rv           = weft_store_write_events(s, &ev, 1);
	}
	if (rv == WEFT_OK) {
		rv = s->ops->commit(s);
	}
done:
	if (rv != WEFT_OK) {
		s->ops->rollback(s);
		s->ok = false;
	} else {
		s->ok  = true;
		*count = (uint32_t) p.n;
		*more  = p.full && p.n > 0;
		if (to > 0) {
			weft_store_index_moved(s, to);
		}
	}
	for (size_t i = 0; i < p.n; i++) {
		free(p.ids[i]);
	}
	free(p.ids);
	free(text);
	return (rv);
}
