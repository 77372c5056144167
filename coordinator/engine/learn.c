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

// One definition version's ranks, rebuilt when its statistics changed.
typedef struct learn_def {
	uint64_t gen;   // bumped by each duration added to one of its steps
	uint64_t built; // gen the ranks were computed at (0: never)
	int64_t  built_at; // monotonic ms of that computation
	int64_t *rank;  // per step (owned); NULL before the first build
	size_t   n;
	bool     known; // some step has history
} learn_def;

struct learn_state {
	weft_map stats; // "name@version/step" -> weft_dur *
	weft_map defs;  // "name@version" -> learn_def *
	json_t  *dirty; // keys of stats changed since the last flush
	pthread_mutex_t lock;
	json_t         *eta; // {run id: eta ms} (guarded by lock)
};

static void
learn_key(const weft_def *def, const char *step, char *buf, size_t len)
{
	snprintf(buf, len, "%s@%" PRId64 "/%s", def->name, def->version, step);
}

static learn_def *
learn_def_get(struct learn_state *l, const char *name, int64_t version)
{
	char       k[300];
	learn_def *d;

	snprintf(k, sizeof(k), "%s@%" PRId64, name, version);
	if ((d = weft_map_get(&l->defs, k)) == NULL) {
		d      = weft_xalloc(sizeof(*d));
		d->gen = 1;
		weft_map_put(&l->defs, k, d);
	}
	return (d);
}

void
learn_init(weft_engine *e)
{
	struct learn_state *l = weft_xalloc(sizeof(*l));

	weft_map_init(&l->stats);
	weft_map_init(&l->defs);
	l->dirty = json_object();
	l->eta   = json_object();
	pthread_mutex_init(&l->lock, NULL);
	e->learn = l;
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
	for (size_t i = 0; weft_map_each(&l->stats, &i, &k, &v);) {
		free(v);
	}
	for (size_t i = 0; weft_map_each(&l->defs, &i, &k, &v);) {
		free(((learn_def *) v)->rank);
		free(v);
	}
	weft_map_fini(&l->stats);
	weft_map_fini(&l->defs);
	json_decref(l->dirty);
	json_decref(l->eta);
	pthread_mutex_destroy(&l->lock);
	free(l);
	e->learn = NULL;
}

// learn_dur returns the statistics of step `step` of def, or NULL.
static weft_dur *
learn_dur(struct learn_state *l, const weft_def *def, long step)
{
	char k[600];

	learn_key(def, def->steps[step].id, k, sizeof(k));
	return (weft_map_get(&l->stats, k));
}

// learn_expect is step i's expected duration: its p50, -1 unknown; 0 for
// a step the coordinator holds (a wait, a delay, a child run: their time
// is not the workers', and not learned).
static int64_t
learn_expect(struct learn_state *l, const weft_def *def, long i)
{
	weft_dur *d;

	if (def->steps[i].hold != WEFT_HOLD_NONE) {
		return (0);
	}
	d = learn_dur(l, def, i);
	return (d != NULL ? weft_dur_quantile(d, 0.5) : -1);
}

void
learn_observe(weft_engine *e, weft_run *r, long step, int64_t ms)
{
	struct learn_state *l = e->learn;
	char                k[600];
	weft_dur           *d;

	learn_key(r->def, r->def->steps[step].id, k, sizeof(k));
	if ((d = weft_map_get(&l->stats, k)) == NULL) {
		d = weft_xalloc(sizeof(*d));
		weft_map_put(&l->stats, k, d);
	}
	weft_dur_add(d, ms);
	json_object_set_new(l->dirty, k, json_true());
	learn_def_get(l, r->def->name, r->def->version)->gen++;
}

int64_t
learn_rank(weft_engine *e, weft_run *r, long step)
{
	struct learn_state *l = e->learn;
	learn_def          *d;

	if (e->cfg.order_fifo || l == NULL) {
		return (0);
	}
	d = learn_def_get(l, r->def->name, r->def->version);
	// Again when durations changed, at most once per LEARN_RANK_MS: a
	// 100,000-step run's every result would otherwise cost a pass
	// over its definition at the next enqueue.
	// Ranks without any history yet are rebuilt at once.
	if (d->built != d->gen &&
	    (!d->known || e->now_mono - d->built_at >= LEARN_RANK_MS)) {
		int64_t *cost = weft_xalloc((r->def->nsteps + 1) * sizeof(*cost));
		d->known      = false;
		for (size_t i = 0; i < r->def->nsteps; i++) {
			cost[i] = learn_expect(l, r->def, (long) i);
			d->known |= cost[i] > 0;
		}
		free(d->rank);
		d->rank = weft_xalloc((r->def->nsteps + 1) * sizeof(*d->rank));
		d->n    = r->def->nsteps;
		weft_dur_paths(r->def, cost, NULL, d->rank, NULL);
		free(cost);
		d->built    = d->gen;
		d->built_at = e->now_mono;
	}
	return (d->known && (size_t) step < d->n ? d->rank[step] : 0);
}

json_t *
learn_take_dirty(weft_engine *e)
{
	struct learn_state *l = e->learn;
	json_t             *rows;
	const char         *k;
	json_t             *v;

	if (l == NULL || json_object_size(l->dirty) == 0) {
		return (NULL);
	}
	rows = json_array();
	json_object_foreach (l->dirty, k, v) {
		weft_dur   *d     = weft_map_get(&l->stats, k);
		const char *at    = strrchr(k, '@');
		const char *slash = at != NULL ? strchr(at, '/') : NULL;
		char       *samples;
		if (d == NULL || at == NULL || slash == NULL) {
			continue;
		}
		samples = weft_dur_samples_text(d);
		json_array_append_new(rows,
		    json_pack("{s:s%, s:I, s:s, s:I, s:I, s:s}", "definition", k,
		        (size_t) (at - k), "version",
		        (json_int_t) strtoll(at + 1, NULL, 10), "step", slash + 1,
		        "count", (json_int_t) d->count, "sum_ms",
		        (json_int_t) d->sum_ms, "samples", samples));
		free(samples);
	}
	json_object_clear(l->dirty);
	return (rows);
}

// learn_load_row takes one stored row: definition, version, step_id,
// count, sum_ms, samples.
static int
learn_load_row(void *arg, int ncols, const char **c)
{
	struct learn_state *l = arg;
	weft_dur            d;
	char                k[600];

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
	weft_dur *p = weft_map_get(&l->stats, k);
	if (p == NULL) {
		p = weft_xalloc(sizeof(*p));
		weft_map_put(&l->stats, k, p);
	}
	*p = d;
	learn_def_get(l, c[0], strtoll(c[1], NULL, 10))->gen++;
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
		weft_run *r = v;
		size_t    n = r->def->nsteps;
		bool      unknown, any = false;
		if (r->state != WEFT_RUN_RUNNING) {
			continue;
		}
		int64_t *cost  = weft_xalloc((n + 1) * sizeof(*cost));
		int64_t *path  = weft_xalloc((n + 1) * sizeof(*path));
		bool    *ended = weft_xalloc((n + 1) * sizeof(*ended));
		for (size_t k = 0; k < n; k++) {
			const weft_step_rt *s = &r->steps[k];
			ended[k] = weft_step_terminal(s->state);
			cost[k]  = learn_expect(l, r->def, (long) k);
			any |= cost[k] > 0;
			if (!ended[k] && cost[k] > 0 && s->started_ms > 0 &&
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
		if (any && !unknown) {
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
