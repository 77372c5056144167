// learn: step durations learned from execution (sched). Each success of a
// worker's attempt adds its duration (the worker's measure) to the
// statistics of its (definition name, version, step) (model/durations.h);
// the changed ones go to the store with the engine's next group commit
// (engine_flush: no write of their own), and are read back at start.
//
// What they are used for:
// - the rank of a ready unit: the longest expected path from its step to
//   the end of the run, so that, within a priority, the critical path is
//   dispatched first (--order critical-path, the default; 0 for every
//   unit under --order fifo or without history);
// - each running run's ETA: now + the longest expected remaining path
//   through its steps not ended (a running attempt counts what is left
//   of its p50), refreshed each survey round into a snapshot the query
//   thread reads (eta_ms in status).
// Engine thread, but learn_status (the query thread).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "durations.h"
#include "engine_int.h"
#include "log.h"

// How often, at most, a definition's ranks are computed again (ms).
#define LEARN_RANK_MS 1000

// One definition version's learned durations, per step index (a version's
// steps never change), found from a run through r->learned: no key is
// formatted or looked up per result or per enqueue.
typedef struct learn_def {
	size_t     n;       // steps
	weft_dur **stat;    // per step (owned), NULL without history
	bool      *dirty;   // per step: changed since the last flush
	int64_t   *expect;  // per step: p50 as of `built`, -1 none, 0 held
	int64_t   *rank;    // per step: longest expected path to the end
	uint64_t   gen;     // bumped by each duration added
	uint64_t   built;   // gen expect and rank were computed at
	int64_t    built_at; // monotonic ms of that computation
	bool       known;   // some step has history
	char      *name;    // the definition's name (owned)
	int64_t    version;
	char     **ids;     // step ids (owned), for the store's rows
} learn_def;

// A changed step, to be written with the next batch.
typedef struct learn_dirty {
	learn_def *d;
	size_t     step;
} learn_dirty;

struct learn_state {
	weft_map     defs;   // "name@version" -> learn_def *
	weft_map     loaded; // "name@version/step" -> weft_dur * read from
	                     // the store, taken by its learn_def when made
	learn_dirty *dirty;
	size_t       ndirty, capdirty;
	pthread_mutex_t lock;
	json_t         *eta; // {run id: eta ms} (guarded by lock)
};

void
learn_init(weft_engine *e)
{
	struct learn_state *l = weft_xalloc(sizeof(*l));

	weft_map_init(&l->defs);
	weft_map_init(&l->loaded);
	l->eta = json_object();
	pthread_mutex_init(&l->lock, NULL);
	e->learn = l;
}

static void
learn_def_free(learn_def *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->stat[i]);
		free(d->ids[i]);
	}
	free(d->stat);
	free(d->dirty);
	free(d->expect);
	free(d->rank);
	free(d->ids);
	free(d->name);
	free(d);
}

void
learn_fini(weft_engine *e)
{
	struct learn_state *l = e->learn;
	const char         *k;
	void               *v;

	if (l == NULL) {
		return;
	}
	for (size_t i = 0; weft_map_each(&l->defs, &i, &k, &v);) {
		learn_def_free(v);
	}
	for (size_t i = 0; weft_map_each(&l->loaded, &i, &k, &v);) {
		free(v);
	}
	weft_map_fini(&l->defs);
	weft_map_fini(&l->loaded);
	free(l->dirty);
	json_decref(l->eta);
	pthread_mutex_destroy(&l->lock);
	free(l);
	e->learn = NULL;
}

// learn_def_of returns the learned durations of r's definition version,
// made (with what the store had for it) the first time it is asked for.
static learn_def *
learn_def_of(struct learn_state *l, weft_run *r)
{
	// Learned per definition version: an expanded run's spliced steps
	// (appended after the definition's own) are its alone and not
	// learned; their expected duration is unknown.
	const weft_def *def = r->def_base != NULL ? r->def_base : r->def;
	char            k[600];
	learn_def      *d;

	if (r->learned != NULL) {
		return (r->learned);
	}
	snprintf(k, sizeof(k), "%s@%" PRId64, def->name, def->version);
	if ((d = weft_map_get(&l->defs, k)) == NULL) {
		d          = weft_xalloc(sizeof(*d));
		d->n       = def->nsteps;
		d->stat    = weft_xalloc((d->n + 1) * sizeof(*d->stat));
		d->dirty   = weft_xalloc((d->n + 1) * sizeof(*d->dirty));
		d->expect  = weft_xalloc((d->n + 1) * sizeof(*d->expect));
		d->rank    = weft_xalloc((d->n + 1) * sizeof(*d->rank));
		d->ids     = weft_xalloc((d->n + 1) * sizeof(*d->ids));
		d->gen     = 1;
		d->name    = weft_xstrdup(def->name);
		d->version = def->version;
		for (size_t i = 0; i < d->n; i++) {
			d->ids[i] = weft_xstrdup(def->steps[i].id);
			if (l->loaded.count > 0) {
				char sk[900];
				snprintf(sk, sizeof(sk), "%s/%s", k, d->ids[i]);
				d->stat[i] = weft_map_del(&l->loaded, sk);
			}
		}
		weft_map_put(&l->defs, k, d);
	}
	r->learned = d;
	return (d);
}

// learn_build computes d's expected durations and ranks for def (its
// version's) when they changed: p50 per step, -1 unknown, 0 for a step
// the coordinator holds (a wait, a delay, a child run: their time is not
// the workers', and not learned). A pass costs O(steps), so it waits for
// steps/64 new durations, or LEARN_RANK_MS: a 100,000-step run's every
// result does not cost a pass at the next enqueue, and a small
// definition's ranks follow each result.
static void
learn_build(weft_engine *e, learn_def *d, const weft_def *def)
{
	if (d->built == d->gen ||
	    ((d->gen - d->built) * 64 < d->n &&
	        e->now_mono - d->built_at < LEARN_RANK_MS)) {
		return;
	}
	d->known = false;
	for (size_t i = 0; i < d->n; i++) {
		if (def->steps[i].hold != WEFT_HOLD_NONE) {
			d->expect[i] = 0;
		} else if (d->stat[i] != NULL) {
			d->expect[i] = weft_dur_quantile(d->stat[i], 0.5);
			d->known     = true;
		} else {
			d->expect[i] = -1;
		}
	}
	weft_dur_paths(def, d->expect, NULL, d->rank, NULL);
	d->built    = d->gen;
	d->built_at = e->now_mono;
}

void
learn_observe(weft_engine *e, weft_run *r, long step, int64_t ms)
{
	struct learn_state *l = e->learn;
	learn_def          *d = learn_def_of(l, r);

	if (step < 0 || (size_t) step >= d->n) {
		return; // a spliced step (expansion): not learned
	}
	if (d->stat[step] == NULL) {
		d->stat[step] = weft_xalloc(sizeof(weft_dur));
	}
	weft_dur_add(d->stat[step], ms);
	d->gen++;
	if (!d->dirty[step]) {
		d->dirty[step] = true;
		if (l->ndirty == l->capdirty) {
			l->capdirty = l->capdirty ? l->capdirty * 2 : 256;
			l->dirty    = weft_xrealloc(l->dirty,
			       l->capdirty * sizeof(*l->dirty));
		}
		l->dirty[l->ndirty++] = (learn_dirty) { d, (size_t) step };
	}
}

int64_t
learn_rank(weft_engine *e, weft_run *r, long step)
{
	learn_def *d;

	if (e->cfg.order_fifo || e->learn == NULL) {
		return (0);
	}
	d = learn_def_of(e->learn, r);
	learn_build(e, d, r->def_base != NULL ? r->def_base : r->def);
	return (d->known && (size_t) step < d->n ? d->rank[step] : 0);
}

weft_dur_rows *
learn_take_dirty(weft_engine *e)
{
	struct learn_state *l = e->learn;
	weft_dur_rows      *rows;

	if (l == NULL || l->ndirty == 0) {
		return (NULL);
	}
	rows       = weft_xalloc(sizeof(*rows));
	rows->rows = weft_xalloc(l->ndirty * sizeof(*rows->rows));
	for (size_t k = 0; k < l->ndirty; k++) {
		learn_def *d = l->dirty[k].d;
		size_t     i = l->dirty[k].step;
		d->dirty[i]  = false;
		rows->rows[rows->n++] = (weft_dur_row) {
			.definition = weft_xstrdup(d->name), .version = d->version,
			.step = weft_xstrdup(d->ids[i]), .count = d->stat[i]->count,
			.sum_ms = d->stat[i]->sum_ms,
			.samples = weft_dur_samples_text(d->stat[i]) };
	}
	l->ndirty = 0;
	return (rows);
}

// learn_load_row takes one stored row: definition, version, step_id,
// count, sum_ms, samples.
static int
learn_load_row(void *arg, int ncols, const char **c)
{
	struct learn_state *l = arg;
	weft_dur            d;
	char                k[900];

	if (ncols < 6 || c[0] == NULL || c[1] == NULL || c[2] == NULL ||
	    c[3] == NULL || c[4] == NULL) {
		return (0);
	}
	if (!weft_dur_load(&d, strtoull(c[3], NULL, 10),
	        strtoll(c[4], NULL, 10), c[5])) {
		weft_log_warn("LEARN", "durations of %s@%s/%s unreadable: "
		    "starting over", c[0], c[1], c[2]);
		return (0);
	}
	snprintf(k, sizeof(k), "%s@%s/%s", c[0], c[1], c[2]);
	weft_dur *p = weft_map_get(&l->loaded, k);
	if (p == NULL) {
		p = weft_xalloc(sizeof(*p));
		weft_map_put(&l->loaded, k, p);
	}
	*p = d;
	return (0);
}

weft_err
learn_load(weft_engine *e)
{
	return (weft_store_load_durations(e->store, learn_load_row, e->learn));
}

void
learn_refresh_eta(weft_engine *e, int64_t now)
{
	struct learn_state *l   = e->learn;
	json_t             *eta = json_object();
	const char         *id;
	void               *v;

	for (size_t i = 0; weft_map_each(&e->runs, &i, &id, &v);) {
		weft_run  *r = v;
		learn_def *d;
		size_t     n = r->def->nsteps;
		bool       unknown;
		if (r->state != WEFT_RUN_RUNNING) {
			continue;
		}
		d = learn_def_of(l, r);
		learn_build(e, d, r->def_base != NULL ? r->def_base : r->def);
		if (!d->known) {
			continue; // no history: no ETA
		}
		int64_t *cost  = weft_xalloc((n + 1) * sizeof(*cost));
		int64_t *path  = weft_xalloc((n + 1) * sizeof(*path));
		bool    *ended = weft_xalloc((n + 1) * sizeof(*ended));
		for (size_t k = 0; k < n; k++) {
			const weft_step_rt *s = &r->steps[k];
			ended[k] = weft_step_terminal(s->state);
			cost[k]  = k < d->n ? d->expect[k] : -1; // spliced: unknown
			if (!ended[k] && cost[k] >= 0 && s->started_ms > 0 &&
			    (s->state == WEFT_STEP_RUNNING ||
			        s->state == WEFT_STEP_DISPATCHED) &&
			    s->items == NULL) {
				// What is left of it, at least 1 ms: it has
				// not ended yet.
				int64_t left = cost[k] - (now - s->started_ms);
				cost[k]      = left > 1 ? left : 1;
			}
		}
		int64_t rem = weft_dur_paths(r->def, cost, ended, path, &unknown);
		if (!unknown) {
			json_object_set_new(eta, r->id, json_integer(now + rem));
		}
		free(cost);
		free(path);
		free(ended);
	}
	pthread_mutex_lock(&l->lock);
	json_decref(l->eta);
	l->eta = eta;
	pthread_mutex_unlock(&l->lock);
}

void
learn_status(weft_engine *e, json_t *run)
{
	struct learn_state *l  = e->learn;
	const char         *id = json_string_value(json_object_get(run, "id"));
	const char *st = json_string_value(json_object_get(run, "status"));
	json_t     *v  = NULL;

	if (id != NULL && st != NULL && strcmp(st, "running") == 0) {
		pthread_mutex_lock(&l->lock);
		v = json_object_get(l->eta, id);
		v = v != NULL ? json_integer(json_integer_value(v)) : NULL;
		pthread_mutex_unlock(&l->lock);
	}
	json_object_set_new(run, "eta_ms", v != NULL ? v : json_null());
}
