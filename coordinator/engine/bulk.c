// bulk: one chunk of a bulk action (weft cancel|pause|resume|retry with
// filters, POST /api/v1/runs/bulk/{action}). The engine acts on at most
// BULK_CHUNK_MAX matching runs per request, in id order after a cursor,
// and answers a report per run with the next cursor; the caller (the CLI,
// or io/http.c for one HTTP request) sends the next chunk. Other requests
// are served between chunks, so thousands of runs never hold the engine
// for more than one chunk's work.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "log.h"
#include "tags.h"

// The most runs one chunk acts on (also the default).
#define BULK_CHUNK_MAX 500

bool
bulk_tag_filter(tag_filter *t, char **tags, size_t n, weft_runs_filter *f,
    char *err, size_t errlen)
{
	if (n > WEFT_RUNS_TAGS_MAX) {
		snprintf(err, errlen, "tag: %zu tag filters, over the limit of %d",
		    n, WEFT_RUNS_TAGS_MAX);
		return (false);
	}
	for (size_t i = 0; i < n; i++) {
		if (!weft_tag_parse(tags[i], t->keys[i], sizeof(t->keys[i]),
		        t->values[i], sizeof(t->values[i]), err, errlen)) {
			return (false);
		}
		t->kp[i] = t->keys[i];
		t->vp[i] = t->values[i];
	}
	f->tag_keys   = t->kp;
	f->tag_values = t->vp;
	f->ntags      = n;
	return (true);
}

// bulk_check refuses a chunk whose filters are malformed, naming the
// field; false with err set.
static bool
bulk_check(const Weft__BulkRequest *q, char *err, size_t errlen)
{
	enum weft_run_state st;

	if (strcmp(q->action, "cancel") != 0 && strcmp(q->action, "pause") != 0 &&
	    strcmp(q->action, "resume") != 0 && strcmp(q->action, "retry") != 0) {
		snprintf(err, errlen, "bulk: action \"%s\": use cancel, pause, "
		    "resume or retry", q->action);
		return (false);
	}
	if (q->status[0] != '\0' && !weft_run_state_parse(q->status, &st)) {
		// The list from the run machine's states, so it cannot go
		// stale when a state is added.
		char   names[256] = "";
		size_t o          = 0;
		for (int i = 0; i < WEFT_RUN_NSTATES && o < sizeof(names); i++) {
			o += (size_t) snprintf(names + o, sizeof(names) - o, "%s%s",
			    i > 0 ? ", " : "",
			    weft_run_state_name((enum weft_run_state) i));
		}
		snprintf(err, errlen, "bulk: status \"%.64s\": not a run status "
		    "(%s)", q->status, names);
		return (false);
	}
	if (q->status[0] == '\0' && q->definition[0] == '\0' &&
	    q->since_ms == 0 && q->n_tags == 0) {
		snprintf(err, errlen, "bulk: no filter: give at least one of "
		    "status, definition, since, tag (a bulk action on every "
		    "run is refused)");
		return (false);
	}
	if (q->limit > BULK_CHUNK_MAX) {
		snprintf(err, errlen, "bulk: limit %" PRIu32 ": at most %d runs "
		    "per chunk", q->limit, BULK_CHUNK_MAX);
		return (false);
	}
	return (true);
}

// bulk_result is one run's line of the report.
static json_t *
bulk_result(const char *id, const char *result, const char *reason)
{
	return (json_pack("{s:s, s:s, s:s?}", "run", id, "result", result,
	    "reason", reason));
}

void
bulk_handle(weft_engine *e, engine_mail *m)
{
	const Weft__BulkRequest *q = m->env->control->bulk;
	weft_runs_filter         f = { 0 };
	tag_filter               tf;
	char                     err[600];
	json_t                  *runs = NULL, *results, *run;
	size_t                   i;
	uint32_t                 limit;
	size_t                   done = 0;

	if (!bulk_check(q, err, sizeof(err)) ||
	    !bulk_tag_filter(&tf, q->tags, q->n_tags, &f, err, sizeof(err))) {
		engine_reply_now(e, m->to, WEFT_EINVAL, err, NULL);
		return;
	}
	f.status     = q->status[0] != '\0' ? q->status : NULL;
	f.definition = q->definition[0] != '\0' ? q->definition : NULL;
	f.since_ms   = (int64_t) q->since_ms;
	// The first chunk fixes the snapshot (now); the caller sends it
	// back with the next ones, so runs made meanwhile are left alone.
	f.until_ms   = q->until_ms > 0 ? (int64_t) q->until_ms : e->now_ms + 1;
	limit        = q->limit == 0 ? BULK_CHUNK_MAX : q->limit;
	if (weft_store_match_runs(engine_quiesce(e), &f, q->after, limit,
	        &runs) != WEFT_OK) {
		snprintf(err, sizeof(err), "bulk: the store did not answer: %s",
		    e->store->error);
		engine_reply_now(e, m->to, WEFT_EUNAVAIL, err, NULL);
		return;
	}
	results = json_array();
	json_array_foreach (runs, i, run) {
		const char *id = json_string_value(json_object_get(run, "id"));
		weft_err    rv = control_lifecycle_one(e, id, q->action, NULL,
		       q->dry_run, err, sizeof(err));
		if (rv == WEFT_OK) {
			done++;
			json_array_append_new(results, bulk_result(id, "done",
			    q->dry_run ? "dry run: would apply" : NULL));
		} else {
			// A state that does not allow it is a skip (the run
			// moved on since it matched, or never could); anything
			// else an error.
			json_array_append_new(results, bulk_result(id,
			    rv == WEFT_ESTATE ? "skipped" : "error", err));
		}
	}
	weft_log_info("RUN-BULK",
	    "action=%s dry=%d matched=%zu done=%zu after=%s", q->action,
	    (int) q->dry_run, json_array_size(runs), done,
	    q->after[0] != '\0' ? q->after : "-");
	engine_reply_now(e, m->to, 0, NULL,
	    json_pack("{s:o, s:I, s:o}", "results", results, "until_ms",
	        (json_int_t) f.until_ms, "next_after",
	        json_array_size(runs) == limit
	            ? json_copy(json_object_get(
	                  json_array_get(runs, json_array_size(runs) - 1), "id"))
	            : json_null()));
	json_decref(runs);
}
