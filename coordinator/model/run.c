// run: the run state machine and the pure bookkeeping of a run's steps.
//
// Each public function applies one input. It checks the transition with the
// pure step or run machine, changes the run, and appends events and effects
// to the output. Dependency resolution uses in-degree counters, so a step
// that ends costs O(its dependents), never a scan of the DAG.
#include "run.h"

#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "depends.h"
#include "expand.h"
#include "expr.h"
#include "jsonx.h"
#include "secret.h"
#include "trigger.h"

static const char *run_state_names[] = {
#define WEFT_RUN_STATE_STR(name, str) str,
	WEFT_RUN_STATE_MAP(WEFT_RUN_STATE_STR)
#undef WEFT_RUN_STATE_STR
};

static const char *run_input_names[] = {
#define WEFT_RUN_INPUT_STR(name, str) str,
	WEFT_RUN_INPUT_MAP(WEFT_RUN_INPUT_STR)
#undef WEFT_RUN_INPUT_STR
};

// ---- the run state machine ----

static weft_err
run_active_next(enum weft_run_state from, enum weft_run_input in,
    enum weft_run_state *to)
{
	switch (in) {
	case WEFT_RUN_IN_PAUSE:
		if (from != WEFT_RUN_RUNNING) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_RUN_PAUSED;
		return (WEFT_OK);
	case WEFT_RUN_IN_RESUME:
		if (from != WEFT_RUN_PAUSED) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_RUN_RUNNING;
		return (WEFT_OK);
	case WEFT_RUN_IN_DONE_OK:
		*to = WEFT_RUN_SUCCEEDED;
		return (WEFT_OK);
	case WEFT_RUN_IN_DONE_FAILED:
		*to = WEFT_RUN_FAILED;
		return (WEFT_OK);
	case WEFT_RUN_IN_TIMEOUT:
		*to = WEFT_RUN_TIMED_OUT;
		return (WEFT_OK);
	default:
		return (WEFT_ESTATE);
	}
}

weft_err
weft_run_next(
    enum weft_run_state from, enum weft_run_input in, enum weft_run_state *to)
{
	if ((unsigned) from >= WEFT_RUN_NSTATES ||
	    (unsigned) in >= WEFT_RUN_NINPUTS) {
		return (WEFT_EINVAL);
	}
	if (in == WEFT_RUN_IN_CANCEL) {
		if (weft_run_terminal(from)) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_RUN_CANCELLED;
		return (WEFT_OK);
	}
	switch (from) {
	case WEFT_RUN_QUEUED:
		if (in == WEFT_RUN_IN_SCHEDULE) {
			*to = WEFT_RUN_SCHEDULED;
			return (WEFT_OK);
		}
		if (in != WEFT_RUN_IN_START) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_RUN_RUNNING;
		return (WEFT_OK);
	case WEFT_RUN_SCHEDULED:
		if (in != WEFT_RUN_IN_START) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_RUN_RUNNING;
		return (WEFT_OK);
	case WEFT_RUN_RUNNING:
	case WEFT_RUN_PAUSED:
		return (run_active_next(from, in, to));
	case WEFT_RUN_SUCCEEDED:
		if (in != WEFT_RUN_IN_RETRY_FROM) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_RUN_RUNNING;
		return (WEFT_OK);
	default:
		// failed, cancelled, timed_out: only an operator's retry,
		// of the whole run or from a step.
		if (in != WEFT_RUN_IN_RETRY && in != WEFT_RUN_IN_RETRY_FROM) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_RUN_RUNNING;
		return (WEFT_OK);
	}
}

bool
weft_run_terminal(enum weft_run_state s)
{
	return (s >= WEFT_RUN_SUCCEEDED);
}

const char *
weft_run_state_name(enum weft_run_state s)
{
	return ((unsigned) s < WEFT_RUN_NSTATES ? run_state_names[s] : "?");
}

const char *
weft_run_input_name(enum weft_run_input in)
{
	return ((unsigned) in < WEFT_RUN_NINPUTS ? run_input_names[in] : "?");
}

bool
weft_run_state_parse(const char *name, enum weft_run_state *out)
{
	for (int i = 0; i < WEFT_RUN_NSTATES; i++) {
		if (strcmp(name, run_state_names[i]) == 0) {
			*out = (enum weft_run_state) i;
			return (true);
		}
	}
	return (false);
}

// ---- output buffers ----

void
weft_out_init(weft_out *o)
{
	memset(o, 0, sizeof(*o));
}

void
weft_out_reset(weft_out *o)
{
	for (size_t i = 0; i < o->nevents; i++) {
		json_decref(o->events[i].data);
	}
	o->nevents  = 0;
	o->neffects = 0;
}

void
weft_out_fini(weft_out *o)
{
	weft_out_reset(o);
	free(o->events);
	free(o->effects);
	memset(o, 0, sizeof(*o));
}

weft_out_event *
weft_out_event_add(weft_out *o, enum weft_event_type type, weft_run *run,
    long step, uint32_t attempt, const char *node, json_t *data)
{
	weft_out_event *e;

	if (o->nevents == o->cap_events) {
		o->cap_events = o->cap_events ? o->cap_events * 2 : 256;
		o->events     = weft_xrealloc(
                    o->events, o->cap_events * sizeof(*o->events));
	}
	e          = &o->events[o->nevents++];
	e->type    = type;
	e->run     = run;
	e->step    = step;
	e->item    = -1;
	e->attempt = attempt;
	snprintf(e->node, sizeof(e->node), "%s", node != NULL ? node : "");
	e->data    = data; // NULL: {} (most events carry nothing)
	return (e);
}

static weft_effect *
run_out_effect(weft_out *o, enum weft_effect_kind kind, weft_run *run, long step)
{
	weft_effect *f;

	if (o->neffects == o->cap_effects) {
		o->cap_effects = o->cap_effects ? o->cap_effects * 2 : 256;
		o->effects     = weft_xrealloc(
                    o->effects, o->cap_effects * sizeof(*o->effects));
	}
	f = &o->effects[o->neffects++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->run  = run;
	f->step = step;
	f->item = -1;
	return (f);
}

// ---- runs and units ----

weft_run *
weft_run_alloc(const char *id, const weft_def *def, json_t *input,
    json_t *params, int64_t now, weft_out *o)
{
	weft_run       *r = weft_xalloc(sizeof(*r));
	json_t         *rec;
	weft_out_event *queued;

	snprintf(r->id, sizeof(r->id), "%s", id);
	r->def        = def;
	r->def_base   = def;
	r->state      = WEFT_RUN_QUEUED;
	r->input      = input != NULL ? input : json_object();
	r->params     = params != NULL ? params : json_object();
	r->steps      = weft_xalloc(def->nsteps * sizeof(*r->steps));
	r->created_ms = now;
	for (size_t i = 0; i < def->nsteps; i++) {
		r->steps[i].waiting = (uint32_t) def->steps[i].ndeps;
	}
	// The run keeps its secrets in clear for the assignments; what is
	// recorded of them (this event, hence the runs row) is masked.
	r->secrets       = weft_secret_present(def, r->input, r->params);
	r->secret_values = weft_secret_values(def, r->input, r->params);
	rec = json_pack("{s:O, s:O}", "input", r->input, "params", r->params);
	if (r->secrets) {
		json_t *m = weft_secret_mask(rec, def);
		json_decref(rec);
		rec = m;
	}
	queued = weft_out_event_add(o, WEFT_EV_RUN_QUEUED, r, -1, 0, NULL,
	    json_pack("{s:s, s:I, s:O, s:O, s:I}", "definition", def->name,
	        "version", (json_int_t) def->version, "input",
	        json_object_get(rec, "input"), "params",
	        json_object_get(rec, "params"), "steps",
	        (json_int_t) def->nsteps));
	if (def->retain_ms > 0) {
		// The store keeps it with the run: the definition's "retain"
		// decides when the ended run is deleted (store_retain.c).
		json_object_set_new(queued->data, "retain_ms",
		    json_integer((json_int_t) def->retain_ms));
	}
	json_decref(rec);
	return (r);
}

// run_unit_clear frees what a unit owns and leaves it pending, empty.
static void
run_unit_clear(weft_step_rt *s)
{
	json_decref(s->output);
	free(s->error);
	s->output    = NULL;
	s->error     = NULL;
	s->exit_code = 0;
	for (uint32_t k = 0; k < s->nitems; k++) {
		if (s->items[k].attempt > s->items_attempts) {
			s->items_attempts = s->items[k].attempt;
		}
		run_unit_clear(&s->items[k]);
	}
	free(s->items);
	json_decref(s->list);
	s->items  = NULL;
	s->list   = NULL;
	s->nitems = s->items_next = s->items_ended = s->items_low = 0;
	s->items_failed = s->items_active = 0;
	s->exp_total = s->exp_ended = s->exp_failed = 0;
}

void
weft_run_free(weft_run *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; r->steps != NULL && i < r->def->nsteps; i++) {
		run_unit_clear(&r->steps[i]);
	}
	free(r->steps);
	weft_def_free(r->def_own);
	json_decref(r->input);
	json_decref(r->params);
	json_decref(r->secret_values);
	json_decref(r->children);
	free(r->limit_key);
	free(r->wire_input);
	free(r->wire_params);
	free(r);
}

weft_step_rt *
weft_run_unit(weft_run *r, weft_ref u)
{
	if (u.step < 0 || (size_t) u.step >= r->def->nsteps) {
		return (NULL);
	}
	if (u.item < 0) {
		return (&r->steps[u.step]);
	}
	if (u.item >= (long) r->steps[u.step].nitems) {
		return (NULL);
	}
	return (&r->steps[u.step].items[u.item]);
}

// run_unit_event adds an event about unit u.
static void
run_unit_event(weft_out *o, enum weft_event_type type, weft_run *r, weft_ref u,
    const char *node, json_t *data)
{
	weft_out_event *e = weft_out_event_add(o, type, r, u.step,
	    weft_run_unit(r, u)->attempt, node, data);
	e->item = u.item;
}

static weft_effect *
run_unit_effect(weft_out *o, enum weft_effect_kind kind, weft_run *r, weft_ref u)
{
	weft_effect *f = run_out_effect(o, kind, r, u.step);
	f->item        = u.item;
	return (f);
}

static bool
run_step_in_flight_state(enum weft_step_state st)
{
	return (st == WEFT_STEP_DISPATCHED || st == WEFT_STEP_RUNNING);
}

static bool
run_item_active_state(enum weft_step_state st)
{
	return (st != WEFT_STEP_PENDING && !weft_step_terminal(st));
}

// run_unit_goto moves unit u to `to`, keeps the ended/failed counters (of the
// run for steps, of the map step for items) true, and reports a worker slot
// freed when an attempt stops being in flight.
static void
run_unit_goto(weft_run *r, weft_ref u, enum weft_step_state to, weft_out *o)
{
	weft_step_rt *s    = weft_run_unit(r, u);
	bool          was  = weft_step_terminal(s->state);
	bool          now  = weft_step_terminal(to);
	bool          wasf = s->state == WEFT_STEP_FAILED;
	bool          nowf = to == WEFT_STEP_FAILED;

	if (to != WEFT_STEP_READY) {
		s->sched_due_ms = 0; // its ready period, and timer, are over
	}
	if (run_step_in_flight_state(s->state) && !run_step_in_flight_state(to)) {
		weft_effect *f = run_unit_effect(o, WEFT_EFFECT_RELEASE, r, u);
		f->attempt     = s->attempt;
		snprintf(f->node, sizeof(f->node), "%s", s->node);
	}
	if (u.item < 0) {
		long x = r->def->steps[u.step].parent;
		r->nended += (size_t) now - (size_t) was;
		r->nfailed += (size_t) nowf - (size_t) wasf;
		if (x >= 0) {
			// A step of x's expansion: x ends when they all have.
			r->steps[x].exp_ended += (uint32_t) now - (uint32_t) was;
			r->steps[x].exp_failed +=
			    (uint32_t) nowf - (uint32_t) wasf;
		}
	} else {
		weft_step_rt *p = &r->steps[u.step];
		p->items_ended += (uint32_t) now - (uint32_t) was;
		p->items_failed += (uint32_t) nowf - (uint32_t) wasf;
		p->items_active += (uint32_t) run_item_active_state(to) -
		    (uint32_t) run_item_active_state(s->state);
	}
	s->state = to;
	if (u.item >= 0 && now) {
		// Items end roughly in list order: the cursor moves past the
		// ended ones, amortised O(1) an item.
		weft_step_rt *p = &r->steps[u.step];
		while (p->items_low < p->items_next &&
		    weft_step_terminal(p->items[p->items_low].state)) {
			p->items_low++;
		}
	}
}

// run_unit_apply runs the pure step machine for unit u and moves it; the pair
// must be legal (callers checked, or the caller's logic guarantees it).
static void
run_unit_apply(weft_run *r, weft_ref u, enum weft_step_input in, bool can_retry,
    weft_out *o)
{
	enum weft_step_state to;
	weft_err rv = weft_step_next(weft_run_unit(r, u)->state, in, can_retry, &to);

	WEFT_ASSERT(rv == WEFT_OK);
	run_unit_goto(r, u, to, o);
}

// run_step_doc builds the document expressions and templates read: input,
// params and the states of step i's dependencies.
static json_t *
run_step_doc(const weft_run *r, long i)
{
	const weft_def_step *d     = &r->def->steps[i];
	json_t              *steps = json_object();

	for (size_t k = 0; k < d->ndeps; k++) {
		const weft_step_rt *dep = &r->steps[d->deps[k]];
		json_t             *o   = json_pack("{s:s, s:O}", "status",
                    weft_step_state_name(dep->state), "output",
                    dep->output != NULL ? dep->output : json_null());
		if (dep->error != NULL) {
			json_object_set_new(o, "error", json_string(dep->error));
		}
		if (dep->exit_code != 0) {
			// What an all_done step reads to report or recover.
			json_object_set_new(
			    o, "exit_code", json_integer(dep->exit_code));
		}
		// By its own id: in an expansion's namespace, "design" is
		// plan.design (a definition's own ids have no '.').
		json_object_set_new(steps,
		    weft_expand_local(r->def->steps[d->deps[k]].id), o);
	}
	if (d->parent >= 0) {
		// A step of an expansion reads its expanding step, running:
		// its output is what the worker returned.
		const weft_step_rt *x = &r->steps[d->parent];
		json_object_set_new(steps,
		    weft_expand_local(r->def->steps[d->parent].id),
		    json_pack("{s:s, s:O}", "status",
		        weft_step_state_name(x->state), "output",
		        x->output != NULL ? x->output : json_null()));
	}
	return (json_pack("{s:O, s:O, s:o}", "input", r->input, "params",
	    r->params, "steps", steps));
}

// run_dep_state gives the state of the step called name, for "depends".
static enum weft_step_state
run_dep_state(void *arg, const char *name)
{
	const weft_run *r = arg;
	long            k = weft_def_find(r->def, name);

	return (k >= 0 ? r->steps[k].state : WEFT_STEP_PENDING);
}

// run_trigger_verdict counts how step i's dependencies stand and asks its
// trigger rule (trigger.c): run, skip, upstream_failed, or wait.
static enum weft_trigger_verdict
run_trigger_verdict(const weft_run *r, long i)
{
	const weft_def_step *d = &r->def->steps[i];
	weft_trigger_counts  c = { 0 };

	for (size_t k = 0; k < d->ndeps; k++) {
		weft_trigger_count(&c, r->steps[d->deps[k]].state);
	}
	if (d->depends_expr != NULL) {
		// "depends" instead of a rule: read once every step it names
		// has ended; false skips the step.
		if (c.pending > 0) {
			return (WEFT_TRIGGER_WAIT);
		}
		return (weft_depends_eval(d->depends_expr, run_dep_state,
		            (void *) r)
		        ? WEFT_TRIGGER_RUN
		        : WEFT_TRIGGER_SKIP);
	}
	return (weft_trigger_eval(d->trigger, &c));
}

// run_unit_ready makes unit u ready and queues it (unless the run is paused:
// resume queues what is ready).
static void
run_unit_ready(weft_run *r, weft_ref u, weft_out *o)
{
	run_unit_apply(r, u, WEFT_STEP_IN_DEPS_MET, false, o);
	run_unit_event(o, WEFT_EV_STEP_READY, r, u, NULL, NULL);
	run_unit_effect(o, WEFT_EFFECT_ENQUEUE, r, u);
}

// run_item_when evaluates map step u.step's `when` for item u: against the
// step's document (*doc, built on first use, the caller frees it) with the
// item's `item` and `index`.
static bool
run_item_when(const weft_run *r, weft_ref u, json_t **doc)
{
	if (*doc == NULL) {
		*doc = run_step_doc(r, u.step);
	}
	json_object_set(*doc, "item",
	    json_array_get(r->steps[u.step].list, (size_t) u.item));
	json_object_set_new(*doc, "index", json_integer(u.item));
	return (weft_expr_eval(r->def->steps[u.step].when_expr, *doc));
}

// run_items_fill makes more items of map step i ready, as max_parallel
// allows, or without one WEFT_RUN_ITEMS_WINDOW: every item ready at once
// would be one commit of as many step_ready events (and one of as many
// step_cancelled on a cancel), holding up every request meanwhile.
static void
run_items_fill(weft_run *r, long i, weft_out *o)
{
	weft_step_rt        *s   = &r->steps[i];
	const weft_def_step *d   = &r->def->steps[i];
	uint32_t             cap = d->max_parallel;
	json_t              *doc = NULL;

	if (cap == 0) {
		cap = WEFT_RUN_ITEMS_WINDOW;
	}

	while (s->items_next < s->nitems && s->items_active < cap) {
		weft_ref u = { i, (long) s->items_next++ };
		if (d->when_item && !run_item_when(r, u, &doc)) {
			// Skipped items hold no slot: the loop goes on to
			// the next, so a window is always filled.
			run_unit_apply(r, u, WEFT_STEP_IN_DEPS_UNMET, false, o);
			run_unit_event(o, WEFT_EV_STEP_SKIPPED, r, u, NULL,
			    json_pack("{s:s}", "reason", "when is false"));
			continue;
		}
		run_unit_ready(r, u, o);
	}
	json_decref(doc);
}

// run_map_output collects the items' outputs, in list order.
static json_t *
run_map_output(const weft_step_rt *s)
{
	json_t *out = json_array();
	for (uint32_t k = 0; k < s->nitems; k++) {
		json_array_append(out,
		    s->items[k].output ? s->items[k].output : json_null());
	}
	return (out);
}

// run_step_succeed ends step i (or a map step's aggregate) with output (taken).
static void
run_step_succeed(weft_run *r, long i, json_t *output, json_t *data, weft_out *o)
{
	weft_step_rt *s = &r->steps[i];

	run_unit_apply(r, WEFT_REF(i), WEFT_STEP_IN_RESULT_OK, false, o);
	json_decref(s->output);
	s->output = output;
	json_object_set(data, "output", output);
	run_unit_event(o, WEFT_EV_STEP_SUCCEEDED, r, WEFT_REF(i), s->node, data);
}

// run_step_fail_now fails step i for good with error (a step that could not
// even start, or a map step whose items failed).
static void
run_step_fail_now(weft_run *r, long i, const char *error, weft_out *o)
{
	weft_step_rt *s = &r->steps[i];

	run_unit_apply(r, WEFT_REF(i), WEFT_STEP_IN_RESULT_FAIL, false, o);
	free(s->error);
	s->error = weft_xstrdup(error);
	run_unit_event(o, WEFT_EV_STEP_FAILED, r, WEFT_REF(i), NULL,
	    json_pack("{s:s}", "error", error));
}

// run_map_list returns map step i's list (new reference): the literal one,
// or the value at its path in doc, the step's document; NULL when absent.
static json_t *
run_map_list(const weft_run *r, long i, json_t *doc)
{
	const weft_def_step *d = &r->def->steps[i];

	if (d->map_list != NULL) {
		return (json_incref(d->map_list));
	}
	return (weft_json_get(doc, d->map));
}

// run_map_finish ends map step i once every item has ended: succeeded
// when at most map_tolerate items failed (their place in the output is
// null, their indices in the event's failed_items), else failed naming
// the first failed item. True when it ended.
static bool
run_map_finish(weft_run *r, long i, weft_out *o)
{
	weft_step_rt *s   = &r->steps[i];
	uint32_t      tol = r->def->steps[i].map_tolerate;
	char          err[600];

	if (s->items_ended < s->nitems || weft_step_terminal(s->state)) {
		return (false);
	}
	if (s->items_failed <= tol) {
		json_t *data = json_object();
		if (s->items_failed > 0) {
			json_t *failed = json_array();
			for (uint32_t k = 0; k < s->nitems; k++) {
				if (s->items[k].state == WEFT_STEP_FAILED) {
					json_array_append_new(failed,
					    json_integer((json_int_t) k));
				}
			}
			json_object_set_new(data, "failed_items", failed);
		}
		run_step_succeed(r, i, run_map_output(s), data, o); // takes data
		return (true);
	}
	for (uint32_t k = 0; k < s->nitems; k++) {
		if (s->items[k].state == WEFT_STEP_FAILED) {
			snprintf(err, sizeof(err),
			    "%u of %u items failed%s; item %u: %s",
			    s->items_failed, s->nitems,
			    tol > 0 ? " (map_tolerate exceeded)" : "", k,
			    s->items[k].error ? s->items[k].error : "failed");
			break;
		}
	}
	run_step_fail_now(r, i, err, o);
	return (true);
}

// run_map_expand turns ready map step i into its items: the array at the
// step's map path. Returns true when the step ended at once (not an
// array, or empty).
static bool
run_map_expand(weft_run *r, long i, weft_out *o)
{
	const weft_def_step *d   = &r->def->steps[i];
	weft_step_rt        *s   = &r->steps[i];
	json_t              *doc = run_step_doc(r, i);
	json_t              *list = run_map_list(r, i, doc);
	char                 err[512];

	if (!json_is_array(list)) {
		snprintf(err, sizeof(err), "map: %s is %s, not an array", d->map,
		    list == NULL ? "missing" : "not a list");
		json_decref(list);
		json_decref(doc);
		run_step_fail_now(r, i, err, o);
		return (true);
	}
	s->list   = list;
	s->nitems = (uint32_t) json_array_size(list);
	s->items  = weft_xalloc((s->nitems ? s->nitems : 1) * sizeof(*s->items));
	for (uint32_t k = 0; k < s->nitems; k++) {
		// Attempt numbers stay unique per item name across retries, so
		// a late result of an old incarnation is recognised.
		s->items[k].attempt = s->items_attempts;
	}
	json_decref(doc);
	run_unit_apply(r, WEFT_REF(i), WEFT_STEP_IN_EXPAND, false, o);
	run_unit_event(o, WEFT_EV_STEP_EXPANDED, r, WEFT_REF(i), NULL,
	    json_pack("{s:i}", "count", (int) s->nitems));
	if (s->nitems == 0) {
		run_step_succeed(r, i, json_array(), json_object(), o);
		return (true);
	}
	run_items_fill(r, i, o);
	return (run_map_finish(r, i, o)); // every item skipped
}

// run_step_upstream_failed ends pending step i as upstream_failed: its rule
// cannot hold because dependencies failed. The event names them, and so
// does the step's error (what its own dependents' `steps` document shows).
static void
run_step_upstream_failed(weft_run *r, long i, weft_out *o)
{
	const weft_def_step *d        = &r->def->steps[i];
	json_t              *upstream = json_array();
	char                 err[256];
	size_t               n;

	n = (size_t) snprintf(err, sizeof(err), "upstream failed:");
	for (size_t k = 0; k < d->ndeps; k++) {
		enum weft_step_state st = r->steps[d->deps[k]].state;
		const char          *id = r->def->steps[d->deps[k]].id;
		if (st != WEFT_STEP_FAILED && st != WEFT_STEP_UPSTREAM_FAILED &&
		    st != WEFT_STEP_CANCELLED) {
			continue;
		}
		json_array_append_new(upstream, json_string(id));
		if (n < sizeof(err)) {
			n += (size_t) snprintf(err + n, sizeof(err) - n, "%s %s",
			    json_array_size(upstream) > 1 ? "," : "", id);
		}
	}
	run_unit_apply(r, WEFT_REF(i), WEFT_STEP_IN_DEPS_FAILED, false, o);
	free(r->steps[i].error);
	r->steps[i].error = weft_xstrdup(err);
	run_unit_event(o, WEFT_EV_STEP_UPSTREAM_FAILED, r, WEFT_REF(i), NULL,
	    json_pack("{s:s, s:s, s:o, s:s}", "reason", "upstream failed",
	        "trigger", weft_trigger_name(d->trigger), "upstream", upstream,
	        "error", err));
}

// run_step_resolve decides pending step i by its trigger rule: ready (and
// queued, or expanded into items), skipped or upstream_failed; a rule that
// cannot decide yet leaves it pending. Returns true when it ended, so the
// caller propagates to its dependents.
static bool
run_step_resolve(weft_run *r, long i, weft_out *o)
{
	const weft_def_step      *d   = &r->def->steps[i];
	const char               *why = NULL;
	enum weft_trigger_verdict v   = run_trigger_verdict(r, i);

	if (v == WEFT_TRIGGER_WAIT) {
		return (false);
	}
	if (v == WEFT_TRIGGER_UPSTREAM_FAILED) {
		run_step_upstream_failed(r, i, o);
		return (true);
	}
	if (v == WEFT_TRIGGER_SKIP) {
		why = d->depends_expr != NULL ? "depends is false"
		                              : "trigger rule not met";
	} else if (d->when_expr != NULL && !d->when_item) {
		json_t *doc = run_step_doc(r, i);
		if (!weft_expr_eval(d->when_expr, doc)) {
			why = "when is false";
		}
		json_decref(doc);
	}
	if (why != NULL) {
		run_unit_apply(r, WEFT_REF(i), WEFT_STEP_IN_DEPS_UNMET, false, o);
		// What decided: the rule, or the depends condition.
		run_unit_event(o, WEFT_EV_STEP_SKIPPED, r, WEFT_REF(i), NULL,
		    json_pack("{s:s, s:s}", "reason", why,
		        d->depends != NULL ? "depends" : "trigger",
		        d->depends != NULL ? d->depends
		                           : weft_trigger_name(d->trigger)));
		return (true);
	}
	if (d->map != NULL) {
		run_unit_apply(r, WEFT_REF(i), WEFT_STEP_IN_DEPS_MET, false, o);
		run_unit_event(o, WEFT_EV_STEP_READY, r, WEFT_REF(i), NULL, NULL);
		return (run_map_expand(r, i, o));
	}
	run_unit_ready(r, WEFT_REF(i), o);
	return (false);
}

// run_failed_steps lists the ids of the steps in state st.
static json_t *
run_failed_steps(const weft_run *r, enum weft_step_state st)
{
	json_t *ids = json_array();

	for (size_t i = 0; i < r->def->nsteps; i++) {
		if (r->steps[i].state == st) {
			json_array_append_new(ids, json_string(r->def->steps[i].id));
		}
	}
	return (ids);
}

// run_leaves_ok: under "status_from": "leaves", whether every leaf (sink)
// succeeded or was skipped.
static bool
run_leaves_ok(const weft_run *r)
{
	for (size_t k = 0; k < r->def->nsinks; k++) {
		enum weft_step_state st = r->steps[r->def->sinks[k]].state;
		if (st != WEFT_STEP_SUCCEEDED && st != WEFT_STEP_SKIPPED) {
			return (false);
		}
	}
	return (true);
}

// run_check_done ends a running or paused run whose steps have all ended.
static void
run_check_done(weft_run *r, weft_out *o)
{
	enum weft_run_state to;
	json_t             *data;
	bool                ok;

	if (r->nended < r->def->nsteps || weft_run_terminal(r->state)) {
		return;
	}
	ok = r->def->status_from == WEFT_STATUS_FROM_LEAVES ? run_leaves_ok(r)
	                                                    : r->nfailed == 0;
	if (ok) {
		weft_run_next(r->state, WEFT_RUN_IN_DONE_OK, &to);
		data = json_pack("{s:o}", "output", weft_run_output(r));
	} else if (r->def->status_from == WEFT_STATUS_FROM_LEAVES) {
		json_t *leaves = json_array();
		for (size_t k = 0; k < r->def->nsinks; k++) {
			const weft_step_rt *st = &r->steps[r->def->sinks[k]];
			if (st->state != WEFT_STEP_SUCCEEDED &&
			    st->state != WEFT_STEP_SKIPPED) {
				json_array_append_new(leaves, json_string(
				    r->def->steps[r->def->sinks[k]].id));
			}
		}
		weft_run_next(r->state, WEFT_RUN_IN_DONE_FAILED, &to);
		data = json_pack("{s:s, s:o, s:o}", "error",
		    "one or more leaf steps did not succeed", "failed_steps",
		    run_failed_steps(r, WEFT_STEP_FAILED), "failed_leaves",
		    leaves);
	} else {
		weft_run_next(r->state, WEFT_RUN_IN_DONE_FAILED, &to);
		data = json_pack("{s:s, s:o}", "error",
		    "one or more steps failed", "failed_steps",
		    run_failed_steps(r, WEFT_STEP_FAILED));
	}
	r->state = to;
	weft_out_event_add(o,
	    to == WEFT_RUN_SUCCEEDED ? WEFT_EV_RUN_SUCCEEDED : WEFT_EV_RUN_FAILED,
	    r, -1, 0, NULL, data);
	run_out_effect(o, WEFT_EFFECT_RUN_ENDED, r, -1);
}

static void run_end_steps(weft_run *r, weft_out *o);
static void run_expand_note(
    const weft_run *r, long i, long **v, size_t *n, size_t *cap);
static void run_expand_settle(
    weft_run *r, const long *ended, size_t n, weft_out *o);
static weft_err run_expand(weft_run *r, long x, const weft_result *res,
    int64_t dur, int64_t now, weft_out *o);

// run_fail_fast ends the run at once when step i failed for good under
// "fail_fast": every unit not ended is cancelled (in-flight attempts
// aborted, as for a cancel) and the run fails naming the step. True when
// it did.
static bool
run_fail_fast(weft_run *r, long i, weft_out *o)
{
	enum weft_run_state to;
	char                err[300];

	if (!r->def->fail_fast || r->steps[i].state != WEFT_STEP_FAILED ||
	    weft_run_next(r->state, WEFT_RUN_IN_DONE_FAILED, &to) != WEFT_OK) {
		return (false);
	}
	snprintf(err, sizeof(err), "fail_fast: step %s failed",
	    r->def->steps[i].id);
	run_end_steps(r, o);
	r->state = to;
	weft_out_event_add(o, WEFT_EV_RUN_FAILED, r, -1, 0, NULL,
	    json_pack("{s:s, s:o, s:b}", "error", err, "failed_steps",
	        run_failed_steps(r, WEFT_STEP_FAILED), "fail_fast", 1));
	run_out_effect(o, WEFT_EFFECT_RUN_ENDED, r, -1);
	return (true);
}

// run_step_ended propagates the end of step i to its dependents, through as
// many skipped steps as the trigger rules produce, then checks the run.
static void
run_step_ended(weft_run *r, long i, weft_out *o)
{
	long  *stack = weft_xalloc(16 * sizeof(*stack));
	size_t n = 0, cap = 16;
	long  *settle = NULL; // expand steps whose expansion had a step end
	size_t nsettle = 0, capsettle = 0;

	stack[n++] = i;
	if (run_fail_fast(r, i, o)) {
		free(stack);
		return;
	}
	run_expand_note(r, i, &settle, &nsettle, &capsettle);
	while (n > 0) {
		const weft_def_step *d = &r->def->steps[stack[--n]];
		enum weft_step_state ended = r->steps[stack[n]].state;
		for (size_t k = 0; k < d->nouts; k++) {
			long j = d->outs[k];
			// A step is looked at when its last dependency ends,
			// or earlier when this end decides its rule (one
			// success under one_success): O(1) per edge, and the
			// look, O(its dependencies), happens once.
			if ((--r->steps[j].waiting > 0 &&
			        !weft_trigger_decisive(
			            r->def->steps[j].trigger, ended)) ||
			    r->steps[j].state != WEFT_STEP_PENDING) {
				continue;
			}
			if (run_step_resolve(r, j, o)) {
				if (run_fail_fast(r, j, o)) {
					// A map step that could not expand:
					// the run has ended, nothing to do.
					n = 0;
					break;
				}
				if (n == cap) {
					cap *= 2;
					stack = weft_xrealloc(
					    stack, cap * sizeof(*stack));
				}
				stack[n++] = j;
				run_expand_note(
				    r, j, &settle, &nsettle, &capsettle);
			}
		}
	}
	free(stack);
	run_expand_settle(r, settle, nsettle, o);
	free(settle);
	run_check_done(r, o);
}

// run_item_ended follows the end of an item of map step i: more items start,
// and once every item has ended the step ends (run_map_finish).
static void
run_item_ended(weft_run *r, long i, weft_out *o)
{
	if (r->state == WEFT_RUN_RUNNING || r->state == WEFT_RUN_PAUSED) {
		run_items_fill(r, i, o);
	}
	if (run_map_finish(r, i, o)) {
		run_step_ended(r, i, o);
	}
}

// run_unit_ended propagates the end of unit u.
static void
run_unit_ended(weft_run *r, weft_ref u, weft_out *o)
{
	if (u.item < 0) {
		run_step_ended(r, u.step, o);
	} else {
		run_item_ended(r, u.step, o);
	}
}

weft_err
weft_run_schedule(weft_run *r, int64_t at_ms, weft_out *o)
{
	enum weft_run_state to;
	weft_err            err;

	if ((err = weft_run_next(r->state, WEFT_RUN_IN_SCHEDULE, &to)) !=
	    WEFT_OK) {
		return (err);
	}
	r->state       = to;
	r->start_at_ms = at_ms;
	weft_out_event_add(o, WEFT_EV_RUN_SCHEDULED, r, -1, 0, NULL,
	    json_pack("{s:I}", "start_at_ms", (json_int_t) at_ms));
	weft_run_schedule_rearm(r, o);
	return (WEFT_OK);
}

void
weft_run_schedule_rearm(weft_run *r, weft_out *o)
{
	if (r->state == WEFT_RUN_SCHEDULED) {
		run_out_effect(o, WEFT_EFFECT_START_TIMER, r, -1)->at_ms =
		    r->start_at_ms;
	}
}

weft_err
weft_run_start(weft_run *r, int64_t now, weft_out *o)
{
	enum weft_run_state to;
	weft_err            err;

	if ((err = weft_run_next(r->state, WEFT_RUN_IN_START, &to)) != WEFT_OK) {
		return (err);
	}
	r->state = to;
	weft_out_event_add(o, WEFT_EV_RUN_STARTED, r, -1, 0, NULL, NULL);
	if (r->def->timeout_ms > 0) {
		r->deadline_ms = now + r->def->timeout_ms;
		run_out_effect(o, WEFT_EFFECT_RUN_TIMEOUT, r, -1)->at_ms =
		    r->deadline_ms;
	}
	for (size_t k = 0; k < r->def->nroots; k++) {
		long i = r->def->roots[k];
		if (run_step_resolve(r, i, o)) {
			run_step_ended(r, i, o);
		}
	}
	return (WEFT_OK);
}

// run_unit_check returns unit u when it exists and takes `in` now (and, when
// attempt is not 0, when attempt is its current one); NULL otherwise.
static weft_step_rt *
run_unit_check(weft_run *r, weft_ref u, uint32_t attempt, enum weft_step_input in)
{
	weft_step_rt        *s = weft_run_unit(r, u);
	enum weft_step_state to;

	if (s == NULL || (attempt != 0 && attempt != s->attempt) ||
	    weft_step_next(s->state, in, true, &to) != WEFT_OK) {
		return (NULL);
	}
	return (s);
}

weft_err
weft_run_dispatched(
    weft_run *r, weft_ref u, const char *node, int64_t now, weft_out *o)
{
	weft_step_rt *s;
	uint32_t      tmo;

	if (r->state != WEFT_RUN_RUNNING ||
	    (s = run_unit_check(r, u, 0, WEFT_STEP_IN_DISPATCH)) == NULL) {
		return (WEFT_ESTATE);
	}
	run_unit_apply(r, u, WEFT_STEP_IN_DISPATCH, false, o);
	s->attempt++;
	s->started_ms = now;
	snprintf(s->node, sizeof(s->node), "%s", node);
	run_unit_event(o, WEFT_EV_STEP_DISPATCHED, r, u, s->node, NULL);
	if ((tmo = r->def->steps[u.step].timeout_ms) > 0) {
		weft_effect *f = run_unit_effect(o, WEFT_EFFECT_STEP_TIMEOUT, r, u);
		f->attempt     = s->attempt;
		f->at_ms       = now + tmo;
	}
	return (WEFT_OK);
}

// run_unit_started moves dispatched unit u (attempt s) to running and
// logs its step_started: on its worker's yes, or on a result that
// overtook the yes.
static void
run_unit_started(weft_run *r, weft_ref u, weft_step_rt *s, weft_out *o)
{
	run_unit_apply(r, u, WEFT_STEP_IN_ACCEPTED, false, o);
	run_unit_event(o, WEFT_EV_STEP_STARTED, r, u, s->node, NULL);
}

weft_err
weft_run_accepted(weft_run *r, weft_ref u, uint32_t attempt, weft_out *o)
{
	weft_step_rt *s = run_unit_check(r, u, attempt, WEFT_STEP_IN_ACCEPTED);

	if (s == NULL) {
		return (WEFT_ESTATE);
	}
	run_unit_started(r, u, s, o);
	return (WEFT_OK);
}

weft_err
weft_run_rejected(weft_run *r, weft_ref u, uint32_t attempt,
    const char *reason, weft_out *o)
{
	weft_step_rt *s = run_unit_check(r, u, attempt, WEFT_STEP_IN_REJECTED);

	if (s == NULL) {
		return (WEFT_ESTATE);
	}
	run_unit_apply(r, u, WEFT_STEP_IN_REJECTED, false, o);
	run_unit_event(o, WEFT_EV_STEP_READY, r, u, s->node,
	    json_pack("{s:s}", "rejected", reason ? reason : ""));
	s->node[0] = '\0';
	if (r->state == WEFT_RUN_RUNNING) {
		run_unit_effect(o, WEFT_EFFECT_ENQUEUE, r, u);
	}
	return (WEFT_OK);
}

// run_unit_jitter_ms spreads retries deterministically (pure code reads no
// random source): +-20% from a hash of run, unit and attempt, never above
// the policy's cap (max_ms caps any delay, jittered or not).
static uint32_t
run_unit_jitter_ms(const weft_run *r, weft_ref u, uint32_t attempt, uint32_t delay,
    uint32_t cap)
{
	uint64_t h      = 1469598103934665603ull;
	uint64_t spread = (uint64_t) delay * 40 / 100;
	uint64_t d;

	for (const char *p = r->id; *p != '\0'; p++) {
		h = (h ^ (uint8_t) *p) * 1099511628211ull;
	}
	h ^= (uint64_t) u.step ^ ((uint64_t) u.item << 20) ^
	    ((uint64_t) attempt << 40);
	// Finish the mix (splitmix64): ids that differ in one character
	// must not get nearly the same jitter.
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	if (spread == 0) {
		return (delay);
	}
	// In 64 bits: delay + 20% may not fit in 32.
	d = (uint64_t) delay - spread / 2 + h % (spread + 1);
	return (d > cap ? cap : (uint32_t) d);
}

// run_unit_bad_end applies a failure, loss or timeout of unit u's attempt:
// retry_wait with a backoff timer while the budget lasts, else failed.
static void
run_unit_bad_end(weft_run *r, weft_ref u, enum weft_step_input in, json_t *data,
    int64_t now, weft_out *o)
{
	weft_step_rt     *s   = weft_run_unit(r, u);
	const weft_retry *pol = &r->def->steps[u.step].retry;
	bool              can;

	if (in == WEFT_STEP_IN_LOST) {
		can = ++s->lost <= WEFT_RUN_MAX_LOST;
	} else {
		can = ++s->failures < pol->max_attempts;
	}
	run_unit_apply(r, u, in, can, o);
	if (s->state == WEFT_STEP_RETRY_WAIT) {
		uint32_t     delay = 0;
		weft_effect *f;
		if (in != WEFT_STEP_IN_LOST) {
			delay = weft_retry_delay_ms(pol, s->failures + 1);
			if (pol->jitter) {
				delay = run_unit_jitter_ms(
				    r, u, s->attempt, delay, pol->max_ms);
			}
		}
		s->due_ms = now + delay;
		json_object_set_new(data, "delay_ms", json_integer(delay));
		// When the step is ready again: what `waiting_for` shows.
		json_object_set_new(data, "until_ms", json_integer(s->due_ms));
		run_unit_event(o, WEFT_EV_STEP_RETRY_SCHEDULED, r, u, s->node, data);
		f          = run_unit_effect(o, WEFT_EFFECT_RETRY_TIMER, r, u);
		f->attempt = s->attempt;
		f->at_ms   = s->due_ms;
		s->node[0] = '\0';
		return;
	}
	free(s->error);
	s->error = weft_xstrdup(
	    json_string_value(json_object_get(data, "error")));
	s->exit_code =
	    (int) json_integer_value(json_object_get(data, "exit_code"));
	run_unit_event(o, WEFT_EV_STEP_FAILED, r, u, s->node, data);
	run_unit_ended(r, u, o);
}

// run_result_stale records a result that cannot apply. A repeat of the result
// already applied (a worker re-sending before our ack reached it) is
// dropped without an event: it is the same fact, not a new one.
static weft_err
run_result_stale(weft_run *r, weft_ref u, const weft_result *res, weft_out *o)
{
	weft_step_rt   *s = weft_run_unit(r, u);
	weft_out_event *e;

	if (res->attempt == s->attempt &&
	    (s->state == WEFT_STEP_SUCCEEDED || s->state == WEFT_STEP_FAILED ||
	        s->state == WEFT_STEP_RETRY_WAIT)) {
		return (WEFT_ESTATE);
	}
	e = weft_out_event_add(o, WEFT_EV_RESULT_IGNORED, r, u.step,
	    res->attempt, res->node,
	    json_pack("{s:s, s:I, s:s, s:b}", "reason",
	        res->attempt != s->attempt ? "attempt is not current"
	                                   : "step is not running",
	        "current_attempt", (json_int_t) s->attempt, "state",
	        weft_step_state_name(s->state), "ok", res->ok));
	e->item = u.item;
	return (WEFT_ESTATE);
}

// run_unit_timed_out ends in-flight unit u's attempt (s) on its
// start-to-close timeout.
static void
run_unit_timed_out(
    weft_run *r, weft_ref u, weft_step_rt *s, int64_t now, weft_out *o)
{
	run_unit_event(o, WEFT_EV_STEP_TIMED_OUT, r, u, s->node,
	    json_pack("{s:s, s:I}", "phase", "run", "timeout_ms",
	        (json_int_t) r->def->steps[u.step].timeout_ms));
	run_unit_bad_end(r, u, WEFT_STEP_IN_TIMEOUT,
	    json_pack("{s:s}", "error", "timed out"), now, o);
}

weft_err
weft_run_result(weft_run *r, weft_ref u, const weft_result *res, int64_t now,
    weft_out *o)
{
	weft_step_rt *s = weft_run_unit(r, u);
	json_t       *data;
	uint32_t      tmo;
	int64_t       dur = res->finished_ms > res->started_ms
	          ? res->finished_ms - res->started_ms
	          : 0;

	if (s == NULL || (u.item < 0 && r->def->steps[u.step].map != NULL) ||
	    res->attempt == 0) {
		return (WEFT_EINVAL); // no such unit or attempt: nothing ran it
	}
	if (u.item < 0 && s->exp_total > 0 && res->attempt == s->attempt) {
		return (WEFT_ESTATE); // a repeat of the result it expanded
	}
	if (run_unit_check(r, u, res->attempt,
	        res->ok ? WEFT_STEP_IN_RESULT_OK : WEFT_STEP_IN_RESULT_FAIL) ==
	    NULL) {
		return (run_result_stale(r, u, res, o));
	}
	if (s->node[0] != '\0' &&
	    (res->node == NULL || strcmp(res->node, s->node) != 0)) {
		// Only the node holding the attempt reports its end.
		weft_out_event *e = weft_out_event_add(o, WEFT_EV_RESULT_IGNORED,
		    r, u.step, res->attempt, res->node,
		    json_pack("{s:s, s:s, s:I, s:b}", "reason",
		        "not from the node holding the attempt", "holder", s->node,
		        "current_attempt", (json_int_t) s->attempt, "ok", res->ok));
		e->item = u.item;
		return (WEFT_ESTATE);
	}
	if (s->state == WEFT_STEP_DISPATCHED) {
		// Its result overtook its worker's yes: it ran, so it
		// started. The log says so before it says how it ended (every
		// attempt that ran has its step_started); the yes, when it
		// comes, finds the attempt over and changes nothing.
		run_unit_started(r, u, s, o);
	}
	tmo = r->def->steps[u.step].timeout_ms;
	if (!res->ok && tmo > 0 && now >= s->started_ms + (int64_t) tmo) {
		// A failure that comes once the attempt's deadline has passed
		// is its timeout, whoever saw it first: sleep and exec stop at
		// the deadline on the worker (started after the dispatch, when
		// the coordinator's timer starts) and report a failure, which
		// on a loaded coordinator can be taken before the timer.
		run_unit_timed_out(r, u, s, now, o);
		return (WEFT_OK);
	}
	if (!res->ok) {
		data = json_pack("{s:s, s:I}", "error",
		    res->error ? res->error : "", "duration_ms", (json_int_t) dur);
		if (res->exit_code != 0) {
			json_object_set_new(
			    data, "exit_code", json_integer(res->exit_code));
		}
		if (res->stderr_tail != NULL && res->stderr_tail[0] != '\0') {
			json_object_set_new(data, "stderr_tail",
			    json_string(res->stderr_tail));
		}
		run_unit_bad_end(r, u, WEFT_STEP_IN_RESULT_FAIL, data, now, o);
		return (WEFT_OK);
	}
	if (u.item < 0 && r->def->steps[u.step].expand) {
		return (run_expand(r, u.step, res, dur, now, o));
	}
	run_unit_apply(r, u, WEFT_STEP_IN_RESULT_OK, true, o);
	json_decref(s->output);
	s->output = json_incref(res->output != NULL ? res->output : json_null());
	run_unit_event(o, WEFT_EV_STEP_SUCCEEDED, r, u, s->node,
	    json_pack("{s:O, s:I}", "output", s->output, "duration_ms",
	        (json_int_t) dur));
	run_unit_ended(r, u, o);
	return (WEFT_OK);
}

weft_err
weft_run_lost(weft_run *r, weft_ref u, int64_t now, weft_out *o)
{
	weft_step_rt *s = run_unit_check(r, u, 0, WEFT_STEP_IN_LOST);

	if (s == NULL) {
		return (WEFT_ESTATE);
	}
	run_unit_event(o, WEFT_EV_STEP_LOST, r, u, s->node, NULL);
	run_unit_bad_end(r, u, WEFT_STEP_IN_LOST,
	    json_pack("{s:s}", "error", "worker lost"), now, o);
	return (WEFT_OK);
}

weft_err
weft_run_released(weft_run *r, weft_ref u, uint32_t attempt,
    const char *node, weft_out *o)
{
	weft_step_rt *s = run_unit_check(r, u, attempt, WEFT_STEP_IN_RELEASED);

	// Only the holder can hand an attempt back: anyone else saying so
	// would take a running attempt away from it.
	if (s == NULL || attempt == 0 || node == NULL ||
	    strcmp(s->node, node) != 0) {
		return (WEFT_ESTATE);
	}
	run_unit_apply(r, u, WEFT_STEP_IN_RELEASED, false, o);
	run_unit_event(o, WEFT_EV_STEP_RELEASED, r, u, s->node,
	    json_pack("{s:s}", "reason", "worker draining"));
	s->node[0] = '\0';
	if (r->state == WEFT_RUN_RUNNING) {
		run_unit_effect(o, WEFT_EFFECT_ENQUEUE, r, u);
	}
	return (WEFT_OK);
}

weft_err
weft_run_timeout(
    weft_run *r, weft_ref u, uint32_t attempt, int64_t now, weft_out *o)
{
	weft_step_rt *s = run_unit_check(r, u, attempt, WEFT_STEP_IN_TIMEOUT);
	weft_effect  *f;

	// Ready also takes a timeout (the schedule's): an attempt sent back
	// to ready by its worker keeps its number, and its run timer with it.
	// An expanded step's timeout was its worker attempt's: over.
	if (s == NULL || !run_step_in_flight_state(s->state) ||
	    (u.item < 0 && s->exp_total > 0)) {
		return (WEFT_ESTATE);
	}
	f          = run_unit_effect(o, WEFT_EFFECT_ABORT, r, u);
	f->attempt = attempt;
	snprintf(f->node, sizeof(f->node), "%s", s->node);
	run_unit_timed_out(r, u, s, now, o);
	return (WEFT_OK);
}

// run_unit_held_by returns unit u when `attempt` is its current attempt,
// in flight on node and able to take `in`; NULL otherwise.
static weft_step_rt *
run_unit_held_by(weft_run *r, weft_ref u, uint32_t attempt, const char *node,
    enum weft_step_input in)
{
	weft_step_rt *s = run_unit_check(r, u, attempt, in);

	if (s == NULL || attempt == 0 || !run_step_in_flight_state(s->state) ||
	    node == NULL || strcmp(s->node, node) != 0) {
		return (NULL);
	}
	return (s);
}

weft_err
weft_run_heartbeat_timeout(weft_run *r, weft_ref u, uint32_t attempt,
    const char *node, int64_t silent_ms, int64_t now, weft_out *o)
{
	weft_step_rt *s = run_unit_held_by(r, u, attempt, node,
	    WEFT_STEP_IN_TIMEOUT);
	uint32_t      hb;
	weft_effect  *f;
	char          msg[128];

	if (s == NULL || (hb = r->def->steps[u.step].heartbeat_timeout_ms) == 0 ||
	    silent_ms < (int64_t) hb) {
		return (WEFT_ESTATE);
	}
	f          = run_unit_effect(o, WEFT_EFFECT_ABORT, r, u);
	f->attempt = attempt;
	snprintf(f->node, sizeof(f->node), "%s", s->node);
	run_unit_event(o, WEFT_EV_STEP_TIMED_OUT, r, u, s->node,
	    json_pack("{s:s, s:I, s:I}", "phase", "heartbeat",
	        "heartbeat_timeout_ms", (json_int_t) hb, "silent_ms",
	        (json_int_t) silent_ms));
	snprintf(msg, sizeof(msg),
	    "no heartbeat for %lld ms (heartbeat_timeout_ms %u)",
	    (long long) silent_ms, hb);
	run_unit_bad_end(r, u, WEFT_STEP_IN_TIMEOUT,
	    json_pack("{s:s}", "error", msg), now, o);
	return (WEFT_OK);
}

// run_json_hash hashes v's compact, key-sorted text (FNV-1a): equal values
// hash equal whatever their key order. Never 0 (0 means "none yet").
static uint64_t
run_json_hash(const json_t *v)
{
	char    *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
	                                 JSON_ENCODE_ANY);
	uint64_t h    = 1469598103934665603ull;

	for (const char *p = text; p != NULL && *p != '\0'; p++) {
		h = (h ^ (uint8_t) *p) * 1099511628211ull;
	}
	free(text);
	return (h != 0 ? h : 1);
}

weft_err
weft_run_progress(weft_run *r, weft_ref u, uint32_t attempt, const char *node,
    const json_t *progress, int64_t now, weft_out *o)
{
	weft_step_rt *s = run_unit_held_by(r, u, attempt, node,
	    WEFT_STEP_IN_TIMEOUT);
	uint64_t      h;

	if (s == NULL || progress == NULL) {
		return (WEFT_ESTATE);
	}
	h = run_json_hash(progress);
	if (s->progress_attempt == attempt &&
	    (s->progress_hash == h ||
	        now - s->progress_ms < WEFT_RUN_PROGRESS_MS)) {
		return (WEFT_EEXIST);
	}
	s->progress_attempt = attempt;
	s->progress_hash    = h;
	s->progress_ms      = now;
	run_unit_event(o, WEFT_EV_STEP_PROGRESS, r, u, s->node,
	    json_pack("{s:O}", "progress", (json_t *) progress));
	return (WEFT_OK);
}

weft_err
weft_run_schedule_timeout(
    weft_run *r, weft_ref u, uint32_t attempt, int64_t now, weft_out *o)
{
	weft_step_rt *s = run_unit_check(r, u, attempt, WEFT_STEP_IN_TIMEOUT);
	uint32_t      tmo;
	char          err[160];

	// Attempt 0 is a real value here (no attempt made yet), not the
	// "any attempt" of run_unit_check.
	if (s == NULL || s->state != WEFT_STEP_READY || s->attempt != attempt ||
	    r->state != WEFT_RUN_RUNNING || (u.item < 0 &&
	    r->def->steps[u.step].map != NULL)) {
		return (WEFT_ESTATE);
	}
	tmo = r->def->steps[u.step].schedule_timeout_ms;
	snprintf(err, sizeof(err),
	    "no worker took it within schedule_timeout_ms (%u ms)", tmo);
	run_unit_event(o, WEFT_EV_STEP_TIMED_OUT, r, u, NULL,
	    json_pack("{s:s, s:I}", "phase", "schedule", "schedule_timeout_ms",
	        (json_int_t) tmo));
	run_unit_bad_end(r, u, WEFT_STEP_IN_TIMEOUT,
	    json_pack("{s:s, s:s}", "error", err, "phase", "schedule"), now, o);
	return (WEFT_OK);
}

weft_err
weft_run_unschedulable(weft_run *r, weft_ref u, json_t *data, weft_out *o)
{
	weft_step_rt *s = weft_run_unit(r, u);

	if (s == NULL || s->state != WEFT_STEP_READY || s->unschedulable) {
		json_decref(data);
		return (WEFT_ESTATE);
	}
	s->unschedulable = true;
	run_unit_event(o, WEFT_EV_STEP_UNSCHEDULABLE, r, u, NULL, data);
	return (WEFT_OK);
}

weft_err
weft_run_schedulable(weft_run *r, weft_ref u, json_t *data, weft_out *o)
{
	weft_step_rt *s = weft_run_unit(r, u);

	if (s == NULL || !s->unschedulable) {
		json_decref(data);
		return (WEFT_ESTATE);
	}
	s->unschedulable = false;
	run_unit_event(o, WEFT_EV_STEP_SCHEDULABLE, r, u, NULL, data);
	return (WEFT_OK);
}

weft_err
weft_run_retry_due(weft_run *r, weft_ref u, uint32_t attempt, weft_out *o)
{
	if (run_unit_check(r, u, attempt, WEFT_STEP_IN_RETRY_DUE) == NULL) {
		return (WEFT_ESTATE);
	}
	run_unit_apply(r, u, WEFT_STEP_IN_RETRY_DUE, false, o);
	run_unit_event(o, WEFT_EV_STEP_READY, r, u, NULL, NULL);
	if (r->state == WEFT_RUN_RUNNING) {
		run_unit_effect(o, WEFT_EFFECT_ENQUEUE, r, u);
	}
	return (WEFT_OK);
}

weft_err
weft_run_fail_step(
    weft_run *r, weft_ref u, const char *error, int64_t now, weft_out *o)
{
	weft_step_rt *s = run_unit_check(r, u, 0, WEFT_STEP_IN_RESULT_FAIL);

	(void) now;
	if (s == NULL || s->state != WEFT_STEP_READY) {
		return (WEFT_ESTATE);
	}
	run_unit_apply(r, u, WEFT_STEP_IN_RESULT_FAIL, false, o);
	free(s->error);
	s->error = weft_xstrdup(error);
	run_unit_event(o, WEFT_EV_STEP_FAILED, r, u, NULL,
	    json_pack("{s:s}", "error", error));
	run_unit_ended(r, u, o);
	return (WEFT_OK);
}

// run_unit_cancel cancels unit u if it has not ended, asking the worker of an
// in-flight attempt to abort it.
static void
run_unit_cancel(weft_run *r, weft_ref u, weft_out *o)
{
	weft_step_rt        *s = weft_run_unit(r, u);
	enum weft_step_state to;

	if (weft_step_next(s->state, WEFT_STEP_IN_CANCEL, false, &to) != WEFT_OK) {
		return;
	}
	if (run_step_in_flight_state(s->state)) {
		weft_effect *f = run_unit_effect(o, WEFT_EFFECT_ABORT, r, u);
		f->attempt     = s->attempt;
		snprintf(f->node, sizeof(f->node), "%s", s->node);
	}
	run_unit_goto(r, u, to, o);
	run_unit_event(o, WEFT_EV_STEP_CANCELLED, r, u, s->node, NULL);
}

// run_end_steps cancels every unit that has not ended: items first, then
// their steps. Items never made ready (from items_next on) have no event
// and no row: they end with their map step, silently, so that cancelling
// a wide map costs what it had under way, not its whole list.
static void
run_end_steps(weft_run *r, weft_out *o)
{
	for (size_t i = 0; i < r->def->nsteps; i++) {
		for (uint32_t k = 0; k < r->steps[i].items_next; k++) {
			run_unit_cancel(r, (weft_ref) { (long) i, (long) k }, o);
		}
		run_unit_cancel(r, WEFT_REF(i), o);
	}
}

// run_end_early applies a run-level input that ends the run early.
static weft_err
run_end_early(weft_run *r, enum weft_run_input in, enum weft_event_type type,
    json_t *data, weft_out *o)
{
	enum weft_run_state to;

	if (weft_run_next(r->state, in, &to) != WEFT_OK) {
		json_decref(data);
		return (WEFT_ESTATE);
	}
	run_end_steps(r, o);
	r->state = to;
	weft_out_event_add(o, type, r, -1, 0, NULL, data);
	run_out_effect(o, WEFT_EFFECT_RUN_ENDED, r, -1);
	return (WEFT_OK);
}

weft_err
weft_run_cancel(weft_run *r, const char *reason, weft_out *o)
{
	return (run_end_early(r, WEFT_RUN_IN_CANCEL, WEFT_EV_RUN_CANCELLED,
	    json_pack("{s:s}", "reason", reason ? reason : "cancelled"), o));
}

weft_err
weft_run_expire(weft_run *r, int64_t deadline, weft_out *o)
{
	if (deadline != r->deadline_ms) {
		return (WEFT_ESTATE);
	}
	return (run_end_early(r, WEFT_RUN_IN_TIMEOUT, WEFT_EV_RUN_TIMED_OUT,
	    json_pack("{s:I}", "timeout_ms", (json_int_t) r->def->timeout_ms),
	    o));
}

weft_err
weft_run_pause(weft_run *r, weft_out *o)
{
	enum weft_run_state to;

	if (weft_run_next(r->state, WEFT_RUN_IN_PAUSE, &to) != WEFT_OK) {
		return (WEFT_ESTATE);
	}
	r->state = to;
	weft_out_event_add(o, WEFT_EV_RUN_PAUSED, r, -1, 0, NULL, NULL);
	return (WEFT_OK);
}

// run_queue_ready queues every ready unit (after a pause, or a restore).
static void
run_queue_ready(weft_run *r, weft_out *o)
{
	for (size_t i = 0; i < r->def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		if (s->state == WEFT_STEP_READY && r->def->steps[i].map == NULL) {
			run_unit_effect(o, WEFT_EFFECT_ENQUEUE, r, WEFT_REF(i));
		}
		for (uint32_t k = 0; k < s->nitems; k++) {
			if (s->items[k].state == WEFT_STEP_READY) {
				run_unit_effect(o, WEFT_EFFECT_ENQUEUE, r,
				    (weft_ref) { (long) i, (long) k });
			}
		}
	}
}

weft_err
weft_run_resume(weft_run *r, weft_out *o)
{
	enum weft_run_state to;

	if (weft_run_next(r->state, WEFT_RUN_IN_RESUME, &to) != WEFT_OK) {
		return (WEFT_ESTATE);
	}
	r->state = to;
	weft_out_event_add(o, WEFT_EV_RUN_RESUMED, r, -1, 0, NULL, NULL);
	// Units that became ready while paused were not dispatched.
	run_queue_ready(r, o);
	run_check_done(r, o);
	return (WEFT_OK);
}

// run_recount rebuilds every step's count of dependencies not yet ended.
static void
run_recount(weft_run *r)
{
	const weft_def *def = r->def;

	for (size_t i = 0; i < def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		s->waiting      = 0;
		for (size_t k = 0; k < def->steps[i].ndeps; k++) {
			s->waiting += !weft_step_terminal(
			    r->steps[def->steps[i].deps[k]].state);
		}
	}
}

// run_resolve_pending resolves every pending step whose dependencies have
// all ended.
static void
run_resolve_pending(weft_run *r, weft_out *o)
{
	for (size_t i = 0; i < r->def->nsteps; i++) {
		// run_step_resolve leaves a step its rule cannot decide yet
		// pending (one_success with a success already in, say, is
		// decided: it has no end event to wait for).
		if (r->steps[i].state == WEFT_STEP_PENDING &&
		    run_step_resolve(r, (long) i, o)) {
			run_step_ended(r, (long) i, o);
		}
	}
}

static void run_expand_discard_all(weft_run *r);

// run_retry_deadline: a retried run's timeout, if any, counts again from
// now (the old timer then changes nothing: weft_run_expire).
static void
run_retry_deadline(weft_run *r, int64_t now, weft_out *o)
{
	r->deadline_ms = 0;
	if (r->def->timeout_ms > 0) {
		r->deadline_ms = now + r->def->timeout_ms;
		run_out_effect(o, WEFT_EFFECT_RUN_TIMEOUT, r, -1)->at_ms =
		    r->deadline_ms;
	}
}

weft_err
weft_run_retry(weft_run *r, int64_t now, weft_out *o)
{
	enum weft_run_state to;
	json_t             *ids;

	if (weft_run_next(r->state, WEFT_RUN_IN_RETRY, &to) != WEFT_OK) {
		return (WEFT_ESTATE);
	}
	r->state = to;
	// An expand step that starts over expands again: what it spliced
	// in before goes (before the steps are listed and reset: indices
	// move).
	run_expand_discard_all(r);
	// The event names the steps it resets, as a retry from a step does:
	// the store sets them pending too, or a restart before they run
	// would find their old ends (upstream_failed) and end the run again.
	ids = json_array();
	for (size_t i = 0; i < r->def->nsteps; i++) {
		if (r->steps[i].state != WEFT_STEP_SUCCEEDED) {
			json_array_append_new(ids, json_string(r->def->steps[i].id));
		}
	}
	weft_out_event_add(o, WEFT_EV_RUN_RETRIED, r, -1, 0, NULL,
	    json_pack("{s:o}", "steps", ids));
	run_retry_deadline(r, now, o);
	// Every step that did not succeed starts over (a map step with all
	// its items); counters are rebuilt from the steps that keep theirs.
	for (size_t i = 0; i < r->def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		if (s->state != WEFT_STEP_SUCCEEDED) {
			run_unit_apply(r, WEFT_REF(i), WEFT_STEP_IN_RETRY, false, o);
			run_unit_clear(s);
			s->failures = s->lost = 0;
		}
	}
	run_recount(r);
	run_resolve_pending(r, o);
	return (WEFT_OK);
}

// run_mark_downstream sets down[k] for step i and every step that
// depends on it, directly or not: a walk of the dependents lists, each
// step pushed once (stack: nsteps entries).
static void
run_mark_downstream(const weft_def *def, long i, bool *down)
{
	size_t *stack = weft_xalloc(def->nsteps * sizeof(*stack));
	size_t  n     = 0;

	down[i]    = true;
	stack[n++] = (size_t) i;
	while (n > 0) {
		const weft_def_step *d = &def->steps[stack[--n]];
		for (size_t j = 0; j < d->nouts; j++) {
			if (!down[d->outs[j]]) {
				down[d->outs[j]] = true;
				stack[n++]       = d->outs[j];
			}
		}
	}
	free(stack);
}

weft_err
weft_run_retry_from(weft_run *r, long from, int64_t now, weft_out *o)
{
	enum weft_run_state to;
	bool               *down;
	json_t             *ids;

	// A run that expanded owns a spliced definition: resetting an
	// expand step would splice its steps in a second time. Not yet.
	if (from < 0 || (size_t) from >= r->def->nsteps || r->def_own != NULL) {
		return (WEFT_EINVAL);
	}
	if (weft_run_next(r->state, WEFT_RUN_IN_RETRY_FROM, &to) != WEFT_OK) {
		return (WEFT_ESTATE);
	}
	r->state = to;
	down     = weft_xalloc(r->def->nsteps * sizeof(*down));
	memset(down, 0, r->def->nsteps * sizeof(*down));
	run_mark_downstream(r->def, from, down);
	ids = json_array();
	for (size_t i = 0; i < r->def->nsteps; i++) {
		if (down[i]) {
			json_array_append_new(ids, json_string(r->def->steps[i].id));
		}
	}
	weft_out_event_add(o, WEFT_EV_RUN_RETRIED, r, -1, 0, NULL,
	    json_pack("{s:s, s:o}", "from", r->def->steps[from].id, "steps",
	        ids));
	run_retry_deadline(r, now, o);
	// The attempt counters stay: the next dispatch of a reset step is
	// its attempt + 1, so a late result of an old attempt is told apart.
	for (size_t i = 0; i < r->def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		if (down[i] && s->state != WEFT_STEP_PENDING) {
			run_unit_apply(r, WEFT_REF(i), WEFT_STEP_IN_RERUN, false, o);
			run_unit_clear(s);
			s->failures = s->lost = 0;
		}
	}
	free(down);
	run_recount(r);
	run_resolve_pending(r, o);
	return (WEFT_OK);
}

// run_map_restore recomputes the list of map step i on restore (its
// dependencies are restored first, so the list is the one it had).
static void
run_map_restore(weft_run *r, long i)
{
	weft_step_rt *s = &r->steps[i];
	json_t       *doc, *list;

	if (s->items != NULL) {
		return;
	}
	doc  = run_step_doc(r, i);
	list = run_map_list(r, i, doc);
	if (json_is_array(list)) {
		s->list   = json_incref(list);
		s->nitems = (uint32_t) json_array_size(list);
	}
	json_decref(list);
	s->items = weft_xalloc((s->nitems ? s->nitems : 1) * sizeof(*s->items));
	json_decref(doc);
}

bool
weft_run_restore_step(weft_run *r, weft_ref u, enum weft_step_state st,
    uint32_t attempt, const char *node, json_t *output, const char *error)
{
	weft_step_rt *s;
	weft_out      scratch;

	if (u.item >= 0 && u.step >= 0 && (size_t) u.step < r->def->nsteps &&
	    r->def->steps[u.step].map != NULL) {
		run_map_restore(r, u.step);
	}
	if ((s = weft_run_unit(r, u)) == NULL) {
		return (false);
	}
	// Restoring never leaves a flight state, so run_unit_goto reports nothing.
	weft_out_init(&scratch);
	run_unit_goto(r, u, st, &scratch);
	weft_out_fini(&scratch);
	s->attempt = attempt;
	// An expanded step holds no worker: its row still names the one
	// that ran its attempt.
	snprintf(s->node, sizeof(s->node), "%s",
	    node != NULL && s->exp_total == 0 ? node : "");
	if (output != NULL && !json_is_null(output)) {
		json_decref(s->output);
		s->output = json_incref(output);
	}
	if (error != NULL) {
		free(s->error);
		s->error = weft_xstrdup(error);
	}
	if (u.item >= 0 && st != WEFT_STEP_PENDING &&
	    (uint32_t) u.item >= r->steps[u.step].items_next) {
		r->steps[u.step].items_next = (uint32_t) u.item + 1;
	}
	return (true);
}

// run_unit_restore_wait makes a unit that was waiting out a backoff ready: the
// timer died with the old process.
static void
run_unit_restore_wait(weft_run *r, weft_ref u, weft_out *o)
{
	if (weft_run_unit(r, u)->state == WEFT_STEP_RETRY_WAIT) {
		run_unit_apply(r, u, WEFT_STEP_IN_RETRY_DUE, false, o);
	}
}

static void run_expand_settle_one(weft_run *r, long x, weft_out *o);

void
weft_run_restore_done(weft_run *r, weft_out *o)
{
	run_recount(r);
	for (size_t i = 0; i < r->def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		run_unit_restore_wait(r, WEFT_REF(i), o);
		if (r->def->steps[i].map != NULL && s->state == WEFT_STEP_RUNNING) {
			run_map_restore(r, (long) i);
			for (uint32_t k = 0; k < s->nitems; k++) {
				run_unit_restore_wait(r, (weft_ref) { (long) i, (long) k }, o);
			}
		}
	}
	if (r->state == WEFT_RUN_RUNNING) {
		run_queue_ready(r, o);
	}
	for (size_t i = 0; i < r->def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		if (s->state == WEFT_STEP_RUNNING && r->def->steps[i].map != NULL) {
			// Fills the window again, or ends a step whose items
			// all ended just before the crash.
			run_item_ended(r, (long) i, o);
		}
	}
	run_resolve_pending(r, o);
	for (size_t i = 0; i < r->def->nsteps; i++) {
		// Ends a step whose expansion all ended just before the stop.
		long x = (long) i;
		if (r->steps[i].state == WEFT_STEP_RUNNING &&
		    r->steps[i].exp_total > 0 && !weft_run_terminal(r->state)) {
			run_expand_settle_one(r, x, o);
		}
	}
	if (r->state != WEFT_RUN_QUEUED) {
		run_check_done(r, o);
	}
}

json_t *
weft_run_step_input(const weft_run *r, weft_ref u, char *err, size_t errlen)
{
	const weft_def_step *d   = &r->def->steps[u.step];
	json_t              *doc = run_step_doc(r, u.step);
	json_t              *with;

	if (u.item >= 0) {
		json_object_set(doc, "item",
		    json_array_get(r->steps[u.step].list, (size_t) u.item));
		json_object_set_new(doc, "index", json_integer(u.item));
	}
	if (d->with == NULL) {
		with = json_object();
	} else if ((with = weft_json_render(d->with, doc, err, errlen)) ==
	    NULL) {
		json_decref(doc);
		return (NULL);
	}
	json_object_set_new(doc, "with", with);
	if (u.item >= 0) {
		// The dependencies' outputs hold the whole list (and whatever
		// else they made): sent with every item they made a map of
		// N items cost N x the list. An item reaches dependency data
		// only through `with`, rendered above against all of it.
		json_object_del(doc, "steps");
	}
	return (doc);
}

// run_put_value writes v (NULL: null) to f as compact JSON, an array,
// object or string through big.
static void
run_put_value(FILE *f, const json_t *v, weft_run_big_fn big, void *arg)
{
	char *text;

	if (v == NULL || json_is_null(v)) {
		fputs("null", f);
		return;
	}
	text = weft_json_dump(v);
	if (big != NULL &&
	    (json_is_array(v) || json_is_object(v) || json_is_string(v))) {
		text = big(arg, text, strlen(text));
	}
	fputs(text, f);
	free(text);
}

// run_put_dep writes dependency step i's entry of the "steps" object, as
// run_step_doc builds it (full: with its error and exit code).
static void
run_put_dep(FILE *f, const weft_run *r, long i, bool full,
    weft_run_big_fn big, void *arg)
{
	const weft_step_rt *dep = &r->steps[i];
	json_t             *err;

	weft_json_put_string(f, weft_expand_local(r->def->steps[i].id));
	fputs(":{\"status\":", f);
	weft_json_put_string(f, weft_step_state_name(dep->state));
	fputs(",\"output\":", f);
	run_put_value(f, dep->output, big, arg);
	// json_string refuses what is not UTF-8, and the document then
	// leaves the error out: the same here (the failure that records a
	// worker's error leaves it out already; this keeps the text JSON
	// whatever set it).
	if (full && dep->error != NULL &&
	    (err = json_string(dep->error)) != NULL) {
		fputs(",\"error\":", f);
		weft_json_put_string(f, dep->error);
		json_decref(err);
	}
	if (full && dep->exit_code != 0) {
		fprintf(f, ",\"exit_code\":%d", dep->exit_code);
	}
	putc('}', f);
}

char *
weft_run_step_input_text(
    const weft_run *r, weft_ref u, weft_run_big_fn big, void *arg)
{
	const weft_def_step *d = &r->def->steps[u.step];
	char                *text = NULL;
	size_t               len  = 0;
	FILE                *f;
	int                  rc;

	// The own ids of a step's dependencies and its parent are distinct
	// (a dependency listed twice is refused, an expansion's ids may not
	// be its parent's, names resolve to the nearest), so no key repeats
	// here, where the document would keep the last.
	if (u.item >= 0 || d->with != NULL) {
		return (NULL);
	}
	f = open_memstream(&text, &len);
	WEFT_ASSERT(f != NULL); // out of memory, as weft_xalloc
	__fsetlocking(f, FSETLOCKING_BYCALLER); // this thread's alone
	fputs("{\"steps\":{", f);
	for (size_t k = 0; k < d->ndeps; k++) {
		if (k > 0) {
			putc(',', f);
		}
		run_put_dep(f, r, d->deps[k], true, big, arg);
	}
	if (d->parent >= 0) {
		if (d->ndeps > 0) {
			putc(',', f);
		}
		run_put_dep(f, r, d->parent, false, big, arg);
	}
	fputs("},\"with\":{}}", f);
	rc = fclose(f);
	WEFT_ASSERT(rc == 0);
	return (text);
}

json_t *
weft_run_output(const weft_run *r)
{
	json_t *out = json_object();

	for (size_t k = 0; k < r->def->nsinks; k++) {
		const weft_step_rt *s = &r->steps[r->def->sinks[k]];
		json_object_set(out, r->def->steps[r->def->sinks[k]].id,
		    s->output != NULL ? s->output : json_null());
	}
	return (out);
}

void
weft_run_items_live(const weft_run *r, long i, uint32_t *from, uint32_t *to)
{
	const weft_step_rt *s = &r->steps[i];

	*from = s->items_low < s->items_next ? s->items_low : s->items_next;
	*to   = s->items_next < s->nitems ? s->items_next : s->nitems;
}

char *
weft_ref_name(const weft_run *r, weft_ref u, char *buf, size_t len)
{
	if (u.item < 0) {
		snprintf(buf, len, "%s", r->def->steps[u.step].id);
	} else {
		snprintf(buf, len, "%s[%ld]", r->def->steps[u.step].id, u.item);
	}
	return (buf);
}

bool
weft_ref_parse(const char *name, long (*find)(const void *, const char *),
    const void *arg, weft_ref *out)
{
	const char *open = strrchr(name, '[');
	char        id[256];
	char       *end;
	long        k;

	if (open == NULL) {
		*out = (weft_ref) { find(arg, name), -1 };
		return (out->step >= 0);
	}
	k = strtol(open + 1, &end, 10);
	if (end == open + 1 || strcmp(end, "]") != 0 || k < 0 || k > INT32_MAX ||
	    (size_t) (open - name) >= sizeof(id)) {
		return (false);
	}
	snprintf(id, sizeof(id), "%.*s", (int) (open - name), name);
	*out = (weft_ref) { find(arg, id), k };
	return (out->step >= 0);
}

// ---- steps the coordinator holds (hold.h) ----

// run_hold_signal names the signal wait step i waits for (a literal name,
// checked at define time).
static const char *
run_hold_signal(const weft_run *r, long i)
{
	return (json_string_value(
	    json_object_get(r->def->steps[i].with, "signal")));
}

weft_err
weft_run_hold_start(weft_run *r, weft_ref u, int64_t now, weft_out *o)
{
	const weft_def_step *d;
	weft_step_rt        *s;
	json_t              *in, *data;
	int64_t              at = 0;
	char                 err[512];

	if (u.step < 0 || (size_t) u.step >= r->def->nsteps ||
	    (d = &r->def->steps[u.step])->hold == WEFT_HOLD_NONE ||
	    r->state != WEFT_RUN_RUNNING ||
	    (s = run_unit_check(r, u, 0, WEFT_STEP_IN_DISPATCH)) == NULL) {
		return (WEFT_ESTATE);
	}
	if (d->hold == WEFT_HOLD_TIMER) {
		// Rendered now, like a worker step's input at dispatch: the
		// deadline may come from the input, params or a dependency.
		in = weft_run_step_input(r, u, err, sizeof(err));
		if (in == NULL ||
		    weft_hold_deadline(d->type, json_object_get(in, "with"), now,
		        &at, err, sizeof(err)) != WEFT_OK) {
			json_decref(in);
			return (weft_run_fail_step(r, u, err, now, o));
		}
		json_decref(in);
		data = json_pack("{s:s, s:I}", "hold", "timer", "until_ms",
		    (json_int_t) at);
	} else if (d->hold == WEFT_HOLD_SIGNAL) {
		data = json_pack("{s:s, s:s}", "hold", "signal", "signal",
		    run_hold_signal(r, u.step));
	} else {
		// The engine starts the child with it (engine/subwf.c).
		data = json_pack("{s:s}", "hold", "child");
	}
	run_unit_apply(r, u, WEFT_STEP_IN_DISPATCH, false, o);
	run_unit_apply(r, u, WEFT_STEP_IN_ACCEPTED, false, o);
	s->attempt++;
	s->started_ms = now;
	s->node[0]    = '\0'; // no worker: nothing to release, abort or lose
	if (d->timeout_ms > 0) {
		weft_effect *f = run_unit_effect(o, WEFT_EFFECT_STEP_TIMEOUT, r, u);
		f->attempt     = s->attempt;
		f->at_ms       = now + d->timeout_ms;
		json_object_set_new(data, "timeout_at_ms", json_integer(f->at_ms));
	}
	// The deadlines are in the event, written before anything is armed
	// for good: recovery reads them back (weft_run_hold_rearm).
	run_unit_event(o, WEFT_EV_STEP_STARTED, r, u, NULL, data);
	if (d->hold == WEFT_HOLD_TIMER) {
		weft_effect *f = run_unit_effect(o, WEFT_EFFECT_HOLD_TIMER, r, u);
		f->attempt     = s->attempt;
		f->at_ms       = at;
	}
	return (WEFT_OK);
}

weft_err
weft_run_hold_fire(weft_run *r, weft_ref u, uint32_t attempt, int64_t at_ms,
    weft_out *o)
{
	weft_step_rt *s = run_unit_check(r, u, attempt, WEFT_STEP_IN_RESULT_OK);

	if (s == NULL || s->state != WEFT_STEP_RUNNING ||
	    r->def->steps[u.step].hold != WEFT_HOLD_TIMER) {
		return (WEFT_ESTATE);
	}
	run_unit_apply(r, u, WEFT_STEP_IN_RESULT_OK, true, o);
	json_decref(s->output);
	s->output = json_pack("{s:I}", "at_ms", (json_int_t) at_ms);
	run_unit_event(o, WEFT_EV_STEP_SUCCEEDED, r, u, NULL,
	    json_pack("{s:O}", "output", s->output));
	run_unit_ended(r, u, o);
	return (WEFT_OK);
}

// run_hold_deliver ends running wait unit u with the signal.
static void
run_hold_deliver(weft_run *r, weft_ref u, const char *name, const json_t *data,
    bool reject, weft_out *o)
{
	weft_step_rt *s = weft_run_unit(r, u);
	const char   *why = json_string_value(json_object_get(data, "reason"));
	char          err[600];

	run_unit_event(o, WEFT_EV_STEP_SIGNALED, r, u, NULL,
	    json_pack("{s:s, s:O, s:b}", "signal", name, "data", data, "reject",
	        reject));
	if (!reject) {
		run_unit_apply(r, u, WEFT_STEP_IN_RESULT_OK, true, o);
		json_decref(s->output);
		s->output = json_deep_copy(data);
		run_unit_event(o, WEFT_EV_STEP_SUCCEEDED, r, u, NULL,
		    json_pack("{s:O}", "output", s->output));
	} else {
		snprintf(err, sizeof(err), "signal \"%s\" rejected%s%.500s", name,
		    why != NULL ? ": " : "", why != NULL ? why : "");
		s->failures++;
		run_unit_apply(r, u, WEFT_STEP_IN_RESULT_FAIL, false, o);
		free(s->error);
		s->error = weft_xstrdup(err);
		run_unit_event(o, WEFT_EV_STEP_FAILED, r, u, NULL,
		    json_pack("{s:s, s:b}", "error", err, "rejected", true));
	}
	run_unit_ended(r, u, o);
}

weft_err
weft_run_signal(weft_run *r, const char *name, const json_t *data,
    bool reject, weft_out *o, size_t *delivered)
{
	*delivered = 0;
	if (weft_run_terminal(r->state) || r->state == WEFT_RUN_QUEUED ||
	    r->state == WEFT_RUN_SCHEDULED) {
		return (WEFT_ESTATE);
	}
	for (size_t i = 0; i < r->def->nsteps && !weft_run_terminal(r->state);
	     i++) {
		weft_step_rt *s = &r->steps[i];
		const char   *sig;
		if (r->def->steps[i].hold != WEFT_HOLD_SIGNAL ||
		    (sig = run_hold_signal(r, (long) i)) == NULL ||
		    strcmp(sig, name) != 0) {
			continue;
		}
		if (r->def->steps[i].map == NULL) {
			if (s->state == WEFT_STEP_RUNNING) {
				run_hold_deliver(r, WEFT_REF(i), name, data, reject, o);
				(*delivered)++;
			}
			continue;
		}
		// The items waiting now; those made ready as these end wait
		// for the next signal.
		uint32_t hi = s->items_next;
		for (uint32_t k = s->items_low; k < hi && k < s->nitems; k++) {
			if (s->items[k].state == WEFT_STEP_RUNNING) {
				run_hold_deliver(r, (weft_ref) { (long) i, (long) k },
				    name, data, reject, o);
				(*delivered)++;
			}
		}
	}
	return (*delivered > 0 ? WEFT_OK : WEFT_ENOENT);
}

bool
weft_run_hold_waits(const weft_run *r, const char *name, long *step)
{
	for (size_t i = 0; i < r->def->nsteps; i++) {
		const char *sig;
		if (r->def->steps[i].hold == WEFT_HOLD_SIGNAL &&
		    (sig = run_hold_signal(r, (long) i)) != NULL &&
		    strcmp(sig, name) == 0) {
			*step = (long) i;
			return (true);
		}
	}
	return (false);
}

void
weft_run_hold_rearm(weft_run *r, weft_ref u, const json_t *started,
    weft_out *o)
{
	weft_step_rt *s = weft_run_unit(r, u);
	json_int_t    until, tmo;
	weft_effect  *f;

	if (s == NULL || r->def->steps[u.step].hold == WEFT_HOLD_NONE ||
	    !run_step_in_flight_state(s->state)) {
		return;
	}
	until = json_integer_value(json_object_get(started, "until_ms"));
	tmo   = json_integer_value(json_object_get(started, "timeout_at_ms"));
	if (r->def->steps[u.step].hold == WEFT_HOLD_TIMER) {
		// No deadline found (the event is gone): it ends now rather
		// than never.
		f          = run_unit_effect(o, WEFT_EFFECT_HOLD_TIMER, r, u);
		f->attempt = s->attempt;
		f->at_ms   = until;
	}
	if (tmo > 0) {
		f          = run_unit_effect(o, WEFT_EFFECT_STEP_TIMEOUT, r, u);
		f->attempt = s->attempt;
		f->at_ms   = tmo;
	}
}

// ---- sub-workflows (engine/subwf.c) ----

// run_child_unit returns running workflow unit u at attempt (0: any), or
// NULL.
static weft_step_rt *
run_child_unit(weft_run *r, weft_ref u, uint32_t attempt)
{
	weft_step_rt *s;

	if (u.step < 0 || (size_t) u.step >= r->def->nsteps ||
	    r->def->steps[u.step].hold != WEFT_HOLD_CHILD ||
	    (s = weft_run_unit(r, u)) == NULL || s->state != WEFT_STEP_RUNNING ||
	    (attempt != 0 && s->attempt != attempt)) {
		return (NULL);
	}
	return (s);
}

weft_err
weft_run_child_started(weft_run *r, weft_ref u, const char *child_id,
    const char *name, int64_t version, weft_out *o)
{
	weft_step_rt *s = run_child_unit(r, u, 0);

	if (s == NULL) {
		return (WEFT_ESTATE);
	}
	// The attempt is in the data: recovery reads the last child_started
	// per unit and must tell an older attempt's child from this one's.
	run_unit_event(o, WEFT_EV_CHILD_STARTED, r, u, NULL,
	    json_pack("{s:s, s:s, s:I, s:I}", "child_run", child_id,
	        "definition", name, "version", (json_int_t) version, "attempt",
	        (json_int_t) s->attempt));
	return (WEFT_OK);
}

weft_err
weft_run_child_ended(weft_run *r, weft_ref u, uint32_t attempt,
    const char *child_id, const char *status, const json_t *output,
    const char *child_error, int64_t now, weft_out *o)
{
	weft_step_rt *s = run_child_unit(r, u, attempt);
	char          err[1024];

	if (s == NULL || weft_run_terminal(r->state)) {
		return (WEFT_ESTATE);
	}
	run_unit_event(o, WEFT_EV_CHILD_ENDED, r, u, NULL,
	    json_pack("{s:s, s:s}", "child_run", child_id, "status", status));
	if (strcmp(status, "succeeded") == 0) {
		run_unit_apply(r, u, WEFT_STEP_IN_RESULT_OK, true, o);
		json_decref(s->output);
		s->output = output != NULL ? json_deep_copy(output) : json_null();
		run_unit_event(o, WEFT_EV_STEP_SUCCEEDED, r, u, NULL,
		    json_pack("{s:O, s:s}", "output", s->output, "child_run",
		        child_id));
		run_unit_ended(r, u, o);
		return (WEFT_OK);
	}
	snprintf(err, sizeof(err), "child run %s %s%s%.800s", child_id, status,
	    child_error != NULL ? ": " : "",
	    child_error != NULL ? child_error : "");
	run_unit_bad_end(r, u, WEFT_STEP_IN_RESULT_FAIL,
	    json_pack("{s:s, s:s}", "error", err, "child_run", child_id), now, o);
	return (WEFT_OK);
}

const char *
weft_run_first_error(const weft_run *r)
{
	for (size_t i = 0; i < r->def->nsteps; i++) {
		if (r->steps[i].state == WEFT_STEP_FAILED &&
		    r->steps[i].error != NULL) {
			return (r->steps[i].error);
		}
	}
	return (NULL);
}

// ---- dynamic expansion (expand.h) ----

// run_expand_note adds the expanding step of step i, if i is a step of an
// expansion, to the list *v (n entries, cap allocated) of steps to settle.
static void
run_expand_note(const weft_run *r, long i, long **v, size_t *n, size_t *cap)
{
	long x = r->def->steps[i].parent;

	if (x < 0) {
		return;
	}
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*v   = weft_xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = x;
}

// run_expand_is_leaf: step j of x's expansion has no dependent inside it.
static bool
run_expand_is_leaf(const weft_def *def, long x, size_t j)
{
	for (size_t k = 0; k < def->steps[j].nouts; k++) {
		if (def->steps[def->steps[j].outs[k]].parent == x) {
			return (false);
		}
	}
	return (true);
}

// run_expand_finish ends expand step x, whose expansion has all ended:
// succeeded with its leaves' outputs by local id, or failed naming the
// first step that failed (or, under status_from leaves, the first leaf
// that did not succeed).
static void
run_expand_finish(weft_run *r, long x, weft_out *o)
{
	const weft_def *def    = r->def;
	bool            leaves = def->status_from == WEFT_STATUS_FROM_LEAVES;
	json_t         *out    = json_object();
	long            bad    = -1;
	char            err[1200];

	for (size_t j = 0; j < def->nsteps; j++) {
		enum weft_step_state st = r->steps[j].state;
		bool                 leaf;
		if (def->steps[j].parent != x) {
			continue;
		}
		leaf = run_expand_is_leaf(def, x, j);
		if (bad < 0 &&
		    (leaves ? leaf && st != WEFT_STEP_SUCCEEDED &&
		                 st != WEFT_STEP_SKIPPED
		            : st == WEFT_STEP_FAILED)) {
			bad = (long) j;
		}
		if (leaf) {
			json_object_set(out, weft_expand_local(def->steps[j].id),
			    r->steps[j].output != NULL ? r->steps[j].output
			                               : json_null());
		}
	}
	if (bad < 0) {
		run_step_succeed(r, x, out, json_pack("{s:i}", "expansion",
		    (int) r->steps[x].exp_total), o);
		return;
	}
	json_decref(out);
	snprintf(err, sizeof(err), "expansion failed: step %s %s%s%s",
	    def->steps[bad].id, weft_step_state_name(r->steps[bad].state),
	    r->steps[bad].error != NULL ? ": " : "",
	    r->steps[bad].error != NULL ? r->steps[bad].error : "");
	run_step_fail_now(r, x, err, o);
}

// run_expand_settle_one ends expand step x when its expansion has all
// ended, and propagates that end.
static void
run_expand_settle_one(weft_run *r, long x, weft_out *o)
{
	weft_step_rt *s = &r->steps[x];

	if (weft_run_terminal(r->state) || s->state != WEFT_STEP_RUNNING ||
	    s->exp_total == 0 || s->exp_ended < s->exp_total) {
		return;
	}
	run_expand_finish(r, x, o);
	run_step_ended(r, x, o);
}

static void
run_expand_settle(weft_run *r, const long *ended, size_t n, weft_out *o)
{
	for (size_t k = 0; k < n; k++) {
		run_expand_settle_one(r, ended[k], o);
	}
}

// run_expand_adopt makes def (taken) the run's definition: the steps it
// adds (after the current ones) start pending, counting their dependencies
// that have not ended.
static void
run_expand_adopt(weft_run *r, weft_def *def)
{
	size_t old = r->def->nsteps;

	r->steps = weft_xrealloc(r->steps, def->nsteps * sizeof(*r->steps));
	memset(&r->steps[old], 0, (def->nsteps - old) * sizeof(*r->steps));
	weft_def_free(r->def_own);
	r->def_own = def;
	r->def     = def;
	for (size_t i = old; i < def->nsteps; i++) {
		for (size_t k = 0; k < def->steps[i].ndeps; k++) {
			r->steps[i].waiting += !weft_step_terminal(
			    r->steps[def->steps[i].deps[k]].state);
		}
	}
}

// run_expand_count sets x's count of expansion steps from the definition.
static void
run_expand_count(weft_run *r, long x)
{
	weft_step_rt *s = &r->steps[x];

	s->exp_total = s->exp_ended = s->exp_failed = 0;
	for (size_t j = 0; j < r->def->nsteps; j++) {
		if (r->def->steps[j].parent == x) {
			s->exp_total++;
			s->exp_ended += weft_step_terminal(r->steps[j].state);
			s->exp_failed += r->steps[j].state == WEFT_STEP_FAILED;
		}
	}
}

static weft_err
run_expand(weft_run *r, long x, const weft_result *res, int64_t dur,
    int64_t now, weft_out *o)
{
	weft_step_rt *s     = &r->steps[x];
	json_t       *steps = NULL;
	weft_def     *def   = NULL;
	size_t        from  = r->def->nsteps;
	weft_effect  *f;
	char          err[1024];

	if (weft_expand_check(r->def, x, res->output, &steps, err,
	        sizeof(err)) != WEFT_OK ||
	    weft_expand_splice(r->def, steps, &def, err, sizeof(err)) !=
	        WEFT_OK) {
		// As any failed attempt: the error says what is wrong where,
		// and the retry policy decides (a decomposer may do better).
		json_decref(steps);
		run_unit_bad_end(r, WEFT_REF(x), WEFT_STEP_IN_RESULT_FAIL,
		    json_pack("{s:s, s:I}", "error", err, "duration_ms",
		        (json_int_t) dur),
		    now, o);
		return (WEFT_OK);
	}
	run_expand_adopt(r, def);
	s = &r->steps[x]; // adopting may move the steps; s is running
	// The worker is done with it: the slot is free, and the step waits
	// for its expansion holding nothing, like a step the coordinator
	// holds (no node: no loss, abort or survey concerns it).
	f          = run_unit_effect(o, WEFT_EFFECT_RELEASE, r, WEFT_REF(x));
	f->attempt = s->attempt;
	snprintf(f->node, sizeof(f->node), "%s", s->node);
	json_decref(s->output);
	s->output = json_incref(res->output);
	run_unit_event(o, WEFT_EV_STEP_EXPANDED, r, WEFT_REF(x), s->node,
	    json_pack("{s:o, s:O, s:I, s:i, s:I, s:I}", "steps", steps,
	        "output", s->output, "attempt", (json_int_t) s->attempt,
	        "depth", (int) weft_expand_depth(r->def->steps[x].id) + 1,
	        "duration_ms", (json_int_t) dur, "steps_total",
	        (json_int_t) r->def->nsteps));
	s->node[0] = '\0';
	run_expand_count(r, x);
	for (size_t j = from; j < r->def->nsteps && !weft_run_terminal(r->state);
	     j++) {
		if (r->steps[j].state == WEFT_STEP_PENDING &&
		    r->steps[j].waiting == 0 && run_step_resolve(r, (long) j, o)) {
			run_step_ended(r, (long) j, o);
		}
	}
	return (WEFT_OK);
}

// run_expand_discard drops expand step x's expansion (x starts over):
// the definition without it, the runtime states of the steps that stay
// moved to their new places.
static void
run_expand_discard(weft_run *r, long x)
{
	weft_def     *def = NULL;
	const weft_def *nd;
	weft_step_rt *steps;
	char          err[512];

	weft_err rv = weft_expand_drop(
	    r->def, r->def->steps[x].id, &def, err, sizeof(err));

	// A definition less an expansion parsed before, with it.
	WEFT_ASSERT(rv == WEFT_OK);
	nd    = def != NULL ? def : r->def_base;
	steps = weft_xalloc(nd->nsteps * sizeof(*steps));
	for (size_t i = 0; i < r->def->nsteps; i++) {
		long k = weft_def_find(nd, r->def->steps[i].id);
		if (k < 0) {
			run_unit_clear(&r->steps[i]);
		} else {
			steps[k] = r->steps[i];
		}
	}
	free(r->steps);
	r->steps = steps;
	weft_def_free(r->def_own);
	r->def_own = def;
	r->def     = nd;
	r->nended = r->nfailed = 0;
	for (size_t i = 0; i < nd->nsteps; i++) {
		r->nended += weft_step_terminal(r->steps[i].state);
		r->nfailed += r->steps[i].state == WEFT_STEP_FAILED;
	}
	for (size_t i = 0; i < nd->nsteps; i++) {
		if (r->steps[i].exp_total > 0) {
			run_expand_count(r, (long) i);
		}
	}
}

// run_expand_discard_all drops the expansion of every expand step that
// did not succeed, outermost first (a nested one goes with its parent's).
static void
run_expand_discard_all(weft_run *r)
{
	for (size_t i = 0; r->def_own != NULL && i < r->def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		if (s->exp_total > 0 && s->state != WEFT_STEP_SUCCEEDED) {
			run_expand_discard(r, (long) i);
			s = &r->steps[i];
			s->exp_total = s->exp_ended = s->exp_failed = 0;
		}
	}
}

bool
weft_run_restore_expansion(weft_run *r, const char *x_id, const json_t *data)
{
	long      x = weft_def_find(r->def, x_id);
	weft_def *def;
	char      err[512];

	if (x < 0 || !r->def->steps[x].expand ||
	    !json_is_array(json_object_get(data, "steps")) ||
	    weft_expand_splice(r->def, json_object_get(data, "steps"), &def,
	        err, sizeof(err)) != WEFT_OK) {
		return (false);
	}
	run_expand_adopt(r, def);
	json_decref(r->steps[x].output);
	r->steps[x].output = json_incref(json_object_get(data, "output"));
	run_expand_count(r, x);
	return (true);
}
