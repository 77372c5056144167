// admit: concurrency limits on runs (sched). A new run stays queued until
// every limit that applies to it has room: --max-running-runs, its
// definition's max_concurrent_runs, its concurrency key's limit
// (model/admission.h decides). Queued runs wait on a heap ordered by priority
// (higher first), then creation time; the admission pass (admit_turn, once
// per iteration when something changed) starts, in that order, every run
// that fits, and skips those that do not — a run of a full key never holds
// back one of another key. Engine thread; the query thread reads the
// snapshot (why each queued run waits, the gauges) under a lock.
//
// Admitted runs are counted from their start to their end; a paused run
// keeps its place. Child runs (sub-workflows) are neither held back nor
// counted: a parent holding a place while its child waits for one would
// deadlock.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine_int.h"
#include "jsonx.h"
#include "admission.h"
#include "log.h"
#include "readyq.h"

struct admit_state {
	uint32_t    running; // admitted runs not ended
	weft_map    by_def;  // definition name -> running (uintptr_t)
	weft_map    by_key;  // "name\tkey" -> running (uintptr_t)
	weft_readyq queue;   // queued runs (referenced): key = priority,
	                     // rank = -created_ms (older first)
	bool        dirty;   // a count or the queue changed: pass due
	// Snapshot for the query thread (guarded by lock).
	pthread_mutex_t lock;
	json_t         *waits;  // {run id: waiting_for}
	json_t         *gauges; // {"runs": {...}, "definitions": {name:
	                        // {...}}, "keys": {"name\tkey": {...}}}
};

static void
admit_push(struct admit_state *a, weft_run *r)
{
	weft_readyq_push(&a->queue, r->priority, -r->created_ms, r,
	    WEFT_REF(-1));
}

static uint32_t
admit_count_of(const weft_map *m, const char *k)
{
	return ((uint32_t) (uintptr_t) weft_map_get(m, k));
}

static void
admit_count_add(weft_map *m, const char *k, int d)
{
	uint32_t n = admit_count_of(m, k);

	n = d > 0 ? n + 1 : (n > 0 ? n - 1 : 0);
	if (n == 0) {
		weft_map_del(m, k);
	} else {
		weft_map_put(m, k, (void *) (uintptr_t) n);
	}
}

static void
admit_keyname(const weft_run *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s\t%s", r->def->name, r->limit_key);
}

// admit_uses fills the three limits that apply to r.
static void
admit_uses(weft_engine *e, const weft_run *r, weft_limit_use *runs,
    weft_limit_use *def, weft_limit_use *key)
{
	struct admit_state *a = e->admit;
	char                k[700];

	*runs = (weft_limit_use) { a->running, e->cfg.max_running_runs };
	*def  = (weft_limit_use) { admit_count_of(&a->by_def, r->def->name),
		 r->def->max_concurrent_runs };
	*key  = (weft_limit_use) { 0, 0 };
	if (r->limit_key != NULL) {
		admit_keyname(r, k, sizeof(k));
		*key = (weft_limit_use) { admit_count_of(&a->by_key, k),
			r->def->concurrency_limit };
	}
}

static void
admit_hold(weft_engine *e, weft_run *r, int d)
{
	struct admit_state *a = e->admit;
	char                k[700];

	a->running = d > 0 ? a->running + 1 : a->running - 1;
	admit_count_add(&a->by_def, r->def->name, d);
	if (r->limit_key != NULL) {
		admit_keyname(r, k, sizeof(k));
		admit_count_add(&a->by_key, k, d);
	}
	r->admitted = d > 0;
	a->dirty    = true;
}

void
admit_init(weft_engine *e)
{
	struct admit_state *a = weft_xalloc(sizeof(*a));

	weft_map_init(&a->by_def);
	weft_map_init(&a->by_key);
	pthread_mutex_init(&a->lock, NULL);
	a->waits  = json_object();
	a->gauges = json_object();
	e->admit  = a;
}

void
admit_fini(weft_engine *e)
{
	struct admit_state *a = e->admit;

	if (a == NULL) {
		return;
	}
	// The runs are freed with the engine's map; the references go too.
	weft_readyq_fini(&a->queue);
	weft_map_fini(&a->by_def);
	weft_map_fini(&a->by_key);
	json_decref(a->waits);
	json_decref(a->gauges);
	pthread_mutex_destroy(&a->lock);
	free(a);
	e->admit = NULL;
}

char *
admit_key(const weft_def *def, json_t *input, json_t *params, char *err,
    size_t errlen)
{
	json_t *doc, *out;
	char    why[400];
	char   *key;

	if (def->concurrency_key == NULL) {
		return (NULL);
	}
	doc = json_pack("{s:O, s:O}", "input", input, "params", params);
	out = weft_json_render(def->concurrency_key, doc, why, sizeof(why));
	json_decref(doc);
	if (out == NULL) {
		snprintf(err, errlen, "run: concurrency.key does not render: %s",
		    why);
		return (NULL);
	}
	key = json_is_string(out) ? weft_xstrdup(json_string_value(out))
	                          : weft_json_dump(out);
	json_decref(out);
	return (key);
}

void
admit_run(weft_engine *e, weft_run *r, int64_t now, bool at_once)
{
	struct admit_state *a = e->admit;
	weft_limit_use      runs, def, key;

	admit_uses(e, r, &runs, &def, &key);
	if (at_once && a->queue.count == 0 &&
	    weft_limit_admit(&runs, &def, &key) == WEFT_LIMIT_NONE) {
		admit_hold(e, r, +1);
		weft_run_start(r, now, &e->out);
		return;
	}
	r->refs++;
	admit_push(a, r);
	a->dirty = true;
}

void
admit_count(weft_engine *e, weft_run *r)
{
	if (!r->admitted) {
		admit_hold(e, r, +1);
	}
}

static bool
admit_is_run(const weft_readyq_ent *ent, void *arg)
{
	return (ent->run == arg);
}

void
admit_release(weft_engine *e, weft_run *r)
{
	struct admit_state *a = e->admit;

	if (r->admitted) {
		admit_hold(e, r, -1);
		return;
	}
	// A queued run cancelled (or timed out) leaves the queue now: it
	// must not keep the run in memory until the next pass.
	if (weft_readyq_drop(&a->queue, admit_is_run, r) > 0) {
		a->dirty = true;
		engine_run_rele(e, r);
	}
}

// admit_gauge adds one to a gauge's counter field.
static void
admit_gauge(json_t *g, const char *name, uint32_t running, uint32_t limit,
    bool waiting)
{
	json_t *o = json_object_get(g, name);

	if (o == NULL) {
		o = json_pack("{s:I, s:I, s:I}", "running", (json_int_t) running,
		    "limit", (json_int_t) limit, "waiting", (json_int_t) 0);
		json_object_set_new(g, name, o);
	}
	if (waiting) {
		json_object_set_new(o, "waiting",
		    json_integer(json_integer_value(json_object_get(o,
		                     "waiting")) + 1));
	}
}

// admit_note records queued run r in the gauges (g: definitions, keys).
static void
admit_note(json_t *defs, json_t *keys, const weft_run *r,
    const weft_limit_use *def, const weft_limit_use *key, bool waiting)
{
	char k[700];

	if (def->limit > 0) {
		admit_gauge(defs, r->def->name, def->running, def->limit, waiting);
	}
	if (key->limit > 0) {
		admit_keyname(r, k, sizeof(k));
		admit_gauge(keys, k, key->running, key->limit, waiting);
	}
}

// admit_idle_gauges adds to g a gauge for each count of m (keys: "name"
// or "name\tkey") that has none: running runs, nobody waiting. Its limit
// is the latest version's of the definition; none (0, or not cached): no
// gauge.
static void
admit_idle_gauges(weft_engine *e, json_t *g, const weft_map *m, bool keys)
{
	const char *k;
	void       *v;
	char        name[300];

	for (size_t i = 0; weft_map_each(m, &i, &k, &v);) {
		if (json_object_get(g, k) != NULL) {
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int) strcspn(k, "\t"), k);
		def_entry *d     = weft_map_get(&e->latest, name);
		uint32_t   limit = d == NULL ? 0
			    : keys ? d->def->concurrency_limit
		             : d->def->max_concurrent_runs;
		if (limit == 0) {
			continue; // no such limit: no gauge
		}
		json_object_set_new(g, k, json_pack("{s:I, s:I, s:I}", "running",
		    (json_int_t) (uintptr_t) v, "limit", (json_int_t) limit,
		    "waiting", (json_int_t) 0));
	}
}

void
admit_turn(weft_engine *e, int64_t now)
{
	struct admit_state *a = e->admit;
	weft_run          **kept;
	size_t              nkept = 0, total = a->queue.count;
	weft_readyq_ent     ent;
	json_t             *waits = json_object(), *defs = json_object();
	json_t             *keys  = json_object();
	uint32_t            waiting = 0;

	if (!a->dirty) {
		json_decref(waits);
		json_decref(defs);
		json_decref(keys);
		return;
	}
	a->dirty = false;
	kept     = weft_xalloc((total + 1) * sizeof(*kept));
	// In order; the runs still held back go back in the same order.
	while (weft_readyq_pop(&a->queue, &ent)) {
		weft_run            *r = ent.run;
		weft_limit_use       runs, def, key;
		enum weft_limit_kind k;
		// Queued, or scheduled with its time come (sched.c): else it
		// ended (cancelled) meanwhile and leaves the queue.
		if (r->state != WEFT_RUN_QUEUED &&
		    r->state != WEFT_RUN_SCHEDULED) {
			engine_run_rele(e, r);
			continue;
		}
		admit_uses(e, r, &runs, &def, &key);
		if ((k = weft_limit_admit(&runs, &def, &key)) ==
		    WEFT_LIMIT_NONE) {
			admit_hold(e, r, +1);
			a->dirty = false; // this pass accounts for it
			weft_run_start(r, now, &e->out);
			engine_run_rele(e, r);
			continue;
		}
		json_object_set_new(waits, r->id,
		    weft_limit_waiting_for(k,
		        k == WEFT_LIMIT_RUNS ? &runs
		            : k == WEFT_LIMIT_DEF ? &def
		                                  : &key,
		        r->limit_key));
		admit_note(defs, keys, r, &def, &key, true);
		waiting++;
		kept[nkept++] = r;
	}
	for (size_t i = 0; i < nkept; i++) {
		admit_push(a, kept[i]);
	}
	free(kept);
	// The gauges of the limits with running runs but nobody waiting.
	admit_idle_gauges(e, keys, &a->by_key, true);
	admit_idle_gauges(e, defs, &a->by_def, false);
	json_t *gauges = json_pack("{s:{s:I, s:I, s:I}, s:o, s:o}", "runs",
	    "running", (json_int_t) a->running, "limit",
	    (json_int_t) e->cfg.max_running_runs, "waiting",
	    (json_int_t) waiting, "definitions", defs, "keys", keys);
	pthread_mutex_lock(&a->lock);
	json_decref(a->waits);
	json_decref(a->gauges);
	a->waits  = waits;
	a->gauges = gauges;
	pthread_mutex_unlock(&a->lock);
}

void
admit_status(weft_engine *e, json_t *run)
{
	struct admit_state *a  = e->admit;
	const char         *id = json_string_value(json_object_get(run, "id"));
	const char *st = json_string_value(json_object_get(run, "status"));
	json_t     *w;

	if (id == NULL || st == NULL ||
	    (strcmp(st, "queued") != 0 && strcmp(st, "scheduled") != 0)) {
		return;
	}
	pthread_mutex_lock(&a->lock);
	w = json_deep_copy(json_object_get(a->waits, id));
	pthread_mutex_unlock(&a->lock);
	if (w != NULL) {
		json_object_set_new(run, "waiting_for", w);
	}
}

json_t *
admit_gauges(weft_engine *e)
{
	struct admit_state *a = e->admit;
	json_t             *g;

	pthread_mutex_lock(&a->lock);
	g = json_deep_copy(a->gauges);
	pthread_mutex_unlock(&a->lock);
	return (g);
}
