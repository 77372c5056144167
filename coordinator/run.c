// run: the run state machine and the pure bookkeeping of a run's steps.
//
// Each public function applies one input. It checks the transition with the
// pure step or run machine, changes the run, and appends events and effects
// to the output. Dependency resolution uses in-degree counters, so a step
// that ends costs O(its dependents), never a scan of the DAG.
#include "run.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "expr.h"
#include "jsonx.h"

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
		if (in != WEFT_RUN_IN_START) {
			return (WEFT_ESTATE);
		}
		*to = WEFT_RUN_RUNNING;
		return (WEFT_OK);
	case WEFT_RUN_RUNNING:
	case WEFT_RUN_PAUSED:
		return (run_active_next(from, in, to));
	case WEFT_RUN_SUCCEEDED:
		return (WEFT_ESTATE);
	default:
		// failed, cancelled, timed_out: only an operator's retry.
		if (in != WEFT_RUN_IN_RETRY) {
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

void
weft_out_event_add(weft_out *o, const char *type, weft_run *run, long step,
    uint32_t attempt, const char *node, json_t *data)
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
	e->attempt = attempt;
	e->node    = (node != NULL && node[0] != '\0') ? node : NULL;
	e->data    = data != NULL ? data : json_object();
}

static weft_effect *
out_effect(weft_out *o, enum weft_effect_kind kind, weft_run *run, long step)
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
	return (f);
}

// ---- runs ----

weft_run *
weft_run_alloc(const char *id, const weft_def *def, json_t *input,
    json_t *params, int64_t now, weft_out *o)
{
	weft_run *r = weft_xalloc(sizeof(*r));

	snprintf(r->id, sizeof(r->id), "%s", id);
	r->def        = def;
	r->state      = WEFT_RUN_QUEUED;
	r->input      = input != NULL ? input : json_object();
	r->params     = params != NULL ? params : json_object();
	r->steps      = weft_xalloc(def->nsteps * sizeof(*r->steps));
	r->created_ms = now;
	for (size_t i = 0; i < def->nsteps; i++) {
		r->steps[i].waiting = (uint32_t) def->steps[i].ndeps;
	}
	weft_out_event_add(o, "run_queued", r, -1, 0, NULL,
	    json_pack("{s:s, s:I, s:O, s:O, s:I}", "definition", def->name,
	        "version", (json_int_t) def->version, "input", r->input,
	        "params", r->params, "steps", (json_int_t) def->nsteps));
	return (r);
}

void
weft_run_free(weft_run *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; r->steps != NULL && i < r->def->nsteps; i++) {
		json_decref(r->steps[i].output);
		free(r->steps[i].error);
	}
	free(r->steps);
	json_decref(r->input);
	json_decref(r->params);
	free(r);
}

static bool
step_in_flight_state(enum weft_step_state st)
{
	return (st == WEFT_STEP_DISPATCHED || st == WEFT_STEP_RUNNING);
}

// step_goto moves step i to `to`, keeps the ended/failed counters true, and
// reports a worker slot freed when an attempt stops being in flight.
static void
step_goto(weft_run *r, long i, enum weft_step_state to, weft_out *o)
{
	weft_step_rt *s = &r->steps[i];

	if (step_in_flight_state(s->state) && !step_in_flight_state(to)) {
		weft_effect *f = out_effect(o, WEFT_EFFECT_RELEASE, r, i);
		f->attempt     = s->attempt;
		snprintf(f->node, sizeof(f->node), "%s", s->node);
	}

	if (weft_step_terminal(s->state)) {
		r->nended--;
		if (s->state == WEFT_STEP_FAILED) {
			r->nfailed--;
		}
	}
	if (weft_step_terminal(to)) {
		r->nended++;
		if (to == WEFT_STEP_FAILED) {
			r->nfailed++;
		}
	}
	s->state = to;
}

// step_doc builds the document expressions and templates read: input,
// params and the states of step i's dependencies.
static json_t *
step_doc(const weft_run *r, long i)
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
		json_object_set_new(steps, r->def->steps[d->deps[k]].id, o);
	}
	return (json_pack("{s:O, s:O, s:o}", "input", r->input, "params",
	    r->params, "steps", steps));
}

// trigger_allows decides, once every dependency of step i has ended,
// whether the step's trigger rule lets it run.
static bool
trigger_allows(const weft_run *r, long i)
{
	const weft_def_step *d = &r->def->steps[i];
	size_t               ok = 0, failed = 0;

	for (size_t k = 0; k < d->ndeps; k++) {
		enum weft_step_state st = r->steps[d->deps[k]].state;
		ok += (st == WEFT_STEP_SUCCEEDED);
		failed += (st == WEFT_STEP_FAILED);
	}
	switch (d->trigger) {
	case WEFT_TRIGGER_ALL_DONE:
		return (true);
	case WEFT_TRIGGER_ONE_SUCCESS:
		return (d->ndeps == 0 || ok > 0);
	case WEFT_TRIGGER_NONE_FAILED:
		return (failed == 0);
	case WEFT_TRIGGER_ALL_FAILED:
		return (failed == d->ndeps);
	default:
		return (ok == d->ndeps);
	}
}

// step_resolve decides a pending step whose dependencies have all ended:
// ready (and queued), or skipped. Returns true when it ended (skipped), so
// the caller propagates to its dependents.
static bool
step_resolve(weft_run *r, long i, weft_out *o)
{
	const weft_def_step *d = &r->def->steps[i];
	const char          *why = NULL;
	enum weft_step_state to;

	if (!trigger_allows(r, i)) {
		why = "trigger rule not met";
	} else if (d->when_expr != NULL) {
		json_t *doc = step_doc(r, i);
		if (!weft_expr_eval(d->when_expr, doc)) {
			why = "when is false";
		}
		json_decref(doc);
	}
	if (why != NULL) {
		weft_step_next(r->steps[i].state, WEFT_STEP_IN_DEPS_UNMET, false,
		    &to);
		step_goto(r, i, to, o);
		weft_out_event_add(o, "step_skipped", r, i, r->steps[i].attempt,
		    NULL, json_pack("{s:s}", "reason", why));
		return (true);
	}
	weft_step_next(r->steps[i].state, WEFT_STEP_IN_DEPS_MET, false, &to);
	step_goto(r, i, to, o);
	weft_out_event_add(o, "step_ready", r, i, r->steps[i].attempt, NULL,
	    NULL);
	out_effect(o, WEFT_EFFECT_ENQUEUE, r, i);
	return (false);
}

// run_check_done ends a running or paused run whose steps have all ended.
static void
run_check_done(weft_run *r, weft_out *o)
{
	enum weft_run_state to;
	json_t             *data;

	if (r->nended < r->def->nsteps || weft_run_terminal(r->state)) {
		return;
	}
	if (r->nfailed == 0) {
		weft_run_next(r->state, WEFT_RUN_IN_DONE_OK, &to);
		data = json_pack("{s:o}", "output", weft_run_output(r));
	} else {
		json_t *failed = json_array();
		for (size_t i = 0; i < r->def->nsteps; i++) {
			if (r->steps[i].state == WEFT_STEP_FAILED) {
				json_array_append_new(
				    failed, json_string(r->def->steps[i].id));
			}
		}
		weft_run_next(r->state, WEFT_RUN_IN_DONE_FAILED, &to);
		data = json_pack("{s:s, s:o}", "error",
		    "one or more steps failed", "failed_steps", failed);
	}
	r->state = to;
	weft_out_event_add(o,
	    to == WEFT_RUN_SUCCEEDED ? "run_succeeded" : "run_failed", r, -1, 0,
	    NULL, data);
	out_effect(o, WEFT_EFFECT_RUN_ENDED, r, -1);
}

// step_ended propagates the end of step i to its dependents, through as
// many skipped steps as the trigger rules produce, then checks the run.
static void
step_ended(weft_run *r, long i, weft_out *o)
{
	long  *stack = NULL;
	size_t n = 0, cap = 0;

	stack      = weft_xalloc(16 * sizeof(*stack));
	cap        = 16;
	stack[n++] = i;
	while (n > 0) {
		const weft_def_step *d = &r->def->steps[stack[--n]];
		for (size_t k = 0; k < d->nouts; k++) {
			long j = d->outs[k];
			if (--r->steps[j].waiting > 0 ||
			    r->steps[j].state != WEFT_STEP_PENDING) {
				continue;
			}
			if (step_resolve(r, j, o)) {
				if (n == cap) {
					cap *= 2;
					stack = weft_xrealloc(
					    stack, cap * sizeof(*stack));
				}
				stack[n++] = j;
			}
		}
	}
	free(stack);
	run_check_done(r, o);
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
	weft_out_event_add(o, "run_started", r, -1, 0, NULL, NULL);
	if (r->def->timeout_ms > 0) {
		r->deadline_ms = now + r->def->timeout_ms;
		out_effect(o, WEFT_EFFECT_RUN_TIMEOUT, r, -1)->at_ms =
		    r->deadline_ms;
	}
	for (size_t k = 0; k < r->def->nroots; k++) {
		long i = r->def->roots[k];
		if (step_resolve(r, i, o)) {
			step_ended(r, i, o);
		}
	}
	return (WEFT_OK);
}

weft_err
weft_run_dispatched(
    weft_run *r, long i, const char *node, int64_t now, weft_out *o)
{
	weft_step_rt        *s = &r->steps[i];
	enum weft_step_state to;
	weft_err             err;
	uint32_t             tmo = r->def->steps[i].timeout_ms;

	if (r->state != WEFT_RUN_RUNNING) {
		return (WEFT_ESTATE);
	}
	err = weft_step_next(s->state, WEFT_STEP_IN_DISPATCH, false, &to);
	if (err != WEFT_OK) {
		return (err);
	}
	step_goto(r, i, to, o);
	s->attempt++;
	s->started_ms = now;
	snprintf(s->node, sizeof(s->node), "%s", node);
	weft_out_event_add(o, "step_dispatched", r, i, s->attempt, s->node,
	    NULL);
	if (tmo > 0) {
		weft_effect *f = out_effect(o, WEFT_EFFECT_STEP_TIMEOUT, r, i);
		f->attempt     = s->attempt;
		f->at_ms       = now + tmo;
	}
	return (WEFT_OK);
}

weft_err
weft_run_accepted(weft_run *r, long i, uint32_t attempt, weft_out *o)
{
	weft_step_rt        *s = &r->steps[i];
	enum weft_step_state to;

	if (attempt != s->attempt ||
	    weft_step_next(s->state, WEFT_STEP_IN_ACCEPTED, false, &to) !=
	        WEFT_OK) {
		return (WEFT_ESTATE);
	}
	step_goto(r, i, to, o);
	weft_out_event_add(o, "step_started", r, i, attempt, s->node, NULL);
	return (WEFT_OK);
}

weft_err
weft_run_rejected(weft_run *r, long i, uint32_t attempt, const char *reason,
    weft_out *o)
{
	weft_step_rt        *s = &r->steps[i];
	enum weft_step_state to;

	if (attempt != s->attempt ||
	    weft_step_next(s->state, WEFT_STEP_IN_REJECTED, false, &to) !=
	        WEFT_OK) {
		return (WEFT_ESTATE);
	}
	step_goto(r, i, to, o);
	weft_out_event_add(o, "step_ready", r, i, attempt, s->node,
	    json_pack("{s:s}", "rejected", reason ? reason : ""));
	s->node[0] = '\0';
	if (r->state == WEFT_RUN_RUNNING) {
		out_effect(o, WEFT_EFFECT_ENQUEUE, r, i);
	}
	return (WEFT_OK);
}

// step_jitter_ms spreads retries deterministically (pure code reads no
// random source): +-20% from a hash of run, step and attempt.
static uint32_t
step_jitter_ms(const weft_run *r, long i, uint32_t attempt, uint32_t delay)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = r->id; *p != '\0'; p++) {
		h = (h ^ (uint8_t) *p) * 1099511628211ull;
	}
	h = (h ^ (uint64_t) i ^ ((uint64_t) attempt << 32)) * 1099511628211ull;
	uint64_t spread = (uint64_t) delay * 40 / 100;
	if (spread == 0) {
		return (delay);
	}
	return ((uint32_t) (delay - spread / 2 + h % (spread + 1)));
}

// step_bad_end applies a failure, loss or timeout of step i's attempt:
// retry_wait with a backoff timer while the budget lasts, else failed.
static void
step_bad_end(weft_run *r, long i, enum weft_step_input in, json_t *data,
    int64_t now, weft_out *o)
{
	weft_step_rt        *s   = &r->steps[i];
	const weft_retry    *pol = &r->def->steps[i].retry;
	bool                 can;
	enum weft_step_state to;

	if (in == WEFT_STEP_IN_LOST) {
		can = ++s->lost <= WEFT_RUN_MAX_LOST;
	} else {
		can = ++s->failures < pol->max_attempts;
	}
	weft_step_next(s->state, in, can, &to);
	step_goto(r, i, to, o);
	if (to == WEFT_STEP_RETRY_WAIT) {
		uint32_t     delay = 0;
		weft_effect *f;
		if (in != WEFT_STEP_IN_LOST) {
			delay = weft_retry_delay_ms(pol, s->failures + 1);
			if (pol->jitter) {
				delay = step_jitter_ms(r, i, s->attempt, delay);
			}
		}
		s->due_ms = now + delay;
		json_object_set_new(data, "delay_ms", json_integer(delay));
		weft_out_event_add(o, "step_retry_scheduled", r, i, s->attempt,
		    s->node, data);
		f          = out_effect(o, WEFT_EFFECT_RETRY_TIMER, r, i);
		f->attempt = s->attempt;
		f->at_ms   = s->due_ms;
		s->node[0] = '\0';
		return;
	}
	free(s->error);
	s->error = weft_xstrdup(
	    json_string_value(json_object_get(data, "error")));
	weft_out_event_add(o, "step_failed", r, i, s->attempt, s->node, data);
	step_ended(r, i, o);
}

// result_stale records a result that cannot apply. A repeat of the result
// already applied (a worker re-sending before our ack reached it) is
// dropped without an event: it is the same fact, not a new one.
static weft_err
result_stale(weft_run *r, long i, const weft_result *res, weft_out *o)
{
	weft_step_rt *s = &r->steps[i];

	if (res->attempt == s->attempt &&
	    (s->state == WEFT_STEP_SUCCEEDED || s->state == WEFT_STEP_FAILED ||
	        s->state == WEFT_STEP_RETRY_WAIT)) {
		return (WEFT_ESTATE);
	}
	weft_out_event_add(o, "result_ignored", r, i, res->attempt, res->node,
	    json_pack("{s:s, s:I, s:s, s:b}", "reason",
	        res->attempt != s->attempt ? "attempt is not current"
	                                   : "step is not running",
	        "current_attempt", (json_int_t) s->attempt, "state",
	        weft_step_state_name(s->state), "ok", res->ok));
	return (WEFT_ESTATE);
}

weft_err
weft_run_result(
    weft_run *r, long i, const weft_result *res, int64_t now, weft_out *o)
{
	weft_step_rt        *s = &r->steps[i];
	enum weft_step_state to;
	json_t              *data;
	int64_t dur = res->finished_ms > res->started_ms
	    ? res->finished_ms - res->started_ms
	    : 0;

	if (res->attempt != s->attempt ||
	    weft_step_next(s->state,
	        res->ok ? WEFT_STEP_IN_RESULT_OK : WEFT_STEP_IN_RESULT_FAIL,
	        true, &to) != WEFT_OK) {
		return (result_stale(r, i, res, o));
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
		step_bad_end(r, i, WEFT_STEP_IN_RESULT_FAIL, data, now, o);
		return (WEFT_OK);
	}
	step_goto(r, i, to, o);
	json_decref(s->output);
	s->output = json_incref(res->output != NULL ? res->output : json_null());
	weft_out_event_add(o, "step_succeeded", r, i, s->attempt, s->node,
	    json_pack("{s:O, s:I}", "output", s->output, "duration_ms",
	        (json_int_t) dur));
	step_ended(r, i, o);
	return (WEFT_OK);
}

weft_err
weft_run_lost(weft_run *r, long i, int64_t now, weft_out *o)
{
	weft_step_rt        *s = &r->steps[i];
	enum weft_step_state to;

	if (weft_step_next(s->state, WEFT_STEP_IN_LOST, true, &to) != WEFT_OK) {
		return (WEFT_ESTATE);
	}
	weft_out_event_add(o, "step_lost", r, i, s->attempt, s->node, NULL);
	step_bad_end(r, i, WEFT_STEP_IN_LOST,
	    json_pack("{s:s}", "error", "worker lost"), now, o);
	return (WEFT_OK);
}

weft_err
weft_run_timeout(
    weft_run *r, long i, uint32_t attempt, int64_t now, weft_out *o)
{
	weft_step_rt        *s = &r->steps[i];
	enum weft_step_state to;
	weft_effect         *f;

	if (attempt != s->attempt ||
	    weft_step_next(s->state, WEFT_STEP_IN_TIMEOUT, true, &to) !=
	        WEFT_OK) {
		return (WEFT_ESTATE);
	}
	f          = out_effect(o, WEFT_EFFECT_ABORT, r, i);
	f->attempt = attempt;
	snprintf(f->node, sizeof(f->node), "%s", s->node);
	weft_out_event_add(o, "step_timed_out", r, i, attempt, s->node,
	    json_pack("{s:I}", "timeout_ms",
	        (json_int_t) r->def->steps[i].timeout_ms));
	step_bad_end(r, i, WEFT_STEP_IN_TIMEOUT,
	    json_pack("{s:s}", "error", "timed out"), now, o);
	return (WEFT_OK);
}

weft_err
weft_run_retry_due(weft_run *r, long i, uint32_t attempt, weft_out *o)
{
	weft_step_rt        *s = &r->steps[i];
	enum weft_step_state to;

	if (attempt != s->attempt ||
	    weft_step_next(s->state, WEFT_STEP_IN_RETRY_DUE, false, &to) !=
	        WEFT_OK) {
		return (WEFT_ESTATE);
	}
	step_goto(r, i, to, o);
	weft_out_event_add(o, "step_ready", r, i, attempt, NULL, NULL);
	if (r->state == WEFT_RUN_RUNNING) {
		out_effect(o, WEFT_EFFECT_ENQUEUE, r, i);
	}
	return (WEFT_OK);
}

weft_err
weft_run_fail_step(
    weft_run *r, long i, const char *error, int64_t now, weft_out *o)
{
	weft_step_rt        *s = &r->steps[i];
	enum weft_step_state to;

	(void) now;
	if (weft_step_next(s->state, WEFT_STEP_IN_RESULT_FAIL, false, &to) !=
	    WEFT_OK) {
		return (WEFT_ESTATE);
	}
	step_goto(r, i, to, o);
	free(s->error);
	s->error = weft_xstrdup(error);
	weft_out_event_add(o, "step_failed", r, i, s->attempt, NULL,
	    json_pack("{s:s}", "error", error));
	step_ended(r, i, o);
	return (WEFT_OK);
}

// run_end_steps cancels every step that has not ended, asking the workers
// of in-flight attempts to abort them.
static void
run_end_steps(weft_run *r, weft_out *o)
{
	for (size_t i = 0; i < r->def->nsteps; i++) {
		weft_step_rt        *s = &r->steps[i];
		enum weft_step_state to;
		if (weft_step_next(s->state, WEFT_STEP_IN_CANCEL, false, &to) !=
		    WEFT_OK) {
			continue;
		}
		if (s->state == WEFT_STEP_DISPATCHED ||
		    s->state == WEFT_STEP_RUNNING) {
			weft_effect *f = out_effect(o, WEFT_EFFECT_ABORT, r, (long) i);
			f->attempt     = s->attempt;
			snprintf(f->node, sizeof(f->node), "%s", s->node);
		}
		step_goto(r, (long) i, to, o);
		weft_out_event_add(o, "step_cancelled", r, (long) i, s->attempt,
		    s->node, NULL);
	}
}

// run_input applies a run-level input that ends the run early.
static weft_err
run_end_early(weft_run *r, enum weft_run_input in, const char *type,
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
	out_effect(o, WEFT_EFFECT_RUN_ENDED, r, -1);
	return (WEFT_OK);
}

weft_err
weft_run_cancel(weft_run *r, const char *reason, weft_out *o)
{
	return (run_end_early(r, WEFT_RUN_IN_CANCEL, "run_cancelled",
	    json_pack("{s:s}", "reason", reason ? reason : "cancelled"), o));
}

weft_err
weft_run_expire(weft_run *r, weft_out *o)
{
	return (run_end_early(r, WEFT_RUN_IN_TIMEOUT, "run_timed_out",
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
	weft_out_event_add(o, "run_paused", r, -1, 0, NULL, NULL);
	return (WEFT_OK);
}

weft_err
weft_run_resume(weft_run *r, weft_out *o)
{
	enum weft_run_state to;

	if (weft_run_next(r->state, WEFT_RUN_IN_RESUME, &to) != WEFT_OK) {
		return (WEFT_ESTATE);
	}
	r->state = to;
	weft_out_event_add(o, "run_resumed", r, -1, 0, NULL, NULL);
	// Steps that became ready while paused were not queued: queue them.
	for (size_t i = 0; i < r->def->nsteps; i++) {
		if (r->steps[i].state == WEFT_STEP_READY) {
			out_effect(o, WEFT_EFFECT_ENQUEUE, r, (long) i);
		}
	}
	run_check_done(r, o);
	return (WEFT_OK);
}

weft_err
weft_run_retry(weft_run *r, weft_out *o)
{
	enum weft_run_state to;
	const weft_def     *def = r->def;

	if (weft_run_next(r->state, WEFT_RUN_IN_RETRY, &to) != WEFT_OK) {
		return (WEFT_ESTATE);
	}
	r->state = to;
	weft_out_event_add(o, "run_retried", r, -1, 0, NULL, NULL);
	// Every step that did not succeed starts over; counters are rebuilt
	// from the steps that keep their success.
	for (size_t i = 0; i < def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		if (s->state != WEFT_STEP_SUCCEEDED) {
			step_goto(r, (long) i, WEFT_STEP_PENDING, o);
			s->failures = s->lost = 0;
			free(s->error);
			s->error = NULL;
		}
	}
	for (size_t i = 0; i < def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		s->waiting      = 0;
		for (size_t k = 0; k < def->steps[i].ndeps; k++) {
			s->waiting += !weft_step_terminal(
			    r->steps[def->steps[i].deps[k]].state);
		}
	}
	for (size_t i = 0; i < def->nsteps; i++) {
		if (r->steps[i].state == WEFT_STEP_PENDING &&
		    r->steps[i].waiting == 0 && step_resolve(r, (long) i, o)) {
			step_ended(r, (long) i, o);
		}
	}
	return (WEFT_OK);
}

void
weft_run_restore_step(weft_run *r, long i, enum weft_step_state st,
    uint32_t attempt, const char *node, json_t *output, const char *error)
{
	weft_step_rt *s = &r->steps[i];
	weft_out      scratch;

	// Restoring never leaves a flight state, so step_goto reports nothing.
	weft_out_init(&scratch);
	step_goto(r, i, st, &scratch);
	weft_out_fini(&scratch);
	s->attempt = attempt;
	snprintf(s->node, sizeof(s->node), "%s", node ? node : "");
	if (output != NULL) {
		json_decref(s->output);
		s->output = json_incref(output);
	}
	if (error != NULL) {
		free(s->error);
		s->error = weft_xstrdup(error);
	}
}

void
weft_run_restore_done(weft_run *r, weft_out *o)
{
	const weft_def *def = r->def;

	for (size_t i = 0; i < def->nsteps; i++) {
		weft_step_rt *s = &r->steps[i];
		s->waiting      = 0;
		for (size_t k = 0; k < def->steps[i].ndeps; k++) {
			s->waiting += !weft_step_terminal(
			    r->steps[def->steps[i].deps[k]].state);
		}
		if (s->state == WEFT_STEP_RETRY_WAIT) {
			step_goto(r, (long) i, WEFT_STEP_READY, o);
		}
		if (s->state == WEFT_STEP_READY && r->state == WEFT_RUN_RUNNING) {
			out_effect(o, WEFT_EFFECT_ENQUEUE, r, (long) i);
		}
	}
	for (size_t i = 0; i < def->nsteps; i++) {
		if (r->steps[i].state == WEFT_STEP_PENDING &&
		    r->steps[i].waiting == 0 && step_resolve(r, (long) i, o)) {
			step_ended(r, (long) i, o);
		}
	}
	if (r->state != WEFT_RUN_QUEUED) {
		run_check_done(r, o);
	}
}

json_t *
weft_run_step_input(const weft_run *r, long i, char *err, size_t errlen)
{
	const weft_def_step *d   = &r->def->steps[i];
	json_t              *doc = step_doc(r, i);
	json_t              *with;

	if (d->with == NULL) {
		json_object_set_new(doc, "with", json_object());
		return (doc);
	}
	if ((with = weft_json_render(d->with, doc, err, errlen)) == NULL) {
		json_decref(doc);
		return (NULL);
	}
	json_object_set_new(doc, "with", with);
	return (doc);
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
