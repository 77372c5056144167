// retain: deleting ended runs, on the engine thread, one small batch per
// loop turn: the --retain sweep (and definitions' "retain"), and the
// requests of `weft runs delete` / DELETE /api/v1/runs.
//
// Why the engine thread: it alone knows which runs are active (a run
// brought back by `weft retry` must not be deleted under it), and it owns
// the write connection. Why batches: a turn that deleted a million runs
// would hold every result, assignment and reply behind it; one batch of
// at most a few thousand events per turn, with the mailbox drained
// between batches, keeps the engine's latency what it was.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "engine_int.h"
#include "jsonx.h"
#include "log.h"

// A `weft runs delete` request, in progress.
typedef struct retain_job {
	reply_to to;
	int64_t  before_ms;
	char     status[32]; // "" = any terminal status
	uint64_t deleted;    // runs deleted so far
} retain_job;

// How often the sweep looks, bounded by a quarter of the shortest retain
// in force, so a run is deleted at most a quarter late.
#define RETAIN_SWEEP_MAX_MS 60000
#define RETAIN_SWEEP_MIN_MS 100

void
retain_note_def(weft_engine *e, const weft_def *def)
{
	if (def->retain_ms > 0 &&
	    (e->retain_min == 0 || def->retain_ms < e->retain_min)) {
		e->retain_min = def->retain_ms;
		e->retain_due = 0; // look with the new period from now on
	}
}

static int64_t
retain_period(const weft_engine *e)
{
	int64_t keep = e->cfg.retain_ms;

	if (e->retain_min > 0 && (keep == 0 || e->retain_min < keep)) {
		keep = e->retain_min;
	}
	if (keep == 0) {
		// Nothing known to expire: a run of a definition whose
		// "retain" was registered before this start is still found,
		// at this pace, until one is loaded.
		return (RETAIN_SWEEP_MAX_MS);
	}
	keep /= 4;
	return (keep < RETAIN_SWEEP_MIN_MS
	        ? RETAIN_SWEEP_MIN_MS
	        : (keep > RETAIN_SWEEP_MAX_MS ? RETAIN_SWEEP_MAX_MS : keep));
}

void
retain_request(weft_engine *e, engine_mail *m)
{
	Weft__DeleteRunsRequest *rq = m->env->control->delete_runs;
	char                     err[256];
	retain_job              *j;

	if (rq->before_ms == 0 || rq->before_ms > (uint64_t) INT64_MAX) {
		engine_reply_now(e, m->to, WEFT_EINVAL,
		    "delete runs: before is required (the runs that ended "
		    "before it are deleted)",
		    NULL);
		return;
	}
	if (rq->status[0] != '\0' && !weft_store_status_ended(rq->status)) {
		snprintf(err, sizeof(err),
		    "delete runs: status \"%.32s\" is not an ending (want "
		    "succeeded, failed, cancelled or timed_out): only ended "
		    "runs are deleted",
		    rq->status);
		engine_reply_now(e, m->to, WEFT_EINVAL, err, NULL);
		return;
	}
	if (e->njobs == e->capjobs) {
		e->capjobs = e->capjobs ? e->capjobs * 2 : 4;
		e->jobs    = weft_xrealloc(e->jobs, e->capjobs * sizeof(*e->jobs));
	}
	j = &e->jobs[e->njobs++];
	memset(j, 0, sizeof(*j));
	j->to        = m->to;
	j->before_ms = (int64_t) rq->before_ms;
	snprintf(j->status, sizeof(j->status), "%s", rq->status);
}

bool
retain_busy(const weft_engine *e)
{
	return (e->njobs > 0 ||
	    (e->retain_due != 0 && e->retain_due <= e->now_mono));
}

static bool
retain_skip(void *arg, const char *id)
{
	// Active in the engine (a retry brought it back): never deleted.
	return (engine_run(arg, id) != NULL);
}

// retain_batch deletes one batch for f and writes its runs_deleted event
// (data: taken), numbered after every event so far. Returns the store's
// answer; *count and *more as weft_store_delete_runs.
static weft_err
retain_batch(weft_engine *e, weft_delete_filter *f, json_t *data,
    uint32_t *count, bool *more)
{
	weft_event ev = { 0 };
	weft_err   rv;
	char      *text;

	f->skip     = retain_skip;
	f->skip_arg = e;
	ev.id       = e->next_event_id;
	ev.ts_ms    = e->now_ms;
	ev.type     = WEFT_EV_RUNS_DELETED;
	ev.node     = e->node;
	ev.data     = data;
	rv          = weft_store_delete_runs(e->store, f, &ev, count, more);
	if (rv != WEFT_OK) {
		// The commit may have landed before the connection broke
		// (PostgreSQL): then the store holds ev.id, and the engine's
		// next batch must not take it again. Skip it either way: ids
		// only grow, and a gap is allowed (deleted runs leave them).
		e->next_event_id++;
	}
	if (rv == WEFT_OK && *count > 0) {
		text         = weft_json_dump(data);
		ev.data_text = text;
		e->next_event_id++;
		atomic_store(&e->last_event_id, ev.id);
		atomic_fetch_add(&e->events_committed, 1);
		weft_log_notice("RUNS-DELETED", "%s", text);
		e->io.publish(e->io.arg, &ev, 1);
		free(text);
	}
	json_decref(data);
	return (rv);
}

static json_t *
retain_data(int64_t before_ms, const char *status, const char *by)
{
	char ts[48];

	if (before_ms > 0) {
		weft_clock_format_rfc3339(before_ms, ts);
	}
	return (json_pack("{s:s?, s:s?, s:s}", "before",
	    before_ms > 0 ? ts : NULL, "status",
	    status != NULL && status[0] != '\0' ? status : NULL, "by", by));
}

// retain_job_turn runs one batch of the oldest request, and answers it
// once nothing is left.
static void
retain_job_turn(weft_engine *e)
{
	retain_job        *j = &e->jobs[0];
	weft_delete_filter f = { 0 };
	uint32_t           n = 0;
	bool               more = false;
	weft_err           rv;
	nng_msg           *msg;

	f.before_ms = j->before_ms;
	f.status    = j->status[0] != '\0' ? j->status : NULL;
	rv = retain_batch(e, &f, retain_data(j->before_ms, f.status, "request"),
	    &n, &more);
	j->deleted += n;
	if (rv == WEFT_OK && more) {
		return; // the next turn goes on, after the mailbox
	}
	if (rv != WEFT_OK) {
		char err[600];
		snprintf(err, sizeof(err),
		    "delete runs: the store failed after %" PRIu64 " runs: %s",
		    j->deleted, e->store->error);
		msg = engine_control_reply(e, rv, err, NULL);
	} else {
		json_t *body = json_pack(
		    "{s:I}", "deleted", (json_int_t) j->deleted);
		msg = engine_control_reply(e, 0, NULL, body);
		json_decref(body);
	}
	// The batches are committed: the answer may go at once.
	e->io.reply(e->io.arg, j->to, msg);
	memmove(&e->jobs[0], &e->jobs[1], (e->njobs - 1) * sizeof(*e->jobs));
	e->njobs--;
}

// retain_sweep_turn runs one batch of the sweep: runs whose definition's
// "retain" ran out, and with --retain, the others that ended before it.
static void
retain_sweep_turn(weft_engine *e)
{
	weft_delete_filter f = { 0 };
	uint32_t           n = 0;
	bool               more = false;
	weft_err           rv;

	f.expire_ms = e->now_ms;
	if (e->cfg.retain_ms > 0) {
		f.before_ms  = e->now_ms - e->cfg.retain_ms;
		f.own_retain = true;
	}
	rv = retain_batch(e, &f, retain_data(f.before_ms, NULL, "retain"), &n,
	    &more);
	if (rv != WEFT_OK) {
		weft_log_warn("RETAIN", "deleting ended runs failed: %s; trying "
		    "again in %" PRId64 " ms", e->store->error, retain_period(e));
		more = false;
	}
	e->retain_due = more ? e->now_mono : e->now_mono + retain_period(e);
}

// retain_refuse answers every queued request with err: the store is
// away, and a request must not wait for it unanswered.
static void
retain_refuse(weft_engine *e, const char *err)
{
	for (size_t k = 0; k < e->njobs; k++) {
		e->io.reply(e->io.arg, e->jobs[k].to,
		    engine_control_reply(e, WEFT_EUNAVAIL, err, NULL));
	}
	e->njobs = 0;
}

void
retain_turn(weft_engine *e)
{
	if (atomic_load(&e->stopping) ||
	    (e->njobs == 0 && e->retain_due > e->now_mono)) {
		return;
	}
	// Nothing of ours may be in flight to the store meanwhile.
	engine_quiesce(e);
	if (!atomic_load(&e->store_ok) || e->store->unsure_id != 0) {
		// The commit path owns an unavailable store. A batch whose
		// commit may have landed is looked up by its first event id,
		// which is the id a runs_deleted event would take now: no
		// deletion until the store is back.
		retain_refuse(e, "delete runs: the store is unavailable; try "
		                 "again once it is back");
		e->retain_due = e->now_mono + retain_period(e);
		return;
	}
	if (e->njobs > 0) {
		retain_job_turn(e);
	} else if (e->retain_due <= e->now_mono) {
		retain_sweep_turn(e);
	}
}

void
retain_fini(weft_engine *e)
{
	for (size_t k = 0; k < e->njobs; k++) {
		e->io.drop(e->io.arg, e->jobs[k].to);
	}
	free(e->jobs);
	e->jobs  = NULL;
	e->njobs = 0;
}
