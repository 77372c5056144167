// subwf_model_test: the "workflow" step in the pure model: its definition
// checks (hold.c), and from a table every way a workflow unit starts and
// ends (weft_run_hold_start, weft_run_child_started, weft_run_child_ended
// in run.c): the child's output unchanged, its failure through the retry
// policy, stale ends after a timeout, a cancel or a retry, and the ABORT
// a cancel leaves for the engine to cancel the child with.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "def.h"
#include "hold.h"
#include "run.h"
#include "waiting.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

// ---- definitions ----

struct def_row {
	const char *with; // the workflow step's `with` (NULL: none)
	const char *want; // NULL: accepted; else a substring of the error
};

static const struct def_row def_rows[] = {
	{ "{\"name\":\"kid\"}", NULL },
	{ "{\"name\":\"kid\",\"version\":2,\"input\":{\"x\":\"${input.x}\"},"
	  "\"params\":{\"n\":\"${input.n}\"}}", NULL },
	{ NULL, "steps[0] (id \"s\"): a workflow step needs \"with.name\"" },
	{ "{}", "a workflow step needs \"with.name\"" },
	{ "{\"name\":\"\"}", "field \"with.name\": must be a definition name" },
	{ "{\"name\":\"a b\"}", "field \"with.name\": must be a definition name" },
	{ "{\"name\":\"${input.n}\"}", "(not a template)" },
	{ "{\"name\":[\"kid\"]}", "field \"with.name\"" },
	{ "{\"name\":\"kid\",\"version\":0}", "field \"with.version\": must be "
	                                       "a whole number >= 1" },
	{ "{\"name\":\"kid\",\"version\":1.5}", "field \"with.version\"" },
	{ "{\"name\":\"kid\",\"input\":\"x\"}", "field \"with.input\": must be "
	                                         "an object" },
	{ "{\"name\":\"kid\",\"params\":[]}", "field \"with.params\": must be "
	                                       "an object" },
	{ "{\"name\":\"kid\",\"inputs\":{}}", "field \"with.inputs\": unknown "
	  "for a workflow step (it takes name, version, input and params)" },
};

Test(subwf_model, definition_table, .timeout = T_TIMEOUT)
{
	char text[1024], err[512];

	cr_assert_eq(weft_hold_kind("workflow"), WEFT_HOLD_CHILD);
	for (size_t i = 0; i < sizeof(def_rows) / sizeof(def_rows[0]); i++) {
		weft_def *def = NULL;
		snprintf(text, sizeof(text), "{\"name\":\"p\",\"steps\":[{\"id\":"
		    "\"s\",\"type\":\"workflow\"%s%s}]}",
		    def_rows[i].with != NULL ? ",\"with\":" : "",
		    def_rows[i].with != NULL ? def_rows[i].with : "");
		err[0]      = '\0';
		weft_err rv = weft_def_parse(&def, text, strlen(text), err,
		    sizeof(err));
		if (def_rows[i].want == NULL) {
			cr_expect_eq(rv, WEFT_OK, "row %zu refused: %s", i, err);
			cr_expect(def == NULL || def->steps[0].hold == WEFT_HOLD_CHILD);
		} else {
			cr_expect_eq(rv, WEFT_EDEF, "row %zu accepted", i);
			cr_expect(strstr(err, def_rows[i].want) != NULL,
			    "row %zu: want \"%s\" in \"%s\"", i, def_rows[i].want,
			    err);
		}
		weft_def_free(def);
	}
}

// ---- the run model, from a table ----

// "sub" runs a child (two attempts, 100 ms apart); "after" reads its
// output.
static const char *sub_def =
    "{\"name\":\"p\",\"steps\":["
    "{\"id\":\"sub\",\"type\":\"workflow\",\"with\":{\"name\":\"kid\"},"
    "\"timeout_ms\":5000,\"retry\":{\"max_attempts\":2,\"backoff\":"
    "\"fixed\",\"initial_ms\":100}},"
    "{\"id\":\"after\",\"type\":\"echo\",\"depends_on\":[\"sub\"],"
    "\"with\":{\"v\":\"${steps.sub.output.e.v}\"}}]}";

enum sub_setup {
	SS_READY,   // the run started, sub ready
	SS_HELD,    // sub started at 1000, child "c1" recorded
	SS_FAILED1, // held, c1 failed: retry_wait
	SS_RETRIED, // c1 failed, retry due, sub started again: child "c2"
	SS_TIMED,   // held, then its timeout: retry_wait
	SS_PAUSED,  // held, then the run paused
};

enum sub_action {
	SA_START,      // weft_run_hold_start(sub)
	SA_STARTED,    // weft_run_child_started(sub, "cx")
	SA_END_OK,     // child of attempt 1 succeeded {"e": {"v": 7}}
	SA_END_FAILED, // child of attempt 1 failed: "boom"
	SA_END_CANCEL, // child of attempt 1 cancelled
	SA_END_OK_2,   // child of attempt 2 succeeded
	SA_CANCEL,     // the run cancelled
};

struct sub_row {
	const char     *name;
	enum sub_setup  setup;
	enum sub_action action;
	weft_err        want_rv;
	int             want_sub;   // sub's state after
	int             want_ended; // child_ended events made by the action
	int             want_abort; // ABORT effects with no node
	const char     *want_error; // substring of sub's error, or NULL
};

#define S(x) WEFT_STEP_##x
static const struct sub_row sub_rows[] = {
	{ "start: running, no worker", SS_READY, SA_START, WEFT_OK, S(RUNNING),
	    0, 0, NULL },
	{ "start twice: refused", SS_HELD, SA_START, WEFT_ESTATE, S(RUNNING), 0,
	    0, NULL },
	{ "child_started before the start: refused", SS_READY, SA_STARTED,
	    WEFT_ESTATE, S(READY), 0, 0, NULL },
	{ "child succeeded: its output is the step's", SS_HELD, SA_END_OK,
	    WEFT_OK, S(SUCCEEDED), 1, 0, NULL },
	{ "child failed: the retry policy decides", SS_HELD, SA_END_FAILED,
	    WEFT_OK, S(RETRY_WAIT), 1, 0, NULL },
	{ "child cancelled: the step fails too", SS_HELD, SA_END_CANCEL,
	    WEFT_OK, S(RETRY_WAIT), 1, 0, NULL },
	{ "second child failed: failed for good, naming it", SS_RETRIED,
	    SA_END_FAILED, WEFT_OK, S(FAILED), 1, 0,
	    "child run c2 failed: boom" },
	{ "the first child's end after a retry: stale", SS_RETRIED, SA_END_OK,
	    WEFT_ESTATE, S(RUNNING), 0, 0, NULL },
	{ "the retry's child succeeded", SS_RETRIED, SA_END_OK_2, WEFT_OK,
	    S(SUCCEEDED), 1, 0, NULL },
	{ "a child ending after the step timed out: stale", SS_TIMED,
	    SA_END_OK, WEFT_ESTATE, S(RETRY_WAIT), 0, 0, NULL },
	{ "a child ending while its run is paused: it ends", SS_PAUSED,
	    SA_END_OK, WEFT_OK, S(SUCCEEDED), 1, 0, NULL },
	{ "cancel: the step cancelled, ABORT to cancel the child", SS_HELD,
	    SA_CANCEL, WEFT_OK, S(CANCELLED), 0, 1, NULL },
	{ "a child ending after a cancel: stale", SS_FAILED1, SA_END_OK,
	    WEFT_ESTATE, S(RETRY_WAIT), 0, 0, NULL },
};
#undef S

static void
sub_end(weft_run *r, uint32_t attempt, const char *id, const char *status,
    const char *error, weft_out *o, weft_err want)
{
	json_t  *out = json_pack("{s:{s:i}}", "e", "v", 7);
	weft_err rv  = weft_run_child_ended(r, WEFT_REF(0), attempt, id, status,
	     out, error, 2000, o);
	json_decref(out);
	cr_assert_eq(rv, want, "child %s %s", id, status);
}

static void
sub_setup(weft_run *r, enum sub_setup setup, weft_out *o)
{
	cr_assert_eq(weft_run_start(r, 0, o), WEFT_OK);
	if (setup == SS_READY) {
		return;
	}
	cr_assert_eq(weft_run_hold_start(r, WEFT_REF(0), 1000, o), WEFT_OK);
	cr_assert_eq(weft_run_child_started(r, WEFT_REF(0), "c1", "kid", 1, o),
	    WEFT_OK);
	switch (setup) {
	case SS_FAILED1:
	case SS_RETRIED:
		sub_end(r, 1, "c1", "failed", "boom", o, WEFT_OK);
		if (setup == SS_RETRIED) {
			cr_assert_eq(weft_run_retry_due(r, WEFT_REF(0), 1, o), WEFT_OK);
			cr_assert_eq(weft_run_hold_start(r, WEFT_REF(0), 3000, o),
			    WEFT_OK);
			cr_assert_eq(weft_run_child_started(r, WEFT_REF(0), "c2",
			                 "kid", 1, o),
			    WEFT_OK);
		}
		break;
	case SS_TIMED:
		cr_assert_eq(weft_run_timeout(r, WEFT_REF(0), 1, 6000, o), WEFT_OK);
		break;
	case SS_PAUSED:
		cr_assert_eq(weft_run_pause(r, o), WEFT_OK);
		break;
	default:
		break;
	}
}

static int
count(const weft_out *o, size_t from, enum weft_event_type type)
{
	int n = 0;
	for (size_t k = from; k < o->nevents; k++) {
		n += o->events[k].type == type;
	}
	return (n);
}

Test(subwf_model, run_table, .timeout = T_TIMEOUT)
{
	weft_def *def;
	char      err[512];

	cr_assert_eq(weft_def_parse(&def, sub_def, strlen(sub_def), err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	for (size_t i = 0; i < sizeof(sub_rows) / sizeof(sub_rows[0]); i++) {
		const struct sub_row *row = &sub_rows[i];
		weft_out              o;
		weft_run             *r;
		weft_err              rv = WEFT_OK;
		weft_out_init(&o);
		r = weft_run_alloc("r1", def, NULL, NULL, 0, &o);
		sub_setup(r, row->setup, &o);
		size_t ev0 = o.nevents, ef0 = o.neffects;
		switch (row->action) {
		case SA_START:
			rv = weft_run_hold_start(r, WEFT_REF(0), 1000, &o);
			break;
		case SA_STARTED:
			rv = weft_run_child_started(r, WEFT_REF(0), "cx", "kid", 1,
			    &o);
			break;
		case SA_END_OK:
		case SA_END_FAILED:
		case SA_END_CANCEL: {
			json_t *out = json_pack("{s:{s:i}}", "e", "v", 7);
			uint32_t att = row->setup == SS_RETRIED &&
			        row->action == SA_END_FAILED ? 2 : 1;
			rv = weft_run_child_ended(r, WEFT_REF(0), att,
			    att == 2 ? "c2" : "c1",
			    row->action == SA_END_OK       ? "succeeded"
			        : row->action == SA_END_FAILED ? "failed"
			                                       : "cancelled",
			    out, row->action == SA_END_FAILED ? "boom" : NULL, 2000,
			    &o);
			json_decref(out);
			break;
		}
		case SA_END_OK_2: {
			json_t *out = json_pack("{s:{s:i}}", "e", "v", 7);
			rv = weft_run_child_ended(r, WEFT_REF(0), 2, "c2",
			    "succeeded", out, NULL, 4000, &o);
			json_decref(out);
			break;
		}
		case SA_CANCEL:
			rv = weft_run_cancel(r, "test", &o);
			break;
		}
		cr_expect_eq(rv, row->want_rv, "%s: rv %d", row->name, rv);
		cr_expect_eq((int) r->steps[0].state, row->want_sub, "%s: state %s",
		    row->name, weft_step_state_name(r->steps[0].state));
		cr_expect_eq(count(&o, ev0, WEFT_EV_CHILD_ENDED), row->want_ended,
		    "%s: child_ended", row->name);
		int aborts = 0;
		for (size_t k = ef0; k < o.neffects; k++) {
			aborts += o.effects[k].kind == WEFT_EFFECT_ABORT &&
			    o.effects[k].node[0] == '\0';
		}
		cr_expect_eq(aborts, row->want_abort, "%s: aborts", row->name);
		if (row->want_error != NULL) {
			cr_expect(r->steps[0].error != NULL &&
			        strcmp(r->steps[0].error, row->want_error) == 0,
			    "%s: error %s", row->name,
			    r->steps[0].error ? r->steps[0].error : "(none)");
		}
		if (r->steps[0].state == WEFT_STEP_SUCCEEDED) {
			cr_expect_eq(json_integer_value(json_object_get(json_object_get(
			                 r->steps[0].output, "e"), "v")), 7,
			    "%s: the child's output, unchanged", row->name);
		}
		weft_run_free(r);
		weft_out_fini(&o);
	}
	weft_def_free(def);
}

// A failed child on the last attempt fails the step for good, with an
// error naming the child run, its status and its error.
Test(subwf_model, last_failure_names_the_child, .timeout = T_TIMEOUT)
{
	weft_def *def;
	weft_out  o;
	char      err[512];

	cr_assert_eq(weft_def_parse(&def, sub_def, strlen(sub_def), err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	weft_out_init(&o);
	weft_run *r = weft_run_alloc("r1", def, NULL, NULL, 0, &o);
	sub_setup(r, SS_RETRIED, &o);
	size_t ev0 = o.nevents;
	sub_end(r, 2, "c2", "timed_out", NULL, &o, WEFT_OK);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_FAILED);
	cr_expect_str_eq(r->steps[0].error, "child run c2 timed_out");
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	cr_expect_eq(count(&o, ev0, WEFT_EV_STEP_FAILED), 1);
	// child_started carries the attempt recovery matches on.
	size_t k;
	for (k = 0; k < o.nevents; k++) {
		if (o.events[k].type == WEFT_EV_CHILD_STARTED &&
		    strcmp(json_string_value(json_object_get(o.events[k].data,
		               "child_run")), "c2") == 0) {
			break;
		}
	}
	cr_assert(k < o.nevents);
	cr_expect_eq(json_integer_value(json_object_get(o.events[k].data,
	                 "attempt")), 2);
	weft_run_free(r);
	weft_out_fini(&o);
	weft_def_free(def);
}

// A running workflow step waits for its child run, not for a worker.
Test(subwf_model, waiting_for_says_child)
{
	weft_wait_facts f = { .state = WEFT_STEP_RUNNING, .type = "workflow",
		.hold_child = "01CHILD", .hold_timeout_at_ms = 1000 };
	json_t *o = weft_waiting_for(&f);
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")),
	    WEFT_WAIT_CHILD);
	cr_expect_str_eq(json_string_value(json_object_get(o, "child_run")),
	    "01CHILD");
	cr_expect_eq(json_integer_value(json_object_get(o, "timeout_at_ms")),
	    1000);
	cr_expect_str_eq(json_string_value(json_object_get(o, "message")),
	    "waiting for its child run 01CHILD to end (times out at "
	    "1970-01-01T00:00:01.000Z)");
	json_decref(o);
}
