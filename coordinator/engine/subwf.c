// subwf: sub-workflows, the "workflow" steps (model/hold.h), on the engine
// thread. A workflow unit is a hold unit: where holds_start would start
// it, subwf_start renders its `with`, creates the child run and records
// the link both ways (child_started in the parent's log, parent_run and
// parent_step in the child's run_queued); the child's end ends the unit
// in the same commit (subwf_run_ended, from engine_apply). Cancelling the
// unit (its run cancelled, its timeout) cancels the child; pausing and
// resuming the parent pauses and resumes it. After a restart the links
// are read back from the parent's child_started events (subwf_recover).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine_int.h"
#include "log.h"
#include "secret.h"
#include "waiting.h"

// subwf_fail fails ready unit u of r before any child exists: a
// definition that is not there, params it refuses, a depth over the
// bound. For good: a retry would meet the same refusal.
static void
subwf_fail(weft_engine *e, weft_run *r, weft_ref u, const char *why,
    int64_t now)
{
	char name[300];

	weft_log_warn("CHILD-REFUSED", "run=%s step=%s: %s", r->id,
	    weft_ref_name(r, u, name, sizeof(name)), why);
	weft_run_fail_step(r, u, why, now, &e->out);
}

// subwf_link records child as unit u's (at its current attempt) of r.
static void
subwf_link(weft_run *r, weft_ref u, weft_run *child)
{
	char name[300];

	snprintf(child->parent, sizeof(child->parent), "%s", r->id);
	child->parent_unit    = u;
	child->parent_attempt = weft_run_unit(r, u)->attempt;
	child->depth          = r->depth + 1;
	if (r->children == NULL) {
		r->children = json_object();
	}
	json_object_set_new(r->children, weft_ref_name(r, u, name, sizeof(name)),
	    json_string(child->id));
}

// subwf_args takes the child's definition, input and params from a
// rendered `with`; false with why in err.
static bool
subwf_args(weft_engine *e, const json_t *with, def_entry **d, json_t **input,
    json_t **params, char *err, size_t errlen)
{
	const char *name = json_string_value(json_object_get(with, "name"));
	int64_t     ver  = json_integer_value(json_object_get(with, "version"));
	json_t     *in   = json_object_get(with, "input");
	json_t     *pa   = json_object_get(with, "params");
	char        why[600];
	char       *text;
	size_t      len = 0;

	if ((*d = control_def_lookup(e, name != NULL ? name : "", ver, why,
	         sizeof(why))) == NULL) {
		snprintf(err, errlen, "workflow step: %s", why);
		return (false);
	}
	if (in != NULL && !json_is_object(in)) {
		snprintf(err, errlen, "workflow step: with.input rendered to a "
		    "%s, not an object", json_is_array(in) ? "list" : "value");
		return (false);
	}
	if (pa != NULL && !json_is_object(pa)) {
		snprintf(err, errlen, "workflow step: with.params rendered to "
		    "a %s, not an object", json_is_array(pa) ? "list" : "value");
		return (false);
	}
	for (int k = 0; k < 2; k++) {
		if ((text = json_dumps(k == 0 ? in : pa, JSON_COMPACT)) != NULL) {
			len += strlen(text);
			free(text);
		}
	}
	if (len > WEFT_RUN_INPUT_MAX) {
		snprintf(err, errlen, "workflow step: the child's input and "
		    "params are %zu bytes, over the run input limit of %zu",
		    len, WEFT_RUN_INPUT_MAX);
		return (false);
	}
	if (weft_def_bind_params((*d)->def, pa, params, why, sizeof(why)) !=
	    WEFT_OK) {
		snprintf(err, errlen, "workflow step: params of %s: %s", name,
		    why);
		return (false);
	}
	*input = in != NULL ? json_deep_copy(in) : json_object();
	if (!e->cfg.has_secret_key &&
	    weft_secret_present((*d)->def, *input, *params)) {
		json_decref(*input);
		json_decref(*params);
		snprintf(err, errlen, "workflow step: the child run carries "
		    "secrets and the coordinator has no key to store them under");
		return (false);
	}
	return (true);
}

void
subwf_start(weft_engine *e, weft_run *r, weft_ref u, int64_t now)
{
	weft_step_rt   *s = weft_run_unit(r, u);
	def_entry      *d;
	json_t         *in, *input, *params;
	weft_run       *child;
	weft_out_event *queued;
	size_t          at;
	char            err[1200], id[WEFT_ID_LEN + 1], name[300];

	if (s == NULL || s->state != WEFT_STEP_READY ||
	    r->state != WEFT_RUN_RUNNING) {
		return; // resume or a retry enqueues it again
	}
	if (r->depth + 1 > e->cfg.max_depth) {
		snprintf(err, sizeof(err), "workflow step: a child run here "
		    "would be %" PRIu32 " levels deep, over the coordinator's "
		    "--max-depth of %" PRIu32, r->depth + 1, e->cfg.max_depth);
		subwf_fail(e, r, u, err, now);
		return;
	}
	// Rendered now, like a worker step's input at dispatch.
	if ((in = weft_run_step_input(r, u, err, sizeof(err))) == NULL) {
		subwf_fail(e, r, u, err, now);
		return;
	}
	if (!subwf_args(e, json_object_get(in, "with"), &d, &input, &params, err,
	        sizeof(err))) {
		json_decref(in);
		subwf_fail(e, r, u, err, now);
		return;
	}
	json_decref(in);
	WEFT_ASSERT(weft_run_hold_start(r, u, now, &e->out) == WEFT_OK);
	weft_id_new(id);
	at    = e->out.nevents;
	child = weft_run_alloc(id, d->def, input, params, now, &e->out);
	// The child's side of the link, in its first event.
	queued = &e->out.events[at];
	WEFT_ASSERT(queued->type == WEFT_EV_RUN_QUEUED && queued->run == child);
	json_object_set_new(queued->data, "parent_run", json_string(r->id));
	json_object_set_new(queued->data, "parent_step",
	    json_string(weft_ref_name(r, u, name, sizeof(name))));
	subwf_link(r, u, child);
	json_object_set_new(queued->data, "depth", json_integer(child->depth));
	// Its definition's priority, else its parent's (sched); never held
	// back by the concurrency limits (engine/admit.c says why).
	child->priority = d->def->priority != 0 ? d->def->priority : r->priority;
	if (child->priority != 0) {
		json_object_set_new(queued->data, "priority",
		    json_integer(child->priority));
	}
	engine_run_add(e, child);
	weft_run_child_started(r, u, id, d->def->name, d->def->version, &e->out);
	weft_run_start(child, now, &e->out);
	weft_log_info("CHILD-START", "run=%s step=%s child=%s definition=%s "
	    "version=%" PRId64 " depth=%" PRIu32, r->id, name, id, d->def->name,
	    d->def->version, child->depth);
}

void
subwf_run_ended(weft_engine *e, weft_run *child, int64_t now)
{
	weft_run *parent;
	json_t   *output;

	if (child->parent[0] == '\0' ||
	    (parent = engine_run(e, child->parent)) == NULL) {
		return;
	}
	output = child->state == WEFT_RUN_SUCCEEDED ? weft_run_output(child)
	                                            : NULL;
	// Stale (an attempt that ended already, the parent ended) changes
	// nothing.
	weft_run_child_ended(parent, child->parent_unit, child->parent_attempt,
	    child->id, weft_run_state_name(child->state), output,
	    weft_run_first_error(child), now, &e->out);
	json_decref(output);
}

// subwf_child returns the live child run of unit u of r, or NULL.
static weft_run *
subwf_child(weft_engine *e, weft_run *r, weft_ref u)
{
	char        name[300];
	const char *id;
	weft_run   *c;

	id = json_string_value(json_object_get(r->children,
	    weft_ref_name(r, u, name, sizeof(name))));
	if (id == NULL || (c = engine_run(e, id)) == NULL ||
	    weft_run_terminal(c->state) || strcmp(c->parent, r->id) != 0) {
		return (NULL);
	}
	return (c);
}

void
subwf_abort(weft_engine *e, weft_run *r, weft_ref u)
{
	weft_run *c;
	char      why[400], name[300];

	if (u.step < 0 || r->def->steps[u.step].hold != WEFT_HOLD_CHILD ||
	    (c = subwf_child(e, r, u)) == NULL) {
		return;
	}
	snprintf(why, sizeof(why), "parent run %s: step %s ended (%s)", r->id,
	    weft_ref_name(r, u, name, sizeof(name)),
	    weft_run_terminal(r->state) ? weft_run_state_name(r->state)
	                                : "cancelled or timed out");
	weft_run_cancel(c, why, &e->out);
}

void
subwf_lifecycle(weft_engine *e, weft_run *r, bool pause)
{
	const char *key;
	json_t     *v;

	json_object_foreach (r->children, key, v) {
		weft_run *c = engine_run(e, json_string_value(v));
		if (c == NULL || weft_run_terminal(c->state) ||
		    strcmp(c->parent, r->id) != 0) {
			continue;
		}
		// Refused when already so (paused by hand): nothing to undo.
		if ((pause ? weft_run_pause(c, &e->out)
		           : weft_run_resume(c, &e->out)) == WEFT_OK) {
			weft_log_info(pause ? "CHILD-PAUSE" : "CHILD-RESUME",
			    "run=%s parent=%s", c->id, r->id);
		}
		subwf_lifecycle(e, c, pause);
	}
}

// subwf_recover_unit links unit u of r, in flight, to its child from the
// last child_started data (borrowed; NULL when none).
static void
subwf_recover_unit(weft_engine *e, weft_run *r, weft_ref u,
    const json_t *started, int64_t now)
{
	weft_step_rt *s = weft_run_unit(r, u);
	const char   *id = json_string_value(json_object_get(started,
	      "child_run"));
	weft_run     *c;
	json_t       *jr = NULL;
	char          name[300];

	if (s == NULL || s->state != WEFT_STEP_RUNNING) {
		return;
	}
	if (id == NULL || json_integer_value(json_object_get(started,
	                      "attempt")) != (json_int_t) s->attempt) {
		// step_started and child_started commit together: only a
		// damaged log gets here. Fail the attempt rather than wait
		// forever; the retry policy starts a new child.
		weft_log_err("RECOVER-CHILD", "run=%s step=%s: no child run "
		    "recorded for attempt %" PRIu32, r->id,
		    weft_ref_name(r, u, name, sizeof(name)), s->attempt);
		weft_run_child_ended(r, u, s->attempt, "(none)", "lost", NULL,
		    "no child run was recorded for this attempt", now, &e->out);
		return;
	}
	if ((c = engine_run(e, id)) != NULL && !weft_run_terminal(c->state)) {
		subwf_link(r, u, c);
		return;
	}
	// The child ended in the last commit before the stop, and its
	// parent was not told: tell it now, from the store.
	if (weft_store_get_run(engine_quiesce(e), id, &jr) != WEFT_OK) {
		weft_log_err("RECOVER-CHILD", "run=%s: child run %s not found: "
		    "%s", r->id, id, e->store->error);
		weft_run_child_ended(r, u, s->attempt, id, "lost", NULL,
		    "the child run is not in the store", now, &e->out);
		return;
	}
	weft_run_child_ended(r, u, s->attempt, id,
	    json_string_value(json_object_get(jr, "status")),
	    json_object_get(jr, "output"),
	    json_string_value(json_object_get(jr, "error")), now, &e->out);
	json_decref(jr);
}

// subwf_in_flight says whether r has a workflow unit running.
static bool
subwf_in_flight(const weft_run *r)
{
	for (size_t i = 0; i < r->def->nsteps; i++) {
		if (r->def->steps[i].hold == WEFT_HOLD_CHILD &&
		    (r->steps[i].state == WEFT_STEP_RUNNING ||
		        r->steps[i].nitems > 0)) {
			return (true);
		}
	}
	return (false);
}

void
subwf_recover(weft_engine *e, int64_t now)
{
	const char *key;
	void       *v;
	weft_run  **list;
	size_t      n = 0, cap = 16;

	// Listed first: recovering a unit may end a run (and change the
	// map under the walk).
	list = weft_xalloc(cap * sizeof(*list));
	for (size_t i = 0; weft_map_each(&e->runs, &i, &key, &v);) {
		weft_run *r = v;
		if (!weft_run_terminal(r->state) && subwf_in_flight(r)) {
			if (n == cap) {
				cap *= 2;
				list = weft_xrealloc(list, cap * sizeof(*list));
			}
			list[n++] = r;
			r->refs++;
		}
	}
	for (size_t k = 0; k < n; k++) {
		weft_run *r       = list[k];
		json_t   *started = NULL;
		char      name[300];
		if (weft_store_last_step_data(engine_quiesce(e), r->id,
		        weft_event_name(WEFT_EV_CHILD_STARTED), &started) !=
		    WEFT_OK) {
			weft_log_err("RECOVER-CHILD", "run=%s: cannot read its "
			    "child_started events: %s", r->id, e->store->error);
		}
		for (size_t i = 0; i < r->def->nsteps; i++) {
			weft_step_rt *s = &r->steps[i];
			if (r->def->steps[i].hold != WEFT_HOLD_CHILD) {
				continue;
			}
			if (r->def->steps[i].map == NULL) {
				weft_ref u = WEFT_REF(i);
				subwf_recover_unit(e, r, u, json_object_get(started,
				    weft_ref_name(r, u, name, sizeof(name))), now);
				continue;
			}
			for (uint32_t j = 0; j < s->nitems; j++) {
				weft_ref u = { (long) i, (long) j };
				subwf_recover_unit(e, r, u, json_object_get(started,
				    weft_ref_name(r, u, name, sizeof(name))), now);
			}
		}
		json_decref(started);
	}
	// Depth from the links: how many live ancestors a run has. A walk
	// per linked run, at most --max-depth long (links are trees).
	for (size_t i = 0; weft_map_each(&e->runs, &i, &key, &v);) {
		weft_run *c = v, *p = c;
		uint32_t  d = 0;
		while (p->parent[0] != '\0' && d <= e->cfg.max_depth &&
		    (p = engine_run(e, p->parent)) != NULL) {
			d++;
		}
		c->depth = d;
	}
	for (size_t k = 0; k < n; k++) {
		engine_run_rele(e, list[k]);
	}
	free(list);
}

bool
subwf_check_def(weft_engine *e, const weft_def *def, char *err, size_t errlen)
{
	for (size_t i = 0; i < def->nsteps; i++) {
		const weft_def_step *st = &def->steps[i];
		const char          *name;
		int64_t              ver;
		char                 why[600];
		if (st->hold != WEFT_HOLD_CHILD) {
			continue;
		}
		name = json_string_value(json_object_get(st->with, "name"));
		ver  = json_integer_value(json_object_get(st->with, "version"));
		// Itself: allowed, recursion ends at --max-depth at run time.
		if (strcmp(name, def->name) == 0 ||
		    control_def_lookup(e, name, ver, why, sizeof(why)) != NULL) {
			continue;
		}
		snprintf(err, errlen, "steps[%zu] (id \"%s\"): field "
		    "\"with.name\": %s (define the child workflow first)", i,
		    st->id, why);
		return (false);
	}
	return (true);
}

static const char *
str_or(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return (s != NULL ? s : "");
}

// subwf_parent_of sets, in status body run (a run's), "parent" from its
// run_queued event: {"run_id", "step"}, or null.
static void
subwf_parent_of(weft_engine *e, json_t *run, const char *id)
{
	const char        *types[] = { weft_event_name(WEFT_EV_RUN_QUEUED) };
	weft_events_filter f = { .run_id = id, .types = types, .ntypes = 1,
		.limit = 1 };
	json_t            *evs = NULL, *data;

	json_object_set_new(run, "parent", json_null());
	if (weft_store_list_events(e->qstore, &f, &evs) != WEFT_OK) {
		return;
	}
	data = json_object_get(json_array_get(evs, 0), "data");
	if (json_is_string(json_object_get(data, "parent_run"))) {
		json_object_set_new(run, "parent",
		    json_pack("{s:O, s:O}", "run_id",
		        json_object_get(data, "parent_run"), "step",
		        json_object_get(data, "parent_step")));
	}
	json_decref(evs);
}

void
subwf_status(weft_engine *e, json_t *run)
{
	const char *id = json_string_value(json_object_get(run, "id"));
	json_t     *steps = json_object_get(run, "steps"), *step;
	json_t     *started = NULL;
	size_t      k;

	if (id == NULL) {
		return;
	}
	subwf_parent_of(e, run, id);
	json_array_foreach (steps, k, step) {
		const char *sid;
		json_t     *c;
		if (weft_hold_kind(json_string_value(json_object_get(step,
		        "type"))) != WEFT_HOLD_CHILD) {
			continue;
		}
		if (started == NULL &&
		    weft_store_last_step_data(e->qstore, id,
		        weft_event_name(WEFT_EV_CHILD_STARTED), &started) !=
		        WEFT_OK) {
			return;
		}
		sid = json_string_value(json_object_get(step, "id"));
		c   = json_object_get(json_object_get(started, sid), "child_run");
		json_object_set_new(step, "child_run", c != NULL ? json_incref(c)
		                                                 : json_null());
		// Running: it waits for that child, not for a worker.
		json_t *wf = json_object_get(step, "waiting_for");
		if (wf != NULL && json_is_string(c) &&
		    strcmp(str_or(step, "status"), "running") == 0) {
			weft_wait_facts f = { .state = WEFT_STEP_RUNNING,
				.hold_child = json_string_value(c),
				.hold_timeout_at_ms = json_integer_value(
				    json_object_get(wf, "timeout_at_ms")) };
			json_object_set_new(step, "waiting_for",
			    weft_waiting_for(&f));
		}
	}
	json_decref(started);
}
