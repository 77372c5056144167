// holds: the steps the coordinator runs itself (wait, delay, sleep_until:
// model/hold.h) on the engine thread: starting them where a worker step
// would be queued, delivering signals to them, and arming their timers
// again after a restart. They hold no worker slot.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine_int.h"
#include "log.h"

void
holds_enqueue(weft_engine *e, weft_run *r, weft_ref u)
{
	if (e->nholds == e->capholds) {
		e->capholds = e->capholds ? e->capholds * 2 : 64;
		e->holds = weft_xrealloc(e->holds, e->capholds * sizeof(*e->holds));
	}
	e->holds[e->nholds++] = (ready_ent) { r, u };
	r->refs++;
}

void
holds_start(weft_engine *e, int64_t now)
{
	// Taken whole first: a start can end a step (a deadline that does
	// not render), and what follows it may enqueue more holds.
	ready_ent *list = e->holds;
	size_t     n    = e->nholds;

	e->holds    = NULL;
	e->nholds   = 0;
	e->capholds = 0;
	for (size_t k = 0; k < n; k++) {
		// Refused when no longer ready, or the run is paused (resume
		// enqueues its ready steps again) or ended.
		weft_ref u = list[k].unit;
		if (list[k].run->def->steps[u.step].hold == WEFT_HOLD_CHILD) {
			subwf_start(e, list[k].run, u, now);
		} else {
			weft_run_hold_start(list[k].run, u, now, &e->out);
		}
		engine_run_rele(e, list[k].run);
	}
	free(list);
}

void
holds_fini(weft_engine *e)
{
	free(e->holds);
	e->holds  = NULL;
	e->nholds = e->capholds = 0;
}

// holds_any_in_flight says whether r may have a hold unit in flight.
static bool
holds_any_in_flight(const weft_run *r)
{
	for (size_t i = 0; i < r->def->nsteps; i++) {
		const weft_step_rt *s = &r->steps[i];
		if (r->def->steps[i].hold == WEFT_HOLD_NONE) {
			continue;
		}
		if (s->state == WEFT_STEP_RUNNING || s->nitems > 0) {
			return (true);
		}
	}
	return (false);
}

void
holds_restore(weft_engine *e, weft_run *r)
{
	json_t *started = NULL;
	char    name[300];

	if (!holds_any_in_flight(r)) {
		return;
	}
	// The deadlines are in the units' step_started events: the log, not
	// the process, is what survives.
	if (weft_store_last_step_data(engine_quiesce(e), r->id,
	        weft_event_name(WEFT_EV_STEP_STARTED), &started) != WEFT_OK) {
		weft_log_err("RECOVER-HOLD", "run=%s: cannot read its step_started "
		    "events (%s): its timers fire now", r->id, e->store->error);
	}
	for (size_t i = 0; i < r->def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		if (r->def->steps[i].hold == WEFT_HOLD_NONE) {
			continue;
		}
		if (r->def->steps[i].map == NULL) {
			weft_ref u = WEFT_REF(i);
			weft_run_hold_rearm(r, u, json_object_get(started,
			    weft_ref_name(r, u, name, sizeof(name))), &e->out);
			continue;
		}
		for (uint32_t k = 0; k < s->nitems; k++) {
			weft_ref u = { (long) i, (long) k };
			weft_run_hold_rearm(r, u, json_object_get(started,
			    weft_ref_name(r, u, name, sizeof(name))), &e->out);
		}
	}
	json_decref(started);
}

// holds_refuse answers a signal nobody takes, saying why: the run is
// unknown, has ended, has no such wait step, or its wait step does not
// wait yet (a signal is not kept for later: send it again then).
static void
holds_refuse(weft_engine *e, engine_mail *m, weft_run *r, const char *id,
    const char *name, weft_err why)
{
	char    msg[600];
	json_t *jr;
	long    i;

	if (r == NULL) {
		if (weft_store_get_run(engine_quiesce(e), id, &jr) == WEFT_OK) {
			snprintf(msg, sizeof(msg), "signal \"%s\": run %s is %s: "
			    "nothing waits for signals", name, id,
			    json_string_value(json_object_get(jr, "status")));
			json_decref(jr);
			engine_reply_now(e, m->to, WEFT_ESTATE, msg, NULL);
			return;
		}
		snprintf(msg, sizeof(msg), "signal \"%s\": no such run %s", name,
		    id);
		engine_reply_now(e, m->to, WEFT_ENOENT, msg, NULL);
		return;
	}
	if (why == WEFT_ESTATE) {
		snprintf(msg, sizeof(msg), "signal \"%s\": run %s is %s: nothing "
		    "waits for signals", name, id, weft_run_state_name(r->state));
		engine_reply_now(e, m->to, WEFT_ESTATE, msg, NULL);
	} else if (!weft_run_hold_waits(r, name, &i)) {
		snprintf(msg, sizeof(msg), "signal \"%s\": no step of run %s "
		    "(definition %s) waits for it", name, id, r->def->name);
		engine_reply_now(e, m->to, WEFT_ENOENT, msg, NULL);
	} else {
		snprintf(msg, sizeof(msg), "signal \"%s\": step %s of run %s is "
		    "%s, not waiting; a signal is not kept for later: send it "
		    "once the step waits", name, r->def->steps[i].id, id,
		    weft_step_state_name(r->steps[i].state));
		engine_reply_now(e, m->to, WEFT_ESTATE, msg, NULL);
	}
}

// holds_data parses a signal's data (JSON text, "" for {}) into *out, or
// answers why not and returns false.
static bool
holds_data(weft_engine *e, engine_mail *m, const Weft__SignalRequest *rq,
    json_t **out)
{
	const char  *text = rq->data_json != NULL ? rq->data_json : "";
	size_t       len  = strlen(text);
	json_error_t je;
	char         msg[400];

	if (len > e->cfg.max_output) {
		snprintf(msg, sizeof(msg), "signal \"%s\": data of %zu bytes is "
		    "over the coordinator's --max-output of %llu bytes (it "
		    "becomes the step's output)", rq->name, len,
		    (unsigned long long) e->cfg.max_output);
		engine_reply_now(e, m->to, WEFT_ETOOBIG, msg, NULL);
		return (false);
	}
	if (len == 0) {
		*out = json_object();
		return (true);
	}
	if ((*out = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	         &je)) == NULL) {
		snprintf(msg, sizeof(msg), "signal \"%s\": data is not JSON: %s "
		    "(line %d, column %d)", rq->name, je.text, je.line, je.column);
		engine_reply_now(e, m->to, WEFT_EINVAL, msg, NULL);
		return (false);
	}
	return (true);
}

void
holds_signal(weft_engine *e, engine_mail *m)
{
	Weft__SignalRequest *rq = m->env->control->signal;
	const char          *id = rq->run_id != NULL ? rq->run_id : "";
	weft_run            *r;
	json_t              *data, *steps;
	size_t               before = e->out.nevents, n = 0;
	weft_err             rv;
	char                 msg[300];

	if (!weft_hold_name_ok(rq->name)) {
		snprintf(msg, sizeof(msg), "signal name: must be 1-%d characters "
		    "of A-Z a-z 0-9 _ . -", WEFT_HOLD_NAME_MAX);
		engine_reply_now(e, m->to, WEFT_EINVAL, msg, NULL);
		return;
	}
	if (id[0] == '\0') {
		engine_reply_now(e, m->to, WEFT_EINVAL, "signal: run id is "
		    "required", NULL);
		return;
	}
	if (!holds_data(e, m, rq, &data)) {
		return;
	}
	if ((r = engine_run(e, id)) == NULL ||
	    (rv = weft_run_signal(r, rq->name, data, rq->reject, &e->out, &n)) !=
	        WEFT_OK) {
		holds_refuse(e, m, r, id, rq->name, r == NULL ? WEFT_ENOENT : rv);
		json_decref(data);
		return;
	}
	json_decref(data);
	// The units that took it, by name: from the step_signaled events
	// just made (the reply goes after their commit).
	steps = json_array();
	for (size_t k = before; k < e->out.nevents; k++) {
		weft_out_event *ev = &e->out.events[k];
		if (ev->type == WEFT_EV_STEP_SIGNALED) {
			char name[300];
			json_array_append_new(steps, json_string(weft_ref_name(r,
			    (weft_ref) { ev->step, ev->item }, name, sizeof(name))));
		}
	}
	weft_log_info("SIGNAL", "run=%s signal=%s reject=%d steps=%zu", r->id,
	    rq->name, (int) rq->reject, n);
	engine_reply_now(e, m->to, 0, NULL,
	    json_pack("{s:s, s:s, s:o, s:b}", "run_id", r->id, "signal",
	        rq->name, "steps", steps, "reject", rq->reject));
}
