// hold_test: the steps the coordinator holds (wait, delay, sleep_until):
// their definition checks and deadlines (hold.c), and, from tables, every
// way the run model starts, signals, fires, times out and re-arms them
// (weft_run_hold_*, weft_run_signal in run.c).
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "def.h"
#include "hold.h"
#include "run.h"
#include "tdef.h"
#include "waiting.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

static int
count_events(const weft_out *o, size_t from, enum weft_event_type type)
{
	int n = 0;
	for (size_t k = from; k < o->nevents; k++) {
		n += o->events[k].type == type;
	}
	return (n);
}

// effect_at returns the at_ms of the first effect of kind from index from
// on, or -1 when there is none.
static int64_t
effect_at(const weft_out *o, size_t from, enum weft_effect_kind kind)
{
	for (size_t k = from; k < o->neffects; k++) {
		if (o->effects[k].kind == kind) {
			return (o->effects[k].at_ms);
		}
	}
	return (-1);
}

// ---- definitions ----

struct def_row {
	const char *name;
	const char *step; // the step object (id "s")
	const char *want; // NULL: accepted; else a substring of the error
};

static const struct def_row def_rows[] = {
	{ "wait", "{\"id\":\"s\",\"type\":\"wait\",\"with\":{\"signal\":\"approve\"}}",
	    NULL },
	{ "wait with timeout", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"signal\":\"a.b-c_d\",\"timeout_ms\":5000}}", NULL },
	{ "wait with step timeout", "{\"id\":\"s\",\"type\":\"wait\","
	    "\"timeout_ms\":5000,\"with\":{\"signal\":\"go\"}}", NULL },
	{ "wait without with", "{\"id\":\"s\",\"type\":\"wait\"}",
	    "steps[0] (id \"s\"): a wait step needs \"with.signal\"" },
	{ "wait without signal", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"timeout_ms\":1}}", "needs \"with.signal\"" },
	{ "signal not a name", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"signal\":\"a b\"}}", "field \"with.signal\": must be a name" },
	{ "signal a template", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"signal\":\"${input.x}\"}}", "field \"with.signal\"" },
	{ "signal a number", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"signal\":3}}", "field \"with.signal\"" },
	{ "signal too long", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"signal\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaa\"}}", "field \"with.signal\"" },
	{ "timeout negative", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"signal\":\"go\",\"timeout_ms\":-1}}",
	    "field \"with.timeout_ms\": must be a whole number" },
	{ "timeout a string", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"signal\":\"go\",\"timeout_ms\":\"5s\"}}", "with.timeout_ms" },
	{ "two timeouts", "{\"id\":\"s\",\"type\":\"wait\",\"timeout_ms\":9,"
	    "\"with\":{\"signal\":\"go\",\"timeout_ms\":5}}", "give one of them" },
	{ "wait unknown field", "{\"id\":\"s\",\"type\":\"wait\",\"with\":"
	    "{\"signal\":\"go\",\"data\":1}}",
	    "field \"with.data\": unknown for a wait step" },
	{ "heartbeat on a hold", "{\"id\":\"s\",\"type\":\"wait\","
	    "\"heartbeat_timeout_ms\":5000,\"with\":{\"signal\":\"go\"}}",
	    "runs on the coordinator and has no heartbeat" },
	{ "delay", "{\"id\":\"s\",\"type\":\"delay\",\"with\":{\"ms\":0}}", NULL },
	{ "delay template", "{\"id\":\"s\",\"type\":\"delay\",\"with\":"
	    "{\"ms\":\"${input.ms}\"}}", NULL },
	{ "delay template of an unknown param", "{\"id\":\"s\",\"type\":"
	    "\"delay\",\"with\":{\"ms\":\"${params.nope}\"}}", "nope" },
	{ "delay without ms", "{\"id\":\"s\",\"type\":\"delay\",\"with\":{}}",
	    "a delay step needs \"with.ms\"" },
	{ "delay negative", "{\"id\":\"s\",\"type\":\"delay\",\"with\":"
	    "{\"ms\":-5}}", "field \"with.ms\": must be a whole number" },
	{ "delay text", "{\"id\":\"s\",\"type\":\"delay\",\"with\":"
	    "{\"ms\":\"5s\"}}", "field \"with.ms\"" },
	{ "delay fraction", "{\"id\":\"s\",\"type\":\"delay\",\"with\":"
	    "{\"ms\":1.5}}", "field \"with.ms\"" },
	{ "delay with at", "{\"id\":\"s\",\"type\":\"delay\",\"with\":"
	    "{\"ms\":1,\"at\":2}}", "field \"with.at\": unknown for a delay" },
	{ "sleep_until rfc3339", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":\"2026-12-01T09:00:00Z\"}}", NULL },
	{ "sleep_until offset", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":\"2026-12-01T09:00:00.250+01:00\"}}", NULL },
	{ "sleep_until epoch", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":1796000000000}}", NULL },
	{ "sleep_until template", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":\"${input.when}\"}}", NULL },
	{ "sleep_until an age", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":\"15m\"}}", "field \"with.at\": must be RFC 3339" },
	{ "sleep_until words", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":\"tomorrow\"}}", "field \"with.at\"" },
	{ "sleep_until bad date", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":\"2026-13-01T00:00:00Z\"}}", "field \"with.at\"" },
	{ "sleep_until negative", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":-1}}", "field \"with.at\"" },
	{ "sleep_until past 9999", "{\"id\":\"s\",\"type\":\"sleep_until\","
	    "\"with\":{\"at\":253402300800000}}", "field \"with.at\"" },
	{ "sleep_until without at", "{\"id\":\"s\",\"type\":\"sleep_until\"}",
	    "a sleep_until step needs \"with.at\"" },
	{ "worker sleep untouched", "{\"id\":\"s\",\"type\":\"sleep\",\"with\":"
	    "{\"ms\":\"x\",\"other\":1}}", NULL },
};

Test(hold, definition_table, .timeout = T_TIMEOUT)
{
	for (size_t k = 0; k < sizeof(def_rows) / sizeof(def_rows[0]); k++) {
		const struct def_row *row = &def_rows[k];
		char      text[1024], err[512] = "";
		weft_def *def = NULL;
		snprintf(text, sizeof(text),
		    "{\"name\":\"h\",\"params\":{\"p\":{\"type\":\"int\","
		    "\"default\":1}},\"steps\":[%s]}", row->step);
		weft_err rv = weft_def_parse(&def, text, strlen(text), err,
		    sizeof(err));
		if (row->want == NULL) {
			cr_expect_eq(rv, WEFT_OK, "%s: %s", row->name, err);
		} else {
			cr_expect_eq(rv, WEFT_EDEF, "%s: accepted", row->name);
			cr_expect(strstr(err, row->want) != NULL,
			    "%s: error \"%s\" does not say \"%s\"", row->name, err,
			    row->want);
		}
		weft_def_free(def);
	}
}

Test(hold, kinds_and_wait_timeout)
{
	cr_expect_eq(weft_hold_kind("wait"), WEFT_HOLD_SIGNAL);
	cr_expect_eq(weft_hold_kind("delay"), WEFT_HOLD_TIMER);
	cr_expect_eq(weft_hold_kind("sleep_until"), WEFT_HOLD_TIMER);
	cr_expect_eq(weft_hold_kind("sleep"), WEFT_HOLD_NONE);
	cr_expect_eq(weft_hold_kind("waiting"), WEFT_HOLD_NONE);
	cr_expect_eq(weft_hold_kind("echo"), WEFT_HOLD_NONE);
	cr_expect_eq(weft_hold_kind(NULL), WEFT_HOLD_NONE);
	weft_def *def = weft_t_def("{\"name\":\"h\",\"steps\":[{\"id\":\"s\","
	    "\"type\":\"wait\",\"with\":{\"signal\":\"go\",\"timeout_ms\":750}}]}");
	cr_expect_eq(def->steps[0].hold, WEFT_HOLD_SIGNAL);
	cr_expect_eq(def->steps[0].timeout_ms, 750,
	    "with.timeout_ms is the step's timeout");
	weft_def_free(def);
}

struct deadline_row {
	const char *type, *with;
	int64_t     now;
	weft_err    want_rv;
	int64_t     want_at;
};

static const struct deadline_row deadline_rows[] = {
	{ "delay", "{\"ms\":0}", 1000, WEFT_OK, 1000 },
	{ "delay", "{\"ms\":2500}", 1000, WEFT_OK, 3500 },
	{ "delay", "{\"ms\":\"2500\"}", 1000, WEFT_EINVAL, 0 },
	{ "delay", "{\"ms\":-1}", 1000, WEFT_EINVAL, 0 },
	{ "delay", "{}", 1000, WEFT_EINVAL, 0 },
	{ "sleep_until", "{\"at\":5}", 1000, WEFT_OK, 5 },
	{ "sleep_until", "{\"at\":\"1970-01-01T00:00:01.5Z\"}", 0, WEFT_OK,
	    1500 },
	{ "sleep_until", "{\"at\":\"1970-01-01T01:00:00+01:00\"}", 0, WEFT_OK,
	    0 },
	{ "sleep_until", "{\"at\":\"2h\"}", 0, WEFT_EINVAL, 0 },
	{ "sleep_until", "{\"at\":null}", 0, WEFT_EINVAL, 0 },
	{ "sleep_until", "{\"at\":true}", 0, WEFT_EINVAL, 0 },
};

Test(hold, deadline_table, .timeout = T_TIMEOUT)
{
	for (size_t k = 0; k < sizeof(deadline_rows) / sizeof(deadline_rows[0]);
	     k++) {
		const struct deadline_row *row = &deadline_rows[k];
		json_t  *with = json_loads(row->with, 0, NULL);
		int64_t  at   = -7;
		char     err[256] = "";
		weft_err rv = weft_hold_deadline(row->type, with, row->now, &at,
		    err, sizeof(err));
		cr_expect_eq(rv, row->want_rv, "%s %s: %s", row->type, row->with,
		    weft_err_name(rv));
		if (row->want_rv == WEFT_OK) {
			cr_expect_eq(at, row->want_at, "%s %s: at %lld", row->type,
			    row->with, (long long) at);
		} else {
			cr_expect(strstr(err, row->type) != NULL &&
			        strstr(err, "rendered to") != NULL,
			    "%s %s: error \"%s\" names the step type and value",
			    row->type, row->with, err);
		}
		json_decref(with);
	}
}

// ---- the run model, from a table ----

// One wait step "w" (signal "go", timeout 5000) and one delay "d" (2000
// ms, from the input when it has "ms"), independent; "after" depends on
// w and reads its output.
static const char *hold_def =
    "{\"name\":\"h\",\"steps\":["
    "{\"id\":\"w\",\"type\":\"wait\",\"with\":{\"signal\":\"go\","
    "\"timeout_ms\":5000},\"retry\":{\"max_attempts\":2,\"backoff\":"
    "\"fixed\",\"initial_ms\":100}},"
    "{\"id\":\"d\",\"type\":\"delay\",\"with\":{\"ms\":\"${input.ms}\"}},"
    "{\"id\":\"after\",\"type\":\"echo\",\"depends_on\":[\"w\"],"
    "\"with\":{\"by\":\"${steps.w.output.by}\"}}]}";

enum hold_setup {
	HS_READY,     // started, both holds ready, not started yet
	HS_HELD,      // both holds started at 1000
	HS_PAUSED,    // the run paused while they were ready
	HS_HELD_PAUSED, // held, then the run paused
	HS_W_DONE,    // w signalled (ok) already
	HS_CANCELLED, // held, then the run cancelled
};

enum hold_action {
	HA_START_W,    // weft_run_hold_start(w, now 1000)
	HA_START_D,    // weft_run_hold_start(d, now 1000)
	HA_START_AFTER, // weft_run_hold_start on a worker step
	HA_SIGNAL,     // signal "go" {"by": "ann"}
	HA_REJECT,     // signal "go" rejected {"reason": "no"}
	HA_SIGNAL_OTHER, // signal "stop"
	HA_FIRE_D,     // d's timer, attempt 1, armed for 3000
	HA_FIRE_D_STALE, // d's timer for attempt 2
	HA_FIRE_W,     // a timer on the wait step
	HA_TIMEOUT_W,  // w's timeout, attempt 1
};

struct hold_row {
	const char      *name;
	enum hold_setup  setup;
	enum hold_action action;
	weft_err         want_rv;
	int              want_w;      // w's state after (-1: not checked)
	int              want_d;      // d's state after (-1: not checked)
	int              want_signaled; // step_signaled events
	int              want_started;  // step_started events
	int64_t          want_timer;  // HOLD_TIMER at (-1: none)
	int64_t          want_tmo;    // STEP_TIMEOUT at (-1: none)
};

#define S(x) WEFT_STEP_##x
static const struct hold_row hold_rows[] = {
	{ "start wait: running, timeout armed, no timer", HS_READY, HA_START_W,
	    WEFT_OK, S(RUNNING), S(READY), 0, 1, -1, 6000 },
	{ "start delay: running, timer at now + ms", HS_READY, HA_START_D,
	    WEFT_OK, S(READY), S(RUNNING), 0, 1, 3000, -1 },
	{ "start a worker step: refused", HS_W_DONE, HA_START_AFTER,
	    WEFT_ESTATE, S(SUCCEEDED), -1, 0, 0, -1, -1 },
	{ "start twice: refused", HS_HELD, HA_START_W, WEFT_ESTATE, S(RUNNING),
	    S(RUNNING), 0, 0, -1, -1 },
	{ "start while paused: refused (resume enqueues)", HS_PAUSED,
	    HA_START_W, WEFT_ESTATE, S(READY), S(READY), 0, 0, -1, -1 },
	{ "signal before the step waits: refused", HS_READY, HA_SIGNAL,
	    WEFT_ENOENT, S(READY), S(READY), 0, 0, -1, -1 },
	{ "signal: succeeds with the data", HS_HELD, HA_SIGNAL, WEFT_OK,
	    S(SUCCEEDED), S(RUNNING), 1, 0, -1, -1 },
	{ "signal while paused: in flight, it ends", HS_HELD_PAUSED, HA_SIGNAL,
	    WEFT_OK, S(SUCCEEDED), S(RUNNING), 1, 0, -1, -1 },
	{ "reject: fails for good despite retries", HS_HELD, HA_REJECT,
	    WEFT_OK, S(FAILED), S(RUNNING), 1, 0, -1, -1 },
	{ "another signal: nobody waits", HS_HELD, HA_SIGNAL_OTHER, WEFT_ENOENT,
	    S(RUNNING), S(RUNNING), 0, 0, -1, -1 },
	{ "signal twice: the second finds nobody", HS_W_DONE, HA_SIGNAL,
	    WEFT_ENOENT, S(SUCCEEDED), S(RUNNING), 0, 0, -1, -1 },
	{ "signal to a cancelled run: refused", HS_CANCELLED, HA_SIGNAL,
	    WEFT_ESTATE, S(CANCELLED), S(CANCELLED), 0, 0, -1, -1 },
	{ "timer fires: delay succeeds", HS_HELD, HA_FIRE_D, WEFT_OK,
	    S(RUNNING), S(SUCCEEDED), 0, 0, -1, -1 },
	{ "stale timer: nothing", HS_HELD, HA_FIRE_D_STALE, WEFT_ESTATE,
	    S(RUNNING), S(RUNNING), 0, 0, -1, -1 },
	{ "timer before the start: nothing", HS_READY, HA_FIRE_D, WEFT_ESTATE,
	    S(READY), S(READY), 0, 0, -1, -1 },
	{ "timer on a wait step: nothing", HS_HELD, HA_FIRE_W, WEFT_ESTATE,
	    S(RUNNING), S(RUNNING), 0, 0, -1, -1 },
	{ "timer after cancel: nothing", HS_CANCELLED, HA_FIRE_D, WEFT_ESTATE,
	    S(CANCELLED), S(CANCELLED), 0, 0, -1, -1 },
	{ "timeout: the retry policy decides (retry_wait)", HS_HELD,
	    HA_TIMEOUT_W, WEFT_OK, S(RETRY_WAIT), S(RUNNING), 0, 0, -1, -1 },
	{ "timeout after the signal: nothing", HS_W_DONE, HA_TIMEOUT_W,
	    WEFT_ESTATE, S(SUCCEEDED), S(RUNNING), 0, 0, -1, -1 },
};
#undef S

static void
hold_setup(weft_run *r, enum hold_setup setup, weft_out *o)
{
	size_t n;

	cr_assert_eq(weft_run_start(r, 0, o), WEFT_OK);
	switch (setup) {
	case HS_READY:
		return;
	case HS_PAUSED:
		cr_assert_eq(weft_run_pause(r, o), WEFT_OK);
		return;
	default:
		break;
	}
	cr_assert_eq(weft_run_hold_start(r, WEFT_REF(0), 1000, o), WEFT_OK);
	cr_assert_eq(weft_run_hold_start(r, WEFT_REF(1), 1000, o), WEFT_OK);
	switch (setup) {
	case HS_HELD_PAUSED:
		cr_assert_eq(weft_run_pause(r, o), WEFT_OK);
		break;
	case HS_W_DONE: {
		json_t *data = json_object();
		cr_assert_eq(weft_run_signal(r, "go", data, false, o, &n), WEFT_OK);
		json_decref(data);
		break;
	}
	case HS_CANCELLED:
		cr_assert_eq(weft_run_cancel(r, "test", o), WEFT_OK);
		break;
	default:
		break;
	}
}

static weft_err
hold_act(weft_run *r, enum hold_action a, weft_out *o)
{
	json_t  *data = NULL;
	size_t   n    = 0;
	weft_err rv   = WEFT_EINVAL;

	switch (a) {
	case HA_START_W:
		return (weft_run_hold_start(r, WEFT_REF(0), 1000, o));
	case HA_START_D:
		return (weft_run_hold_start(r, WEFT_REF(1), 1000, o));
	case HA_START_AFTER:
		return (weft_run_hold_start(r, WEFT_REF(2), 1000, o));
	case HA_SIGNAL:
		data = json_pack("{s:s}", "by", "ann");
		rv   = weft_run_signal(r, "go", data, false, o, &n);
		break;
	case HA_REJECT:
		data = json_pack("{s:s}", "reason", "no");
		rv   = weft_run_signal(r, "go", data, true, o, &n);
		break;
	case HA_SIGNAL_OTHER:
		data = json_object();
		rv   = weft_run_signal(r, "stop", data, false, o, &n);
		break;
	case HA_FIRE_D:
		return (weft_run_hold_fire(r, WEFT_REF(1), 1, 3000, o));
	case HA_FIRE_D_STALE:
		return (weft_run_hold_fire(r, WEFT_REF(1), 2, 3000, o));
	case HA_FIRE_W:
		return (weft_run_hold_fire(r, WEFT_REF(0), 1, 3000, o));
	case HA_TIMEOUT_W:
		return (weft_run_timeout(r, WEFT_REF(0), 1, 6000, o));
	}
	cr_expect_eq(n, rv == WEFT_OK ? 1u : 0u, "delivered count");
	json_decref(data);
	return (rv);
}

Test(hold, run_table, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def(hold_def);

	for (size_t k = 0; k < sizeof(hold_rows) / sizeof(hold_rows[0]); k++) {
		const struct hold_row *row = &hold_rows[k];
		weft_out               o;
		weft_out_init(&o);
		weft_run *r = weft_run_alloc("RH", def,
		    json_pack("{s:i}", "ms", 2000), json_object(), 0, &o);
		hold_setup(r, row->setup, &o);
		size_t   ev0 = o.nevents, ef0 = o.neffects;
		weft_err rv  = hold_act(r, row->action, &o);
		cr_expect_eq(rv, row->want_rv, "%s: rv %s", row->name,
		    weft_err_name(rv));
		if (row->want_w >= 0) {
			cr_expect_eq((int) r->steps[0].state, row->want_w, "%s: w is %s",
			    row->name, weft_step_state_name(r->steps[0].state));
		}
		if (row->want_d >= 0) {
			cr_expect_eq((int) r->steps[1].state, row->want_d, "%s: d is %s",
			    row->name, weft_step_state_name(r->steps[1].state));
		}
		cr_expect_eq(count_events(&o, ev0, WEFT_EV_STEP_SIGNALED),
		    row->want_signaled, "%s: step_signaled", row->name);
		cr_expect_eq(count_events(&o, ev0, WEFT_EV_STEP_STARTED),
		    row->want_started, "%s: step_started", row->name);
		cr_expect_eq(effect_at(&o, ef0, WEFT_EFFECT_HOLD_TIMER),
		    row->want_timer, "%s: hold timer", row->name);
		cr_expect_eq(effect_at(&o, ef0, WEFT_EFFECT_STEP_TIMEOUT),
		    row->want_tmo, "%s: timeout", row->name);
		if (rv != WEFT_OK) {
			cr_expect_eq(o.nevents, ev0, "%s: a refusal writes nothing",
			    row->name);
		}
		// A hold never asks a worker for anything.
		for (size_t e = ef0; e < o.neffects; e++) {
			cr_expect(o.effects[e].kind != WEFT_EFFECT_ENQUEUE ||
			        o.effects[e].step == 2,
			    "%s: a hold step enqueued", row->name);
			cr_expect(o.effects[e].node[0] == '\0', "%s: names a node",
			    row->name);
		}
		weft_out_fini(&o);
		weft_run_free(r);
	}
	weft_def_free(def);
}

Test(hold, signal_data_is_the_output_and_reject_says_why)
{
	weft_def *def = weft_t_def(hold_def);
	weft_out  o;
	size_t    n;
	char      err[256];

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RS", def, json_pack("{s:i}", "ms", 0),
	    json_object(), 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_hold_start(r, WEFT_REF(0), 10, &o);
	json_t *data = json_pack("{s:s, s:[i]}", "by", "ann", "n", 1);
	cr_assert_eq(weft_run_signal(r, "go", data, false, &o, &n), WEFT_OK);
	cr_expect(json_equal(r->steps[0].output, data));
	cr_expect(r->steps[0].output != data, "the output is a copy");
	json_decref(data);
	weft_out_event *ev = &o.events[o.nevents - 3];
	cr_expect_eq(ev->type, WEFT_EV_STEP_SIGNALED);
	cr_expect_str_eq(json_string_value(json_object_get(ev->data, "signal")),
	    "go");
	cr_expect(json_is_false(json_object_get(ev->data, "reject")));
	cr_expect_eq(ev->attempt, 1);
	// The dependent reads the signal's data.
	cr_assert_eq(r->steps[2].state, WEFT_STEP_READY);
	json_t *in = weft_run_step_input(r, WEFT_REF(2), err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(in, "with"), "by")),
	    "ann");
	json_decref(in);
	weft_out_fini(&o);
	weft_run_free(r);

	// Rejected: the reason is in the error; a reason that is not a
	// string is left out.
	const char *reasons[][2] = {
		{ "{\"reason\":\"too risky\"}", "signal \"go\" rejected: too risky" },
		{ "{\"reason\":7}", "signal \"go\" rejected" },
		{ "[1,2]", "signal \"go\" rejected" },
	};
	for (size_t k = 0; k < 3; k++) {
		weft_out_init(&o);
		r = weft_run_alloc("RJ", def, json_pack("{s:i}", "ms", 0),
		    json_object(), 0, &o);
		weft_run_start(r, 0, &o);
		weft_run_hold_start(r, WEFT_REF(0), 10, &o);
		data = json_loads(reasons[k][0], 0, NULL);
		cr_assert_eq(weft_run_signal(r, "go", data, true, &o, &n), WEFT_OK);
		json_decref(data);
		cr_expect_str_eq(r->steps[0].error, reasons[k][1]);
		cr_expect_eq(r->steps[2].state, WEFT_STEP_UPSTREAM_FAILED,
		    "its dependent is upstream_failed");
		cr_expect_eq(count_events(&o, 0, WEFT_EV_STEP_RETRY_SCHEDULED), 0,
		    "a rejection is not retried");
		weft_out_fini(&o);
		weft_run_free(r);
	}
	weft_def_free(def);
}

Test(hold, delay_that_does_not_render_fails_the_step)
{
	weft_def *def = weft_t_def(hold_def);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RB", def, json_pack("{s:s}", "ms", "soon"),
	    json_object(), 0, &o);
	weft_run_start(r, 0, &o);
	cr_expect_eq(weft_run_hold_start(r, WEFT_REF(1), 10, &o), WEFT_OK);
	cr_expect_eq(r->steps[1].state, WEFT_STEP_FAILED);
	cr_expect(strstr(r->steps[1].error, "with.ms rendered to \"soon\"") !=
	        NULL,
	    "%s", r->steps[1].error);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(hold, map_of_waits_takes_one_signal_each)
{
	weft_def *def = weft_t_def("{\"name\":\"m\",\"steps\":[{\"id\":\"l\","
	    "\"type\":\"echo\"},{\"id\":\"ok\",\"type\":\"wait\",\"depends_on\":"
	    "[\"l\"],\"map\":\"steps.l.output.xs\",\"with\":{\"signal\":"
	    "\"go\"}}]}");
	weft_out o;
	size_t   n;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RM", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, WEFT_REF(0), "w1", 1, &o);
	json_t     *out = json_pack("{s:[i,i,i]}", "xs", 1, 2, 3);
	weft_result res = { .attempt = 1, .ok = true, .output = out, .node = "w1" };
	cr_assert_eq(weft_run_result(r, WEFT_REF(0), &res, 2, &o), WEFT_OK);
	json_decref(out);
	for (long k = 0; k < 2; k++) {
		cr_assert_eq(weft_run_hold_start(r, (weft_ref) { 1, k }, 3, &o),
		    WEFT_OK);
	}
	json_t *data = json_pack("{s:b}", "yes", 1);
	cr_expect_eq(weft_run_signal(r, "go", data, false, &o, &n), WEFT_OK);
	cr_expect_eq(n, 2, "the two items waiting take it; the third is ready");
	cr_expect_eq(r->steps[1].items[2].state, WEFT_STEP_READY);
	cr_expect_eq(weft_run_signal(r, "go", data, false, &o, &n), WEFT_ENOENT);
	cr_assert_eq(weft_run_hold_start(r, (weft_ref) { 1, 2 }, 4, &o), WEFT_OK);
	cr_expect_eq(weft_run_signal(r, "go", data, false, &o, &n), WEFT_OK);
	json_decref(data);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// After a restart the deadlines come back from step_started's data.
Test(hold, rearm_from_step_started)
{
	weft_def *def = weft_t_def(hold_def);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RR", def, NULL, NULL, 0, &o);
	r->state = WEFT_RUN_RUNNING;
	cr_assert(weft_run_restore_step(r, WEFT_REF(0), WEFT_STEP_RUNNING, 1,
	    NULL, NULL, NULL));
	cr_assert(weft_run_restore_step(r, WEFT_REF(1), WEFT_STEP_RUNNING, 3,
	    NULL, NULL, NULL));
	weft_run_restore_done(r, &o);
	size_t  ef0 = o.neffects;
	json_t *sw  = json_pack("{s:s, s:s, s:I}", "hold", "signal", "signal",
	     "go", "timeout_at_ms", (json_int_t) 7777);
	json_t *sd  = json_pack("{s:s, s:I}", "hold", "timer", "until_ms",
	     (json_int_t) 5555);
	weft_run_hold_rearm(r, WEFT_REF(0), sw, &o);
	weft_run_hold_rearm(r, WEFT_REF(1), sd, &o);
	cr_expect_eq(effect_at(&o, ef0, WEFT_EFFECT_STEP_TIMEOUT), 7777);
	cr_expect_eq(effect_at(&o, ef0, WEFT_EFFECT_HOLD_TIMER), 5555);
	cr_expect_eq(o.effects[o.neffects - 1].attempt, 3,
	    "armed for the restored attempt");
	// The timer fires for that attempt, at its old deadline.
	cr_expect_eq(weft_run_hold_fire(r, WEFT_REF(1), 3, 5555, &o), WEFT_OK);
	cr_expect_eq(json_integer_value(json_object_get(r->steps[1].output,
	                 "at_ms")),
	    5555);
	// Nothing to re-arm for a unit that is not in flight, or a worker
	// step.
	size_t ef1 = o.neffects;
	weft_run_hold_rearm(r, WEFT_REF(1), sd, &o);
	weft_run_hold_rearm(r, WEFT_REF(2), sd, &o);
	cr_expect_eq(o.neffects, ef1);
	json_decref(sw);
	json_decref(sd);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(hold, waiting_for_says_signal_or_timer)
{
	weft_wait_facts f = { .state = WEFT_STEP_RUNNING, .type = "wait",
		.hold_signal = "approve", .hold_timeout_at_ms = 1000 };
	json_t *o = weft_waiting_for(&f);
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")),
	    WEFT_WAIT_SIGNAL);
	cr_expect_str_eq(json_string_value(json_object_get(o, "signal")),
	    "approve");
	cr_expect_eq(json_integer_value(json_object_get(o, "timeout_at_ms")),
	    1000);
	cr_expect(strstr(json_string_value(json_object_get(o, "message")),
	              "waiting for signal \"approve\" (times out at "
	              "1970-01-01T00:00:01.000Z)") != NULL,
	    "%s", json_string_value(json_object_get(o, "message")));
	json_decref(o);
	weft_wait_facts t = { .state = WEFT_STEP_RUNNING, .type = "delay",
		.hold_timer = true, .hold_until_ms = 2000 };
	o = weft_waiting_for(&t);
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")),
	    WEFT_WAIT_TIMER);
	cr_expect_eq(json_integer_value(json_object_get(o, "until_ms")), 2000);
	json_decref(o);
}
